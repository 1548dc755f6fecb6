"""tf_faceedit.eval.evaluation / the evaluate CLI: the report's contents per task, the classifier gate, and the
success arithmetic."""

import json

import numpy as np
import pytest

from tests import model_runs
from tf_faceedit.cli import evaluate
from tf_faceedit.eval import evaluation
from tf_faceedit.eval.report import markdown_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_celeba):
    root = tmp_path_factory.mktemp("eval_runs")
    out = {}
    for method in ("sagan", "fader", "pggan_completion", "classifier", "attentiongan"):
        attributes = {
            "classifier": ("Eyeglasses", "Smiling", "Male"),
            "fader": ("Smiling",),
            "pggan_completion": ("Male", "Smiling"),
            "sagan": ("Eyeglasses",),
        }.get(method)
        kwargs = {"attributes": attributes} if attributes else {}  # attentiongan: its domain is Smiling
        out[method] = model_runs.checkpointed_run(method, synthetic_celeba, root / method, **kwargs)[0]
    return out


def test_foreground_attention():
    single = np.full((1, 2, 2, 1), 0.3, np.float32)
    np.testing.assert_allclose(evaluation.foreground_attention(single), single)
    several = np.zeros((1, 2, 2, 3), np.float32)
    several[..., 2] = 0.25  # background channel last
    np.testing.assert_allclose(evaluation.foreground_attention(several), np.full((1, 2, 2, 1), 0.75))


class _BrightnessModel:
    """Stub editor: the edit makes the image white where the target is 1, black where it is 0."""

    method, task, attribute_names = "stub", "edit", ["A"]

    def edit(self, images, attributes):
        value = np.where(attributes[:, :1, None, None] > 0.5, 255, 0).astype(np.uint8)
        return {
            "image": np.broadcast_to(value, images.shape).copy(),
            "attention": np.full(images.shape[:3] + (1,), 0.5, np.float32),
        }


class _BrightnessJudge:
    attribute_names = ["A"]

    def __init__(self, inverted=False):
        self.inverted = inverted

    def predict(self, images):
        bright = (images.mean(axis=(1, 2, 3)) > 0).astype(np.float32)[:, None]
        return 1.0 - bright if self.inverted else bright


class _Progress:
    def add(self, n):
        pass


@pytest.mark.parametrize("inverted, expected", [(False, 1.0), (True, 0.0)])
def test_edit_success_counts_the_judges_agreement(inverted, expected):
    images = np.full((6, 16, 16, 3), 100, np.uint8)
    attributes = np.array([[0], [0], [1], [0], [1], [1]], np.float32)
    report, figures, areas = evaluation._evaluate_edit(
        _BrightnessModel(), [(images, attributes, None)], _BrightnessJudge(inverted), {}, None, 0, _Progress()
    )
    entry = report["attributes"]["A"]
    assert entry["success"] == expected and entry["success 0->1"] == expected and entry["success 1->0"] == expected
    assert entry["count 0->1"] == 3 and entry["count 1->0"] == 3
    # no edit: the grey inputs read as dark (absent), or as present by the inverted judge
    assert entry["no_edit"] == ({"0->1": 1.0, "1->0": 0.0} if inverted else {"0->1": 0.0, "1->0": 1.0})
    assert "No edit" in markdown_report({**report, "method": "stub", "split": "x", "model_dir": "m"})
    assert entry["attention_area"] == pytest.approx(0.5)
    assert entry["colour_shift"] == pytest.approx(0.0)  # grey to white or black: brightness, no tint
    assert report["num_images"] == 6 and set(figures) == {"A"} and len(areas["A"]) == 6


class _TwoAttributeModel:
    """Stub editor of Smiling and Eyeglasses: channel 0 shows the target Smiling, channel 1 the target Eyeglasses,
    or (leaky) the target Smiling again: its Smiling edit then also changes Eyeglasses."""

    method, task, attribute_names = "stub", "edit", ["Smiling", "Eyeglasses"]

    def __init__(self, leaky):
        self.leaky = leaky

    def edit(self, images, attributes):
        out = np.zeros(images.shape, np.uint8)
        out[..., 0] = 255 * attributes[:, 0, None, None]
        out[..., 1] = 255 * attributes[:, 0 if self.leaky else 1, None, None]
        return {"image": out}


