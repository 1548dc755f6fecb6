"""The web demo: its request handlers (no browser), its CLI parsing, and one end-to-end run in headless Chromium.

The browser test needs the demo extra (gradio, playwright) and Debian's `chromium` at /usr/bin/chromium (or
$CHROMIUM); it installs nothing and skips, saying what is missing, when one is absent.
"""

import os
import shutil
import socket
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import model_runs
from tests.helpers import MeanColourRecognizer
from tf_faceedit.apps.demo import handlers as demo_handlers
from tf_faceedit.apps.demo import page as demo_page
from tf_faceedit.cli import demo
from tf_faceedit.data import align, detectors
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.images import read_image


@pytest.fixture(scope="module")
def models(tmp_path_factory, synthetic_celeba):
    root = tmp_path_factory.mktemp("demo_runs")
    dirs = [
        model_runs.checkpointed_run(method, synthetic_celeba, root / method)[0]
        for method in ("sagan", "attentiongan", "fader", "pggan_completion")
    ]
    return demo_handlers.load_models(dirs)


@pytest.fixture(scope="module")
def handlers(models):
    return demo_handlers.DemoHandlers(models)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return demo_handlers.make_example_photos(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def photo(examples):
    return read_image(examples[0])


def _blank(path, size=(120, 160)):
    cv2.imwrite(str(path), np.full(size + (3,), 128, np.uint8))
    return path


# ------------------------------------------------------------------------------------------------- photos, limits


def test_example_photos_have_the_faces_they_claim(examples):
    assert len(examples) == 4 and examples[-1].endswith("example_two_faces.png")
    detector = detectors.HaarDetector()
    counts = [len(detectors.detect_faces(read_image(path), detector)) for path in examples]
    assert counts == [1, 1, 1, 2]


def test_read_photo_limits_and_bad_files(tmp_path):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((300, 500, 3), np.uint8))
    photo, note = demo_handlers.read_photo(big, max_side=250)
    assert photo.shape == (150, 250, 3) and note == "downscaled from 500x300 to 250x150"
    photo, note = demo_handlers.read_photo(big)
    assert photo.shape == (300, 500, 3) and note == ""
    with pytest.raises(DataError, match=r"big.png is 500x300 pixels; the demo takes up to 0 megapixels"):
        demo_handlers.read_photo(big, max_pixels=100_000)
    with pytest.raises(DataError, match="MB; the demo takes files up to"):
        demo_handlers.read_photo(big, max_file_bytes=100)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(DataError, match="cannot read notes.png: not an image file"):
        demo_handlers.read_photo(text)
    with pytest.raises(DataError, match="no photo"):
        demo_handlers.read_photo(None)
    with pytest.raises(DataError, match="missing.jpg does not exist"):
        demo_handlers.read_photo(tmp_path / "missing.jpg")


def test_load_photo(handlers, examples, tmp_path):
    out = handlers.load_photo(examples[-1])
    assert out["labels"] == ["face 1", "face 2"] and "2 face(s) found" in out["message"]
    assert out["preview"].shape == out["photo"].shape and not np.array_equal(out["preview"], out["photo"])
    assert handlers.load_photo(_blank(tmp_path / "blank.png")) == {
        "error": "no face found in blank.png: try a photo with a frontal, upright face"
    }
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    assert handlers.load_photo(tmp_path / "broken.jpg")["error"].startswith("cannot read broken.jpg")
    small = demo_handlers.DemoHandlers(handlers.models, max_pixels=10_000)
    assert "megapixels" in small.load_photo(examples[0])["error"]


# ------------------------------------------------------------------------------------------------------- editing


def test_controls_per_method(models):
    assert demo_handlers.control_specs(models["sagan"]) == [
        {"name": "Eyeglasses", "kind": "checkbox", "minimum": 0.0, "maximum": 1.0, "value": 0.0}
    ]
    (fader,) = demo_handlers.control_specs(models["fader"])
    assert fader["kind"] == "slider" and fader["minimum"] < 0.0 and fader["maximum"] > 1.0
    text = demo_handlers.describe_model(models["pggan_completion"])
    assert "pggan_completion" in text and "step 8" in text and "Male, Smiling" in text


def test_edit_sagan(handlers, photo):
    out = handlers.edit("sagan", photo, 0, [1.0])
    assert "error" not in out, out
    result, before, after = out["result"], out["before"], out["after"]
    assert result.shape == photo.shape and before.shape == after.shape == (32, 32, 3)
    np.testing.assert_array_equal(result[:30], photo[:30])  # far from the face: untouched
    assert np.abs(result.astype(int) - photo.astype(int))[60:240, 90:230].mean() > 1.0
    np.testing.assert_array_equal(out["residual"], np.abs(after.astype(int) - before.astype(int)))
    assert out["residual_scaled"].max() == 255
    assert out["overlay"].shape == (32, 32, 3) and out["region"].shape == (32, 32)
    assert not np.array_equal(out["overlay"], before) and out["gallery"] == []
    assert out["message"].startswith("edited face 1 (Eyeglasses=1)")


