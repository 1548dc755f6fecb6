"""The model zoo, read side: the manifest, its entries, and an entry's trainer restored from its files.

    tf_faceedit.load("sagan-eyeglasses-64")                      # a zoo name (`tf_faceedit.model_source.locate`)
    python -m tf_faceedit.pretrained                             # one zoo name per line, then its description
    python -m tf_faceedit.pretrained add --model_dir RUN --name NAME --card CARD.md [--dtype float16]

The maintainer tools (add, remove, compact, the float16 comparison, verify) are `tf_faceedit.pretrained.maintain`,
used by `python -m tf_faceedit.pretrained` only; nothing that loads a model imports them.

Layout of the zoo root (default: this package folder; `TF_FACEEDIT_ZOO=DIR` or a `root=` argument overrides it):
  manifest.json            {"format": 1, "max_total_bytes": int, "entries": [entry, ...]}, entries sorted by name
  <name>.md                the entry's model card (method, attributes, data, split, steps, wall time, metrics,
                           CelebA's terms; `CARD_TEMPLATE.md`)
  <name>/config.yaml       the run's resolved config (what builds the networks: method, model, data, phases), without
                           the training machine's file locations (`MACHINE_PATH_FIELDS` at their defaults: the
                           user's own `--data_dir` is what evaluate reads; see `strip_machine_paths`)
  <name>/<network>.weights.h5   Keras weights of each INFERENCE network only (the method's
                           `registry.Capabilities.inference_networks`: e.g. SaGAN's generator and critic (it predicts
                           the attributes not given), never an optimizer state)
  <name>/classifier_accuracy.json   a judge (method classifier, task "classify") only: its run's balanced
                           validation accuracy, what `evaluate --classifier NAME` gates on
                           (`tf_faceedit.eval.classifier.load_classifier(NAME)` loads a judge; `load` serves
                           the edit and complete tasks)
An entry: name, description, method, task, attributes, image_size, dtype ("float16": the float32 weights stored
as float16 and cast back to float32 on load; "float32": as trained), step, card, networks, files ({relative path:
{"sha256", "size"}} of the config, the weights and the card), source (the run and checkpoint it came from),
provenance ({"data.data_dir": ..., "data.partition_file": ...}: where its training data lay on the training machine,
a record only: nothing loads from it) and precision (what float16 storage changes in the outputs on a fixed batch:
`maintain.compare_outputs`).

Every file `load` reads is checked against the manifest first: a missing file, a wrong size or a SHA-256 mismatch
is one `DataError` line naming the file. The zoo's files together must stay under `MAX_TOTAL_BYTES` (40 MB, the
package size budget); `maintain.add` refuses an entry that would exceed it.

Names are lowercase `[a-z0-9._-]` without a path separator. A string given to `tf_faceedit.load` (or `--model`)
is a zoo name when it is such a name and no training run or export folder of that name exists (a local folder of
that name wins; `tf_faceedit.model_source.locate` decides); an entry's own folder (`<root>/<name>`, `entry_at`) also
loads by path. An unknown name is a one-line ConfigError listing the known ones.
"""

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

from tf_faceedit.errors import ConfigError, DataError, suggest
from tf_faceedit.io_util import file_digest

log = logging.getLogger("tf_faceedit")

ENV_VAR = "TF_FACEEDIT_ZOO"
MANIFEST = "manifest.json"
FORMAT = 1
MAX_TOTAL_BYTES = 40_000_000  # 40 MB: every file the manifest lists, together
CONFIG_FILE = "config.yaml"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

# The data config's fields that locate files on the training machine. A released entry's config.yaml keeps them at
# their defaults (its manifest record keeps the original values under "provenance"), so that `evaluate --model NAME
# --data_dir DIR` reads DIR's own partition file and never looks for a path the user never had.
MACHINE_PATH_FIELDS = ("data_dir", "image_dir", "attr_file", "partition_file")
TASKS = ("edit", "complete", "classify")  # what an entry can serve; "classify": an evaluation judge
JUDGE_ACCURACY_FILE = "classifier_accuracy.json"  # a judge's val report: the run's eval/ file of that name


# ---------------------------------------------------------------------------------------------------------------
# The manifest


