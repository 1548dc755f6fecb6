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
    rows = rows if rows is not None else [f"{name} {1 if i % 2 else -1} {-1 if i % 3 else 1}"
                                          for i, name in enumerate(filenames)]
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
