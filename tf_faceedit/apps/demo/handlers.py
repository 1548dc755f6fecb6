"""The web demo's request handlers: model loading and `DemoHandlers` (plain numpy, testable without a browser);
the Gradio page built on them is `tf_faceedit.apps.demo.page`.

    handlers = DemoHandlers(load_models(["runs/sagan_quick"]))
    photo = handlers.load_photo("photo.jpg")            # {"photo", "faces", "preview", "message", ...} or {"error"}
    result = handlers.edit("sagan_quick", photo["photo"], 0, [1.0])     # {"result", "before", "after", ...}
    page.run(["runs/sagan_quick"], port=7860)           # the page (needs the demo extra: pip install -e .[demo])

Contract:
  * Photos are RGB uint8 [H, W, 3]. Files larger than `max_pixels` (or `max_file_bytes`) are refused with a
    message; photos whose longer side is above `max_side` are downscaled (INTER_AREA) before anything else.
  * Faces are found, aligned and pasted back exactly as `python -m tf_faceedit.edit` does
    (`tf_faceedit.data.align.edit_photo`); one face is edited at a time, `face_index` counted from the left (0-based).
  * Attribute values are the model's target values in `model.attribute_names` order: {0, 1} for the binary methods
    (checkboxes), sliders span the model's `attribute_range` for the methods that declare them
    (`model.capabilities.attribute_controls == "slider"`: Fader's [-1, 2], beyond [0, 1] on purpose); a value
    that is not finite or out of that range is an {"error"} naming the attribute. What is shown for a model comes
    from its method's `tf_faceedit.registry.Capabilities`, never from its name.
  * Edit results ("edit" models): "result" the photo with the edited face pasted back; "before"/"after" the aligned
    crops (S x S, the model's `image_size`); "residual" |after - before| (uint8) and "residual_scaled" (scaled so its
    maximum is 255); "overlay" the edit region (SaGAN's attention, AttentionGAN's 1 - background mask) as a heat map
    over the crop, None for methods without attention; "gallery" [(image, caption)] of every attention/content
    mask of a method with content masks (AttentionGAN).
  * Completion results ("complete" models): the mask is photo-sized, nonzero = hole (drawn with the brush or from
    `random_mask`, the training mask generator warped from the face crop into the photo); "result" the photo with
    the completed face pasted back, "masked" the crop with the hole painted grey, "completed" and "raw" (the
    generator's output everywhere) at S x S.
  * Every handler returns a dict; a user mistake (no face, unreadable file, huge image, no hole) gives
    {"error": one-line message} and never raises; an unexpected failure is logged with its traceback on the server
    and the page gets a one-line message.
"""

import dataclasses
import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from tf_faceedit import images
from tf_faceedit.data import align, detectors
from tf_faceedit.errors import ConfigError, DataError, FaceEditError
from tf_faceedit.eval import identity as face_identity

log = logging.getLogger("tf_faceedit")

DEFAULT_MAX_SIDE = 1024  # longer photo side the demo works at (larger photos are downscaled)
DEFAULT_MAX_PIXELS = 40_000_000  # larger photos are refused (decoding them would take GBs of memory)
DEFAULT_MAX_FILE_BYTES = 25 * 1024 * 1024
DISPLAY_SIZE = 256  # face crops are shown upscaled to this side
HOLE_GREY = 128


# ---------------------------------------------------------------------------------------------------------------
# Models


def _unique_label(label, taken):
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label} ({n})", n + 1
    return candidate


def load_models(model_dirs=(), export_dirs=()):
    """Loads every model_dir and export dir with `tf_faceedit.load`. Returns {label: FaceEditModel}, in order,
    labelled by folder name (an export `NAME/1` is "NAME/1"). Raises ConfigError naming the flag of a bad folder."""
    from tf_faceedit import api, model_source

    models = {}
    for flag, paths in (("--model_dir", model_dirs), ("--export_dir", export_dirs)):
        for path in paths or ():
            path = Path(path)
            if not path.is_dir():
                raise ConfigError(f"{flag} {path} does not exist or is not a folder")
            source = model_source.locate(path)
            is_run = source.kind in ("run", "zoo")  # a zoo entry's folder loads like a run
            if flag == "--model_dir" and not is_run:
                raise ConfigError(f"{flag} {path} has no config.yaml (is it a training run folder?)")
            if flag == "--export_dir" and source.kind != "export":
                raise ConfigError(f"{flag} {path} has no saved_model.pb (is it an export version folder?)")
            model = api.load(source)
            label = path.name if flag == "--model_dir" or not path.name.isdigit() else f"{path.parent.name}/{path.name}"
            models[_unique_label(label or str(path), models)] = model
    if not models:
        raise ConfigError("give at least one --model_dir or --export_dir")
    return models


