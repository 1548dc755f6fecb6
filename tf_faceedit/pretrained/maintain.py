"""The model zoo's maintainer tools, used by `python -m tf_faceedit.pretrained` only: add an entry from a training
run, remove one, re-store weights compressed (compact), measure what float16 storage changes (compare) and verify
the whole zoo. The read side (the manifest, entries, loading one) is `tf_faceedit.pretrained.zoo`; see it for the
layout and the rules.

    python -m tf_faceedit.pretrained add --model_dir RUN --name NAME --card CARD.md [--dtype float16]
    python -m tf_faceedit.pretrained compare --model_dir RUN          # float16 vs float32 outputs on a fixed batch
    python -m tf_faceedit.pretrained verify [NAME ...] [--load]       # files, cards, size budget, stray files
"""

import json
import logging
import os
import re
import shutil
from pathlib import Path

from tf_faceedit import model_source
from tf_faceedit.errors import ConfigError, DataError
from tf_faceedit.io_util import file_digest
from tf_faceedit.pretrained.zoo import (
    CONFIG_FILE,
    FORMAT,
    JUDGE_ACCURACY_FILE,
    MACHINE_PATH_FIELDS,
    MANIFEST,
    MAX_TOTAL_BYTES,
    TASKS,
    Entry,
    check_files,
    entries,
    get,
    is_name,
    read_manifest,
    restore_entry,
    strip_machine_paths,
    unknown_name_error,
    zoo_root,
)

log = logging.getLogger("tf_faceedit")

DTYPES = ("float16", "float32")
FLOAT16_MAX = 65504.0
# The package's own files in the zoo root (not entries; not counted in the size budget).
OWN_FILES = {"__init__.py", "__main__.py", "zoo.py", "maintain.py", "CARD_TEMPLATE.md", MANIFEST, "__pycache__"}


def machine_paths(config_dict):
    """The `MACHINE_PATH_FIELDS` a config dict (a config.yaml) sets: {"data.<field>": value} (empty: none)."""
    data = (config_dict or {}).get("data") or {}
    return {f"data.{name}": str(data[name]) for name in MACHINE_PATH_FIELDS if data.get(name)}


# ---------------------------------------------------------------------------------------------------------------
# Files


def file_record(path):
    path = Path(path)
    return {"sha256": file_digest(path), "size": path.stat().st_size}


def total_bytes(manifest, skip=()):
    return sum(
        int(record["size"])
        for entry in manifest["entries"]
        if entry["name"] not in skip
        for record in entry["files"].values()
    )


# Arrays of at least this many values are stored gzip-compressed with HDF5's byte-shuffle filter (h5py's standard
# filters: Keras and any HDF5 reader decompress them transparently); float16 weights shrink by about 10-20%.
COMPRESS_MIN_SIZE = 16384  # smaller arrays gain less than their chunk index costs


def cast_weights_file(src, dst, dtype):
    """Copies a Keras `.weights.h5` file with its float32 arrays stored as `dtype` ("float16" or "float32"); an
    array with values beyond float16's range stays float32. Arrays of `COMPRESS_MIN_SIZE` values or more are
    written gzip-compressed (shuffle + gzip 9), which loads unchanged. Returns the names of the arrays kept
    float32."""
    import h5py
    import numpy as np

    kept = []

    def copy(source, target, prefix=""):
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for key, item in source.items():
            if isinstance(item, h5py.Dataset):
                data = item[()]
                if dtype == "float16" and getattr(data, "dtype", None) == np.float32:
                    finite = np.isfinite(data)
                    if np.all(np.abs(data[finite]) <= FLOAT16_MAX) if data.size else True:
                        data = data.astype(np.float16)
                    else:
                        kept.append(f"{prefix}/{key}")
                packed = getattr(data, "size", 0) >= COMPRESS_MIN_SIZE and getattr(data, "ndim", 0) >= 1
                options = {"compression": "gzip", "compression_opts": 9, "shuffle": True} if packed else {}
                dataset = target.create_dataset(key, data=data, **options)
                for attr, attr_value in item.attrs.items():
                    dataset.attrs[attr] = attr_value
            else:
                copy(item, target.create_group(key), f"{prefix}/{key}")

    with h5py.File(src, "r") as source, h5py.File(dst, "w") as target:
        copy(source, target)
    return kept


