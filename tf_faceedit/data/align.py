"""Alignment of the faces of arbitrary photos to the CelebA framing, and paste-back (OpenCV).

This is the library behind `python -m tf_faceedit.edit --image photo.jpg`: find the faces of a photo, warp each one
into exactly the view the training pipeline gives the model, and put the edited faces back into the photo.

Conventions:
  * Images are RGB uint8 numpy arrays [H, W, 3] (`tf_faceedit.images.read_image` converts whatever is on disk).
  * Coordinates are (x, y) in pixels with pixel centres at integer positions (pixel (0, 0) covers [-0.5, 0.5]^2),
    the convention of `cv2.warpAffine`.
  * "Left eye" is the eye on the image's left (the subject's right eye) of an upright face.
  * A transform is a float64 2x3 affine matrix mapping photo pixel coordinates to aligned-face pixel coordinates,
    so `cv2.warpAffine(photo, transform, (S, S))` is the aligned face; it is a similarity (rotation, uniform scale,
    translation).

Framing. The model is trained on CelebA's aligned 178x218 images after `celeba.decode_and_resize`: a centred square
of side round(min(h, w) * crop_fraction) (top = (218 - side) // 2, left = (178 - side) // 2), resized to S x S.
`align_face` maps the two eye centres of a photo onto the eye positions of that view (`canonical_eyes`), or fits 5
landmarks to theirs (`canonical_landmarks`), so an aligned photo face and a training image are framed alike.

Detection is `tf_faceedit.data.detectors` (which faces, where their eyes and landmarks are). Faces with 5 landmarks
(`MtcnnDetector`) are aligned by a weighted least-squares similarity fit of the 5 points to `canonical_landmarks`, as
CelebA's own aligned crops were made from 5 landmarks; the others (Haar, YuNet) by their two eyes. `align_faces` and
`edit_photo` run a detector (`detectors.detect_faces`, default `detectors.default_detector()`) and align every face.

Paste-back. `paste_back` warps the edited face back with the inverse transform and blends it with a mask that is 1
inside the face square and falls smoothly to exactly 0 at its border (`feather`): pixels outside the square are
returned bit-for-bit unchanged. With `original_face` (the default of every caller: `edit_photo(keep_detail=True)`
for photos, `paste_back_resized` for `tf_faceedit.load(...).edit` of whole images) only the change the edit made
is warped back and added, so detail the model cannot draw at its size survives and an identity edit returns the
photo exactly. This is the one paste-back rule of the package.
"""

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np

from tf_faceedit import images
from tf_faceedit.data import detectors
from tf_faceedit.errors import DataError

# Eye centres in the 178 x 218 CelebA aligned frame, (x, y) pixel-centre coordinates, image-left eye first.
# Measured on /work/shared/data/celeba-100-178x218 (the first 100 CelebA aligned images): frontal-face Haar cascade,
# then the eye cascade in the upper part of the face box, keeping the largest detection on each side; 73 of the 100
# images gave a pair. Median eye-box centres: (67.5, 111.5) and (107.5, 111.5) (20%-trimmed means (67.6, 111.5),
# (107.6, 111.7); standard deviations about 2 px). This agrees with CelebA's alignment convention (eyes on row ~112 of
# 218, at x ~69 and ~108, 40 px apart).
CELEBA_SIZE = (178, 218)  # width, height
CELEBA_LEFT_EYE = (67.5, 111.5)
CELEBA_RIGHT_EYE = (107.5, 111.5)