def describe_model(model):
    """Markdown lines: method, task, training step (or export folder) and attribute names."""
    info = model.info or {}
    where = f"step {info['step']}" if "step" in info else f"export {info.get('export_dir', '?')}"
    task = "attribute editing" if model.task == "edit" else "face completion"
    lines = [
        f"**{model.method}** ({task}) · {where} · {model.image_size}×{model.image_size} faces",
        f"Attributes: {', '.join(model.attribute_names) or '(none)'}",
    ]
    if model.capabilities.usage_note:
        lines.append(model.capabilities.usage_note)
    return "  \n".join(lines)


def control_specs(model):
    """One control per attribute: {"name", "kind": "slider"|"checkbox", "minimum", "maximum", "value"}."""
    slider = model.capabilities.attribute_controls == "slider"
    specs = []
    for name in model.attribute_names:
        if slider:  # the model's own range; an export written before the range was: the method's declared one
            low, high = model.attribute_range or model.capabilities.attribute_range
            specs.append({"name": name, "kind": "slider", "minimum": low, "maximum": high, "value": 0.0})
        else:
            specs.append({"name": name, "kind": "checkbox", "minimum": 0.0, "maximum": 1.0, "value": 0.0})
    return specs


# ---------------------------------------------------------------------------------------------------------------
# Images


def read_photo(path, max_side=DEFAULT_MAX_SIDE, max_pixels=DEFAULT_MAX_PIXELS, max_file_bytes=DEFAULT_MAX_FILE_BYTES):
    """Reads an uploaded photo. Returns (RGB uint8 [H, W, 3], note): the note says when it was downscaled.

    Raises:
      DataError: no file, an unreadable file, or a file / image above the limits.
    """
    if path is None or str(path) == "":
        raise DataError("no photo: upload one or pick an example")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"photo {name} does not exist")
    size = path.stat().st_size
    if size > max_file_bytes:
        raise DataError(
            f"photo {name} is {size / 2**20:.1f} MB; the demo takes files up to {max_file_bytes / 2**20:.0f} MB"
        )
    try:
        header = images.read_header(path, max_pixels=None)  # the real header: nothing is decoded yet
    except DataError:
        raise DataError(f"cannot read {name}: not an image file (JPEG, PNG, GIF, BMP, WebP or TIFF)") from None
    if header.pixels > max_pixels:
        raise DataError(
            f"photo {name} is {header.width}x{header.height} pixels; the demo takes up to "
            f"{max_pixels / 1e6:.0f} megapixels"
        )
    try:
        photo = images.read_image(path, max_pixels=max_pixels)
    except DataError:
        raise DataError(f"cannot read {name}: not an image file, or its data is damaged") from None
    height, width = photo.shape[:2]
    if height * width > max_pixels:
        raise DataError(
            f"photo {name} is {width}x{height} pixels; the demo takes up to {max_pixels / 1e6:.0f} megapixels"
        )
    photo, note = downscale(photo, max_side)
    return photo, note


def downscale(photo, max_side=DEFAULT_MAX_SIDE):
    """Shrinks a photo whose longer side is above `max_side` (INTER_AREA). Returns (photo, note or "")."""
    height, width = photo.shape[:2]
    if max(height, width) <= max_side:
        return photo, ""
    scale = max_side / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(photo, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return small, f"downscaled from {width}x{height} to {new_w}x{new_h}"


def face_preview(photo, faces, selected=0):
    """The photo with each face's box and number (1-based, from the left); the selected one in green."""
    out = photo.copy()
    thickness = max(1, round(max(photo.shape[:2]) / 300))
    for i, face in enumerate(faces):
        x, y, w, h = (int(round(v)) for v in face.box)
        color = (40, 220, 40) if i == selected else (240, 200, 40)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thickness)
        cv2.putText(
            out,
            str(i + 1),
            (x + 2 * thickness, y + h - 3 * thickness),
            cv2.FONT_HERSHEY_SIMPLEX,
            max(0.4, w / 150),
            color,
            thickness,
            cv2.LINE_AA,
        )
    return out


def face_labels(faces):
    return [f"face {i + 1}" for i in range(len(faces))]


