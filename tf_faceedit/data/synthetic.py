"""Synthetic CelebA-format datasets of cartoon faces, for tests, smoke runs and demos without real data.

`make_synthetic_celeba(out_dir, ...)` writes a folder in the official CelebA layout:

  out_dir/images/000001.jpg ...    width x height images (default 178 x 218, the aligned CelebA size)
  out_dir/list_attr_celeba.txt     count line, the 40 official attribute names, one `name v1 ... v40` row per image
                                   with -1/1 values, formatted like the official file
  out_dir/list_eval_partition.txt  `name 0|1|2` (train / val / test); val and test are the last images

The faces are framed like the CelebA aligned crop: inside the centred min(width, height) square, the face is centred
horizontally and the eyes sit at about 45% of the square's height. These attributes are drawn visibly and drawn
independently of each other with probability 1/2 each:

  Eyeglasses           dark frames around both eyes, with a bridge and arms
  Smiling              upward-curved mouth (flat line otherwise)
  Mouth_Slightly_Open  dark open mouth
  Male                 short hair, thicker eyebrows, darker jaw; a beard shadow on 3/4 of the men (No_Beard = -1)
  Blond_Hair           blond hair (otherwise black, brown or gray, setting Black_Hair / Brown_Hair / Gray_Hair)
  Bangs                a fringe of hair over the forehead
  Pale_Skin            pale skin tone (otherwise a tone from light to dark)

Derived attributes: No_Beard, Black_Hair, Brown_Hair, Gray_Hair, Young (-1 for gray hair), Wearing_Lipstick (red
lips, some women). All other attributes are -1. One seed gives the same files; image i depends only on (seed, i).

CLI: `python -m tf_faceedit.data.synthetic --out DIR --num_images N --width W --height H` prints the folder.
"""

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from tf_faceedit.data.celeba import write_celeba_attributes, write_partition
from tf_faceedit.errors import DataError, FaceEditError, suggest

ATTRIBUTE_NAMES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]

# The attributes drawn independently with probability 1/2 each.
DRAWN_ATTRIBUTES = ["Eyeglasses", "Smiling", "Mouth_Slightly_Open", "Male", "Blond_Hair", "Bangs", "Pale_Skin"]

IMAGE_FORMATS = ("jpg", "png", "bmp")

# BGR colours.
_HAIR_COLORS = {
    "Black_Hair": (28, 26, 30),
    "Brown_Hair": (40, 72, 115),
    "Gray_Hair": (170, 172, 175),
    "Blond_Hair": (95, 185, 228),
}
_PALE_SKIN = np.array([208, 222, 246], np.float32)
_LIGHT_SKIN = np.array([150, 185, 228], np.float32)
_DARK_SKIN = np.array([55, 85, 135], np.float32)
_FRAME_COLOR = (18, 18, 22)

# Drawing is done at >= this square side and then downscaled (INTER_AREA), so small images stay smooth.
_RENDER_SIDE = 128


def _draw_attributes(rng):
    """Draws the attribute dict (name -> bool) of one face."""
    attrs = {name: bool(rng.random() < 0.5) for name in DRAWN_ATTRIBUTES}
    attrs["No_Beard"] = not (attrs["Male"] and rng.random() < 0.75)
    if not attrs["Blond_Hair"]:
        other = rng.choice(["Black_Hair", "Brown_Hair", "Gray_Hair"], p=[0.45, 0.4, 0.15])
        attrs[str(other)] = True
    attrs["Young"] = not attrs.get("Gray_Hair", False) and rng.random() < 0.85
    attrs["Wearing_Lipstick"] = not attrs["Male"] and rng.random() < 0.5
    return attrs


def _hair_color(attrs, rng):
    for name, color in _HAIR_COLORS.items():
        if attrs.get(name):
            return tuple(float(np.clip(c + rng.normal(0, 8), 0, 255)) for c in color)
    raise AssertionError("every face has one hair colour")


def _skin_color(attrs, rng):
    if attrs["Pale_Skin"]:
        base = _PALE_SKIN
    else:
        base = _LIGHT_SKIN + rng.uniform(0.0, 1.0) * (_DARK_SKIN - _LIGHT_SKIN)
    return np.clip(base + rng.normal(0, 5, 3), 0, 255)