# ---------------------------------------------------------------------------------------------------------------
# What an entry stores


def inference_networks(trainer, method):
    """The names of the networks inference uses: the method's `registry.Capabilities.inference_networks` (all of the
    trainer's networks, with a warning, when it declares none)."""
    from tf_faceedit import registry

    wanted = list(registry.get(method).capabilities.inference_networks)
    if not wanted:
        log.warning(
            "method %s declares no inference networks (registry.Capabilities.inference_networks): storing all of %s",
            method,
            ", ".join(trainer.networks),
        )
        return list(trainer.networks)
    missing = [name for name in wanted if name not in trainer.networks]
    if missing:
        raise ConfigError(
            f"method {method} has no network {missing[0]!r} (networks: {', '.join(trainer.networks)}); "
            "fix the inference_networks of its registry.Capabilities"
        )
    return wanted


# ---------------------------------------------------------------------------------------------------------------
# Measuring what float16 storage changes


def fixed_batch(task, num_attributes, num_images=8, seed=0, images_dir=None, size=(96, 80)):
    """A fixed batch: uint8 faces [N, H, W, 3] (synthetic faces of `seed`, or the first N images of `images_dir`,
    resized to `size` = (H, W)), target attributes [N, K] in {0, 1} (seeded), and for completion a hole mask."""
    import cv2
    import numpy as np

    height, width = size
    if images_dir:
        from tf_faceedit import images as images_lib

        paths = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in images_lib.IMAGE_EXTENSIONS)
        if not paths:
            raise DataError(f"--images {images_dir} holds no image file")
        faces = [
            cv2.resize(images_lib.read_image(p), (width, height), interpolation=cv2.INTER_AREA)
            for p in paths[:num_images]
        ]
    else:
        from tf_faceedit.data.synthetic import make_face

        faces = [make_face(seed, i, width=width, height=height)[0][..., ::-1] for i in range(num_images)]
    rng = np.random.RandomState(seed)
    batch = {
        "image": np.ascontiguousarray(np.stack(faces)).astype(np.uint8),
        "attributes": rng.randint(0, 2, (len(faces), num_attributes)).astype(np.float32),
    }
    if task == "complete":
        mask = np.zeros((len(faces), height, width, 1), np.uint8)
        mask[:, height // 4 : height // 4 + height // 3, width // 4 : 3 * width // 4] = 255  # eyes to nose
        mask[:, 2 * height // 3 : 5 * height // 6, width // 3 : 2 * width // 3] = 255  # mouth
        batch["mask"] = mask
    return batch


def _run(trainer, cfg, batch):
    import numpy as np

    from tf_faceedit.serving import processing

    if trainer.task == "classify":  # a judge: the probabilities on the batch resized to its image size
        size = int(cfg.data.image_size)
        out = trainer.infer({"image": processing.preprocess_images(batch["image"], size)})
        return {"probabilities": np.asarray(out["probabilities"], np.float32)}

    out = processing.run_inference(
        trainer.infer,
        trainer.task,
        batch["image"],
        batch["attributes"],
        int(cfg.data.image_size),
        len(cfg.data.attributes),
        batch.get("mask"),
    )
    return {key: np.asarray(value) for key, value in out.items()}


def compare_outputs(reference, other):
    """Per output: uint8 images -> max_abs_diff (levels), mean_abs_diff, psnr (dB; None when identical); float
    extras -> max_abs_diff."""
    import numpy as np

    report = {}
    for key, ref in reference.items():
        a, b = np.asarray(ref), np.asarray(other[key])
        if a.dtype == np.uint8:
            diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
            mse = float(np.mean(diff.astype(np.float64) ** 2))
            report[key] = {
                "max_abs_diff": int(diff.max()),
                "mean_abs_diff": round(float(diff.mean()), 4),
                "psnr": round(10 * np.log10(255.0**2 / mse), 2) if mse > 0 else None,
            }
        else:
            report[key] = {"max_abs_diff": float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))}
    return report


