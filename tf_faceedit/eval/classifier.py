"""The trained attribute classifier as an evaluation judge.

    judge = load_classifier("/tmp/classifier_quick")          # latest checkpoint of a `--method=classifier` run
    judge = load_classifier("classifier-celeba-64")          # or a zoo judge (python -m tf_faceedit.pretrained)
    probs = judge.predict(images)       # images [N, H, W, 3] float in [-1, 1] (or uint8) -> float32 [N, K] in [0, 1]
    feats = judge.features(images)      # -> float32 [N, F] penultimate features (FID*/KID*)
    acc = evaluate_classifier("/tmp/classifier_quick")   # {attribute: val accuracy, "mean": ...} -> RUN/eval/*.json
    check_accuracy(acc, "Eyeglasses", minimum=0.9)        # raises EvaluationError for a judge not good enough

A zoo judge carries the balanced validation accuracy of its run (`<entry>/classifier_accuracy.json`, checked
against the manifest's sha256), so it gates evaluations as its run would, without the run's data.

Inputs of any square or non-square size are resized (bilinear, antialiased) to the classifier's `image_size`, so a
64x64 judge can score a 128x128 model's outputs. Columns follow `attribute_names` (the run's `data.attributes`).
"""

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np

from tf_faceedit import model_source
from tf_faceedit.errors import ConfigError, DataError, EvaluationError, suggest
from tf_faceedit.images import ensure_float

log = logging.getLogger(__name__)

ACCURACY_FILE = "classifier_accuracy.json"


def _check_classifier_run(run_dir):
    """ConfigError unless `run_dir` is a classifier run (a config.yaml of method 'classifier')."""
    from tf_faceedit.training import run_dir as run_folder

    values = run_folder.saved_config_dict(run_dir)
    if values is None:
        raise ConfigError(
            f"no config.yaml in classifier run {run_dir} (--classifier_dir); train one with "
            "python -m tf_faceedit.train --method=classifier --model_dir=..."
        )
    if values.get("method") != "classifier":
        raise ConfigError(
            f"{run_dir} (--classifier_dir) holds a {values.get('method')!r} run, not an attribute "
            "classifier (method 'classifier')"
        )


def latest_checkpoint(run_dir):
    """The newest intact `checkpoints/ckpt-XXXXXXXX/` folder of a run, or None (`run_dir.latest_checkpoint`: newer
    damaged ones are skipped with a warning)."""
    from tf_faceedit.training import run_dir as run_folder

    return run_folder.latest_checkpoint(Path(run_dir).expanduser())


class LoadedClassifier:
    """A trained attribute classifier, ready to judge images (see `load_classifier`).

    Attributes:
      model: the `attribute_classifier` keras.Model ({"logits", "features"}).
      attribute_names: the K attribute names, in column order.
      image_size: the side S the network runs at; inputs are resized to S x S.
      config: the run's `ClassifierConfig`; checkpoint: the folder the weights came from; step: its step.
    """

    def __init__(self, model, config, checkpoint=None, step=None, batch_size=64):
        self.model, self.config = model, config
        self.attribute_names = list(config.data.attributes)
        self.image_size = int(config.data.image_size)
        self.checkpoint, self.step = checkpoint, step
        self.batch_size = int(batch_size)

    def _prepare(self, images):
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [N, H, W, 3], got shape {images.shape}")
        return ensure_float(images)

    def _run(self, images, key):
        images = self._prepare(images)
        outputs = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            if batch.shape[1:3] != (self.image_size, self.image_size):
                batch = keras.ops.image.resize(
                    batch, (self.image_size, self.image_size), interpolation="bilinear", antialias=True
                )
            outputs.append(keras.ops.convert_to_numpy(self.model(batch, training=False)[key]))
        if not outputs:
            width = len(self.attribute_names) if key == "logits" else self.model.output["features"].shape[-1]
            return np.zeros((0, width), np.float32)
        return np.concatenate(outputs).astype(np.float32)

    def logits(self, images):
        """images [N, H, W, 3], float in [-1, 1] or uint8 -> float32 logits [N, K]."""
        return self._run(images, "logits")

    def predict(self, images):
        """images [N, H, W, 3], float in [-1, 1] or uint8 -> float32 probabilities [N, K] in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.logits(images)))

    def features(self, images):
        """images [N, H, W, 3], float in [-1, 1] or uint8 -> float32 penultimate features [N, F] (FID*/KID*)."""
        return self._run(images, "features")

    def index(self, attribute):
        """Column of `attribute`; ConfigError with suggestions when the classifier does not predict it."""
        if attribute not in self.attribute_names:
            raise ConfigError(
                f"the attribute classifier does not predict {attribute!r}{suggest(attribute, self.attribute_names)}"
            )
        return self.attribute_names.index(attribute)


def zoo_judge(source):
    """The zoo entry `source` names when it is a zoo classifier (a name or an entry's folder), else None (a path:
    a run folder). ConfigError for a zoo entry of another method, or a string of the form of a zoo name that is
    neither a run nor a zoo entry (listing the known names)."""
    if source is None:
        return None
    entry = model_source.locate(source).entry
    if entry is not None and entry.task != "classify":
        from tf_faceedit.pretrained import zoo

        judges = [e.name for e in zoo.entries() if e.task == "classify"]
        raise ConfigError(
            f"zoo model {entry.name} is a {entry.method!r} model, not an attribute classifier (--classifier); "
            f"zoo judges: {', '.join(judges) or 'none'}"
        )
    return entry


def load_classifier(run_dir, checkpoint=None, batch_size=64):
    """Loads the classifier of a `--method=classifier` run from its latest checkpoint (or `checkpoint`, a folder),
    or a zoo judge by name (`python -m tf_faceedit.pretrained` lists them; its files are checked first).

    Returns a `LoadedClassifier` with `.predict(images) -> probs [N, K]`, `.features(images) -> [N, F]`,
    `.attribute_names` and `.image_size`. Raises ConfigError when run_dir is not a trained classifier run.
    """
    from tf_faceedit.training import run_dir as run_folder

    source = model_source.locate(run_dir)  # `with_data(...)`: the data locations of this machine
    zoo_judge(source)  # ConfigError for a zoo entry of another method
    if source.kind != "zoo":
        _check_classifier_run(source.path)
        if checkpoint is None and not run_folder.checkpoint_manager(source.path).all_checkpoints():
            raise ConfigError(f"classifier run {source.path} (--classifier_dir) has no checkpoint yet; train it first")
        if checkpoint is not None and not (Path(checkpoint) / "classifier.weights.h5").is_file():
            raise ConfigError(f"checkpoint {checkpoint} has no classifier.weights.h5 (--classifier_dir)")
    restored = model_source.restore(source, checkpoint, flag="--classifier_dir")
    return LoadedClassifier(
        restored.trainer.networks["classifier"],
        restored.config,
        checkpoint=source.entry.directory if source.entry is not None else Path(restored.info["checkpoint"]),
        step=restored.info["step"],
        batch_size=batch_size,
    )


def majority_baseline(train_labels, eval_labels):
    """Accuracy on `eval_labels` [N, K] of always predicting each attribute's majority class in `train_labels`."""
    majority = (np.asarray(train_labels).mean(axis=0) >= 0.5).astype(np.float32)
    return (np.asarray(eval_labels) == majority).mean(axis=0)


