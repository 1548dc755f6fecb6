"""Identity: is the edited face still the same person?

An edit has three jobs: change the attribute (the judge), keep the person (this module), touch nothing else
(preservation). Identity is read by an independent face-recognition network, never by anything trained here:

* `DlibRecognizer`: dlib's ResNet face descriptor (128 numbers; 99.38 % on LFW), with its 5-point landmark model,
  both installed with their weights from the package index by the optional extra
  `pip install 'tf_faceedit[identity]'` (`dlib-bin` + `face-recognition-models`). Two faces are the same person
  when the Euclidean distance of their descriptors is below `SAME_PERSON_THRESHOLD` (0.6, dlib's own threshold).

How a pair is read (`IdentityMeter`): the face box is found once, on the input (dlib's HOG detector on the image
scaled so its short side is at least `MIN_SIDE` pixels; on an aligned crop where it finds nothing, the fixed box
`ALIGNED_BOX` that it finds on aligned CelebA faces), and the same box is used for the edit, so a distance measures
what was painted, not a detector's jitter. The landmarks and the 150x150 chip the network reads are computed on
each image. Reference rows on the same faces (`reference_distances`): a JPEG re-encode at quality 50 (the same
person, slightly degraded) and a different person (each face against the next face of the batch).

    meter = IdentityMeter(load_recognizer())
    ref = meter.reference(images)                # uint8 [N, H, W, 3]
    d = meter.distances(ref, edited)             # float [N]
    same = d < meter.threshold
"""

import importlib.util
import logging

import cv2
import numpy as np

from tf_faceedit.errors import EvaluationError

log = logging.getLogger("tf_faceedit")

SAME_PERSON_THRESHOLD = 0.6
EXTRA = "pip install 'tf_faceedit[identity]'"
# Images are scaled up (bicubic) until the short side is at least this: the detector's smallest face is ~80 px and
# the network reads a 150x150 chip.
MIN_SIDE = 256
# The box dlib's HOG detector draws on an aligned, square-cropped CelebA face, as fractions of the side (left, top,
# right, bottom); used where it finds no face on an aligned crop (a blurry 64x64 edit scaled up, say).
ALIGNED_BOX = (0.25, 0.36, 0.74, 0.89)
JPEG_QUALITY = 50


def available():
    """Whether the optional recognizer packages (`tf_faceedit[identity]`) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("dlib", "face_recognition_models"))


def load_recognizer():
    """The default recognizer (`DlibRecognizer`); a one-line `EvaluationError` naming the extra when it is missing."""
    if not available():
        raise EvaluationError(f"identity needs dlib's face recognizer: {EXTRA}")
    return DlibRecognizer()


def _model_file(name):
    from importlib import resources

    path = resources.files("face_recognition_models") / "models" / name
    if not path.is_file():
        raise EvaluationError(f"face_recognition_models has no {name}: reinstall it ({EXTRA})")
    return str(path)


class DlibRecognizer:
    """dlib's ResNet-34 face descriptor (`dlib_face_recognition_resnet_model_v1`) with its 5-point landmarks."""

    name = "dlib_resnet_v1"
    threshold = SAME_PERSON_THRESHOLD

    def __init__(self):
        import dlib

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(_model_file("shape_predictor_5_face_landmarks.dat"))
        self._network = dlib.face_recognition_model_v1(_model_file("dlib_face_recognition_resnet_model_v1.dat"))

    def detect(self, image):
        """(left, top, right, bottom) of the largest face in uint8 `image` [H, W, 3], or None."""
        boxes = self._detector(np.ascontiguousarray(image), 0)
        if not len(boxes):
            return None
        box = max(boxes, key=lambda b: b.width() * b.height())
        return (box.left(), box.top(), box.right(), box.bottom())

    def describe(self, image, box):
        """The 128-number descriptor of the face in `box` (pixel coordinates of uint8 `image` [H, W, 3])."""
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        image = np.ascontiguousarray(image)
        shape = self._landmarks(image, rect)
        return np.asarray(self._network.compute_face_descriptor(image, shape, 0), np.float32)