# The 5 MTCNN landmarks in the same 178 x 218 frame, (x, y) pixel-centre coordinates, in `Face.landmarks` order
# (`detectors.Face`): image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
# Measured on the same 100 images with `detectors.MtcnnDetector` (mtcnn 1.0.0, one face found on each of the 100; the
# most confident box): per-point medians, by `python benchmarks/alignment_accuracy.py --measure_canonical`. Standard
# deviations over the images (x, y): eyes (1.9, 1.3) and (1.7, 1.6) px, nose (6.2, 4.6), mouth corners (3.2, 2.8) and
# (3.4, 2.5): the eyes are where CelebA's alignment put them, the nose and mouth move with head pose and expression.
CELEBA_LANDMARKS = ((68.97, 111.47), (107.89, 111.47), (88.28, 135.58), (71.00, 151.94), (105.23, 151.81))
# Weights of the 5 points in the similarity fit: the inverse of each point's measured variance (x plus y, above),
# scaled so the left eye weighs 1. On the 100 aligned images (already in the CelebA framing, so the ideal fit is the
# identity) this puts the canonical eye points a median 1.3 px (90th percentile 2.4 px) from where they belong, against
# 2.1 (3.8) px for an unweighted fit and 1.7 (3.3) px for the two eyes alone, with a median roll of 0.6 degrees.
LANDMARK_WEIGHTS = (1.0, 0.93, 0.085, 0.29, 0.29)

# Out-of-image pixels of an aligned face are filled by reflection (cv2.BORDER_REFLECT_101): a face near the photo's
# edge then gets plausible skin/background instead of a black wedge, which the model never saw in training. Those
# pixels map outside the photo, so paste-back never writes them.
BORDER_MODE = cv2.BORDER_REFLECT_101


@dataclasses.dataclass(frozen=True)
class AlignedFace:
    """A face of a photo warped to the training framing: `image` uint8 [S, S, 3], `transform` 2x3 photo -> image."""

    face: detectors.Face
    image: np.ndarray
    transform: np.ndarray


# ---------------------------------------------------------------------------------------------------- image files

# Reading and writing image files (header check, size guard, alpha) is `tf_faceedit.images`.


def list_images(path):
    """The image files of `path`: [path] for a file, else the sorted image files directly inside the folder.

    Raises:
      DataError: `path` does not exist, or is a folder without images.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in images.IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"folder {path} has no images ({', '.join(images.IMAGE_EXTENSIONS)})")
    return files


# ------------------------------------------------------------------------------------------------------ geometry


def canonical_eyes(output_size, crop_fraction=1.0):
    """Eye centres ((xl, yl), (xr, yr)) in the S x S training view of a CelebA aligned image.

    Follows `celeba.decode_and_resize`: centre square of side round(min(178, 218) * crop_fraction), then a resize to
    S x S (half-pixel centres: u_out = (u_in - offset + 0.5) * S / side - 0.5).
    """
    return tuple(_celeba_to_view((CELEBA_LEFT_EYE, CELEBA_RIGHT_EYE), output_size, crop_fraction))


def canonical_landmarks(output_size, crop_fraction=1.0):
    """The 5 `CELEBA_LANDMARKS` in the S x S training view (as `canonical_eyes`), a tuple of 5 (x, y)."""
    return tuple(_celeba_to_view(CELEBA_LANDMARKS, output_size, crop_fraction))


def _celeba_to_view(points, output_size, crop_fraction):
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    width, height = CELEBA_SIZE
    short = min(width, height)
    side = min(max(int(math.floor(short * crop_fraction + 0.5)), 1), short)
    top, left = (height - side) // 2, (width - side) // 2
    scale = float(output_size) / side
    return [((x - left + 0.5) * scale - 0.5, (y - top + 0.5) * scale - 0.5) for x, y in points]


def similarity_fit(src, dst, weights=None):
    """The 2x3 similarity minimising sum_i w_i |M src_i - dst_i|^2 (weighted Umeyama / Procrustes, no reflection).

    Args:
      src, dst: [N, 2] points, N >= 2. weights: [N] non-negative, default all 1.
    Exact (up to rounding) when `dst` is a similarity image of `src`.
    """
    src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"similarity_fit needs matching [N >= 2, 2] points, got {src.shape} and {dst.shape}")
    weights = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if weights.shape != (len(src),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"similarity_fit weights must be {len(src)} non-negative numbers, got {weights}")
    weights = weights / weights.sum()
    src_mean, dst_mean = weights @ src, weights @ dst
    zs = (src - src_mean) @ [1.0, 1j]
    zd = (dst - dst_mean) @ [1.0, 1j]
    spread = float(weights @ np.abs(zs) ** 2)
    if spread < 1e-12:
        raise ValueError(f"the landmarks coincide ({src[0].tolist()}); cannot align")
    # Complex-number form: z -> a z + b, a the weighted least-squares ratio.
    a = complex(weights @ (np.conj(zs) * zd)) / spread
    matrix = np.array([[a.real, -a.imag, 0.0], [a.imag, a.real, 0.0]])
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def similarity_from_points(src, dst):
    """The 2x3 similarity (rotation, uniform scale, translation) mapping the two points `src` exactly onto `dst`."""
    (p1, p2), (q1, q2) = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ds, dd = p2 - p1, q2 - q1
    norm = float(np.hypot(*ds))
    if norm < 1e-6:
        raise ValueError(f"the two eyes coincide ({p1.tolist()}); cannot align")
    # Complex-number form: z -> a z + b with a = dd / ds.
    a = complex(*dd) / complex(*ds)
    matrix = np.array([[a.real, -a.imag, 0.0], [a.imag, a.real, 0.0]])
    matrix[:, 2] = q1 - matrix[:, :2] @ p1
    return matrix


def transform_rotation_degrees(transform):
    """Rotation of a similarity transform in degrees (positive: counter-clockwise on screen, y pointing down)."""
    return -math.degrees(math.atan2(transform[1, 0], transform[0, 0]))


def transform_scale(transform):
    return float(math.hypot(transform[0, 0], transform[1, 0]))


def invert_transform(transform):
    return cv2.invertAffineTransform(np.asarray(transform, np.float64))


def apply_transform(transform, points):
    """Maps points [..., 2] with a 2x3 affine transform."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(transform)[:, :2].T + np.asarray(transform)[:, 2]


