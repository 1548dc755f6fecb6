"""The one image module: pixel value conventions, image files (header, size guard, reading, writing) and the
foreground-attention rule. Everything that converts, reads or writes an image goes through here.

Pixel values:
  * uint8 images are RGB [..., H, W, 3] in [0, 255]: files, the public API (`tf_faceedit.load`), the serving
    signatures, the demo.
  * model images are float32 in [-1, 1]: `to_float`: x = u / 127.5 - 1; `to_uint8`: u = clip(round((x + 1) * 127.5),
    0, 255) (round half to even; NaN -> 128, mid grey). `to_float_tf` / `to_uint8_tf` are the same maps in
    TensorFlow ops for TensorFlow graphs (tf.data, the serving signatures); networks never convert (they take and
    return [-1, 1]).
  * attention extras and masks are float32 [..., n] in [0, 1] (`mask_to_uint8`: clip(round(m * 255), 0, 255));
    `foreground_attention` is the edited region (below).

Image files:
  * Formats are recognised by their signature, never by their extension: JPEG, PNG, GIF, BMP, WebP and TIFF
    (`FORMATS`). Anything else is refused before decoding: OpenCV would otherwise decode whatever it recognises.
  * `read_header` parses the real header without decoding a pixel: JPEG markers up to the frame header (SOFn), past
    any number of APPn / COM segments of any length (and the stray bytes libjpeg skips); PNG IHDR (and tRNS); GIF
    logical screen and frame count; BMP info header; WebP VP8 / VP8L / VP8X; TIFF and BigTIFF first IFD.
  * Size guard: a file whose header declares more than `MAX_IMAGE_PIXELS` (64 Mpx; for a GIF, width x height x
    frames) is refused with a one-line `DataError` before anything is decoded. A header that cannot be parsed
    (truncated, no frame marker, zero size) is refused the same way.
  * `read_image` -> RGB uint8 [H, W, 3] (grayscale replicated, 16 bits scaled to 8, the JPEG EXIF orientation
    applied: OpenCV's IMREAD_COLOR); `read_image_alpha` also returns the alpha channel (or None); `read_mask` ->
    uint8 [H, W] (grayscale).
  * `write_image` writes RGB (or grayscale) uint8, optionally with an alpha channel (kept for PNG, WebP and TIFF,
    `ALPHA_EXTENSIONS`). The format follows the extension, which must be one of `IMAGE_EXTENSIONS`; the file is
    written to a temporary sibling and renamed, so a failed write leaves no partial file.
  * Every failure is a `DataError` naming the file (and the flag, through `what`), never an OpenCV/OS traceback.
"""

import dataclasses
import io
import logging
import os
import struct
from pathlib import Path

import numpy as np

from tf_faceedit.errors import DataError

log = logging.getLogger("tf_faceedit")

# Extensions read from folders and written (the format follows the extension on writing).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
ALPHA_EXTENSIONS = (".png", ".webp", ".tif", ".tiff")  # written with their alpha channel
FORMATS = ("jpeg", "png", "gif", "bmp", "webp", "tiff")

# Largest image decoded (width * height from the header): 8192 x 8192 = 64 Mpx, 192 MB as RGB uint8. A tiny PNG or a
# JPEG can declare 20000 x 20000 and decode to 1.2 GB; larger declared sizes are refused before decoding.
MAX_IMAGE_PIXELS = 8192 * 8192


# ---------------------------------------------------------------------------------------------------------------
# Pixel values


def to_float(images):
    """uint8 (or float) images with values in [0, 255] -> float32 numpy in [-1, 1]: u / 127.5 - 1."""
    return np.asarray(images).astype(np.float32) / 127.5 - 1.0


def ensure_float(images):
    """uint8 images -> `to_float`; float images are taken as already in [-1, 1] (cast to float32)."""
    images = np.asarray(images)
    return to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


def to_uint8(images):
    """[-1, 1] float images (numpy, or any tensor numpy can read) -> uint8 numpy: clip(round((x + 1) * 127.5), 0, 255);
    NaN becomes 128 (mid grey)."""
    array = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=0.0, posinf=np.inf, neginf=-np.inf)
    return np.clip(np.rint((array + 1.0) * 127.5), 0, 255).astype(np.uint8)


