"""Face detection + alignment accuracy on unaligned photos built from aligned CelebA images: Haar vs MTCNN.

    python benchmarks/alignment_accuracy.py --data_dir /work/shared/data/celeba-100-178x218
    python benchmarks/alignment_accuracy.py --data_dir DIR --detectors mtcnn --thresholds 0.8 0.9 0.95
    python benchmarks/alignment_accuracy.py --data_dir DIR --measure_canonical   # align.CELEBA_LANDMARKS

Photos. The aligned 178x218 images (CelebA framing: every face has its eyes where `align.CELEBA_LANDMARKS` says) are
each rescaled by a log-uniform factor in [0.5, 2], rotated by a uniform angle in [-30, 30] degrees and pasted (with a
feathered edge) 1 to 3 per canvas onto a textured background with clutter (ellipses, rectangles), plus some canvases
without any face; each canvas is JPEG-compressed (quality 60-90). The warp of every face is known: T maps its 178x218
pixels to canvas pixels.

Per detector, the table gives:
  found       true faces with a detection (box centre within 0.35 face widths of the true face centre);
  false boxes detections matching no face (including a second box on one face), in all photos;
  eye err     distance between a detected eye mapped back to the 178x218 frame (T^-1) and where the CelebA framing
              puts it (the detector's own canonical eye: `CELEBA_LEFT_EYE` for Haar, `CELEBA_LANDMARKS` for MTCNN),
              median and 90th percentile over both eyes' max per face, in 178x218 pixels;
  align err   the same for the final alignment (for MTCNN the 5-point fit, not the eyes alone): the canonical eyes
              pushed through T, the photo -> face transform and back to 178x218 pixels;
  roll err    the in-plane rotation left by the alignment, degrees (median, 90th percentile);
  ms/photo    detection time per photo (the machine's load is printed: it is shared).
The "clean" rows run the same detectors on the 100 aligned originals themselves (no warp): the floor set by how much
CelebA's own framing and the detector's landmarks vary from face to face.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tf_faceedit.data import align, detectors  # noqa: E402
from tf_faceedit.images import IMAGE_EXTENSIONS, read_image

FACE_CENTRE = (88.5, 131.0)  # between the eyes and the mouth in the 178x218 frame
FACE_WIDTH = 100.0  # about the MTCNN / Haar box side of an aligned CelebA face, 178x218 pixels


def load_faces(data_dir, limit):
    folder = Path(data_dir) / "images"
    if not folder.is_dir():
        sys.exit(f"error: {folder} does not exist (give --data_dir, a folder of aligned 178x218 CelebA images)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    faces = [read_image(p) for p in files]
    if not faces or faces[0].shape[:2] != (218, 178):
        sys.exit(f"error: {folder} must hold aligned 178x218 CelebA images")
    return faces


def background(rng, height, width):
    """A smooth textured background with a few flat shapes: no faces, but edges and blobs."""
    shape = (height // 40 + 2, width // 40 + 2)
    low = (rng.uniform(50, 200, shape + (1,)) + rng.uniform(-25, 25, shape + (3,))).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            axes = (int(rng.integers(10, 80)), int(rng.integers(10, 80)))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            corner = (centre[0] + int(rng.integers(10, 120)), centre[1] + int(rng.integers(10, 120)))
            cv2.rectangle(image, centre, corner, colour, -1, cv2.LINE_AA)
    return np.clip(image, 0, 255)


def build_photos(faces, seed, max_per_photo=3, empty_photos=8, margin=24):
    """[(uint8 photo, [T 2x3 (178x218 -> photo) per face])]."""
    rng = np.random.default_rng(seed)
    order = list(range(len(faces)))
    groups, start = [], 0
    while start < len(order):
        count = int(rng.integers(1, max_per_photo + 1))
        groups.append(order[start : start + count])
        start += count
    groups += [[] for _ in range(empty_photos)]
    photos = []
    for group in groups:
        placed = []
        for index in group:
            scale = float(math.exp(rng.uniform(math.log(0.5), math.log(2.0))))
            angle = float(rng.uniform(-30.0, 30.0))
            rotation = cv2.getRotationMatrix2D((88.5, 108.5), angle, scale)  # about the image centre
            corners = align.apply_transform(rotation, [[-0.5, -0.5], [177.5, -0.5], [-0.5, 217.5], [177.5, 217.5]])
            low, high = corners.min(axis=0), corners.max(axis=0)
            placed.append((index, rotation, low, high))
        widths = [h[0] - lo[0] for _, _, lo, h in placed]
        heights = [h[1] - lo[1] for _, _, lo, h in placed]
        width = int(math.ceil(sum(widths) + margin * (len(placed) + 1))) if placed else int(rng.integers(300, 900))
        height = (
            int(math.ceil(max(heights) + 2 * margin + rng.integers(0, 80))) if placed else int(rng.integers(300, 700))
        )
        canvas = background(rng, height, width)
        transforms, x = [], float(margin)
        for (index, rotation, low, _high), w, h in zip(placed, widths, heights):
            matrix = rotation.copy()
            y = margin + rng.uniform(0, height - 2 * margin - h)
            matrix[:, 2] += [x - low[0], y - low[1]]
            x += w + margin
            face = faces[index].astype(np.float32)
            warped = cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR)
            ramp = np.ones((218, 178), np.float32)
            ramp = cv2.GaussianBlur(
                cv2.copyMakeBorder(ramp[4:-4, 4:-4], 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=0), (7, 7), 2.0
            )
            weight = cv2.warpAffine(ramp, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            canvas = canvas * (1.0 - weight) + warped * weight
            transforms.append(matrix)
        quality = int(rng.integers(60, 91))
        ok, data = cv2.imencode(
            ".jpg",
            cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, quality],
        )
        assert ok
        photos.append((cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), transforms))
    return photos


def canonical_eyes_178(name):
    if name == "mtcnn":
        return np.array(align.CELEBA_LANDMARKS[:2])
    return np.array([align.CELEBA_LEFT_EYE, align.CELEBA_RIGHT_EYE])


def alignment_errors(face, to_photo, reference_eyes, size=178):
    """(eye landmark error, alignment eye error, roll error) of one detected face, 178x218 pixels / degrees."""
    back = align.invert_transform(to_photo)  # photo -> 178x218
    eye_error = float(np.hypot(*(align.apply_transform(back, face.eyes) - reference_eyes).T).max())
    photo_to_view = align.face_transform(face.eyes, size, 1.0, face.landmarks)
    # The ideal: 178x218 -> view is the pipeline's centre crop (rows 20..197 at S = 178).
    crop = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -20.0]])
    total = photo_to_view.copy()
    total[:, :2] = photo_to_view[:, :2] @ to_photo[:, :2]
    total[:, 2] = photo_to_view[:, :2] @ to_photo[:, 2] + photo_to_view[:, 2]
    landed = align.apply_transform(total, reference_eyes)
    align_error = float(np.hypot(*(landed - align.apply_transform(crop, reference_eyes)).T).max())
    roll_error = abs(align.transform_rotation_degrees(total))
    return eye_error, align_error, roll_error


def match(faces, transforms):
    """Pairs detections with true faces: {true index: face}, number of unmatched detections."""
    centres = [align.apply_transform(t, [FACE_CENTRE])[0] for t in transforms]
    sizes = [align.transform_scale(t) * FACE_WIDTH for t in transforms]
    matched, false_boxes = {}, 0
    for face in sorted(faces, key=lambda f: -f.score):
        x, y, w, h = face.box
        best, best_distance = None, None
        for i, (centre, side) in enumerate(zip(centres, sizes)):
            distance = math.hypot(x + w / 2.0 - centre[0], y + h / 2.0 - centre[1])
            if distance < 0.35 * side and i not in matched and (best is None or distance < best_distance):
                best, best_distance = i, distance
        if best is None:
            false_boxes += 1
        else:
            matched[best] = face
    return matched, false_boxes


def evaluate(name, detections, photos, threshold=None):
    """One table row from the raw detections ([(faces, seconds)] per photo)."""
    total = sum(len(t) for _, t in photos)
    found, false_boxes, eyes, aligned, rolls, seconds = 0, 0, [], [], [], 0.0
    for (faces, elapsed), (_, transforms) in zip(detections, photos):
        if threshold is not None:
            faces = [f for f in faces if f.score >= threshold]
        matched, extra = match(faces, transforms)
        found += len(matched)
        false_boxes += extra
        seconds += elapsed
        for i, face in matched.items():
            e, a, r = alignment_errors(face, transforms[i], canonical_eyes_178(name))
            eyes.append(e)
            aligned.append(a)
            rolls.append(r)
    label = name if threshold is None else f"{name} >= {threshold:g}"
    return row(label, found, total, false_boxes, eyes, aligned, rolls, 1000.0 * seconds / len(photos))


def row(label, found, total, false_boxes, eyes, aligned, rolls, ms):
    def stats(values):
        return f"{np.median(values):.2f} / {np.percentile(values, 90):.2f}" if values else "-"

    return (
        f"| {label} | {found}/{total} ({100.0 * found / max(total, 1):.1f} %) | {false_boxes} | {stats(eyes)} | "
        f"{stats(aligned)} | {stats(rolls)} | {ms:.0f} |"
    )


def make_detector(name):
    if name == "mtcnn":
        return detectors.MtcnnDetector(min_confidence=0.0)  # every box ONet keeps; thresholds are applied afterwards
    if name == "haar":
        return detectors.HaarDetector()
    return detectors.DnnDetector(name)


def run_detector(detector, photos):
    detector(photos[0][0])  # warm-up (MTCNN traces its networks once)
    out = []
    for photo, _ in photos:
        start = time.perf_counter()
        faces = detector(photo)
        out.append((faces, time.perf_counter() - start))
    return out


def measure_canonical(faces):
    """Prints the median 5 MTCNN landmarks (and their spread) over the aligned images: `align.CELEBA_LANDMARKS`."""
    detector = detectors.MtcnnDetector(min_confidence=0.0)
    points = []
    for image in faces:
        found = detector(image)
        if found:
            points.append(max(found, key=lambda f: f.score).landmarks)
    points = np.array(points)
    print(f"MTCNN found a face on {len(points)} of {len(faces)} images")
    names = ("left eye", "right eye", "nose", "left mouth", "right mouth")
    for name, median, std in zip(names, np.median(points, axis=0), points.std(axis=0)):
        print(f"{name:12s} median ({median[0]:.2f}, {median[1]:.2f})  std ({std[0]:.2f}, {std[1]:.2f})")
    variance = points.var(axis=0).sum(axis=1)
    print("inverse-variance weights (left eye = 1):", ", ".join(f"{variance[0] / v:.3f}" for v in variance))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="/work/shared/data/celeba-100-178x218")
    parser.add_argument("--num_faces", type=int, default=100)
    parser.add_argument("--detectors", nargs="+", default=["haar", "mtcnn"], help="haar, mtcnn, or a YuNet .onnx path")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="*",
        default=[0.8, 0.9, 0.95, 0.99],
        help="MTCNN confidence thresholds to tabulate besides detectors.DEFAULT_MIN_CONFIDENCE",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure_canonical", action="store_true")
    args = parser.parse_args(argv)
    faces = load_faces(args.data_dir, args.num_faces)
    if args.measure_canonical:
        measure_canonical(faces)
        return 0
    photos = build_photos(faces, args.seed)
    clean = [(image, [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]) for image in faces]
    sizes = [p.shape for p, _ in photos]
    print(
        f"{len(photos)} photos ({sum(len(t) for _, t in photos)} faces, "
        f"{sum(1 for _, t in photos if not t)} without a face), "
        f"{min(s[1] for s in sizes)}-{max(s[1] for s in sizes)} x {min(s[0] for s in sizes)}-"
        f"{max(s[0] for s in sizes)} px; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print()
    print("| detector | found | false boxes | eye err px (median / p90) | align err px | roll err deg | ms/photo |")
    print("|---|---|---|---|---|---|---|")
    for name in args.detectors:
        detector = make_detector(name)
        detections = run_detector(detector, photos)
        clean_detections = run_detector(detector, clean)
        if name == "mtcnn":
            thresholds = sorted(set(args.thresholds) | {detectors.DEFAULT_MIN_CONFIDENCE})
            for threshold in thresholds:
                print(evaluate(name, detections, photos, threshold))
            print(
                evaluate(name, clean_detections, clean, detectors.DEFAULT_MIN_CONFIDENCE).replace(
                    f"| {name} >=", f"| clean originals: {name} >=", 1
                )
            )
        else:
            print(evaluate(name, detections, photos))
            print(evaluate(name, clean_detections, clean).replace(f"| {name}", f"| clean originals: {name}", 1))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