def heat_overlay(crop, region, alpha=0.55):
    """A [S, S] map in [0, 1] drawn as a JET heat map over the crop (alpha-weighted by the map)."""
    region = np.clip(np.asarray(region, np.float32), 0.0, 1.0)
    if region.shape[:2] != crop.shape[:2]:
        region = cv2.resize(region, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(cv2.applyColorMap(images.mask_to_uint8(region), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB).astype(
        np.float32
    )
    weight = alpha * region[..., None]
    return np.round(crop.astype(np.float32) * (1 - weight) + heat * weight).astype(np.uint8)


def edit_region(method, attention):
    """The [S, S] edit region in [0, 1] of an "attention" extra: SaGAN's mask; AttentionGAN's 1 - background (the
    last of its n softmax masks) for scheme II, its one mask for scheme I. None without attention."""
    if attention is None:
        return None
    attention = np.asarray(attention, np.float32)
    if attention.ndim == 2:
        return attention
    return images.foreground_attention(attention)[..., 0]


def mask_gallery(attention, content):
    """[(uint8 image, caption)] of AttentionGAN's attention masks (background last) and content masks."""
    items = []
    attention = np.asarray(attention, np.float32)
    n = attention.shape[-1]
    for i in range(n):
        caption = "attention: background" if (i == n - 1 and n > 1) else f"attention {i + 1}"
        grey = images.mask_to_uint8(attention[..., i])
        items.append((np.repeat(grey[..., None], 3, axis=-1), caption))
    if content is not None:
        content = np.asarray(content, np.float32)
        for i in range(content.shape[-1] // 3):
            rgb = images.to_uint8(content[..., 3 * i : 3 * i + 3])
            items.append((rgb, f"content {i + 1}"))
    return items


def upscale(image, size=DISPLAY_SIZE):
    """Nearest-neighbour upscaling of a small crop for display (the pixels stay visible as they are)."""
    if image is None or image.shape[0] >= size:
        return image
    factor = max(1, size // image.shape[0])
    return cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------------------------------------------------------
# Example photos (generated at start-up: no committed binaries)


def make_example_photos(out_dir, count=3, seed=0, detector=None, tries=40):
    """Writes `count` one-face photos of drawn faces the detector finds (each padded into a grey canvas), plus one
    photo with two faces side by side. Returns their paths."""
    from tf_faceedit.data.synthetic import make_face

    detector = detectors.HaarDetector() if detector is None else detector
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = []
    for index in range(tries):
        bgr, _ = make_face(seed, index)
        face = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if len(detectors.detect_faces(face, detector)) == 1:
            faces.append(face)
        if len(faces) == count + 1:
            break
    paths = []
    for i, face in enumerate(faces[:count]):
        canvas = np.full((300, 320, 3), (150, 160, 170), np.uint8)
        canvas[40:258, 70:248] = face
        paths.append(out_dir / f"example_{i + 1}.png")
        images.write_image(paths[-1], canvas)
    if len(faces) >= 2:
        canvas = np.full((300, 440, 3), (170, 160, 150), np.uint8)
        canvas[40:258, 20:198] = faces[0]
        canvas[40:258, 242:420] = faces[-1]
        if len(detectors.detect_faces(canvas, detector)) == 2:
            paths.append(out_dir / "example_two_faces.png")
            images.write_image(paths[-1], canvas)
    return [str(p) for p in paths]


# ---------------------------------------------------------------------------------------------------------------
# Request handlers


def _as_uint8_mask(mask, shape):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.max(axis=-1)
    if mask.shape != tuple(shape[:2]):
        raise DataError(f"the hole mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {shape[1]}x{shape[0]}")
    return (mask > 0).astype(np.uint8)


@dataclasses.dataclass
class DemoHandlers:
    """What the page calls; every method returns a dict (see the module docstring), {"error": message} on failure.

    Args:
      models: {label: FaceEditModel} (`load_models`).
      detector: face detector (`detectors.load_detector`); default Haar cascades.
      max_side, max_pixels, max_file_bytes: photo limits (see `read_photo`).
      identity: "auto" (the edit's message gives the face recognizer's distance between photo and edit when
        `tf_faceedit[identity]` is installed), False, or a recognizer (`tf_faceedit.eval.identity`).
    """

    models: dict
    detector: object = None
    max_side: int = DEFAULT_MAX_SIDE
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    identity: object = "auto"

    def __post_init__(self):
        if self.detector is None:
            self.detector = detectors.HaarDetector()
        self._identity = None if self.identity in (False, None) else self.identity  # made at the first edit
        self._lock = threading.Lock()  # one inference at a time: the models and the detector are shared

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _guard(self, fn, *args):
        try:
            with self._lock:
                return fn(*args)
        except FaceEditError as err:
            return {"error": str(err)}
        except Exception as err:  # noqa: BLE001 - the page shows one line; the traceback goes to the server log
            log.exception("demo request failed")
            return {"error": f"internal error ({type(err).__name__}): {err}. Details are in the server log."}

    def model(self, label):
        if label not in self.models:
            raise ConfigError(f"unknown model {label!r}; loaded: {', '.join(self.models)}")
        return self.models[label]

    def _attributes(self, model, values):
        try:
            values = [float(v) for v in (values or [])]
        except (TypeError, ValueError):
            raise ConfigError(f"attribute values must be numbers, got {values!r}") from None
        if len(values) != len(model.attribute_names):
            raise ConfigError(
                f"{model.method} takes {len(model.attribute_names)} attribute value(s) "
                f"({', '.join(model.attribute_names)}), got {len(values)}"
            )
        attributes = dict(zip(model.attribute_names, values))
        model.check_attribute_values(attributes)  # NaN, infinity, out of the method's range: named, before any work
        return attributes

    @staticmethod
    def _photo(photo):
        if photo is None:
            raise DataError("no photo: upload one or pick an example")
        return np.ascontiguousarray(photo, np.uint8)

    def _face(self, photo, face_index):
        """(checked face index, a detector that returns this photo's faces without running the cascade again)."""
        faces = detectors.detect_faces(photo, self.detector)
        if not faces:
            raise DataError("no face found in the photo: try a photo with a frontal, upright face")
        index = 0 if face_index is None else int(face_index)
        if not 0 <= index < len(faces):
            raise DataError(f"face {index + 1} does not exist: {len(faces)} face(s) in the photo")
        return index, lambda image: faces

    # -- photo --------------------------------------------------------------------------------------------------
    def load_photo(self, path):
        """An uploaded file -> {"photo", "faces" (list of Face), "labels", "preview", "message"}."""
        return self._guard(self._load_photo, path)

    def _load_photo(self, path):
        photo, note = read_photo(path, self.max_side, self.max_pixels, self.max_file_bytes)
        faces = detectors.detect_faces(photo, self.detector)
        if not faces:
            raise DataError(f"no face found in {Path(path).name}: try a photo with a frontal, upright face")
        message = f"{len(faces)} face(s) found" + (" (pick one with the face selector)" if len(faces) > 1 else "")
        if note:
            message += f"; {note}"
        return {
            "photo": photo,
            "faces": faces,
            "labels": face_labels(faces),
            "preview": face_preview(photo, faces),
            "message": message,
        }

    def initial_values(self, label, photo, face_index=0):
        """The controls' starting values for a face: the model's own prediction when it has one (SaGAN, IcGAN), so
        that changing one control changes one attribute; else the controls' defaults. {"values", "message"}."""
        return self._guard(self._initial_values, label, photo, face_index)

    def _initial_values(self, label, photo, face_index):
        model = self.model(label)
        defaults = [spec["value"] for spec in control_specs(model)]
        if not model.can_predict_attributes or photo is None:
            return {"values": defaults, "message": ""}
        photo = self._photo(photo)
        index, detector = self._face(photo, face_index)
        aligned = align.align_faces(photo, model.image_size, model.crop_fraction, detector, index)
        predicted = model.predict_attributes(aligned[0].image)
        return {"values": [float(v) for v in predicted], "message": "controls set to the model's prediction"}

    # -- edit ---------------------------------------------------------------------------------------------------
    def edit(self, label, photo, face_index, values):
        """Edits one face of the photo to the target attribute `values` (see the module docstring)."""
        return self._guard(self._edit, label, photo, face_index, values)

    def _edit(self, label, photo, face_index, values):
        model = self.model(label)
        if model.task != "edit":
            raise ConfigError(f"{label} is a completion model: draw a hole and press Complete")
        photo = self._photo(photo)
        attributes = self._attributes(model, values)
        extras = {}

        def edit_fn(faces):
            out = model.edit(faces, attributes)
            extras.update({key: value for key, value in out.items() if key != "image"})
            return out["image"]

        index, detector = self._face(photo, face_index)
        result, aligned, edited = align.edit_photo(
            photo, edit_fn, model.image_size, model.crop_fraction, detector, index, source="the photo"
        )
        before, after = aligned[0].image, edited[0]
        residual = np.abs(after.astype(np.int16) - before.astype(np.int16)).astype(np.uint8)
        peak = int(residual.max())
        scaled = np.round(residual.astype(np.float32) * (255.0 / peak)).astype(np.uint8) if peak else residual
        attention = extras.get("attention")
        attention = None if attention is None else np.asarray(attention)[0]
        region = edit_region(model.method, attention)
        content = extras.get("content")
        gallery = []
        if model.capabilities.content_masks and attention is not None:
            gallery = mask_gallery(attention, None if content is None else np.asarray(content)[0])
        settings = ", ".join(f"{k}={v:g}" for k, v in attributes.items())
        message = f"edited face {index + 1} ({settings}); largest change {peak}/255"
        distance = self._identity_distance(photo, result)
        if distance is not None:
            limit = face_identity.SAME_PERSON_THRESHOLD
            verdict = "same person" if distance < limit else "another person"
            message += f"; identity distance {distance:.2f} ({verdict}: the same below {limit:g})"
        if region is None:
            message += f"; {model.method} has no attention mask"
        else:
            message += f"; attention mean {region.mean():.2f}, max {region.max():.2f}"
        return {
            "result": result,
            "before": before,
            "after": after,
            "residual": residual,
            "residual_scaled": scaled,
            "overlay": None if region is None else heat_overlay(before, region),
            "region": region,
            "gallery": gallery,
            "message": message,
        }

    def _identity_distance(self, photo, result):
        """The face recognizer's distance between the photo and the edited photo (None without the extra)."""
        if isinstance(self._identity, str):
            self._identity = face_identity.load_recognizer() if face_identity.available() else None
        if self._identity is None:
            return None
        meter = face_identity.IdentityMeter(self._identity, aligned=False)
        distance = float(meter.distances(meter.reference(photo[None]), result[None])[0])
        return None if np.isnan(distance) else distance

    # -- completion ---------------------------------------------------------------------------------------------
    def random_mask(self, label, photo, face_index=0, seed=0):
        """A photo-sized uint8 hole mask (1 = hole) from the model's training mask generator (`data.mask`; noise
        masks for an export), drawn in the face crop and warped into the photo. {"mask", "message"}."""
        return self._guard(self._random_mask, label, photo, face_index, seed)

    def _random_mask(self, label, photo, face_index, seed):
        import tensorflow as tf

        from tf_faceedit.config import MaskConfig
        from tf_faceedit.data import masks

        model = self.model(label)
        photo = self._photo(photo)
        index, detector = self._face(photo, face_index)
        aligned = align.align_faces(photo, model.image_size, model.crop_fraction, detector, index)
        mask_cfg = getattr(getattr(model.config, "data", None), "mask", None)
        if mask_cfg is None or mask_cfg.kind == "none":
            mask_cfg = MaskConfig(kind="noise")
        mask_fn = masks.make_mask_fn(mask_cfg, model.image_size)
        crop_mask = mask_fn(tf.constant([int(seed), 0], tf.int64)).numpy()[..., 0]
        height, width = photo.shape[:2]
        mask = cv2.warpAffine(
            crop_mask,
            np.asarray(aligned[0].transform, np.float64),
            (width, height),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        return {"mask": (mask > 0.5).astype(np.uint8), "message": f"random {mask_cfg.kind} mask (seed {seed})"}

    def complete(self, label, photo, mask, face_index, values):
        """Completes the hole (photo-sized mask, nonzero = hole) in one face (see the module docstring)."""
        return self._guard(self._complete, label, photo, mask, face_index, values)

    def _complete(self, label, photo, mask, face_index, values):
        model = self.model(label)
        if model.task != "complete":
            raise ConfigError(f"{label} is an editing model: use the attribute controls")
        photo = self._photo(photo)
        mask = _as_uint8_mask(mask, photo.shape)
        if mask is None or not mask.any():
            raise DataError("no hole: paint the region to fill with the brush, or press 'Random mask'")
        attributes = self._attributes(model, values)
        extras = {}

        def edit_fn(faces, face_masks):
            hole = (face_masks > 0.5).astype(np.uint8)
            if not hole.any():
                raise DataError("the hole does not touch the selected face: paint over the face")
            out = model.complete(faces, hole, attributes)
            extras.update(out, hole=hole)
            return out["completed"]

        index, detector = self._face(photo, face_index)
        result, aligned, completed = align.edit_photo(
            photo, edit_fn, model.image_size, model.crop_fraction, detector, index, mask=mask, source="the photo"
        )
        hole = extras["hole"][0, ..., 0] > 0
        masked = aligned[0].image.copy()
        masked[hole] = HOLE_GREY
        settings = ", ".join(f"{k}={v:g}" for k, v in attributes.items())
        return {
            "result": result,
            "masked": masked,
            "completed": completed[0],
            "raw": np.asarray(extras["raw"])[0],
            "message": f"completed face {index + 1}: {hole.mean():.0%} of the crop filled ({settings})",
        }