def _cast_in_memory(trainer, names, dtype):
    """Rounds the float32 variables of `names` to `dtype` and back (what storing them as `dtype` does)."""
    import numpy as np

    for name in names:
        for variable in trainer.networks[name].weights:
            value = np.asarray(variable)
            if value.dtype == np.float32 and (
                not value.size or np.abs(value[np.isfinite(value)]).max(initial=0) <= FLOAT16_MAX
            ):
                variable.assign(value.astype(dtype).astype(np.float32))


def compare_dtypes(model_dir, checkpoint=None, num_images=8, seed=0, images_dir=None):
    """What storing a run's inference weights as float16 changes: the outputs of the float32 networks and of the
    float16-rounded ones on a fixed batch (`fixed_batch`), compared by `compare_outputs`.

    Returns:
      {"method", "step", "num_images", "networks", "outputs": {key: metrics}}.
    """
    restored = model_source.restore(model_dir, checkpoint)
    trainer, cfg, info = restored.trainer, restored.config, restored.info
    networks = inference_networks(trainer, cfg.method)
    batch = fixed_batch(trainer.task, len(cfg.data.attributes), num_images, seed, images_dir)
    reference = _run(trainer, cfg, batch)
    _cast_in_memory(trainer, networks, "float16")
    return {
        "method": cfg.method,
        "step": info["step"],
        "num_images": len(batch["image"]),
        "networks": networks,
        "outputs": compare_outputs(reference, _run(trainer, cfg, batch)),
    }


# ---------------------------------------------------------------------------------------------------------------
# Adding an entry


def _judge_accuracy_report(model_dir, info):
    """The val accuracy report of a classifier run at the checkpoint being added (what a zoo judge gates on),
    computed on the run's own data when missing or stale (`load_or_evaluate_accuracy`). ConfigError for a checkpoint
    other than the newest."""
    from tf_faceedit.eval import classifier

    latest = classifier.latest_checkpoint(model_dir)
    if latest is None or Path(info["checkpoint"]).name != latest.name:
        raise ConfigError(
            f"a zoo judge is added from the newest checkpoint of its run ({latest.name if latest else 'none'}), "
            f"not {Path(info['checkpoint']).name}: its validation accuracy is measured there"
        )
    classifier.load_or_evaluate_accuracy(model_dir, split="val", metric="balanced_accuracy")
    return classifier.accuracy_path(model_dir)