def zoo_root(root=None):
    """The zoo folder: `root`, else $TF_FACEEDIT_ZOO, else this package's folder."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path(__file__).resolve().parent


def _where(root):
    return f" (zoo {root})" if root != Path(__file__).resolve().parent else ""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One zoo model: its manifest record (`data`) and the zoo folder it lives in."""

    root: Path
    data: dict

    name = property(lambda self: self.data["name"])
    method = property(lambda self: self.data["method"])
    task = property(lambda self: self.data.get("task", "edit"))
    attributes = property(lambda self: list(self.data["attributes"]))
    image_size = property(lambda self: int(self.data["image_size"]))
    dtype = property(lambda self: self.data["dtype"])
    step = property(lambda self: int(self.data.get("step", 0)))
    networks = property(lambda self: list(self.data["networks"]))
    files = property(lambda self: dict(self.data["files"]))
    description = property(lambda self: self.data.get("description", ""))

    @property
    def directory(self):
        return self.root / self.name

    @property
    def card(self):
        return self.root / self.data["card"]

    def weight_files(self):
        return {name: f"{self.name}/{name}.weights.h5" for name in self.networks}

    def inference_files(self):
        """The files `load` reads: the config and the weights (relative paths)."""
        return [f"{self.name}/{CONFIG_FILE}", *self.weight_files().values()]

    @property
    def accuracy_file(self):
        """A judge's val accuracy report (relative path; task "classify" only)."""
        return f"{self.name}/{JUDGE_ACCURACY_FILE}"

    def extra_files(self):
        """Files beside the weights an entry of this task must carry (relative paths): a judge's accuracy report."""
        return [self.accuracy_file] if self.task == "classify" else []


def empty_manifest():
    return {"format": FORMAT, "max_total_bytes": MAX_TOTAL_BYTES, "entries": []}


def read_manifest(root=None):
    """The manifest dict of the zoo (an empty one when the folder has none). DataError naming the file when it is
    not a zoo manifest."""
    root = zoo_root(root)
    path = root / MANIFEST
    if not path.is_file():
        if root != Path(__file__).resolve().parent and not root.is_dir():
            raise ConfigError(f"zoo folder {root} ({ENV_VAR} or --root) does not exist")
        return empty_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"zoo manifest {path} cannot be read ({type(err).__name__}: {err}); reinstall tf_faceedit"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise DataError(f'zoo manifest {path} is not a tf_faceedit zoo manifest (no "entries" list)')
    if manifest.get("format", FORMAT) > FORMAT:
        raise DataError(
            f"zoo manifest {path} has format {manifest['format']}, newer than this tf_faceedit "
            f"reads ({FORMAT}); upgrade tf_faceedit"
        )
    for i, record in enumerate(manifest["entries"]):
        missing = [
            key
            for key in ("name", "method", "attributes", "image_size", "dtype", "networks", "files", "card")
            if not isinstance(record, dict) or key not in record
        ]
        if missing:
            raise DataError(f"zoo manifest {path}: entry {i} lacks {', '.join(missing)}")
    return manifest


def entries(root=None):
    """Every zoo entry, sorted by name."""
    root = zoo_root(root)
    return sorted((Entry(root, record) for record in read_manifest(root)["entries"]), key=lambda e: e.name)


def names(root=None):
    return [entry.name for entry in entries(root)]


def unknown_name_error(name, root=None):
    root = zoo_root(root)
    known = names(root)
    listed = ", ".join(known) if known else "none yet"
    return ConfigError(
        f"unknown model {str(name)!r}: no training run or export folder of that name, and not a zoo "
        f"name{suggest(name, known)}; zoo names{_where(root)}: {listed} "
        "(python -m tf_faceedit.pretrained lists them)"
    )


def get(name, root=None):
    """The entry called `name`; ConfigError listing the known names otherwise."""
    for entry in entries(root):
        if entry.name == name:
            return entry
    raise unknown_name_error(name, root)


def is_name(text):
    """Whether `text` has the form of a zoo name (no path separator)."""
    return isinstance(text, str) and bool(NAME_PATTERN.match(text))