class _ChannelJudge:
    attribute_names = ["Smiling", "Eyeglasses"]

    def predict(self, images):
        return (images[..., :2].mean(axis=(1, 2)) > 0.0).astype(np.float32)  # images in [-1, 1]


@pytest.mark.parametrize("leaky, expected", [(False, 1.0), (True, 0.0)])
def test_unchanged_covers_the_models_other_attributes(leaky, expected):
    # issue 15's multi-attribute SaGAN check: under the Smiling edit, the judge's Eyeglasses reading must stay
    attributes = np.array([[0, 0], [1, 1], [0, 0], [1, 1]], np.float32)
    images = _TwoAttributeModel(leaky=False).edit(np.zeros((4, 8, 8, 3), np.uint8), attributes)["image"]
    report, _, _ = evaluation._evaluate_edit(
        _TwoAttributeModel(leaky), [(images, attributes, None)], _ChannelJudge(), {}, None, 0, _Progress()
    )
    smiling, eyeglasses = report["attributes"]["Smiling"], report["attributes"]["Eyeglasses"]
    assert set(smiling["unchanged"]) == {"Eyeglasses"} and set(eyeglasses["unchanged"]) == {"Smiling"}
    assert smiling["unchanged"]["Eyeglasses"] == expected and smiling["success"] == 1.0


class _ParityJudge(_ChannelJudge):
    """Reads Eyeglasses as "all pixels even" (an exact pattern a JPEG re-encode destroys), Smiling as _ChannelJudge."""

    def predict(self, images):
        pixels = np.rint((np.asarray(images) + 1.0) * 127.5).astype(np.int64)
        even = (pixels % 2 == 0).reshape(len(pixels), -1).mean(axis=1) > 0.99
        return np.stack([super().predict(images)[:, 0], even.astype(np.float32)], axis=1)


@pytest.mark.parametrize("judge, floor", [(_ChannelJudge(), 1.0), (_ParityJudge(), 0.0)])
def test_unchanged_has_the_jpeg_reference_row(judge, floor):
    # the floor of "unchanged": the judge's reading of the input re-encoded (JPEG 50), nothing edited
    attributes = np.array([[0, 0], [1, 1], [0, 0], [1, 1]], np.float32)
    rng = np.random.RandomState(0)
    images = (rng.randint(0, 128, (4, 16, 16, 3)) * 2).astype(np.uint8)  # all even
    images[..., 0] = np.where(attributes[:, 0, None, None] > 0, 254, 0)
    report, _, _ = evaluation._evaluate_edit(
        _TwoAttributeModel(leaky=False), [(images, attributes, None)], judge, {}, None, 0, _Progress()
    )
    reference = report["unchanged_reference"]["jpeg50"]
    assert set(reference) == {"Smiling", "Eyeglasses"}
    assert reference["Eyeglasses"] == floor and reference["Smiling"] == 1.0
    text = markdown_report({"method": "stub", "model_dir": "RUN", "split": "test", **report})
    assert "re-encoded as JPEG at quality 50" in text and f"Eyeglasses {floor:.3f}" in text


def test_refused_attribute_is_not_scored():
    images = np.full((2, 16, 16, 3), 100, np.uint8)
    report, _, _ = evaluation._evaluate_edit(
        _BrightnessModel(),
        [(images, np.zeros((2, 1), np.float32), None)],
        _BrightnessJudge(),
        {"A": "too weak"},
        None,
        0,
        _Progress(),
    )
    assert "success" not in report["attributes"]["A"] and report["attributes"]["A"]["success_note"] == "too weak"


def test_evaluate_sagan_with_classifier(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["sagan"],
        data_dir=synthetic_celeba,
        split="train",
        classifier=runs["classifier"],
        max_images=6,
        batch_size=4,
        min_classifier_accuracy=0.0,
        out_dir=tmp_path / "eval",
        verbose=0,
    )
    entry = report["attributes"]["Eyeglasses"]
    assert 0.0 <= entry["success"] <= 1.0 and entry["count 0->1"] + entry["count 1->0"] == 6
    assert 0.0 < entry["attention_area"] < 1.0 and entry["preservation_psnr"] > 0
    # the judge's other attributes (not edited by this model) read the same on the edit as on the input
    assert set(entry["unchanged"]) == {"Male", "Smiling"} and all(0 <= v <= 1 for v in entry["unchanged"].values())
    assert report["reconstruction"]["psnr"] > 0 and -1.0 <= report["reconstruction"]["ssim"] <= 1.0
    assert report["distribution"]["fid_name"] == "FID*" and report["distribution"]["fid"] >= 0
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["attributes"]["Eyeglasses"]["success"] == entry["success"]
    assert "| Eyeglasses |" in (tmp_path / "eval" / "metrics.md").read_text()
    assert all(
        (tmp_path / "eval" / "figures" / name).is_file()
        for name in ("edits_Eyeglasses.png", "attention_area_histogram.png")
    )