def check_card(path, flag="--card"):
    """The text of a model card; ConfigError when it is missing, empty, unfilled or lacks CelebA's terms."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{flag} {path} does not exist (copy tf_faceedit/pretrained/CARD_TEMPLATE.md)")
    text = path.read_text(encoding="utf-8")
    if "TODO" in text:
        raise ConfigError(f"{flag} {path} still has TODO fields: fill them in")
    if not re.search(r"non-?commercial", text, re.IGNORECASE):
        raise ConfigError(
            f"{flag} {path} does not state CelebA's non-commercial research terms (see CARD_TEMPLATE.md, section Terms)"
        )
    return text


def _write_json_atomic(path, data):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def add(
    model_dir,
    name,
    card,
    dtype="float16",
    description=None,
    checkpoint=None,
    root=None,
    replace=False,
    num_images=8,
    seed=0,
):
    """Writes a zoo entry from a training run: config.yaml, the inference networks' weights (as `dtype`) and the
    model card, then the manifest record with each file's sha256 and size.

    The config is stored without the training machine's file locations (`strip_machine_paths`); their values go to
    the record's "provenance".

    Checks: the name's form; the card (`check_card`); the zoo's size budget (`MAX_TOTAL_BYTES`); that the entry,
    loaded back in float32, reproduces the run's outputs on a fixed batch within 1 level (else the method's
    `Capabilities.inference_networks` miss a network). Records in `precision` what float16 storage changes on that
    batch.
    Returns the new Entry.
    """
    if not is_name(name):
        raise ConfigError(
            f"--name {name!r} must be lowercase letters, digits, '.', '_' or '-' (e.g. "
            "sagan-eyeglasses-64), at most 64 characters"
        )
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    check_card(card)
    root = zoo_root(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root)
    if any(e["name"] == name for e in manifest["entries"]) and not replace:
        raise ConfigError(f"zoo entry {name} already exists in {root}; pass --replace to overwrite it")
    restored = model_source.restore(model_dir, checkpoint)
    trainer, cfg, info = restored.trainer, restored.config, restored.info
    if trainer.task not in TASKS:
        raise ConfigError(
            f"--model_dir {model_dir} holds a {cfg.method!r} model (task {trainer.task!r}); the zoo "
            f"serves the tasks {', '.join(TASKS)}"
        )
    accuracy_report = None
    if trainer.task == "classify":
        accuracy_report = _judge_accuracy_report(model_dir, info)
    networks = inference_networks(trainer, cfg.method)
    batch = fixed_batch(trainer.task, len(cfg.data.attributes), num_images, seed)
    reference = _run(trainer, cfg, batch)

    tmp_root = root / f".add-{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp_root, ignore_errors=True)
    staged = tmp_root / name
    staged.mkdir(parents=True)
    try:
        released, provenance = strip_machine_paths(cfg)
        released.to_yaml(staged / CONFIG_FILE)
        for net in networks:
            trainer.networks[net].save_weights(str(staged / f"{net}.weights.h5"))
        shutil.copyfile(card, tmp_root / f"{name}.md")
        if accuracy_report is not None:
            shutil.copyfile(accuracy_report, staged / JUDGE_ACCURACY_FILE)
        record = {
            "name": name,
            "description": description or "",
            "method": cfg.method,
            "task": trainer.task,
            "attributes": list(cfg.data.attributes),
            "image_size": int(cfg.data.image_size),
            "dtype": "float32",
            "step": int(info["step"]),
            "card": f"{name}.md",
            "networks": networks,
            "files": {},
        }

        def staged_entry():
            files = {
                f"{name}/{CONFIG_FILE}": file_record(staged / CONFIG_FILE),
                f"{name}.md": file_record(tmp_root / f"{name}.md"),
            }
            files.update({f"{name}/{net}.weights.h5": file_record(staged / f"{net}.weights.h5") for net in networks})
            if accuracy_report is not None:
                files[f"{name}/{JUDGE_ACCURACY_FILE}"] = file_record(staged / JUDGE_ACCURACY_FILE)
            return Entry(tmp_root, {**record, "files": files})

        # 1. the float32 entry must reproduce the run (every network inference uses is stored)
        entry_trainer, entry_cfg, _ = restore_entry(staged_entry())
        as_float32 = compare_outputs(reference, _run(entry_trainer, entry_cfg, batch))
        worst = max((m["max_abs_diff"] for m in as_float32.values() if "psnr" in m), default=0)
        worst_float = max((m["max_abs_diff"] for m in as_float32.values() if "psnr" not in m), default=0)
        if worst > 1 or trainer.task == "classify" and worst_float > 1e-4:
            raise ConfigError(
                f"the entry's networks ({', '.join(networks)}) do not reproduce --model_dir "
                f"{model_dir} (max diff {worst} levels, {worst_float:.2g} in the float outputs): "
                f"the inference_networks of {cfg.method}'s registry.Capabilities miss a network that inference uses"
            )
        # 2. float16 storage: what it changes (measured for every entry, so the choice can be checked)
        for net in networks:
            path = staged / f"{net}.weights.h5"
            half = staged / f"{net}.half.weights.h5"
            kept = cast_weights_file(path, half, "float16")
            if kept:
                log.warning("%s: %d array(s) beyond float16's range kept float32: %s", net, len(kept), ", ".join(kept))
            entry_trainer.networks[net].load_weights(str(half))  # cast back to float32, as on load
            if dtype == "float16":
                os.replace(half, path)
            else:
                half.unlink()
        half_outputs = _run(entry_trainer, entry_cfg, batch)
        record["dtype"] = dtype
        record["precision"] = {
            "float16_vs_float32": compare_outputs(reference, half_outputs),
            "batch": f"{len(batch['image'])} synthetic faces (seed {seed}), seeded targets",
        }
        record["source"] = {"model_dir": str(Path(model_dir).resolve()), "checkpoint": Path(info["checkpoint"]).name}
        record["provenance"] = provenance
        record["files"] = staged_entry().files
        record["description"] = description or (
            f"{cfg.method}: {', '.join(cfg.data.attributes)} at "
            f"{cfg.data.image_size}x{cfg.data.image_size} ({record['dtype']})"
        )

        size = sum(r["size"] for r in record["files"].values())
        total = total_bytes(manifest, skip={name}) + size
        limit = int(manifest.get("max_total_bytes", MAX_TOTAL_BYTES))
        if total > limit:
            raise ConfigError(
                f"zoo entry {name} ({size / 1e6:.1f} MB) would bring the zoo to {total / 1e6:.3g} MB, "
                f"over its {limit / 1e6:.3g} MB limit; try --dtype float16 or a smaller model"
            )

        # 3. publish: the files, then the manifest
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(staged, final)
        os.replace(tmp_root / f"{name}.md", root / f"{name}.md")
        manifest["entries"] = sorted(
            [e for e in manifest["entries"] if e["name"] != name] + [record], key=lambda e: e["name"]
        )
        manifest.setdefault("format", FORMAT)
        manifest.setdefault("max_total_bytes", MAX_TOTAL_BYTES)
        _write_json_atomic(root / MANIFEST, manifest)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    log.info("added zoo entry %s (%s, %.2f MB) from %s", name, record["dtype"], size / 1e6, info["checkpoint"])
    return Entry(root, record)


def compact(names=None, root=None):
    """Re-stores the weights of existing entries compressed (`cast_weights_file` with the entry's dtype: the arrays
    are unchanged, only their storage) and updates their manifest records. Returns {name: (bytes before, after)}."""
    root = zoo_root(root)
    manifest = read_manifest(root)
    out = {}
    for record in manifest["entries"]:
        if names and record["name"] not in names:
            continue
        entry = get(record["name"], root)
        check_files(entry)
        before = after = 0
        for rel in list(record["files"]):
            if not rel.endswith(".weights.h5"):
                continue
            path = root / rel
            staged = path.with_name(path.name + ".compact")
            cast_weights_file(path, staged, record["dtype"])
            size = path.stat().st_size
            before += size
            if staged.stat().st_size < size:
                os.replace(staged, path)
            else:  # nothing to gain (already compact): keep the file as it is
                staged.unlink()
            after += path.stat().st_size
            record["files"][rel] = file_record(path)
        out[record["name"]] = (before, after)
    _write_json_atomic(root / MANIFEST, manifest)
    return out


def remove(name, root=None):
    """Removes an entry's files and its manifest record."""
    root = zoo_root(root)
    entry = get(name, root)
    manifest = read_manifest(root)
    manifest["entries"] = [e for e in manifest["entries"] if e["name"] != name]
    _write_json_atomic(root / MANIFEST, manifest)
    shutil.rmtree(entry.directory, ignore_errors=True)
    entry.card.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# Verifying the zoo


