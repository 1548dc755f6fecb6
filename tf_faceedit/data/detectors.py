"""Face detection: the faces of a photo, with their eyes (and 5 landmarks), for `tf_faceedit.data.align`.

Conventions (as `tf_faceedit.data.align`): images are RGB uint8 numpy arrays [H, W, 3]; coordinates are (x, y) in
pixels with pixel centres at integer positions; "left eye" is the eye on the image's left (the subject's right eye) of
an upright face. A detector is a callable image -> list[`Face`].

Detectors. `MtcnnDetector` (the default when the optional `mtcnn` package is installed: `pip install
tf_faceedit[faces]`) runs the MTCNN cascade (Zhang et al. 2016; P/R/O-Net weights ship inside the package) and gives
boxes, a confidence in [0, 1] (boxes below `DEFAULT_MIN_CONFIDENCE` are dropped) and 5 landmarks per face (eyes, nose
tip, mouth corners); `align` fits those 5 points to its canonical landmarks, as CelebA's own aligned crops were made
from 5 landmarks. `HaarDetector` (the fallback) uses the cascades that ship with opencv-python
(`cv2.data.haarcascades`): the frontal-face cascade run on the image rotated by a few angles (the cascade alone finds
faces rolled by up to about 15 degrees), then the eye cascade on an upright crop of each face; when no plausible pair
of eyes is found, the eyes are placed at their average position in the face box (`Face.eyes_detected` is then
False). `DnnDetector` runs OpenCV's YuNet (`cv2.FaceDetectorYN`) from a user-supplied .onnx file and takes the eyes
from its landmarks. Haar and YuNet faces are aligned by their two eyes.

`load_detector` picks one (`--detector_model`), `default_detector` is the one used when none is named, and
`detect_faces` returns the faces sorted left to right by the centre of their box, so `--face N` counts from the left.
"""

import dataclasses
import logging
import math
import os

import cv2
import numpy as np

from tf_faceedit import images
from tf_faceedit.errors import DataError


@dataclasses.dataclass(frozen=True)
class Face:
    """A detected face.

    Attributes:
      box: (x, y, w, h) axis-aligned bounding box in photo pixels.
      eyes: ((x, y) of the image-left eye, (x, y) of the image-right eye) in photo pixels.
      score: detector confidence (Haar: number of merged neighbour detections; MTCNN, YuNet: score in [0, 1]).
      eyes_detected: False when the eyes were estimated from the box (no eye pair found).
      landmarks: None, or the 5 points ((x, y) of the image-left eye, image-right eye, nose tip, image-left and
        image-right mouth corners) in photo pixels (`MtcnnDetector`); the face is then aligned by all 5.
    """

    box: tuple
    eyes: tuple
    score: float
    eyes_detected: bool = True
    landmarks: tuple = None

    @property
    def roll_degrees(self):
        """In-plane rotation of the face: angle of the left-to-right eye vector, degrees, clockwise on screen."""
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


# Boxes MTCNN scores below this are not faces (`MtcnnDetector(min_confidence=...)`); see docs/RESULTS.md
# (benchmarks/alignment_accuracy.py) for the detection rate and false boxes at this threshold.
DEFAULT_MIN_CONFIDENCE = 0.9

# Average eye centres inside a frontal-face Haar box, as fractions of the box (x, y), measured on the images of
# `align.CELEBA_LEFT_EYE` (median over the 73 pairs). Used to place the eyes when the eye cascade finds no plausible
# pair.
HAAR_BOX_LEFT_EYE = (0.30, 0.39)
HAAR_BOX_RIGHT_EYE = (0.68, 0.39)

# The rotated search canvases and eye patches of `HaarDetector` are filled by reflection, as aligned faces are
# (`align.BORDER_MODE`): the cascades then see plausible skin/background at a canvas corner, not a black wedge.
SEARCH_BORDER = cv2.BORDER_REFLECT_101


def _map_back(matrix, points):
    """Points [..., 2] of the frame that the 2x3 affine `matrix` maps the photo to, in photo pixels."""
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    return np.asarray(points, np.float64) @ inverse[:, :2].T + inverse[:, 2]


def _rotation_about(center, degrees, scale=1.0):
    return cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(degrees), float(scale))