# ----------------------------------------------------------------------------------------------------- alignment


def face_transform(eyes, output_size, crop_fraction=1.0, landmarks=None):
    """The 2x3 photo -> aligned-face similarity of `align_face` (arguments as there)."""
    if landmarks is not None:
        return similarity_fit(landmarks, canonical_landmarks(output_size, crop_fraction), LANDMARK_WEIGHTS)
    return similarity_from_points(eyes, canonical_eyes(output_size, crop_fraction))


def align_face(image, eyes, output_size, crop_fraction=1.0, landmarks=None):
    """Warps the face with eye centres `eyes` (or 5 `landmarks`) to the training framing.

    Args:
      image: RGB uint8 [H, W, 3] photo.
      eyes: ((x, y) image-left eye, (x, y) image-right eye) in photo pixels, e.g. `detectors.Face.eyes`.
      output_size: S, the model's resolution.
      crop_fraction: the `data.crop_fraction` the model was trained with.
      landmarks: optional 5 points in `detectors.Face.landmarks` order; when given they decide the alignment instead
        of `eyes`.

    Returns:
      (aligned uint8 [S, S, 3], transform float64 2x3 photo -> aligned pixel coordinates). The eyes land on
      `canonical_eyes(S, crop_fraction)`; 5 landmarks land as near `canonical_landmarks(S, crop_fraction)` as a
      similarity allows (weighted least squares, `LANDMARK_WEIGHTS`). A face shrunk by more than 1.25x is first
      area-downsampled (like the pipeline's antialiased resize) so the model sees no aliasing; pixels outside the
      photo are filled by reflection.
    """
    image = images.check_rgb(image)
    size = int(output_size)
    if size < 1:
        raise ValueError(f"output_size must be >= 1, got {output_size}")
    transform = face_transform(eyes, size, crop_fraction, landmarks)
    return _warp_to_face(image, transform, size), transform


