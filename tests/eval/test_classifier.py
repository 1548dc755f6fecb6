import json

import numpy as np
import pytest

from tests.helpers import tiny_config
from tf_faceedit.data import celeba
from tf_faceedit.errors import ConfigError, EvaluationError, FaceEditError
from tf_faceedit.eval import classifier as clf
from tf_faceedit.eval import metrics
from tf_faceedit.methods.attribute_classifier import build_classifier
from tf_faceedit.training import driver


@pytest.fixture(scope="module")
def classifier_run(synthetic_celeba, tmp_path_factory):
    """A tiny classifier trained 4 steps on the synthetic faces (checkpoints at steps 2 and 4)."""
    run_dir = tmp_path_factory.mktemp("classifier_run")
    driver.run(tiny_config("classifier", synthetic_celeba), run_dir)
    return run_dir


def _images(n=5, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_load_classifier_uses_the_latest_checkpoint(classifier_run):
    judge = clf.load_classifier(classifier_run)
    assert judge.attribute_names == ["Eyeglasses", "Smiling", "Male"] and judge.image_size == 16
    assert judge.step == 4 and judge.checkpoint.name == "ckpt-00000004"
    images = _images(size=16)
    probs = judge.predict(images)
    assert probs.shape == (5, 3) and probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))
    # the trained weights, not a fresh initialisation; the step-2 checkpoint differs from step 4
    fresh = build_classifier(judge.config)(images / 127.5 - 1.0, training=False)["logits"]
    assert not np.allclose(judge.logits(images), np.asarray(fresh), atol=1e-4)
    older = clf.load_classifier(classifier_run, checkpoint=classifier_run / "checkpoints" / "ckpt-00000002")
    assert older.step == 2 and not np.allclose(older.logits(images), judge.logits(images), atol=1e-6)
    assert judge.index("Male") == 2
    with pytest.raises(ConfigError, match="Smiling"):
        judge.index("Smilling")


def test_inputs_are_resized_and_uint8_or_float(classifier_run):
    import keras

    judge = clf.load_classifier(classifier_run, batch_size=2)  # several batches
    big = _images(5, 48, seed=1)
    floats = big / 127.5 - 1.0
    np.testing.assert_allclose(judge.predict(big), judge.predict(floats), atol=1e-5)
    small = keras.ops.convert_to_numpy(
        keras.ops.image.resize(floats.astype(np.float32), (16, 16), interpolation="bilinear", antialias=True)
    )
    np.testing.assert_allclose(judge.predict(floats), judge.predict(small), atol=1e-5)
    features = judge.features(big)
    assert features.shape == (5, 8)
    np.testing.assert_allclose(metrics.ClassifierFeatures(judge)(big), features, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        judge.predict(big[..., :1])


def test_evaluate_classifier_writes_the_accuracy_file(classifier_run, synthetic_celeba):
    acc = clf.evaluate_classifier(classifier_run, split="val", batch_size=4)
    assert list(acc) == ["Eyeglasses", "Smiling", "Male", "mean"]
    # recompute by hand from the split's records
    judge = clf.load_classifier(classifier_run)
    records = celeba.load_records(judge.config.data, "val")
    images = np.stack([celeba.decode_and_resize(open(p, "rb").read(), 16).numpy() for p in records.paths])
    expected = ((judge.predict(images) > 0.5) == (records.attributes > 0.5)).mean(axis=0)
    np.testing.assert_allclose([acc[n] for n in judge.attribute_names], expected, atol=1e-6)
    assert acc["mean"] == pytest.approx(expected.mean())
    report = json.loads((classifier_run / "eval" / "classifier_accuracy.json").read_text())
    assert report["accuracy"] == acc and report["split"] == "val" and report["num_images"] == len(records)
    assert report["step"] == 4 and report["checkpoint"].endswith("ckpt-00000004")
    train = celeba.load_records(judge.config.data, "train").attributes
    baseline = ((train.mean(0) >= 0.5) == records.attributes).mean(0)
    np.testing.assert_allclose([report["majority_baseline"][n] for n in judge.attribute_names], baseline)
    assert clf.read_accuracy(classifier_run) == acc
    assert set(report["balanced_accuracy"]) == set(acc)


def test_balanced_accuracy():
    labels = np.array([[1, 0], [0, 0], [0, 0], [0, 0]], bool)
    always_no = np.zeros_like(labels)
    np.testing.assert_allclose(clf.balanced_accuracy(always_no, labels), [0.5, 1.0])  # 75% accurate, chance
    one_right = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], bool)
    np.testing.assert_allclose(clf.balanced_accuracy(one_right, labels), [(1 + 2 / 3) / 2, (1 + 3 / 4) / 2])


def test_load_or_evaluate_reuses_a_current_file(classifier_run):
    clf.evaluate_classifier(classifier_run, split="val")
    path = classifier_run / "eval" / "classifier_accuracy.json"
    report = json.loads(path.read_text())
    report["accuracy"]["Male"] = 0.123  # marker: a reused file returns it
    path.write_text(json.dumps(report))
    assert clf.load_or_evaluate_accuracy(classifier_run)["Male"] == 0.123
    balanced = clf.load_or_evaluate_accuracy(classifier_run, metric="balanced_accuracy")
    assert balanced == report["balanced_accuracy"]
    report["checkpoint"] = "elsewhere/ckpt-00000002"  # stale: evaluated again
    path.write_text(json.dumps(report))
    assert clf.load_or_evaluate_accuracy(classifier_run)["Male"] != 0.123


def test_check_accuracy_refuses_a_weak_judge():
    acc = {"Eyeglasses": 0.97, "Mustache": 0.62, "mean": 0.8}
    assert clf.check_accuracy(acc, "Eyeglasses", 0.9) == 0.97
    with pytest.raises(EvaluationError, match=r"Mustache is 0\.620, below the minimum 0\.800.*--min_classifier"):
        clf.check_accuracy(acc, "Mustache", 0.8)
    assert issubclass(EvaluationError, FaceEditError)
    with pytest.raises(ConfigError, match="did you mean: Eyeglasses"):
        clf.check_accuracy(acc, "Eyeglases", 0.5)
    with pytest.raises(ConfigError, match="not evaluated on 'mean'"):
        clf.check_accuracy(acc, "mean", 0.5)
    with pytest.raises(ConfigError, match="--min_classifier_accuracy"):
        clf.check_accuracy(acc, "Eyeglasses", 1.5)


def test_load_classifier_errors(tmp_path, synthetic_celeba):
    with pytest.raises(ConfigError, match="no config.yaml"):
        clf.load_classifier(tmp_path)
    (tmp_path / "config.yaml").write_text("method: sagan\n")
    with pytest.raises(ConfigError, match="not an attribute classifier"):
        clf.load_classifier(tmp_path)
    tiny_config("classifier", synthetic_celeba).to_yaml(tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match="no checkpoint"):
        clf.load_classifier(tmp_path)
    with pytest.raises(ConfigError, match="evaluate the classifier first"):
        clf.read_accuracy(tmp_path)