def synthetic_faces(n=2, height=40, width=36, seed=0):
    """uint8 RGB synthetic faces [n, height, width, 3] (not the model's size)."""
    import numpy as np

    from tf_faceedit.data.synthetic import make_face

    return np.stack([make_face(seed, i, width=width, height=height)[0][..., ::-1] for i in range(n)]).copy()


def check_model(entry):
    """Loads the entry with `tf_faceedit.load` and edits (completes) two synthetic faces (a judge: loads it with
    `load_classifier`, classifies them and reads its accuracy report); returns the problems."""
    import numpy as np

    from tf_faceedit import api

    source = entry.name if entry.root == zoo_root() else entry.directory
    if entry.task == "classify":
        from tf_faceedit.eval import classifier

        judge = classifier.load_classifier(source)
        probabilities = judge.predict(synthetic_faces())
        problems = []
        if judge.attribute_names != entry.attributes:
            problems.append(f"attribute_names are {judge.attribute_names}, the manifest says {entry.attributes}")
        if probabilities.shape != (2, len(entry.attributes)) or not np.all((0 <= probabilities) & (probabilities <= 1)):
            problems.append(f"probabilities of shape {probabilities.shape} outside [0, 1] or of the wrong shape")
        try:
            classifier.zoo_accuracy_report(entry)
        except (ConfigError, DataError) as err:
            problems.append(str(err))
        return problems
    model = api.load(source)
    problems = []
    for key, want in (
        ("method", entry.method),
        ("attribute_names", entry.attributes),
        ("image_size", entry.image_size),
        ("task", entry.task),
    ):
        if getattr(model, key) != want:
            problems.append(f"{key} is {getattr(model, key)!r}, the manifest says {want!r}")
    faces = synthetic_faces()
    targets = {name: 1.0 for name in entry.attributes}
    if model.task == "complete":
        mask = np.zeros(faces.shape[:3] + (1,), np.uint8)
        mask[:, 10:25, 8:28] = 255
        out = model.complete(faces, mask, targets)
        keys = ("completed", "raw")
    else:
        out = model.edit(faces, targets)
        keys = ("image",)
    for key in keys:
        if out[key].shape != faces.shape or out[key].dtype != np.uint8:
            problems.append(f"output {key} is {out[key].dtype} {out[key].shape}, expected uint8 {faces.shape}")
    return problems


