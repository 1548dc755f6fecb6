"""Builds a corpus of hostile inputs for the tests (nothing binary is committed): broken and odd images, and
malformed attribute files.

    images = hostile_images(tmp_path / "imgs")          # name -> path of each odd image
    make_dataset_with(tmp_path / "ds", good=..., extra={"x.png": bytes}, attr_text=...)   # a CelebA-format folder
"""

import functools
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _face(seed=0, size=(54, 44)):
    rng = np.random.default_rng(seed)
    image = np.full(size + (3,), 180, np.uint8)
    cv2.ellipse(image, (size[1] // 2, size[0] // 2), (size[1] // 3, size[0] // 3), 0, 0, 360, (200, 160, 140), -1)
    return np.clip(image.astype(int) + rng.integers(-10, 10, image.shape), 0, 255).astype(np.uint8)


def encode(image, ext):
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@functools.lru_cache(maxsize=2)
def huge_png(width=20000, height=20000):
    """A real, valid 8-bit grayscale PNG declaring width x height pixels; all zero, so it compresses to ~0.4 MB."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte 0 + zero pixels, row by row (never 400 MB in memory)
    raw = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def hostile_image_bytes():
    """name -> bytes of each hostile image case."""
    face = _face()
    jpeg = encode(face, ".jpg")
    rgba = np.dstack([face, np.full(face.shape[:2], 128, np.uint8)])
    return {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "zero_byte.jpg": b"",
        "alpha.png": encode(rgba, ".png"),
        "gray.png": encode(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), ".png"),
        "sixteen_bit.png": encode(face.astype(np.uint16) * 257, ".png"),
        "one_pixel.png": encode(face[:1, :1], ".png"),
        "huge.png": huge_png(),
        "png_named.jpg": encode(face, ".png"),  # wrong extension
        "text_named.jpg": b"this is not an image\n",
        "visage_é_日本.jpg": jpeg,  # unicode file name
    }


# What the data pipeline must do with each case: "use" (decoded and trained on) or "skip" (counted and skipped).
PIPELINE_EXPECTATION = {
    "truncated.jpg": "any",  # libjpeg may decode a truncated JPEG (grey fill) or fail: either way no crash
    "zero_byte.jpg": "skip",
    "alpha.png": "use",
    "gray.png": "use",
    "sixteen_bit.png": "use",
    "one_pixel.png": "use",
    "huge.png": "skip",
    "png_named.jpg": "use",
    "text_named.jpg": "skip",
    "visage_é_日本.jpg": "use",
}


def hostile_images(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in hostile_image_bytes().items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths


ATTRIBUTES = ["Eyeglasses", "Smiling"]


def celeba_attr_text(filenames, rows=None, header=None, count=None):
    """list_attr_celeba.txt text for `filenames` (values alternate), optionally with custom rows/header/count."""
    header = header or " ".join(ATTRIBUTES)
    rows = (
        rows
        if rows is not None
        else [f"{name} {1 if i % 2 else -1} {-1 if i % 3 else 1}" for i, name in enumerate(filenames)]
    )
    return f"{len(rows) if count is None else count}\n{header}\n" + "\n".join(rows) + "\n"


def make_dataset_with(folder, num_good=12, extra=None, attr_text=None, csv_text=None):
    """A CelebA-format folder with `num_good` fine JPEG faces plus the `extra` {name: bytes} files (listed in the
    attribute file too). `attr_text` replaces list_attr_celeba.txt; `csv_text` writes attributes.csv instead.
    Returns the folder (no partition file: everything is train)."""
    folder = Path(folder)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(num_good):
        name = f"{i:06d}.jpg"
        (images / name).write_bytes(encode(_face(i), ".jpg"))
        names.append(name)
    for name, data in (extra or {}).items():
        (images / name).write_bytes(data)
        names.append(name)
    if csv_text is not None:
        (folder / "attributes.csv").write_bytes(csv_text.encode("utf-8") if isinstance(csv_text, str) else csv_text)
    else:
        text = attr_text if attr_text is not None else celeba_attr_text(names)
        (folder / "list_attr_celeba.txt").write_text(text, encoding="utf-8")
    return folder, names


# -- images that lie: headers that promise what the data does not hold --------------------------------------------


def jpeg_bomb(width=16000, height=16000, comment_bytes=70_000):
    """A JPEG of a small face whose frame header (SOF) is patched to declare width x height and comes after
    `comment_bytes` of COM segments: more than any fixed-size prefix scan reads (the old 64 KB). Decoding it would
    allocate width x height x 3 bytes (768 MB at 16000 x 16000)."""
    jpeg = encode(_face(), ".jpg")
    sof = jpeg.find(b"\xff\xc0")
    assert sof > 0
    patched = jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]
    segments, left = [], comment_bytes
    while left > 0:
        size = min(left, 65533)
        segments.append(b"\xff\xfe" + struct.pack(">H", size + 2) + b"c" * size)
        left -= size
    return patched[:2] + b"".join(segments) + patched[2:]


def undecodable_png(seed=0, size=(54, 44)):
    """A PNG with a valid signature and IHDR (size[1] x size[0]) whose image data is damaged: it passes every header
    scan, and no decoder (TensorFlow, OpenCV) can decode it."""
    png = encode(_face(seed, size), ".png")
    idat = png.find(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    garbage = bytes((i * 37 + seed) % 256 for i in range(length))
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + garbage) & 0xFFFFFFFF)  # a valid CRC: only the data is wrong
    return png[: idat + 4] + garbage + crc + png[idat + 8 + length :]


def rgba_photo(face_rgb, border=40, alpha_border=0):
    """An RGBA uint8 photo: `face_rgb` on a grey canvas with a transparent frame `border` px wide (alpha
    `alpha_border`) and a half-transparent band at the top; returns (rgb, alpha)."""
    height, width = face_rgb.shape[:2]
    rgb = np.full((height + 2 * border, width + 2 * border, 3), 128, np.uint8)
    rgb[border : border + height, border : border + width] = face_rgb
    alpha = np.full(rgb.shape[:2], alpha_border, np.uint8)
    alpha[border : border + height, border : border + width] = 255
    alpha[border : border + 10, border : border + width] = 100
    return rgb, alpha


def unreadable_image_bytes():
    """name -> bytes of files with an image extension that `images.read_image` must refuse with one line, without
    decoding them: bombs (a header declaring too many pixels) and liars (a valid header over damaged data)."""
    return {
        "bomb_after_comments.jpg": jpeg_bomb(),
        "bomb.png": huge_png(),
        "damaged_data.png": undecodable_png(),
        "text_named.jpg": b"this is not an image\n",
        "zero_byte.jpg": b"",
        "ppm_named.png": b"P6\n4 4\n255\n" + bytes(48),  # OpenCV would decode it; not an accepted format
    }


def detectable_face(folder, seed=0):
    """RGB uint8 178x218 drawn face that OpenCV's Haar cascade finds (from `make_synthetic_celeba` in `folder`)."""
    from tf_faceedit.data import detectors
    from tf_faceedit.data.synthetic import make_synthetic_celeba
    from tf_faceedit.images import read_image

    data = make_synthetic_celeba(Path(folder), num_images=8, width=178, height=218, seed=seed)
    detector = detectors.HaarDetector()
    for path in sorted((Path(data) / "images").iterdir()):
        face = read_image(path)
        if detectors.detect_faces(face, detector):
            return face
    raise AssertionError("the cascade found none of the drawn faces")


# -- damaged run folders: checkpoints cut short by a full disk, a half-finished copy or a bad sector ---------------


def _truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


def _weights(ckpt):
    """The generator's weights file of a checkpoint (another network's when it has no generator)."""
    path = Path(ckpt) / "generator.weights.h5"
    return path if path.exists() else sorted(Path(ckpt).glob("*.weights.h5"))[0]


# name -> how it damages a checkpoint folder (each leaves every other file as written)
CHECKPOINT_DAMAGE = {
    "truncated_weights": lambda ckpt: _truncate(_weights(ckpt)),
    "truncated_state": lambda ckpt: _truncate(Path(ckpt) / "state.json"),
    "emptied_optimizers": lambda ckpt: (Path(ckpt) / "optimizers.npz").write_bytes(b""),
    "flipped_byte": lambda ckpt: _flip_byte(_weights(ckpt)),
    "missing_state": lambda ckpt: (Path(ckpt) / "state.json").unlink(),
}


def _flip_byte(path, offset=-100):
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def damage_checkpoint(ckpt, kind):
    """Damages checkpoint folder `ckpt` as `CHECKPOINT_DAMAGE[kind]`; returns the folder."""
    CHECKPOINT_DAMAGE[kind](ckpt)
    return Path(ckpt)


def add_older_checkpoint(ckpt, step):
    """Copies checkpoint folder `ckpt` as `ckpt-<step>` beside it, with that step in its state.json and a fresh
    manifest: an intact older checkpoint to fall back to. Returns the copy."""
    import json
    import shutil

    from tf_faceedit.training.checkpoint import MANIFEST, write_manifest

    copy = Path(ckpt).parent / f"ckpt-{int(step):08d}"
    shutil.copytree(ckpt, copy)
    state = json.loads((copy / "state.json").read_text())
    (copy / "state.json").write_text(json.dumps({**state, "step": int(step)}))
    if (copy / MANIFEST).exists():
        write_manifest(copy)
    return copy
