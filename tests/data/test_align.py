"""Tests of tf_faceedit.data.align: eye-based alignment to the CelebA framing, paste-back, the photo pipeline over a
detector (detection itself: test_detectors.py) and errors. Everything runs on generated images."""

import math

import cv2
import numpy as np
import pytest

from tests.helpers import photo_background
from tf_faceedit.data import align, detectors
from tf_faceedit.errors import DataError, FaceEditError
from tf_faceedit.images import read_image, write_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _eye_photo(roll_degrees, eye_distance, height=240, width=220, radius=None):
    """A photo with a red dot (image-left eye) and a blue dot (image-right eye) rolled by `roll_degrees` (clockwise on
    screen, i.e. the right eye lower for positive values). Returns (photo, (left, right))."""
    photo = photo_background(height, width, seed=1)
    centre = np.array([width / 2.0 + 3.3, height / 2.0 - 7.7])
    direction = np.array([math.cos(math.radians(roll_degrees)), math.sin(math.radians(roll_degrees))])
    left, right = centre - direction * eye_distance / 2.0, centre + direction * eye_distance / 2.0
    radius = radius or max(eye_distance / 8.0, 2.5)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    for point, colour in ((left, RED), (right, BLUE)):
        cv2.circle(
            photo,
            tuple(int(round(c * (1 << shift))) for c in point),
            int(round(radius * (1 << shift))),
            colour,
            -1,
            cv2.LINE_AA,
            shift,
        )
    return photo, (tuple(left), tuple(right))


def _centroid(image, colour):
    """Centroid (x, y) of the pixels close to a saturated `colour`, weighted by closeness."""
    distance = np.abs(image.astype(np.float32) - np.array(colour, np.float32)).sum(axis=2)
    weight = np.clip(1.0 - distance / 150.0, 0.0, None)
    assert weight.sum() > 0, f"no {colour} pixels found"
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(weight * xx).sum() / weight.sum(), (weight * yy).sum() / weight.sum()])