class HaarDetector:
    """Frontal faces with OpenCV's Haar cascades (shipped with opencv-python), eyes with the eye cascade.

    Args:
      angles: in-plane rotations (degrees) at which the image is searched; the cascade alone covers about +-15
        degrees of roll, so the default (0, +-22) finds faces rolled by up to about 35 degrees.
      scale_factor, min_neighbors: `CascadeClassifier.detectMultiScale` settings of the face cascade.
      min_size_fraction: smallest face side searched, as a fraction of the photo's shorter side (at least 24 px).
      max_side: photos are searched at most this large (longer side), then boxes are mapped back.
    """

    def __init__(
        self, angles=(0.0, 22.0, -22.0), scale_factor=1.1, min_neighbors=5, min_size_fraction=0.05, max_side=1024
    ):
        root = cv2.data.haarcascades
        self.face_cascade = cv2.CascadeClassifier(os.path.join(root, "haarcascade_frontalface_default.xml"))
        self.eye_cascade = cv2.CascadeClassifier(os.path.join(root, "haarcascade_eye.xml"))
        if self.face_cascade.empty() or self.eye_cascade.empty():
            raise DataError(f"cannot load the Haar cascades from {root} (broken opencv-python install?)")
        self.angles = tuple(float(a) for a in angles)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size_fraction = float(min_size_fraction)
        self.max_side = int(max_side)

    def __call__(self, image):
        image = images.check_rgb(image)
        gray_full = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        height, width = gray_full.shape
        factor = min(1.0, self.max_side / max(height, width))
        gray = (
            gray_full
            if factor == 1.0
            else cv2.resize(
                gray_full,
                (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1)),
                interpolation=cv2.INTER_AREA,
            )
        )
        gray = cv2.equalizeHist(gray)
        min_side = max(24, int(round(self.min_size_fraction * min(gray.shape))))
        candidates = []  # (score, centre x, centre y, side, angle) in full-resolution photo pixels
        for angle in self.angles:
            rotated, matrix = _rotate_expanded(gray, angle)
            boxes, neighbours = self.face_cascade.detectMultiScale2(
                rotated, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
            )
            for (x, y, w, h), n in zip(np.reshape(boxes, (-1, 4)), np.reshape(neighbours, (-1,))):
                cx, cy = _map_back(matrix, [x + (w - 1) / 2.0, y + (h - 1) / 2.0])
                candidates.append((float(n), (cx + 0.5) / factor - 0.5, (cy + 0.5) / factor - 0.5, w / factor, angle))
        faces = []
        kept = []
        for score, cx, cy, side, angle in sorted(candidates, key=lambda c: -c[0]):
            if any(math.hypot(cx - kx, cy - ky) < 0.5 * max(side, ks) for kx, ky, ks in kept):
                continue
            kept.append((cx, cy, side))
            eyes, found = self._eyes(gray_full, cx, cy, side, angle)
            faces.append(
                Face(box=_rotated_box_bounds(cx, cy, side, angle), eyes=eyes, score=score, eyes_detected=found)
            )
        return faces

    def _eyes(self, gray, cx, cy, side, angle, patch=160):
        """Eye centres of the face box (centre, side, angle) of the photo: the eye cascade on an upright patch."""
        # Photo -> patch: rotate by -angle around the box centre and scale the box to patch x patch.
        scale = patch / side
        to_patch = _rotation_about((cx, cy), angle, scale)  # getRotationMatrix2D turns counter-clockwise by `angle`
        to_patch[:, 2] += [(patch - 1) / 2.0 - cx, (patch - 1) / 2.0 - cy]
        face = cv2.equalizeHist(
            cv2.warpAffine(gray, to_patch, (patch, patch), flags=cv2.INTER_LINEAR, borderMode=SEARCH_BORDER)
        )
        top, bottom = int(0.15 * patch), int(0.62 * patch)
        found = self.eye_cascade.detectMultiScale(
            face[top:bottom],
            scaleFactor=1.05,
            minNeighbors=3,
            minSize=(patch // 8, patch // 8),
            maxSize=(patch // 2, patch // 2),
        )
        centres = [(x + (w - 1) / 2.0, top + y + (h - 1) / 2.0) for x, y, w, h in np.reshape(found, (-1, 4))]
        expected = np.array([HAAR_BOX_LEFT_EYE, HAAR_BOX_RIGHT_EYE]) * patch
        best, best_cost = None, 0.25 * patch
        for left in centres:
            for right in centres:
                dx, dy = right[0] - left[0], right[1] - left[1]
                if not (0.25 * patch <= dx <= 0.6 * patch and abs(dy) <= 0.15 * patch):
                    continue
                cost = float(np.hypot(*(np.array(left) - expected[0])) + np.hypot(*(np.array(right) - expected[1])))
                if cost < best_cost:
                    best, best_cost = (left, right), cost
        points = expected if best is None else np.array(best)
        eyes = _map_back(to_patch, points)
        return (tuple(eyes[0].tolist()), tuple(eyes[1].tolist())), best is not None


def _rotate_expanded(image, degrees):
    """Rotates `image` counter-clockwise by `degrees` about its centre on a canvas big enough to hold all of it.
    Returns (rotated, 2x3 matrix image -> rotated)."""
    height, width = image.shape[:2]
    if degrees == 0.0:
        return image, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    matrix = _rotation_about(((width - 1) / 2.0, (height - 1) / 2.0), degrees)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(math.ceil(width * cos + height * sin)), int(math.ceil(width * sin + height * cos))
    matrix[:, 2] += [(new_w - width) / 2.0, (new_h - height) / 2.0]
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=SEARCH_BORDER), matrix


def _rotated_box_bounds(cx, cy, side, degrees):
    """(x, y, w, h) bounds of a square of `side` centred at (cx, cy), turned by `degrees`."""
    extent = side * (abs(math.cos(math.radians(degrees))) + abs(math.sin(math.radians(degrees))))
    return (cx - extent / 2.0, cy - extent / 2.0, extent, extent)


class DnnDetector:
    """OpenCV's YuNet face detector (`cv2.FaceDetectorYN`) from a .onnx model file; eyes from its landmarks.

    Args:
      model_path: path of the YuNet .onnx file (e.g. face_detection_yunet_2023mar.onnx from the OpenCV model zoo).
      score_threshold, nms_threshold, top_k: `cv2.FaceDetectorYN.create` settings.

    Raises:
      DataError: the file is missing or OpenCV cannot load it.
    """

    def __init__(self, model_path, score_threshold=0.7, nms_threshold=0.3, top_k=5000):
        self.model_path = str(model_path)
        if not os.path.isfile(self.model_path):
            raise DataError(f"face detector model {self.model_path} does not exist")
        try:
            self.detector = cv2.FaceDetectorYN.create(
                self.model_path, "", (320, 320), float(score_threshold), float(nms_threshold), int(top_k)
            )
        except cv2.error as e:
            message = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise DataError(
                f"cannot load face detector model {self.model_path} (expected a YuNet .onnx file "
                f"for cv2.FaceDetectorYN): {message}"
            ) from None

    def __call__(self, image):
        image = images.check_rgb(image)
        height, width = image.shape[:2]
        self.detector.setInputSize((width, height))
        _, rows = self.detector.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        faces = []
        for row in np.zeros((0, 15)) if rows is None else rows:
            x, y, w, h = (float(v) for v in row[:4])
            # YuNet landmarks: subject's right eye, left eye, nose tip, right and left mouth corners.
            first, second = (float(row[4]), float(row[5])), (float(row[6]), float(row[7]))
            eyes = (first, second) if first[0] <= second[0] else (second, first)
            faces.append(Face(box=(x, y, w, h), eyes=eyes, score=float(row[14]), eyes_detected=True))
        return faces


class _CompiledNet:
    """One MTCNN network called as the mtcnn stages call it (`net(batch)` -> list of tf tensors), but traced once.

    mtcnn 1.0 calls its Keras models eagerly, op by op: on CPU that is several times slower than the network itself.
    With the TensorFlow backend the call becomes one `tf.function` over any batch (and, for the P-Net, any image size);
    with another Keras backend the model runs as it is and its outputs are handed back as tf tensors (mtcnn's stages
    use tf ops on them).
    """

    def __init__(self, model, patch_size=None):
        import keras
        import tensorflow as tf

        self._tf = tf
        self.model = model
        self._fn = None
        if keras.backend.backend() == "tensorflow":
            spec = tf.TensorSpec([None, patch_size, patch_size, 3], tf.float32)
            self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, batch):
        tf = self._tf
        batch = tf.cast(batch, tf.float32)
        if self._fn is not None:
            return list(self._fn(batch))
        return [tf.convert_to_tensor(np.asarray(out)) for out in self.model(batch.numpy(), training=False)]