def _warp_to_face(image, transform, size):
    """cv2.warpAffine(image, transform, (size, size)) with reflection, reading only the face's region of interest and
    area-downsampling it first when the transform shrinks it."""
    height, width = image.shape[:2]
    scale = transform_scale(transform)
    inverse = invert_transform(transform)
    corners = apply_transform(inverse, [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    margin = 2.0 + 2.0 / min(scale, 1.0)
    x0 = int(max(math.floor(corners[:, 0].min() - margin), 0))
    y0 = int(max(math.floor(corners[:, 1].min() - margin), 0))
    x1 = int(min(math.ceil(corners[:, 0].max() + margin) + 1, width))
    y1 = int(min(math.ceil(corners[:, 1].max() + margin) + 1, height))
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face square lies outside the photo: warp the whole photo
        x0, y0, x1, y1 = 0, 0, width, height
    roi = image[y0:y1, x0:x1]
    matrix = transform.copy()
    matrix[:, 2] = transform[:, :2] @ [x0, y0] + transform[:, 2]  # roi pixel -> face pixel
    if scale < 0.8:
        roi_h, roi_w = roi.shape[:2]
        new_w, new_h = max(int(round(roi_w * scale)), 1), max(int(round(roi_h * scale)), 1)
        roi = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
        sx, sy = new_w / roi_w, new_h / roi_h
        # A pixel s of the small image sits at (s + 0.5) / sx - 0.5 in the roi.
        offset = matrix[:, :2] @ [0.5 / sx - 0.5, 0.5 / sy - 0.5]
        matrix = np.concatenate(
            [matrix[:, :2] @ np.diag([1.0 / sx, 1.0 / sy]), (matrix[:, 2] + offset)[:, None]], axis=1
        )
    return cv2.warpAffine(roi, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDER_MODE)


def align_mask(mask, transform, output_size):
    """Warps a photo-sized mask (nonzero = hole) into the aligned frame: float32 [S, S, 1] in {0, 1} (nearest)."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    mask = (mask > 0).astype(np.uint8)
    out = cv2.warpAffine(
        mask,
        np.asarray(transform, np.float64),
        (int(output_size), int(output_size)),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return out.astype(np.float32)[..., None]


def feather_mask(output_size, feather=0.1):
    """Blend weights float32 [S, S]: 1 inside, a smoothstep ramp `feather * S` pixels wide at the border, and exactly 0
    on the outermost pixel ring, so that the inverse warp of the mask is 0 outside the face square."""
    size = int(output_size)
    ramp = max(float(feather) * size, 0.5)  # 0.5: a hard edge, every pixel but the outermost ring at 1
    u = np.arange(size, dtype=np.float64)
    dist = np.minimum(u + 0.5, size - 0.5 - u) - 1.0  # 0 on the outermost ring's centre
    t = np.clip(dist / ramp, 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)
    return np.minimum(t[:, None], t[None, :]).astype(np.float32)


# The change an edit makes is warped back to the photo bicubic: a face in a photo is often 3x the model's size, and
# bilinear upsampling spreads a 1-pixel stroke (a glasses frame at 64^2) into a soft band. On 100 CelebA test photos,
# SaGAN's added glasses were read as glasses on 0.925 (bilinear), 0.946 (bicubic), 0.957 (Lanczos); Lanczos' wider
# support rings (+-1 level) farther from the change (10 px at 2.5x), so a completion would touch more of the photo.
CHANGE_INTERPOLATION = cv2.INTER_CUBIC


def paste_back(photo, edited_face, transform, feather=0.1, original_face=None):
    """Puts an edited aligned face back into the photo.

    Args:
      photo: RGB uint8 [H, W, 3], the photo `transform` was computed on.
      edited_face: RGB uint8 [S, S, 3], the edited aligned face.
      transform: 2x3 photo -> face transform from `align_face`.
      feather: width of the blend ramp at the border of the face square, as a fraction of S (0: a hard edge).
        None: no blend mask, every pixel of the photo takes the edit (the face square is the whole photo, as for an
        image resized whole to S x S: `whole_image_transform`, `paste_back_resized`).
      original_face: optional, the aligned face before editing. Then only the change `edited - original` is warped back
        (bicubic, `CHANGE_INTERPOLATION`) and added, so the photo keeps its full-resolution detail wherever the edit
        changed nothing (an identity edit returns the photo exactly). Without it the face square is replaced by the
        bilinearly upsampled edit (an identity edit returns the photo up to resampling error).

    Returns:
      RGB uint8 [H, W, 3]. Pixels outside the face square (where the inverse-warped mask is 0) equal `photo` exactly.
    """
    photo = images.check_rgb(photo, "photo")
    edited_face = images.check_rgb(edited_face, "edited_face")
    size = edited_face.shape[0]
    if edited_face.shape[1] != size:
        raise ValueError(f"edited_face must be square, got {edited_face.shape}")
    height, width = photo.shape[:2]
    transform = np.asarray(transform, np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if feather is None:
        mask = np.ones((height, width), np.float32)
    else:
        mask = cv2.warpAffine(
            feather_mask(size, feather),
            transform,
            (width, height),
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    rows, cols = np.nonzero(mask > 0)
    out = photo.copy()
    if rows.size == 0:
        return out
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    # Warp only the bounding box of the mask: photo pixel (x, y) of the box is box pixel (x - x0, y - y0).
    box_transform = transform.copy()
    box_transform[:, 2] = transform[:, :2] @ [x0, y0] + transform[:, 2]
    box = (x1 - x0, y1 - y0)
    if original_face is None:
        content = edited_face.astype(np.float32)
    else:
        original_face = images.check_rgb(original_face, "original_face")
        if original_face.shape != edited_face.shape:
            raise ValueError(f"original_face {original_face.shape} and edited_face {edited_face.shape} differ")
        content = edited_face.astype(np.float32) - original_face.astype(np.float32)
    interpolation = cv2.INTER_LINEAR if original_face is None else CHANGE_INTERPOLATION
    warped = cv2.warpAffine(
        content, box_transform, box, flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    weight = mask[y0:y1, x0:x1, None]
    region = photo[y0:y1, x0:x1].astype(np.float32)
    if original_face is None:
        blended = region + weight * (warped - region)
    else:
        blended = region + weight * warped
    blended = np.where(weight > 0, blended, region)  # keep zero-weight pixels bit-exact
    out[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def whole_image_transform(height, width, size):
    """The photo -> face transform of an image resized whole (stretched) to size x size, with the pixel-centre
    convention of `tf.image.resize` and `cv2.resize`: photo pixel x sits at (x + 0.5) * size / width - 0.5."""
    sx, sy = size / float(width), size / float(height)
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]], np.float64)


def paste_back_resized(images, original, edited):
    """`paste_back` for images the model saw whole (resized to S x S): each image plus the change the edit made,
    `edited - original` at S x S, warped back to its size (bilinear). What `tf_faceedit.load(...).edit` returns by
    default for an image of another size than S; the same rule as `edit_photo(keep_detail=True)`.

    Args:
      images: uint8 [N, H, W, 3], the full-resolution inputs.
      original: uint8 [N, S, S, 3], the inputs as the model saw them (`processing.resize_images`).
      edited: uint8 [N, S, S, 3], the model's output for them.
    Returns:
      uint8 [N, H, W, 3]: `images` exactly where the edit changed nothing (an identity edit returns them exactly).
    """
    images, original, edited = np.asarray(images), np.asarray(original), np.asarray(edited)
    if images.ndim != 4 or original.shape != edited.shape or len(original) != len(images):
        raise ValueError(
            f"images [N, H, W, 3] and original, edited [N, S, S, 3] must agree, got {images.shape}, "
            f"{original.shape}, {edited.shape}"
        )
    transform = whole_image_transform(images.shape[1], images.shape[2], original.shape[1])
    out = [
        paste_back(image, face, transform, None, original_face=before)
        for image, face, before in zip(images, edited, original)
    ]
    return np.stack(out) if out else images.copy()


# -------------------------------------------------------------------------------------------------------- photos


def align_faces(image, output_size, crop_fraction=1.0, detector=None, face_index=None, source="image"):
    """Detects and aligns the faces of a photo.

    Args:
      image: RGB uint8 [H, W, 3].
      output_size, crop_fraction: the model's `data.image_size` and `data.crop_fraction`.
      detector: see `detectors.detect_faces`.
      face_index: None for every face, else the index (0-based, left to right) of the one face to align.
      source: the photo's name for error messages (its path).

    Returns:
      list[AlignedFace], left to right.

    Raises:
      DataError: no face found in `source`, or `face_index` is out of range.
    """
    faces = detectors.detect_faces(image, detector)
    if not faces:
        raise DataError(f"no face found in {source}")
    if face_index is not None:
        if not 0 <= int(face_index) < len(faces):
            raise DataError(
                f"--face {face_index} is out of range: {len(faces)} face(s) found in {source} "
                f"(numbered 0 to {len(faces) - 1} from the left)"
            )
        faces = [faces[int(face_index)]]
    aligned = []
    for face in faces:
        crop, transform = align_face(image, face.eyes, output_size, crop_fraction, face.landmarks)
        aligned.append(AlignedFace(face=face, image=crop, transform=transform))
    return aligned


def edit_photo(
    image,
    edit_fn,
    output_size,
    crop_fraction=1.0,
    detector=None,
    face_index=None,
    mask=None,
    feather=0.1,
    keep_detail=True,
    source="image",
):
    """Detects, aligns, edits and pastes back every face (or face `face_index`) of a photo.

    Args:
      image: RGB uint8 [H, W, 3].
      edit_fn: called with the aligned faces uint8 [N, S, S, 3] (and, when `mask` is given, their masks float32
        [N, S, S, 1], 1 = hole); returns the edited faces uint8 [N, S, S, 3].
      mask: optional photo-sized mask (nonzero = region to complete), warped with each face.
      keep_detail: paste back only the change the edit made (see `paste_back(original_face=...)`); inside a
        completion's `mask` the completed face is pasted as is (the photo's content there is what is replaced).
      Other arguments: see `align_faces` and `paste_back`.

    Returns:
      (edited photo uint8 [H, W, 3], list[AlignedFace], edited faces uint8 [N, S, S, 3]).
    """
    image = images.check_rgb(image)
    aligned = align_faces(image, output_size, crop_fraction, detector, face_index, source)
    faces = np.stack([a.image for a in aligned])
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(
                f"the mask is {mask.shape[1]}x{mask.shape[0]} but {source} is {image.shape[1]}x{image.shape[0]}"
            )
        masks = np.stack([align_mask(mask, a.transform, output_size) for a in aligned])
        edited = edit_fn(faces, masks)
    else:
        edited = edit_fn(faces)
    edited = np.asarray(edited)
    if edited.shape != faces.shape or edited.dtype != np.uint8:
        raise ValueError(f"edit_fn must return uint8 {faces.shape}, got {edited.dtype} {edited.shape}")
    out = image
    hole = None if mask is None else (mask.reshape(mask.shape[:2]) > 0)[..., None]
    for a, face in zip(aligned, edited):
        pasted = paste_back(out, face, a.transform, feather, original_face=a.image if keep_detail else None)
        if keep_detail and hole is not None:
            # inside a completion's hole the photo's own content is what is being replaced: keep no detail of it
            pasted = np.where(hole, paste_back(out, face, a.transform, feather), pasted)
        out = pasted
    return out, aligned, edited