def mask_to_uint8(masks):
    """[0, 1] float masks (attention, holes) -> uint8 numpy: clip(round(m * 255), 0, 255); NaN becomes 0."""
    array = np.nan_to_num(np.asarray(masks, dtype=np.float32), nan=0.0, posinf=np.inf, neginf=-np.inf)
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


def to_float_tf(images):
    """`to_float` in TensorFlow ops: a uint8 (or [0, 255] float) tensor -> float32 in [-1, 1]."""
    from tf_faceedit.backend.lazy_tf import tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8_tf(images):
    """`to_uint8` in TensorFlow ops: a [-1, 1] float tensor -> uint8, clip(round((x + 1) * 127.5), 0, 255)."""
    from tf_faceedit.backend.lazy_tf import tf

    images = tf.convert_to_tensor(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def foreground_attention(attention):
    """The edited region of an attention extra [..., n] -> [..., 1] in [0, 1]: the mask itself when n == 1 (SaGAN,
    AttentionGAN scheme I), 1 - the last (background) mask when n > 1 (AttentionGAN scheme II: n - 1 foreground
    masks and one background mask, a softmax over n). Slicing and arithmetic only: numpy arrays and the tensors of
    every Keras backend (it runs inside networks' losses)."""
    if attention.shape[-1] == 1:
        return attention
    return 1.0 - attention[..., -1:]


def check_rgb(image, name="image"):
    """`image` as a numpy array, checked to be RGB uint8 [H, W, 3] (a photo of `data.align` / `data.detectors`).

    Raises:
      ValueError: naming `name`, for another dtype or shape.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be RGB uint8 [H, W, 3], got {image.dtype} {image.shape}")
    return image


# ---------------------------------------------------------------------------------------------------------------
# Headers


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What a file's header declares. format: one of FORMATS; frames: GIF frames (1 otherwise); has_alpha: the file
    may carry an alpha channel (PNG colour type 4/6 or tRNS, WebP alpha flag, TIFF 2 or 4 samples)."""

    format: str
    width: int
    height: int
    frames: int = 1
    has_alpha: bool = False

    @property
    def pixels(self):
        return self.width * self.height * max(self.frames, 1)


class HeaderError(ValueError):
    """The header is not one of FORMATS, or is malformed (the message says why)."""


def _read_exact(f, n):
    data = f.read(n)
    if len(data) != n:
        raise HeaderError("truncated header")
    return data


def _skip(f, n):
    if n:
        f.seek(n, os.SEEK_CUR)


def _jpeg_header(f):
    """Walks the marker segments after SOI up to the first frame header (SOF0-SOF15 but DHT, JPG, DAC)."""
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            raise HeaderError("JPEG ends before its frame header (SOF)")
        if byte != b"\xff":
            # libjpeg skips stray bytes before a marker (with a warning): do the same, a chunk at a time
            while True:
                chunk = f.read(65536)
                if not chunk:
                    raise HeaderError("JPEG ends before its frame header (SOF)")
                at = chunk.find(b"\xff")
                if at >= 0:
                    f.seek(at + 1 - len(chunk), os.SEEK_CUR)
                    break
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            raise HeaderError("JPEG ends before its frame header (SOF)")
        code = marker[0]
        if code == 0x00 or code == 0x01 or code == 0xD8 or 0xD0 <= code <= 0xD7:  # no length field
            continue
        if code in (0xD9, 0xDA):
            raise HeaderError("JPEG has no frame header (SOF) before its image data")
        length = struct.unpack(">H", _read_exact(f, 2))[0]
        if length < 2:
            raise HeaderError(f"JPEG marker segment 0x{code:02X} has an invalid length {length}")
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            if length < 8:
                raise HeaderError("JPEG frame header (SOF) is too short")
            _, height, width = struct.unpack(">BHH", _read_exact(f, 5))
            return ImageHeader("jpeg", width, height)
        _skip(f, length - 2)


def _png_header(f):
    f.seek(8)
    length, kind = struct.unpack(">I4s", _read_exact(f, 8))
    if kind != b"IHDR" or length < 13:
        raise HeaderError("PNG does not start with an IHDR chunk")
    width, height, _, colour = struct.unpack(">IIBB", _read_exact(f, 10))
    has_alpha = colour in (4, 6)
    _skip(f, length - 10 + 4)  # rest of IHDR, CRC
    for _ in range(4096):  # ancillary chunks before the image data: look for tRNS (palette/colour-key transparency)
        head = f.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"tRNS":
            has_alpha = True
            break
        _skip(f, length + 4)
    return ImageHeader("png", width, height, has_alpha=has_alpha)


def _gif_header(f):
    f.seek(6)
    width, height, flags = struct.unpack("<HHB", _read_exact(f, 5))
    _skip(f, 2)
    if flags & 0x80:  # global colour table
        _skip(f, 3 * 2 ** ((flags & 0x07) + 1))
    frames = 0
    while True:
        block = f.read(1)
        if not block or block == b"\x3b":  # end of file / trailer
            break
        if block == b"\x2c":  # image descriptor: one frame
            frames += 1
            _, _, frame_w, frame_h, frame_flags = struct.unpack("<HHHHB", _read_exact(f, 9))
            width, height = max(width, frame_w), max(height, frame_h)
            if frame_flags & 0x80:
                _skip(f, 3 * 2 ** ((frame_flags & 0x07) + 1))
            _skip(f, 1)  # LZW minimum code size
        elif block == b"\x21":  # extension
            _skip(f, 1)
        else:
            break  # damaged: the decoder will say so
        while True:  # data sub-blocks
            size = f.read(1)
            if not size or size == b"\x00":
                break
            _skip(f, size[0])
    return ImageHeader("gif", width, height, frames=max(frames, 1))


def _bmp_header(f):
    f.seek(14)
    size = struct.unpack("<I", _read_exact(f, 4))[0]
    if size == 12:
        width, height = struct.unpack("<HH", _read_exact(f, 4))
    elif size >= 40:
        width, height = struct.unpack("<ii", _read_exact(f, 8))
    else:
        raise HeaderError(f"BMP has an unknown info header size {size}")
    return ImageHeader("bmp", abs(width), abs(height))


def _webp_header(f):
    f.seek(12)
    kind, _ = struct.unpack("<4sI", _read_exact(f, 8))
    if kind == b"VP8 ":
        data = _read_exact(f, 10)
        if data[3:6] != b"\x9d\x01\x2a":
            raise HeaderError("WebP VP8 frame has no start code")
        width, height = struct.unpack("<HH", data[6:10])
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        data = _read_exact(f, 5)
        if data[0] != 0x2F:
            raise HeaderError("WebP VP8L stream has no signature")
        bits = int.from_bytes(data[1:5], "little")
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, has_alpha=bool(bits >> 28 & 1))
    if kind == b"VP8X":
        data = _read_exact(f, 10)
        width = int.from_bytes(data[4:7], "little") + 1
        height = int.from_bytes(data[7:10], "little") + 1
        return ImageHeader("webp", width, height, has_alpha=bool(data[0] & 0x10))
    raise HeaderError(f"WebP has an unknown first chunk {kind!r}")


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}  # BYTE, SHORT, LONG, LONG8