def mtcnn_available():
    """Whether the optional `mtcnn` package (`pip install tf_faceedit[faces]`) can be imported."""
    import importlib.util

    return importlib.util.find_spec("mtcnn") is not None


MTCNN_MISSING_MESSAGE = (
    "mtcnn is not installed: finding faces with OpenCV Haar cascades (rougher alignment); "
    "pip install 'tf_faceedit[faces]' for MTCNN 5-landmark alignment"
)


class MtcnnDetector:
    """Faces, confidences and 5 landmarks with MTCNN (the optional `mtcnn` package, MIT; weights inside it).

    Args:
      min_confidence: boxes MTCNN scores below this are dropped (`DEFAULT_MIN_CONFIDENCE`).
      max_side: photos are searched at most this large (longer side, area-downsampled), then mapped back; the
        smallest face found is 20 px at that size.

    Raises:
      ImportError: mtcnn is not installed (`load_detector` then falls back to Haar with `MTCNN_MISSING_MESSAGE`).
    """

    def __init__(self, min_confidence=DEFAULT_MIN_CONFIDENCE, max_side=1024):
        import mtcnn

        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = float(min_confidence)
        self.max_side = int(max_side)
        self.mtcnn = mtcnn.MTCNN(device="CPU:0")
        for stage, patch in zip(self.mtcnn.stages, (None, 24, 48)):
            if hasattr(stage, "_model"):  # mtcnn 1.0's stages hold their network there
                stage._model = _CompiledNet(stage.model, patch)

    def __call__(self, image):
        image = images.check_rgb(image)
        height, width = image.shape[:2]
        factor = min(1.0, self.max_side / max(height, width))
        small = (
            image
            if factor == 1.0
            else cv2.resize(
                image,
                (max(int(round(width * factor)), 1), max(int(round(height * factor)), 1)),
                interpolation=cv2.INTER_AREA,
            )
        )
        if min(small.shape[:2]) < 12:  # smaller than the P-Net's window
            return []
        rows = np.asarray(self.mtcnn.detect_faces(small, output_type="numpy", box_format="xyxy"), np.float64)
        faces = []
        # A row: image index, x1, y1, x2, y2, confidence, the 5 landmarks' x, then their y; landmark order: the
        # image-left eye, the image-right eye, the nose, the image-left and image-right mouth corners.
        for row in rows.reshape(-1, 16):
            if row[5] < self.min_confidence:
                continue
            x1, y1, x2, y2 = ((row[1:5] + 0.5) / factor - 0.5).tolist()
            points = (np.stack([row[6:11], row[11:16]], axis=-1) + 0.5) / factor - 0.5
            landmarks = tuple(tuple(p) for p in points.tolist())
            faces.append(
                Face(
                    box=(x1, y1, x2 - x1, y2 - y1),
                    eyes=landmarks[:2],
                    score=float(row[5]),
                    eyes_detected=True,
                    landmarks=landmarks,
                )
            )
        return faces