def _render_face(rng, attrs, width, height):
    """Renders one face as a uint8 BGR [height, width, 3] image."""
    scale = max(1, min(4, math.ceil(_RENDER_SIDE / min(width, height))))
    w, h = width * scale, height * scale
    s = float(min(w, h))  # side of the centred square crop region
    top = (h - s) / 2.0

    def px(x, y):
        return int(round(x)), int(round(y))

    def size(v):
        return max(1, int(round(v)))

    def line_width(v):
        return max(1, int(round(v * s)))

    # 1. Background: a linear gradient between two random colours in a random direction.
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / w - 0.5) * np.cos(angle) + (yy / h - 0.5) * np.sin(angle) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    image = (c0 * (1 - t) + c1 * t).astype(np.uint8)

    # Geometry of this face, in pixels of the render canvas.
    face_scale = rng.uniform(0.92, 1.08) * (1.04 if attrs["Male"] else 1.0)
    cx = w / 2.0 + rng.uniform(-0.02, 0.02) * s
    eye_y = top + rng.uniform(0.44, 0.47) * s
    face_a = 0.22 * s * face_scale  # half width
    face_b = 0.30 * s * face_scale  # half height
    face_cy = eye_y + 0.07 * s * face_scale
    face_top = face_cy - face_b
    skin = _skin_color(attrs, rng)
    skin_t = tuple(float(c) for c in skin)
    shade = tuple(float(c) for c in skin * 0.78)
    hair = _hair_color(attrs, rng)

    # 2. Clothes and neck.
    clothes = tuple(float(c) for c in rng.uniform(20, 235, 3))
    cv2.ellipse(image, px(cx, top + 1.08 * s), (size(0.42 * s), size(0.22 * s)), 0, 0, 360, clothes, -1, cv2.LINE_AA)
    cv2.rectangle(image, px(cx - 0.09 * s, face_cy), px(cx + 0.09 * s, top + 0.93 * s), shade, -1, cv2.LINE_AA)

    # 3. Long hair behind the head (not for men).
    if not attrs["Male"]:
        cv2.ellipse(
            image,
            px(cx, face_cy - 0.02 * s),
            (size(face_a + 0.09 * s), size(face_b + 0.07 * s)),
            0,
            0,
            360,
            hair,
            -1,
            cv2.LINE_AA,
        )
        cv2.rectangle(
            image,
            px(cx - face_a - 0.09 * s, face_cy),
            px(cx + face_a + 0.09 * s, top + 0.92 * s),
            hair,
            -1,
            cv2.LINE_AA,
        )
        cv2.rectangle(image, px(cx - 0.09 * s, face_cy), px(cx + 0.09 * s, top + 0.93 * s), shade, -1, cv2.LINE_AA)

    # 4. Face and ears.
    for side in (-1, 1):
        cv2.ellipse(
            image,
            px(cx + side * face_a * 0.97, eye_y + 0.04 * s),
            (size(0.03 * s), size(0.055 * s)),
            0,
            0,
            360,
            shade,
            -1,
            cv2.LINE_AA,
        )
    cv2.ellipse(image, px(cx, face_cy), (size(face_a), size(face_b)), 0, 0, 360, skin_t, -1, cv2.LINE_AA)

    # 5. Male: darker jaw, and a beard shadow unless No_Beard.
    if attrs["Male"]:
        jaw = skin * (0.55 if not attrs["No_Beard"] else 0.88)
        overlay = image.copy()
        cv2.ellipse(
            overlay,
            px(cx, face_cy + 0.06 * s),
            (size(face_a * 0.98), size(face_b - 0.06 * s)),
            0,
            10,
            170,
            tuple(float(c) for c in jaw),
            -1,
            cv2.LINE_AA,
        )
        image = cv2.addWeighted(overlay, 0.7, image, 0.3, 0)

    # 6. Hair on top of the head (a cap), then bangs over the forehead.
    cap_b = 0.16 * s if attrs["Male"] else 0.18 * s
    cv2.ellipse(
        image, px(cx, face_top + 0.085 * s), (size(face_a * 1.06), size(cap_b)), 0, 180, 360, hair, -1, cv2.LINE_AA
    )
    if attrs["Bangs"]:
        fringe_y = eye_y - 0.085 * s
        points = [(cx - face_a * 1.02, face_top + 0.085 * s)]
        teeth = 7
        for k in range(teeth + 1):
            x = cx - face_a * 0.95 + 2 * face_a * 0.95 * k / teeth
            y = fringe_y - (0.0 if k % 2 else 0.025 * s) - 0.04 * s * abs(k / teeth - 0.5)
            points.append((x, y))
        points.append((cx + face_a * 1.02, face_top + 0.085 * s))
        points.append((cx, face_top - 0.02 * s))
        cv2.fillPoly(image, [np.round(np.array(points)).astype(np.int32)], hair, cv2.LINE_AA)

    # 7. Eyes and eyebrows.
    eye_dx = 0.09 * s * face_scale
    eye_a, eye_b = 0.042 * s, 0.02 * s
    brow_color = tuple(float(c) * 0.6 for c in hair) if not attrs.get("Gray_Hair") else (90, 90, 95)
    brow_width = line_width(0.022 if attrs["Male"] else 0.013)
    iris = tuple(float(c) for c in rng.uniform(20, 110, 3))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(image, px(ex, eye_y), (size(eye_a), size(eye_b)), 0, 0, 360, (240, 240, 240), -1, cv2.LINE_AA)
        cv2.circle(image, px(ex, eye_y), size(0.016 * s), iris, -1, cv2.LINE_AA)
        cv2.circle(image, px(ex, eye_y), size(0.007 * s), (10, 10, 10), -1, cv2.LINE_AA)
        brow_y = eye_y - 0.055 * s
        cv2.line(
            image,
            px(ex - side * 0.04 * s, brow_y),
            px(ex + side * 0.05 * s, brow_y + 0.008 * s),
            brow_color,
            brow_width,
            cv2.LINE_AA,
        )

    # 8. Nose.
    nose_color = tuple(float(c) for c in skin * 0.7)
    nose_tip = eye_y + 0.13 * s
    cv2.line(image, px(cx, eye_y + 0.03 * s), px(cx - 0.015 * s, nose_tip), nose_color, line_width(0.01), cv2.LINE_AA)
    cv2.ellipse(
        image, px(cx, nose_tip), (size(0.03 * s), size(0.012 * s)), 0, 0, 180, nose_color, line_width(0.01), cv2.LINE_AA
    )

    # 9. Mouth: smiling (upward curve) or flat; open (dark) or closed.
    mouth_y = eye_y + 0.21 * s
    mouth_w = 0.075 * s
    lip_color = (60, 50, 190) if attrs["Wearing_Lipstick"] else tuple(float(c) for c in skin * 0.6 * [1, 0.9, 1.1])
    dark = (35, 25, 60)
    if attrs["Mouth_Slightly_Open"]:
        if attrs["Smiling"]:
            cv2.ellipse(
                image, px(cx, mouth_y - 0.01 * s), (size(mouth_w), size(0.045 * s)), 0, 0, 180, dark, -1, cv2.LINE_AA
            )
            cv2.ellipse(
                image,
                px(cx, mouth_y - 0.01 * s),
                (size(mouth_w * 0.8), size(0.015 * s)),
                0,
                0,
                180,
                (235, 235, 235),
                -1,
                cv2.LINE_AA,
            )
            cv2.ellipse(
                image,
                px(cx, mouth_y - 0.01 * s),
                (size(mouth_w), size(0.045 * s)),
                0,
                0,
                180,
                lip_color,
                line_width(0.01),
                cv2.LINE_AA,
            )
        else:
            cv2.ellipse(
                image, px(cx, mouth_y), (size(mouth_w * 0.7), size(0.028 * s)), 0, 0, 360, dark, -1, cv2.LINE_AA
            )
            cv2.ellipse(
                image,
                px(cx, mouth_y),
                (size(mouth_w * 0.7), size(0.028 * s)),
                0,
                0,
                360,
                lip_color,
                line_width(0.01),
                cv2.LINE_AA,
            )
    else:
        if attrs["Smiling"]:
            cv2.ellipse(
                image,
                px(cx, mouth_y - 0.025 * s),
                (size(mouth_w), size(0.035 * s)),
                0,
                15,
                165,
                lip_color,
                line_width(0.016),
                cv2.LINE_AA,
            )
        else:
            cv2.line(
                image,
                px(cx - mouth_w * 0.85, mouth_y),
                px(cx + mouth_w * 0.85, mouth_y),
                lip_color,
                line_width(0.016),
                cv2.LINE_AA,
            )

    # 10. Eyeglasses: frames around both eyes, a bridge and arms to the ears.
    if attrs["Eyeglasses"]:
        thickness = line_width(0.014)
        frame_a, frame_b = 0.068 * s, 0.048 * s
        for side in (-1, 1):
            ex = cx + side * eye_dx
            cv2.ellipse(
                image,
                px(ex, eye_y + 0.005 * s),
                (size(frame_a), size(frame_b)),
                0,
                0,
                360,
                _FRAME_COLOR,
                thickness,
                cv2.LINE_AA,
            )
            cv2.line(
                image,
                px(ex + side * frame_a, eye_y - 0.01 * s),
                px(cx + side * face_a * 1.02, eye_y - 0.015 * s),
                _FRAME_COLOR,
                thickness,
                cv2.LINE_AA,
            )
        cv2.line(
            image,
            px(cx - eye_dx + frame_a, eye_y),
            px(cx + eye_dx - frame_a, eye_y),
            _FRAME_COLOR,
            thickness,
            cv2.LINE_AA,
        )

    # 11. Mild blur and sensor noise, then back to the requested size.
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=0.5 * scale + 0.3)
    if scale > 1:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    noise = rng.normal(0, rng.uniform(2.0, 5.0), image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def make_face(seed, index, width=178, height=218, attributes=None):
    """Returns (uint8 BGR image [height, width, 3], attribute dict name -> bool) of face `index` for `seed`.

    `attributes` (name -> bool) overrides the drawn attributes of this face, e.g. {"Eyeglasses": True}.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    attrs = _draw_attributes(rng)
    for name, value in (attributes or {}).items():
        if name not in DRAWN_ATTRIBUTES:
            raise DataError(
                f"attribute {name!r} cannot be set on synthetic faces; drawn ones: "
                f"{', '.join(DRAWN_ATTRIBUTES)}{suggest(name, DRAWN_ATTRIBUTES)}"
            )
        attrs[name] = bool(value)
    if attributes and "Male" in attributes:
        attrs["No_Beard"] = not attrs["Male"] or attrs["No_Beard"]
        attrs["Wearing_Lipstick"] = attrs["Wearing_Lipstick"] and not attrs["Male"]
    if attributes and "Blond_Hair" in attributes:
        for name in ("Black_Hair", "Brown_Hair", "Gray_Hair"):
            attrs.pop(name, None)
        if not attrs["Blond_Hair"]:
            attrs["Brown_Hair"] = True
    return _render_face(rng, attrs, width, height), attrs


def make_synthetic_celeba(
    out_dir, num_images=200, width=178, height=218, seed=0, val_fraction=0.1, test_fraction=0.1, image_format="jpg"
):
    """Writes a CelebA-format folder of `num_images` cartoon faces and returns its Path.

    Args:
      out_dir: folder to write (created; existing files of the same names are overwritten).
      num_images: number of images.
      width, height: image size in pixels (178 x 218 is the aligned CelebA size, 89 x 109 half of it).
      seed: one seed gives the same images and labels.
      val_fraction, test_fraction: fractions of images (the last ones) put in the val and test partitions.
      image_format: "jpg", "png" or "bmp".
    """
    if int(num_images) < 1:
        raise DataError(f"num_images must be >= 1, got {num_images}")
    if int(width) < 8 or int(height) < 8:
        raise DataError(f"width and height must be >= 8 pixels, got {width}x{height}")
    if image_format not in IMAGE_FORMATS:
        raise DataError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction and test_fraction must be in [0, 1) with a sum below 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"output path exists and is not a folder: {out_dir}")
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    num_images = int(num_images)
    digits = max(6, len(str(num_images)))
    n_test = int(round(num_images * test_fraction))
    n_val = int(round(num_images * val_fraction))
    n_train = num_images - n_val - n_test
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 95] if image_format == "jpg" else []

    filenames, rows, partition = [], [], {}
    for i in range(num_images):
        name = f"{i + 1:0{digits}d}.{image_format}"
        image, attrs = make_face(seed, i, width, height)
        if not cv2.imwrite(str(image_dir / name), image, params):
            raise DataError(f"could not write image {image_dir / name}")
        filenames.append(name)
        rows.append([1 if attrs.get(a) else -1 for a in ATTRIBUTE_NAMES])
        partition[name] = 0 if i < n_train else (1 if i < n_train + n_val else 2)
    write_celeba_attributes(out_dir / "list_attr_celeba.txt", ATTRIBUTE_NAMES, filenames, rows)
    write_partition(out_dir / "list_eval_partition.txt", partition)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a synthetic CelebA-format folder of cartoon faces.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--width", type=int, default=178)
    parser.add_argument("--height", type=int, default=218)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val_fraction", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.1)
    parser.add_argument("--image_format", default="jpg", choices=IMAGE_FORMATS)
    args = parser.parse_args(argv)
    try:
        path = make_synthetic_celeba(
            args.out,
            num_images=args.num_images,
            width=args.width,
            height=args.height,
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            image_format=args.image_format,
        )
    except FaceEditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