def verify(root=None, only=None, load=False):
    """Checks the zoo: every file of every entry (or of `only`, names) against the manifest, the cards' terms, the
    size budget, no stray file; with `load`, each entry loads and edits synthetic faces (`check_model`).

    Returns:
      {name: [problems]} (an empty list: the entry is fine) and, under "", the zoo-wide problems.
    """
    root = zoo_root(root)
    manifest = read_manifest(root)
    all_entries = entries(root)
    known = {e.name for e in all_entries}
    for name in only or ():
        if name not in known:
            raise unknown_name_error(name, root)
    report = {"": []}
    for entry in all_entries:
        if only and entry.name not in only:
            continue
        problems = []
        try:
            check_files(entry)
            if entry.data["card"] not in entry.files:
                problems.append(f"card {entry.data['card']} is not in its files")
            problems.extend(f"{rel} is not in its files" for rel in entry.extra_files() if rel not in entry.files)
            check_card(entry.card, flag="card")
            from tf_faceedit import config as config_lib

            for key, value in machine_paths(config_lib.load_run_config(entry.directory / CONFIG_FILE)).items():
                problems.append(
                    f"{entry.name}/{CONFIG_FILE} keeps {key}: {value} (a path of the training machine; "
                    "re-add the entry, or empty it and move it to the manifest's provenance)"
                )
            if load:
                problems.extend(check_model(entry))
        except (ConfigError, DataError) as err:
            problems.append(str(err))
        report[entry.name] = problems
    total = total_bytes(manifest)
    limit = int(manifest.get("max_total_bytes", MAX_TOTAL_BYTES))
    if total > limit:
        report[""].append(f"the zoo holds {total / 1e6:.3g} MB, over its {limit / 1e6:.3g} MB limit")
    listed = {rel.split("/")[0] for e in all_entries for rel in e.files}
    if root.is_dir():
        stray = [p.name for p in root.iterdir() if p.name not in listed and p.name not in OWN_FILES]
        if stray:
            report[""].append(f"files not in the manifest (they would be packaged): {', '.join(sorted(stray))}")
    return report