def test_evaluate_refuses_a_weak_classifier(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["sagan"],
        data_dir=synthetic_celeba,
        split="train",
        classifier=runs["classifier"],
        max_images=4,
        batch_size=4,
        min_classifier_accuracy=1.0,
        out_dir=tmp_path,
        verbose=0,
    )
    entry = report["attributes"]["Eyeglasses"]
    assert "success" not in entry and "below" in entry["success_note"]


def test_evaluate_fader_without_classifier(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["fader"], data_dir=synthetic_celeba, split="train", max_images=4, batch_size=4, out_dir=tmp_path, verbose=0
    )
    entry = report["attributes"]["Smiling"]
    assert "attention_area" not in entry and entry["success_note"] == "no --classifier given"
    assert report["distribution"] is None and report["reconstruction"]["psnr"] > 0


def test_reconstruction_is_the_networks_with_a_residual_edit(runs, synthetic_celeba, tmp_path):
    """A residual edit returns the input at the input's own attributes: the reconstruction is scored without it."""
    from tf_faceedit import model_source

    def run(source, name):
        return evaluation.evaluate(
            source,
            data_dir=synthetic_celeba,
            split="train",
            max_images=4,
            batch_size=4,
            out_dir=tmp_path / name,
            verbose=0,
        )

    plain = run(runs["fader"], "plain")
    residual = run(model_source.with_options(runs["fader"], residual_edit=True), "residual")
    assert residual["inference_options"]["residual_edit"] is True
    assert residual["reconstruction"]["network_only"] and not plain["reconstruction"]["network_only"]
    assert residual["reconstruction"]["psnr"] == pytest.approx(plain["reconstruction"]["psnr"], abs=1e-6)
    assert plain["reconstruction"]["psnr"] < 60  # a tiny network's drawing, not the input
    assert "residual edit off" in (tmp_path / "residual" / "metrics.md").read_text()


def test_evaluate_attentiongan_scores_both_directions(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["attentiongan"],
        data_dir=synthetic_celeba,
        split="train",
        classifier=runs["classifier"],
        max_images=4,
        batch_size=4,
        min_classifier_accuracy=0.0,
        out_dir=tmp_path,
        verbose=0,
    )
    ((name, entry),) = report["attributes"].items()
    assert entry["count 0->1"] == 2 and entry["count 1->0"] == 2  # the two domains interleaved
    assert 0.0 < entry["attention_area"] < 1.0


def test_evaluate_completion_against_cv2_baselines(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["pggan_completion"],
        data_dir=synthetic_celeba,
        split="train",
        max_images=4,
        batch_size=4,
        out_dir=tmp_path,
        verbose=0,
    )
    assert set(report["completion"]) == {"model", "cv2.inpaint (telea)", "cv2.inpaint (ns)"}
    for entry in report["completion"].values():
        assert entry["psnr"] > 0 and entry["l1"] >= 0
    assert 0 < report["mean_hole_area"] < 1
    assert (tmp_path / "figures" / "completions.png").is_file()
    # the noise and face-part box hole sets, each against both cv2 baselines on the same masks
    assert set(report["holes"]) == {"noise", "eyes", "nose", "mouth", "boxes"}
    for kind in ("noise", "eyes", "nose", "mouth"):
        entry = report["holes"][kind]
        assert 0 < entry["mean_hole_area"] < 1
        for label in ("model", "cv2.inpaint (telea)", "cv2.inpaint (ns)"):
            assert entry[label]["psnr"] > 0
        assert entry["psnr_gain_over_ns"] == pytest.approx(entry["model"]["psnr"] - entry["cv2.inpaint (ns)"]["psnr"])
    assert (tmp_path / "figures" / "control_holes.png").is_file()
    assert "| mouth |" in (tmp_path / "metrics.md").read_text()
    # --mask_kind=rect: filled rectangles instead of the run's noise holes, so more of the image is a hole
    rect = evaluation.evaluate(
        runs["pggan_completion"],
        data_dir=synthetic_celeba,
        split="train",
        max_images=4,
        batch_size=4,
        out_dir=tmp_path / "rect",
        verbose=0,
        mask_kind="rect",
    )
    assert rect["mean_hole_area"] > report["mean_hole_area"]