def _tiff_header(f):
    f.seek(0)
    order = "<" if _read_exact(f, 2) == b"II" else ">"
    version = struct.unpack(order + "H", _read_exact(f, 2))[0]
    big = version == 43
    if big:
        _skip(f, 4)  # offset byte size (8), reserved
        offset = struct.unpack(order + "Q", _read_exact(f, 8))[0]
    else:
        offset = struct.unpack(order + "I", _read_exact(f, 4))[0]
    f.seek(offset)
    count = struct.unpack(order + ("Q" if big else "H"), _read_exact(f, 8 if big else 2))[0]
    tags = {}
    for _ in range(min(count, 4096)):
        entry = _read_exact(f, 20 if big else 12)
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257, 277) and kind in _TIFF_TYPES:
            value = entry[12:] if big else entry[8:]
            tags[tag] = struct.unpack_from(order + _TIFF_TYPES[kind], value)[0]
    if 256 not in tags or 257 not in tags:
        raise HeaderError("TIFF first image has no width or length tag")
    return ImageHeader("tiff", tags[256], tags[257], has_alpha=tags.get(277, 1) in (2, 4))


def _signature(head):
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


_PARSERS = {
    "jpeg": _jpeg_header,
    "png": _png_header,
    "gif": _gif_header,
    "bmp": _bmp_header,
    "webp": _webp_header,
    "tiff": _tiff_header,
}