def _face_coordinates(transform, height, width):
    """Aligned-face coordinates [H, W, 2] of every photo pixel."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    return align.apply_transform(transform, np.stack([xx, yy], axis=-1))


# ------------------------------------------------------------------------------------------------------ geometry


def test_canonical_eyes_follow_the_pipeline_crop():
    # crop_fraction 1: the 178x178 square starts at row (218 - 178) // 2 = 20, no resize at S = 178.
    (lx, ly), (rx, ry) = align.canonical_eyes(178, 1.0)
    np.testing.assert_allclose([lx, ly, rx, ry], [67.5, 91.5, 107.5, 91.5])
    # S = 64: u_out = (u + 0.5) * 64 / 178 - 0.5.
    (lx, ly), (rx, ry) = align.canonical_eyes(64, 1.0)
    np.testing.assert_allclose([lx, ly, rx, ry], [23.9494, 32.5787, 38.3315, 32.5787], atol=1e-3)
    # crop_fraction 0.8: side round(142.4) = 142, top (218 - 142) // 2 = 38, left (178 - 142) // 2 = 18.
    (lx, ly), _ = align.canonical_eyes(142, 0.8)
    np.testing.assert_allclose([lx, ly], [49.5, 73.5])
    with pytest.raises(ValueError, match="crop_fraction"):
        align.canonical_eyes(64, 0.0)


def test_measured_canonical_eyes_match_the_celeba_convention():
    (lx, ly), (rx, ry) = align.CELEBA_LEFT_EYE, align.CELEBA_RIGHT_EYE
    assert abs(ly - 112) <= 2 and abs(ry - 112) <= 2
    assert abs(lx - 69) <= 3 and abs(rx - 108) <= 3


def test_similarity_maps_points_exactly():
    src, dst = ((10.0, 20.0), (50.0, 35.0)), ((3.0, 4.0), (13.0, 4.0))
    matrix = align.similarity_from_points(src, dst)
    np.testing.assert_allclose(align.apply_transform(matrix, src), dst, atol=1e-9)
    # A similarity: the 2x2 part is s * rotation.
    a = matrix[:, :2]
    np.testing.assert_allclose(a @ a.T, np.eye(2) * align.transform_scale(matrix) ** 2, atol=1e-9)
    with pytest.raises(ValueError, match="coincide"):
        align.similarity_from_points(((1.0, 1.0), (1.0, 1.0)), dst)


@pytest.mark.parametrize(
    "roll,eye_distance,size", [(0.0, 40.0, 64), (-23.0, 60.0, 64), (17.0, 120.0, 48), (9.0, 12.0, 64)]
)
def test_align_puts_the_eyes_at_the_canonical_positions(roll, eye_distance, size):
    """Known eyes -> align: the drawn dots land on the canonical positions and the eye line is level."""
    # The photo holds the whole face square (4.45 eye distances wide), so no reflected copy of a dot enters the crop.
    photo, eyes = _eye_photo(
        roll, eye_distance, height=720 if eye_distance > 100 else 240, width=680 if eye_distance > 100 else 220
    )
    aligned, transform = align.align_face(photo, eyes, size)
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    expected_left, expected_right = align.canonical_eyes(size)
    left, right = _centroid(aligned, RED), _centroid(aligned, BLUE)
    np.testing.assert_allclose(left, expected_left, atol=0.5)
    np.testing.assert_allclose(right, expected_right, atol=0.5)
    level = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    assert abs(level) < 1.0
    # The transform undoes the roll, and the face's scale is the canonical eye distance over the photo's.
    assert abs(align.transform_rotation_degrees(transform) - roll) < 1e-6
    canonical_distance = expected_right[0] - expected_left[0]
    assert align.transform_scale(transform) == pytest.approx(canonical_distance / eye_distance)


def test_align_is_the_training_view_of_an_aligned_celeba_image():
    """A 178x218 image whose eyes sit at the canonical positions aligns to its centre crop (the pipeline's view)."""
    image = photo_background(218, 178, seed=3)
    aligned, transform = align.align_face(image, (align.CELEBA_LEFT_EYE, align.CELEBA_RIGHT_EYE), 178)
    np.testing.assert_allclose(transform, [[1, 0, 0], [0, 1, -20]], atol=1e-9)
    np.testing.assert_array_equal(aligned, image[20:198])


def test_align_fills_outside_the_photo_by_reflection():
    photo, eyes = _eye_photo(0.0, 40.0)
    shifted = ((eyes[0][0], eyes[0][1] - 100), (eyes[1][0], eyes[1][1] - 100))  # face square crosses the top edge
    aligned, transform = align.align_face(photo, shifted, 64)
    top_row_y = align.apply_transform(align.invert_transform(transform), [[32.0, 0.0]])[0, 1]
    assert top_row_y < -5  # the first rows of the crop lie above the photo ...
    assert aligned[:4].min() >= 30  # ... and hold reflected content (>= 40 minus resampling), not black


# --------------------------------------------------------------------------------------------------- paste-back


@pytest.mark.parametrize("roll,eye_distance", [(0.0, 40.0), (-21.0, 55.0)])
def test_identity_round_trip_leaves_the_photo_unchanged(roll, eye_distance):
    photo = photo_background(240, 220, seed=5)
    _, eyes = _eye_photo(roll, eye_distance)
    size, feather = 64, 0.1
    aligned, transform = align.align_face(photo, eyes, size)
    out = align.paste_back(photo, aligned, transform, feather=feather)
    assert out.shape == photo.shape and out.dtype == np.uint8
    coords = _face_coordinates(transform, *photo.shape[:2])
    outside = np.any((coords < -0.5) | (coords > size - 0.5), axis=-1)
    np.testing.assert_array_equal(out[outside], photo[outside])  # exactly unchanged outside the face square
    margin = feather * size + 2
    core = np.all((coords > margin) & (coords < size - 1 - margin), axis=-1)
    diff = np.abs(out.astype(np.int32) - photo.astype(np.int32))
    assert core.sum() > 1000
    assert diff[core].mean() < 1.5 and diff[core].max() <= 10  # resampling error only
    assert diff[~outside].max() > 0  # the face region was actually rewritten
    # Pasting only the change keeps the photo exact everywhere.
    exact = align.paste_back(photo, aligned, transform, feather=feather, original_face=aligned)
    np.testing.assert_array_equal(exact, photo)


def test_paste_back_of_a_constant_edit_changes_only_the_face_square():
    photo, eyes = _eye_photo(14.0, 50.0)
    size, feather = 48, 0.15
    aligned, transform = align.align_face(photo, eyes, size)
    edit = np.full_like(aligned, 250)
    for original_face in (None, aligned):
        out = align.paste_back(photo, edit, transform, feather=feather, original_face=original_face)
        coords = _face_coordinates(transform, *photo.shape[:2])
        outside = np.any((coords < -0.5) | (coords > size - 0.5), axis=-1)
        changed = np.any(out != photo, axis=-1)
        assert not np.any(changed & outside)
        core = np.all((coords > feather * size + 2) & (coords < size - 3 - feather * size), axis=-1)
        if original_face is None:
            assert np.all(out[core] == 250)
        else:  # the change (250 - aligned) is warped back: close to 250 where the photo is smooth
            assert np.abs(out[core].astype(np.int32) - 250).mean() < 12
        # The feathered ring blends: values strictly between the photo and the edit exist near the border.
        ring = ~outside & ~core & changed
        assert np.any((out[ring] > photo[ring]) & (out[ring] < 250))


def test_the_change_is_warped_back_bicubic():
    # a 1-pixel stroke (a glasses frame at the model's size) pasted into a face 3x larger keeps bicubic sharpness
    photo = np.full((200, 200, 3), 100, np.uint8)
    size = 64
    transform = np.array([[size / 192.0, 0.0, -4 * size / 192.0], [0.0, size / 192.0, -4 * size / 192.0]])
    original = np.full((size, size, 3), 100, np.uint8)
    edited = original.copy()
    edited[30, 16:48] = 40  # a dark horizontal stroke
    out = align.paste_back(photo, edited, transform, feather=0.0, original_face=original)
    change = edited.astype(np.float32) - original.astype(np.float32)
    expected = cv2.warpAffine(
        change, transform, (200, 200), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    column = slice(90, 110)
    np.testing.assert_allclose(
        out[60:140, column].astype(np.float32), np.clip(np.round(100 + expected[60:140, column]), 0, 255), atol=1
    )
    bilinear = cv2.warpAffine(change, transform, (200, 200), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert np.abs(out[60:140, column].astype(np.float32) - 100 - bilinear[60:140, column]).max() > 3


def test_feather_mask_is_zero_on_the_border_and_one_inside():
    mask = align.feather_mask(32, feather=0.2)
    assert mask.shape == (32, 32)
    assert np.all(mask[0] == 0) and np.all(mask[:, -1] == 0)
    assert mask[16, 16] == 1.0 and mask.min() == 0.0
    assert np.all(np.diff(mask[16, :16]) >= 0)  # ramps up monotonically towards the centre
    hard = align.feather_mask(32, feather=0.0)
    assert hard[1:-1, 1:-1].min() == 1.0


def test_paste_back_rejects_bad_inputs():
    photo = photo_background(64, 64)
    with pytest.raises(ValueError, match="edited_face"):
        align.paste_back(photo, np.zeros((16, 16, 3), np.float32), np.eye(2, 3))
    with pytest.raises(ValueError, match="square"):
        align.paste_back(photo, np.zeros((16, 12, 3), np.uint8), np.eye(2, 3))


# ------------------------------------------------------------------------------------------- edit_photo, errors


class _FixedDetector:
    def __init__(self, faces):
        self.faces = faces

    def __call__(self, image):
        return list(self.faces)


def test_edit_photo_aligns_edits_and_pastes_back_every_face():
    photo = photo_background(200, 320, seed=7)
    faces = [
        detectors.Face(box=(200, 60, 80, 80), eyes=((220.0, 90.0), (260.0, 92.0)), score=1.0),
        detectors.Face(box=(30, 50, 80, 80), eyes=((50.0, 80.0), (90.0, 78.0)), score=1.0),
    ]
    detector = _FixedDetector(faces)
    # detect_faces sorts left to right.
    assert [f.box[0] for f in detectors.detect_faces(photo, detector)] == [30, 200]
    same, aligned, edited = align.edit_photo(photo, lambda x: x, 32, detector=detector)
    assert len(aligned) == 2 and edited.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(same, photo)  # identity edit, detail kept: bit-exact
    out, aligned, _ = align.edit_photo(photo, lambda x: np.zeros_like(x), 32, detector=detector, face_index=1)
    assert len(aligned) == 1 and aligned[0].face.box[0] == 200
    changed_columns = np.nonzero(np.any(out != photo, axis=(0, 2)))[0]
    assert changed_columns.min() > 150  # only the right face changed
    # Masks are warped with each face and passed to the edit function.
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[85:95, 215:265] = 255
    seen = {}

    def complete(images, masks):
        seen["masks"] = masks
        return images

    align.edit_photo(photo, complete, 32, detector=detector, mask=mask)
    masks = seen["masks"]
    assert masks.shape == (2, 32, 32, 1) and masks.dtype == np.float32
    assert masks[0].sum() == 0 and masks[1].sum() > 10  # the hole is on the right face only
    with pytest.raises(DataError, match="--face 2 is out of range: 2 face"):
        align.edit_photo(photo, lambda x: x, 32, detector=detector, face_index=2, source="two.jpg")
    with pytest.raises(DataError, match="mask is 10x10"):
        align.edit_photo(photo, complete, 32, detector=detector, mask=np.zeros((10, 10), np.uint8))


def test_no_face_is_a_clear_error(tmp_path):
    grey = np.full((120, 100, 3), 128, np.uint8)
    assert detectors.detect_faces(grey) == []
    out_path = tmp_path / "out.jpg"
    with pytest.raises(DataError, match="no face found in grey.png"):
        align.edit_photo(grey, lambda x: x, 32, source="grey.png")
    assert not out_path.exists()
    assert issubclass(DataError, FaceEditError)


def test_read_image_formats_and_errors(tmp_path):
    rgb = photo_background(20, 30)
    rgb[0, 0] = RED
    cv2.imwrite(str(tmp_path / "colour.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(tmp_path / "colour.png"), rgb)
    gray = rgb[..., 1].copy()
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    loaded = read_image(tmp_path / "gray.png")
    assert loaded.shape == (20, 30, 3) and np.all(loaded[..., 0] == gray) and np.all(loaded[..., 2] == gray)
    rgba = np.concatenate([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), np.full((20, 30, 1), 128, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png"), rgb)
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match="cannot read image .*broken.jpg"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(DataError, match="missing.jpg does not exist"):
        read_image(tmp_path / "missing.jpg")
    write_image(tmp_path / "sub" / "copy.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "sub" / "copy.png"), rgb)
    assert [p.name for p in align.list_images(tmp_path)] == ["alpha.png", "broken.jpg", "colour.png", "gray.png"]
    assert align.list_images(tmp_path / "colour.png") == [tmp_path / "colour.png"]
    with pytest.raises(DataError, match="has no images"):
        align.list_images(_empty_dir(tmp_path))
    with pytest.raises(DataError, match="nowhere does not exist"):
        align.list_images(tmp_path / "nowhere")


def _empty_dir(root):
    path = root / "empty"
    path.mkdir(exist_ok=True)
    return path


# ------------------------------------------------------------------------------------------- 5 landmarks, MTCNN

needs_mtcnn = pytest.mark.skipif(not detectors.mtcnn_available(), reason="mtcnn is not installed (the [faces] extra)")


def _similarity(angle_degrees, scale, shift):
    c, s = math.cos(math.radians(angle_degrees)) * scale, math.sin(math.radians(angle_degrees)) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_canonical_landmarks_follow_the_pipeline_crop_and_match_the_eyes():
    points = align.canonical_landmarks(178, 1.0)
    np.testing.assert_allclose(points, np.array(align.CELEBA_LANDMARKS) - [0.0, 20.0])
    # MTCNN's canonical eyes and the Haar-measured ones describe the same framing (within 2 px).
    np.testing.assert_allclose(points[:2], align.canonical_eyes(178), atol=2.0)
    # Eyes level and above the nose, the nose above the mouth corners, left before right.
    (le, re, nose, lm, rm) = align.CELEBA_LANDMARKS
    assert le[0] < nose[0] < re[0] and lm[0] < nose[0] < rm[0]
    assert abs(le[1] - re[1]) < 1 and max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])


@pytest.mark.parametrize("angle,scale", [(0.0, 1.0), (27.0, 0.6), (-33.0, 2.4)])
def test_similarity_fit_maps_known_landmarks_exactly(angle, scale):
    """Landmarks that are a similarity image of the canonical ones are mapped back onto them exactly, whatever the
    weights; noise on the low-weight nose moves the eyes less than it would unweighted."""
    canonical = np.array(align.canonical_landmarks(64))
    to_photo = _similarity(angle, scale, (140.0, 95.0))
    photo_points = align.apply_transform(align.invert_transform(to_photo), canonical)
    for weights in (None, align.LANDMARK_WEIGHTS):
        fit = align.similarity_fit(photo_points, canonical, weights)
        np.testing.assert_allclose(align.apply_transform(fit, photo_points), canonical, atol=1e-9)
        np.testing.assert_allclose(fit, to_photo, atol=1e-9)
    transform = align.face_transform(None, 64, landmarks=photo_points)
    np.testing.assert_allclose(transform, to_photo, atol=1e-9)
    noisy = photo_points.copy()
    noisy[2] += 8.0 / scale  # the nose 8 px (in the face) off
    eyes_moved = {}
    for label, weights in (("weighted", align.LANDMARK_WEIGHTS), ("uniform", None)):
        fit = align.similarity_fit(noisy, canonical, weights)
        eyes_moved[label] = np.abs(align.apply_transform(fit, photo_points[:2]) - canonical[:2]).max()
    assert 0 < eyes_moved["weighted"] < 0.5 * eyes_moved["uniform"]


def test_similarity_fit_rejects_degenerate_input():
    with pytest.raises(ValueError, match="coincide"):
        align.similarity_fit([(3.0, 4.0)] * 5, align.CELEBA_LANDMARKS)
    with pytest.raises(ValueError, match="matching"):
        align.similarity_fit([(0.0, 0.0)], [(1.0, 1.0)])
    with pytest.raises(ValueError, match="non-negative"):
        align.similarity_fit(align.CELEBA_LANDMARKS, align.CELEBA_LANDMARKS, [1, 1, -1, 1, 1])


def test_align_faces_uses_the_five_landmarks():
    """A face with landmarks (as MTCNN gives) is aligned by them: the drawn eyes land on the canonical eyes even
    when `eyes` disagrees, since the 5 points decide."""
    size = 64
    to_photo = _similarity(-18.0, 2.2, (80.0, 110.0))  # aligned face -> photo
    landmarks = align.apply_transform(to_photo, align.canonical_landmarks(size))
    photo = photo_background(300, 300, seed=2)
    for point, colour in ((landmarks[0], RED), (landmarks[1], BLUE)):
        cv2.circle(photo, tuple(int(round(c * 16)) for c in point), 5 * 16, colour, -1, cv2.LINE_AA, 4)
    face = detectors.Face(
        box=(0, 0, 10, 10), eyes=((0.0, 0.0), (1.0, 0.0)), score=0.99, landmarks=tuple(map(tuple, landmarks))
    )
    (aligned,) = align.align_faces(photo, size, detector=_FixedDetector([face]))
    expected_left, expected_right = align.canonical_eyes(size)
    canonical = align.canonical_landmarks(size)
    np.testing.assert_allclose(_centroid(aligned.image, RED), canonical[0], atol=0.5)
    np.testing.assert_allclose(_centroid(aligned.image, BLUE), canonical[1], atol=0.5)
    np.testing.assert_allclose(canonical[:2], (expected_left, expected_right), atol=1.0)


class _FakeMtcnn:
    """Stands in for mtcnn.MTCNN: returns fixed rows (image index, x1, y1, x2, y2, confidence, 5 x, 5 y)."""

    def __init__(self, rows):
        self.rows = np.array(rows, np.float64)
        self.seen = []

    def detect_faces(self, image, output_type, box_format):
        assert (output_type, box_format) == ("numpy", "xyxy")
        self.seen.append(image.shape)
        return self.rows.copy()


@needs_mtcnn
def test_mtcnn_rows_become_faces_in_photo_pixels():
    """Confidence filter, landmark order, and the max_side downscale mapped back; the landmarks of a face that is a
    similarity image of the canonical face align exactly onto the canonical points."""
    detector = detectors.MtcnnDetector(min_confidence=0.9, max_side=500)
    photo = photo_background(400, 1000, seed=4)  # searched at 500 x 200: factor 0.5
    canonical = np.array(align.canonical_landmarks(64))
    to_photo = align.invert_transform(_similarity(12.0, 0.5, (-60.0, 10.0)))
    landmarks = align.apply_transform(to_photo, canonical)
    small = (landmarks + 0.5) * 0.5 - 0.5  # the same points in the searched (half-size) image
    keep = [0, 40, 20, 140, 130, 0.97, *small[:, 0], *small[:, 1]]
    weak = [0, 300, 50, 330, 80, 0.6, *([310.0] * 5), *([60.0] * 5)]
    detector.mtcnn = _FakeMtcnn([keep, weak])
    faces = detector(photo)
    assert detector.mtcnn.seen == [(200, 500, 3)]
    assert len(faces) == 1  # the 0.6 box is dropped
    face = faces[0]
    assert face.score == pytest.approx(0.97) and face.eyes_detected
    np.testing.assert_allclose(face.landmarks, landmarks, atol=1e-9)
    np.testing.assert_allclose(face.eyes, landmarks[:2], atol=1e-9)
    np.testing.assert_allclose(face.box, (80.5, 40.5, 200.0, 220.0))  # ((x + 0.5) / 0.5 - 0.5), sides doubled
    (aligned,) = align.align_faces(photo, 64, detector=detector)
    np.testing.assert_allclose(align.apply_transform(aligned.transform, landmarks), canonical, atol=1e-9)
    with pytest.raises(ValueError, match="min_confidence"):
        detectors.MtcnnDetector(min_confidence=1.5)


def test_completion_keeps_no_detail_of_the_photo_inside_the_hole():
    photo = photo_background(200, 320, seed=7)
    faces = [detectors.Face(box=(200, 60, 80, 80), eyes=((220.0, 90.0), (260.0, 92.0)), score=1.0)]
    detector = _FixedDetector(faces)
    stripes = photo.copy()
    stripes[80:110, 220:260] = np.where((np.arange(40) % 2 == 0)[None, :, None], 255, 0)  # detail to be removed
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[80:110, 220:260] = 1

    def flat_fill(images, masks):
        return np.where(masks > 0.5, 128, images).astype(np.uint8)

    out, _, _ = align.edit_photo(stripes, flat_fill, 32, detector=detector, mask=mask)
    inside = out[84:106, 224:256].astype(float)
    assert inside.std() < 10  # the flat fill, not the stripes the hole covered
    outside = np.ones(photo.shape[:2], bool)
    outside[70:120, 210:270] = False
    np.testing.assert_array_equal(out[outside], stripes[outside])  # away from the face: untouched