def entry_at(path):
    """The entry whose own folder `path` is (`<zoo>/<name>`: a config.yaml, no checkpoints/, listed by the manifest
    beside it), else None."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or (path / "checkpoints").exists():
        return None
    folder = path.resolve()
    if not (folder.parent / MANIFEST).is_file():
        return None
    for entry in entries(folder.parent):
        if entry.name == folder.name:
            return entry
    return None


def strip_machine_paths(cfg):
    """`cfg` with its data config's `MACHINE_PATH_FIELDS` at their defaults (what a released entry stores and loads).

    Returns:
      (config, provenance): provenance {"data.<field>": value} of the fields that were set (empty when none was).
    """
    defaults = {field.name: field for field in dataclasses.fields(cfg.data)}
    provenance, cleared = {}, {}
    for name in MACHINE_PATH_FIELDS:
        field = defaults.get(name)
        if field is None:
            continue
        default = field.default if field.default is not dataclasses.MISSING else ""
        value = getattr(cfg.data, name)
        if value != default:
            provenance[f"data.{name}"] = str(value)
            cleared[name] = default
    if not cleared:
        return cfg, provenance
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **cleared)), provenance


def validate_released(cfg):
    """Validates a released config (`ExperimentConfig.validate`), whose data_dir is empty by design: the user's own
    folder is given where data is read (`evaluate --data_dir`). Returns the validated config, data_dir still empty."""
    field = "data_dir"
    if getattr(cfg.data, field):
        return cfg.validate()
    checked = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **{field: "<data_dir>"})).validate()
    return dataclasses.replace(checked, data=dataclasses.replace(checked.data, **{field: ""}))


# ---------------------------------------------------------------------------------------------------------------
# Files


def check_files(entry, files=None):
    """Checks `files` (relative paths; default: all of the entry's) against the manifest: present, of their size
    and SHA-256. DataError naming the first bad file."""
    records = entry.files
    for rel in files if files is not None else sorted(records):
        path = entry.root / rel
        expected = records.get(rel)
        if expected is None:
            raise DataError(f"zoo entry {entry.name}: {rel} is not in the manifest {entry.root / MANIFEST}")
        hint = "reinstall tf_faceedit (python -m tf_faceedit.pretrained verify checks every file)"
        if not path.is_file():
            raise DataError(f"zoo file {path} of {entry.name} is missing; {hint}")
        size = path.stat().st_size
        if size != expected["size"]:
            raise DataError(
                f"zoo file {path} is corrupted: {size} bytes where the manifest says {expected['size']}; {hint}"
            )
        digest = file_digest(path)
        if digest != expected["sha256"]:
            raise DataError(
                f"zoo file {path} is corrupted: sha256 {digest[:16]}... does not match the manifest's "
                f"{expected['sha256'][:16]}...; {hint}"
            )


# ---------------------------------------------------------------------------------------------------------------
# Loading


def restore_entry(entry, precision="float32"):
    """Builds the entry's trainer (float32 variables; compute dtype `precision`, "float32" or "bfloat16") and loads
    its inference networks, after checking their files (`tf_faceedit.model_source.restore` is the one caller).

    Returns:
      (trainer, cfg, info) as `run_dir.restore_trainer` returns for a run; info: {"zoo": name, "step", "dtype",
      "checkpoint": the entry's folder}.
    """
    check_files(entry, entry.inference_files())
    from tf_faceedit import config as config_lib
    from tf_faceedit.training import run_dir

    config_path = entry.directory / CONFIG_FILE
    cfg = config_lib.from_saved(config_lib.load_run_config(config_path), source=str(config_path))
    # an entry written before `add` stripped them may still name the training machine's files: never follow them
    cfg = validate_released(strip_machine_paths(cfg)[0])
    got = {"method": cfg.method, "attributes": list(cfg.data.attributes), "image_size": int(cfg.data.image_size)}
    want = {"method": entry.method, "attributes": entry.attributes, "image_size": entry.image_size}
    for key in got:
        if got[key] != want[key]:
            raise DataError(
                f"zoo entry {entry.name}: the manifest says {key} {want[key]}, its {CONFIG_FILE} says "
                f"{got[key]}; reinstall tf_faceedit"
            )
    # float32 variables: the float16 weights are cast back on load
    trainer = run_dir.build_inference_trainer(cfg, precision)
    trainer.set_phase(trainer.phase_of_checkpoint(entry.step))  # the networks' graph, as for a checkpoint at its step
    for name, rel in entry.weight_files().items():
        network = trainer.networks.get(name)
        if network is None:
            raise DataError(f"zoo entry {entry.name}: method {cfg.method} has no network {name!r}")
        try:
            network.load_weights(str(entry.root / rel))  # Keras casts float16 arrays to the float32 variables
        except ValueError as err:
            raise DataError(
                f"zoo file {entry.root / rel} does not fit {cfg.method}'s network {name!r}: "
                f"{str(err).splitlines()[0][:200]}"
            ) from None
    return (
        trainer,
        cfg,
        {"zoo": entry.name, "step": entry.step, "dtype": entry.dtype, "checkpoint": str(entry.directory)},
    )