def parse_header(f):
    """The `ImageHeader` of an open binary file (or BytesIO) positioned anywhere.

    Raises:
      HeaderError: the file is empty, not one of FORMATS, or its header is malformed or declares a zero size.
    """
    f.seek(0)
    head = f.read(16)
    if not head:
        raise HeaderError("empty file")
    kind = _signature(head)
    if kind is None:
        raise HeaderError("not a JPEG, PNG, GIF, BMP, WebP or TIFF file")
    try:
        header = _PARSERS[kind](f)
    except struct.error:
        raise HeaderError(f"malformed {kind.upper()} header") from None
    if header.width <= 0 or header.height <= 0:
        raise HeaderError(f"{kind.upper()} header declares {header.width}x{header.height} pixels")
    return header


def header_of_bytes(data):
    """`parse_header` of bytes in memory."""
    return parse_header(io.BytesIO(bytes(data)))


def read_header(path, what="image", max_pixels=MAX_IMAGE_PIXELS):
    """The `ImageHeader` of an image file, checked against the size guard.

    Args:
      path: the file. what: how to name it in errors (a flag, e.g. "--image", or "image").
      max_pixels: refuse headers declaring more (default MAX_IMAGE_PIXELS); None: no limit.
    Raises:
      DataError (one line naming the file): missing, unreadable, not an accepted format, malformed header, or more
      than `max_pixels` pixels.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    if not path.is_file():
        raise DataError(f"{what} {path} is not a file")
    try:
        with open(path, "rb") as f:
            header = parse_header(f)
    except OSError as err:
        raise DataError(f"cannot read {what} {path}: {err.strerror or err}") from None
    except HeaderError as err:
        raise DataError(f"cannot read {what} {path}: {err}") from None
    if max_pixels is not None and header.pixels > max_pixels:
        frames = f" x {header.frames} frames" if header.frames > 1 else ""
        raise DataError(
            f"{what} {path} declares {header.width}x{header.height}{frames} pixels, more than the "
            f"{max_pixels / 1e6:.0f} Mpx this library decodes (images.MAX_IMAGE_PIXELS); not decoded"
        )
    return header


def check_file(path, max_pixels=MAX_IMAGE_PIXELS, formats=FORMATS):
    """True when the file is an image of `formats` whose header parses and declares at most `max_pixels` pixels (the
    training data scan: no exception, no decoding)."""
    try:
        with open(path, "rb") as f:
            header = parse_header(f)
    except (OSError, HeaderError):
        return False
    return header.format in formats and (max_pixels is None or header.pixels <= max_pixels)


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _decode(path, flags):
    import cv2

    try:
        image = cv2.imread(str(path), flags)
    except cv2.error:
        image = None
    if image is None:
        # cv2.imread cannot open some paths (non-ASCII names on Windows); decode the bytes before giving up.
        try:
            data = np.fromfile(str(path), np.uint8)
            image = cv2.imdecode(data, flags) if data.size else None
        except (OSError, cv2.error):
            image = None
    return image


def _decode_checked(path, what, flags, max_pixels):
    header = read_header(path, what, max_pixels)
    image = _decode(path, flags)
    if image is None:
        raise DataError(
            f"cannot read {what} {path}: its {header.format.upper()} data cannot be decoded (damaged or truncated file)"
        )
    return header, image


def read_image(path, what="image", max_pixels=MAX_IMAGE_PIXELS):
    """An image file -> RGB uint8 [H, W, 3] (see the module docstring). DataError names `what` and the file."""
    import cv2

    _, image = _decode_checked(path, what, cv2.IMREAD_COLOR, max_pixels)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_alpha(path, what="image", max_pixels=MAX_IMAGE_PIXELS):
    """An image file -> (RGB uint8 [H, W, 3] as `read_image`, alpha uint8 [H, W] or None when the file has none)."""
    import cv2

    header, image = _decode_checked(path, what, cv2.IMREAD_COLOR, max_pixels)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if not header.has_alpha:
        return rgb, None
    raw = _decode(path, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] not in (2, 4):
        return rgb, None
    alpha = raw[..., -1]
    if alpha.dtype == np.uint16:
        alpha = (alpha >> 8).astype(np.uint8)  # as IMREAD_COLOR scales 16-bit colour
    elif alpha.dtype != np.uint8:
        return rgb, None
    if alpha.shape != rgb.shape[:2]:  # an EXIF orientation turned the colour but not IMREAD_UNCHANGED's alpha
        log.warning("%s: alpha channel dropped (its orientation differs from the colour image's)", path)
        return rgb, None
    return rgb, np.ascontiguousarray(alpha)


def read_mask(path, what="mask", max_pixels=MAX_IMAGE_PIXELS):
    """A mask image file -> uint8 [H, W] (grayscale; the caller decides what nonzero means)."""
    import cv2

    _, image = _decode_checked(path, what, cv2.IMREAD_GRAYSCALE, max_pixels)
    return image


# ---------------------------------------------------------------------------------------------------------------
# Writing


def check_output_extension(path, what="output"):
    """Raises DataError unless `path` ends in one of IMAGE_EXTENSIONS (the format follows the extension)."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        shown = f"'{Path(path).suffix}'" if suffix else "no extension"
        raise DataError(
            f"{what} {path}: {shown} is not an image format this library writes; use one of "
            f"{', '.join(IMAGE_EXTENSIONS)}"
        )
    return suffix


