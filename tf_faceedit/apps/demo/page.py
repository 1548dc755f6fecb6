"""The web demo's Gradio page over `handlers.DemoHandlers` (needs the demo extra: pip install -e .[demo]).

    run(["runs/sagan_quick"], port=7860)                # loads the models and serves the page
    demo = build_demo(DemoHandlers(load_models([...])))  # the Blocks, unlaunched

The page only lays out widgets and forwards events to the handlers (see `tf_faceedit.apps.demo.handlers` for the
contract of what they return); `editor_mask` / `mask_layer` convert between a painted ImageEditor value and the
photo-sized hole mask the handlers take.
"""

import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from tf_faceedit.apps.demo.handlers import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_SIDE,
    DemoHandlers,
    control_specs,
    describe_model,
    face_preview,
    load_models,
    make_example_photos,
    upscale,
)
from tf_faceedit.data import detectors
from tf_faceedit.errors import ConfigError


def editor_mask(value, shape=None):
    """The hole painted in a Gradio ImageEditor value ({"background", "layers", "composite"}, numpy): uint8 [H, W],
    1 where any layer is opaque. None when nothing was painted."""
    if not value:
        return None
    layers = [np.asarray(layer) for layer in (value.get("layers") or []) if layer is not None]
    if not layers:
        return None
    hole = np.zeros(layers[0].shape[:2], bool)
    for layer in layers:
        if layer.shape[:2] != hole.shape:
            continue
        hole |= (
            (layer[..., 3] > 0)
            if (layer.ndim == 3 and layer.shape[-1] == 4)
            else (np.asarray(layer) > 0).reshape(layer.shape[:2] + (-1,)).any(-1)
        )
    if shape is not None and hole.shape != tuple(shape[:2]):
        hole = cv2.resize(hole.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return hole.astype(np.uint8) if hole.any() else None


def mask_layer(mask, color=(255, 255, 255), alpha=200):
    """A photo-sized hole mask as an RGBA ImageEditor layer."""
    layer = np.zeros(mask.shape[:2] + (4,), np.uint8)
    layer[mask > 0] = (*color, alpha)
    return layer


# ---------------------------------------------------------------------------------------------------------------
# The page


def _require_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        raise ConfigError("the web demo needs Gradio: pip install -e '.[demo]'") from None
    return gr


def build_demo(handlers, examples=()):
    """The Gradio Blocks page over `handlers` (see the module docstring); `examples` are photo paths."""
    gr = _require_gradio()
    labels = list(handlers.models)
    specs = {label: control_specs(model) for label, model in handlers.models.items()}

    def is_completion(label):
        return handlers.models[label].task == "complete"

    def panel_labels(label):
        if is_completion(label):
            return "Aligned input, hole in grey", "Completed", "Raw generator output"
        return "Aligned input", "Edited", "Attention overlay"

    with gr.Blocks(title="tf_faceedit demo", analytics_enabled=False) as demo:
        photo_state, faces_state = gr.State(None), gr.State(None)
        gr.Markdown("# tf_faceedit: attention-guided face editing")
        with gr.Row():
            picker = gr.Dropdown(
                labels, value=labels[0], label="Model", visible=len(labels) > 1, elem_id="model_picker"
            )
            info = gr.Markdown(describe_model(handlers.models[labels[0]]), elem_id="model_info")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Upload a photo", type="filepath", elem_id="upload")
                if examples:
                    gr.Examples([[path] for path in examples], inputs=[upload], label="Or pick a generated example")
                preview = gr.Image(
                    label="Detected faces", type="numpy", interactive=False, format="png", elem_id="preview"
                )
                face = gr.Dropdown([], value=None, label="Face", type="index", elem_id="face")
                controls, groups = {}, {}
                for label in labels:
                    with gr.Group(visible=label == labels[0]) as group:
                        gr.Markdown(f"Target attributes ({label})")
                        widgets = []
                        for spec in specs[label]:
                            slug = f"{label}_{spec['name']}".replace(" ", "_").replace("/", "_")
                            if spec["kind"] == "slider":
                                widgets.append(
                                    gr.Slider(
                                        spec["minimum"],
                                        spec["maximum"],
                                        value=spec["value"],
                                        step=0.05,
                                        label=spec["name"],
                                        elem_id=f"attr_{slug}",
                                    )
                                )
                            else:
                                widgets.append(
                                    gr.Checkbox(value=bool(spec["value"]), label=spec["name"], elem_id=f"attr_{slug}")
                                )
                    controls[label], groups[label] = widgets, group
                run_button = gr.Button("Edit", variant="primary", elem_id="run")
                with gr.Group(visible=is_completion(labels[0])) as hole_group:
                    editor = gr.ImageEditor(
                        label="Paint the hole",
                        type="numpy",
                        elem_id="hole_editor",
                        brush=gr.Brush(default_size=12, colors=["#ffffff"], color_mode="fixed"),
                    )
                    random_button = gr.Button("Random mask", elem_id="random_mask")
                    seed = gr.Number(0, label="Mask seed", precision=0)
            with gr.Column(scale=2):
                message = gr.Markdown("Upload a photo or pick an example.", elem_id="message")
                result = gr.Image(label="Result", type="numpy", interactive=False, format="png", elem_id="result")
                with gr.Row():
                    before = gr.Image(
                        label=panel_labels(labels[0])[0], interactive=False, format="png", elem_id="before"
                    )
                    after = gr.Image(label=panel_labels(labels[0])[1], interactive=False, format="png", elem_id="after")
                with gr.Row():
                    overlay = gr.Image(
                        label=panel_labels(labels[0])[2], interactive=False, format="png", elem_id="overlay"
                    )
                    residual = gr.Image(
                        label="Residual |edit - input| (scaled to its max)",
                        interactive=False,
                        format="png",
                        elem_id="residual",
                        visible=not is_completion(labels[0]),
                    )
                gallery = gr.Gallery(
                    label="AttentionGAN attention and content masks",
                    columns=6,
                    visible=False,
                    format="png",
                    elem_id="mask_gallery",
                )

        all_controls = [widget for label in labels for widget in controls[label]]

        def values_of(label, flat):
            start = sum(len(controls[other]) for other in labels[: labels.index(label)])
            return list(flat[start : start + len(controls[label])])

        def error_message(out):
            return f"**Error:** {out['error']}"

        # -- model picker ----------------------------------------------------------------------------------
        def on_pick(label):
            completion = is_completion(label)
            names = panel_labels(label)
            updates = [
                describe_model(handlers.models[label]),
                gr.update(visible=completion),
                gr.update(value="Complete" if completion else "Edit"),
                gr.update(visible=handlers.models[label].capabilities.content_masks),
                gr.update(label=names[0], value=None),
                gr.update(label=names[1], value=None),
                gr.update(label=names[2], value=None),
                gr.update(visible=not completion, value=None),
                gr.update(value=None),
            ]
            return updates + [gr.update(visible=other == label) for other in labels]

        picker.change(
            on_pick,
            picker,
            [info, hole_group, run_button, gallery, before, after, overlay, residual, result]
            + [groups[x] for x in labels],
        )

        # -- photo ---------------------------------------------------------------------------------------------
        def control_updates(label, start):
            """Updates of every control: the `start["values"]` of model `label`'s controls, the others unchanged."""
            flat = [gr.update() for _ in all_controls]
            values = start.get("values")
            if values is None:
                return flat
            offset = sum(len(controls[other]) for other in labels[: labels.index(label)])
            for i, value in enumerate(values):
                checkbox = specs[label][i]["kind"] == "checkbox"
                flat[offset + i] = gr.update(value=bool(value > 0.5) if checkbox else float(value))
            return flat

        def on_upload(path, label, progress=gr.Progress()):
            progress(0.2, desc="detecting faces")
            out = handlers.load_photo(path)
            cleared = [None] * (len(run_outputs) - 1)  # the last photo's results go away with it
            if "error" in out:
                return (
                    [None, None, None, gr.update(choices=[], value=None), error_message(out), None]
                    + [gr.update() for _ in all_controls]
                    + cleared
                )
            start = handlers.initial_values(label, out["photo"], 0)
            editor_value = {"background": out["photo"], "layers": [], "composite": out["photo"]}
            text = out["message"] + (f"; {start['message']}" if start.get("message") else "")
            return (
                [
                    out["photo"],
                    out["faces"],
                    out["preview"],
                    gr.update(choices=out["labels"], value=out["labels"][0]),
                    text,
                    editor_value,
                ]
                + control_updates(label, start)
                + cleared
            )

        run_outputs = [message, result, before, after, overlay, residual, gallery]
        upload.change(
            on_upload,
            [upload, picker],
            [photo_state, faces_state, preview, face, message, editor] + all_controls + run_outputs[1:],
        )

        # -- edit / complete ---------------------------------------------------------------------------------
        def on_run(label, photo, face_index, editor_value, *flat, progress=gr.Progress()):
            progress(0.1, desc="running the model")
            values = values_of(label, flat)
            if is_completion(label):
                mask = editor_mask(editor_value, None if photo is None else photo.shape)
                out = handlers.complete(label, photo, mask, face_index, values)
                if "error" in out:
                    return [error_message(out)] + [gr.update()] * 6
                return [
                    out["message"],
                    out["result"],
                    upscale(out["masked"]),
                    upscale(out["completed"]),
                    upscale(out["raw"]),
                    None,
                    gr.update(),
                ]
            out = handlers.edit(label, photo, face_index, values)
            if "error" in out:
                return [error_message(out)] + [gr.update()] * 6
            progress(0.9, desc="drawing")
            return [
                out["message"],
                out["result"],
                upscale(out["before"]),
                upscale(out["after"]),
                upscale(out["overlay"]),
                upscale(out["residual_scaled"]),
                gr.update(
                    value=[(upscale(image), caption) for image, caption in out["gallery"]] or None,
                    visible=bool(out["gallery"]),
                ),
            ]

        run_inputs = [picker, photo_state, face, editor] + all_controls
        run_button.click(on_run, run_inputs, run_outputs)

        def on_control(label, photo, face_index, editor_value, *flat, progress=gr.Progress()):
            # a changed control re-runs an edit at once; completion waits for the button (the hole comes first)
            if photo is None or is_completion(label):
                return [gr.update()] * len(run_outputs)
            return on_run(label, photo, face_index, editor_value, *flat, progress=progress)

        for widget in all_controls:
            event = widget.release if isinstance(widget, gr.Slider) else widget.input
            event(on_control, run_inputs, run_outputs)

        def on_face(label, photo, faces, face_index):
            if photo is None or face_index is None:
                return [gr.update()] * (len(all_controls) + 2)
            flat = control_updates(label, handlers.initial_values(label, photo, face_index))
            return [face_preview(photo, faces or [], face_index), gr.update()] + flat

        face.input(on_face, [picker, photo_state, faces_state, face], [preview, message] + all_controls)

        def on_random(label, photo, face_index, seed_value):
            out = handlers.random_mask(label, photo, face_index, int(seed_value or 0))
            if "error" in out:
                return gr.update(), error_message(out)
            layer = mask_layer(out["mask"])
            shown = photo.copy()
            shown[out["mask"] > 0] = layer[out["mask"] > 0, :3]
            return {"background": photo, "layers": [layer], "composite": shown}, out["message"]

        random_button.click(on_random, [picker, photo_state, face, seed], [editor, message])
    return demo


def run(
    model_dirs=(),
    export_dirs=(),
    port=7860,
    host="127.0.0.1",
    max_side=DEFAULT_MAX_SIDE,
    detector_model=None,
    block=True,
):
    """Loads the models, generates the example photos and serves the page on http://host:port.
    Returns the launched Blocks (with `block=False`, the server runs in a background thread: call `.close()`)."""
    _require_gradio()  # before the slow model loading
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests
    models = load_models(model_dirs, export_dirs)
    detector = detectors.load_detector(detector_model)
    handlers = DemoHandlers(models, detector=detector, max_side=max_side)
    examples = make_example_photos(tempfile.mkdtemp(prefix="tf_faceedit_demo_"), detector=detector)
    demo = build_demo(handlers, examples)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=int(port),
        prevent_thread_lock=not block,
        quiet=not block,
        show_error=False,
        ssr_mode=False,
        max_file_size=DEFAULT_MAX_FILE_BYTES,
        allowed_paths=[str(Path(p).parent) for p in examples[:1]],
    )
    return demo