_warned_missing_mtcnn = False


DETECTOR_ENV = "TF_FACEEDIT_DETECTOR"


def default_detector():
    """The detector used when none is named: `load_detector($TF_FACEEDIT_DETECTOR)` when that variable is set
    (mtcnn, haar or a YuNet path; the test suite sets haar for its drawn faces), else `MtcnnDetector()` when mtcnn
    is installed, else `HaarDetector()` (logging `MTCNN_MISSING_MESSAGE` once per process)."""
    global _warned_missing_mtcnn
    if os.environ.get(DETECTOR_ENV, "").strip():
        return load_detector(os.environ[DETECTOR_ENV].strip())
    if mtcnn_available():
        try:
            return MtcnnDetector()
        except ImportError:  # installed but broken (e.g. a missing dependency of its own)
            pass
    if not _warned_missing_mtcnn:
        logging.getLogger("tf_faceedit").warning("%s", MTCNN_MISSING_MESSAGE)
        _warned_missing_mtcnn = True
    return HaarDetector()


def load_detector(model_path=None):
    """The face detector of `--detector_model`.

    None or "": `default_detector()` (MTCNN when installed, else Haar cascades); "mtcnn" or "haar": that detector;
    a path: `DnnDetector(model_path)` (a YuNet .onnx file).

    Raises:
      DataError: "mtcnn" without the mtcnn package; a missing or unreadable model file.
    """
    if not model_path:
        return default_detector()
    name = str(model_path).strip().lower()
    if name == "haar" and not os.path.exists(str(model_path)):
        return HaarDetector()
    if name == "mtcnn" and not os.path.exists(str(model_path)):
        if not mtcnn_available():
            raise DataError("--detector_model=mtcnn needs the mtcnn package: pip install 'tf_faceedit[faces]'")
        return MtcnnDetector()
    return DnnDetector(model_path)


_default_detector = None


def detect_faces(image, detector=None):
    """Faces of an RGB uint8 photo, sorted left to right by the centre x of their box.

    Args:
      image: RGB uint8 [H, W, 3].
      detector: a callable image -> list[Face] (`MtcnnDetector`, `HaarDetector`, `DnnDetector`); default
        `default_detector()` (made once per process).
    """
    global _default_detector
    if detector is None:
        if _default_detector is None:
            _default_detector = default_detector()
        detector = _default_detector
    faces = list(detector(images.check_rgb(image)))
    return sorted(faces, key=lambda f: f.box[0] + f.box[2] / 2.0)