def test_mouth_mask_covers_the_lower_middle_of_the_face():
    mask = evaluation.mouth_mask(64)
    assert mask.shape == (64, 64, 1) and mask.dtype == np.uint8
    rows, cols = np.nonzero(mask[..., 0])
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (40, 56, 18, 46)


def test_evaluate_completion_scores_attribute_control_with_a_judge(runs, synthetic_celeba, tmp_path):
    report = evaluation.evaluate(
        runs["pggan_completion"],
        data_dir=synthetic_celeba,
        split="train",
        max_images=4,
        batch_size=4,
        classifier=runs["classifier"],
        min_classifier_accuracy=0.0,
        out_dir=tmp_path,
        verbose=0,
    )
    judged = [name for name in report["control"] if name != "hole"]
    assert judged and set(judged) <= {"Eyeglasses", "Smiling", "Male"}
    for name in judged:
        entry = report["control"][name]
        assert 0.0 <= entry["success"] <= 1.0 and 0.0 <= entry["agreement_own"] <= 1.0
        assert (tmp_path / "figures" / f"control_{name}.png").is_file()
    assert all(entry["ssim_whole"] is None or 0 < entry["ssim_whole"] <= 1 for entry in report["completion"].values())
    assert "Attribute control" in (tmp_path / "metrics.md").read_text()
    # structure in the hole: the judge's reading of what each box hides, on the model, cv2 and the real face
    eyes = report["structure"]["eyes"]["Eyeglasses"]
    for label in ("model", "cv2.inpaint (ns)", "real face"):
        assert 0.0 <= eyes[label]["agreement"] <= 1.0
    assert 0.0 <= eyes["positive_rate"] <= 1.0
    assert "Structure in the hole" in (tmp_path / "metrics.md").read_text()


@pytest.mark.parametrize("part", ["eyes", "nose", "mouth"])
def test_face_part_boxes_cover_their_part(part):
    from tf_faceedit.config import MaskConfig
    from tf_faceedit.data.numpy_masks import FACE_PARTS

    masks = evaluation.hole_masks(part, 50, 64, MaskConfig(), np.random.default_rng(0))
    row, col = FACE_PARTS[part]
    for mask in masks[..., 0]:
        rows, cols = np.nonzero(mask)
        assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # one solid box
        assert 0.30 * 64 - 1 <= rows.max() + 1 - rows.min() <= 0.45 * 64 + 1
        assert abs((rows.min() + rows.max() + 1) / 2 / 64 - row) <= 0.05 + 1 / 64
        assert abs((cols.min() + cols.max() + 1) / 2 / 64 - col) <= 0.05 + 1 / 64


def test_evaluate_a_classifier_run_reports_its_accuracy_without_replacing_the_val_gate(
    runs, synthetic_celeba, tmp_path
):
    from tf_faceedit.eval import classifier as classifier_lib

    val = classifier_lib.load_or_evaluate_accuracy(runs["classifier"], metric="balanced_accuracy")
    report = evaluation.evaluate(
        runs["classifier"], data_dir=synthetic_celeba, split="test", out_dir=tmp_path, verbose=0
    )
    assert report["split"] == "test" and report["num_images"] == 5  # the synthetic set's test part
    assert set(report["balanced_accuracy"]) == {"Eyeglasses", "Smiling", "Male", "mean"}
    assert all(0.0 <= v <= 1.0 for v in report["balanced_accuracy"].values())
    assert "| Eyeglasses |" in (tmp_path / "metrics.md").read_text()
    assert classifier_lib.read_accuracy_report(runs["classifier"])["split"] == "val"  # the gate's file kept
    assert classifier_lib.load_or_evaluate_accuracy(runs["classifier"], metric="balanced_accuracy") == val


def test_cli_errors(tmp_path, capsys):
    assert evaluate.main(["--model_dir", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "neither a training run" in capsys.readouterr().err
    assert evaluate.main(["--model_dir", str(tmp_path), "--min_classifier_accuracy", "1.5", "--quiet"]) == 2
    assert "--min_classifier_accuracy must be in [0, 1]" in capsys.readouterr().err