def test_edit_message_gives_the_identity_distance(models, photo):
    plain = demo_handlers.DemoHandlers(models, identity=False).edit("sagan", photo, 0, [1.0])
    assert "identity" not in plain["message"]
    out = demo_handlers.DemoHandlers(models, identity=MeanColourRecognizer(0.6)).edit("sagan", photo, 0, [1.0])
    assert "error" not in out, out
    distance = float(out["message"].split("identity distance ")[1].split(" ")[0])
    reader = MeanColourRecognizer(0.6)
    box = reader.detect(photo)  # the photo's short side is >= 256: read at its own size
    assert min(photo.shape[:2]) >= 256
    expected = np.linalg.norm(reader.describe(out["result"], box) - reader.describe(photo, box))
    assert distance == pytest.approx(expected, abs=0.006) and distance > 0
    assert "(same person: the same below 0.6)" in out["message"]


def test_edit_attentiongan_shows_every_mask(handlers, photo):
    out = handlers.edit("attentiongan", photo, 0, [1.0])
    captions = [caption for _, caption in out["gallery"]]
    assert captions == ["attention 1", "attention 2", "attention: background", "content 1", "content 2"]
    attention = np.stack([image[..., 0] for image, _ in out["gallery"][:3]], -1).astype(np.float32) / 255
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=0.02)  # softmax masks, one per pixel
    np.testing.assert_allclose(out["region"], 1.0 - attention[..., 2], atol=0.01)


def test_fader_slider_beyond_one(handlers, photo):
    low, high = handlers.edit("fader", photo, 0, [0.0]), handlers.edit("fader", photo, 0, [1.8])
    assert low["overlay"] is None and "no attention mask" in low["message"]
    assert np.abs(low["after"].astype(int) - high["after"].astype(int)).max() > 0


def test_edit_picks_the_face(handlers, examples):
    two = handlers.load_photo(examples[-1])["photo"]
    left, right = handlers.edit("sagan", two, 0, [1.0]), handlers.edit("sagan", two, 1, [1.0])
    middle = two.shape[1] // 2
    np.testing.assert_array_equal(left["result"][:, middle:], two[:, middle:])
    np.testing.assert_array_equal(right["result"][:, :middle], two[:, :middle])
    assert handlers.edit("sagan", two, 2, [1.0]) == {"error": "face 3 does not exist: 2 face(s) in the photo"}


def test_handler_errors_are_messages(handlers, photo, monkeypatch):
    blank = np.full((100, 100, 3), 128, np.uint8)
    assert "no face found" in handlers.edit("sagan", blank, 0, [1.0])["error"]
    assert "no photo" in handlers.edit("sagan", None, 0, [1.0])["error"]
    assert "takes 1 attribute value(s) (Eyeglasses), got 2" in handlers.edit("sagan", photo, 0, [1, 0])["error"]
    assert "unknown model 'nope'" in handlers.edit("nope", photo, 0, [1.0])["error"]
    assert "completion model" in handlers.edit("pggan_completion", photo, 0, [1, 0])["error"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers.models["sagan"], "edit", broken)
    assert handlers.edit("sagan", photo, 0, [1.0]) == {
        "error": "internal error (RuntimeError): boom. Details are in the server log."
    }


def test_initial_values_are_the_prediction(handlers, models, photo):
    predicted = models["sagan"].predict_attributes(align.align_faces(photo, 32)[0].image)
    assert handlers.initial_values("sagan", photo, 0)["values"] == [float(v) for v in predicted]
    assert handlers.initial_values("fader", photo, 0)["values"] == [0.0]


# ---------------------------------------------------------------------------------------------------- completion


def test_random_mask_and_complete(handlers, photo):
    mask = handlers.random_mask("pggan_completion", photo, 0, seed=3)["mask"]
    assert mask.shape == photo.shape[:2] and mask.dtype == np.uint8 and 0 < mask.sum() < mask.size
    assert not mask[:30].any()  # drawn inside the face crop
    np.testing.assert_array_equal(mask, handlers.random_mask("pggan_completion", photo, 0, seed=3)["mask"])
    assert not np.array_equal(mask, handlers.random_mask("pggan_completion", photo, 0, seed=4)["mask"])
    out = handlers.complete("pggan_completion", photo, mask * 255, 0, [1.0, 0.0])
    assert "error" not in out, out
    assert out["completed"].shape == out["raw"].shape == out["masked"].shape == (8, 8, 3)
    assert (out["masked"] == demo_handlers.HOLE_GREY).all(-1).any()
    np.testing.assert_array_equal(out["result"][:30], photo[:30])
    assert "no hole" in handlers.complete("pggan_completion", photo, None, 0, [1, 0])["error"]
    corner = np.zeros(photo.shape[:2], np.uint8)
    corner[:5, :5] = 1
    assert (
        "does not touch the selected face" in handlers.complete("pggan_completion", photo, corner, 0, [1, 0])["error"]
    )
    assert "editing model" in handlers.complete("sagan", photo, mask, 0, [1.0])["error"]