def balanced_accuracy(predictions, labels):
    """(true positive rate + true negative rate) / 2 per attribute, from boolean [N, K] arrays; a class absent from
    `labels` counts its rate as 1 (nothing to get wrong). 0.5 = chance, whatever the class balance."""
    predictions, labels = np.asarray(predictions, bool), np.asarray(labels, bool)
    positives, negatives = labels.sum(axis=0), (~labels).sum(axis=0)
    tpr = np.where(positives > 0, (predictions & labels).sum(axis=0) / np.maximum(positives, 1), 1.0)
    tnr = np.where(negatives > 0, (~predictions & ~labels).sum(axis=0) / np.maximum(negatives, 1), 1.0)
    return (tpr + tnr) / 2.0


def evaluate_classifier(run_dir, data_dir=None, split="val", batch_size=64, classifier=None, write=True, out_path=None):
    """Per-attribute accuracy (threshold 0.5) of a classifier run on a split of its dataset.

    Args:
      run_dir: the classifier's run folder.
      data_dir: dataset folder (default: the run's `data.data_dir`; its `data.partition_file` etc. are kept).
      split: "train", "val", "test" or "all".
      batch_size: images per forward pass.
      classifier: an already loaded `LoadedClassifier` (default: `load_classifier(run_dir)`).
      write: write the report to `run_dir/eval/classifier_accuracy.json`: {"accuracy": the returned dict,
        "majority_baseline": the same for always answering each attribute's majority class of the train split
        (the evaluated split when there is no train split), "balanced_accuracy": (TPR + TNR) / 2 (0.5 = chance, the
        honest number for rare attributes), "positive_rate": share of positives per attribute,
        "split", "num_images", "step", "checkpoint", "data_dir"}.
      out_path: where `write` writes the report instead (e.g. a test-split report that must not replace the val
        accuracy the evaluation gate reads).
    Returns:
      dict {attribute: accuracy in [0, 1], ..., "mean": mean over the attributes}.
    """
    from tf_faceedit.data import celeba

    judge = classifier or load_classifier(run_dir, batch_size=batch_size)
    data_cfg = dataclasses.replace(judge.config.data, cache=False, **({"data_dir": str(data_dir)} if data_dir else {}))
    records = celeba.load_records(data_cfg, split)
    dataset = celeba.build_dataset(
        data_cfg,
        split,
        batch_size=batch_size,
        training=False,
        seed=0,
        repeat=False,
        drop_remainder=False,
        records=records,
    )
    predictions, labels = [], []
    for batch in dataset:
        predictions.append(judge.logits(batch["image"].numpy()) > 0)
        labels.append(batch["attributes"].numpy() > 0.5)
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    names = judge.attribute_names
    accuracy = _with_mean(names, (predictions == labels).mean(axis=0))
    if write:
        try:
            train_labels = celeba.load_records(data_cfg, "train").attributes if split != "train" else labels
        except DataError:
            train_labels = labels
        report = {
            "accuracy": accuracy,
            "majority_baseline": _with_mean(names, majority_baseline(train_labels, labels)),
            "balanced_accuracy": _with_mean(names, balanced_accuracy(predictions, labels)),
            "positive_rate": _with_mean(names, labels.mean(axis=0)),
            "split": split,
            "num_images": int(len(labels)),
            "step": judge.step,
            "checkpoint": str(judge.checkpoint) if judge.checkpoint else None,
            "data_dir": str(data_cfg.data_dir),
        }
        out = Path(out_path) if out_path else accuracy_path(run_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        log.info(
            "classifier accuracy on %s (%d images): mean %.4f (majority baseline %.4f) -> %s",
            split,
            len(labels),
            accuracy["mean"],
            report["majority_baseline"]["mean"],
            out,
        )
    return accuracy


def _with_mean(names, values):
    out = {n: float(v) for n, v in zip(names, values)}
    out["mean"] = float(np.mean(values))
    return out


def accuracy_path(run_dir):
    return Path(run_dir).expanduser() / "eval" / ACCURACY_FILE


def read_accuracy_report(run_dir):
    """The whole report written by `evaluate_classifier`; ConfigError when it is absent."""
    path = accuracy_path(run_dir)
    if not path.is_file():
        raise ConfigError(f"{path} not found: evaluate the classifier first (evaluate_classifier(run_dir))")
    return json.loads(path.read_text())


def read_accuracy(run_dir):
    """The accuracy dict {attribute: accuracy, "mean": ...} of the report written by `evaluate_classifier`."""
    return read_accuracy_report(run_dir)["accuracy"]


def load_or_evaluate_accuracy(run_dir, data_dir=None, split="val", batch_size=64, metric="accuracy"):
    """The saved accuracy dict when it was computed on `split` at the run's latest checkpoint, else evaluates (and
    saves) it. Returns {attribute: value, "mean": ...} of `metric`: "accuracy" or "balanced_accuracy" ((TPR + TNR)
    / 2, which does not reward always answering "no" on a rare attribute such as Mustache)."""
    if metric not in ("accuracy", "balanced_accuracy"):
        raise ConfigError(f"metric must be accuracy or balanced_accuracy, got {metric!r}")
    entry = zoo_judge(run_dir)
    if entry is not None:
        return zoo_accuracy_report(entry, split)[metric]
    path = accuracy_path(run_dir)
    latest = latest_checkpoint(run_dir)
    if path.is_file() and latest is not None:
        report = json.loads(path.read_text())
        if (
            report.get("split") == split
            and report.get("checkpoint") == str(latest)
            and metric in report
            and (not data_dir or Path(report.get("data_dir", "")) == Path(data_dir))
        ):
            return report[metric]
    evaluate_classifier(run_dir, data_dir=data_dir, split=split, batch_size=batch_size)
    return read_accuracy_report(run_dir)[metric]


def zoo_accuracy_report(entry, split="val"):
    """The accuracy report a zoo judge ships (`<entry>/classifier_accuracy.json`: its run's `evaluate_classifier`
    report on the val split), after checking the file against the manifest. ConfigError for another split."""
    from tf_faceedit.pretrained import zoo

    zoo.check_files(entry, [entry.accuracy_file])
    report = json.loads((entry.root / entry.accuracy_file).read_text(encoding="utf-8"))
    if report.get("split") != split:
        raise ConfigError(
            f"zoo judge {entry.name} carries its accuracy on the {report.get('split')!r} split, not {split!r}; "
            "evaluate it on your data with python -m tf_faceedit.evaluate --model_dir=... of its run"
        )
    return report


def check_accuracy(acc, attribute, minimum):
    """Refuses to judge `attribute` with a classifier whose accuracy on it is below `minimum`.

    Args:
      acc: {attribute: accuracy} (what `evaluate_classifier` / `read_accuracy` return; a "mean" entry is ignored).
      attribute: the attribute an evaluation is about to score.
      minimum: required accuracy in [0, 1] (flag `--min_classifier_accuracy` of the evaluation CLIs).
    Returns: the accuracy (float) when it is good enough.
    Raises:
      EvaluationError: below the minimum.
      ConfigError: `attribute` has no accuracy in `acc`, or `minimum` is outside [0, 1].
    """
    if not 0.0 <= float(minimum) <= 1.0:
        raise ConfigError(f"--min_classifier_accuracy must be in [0, 1], got {minimum}")
    names = [name for name in acc if name != "mean"]
    if attribute not in names:
        raise ConfigError(f"the attribute classifier was not evaluated on {attribute!r}{suggest(attribute, names)}")
    value = float(acc[attribute])
    if value < float(minimum):
        raise EvaluationError(
            f"the attribute classifier's accuracy on {attribute} is {value:.3f}, below the minimum "
            f"{float(minimum):.3f} (--min_classifier_accuracy): it cannot judge edits of {attribute}. Train it "
            "longer or on more data, or lower the minimum knowingly"
        )
    return value