def _scaled(image):
    """`image` scaled up (bicubic) so its short side is at least MIN_SIDE; returns (image, scale)."""
    h, w = image.shape[:2]
    scale = max(1.0, MIN_SIDE / min(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (int(round(w * scale)), int(round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), scale


def _as_rgb_uint8(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise EvaluationError(f"identity reads uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def jpeg(images, quality=JPEG_QUALITY):
    """uint8 RGB images re-encoded as JPEG at `quality` (the 'same person, degraded' reference)."""
    out = []
    for image in images:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise EvaluationError("JPEG encoding failed")
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out) if out else np.zeros_like(images)


class IdentityMeter:
    """Distances between the faces of inputs and of their edits, the face box found once per input.

    Args:
        recognizer: an object with `detect(image) -> box | None`, `describe(image, box) -> [D]` and `threshold`
            (`DlibRecognizer`; tests give a small stand-in).
        aligned: the images are aligned face crops (evaluate's test part): where the detector finds nothing, use
            `ALIGNED_BOX`. For photos (False) a face it cannot find is left out (`nan` distance).
    """

    def __init__(self, recognizer, aligned=True):
        self.recognizer = recognizer
        self.threshold = float(recognizer.threshold)
        self.aligned = aligned
        self.detected = 0
        self.fallback = 0
        self.missed = 0

    def _box(self, scaled):
        box = self.recognizer.detect(scaled)
        if box is not None:
            self.detected += 1
            return box
        if self.aligned:
            self.fallback += 1
            h, w = scaled.shape[:2]
            left, top, right, bottom = ALIGNED_BOX
            return (left * w, top * h, right * w, bottom * h)
        self.missed += 1
        return None

    def reference(self, images):
        """Reads the inputs: a list of (box in the input's pixels or None, descriptor or None), one per image."""
        out = []
        for image in images:
            image = _as_rgb_uint8(image)
            scaled, scale = _scaled(image)
            box = self._box(scaled)
            if box is None:
                out.append((None, None))
                continue
            out.append((tuple(v / scale for v in box), self.recognizer.describe(scaled, box)))
        return out

    def distances(self, reference, images):
        """float64 [N]: descriptor distance between each input of `reference` and `images[i]` (the same size as
        the input: the input's box is used); `nan` where the input had no face."""
        if len(reference) != len(images):
            raise EvaluationError(f"identity: {len(reference)} inputs against {len(images)} edits")
        out = np.full(len(images), np.nan)
        for i, ((box, descriptor), image) in enumerate(zip(reference, images)):
            if box is None:
                continue
            image = _as_rgb_uint8(image)
            scaled, scale = _scaled(image)
            out[i] = float(np.linalg.norm(self.recognizer.describe(scaled, [v * scale for v in box]) - descriptor))
        return out

    def reference_distances(self, reference, images):
        """The two reference rows on the same faces: {"jpeg50": [N], "other_person": [N]} (the other person of face
        i is face i+1 of the batch; nan for a batch of one)."""
        rows = {f"jpeg{JPEG_QUALITY}": self.distances(reference, jpeg(np.stack([_as_rgb_uint8(x) for x in images])))}
        other = np.full(len(reference), np.nan)
        if len(reference) > 1:
            for i, (_, descriptor) in enumerate(reference):
                neighbour = reference[(i + 1) % len(reference)][1]
                if descriptor is not None and neighbour is not None:
                    other[i] = float(np.linalg.norm(descriptor - neighbour))
        rows["other_person"] = other
        return rows


def summary(distances, threshold=SAME_PERSON_THRESHOLD):
    """{"distance": mean, "same_person": share under `threshold`, "count"} over the finite distances (None: none)."""
    d = np.asarray(distances, np.float64)
    d = d[np.isfinite(d)]
    if not d.size:
        return {"distance": None, "same_person": None, "count": 0}
    return {"distance": float(d.mean()), "same_person": float((d < threshold).mean()), "count": int(d.size)}