def test_editor_mask():
    assert demo_page.editor_mask(None) is None
    layer = np.zeros((10, 12, 4), np.uint8)
    assert demo_page.editor_mask({"background": None, "layers": [layer], "composite": None}) is None
    layer[2:4, 3:5, 3] = 255
    mask = demo_page.editor_mask({"layers": [layer]})
    assert mask.shape == (10, 12) and mask.sum() == 4 and mask[2, 3] == 1
    np.testing.assert_array_equal(demo_page.editor_mask({"layers": [demo_page.mask_layer(mask)]}), mask)
    assert demo_page.editor_mask({"layers": [layer]}, shape=(20, 24)).sum() == 16


# ---------------------------------------------------------------------------------------------------------- CLI


def test_cli_parses(capsys):
    args = demo.parse_args(["--model_dir", "a", "--model_dir", "b", "--export_dir", "e/1", "--port", "8000"])
    assert args.model_dir == ["a", "b"] and args.export_dir == ["e/1"] and args.port == 8000
    for argv, text in (
        ([], "give at least one --model_dir"),
        (["--model_dir", "a", "--port", "0"], "--port"),
        (["--model_dir", "a", "--max_side", "10"], "--max_side"),
    ):
        with pytest.raises(SystemExit):
            demo.parse_args(argv)
        assert text in capsys.readouterr().err


def test_cli_bad_model_dir(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install -e '.[demo]')")
    assert demo.main(["--model_dir", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "--model_dir" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"--model_dir .* has no config.yaml \(is it a training run folder\?\)"):
        demo_handlers.load_models([tmp_path])
    with pytest.raises(ConfigError, match="--export_dir .* has no saved_model.pb"):
        demo_handlers.load_models(export_dirs=[tmp_path])
    with pytest.raises(ConfigError, match="give at least one"):
        demo_handlers.load_models()


# -------------------------------------------------------------------------------------------- headless Chromium


def _chromium():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_browser_end_to_end(handlers, examples, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install -e '.[demo]')")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the demo extra is not installed (pip install -e '.[demo]')"
    )
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium at /usr/bin/chromium or $CHROMIUM (apt-get install -y chromium; .ci/run does)")
    sagan = demo_handlers.DemoHandlers({"sagan": handlers.models["sagan"]})
    app = demo_page.build_demo(sagan, examples)
    app.queue(default_concurrency_limit=1)
    port = _free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
        allowed_paths=[str(Path(examples[0]).parent)],
    )
    blank = _blank(tmp_path / "no_face.png")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/")
            message = page.locator("#message")
            page.locator("#upload input[type=file]").set_input_files(examples[0])
            sync_api.expect(message).to_contain_text("1 face(s) found")
            checkbox = page.locator("#attr_sagan_Eyeglasses input[type=checkbox]")
            was_checked = checkbox.is_checked()
            checkbox.click()
            sync_api.expect(message).to_contain_text(f"Eyeglasses={0 if was_checked else 1}")
            result_src = page.locator("#result img").get_attribute("src")
            with urllib.request.urlopen(result_src, timeout=30) as response:
                result = cv2.cvtColor(
                    cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
                )
            photo = read_image(examples[0])
            assert result.shape == photo.shape
            assert np.abs(result.astype(int) - photo.astype(int))[60:240, 90:230].mean() > 1.0  # the face changed
            np.testing.assert_array_equal(result[:30], photo[:30])  # outside it, nothing did
            sync_api.expect(page.locator("#overlay img")).to_be_visible()
            sync_api.expect(page.locator("#overlay")).to_contain_text("Attention overlay")
            page.screenshot(path=str(tmp_path / "demo_edit.png"), full_page=True)

            page.locator("#upload").get_by_label("Clear").click()  # the file input comes back after a clear
            sync_api.expect(message).to_contain_text("no photo")
            page.locator("#upload input[type=file]").set_input_files(str(blank))
            sync_api.expect(message).to_contain_text("no face found in no_face.png")
            assert "Traceback" not in page.content()
            sync_api.expect(page.locator("#result img")).to_have_count(0)  # the last photo's result is gone
            page.screenshot(path=str(tmp_path / "demo_no_face.png"), full_page=True)
            browser.close()
    finally:
        app.close()
    assert (tmp_path / "demo_edit.png").stat().st_size > 10_000