def write_image(path, image, alpha=None, what="output", params=()):
    """Writes an RGB uint8 [H, W, 3] (or grayscale [H, W] / [H, W, 1]) image; the format follows the extension.

    Args:
      alpha: optional uint8 [H, W] alpha channel, written for ALPHA_EXTENSIONS and dropped (logged) for the others.
      what: how to name the file in errors (e.g. "--out"). params: `cv2.imwrite` parameters (e.g. JPEG quality).
    Returns:
      the Path written. The parent folder is created; the file is replaced atomically.
    Raises:
      DataError: unsupported extension, the folder cannot be made or written, or encoding failed.
      ValueError: `image` is not uint8 [H, W, 3] / [H, W] / [H, W, 1] (a bug of the caller).
    """
    import cv2

    path = Path(path)
    suffix = check_output_extension(path, what)
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"write_image expects uint8 [H, W, 3] or [H, W], got {image.dtype} {image.shape}")
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[2] == 3 else image
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.dtype != np.uint8 or alpha.shape != image.shape[:2]:
            raise ValueError(f"alpha must be uint8 {image.shape[:2]}, got {alpha.dtype} {alpha.shape}")
        if suffix in ALPHA_EXTENSIONS:
            if pixels.ndim == 2 or pixels.shape[2] == 1:
                pixels = cv2.cvtColor(pixels.reshape(pixels.shape[:2]), cv2.COLOR_GRAY2BGR)
            pixels = np.dstack([pixels, alpha])
        else:
            log.warning(
                "%s: %s files have no alpha channel; the transparency is dropped (write a .png to keep it)",
                path,
                suffix,
            )
    try:
        ok, data = cv2.imencode(suffix, np.ascontiguousarray(pixels), list(params))
    except cv2.error:
        ok = False
    if not ok:
        raise DataError(f"cannot write {what} {path}: OpenCV cannot encode this image as {suffix}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        reason = err.strerror or str(err)
        if isinstance(err, (FileExistsError, NotADirectoryError)):
            reason = "a file stands where a folder must be"
        elif isinstance(err, IsADirectoryError) or path.is_dir():
            reason = "it is a folder"
        raise DataError(f"cannot write {what} {path}: {reason}") from None
    return path
