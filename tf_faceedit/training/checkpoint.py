"""Backend-portable, atomic, self-validating checkpoints of a trainer.

Layout of `model_dir/checkpoints/ckpt-00001000/`:
  <network>.weights.h5   Keras weights of each network (load on any Keras backend)
  optimizers.npz         every optimizer's variables, keyed `<optimizer>/<index>`
  trainer_state.npz      step counter and RNG state (`GANTrainer.state_variables()`), and the seed-generator
                         states inside the networks (e.g. Dropout), keyed `net/<network>/<index>`
  state.json             {"step": int, "format": 1, ...extra state from the method}
  manifest.json          {"format": 1, "files": {name: {"bytes": int, "sha256": hex}}}: written last

A checkpoint is written into `ckpt-XXXXXXXX.tmp/`, its manifest last, and the folder renamed when complete, so a
crash mid-write leaves the previous checkpoint loadable; half-written `.tmp` folders are ignored and cleaned up.

Every checkpoint is validated before it is used (resume, NaN rollback, `tf_faceedit.load`, export, evaluation):
against its manifest (each file present, of its size and SHA-256), or, for a checkpoint written before manifests
existed, by reading it (state.json parses, every .h5 / .npz file opens and its arrays read). Without an explicit
path, the newest intact checkpoint is used and each newer damaged one is named in a warning with the reason; a
damaged checkpoint is never deleted (pruning counts and removes intact ones only; a damaged folder in the way of a
new checkpoint is renamed `ckpt-XXXXXXXX.damaged`). When no checkpoint is intact, `TrainingError` says so in one
line.

Writing fails with one `TrainingError` line (naming the folder, the space needed and the space free) when the disk
is full, before writing when the free space is already short; the partial `.tmp` folder is removed and every
earlier checkpoint kept.
"""

import json
import logging
import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np

from tf_faceedit.errors import TrainingError
from tf_faceedit.io_util import file_digest, is_no_space

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d+)$")
MANIFEST = "manifest.json"
STATE = "state.json"
_REQUIRED_LEGACY = ("optimizers.npz", "trainer_state.npz")  # besides state.json and the .weights.h5 files


def write_manifest(folder):
    """Writes `folder/manifest.json` listing every other file of the folder (size, SHA-256). Returns the dict."""
    folder = Path(folder)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": file_digest(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {"format": 1, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _mb(n):
    return f"{n / 2**20:.1f} MiB"


def check_checkpoint(path):
    """Why the checkpoint folder `path` cannot be used (a one-line reason), or None when it is intact.

    With a manifest: every listed file present with its size and SHA-256. Without one (checkpoints written before
    manifests): state.json parses and has a step, optimizers.npz / trainer_state.npz and the .weights.h5 files are
    present and read in full (zip CRCs, HDF5 structure and datasets)."""
    path = Path(path)
    if not path.is_dir():
        return "not a folder"
    manifest_path = path / MANIFEST
    if manifest_path.is_file():
        try:
            files = json.loads(manifest_path.read_text())["files"]
            files = {str(name): (int(v["bytes"]), str(v["sha256"])) for name, v in files.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return f"{MANIFEST} is unreadable ({type(err).__name__})"
        if STATE not in files:
            return f"{MANIFEST} does not list {STATE}"
        for name, (size, digest) in files.items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            actual = file.stat().st_size
            if actual != size:
                return f"{name} has {actual} bytes, the manifest says {size} (truncated or overwritten)"
            try:
                if file_digest(file) != digest:
                    return f"{name} does not match its SHA-256 in the manifest (corrupted)"
            except OSError as err:
                return f"{name} cannot be read ({err.strerror or type(err).__name__})"
        return None
    return _check_legacy(path)


def _check_legacy(path):
    """`check_checkpoint` for a checkpoint without a manifest: read everything that can be read."""
    try:
        state = json.loads((path / STATE).read_text())
        int(state["step"])
    except FileNotFoundError:
        return f"{STATE} is missing"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{STATE} is unreadable or truncated ({type(err).__name__})"
    weights = sorted(path.glob("*.weights.h5"))
    if not weights:
        return "it holds no .weights.h5 file"
    for name in _REQUIRED_LEGACY:
        if not (path / name).is_file():
            return f"{name} is missing"
        try:
            with np.load(path / name) as arrays:
                for key in arrays.files:
                    arrays[key]  # reading a member checks its zip CRC
        except Exception as err:  # noqa: BLE001 - EOFError, BadZipFile, ValueError, OSError, zlib.error: all damage
            return f"{name} is unreadable or truncated ({type(err).__name__})"
    import h5py

    def read(_, item):
        if isinstance(item, h5py.Dataset):
            item[()]  # noqa: B018 - reading the data is the check
        return None  # (a value would stop the visit)

    for file in weights:
        try:
            with h5py.File(file, "r") as h5:
                h5.visititems(read)
        except Exception as err:  # noqa: BLE001 - OSError, KeyError, RuntimeError from a truncated/garbled HDF5
            return f"{file.name} is unreadable or truncated ({type(err).__name__})"
    return None


def _signature(path):
    """What a validation result is cached on: each file's name, size and mtime."""
    try:
        return tuple(
            sorted((p.name, s.st_size, s.st_mtime_ns) for p in Path(path).iterdir() if p.is_file() for s in [p.stat()])
        )
    except OSError:
        return None


class CheckpointManager:
    """Saves, validates and restores `trainer.networks`, its optimizers and its state variables.

    Args:
        directory: folder holding the `ckpt-*` checkpoints.
        trainer: a built and compiled `GANTrainer` (None: listing and validation only).
        max_to_keep: number of most recent intact checkpoints kept on disk.
        writable: False on the non-chief workers of a multi-worker run: `save` writes nothing (they only restore).
    """

    def __init__(self, directory, trainer, max_to_keep=3, writable=True):
        self.directory = Path(directory)
        self.trainer = trainer
        self.max_to_keep = max_to_keep
        self.writable = writable
        self._checked = {}  # path -> (signature, reason or None)
        self._warned = set()

    # -- listing and validation ---------------------------------------------------------------------------------
    def all_checkpoints(self):
        """Every `ckpt-XXXXXXXX` folder (intact or not), oldest first, as (step, path)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def checkpoints(self):
        """Intact checkpoints (see `check`), oldest first, as (step, path)."""
        return [(step, path) for step, path in self.all_checkpoints() if self.check(path) is None]

    def check(self, path):
        """Why checkpoint `path` cannot be used, or None when it is intact (cached until its files change)."""
        path = Path(path)
        signature = _signature(path)
        cached = self._checked.get(path)
        if cached is not None and cached[0] == signature and signature is not None:
            return cached[1]
        reason = check_checkpoint(path)
        self._checked[path] = (signature, reason)
        return reason

    def latest(self):
        """The newest intact checkpoint, or None when there is no checkpoint at all.

        Each newer damaged checkpoint is named in a warning (once) with the reason; it is left in place. Raises
        TrainingError when checkpoints exist but none is intact."""
        found = self.all_checkpoints()
        skipped = []
        for _, path in reversed(found):
            reason = self.check(path)
            if reason is None:
                if skipped:
                    self._warn_skipped(skipped, path)
                return path
            skipped.append((path, reason))
        if skipped:
            listed = "; ".join(f"{p.name}: {r}" for p, r in skipped)
            raise TrainingError(
                f"no intact checkpoint in {self.directory} ({listed}); the damaged folders are left "
                "in place: restore them from a copy, or delete them (or use --overwrite) to start over"
            )
        return None

    def _warn_skipped(self, skipped, used):
        new = [(p, r) for p, r in skipped if p not in self._warned]
        if new:
            self._warned.update(p for p, _ in new)
            log.warning(
                "skipping damaged checkpoint%s %s; using %s instead (the damaged folder%s left in place)",
                "s" if len(new) > 1 else "",
                "; ".join(f"{p} ({r})" for p, r in new),
                used.name,
                "s are" if len(new) > 1 else " is",
            )

    def _resolve(self, path):
        """`path` checked (TrainingError naming it when damaged), or the newest intact checkpoint (or None)."""
        if path is None:
            return self.latest()
        path = Path(path)
        reason = self.check(path)
        if reason is not None:
            raise TrainingError(f"checkpoint {path} is damaged or incomplete: {reason}")
        return path

    # -- save ---------------------------------------------------------------------------------------------------
    def save(self, step, extra_state=None):
        """Writes checkpoint `step` (files, then the manifest, then the rename). Returns its path (None when not
        writable). Raises TrainingError on a full disk (or another write error), after removing the partial write."""
        if not self.writable:
            return None
        final = self.directory / f"ckpt-{int(step):08d}"
        tmp = self.directory / f"ckpt-{int(step):08d}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            self._check_free_space(tmp)
            tmp.mkdir()
            self._write(tmp, step, extra_state)
            write_manifest(tmp)
            _fsync_dir(tmp)
            if final.exists():
                self._move_aside(final)
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._write_error(tmp, err) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._checked[final] = (_signature(final), None)  # just written and hashed
        self._prune()
        return final

    def _write(self, folder, step, extra_state):
        for name, network in self.trainer.networks.items():
            network.save_weights(str(folder / f"{name}.weights.h5"))
        arrays = {}
        for opt_name in self.trainer.optimizer_names:
            for i, variable in enumerate(getattr(self.trainer, opt_name).variables):
                arrays[f"{opt_name}/{i}"] = keras.ops.convert_to_numpy(variable)
        np.savez(folder / "optimizers.npz", **arrays)
        state = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(self.trainer.state_variables())}
        state.update({key: keras.ops.convert_to_numpy(v) for key, v in self._network_seed_states().items()})
        np.savez(folder / "trainer_state.npz", **state)
        (folder / STATE).write_text(json.dumps({"step": int(step), "format": 1, **(extra_state or {})}, indent=2))

    def _move_aside(self, final):
        """Replaces an existing `final`: an intact one is removed (it is rewritten at the same step), a damaged one
        is kept as `ckpt-XXXXXXXX.damaged[-N]` with a warning."""
        reason = self.check(final)
        if reason is None:
            shutil.rmtree(final)
            return
        target, n = final.with_name(final.name + ".damaged"), 1
        while target.exists():
            n += 1
            target = final.with_name(f"{final.name}.damaged-{n}")
        os.replace(final, target)
        log.warning("damaged checkpoint %s (%s) kept as %s", final, reason, target.name)

    def estimated_bytes(self):
        """Bytes a checkpoint takes: the newest existing one's, else the variables' size (plus file overhead)."""
        for _, path in reversed(self.all_checkpoints()):
            try:
                return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            except OSError:
                continue
        variables = [v for network in self.trainer.networks.values() for v in network.variables]
        variables += [v for name in self.trainer.optimizer_names for v in getattr(self.trainer, name).variables]
        variables += list(self.trainer.state_variables())
        total = sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize for v in variables)
        return int(total * 1.05) + 64 * 1024 * (len(self.trainer.networks) + 4)

    def _check_free_space(self, tmp):
        """Refuses to start a checkpoint that cannot fit (cheap: one statvfs)."""
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return
        needed = self.estimated_bytes()
        if free < needed:
            raise TrainingError(self._no_space_message(tmp, needed, free))

    def _no_space_message(self, tmp, needed, free):
        latest = [p.name for _, p in self.all_checkpoints()]
        kept = f"earlier checkpoints are kept (latest {latest[-1]})" if latest else "no earlier checkpoint exists"
        return (
            f"no space left on the disk of {self.directory} to write checkpoint {tmp.name}: it needs about "
            f"{_mb(needed)}, {_mb(free)} free; {kept}; free some space (or lower train.keep_checkpoints) and "
            "run the same command again to resume"
        )

    def _write_error(self, tmp, err):
        if is_no_space(err):
            try:
                free = shutil.disk_usage(self.directory).free
            except OSError:
                free = 0
            return TrainingError(self._no_space_message(tmp, self.estimated_bytes(), free))
        reason = err.strerror or " ".join(str(err).split())[:200]
        return TrainingError(
            f"cannot write checkpoint {tmp} in {self.directory}: {reason}; the partial write was "
            "removed and earlier checkpoints are kept"
        )

    def _network_seed_states(self):
        """`net/<network>/<i>` -> the networks' seed-generator states (Dropout, ...): in `variables`, not in
        `weights`, so `.weights.h5` does not hold them; without them a resume would draw other dropout masks."""
        states = {}
        for name, network in self.trainer.networks.items():
            weight_ids = {id(w) for w in network.weights}
            extra = [v for v in network.variables if id(v) not in weight_ids]
            for i, variable in enumerate(extra):
                states[f"net/{name}/{i}"] = variable
        return states

    def _prune(self):
        """Keeps the `max_to_keep` newest intact checkpoints; damaged ones are never removed. Drops `.tmp` leftovers."""
        for _, path in self.checkpoints()[: -self.max_to_keep]:
            shutil.rmtree(path, ignore_errors=True)
        for path in self.directory.glob("ckpt-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)

    # -- restore ------------------------------------------------------------------------------------------------
    def peek(self, path=None):
        """The state.json of `path` (default: the newest intact checkpoint) without restoring anything, or None.
        Raises TrainingError when `path` (or every checkpoint) is damaged."""
        path = self._resolve(path)
        if path is None:
            return None
        return json.loads((path / STATE).read_text())

    def restore(self, path=None):
        """Restores `path` (default: the newest intact checkpoint). Returns its state dict, or None when there is
        none. Raises TrainingError when `path` (or every checkpoint) is damaged, or does not match the model."""
        path = self._resolve(path)
        if path is None:
            return None
        for name, network in self.trainer.networks.items():
            weights = path / f"{name}.weights.h5"
            if not weights.is_file():
                raise TrainingError(f"checkpoint {path} has no weights for network '{name}'")
            network.load_weights(str(weights))
        with np.load(path / "optimizers.npz") as arrays:
            for opt_name in self.trainer.optimizer_names:
                variables = getattr(self.trainer, opt_name).variables
                for i, variable in enumerate(variables):
                    key = f"{opt_name}/{i}"
                    if key not in arrays or tuple(arrays[key].shape) != tuple(variable.shape):
                        raise TrainingError(
                            f"checkpoint {path} does not match this model's optimizer '{opt_name}' "
                            "(was it written with another config?)"
                        )
                    variable.assign(arrays[key])
        with np.load(path / "trainer_state.npz") as arrays:
            for i, variable in enumerate(self.trainer.state_variables()):
                variable.assign(arrays[f"v{i}"])
            for key, variable in self._network_seed_states().items():
                if key in arrays.files and tuple(arrays[key].shape) == tuple(variable.shape):  # absent in old ones
                    variable.assign(arrays[key])
        state = json.loads((path / STATE).read_text())
        log.info("restored %s (step %d)", path, state["step"])
        return state

    def restore_networks(self, path=None):
        """Restores only the networks' weights of `path` (default: the newest intact checkpoint), for inference and
        export (no optimizer or RNG state is needed). Returns the state dict; a damaged checkpoint, none at all, or
        one of another architecture raises TrainingError."""
        resolved = self._resolve(path)
        if resolved is None:
            raise TrainingError(f"no checkpoint in {self.directory} (train it first)")
        path = resolved
        for name, network in self.trainer.networks.items():
            weights = path / f"{name}.weights.h5"
            if not weights.is_file():
                raise TrainingError(
                    f"checkpoint {path} has no weights for network '{name}' (was it written by another method?)"
                )
            try:
                network.load_weights(str(weights))
            except ValueError as err:
                raise TrainingError(
                    f"checkpoint {path} does not match this model's network '{name}' (was it "
                    f"written with another config?): {err}"
                ) from err
        return json.loads((path / STATE).read_text())


def _fsync_dir(path):
    """Flushes a folder's entries (and its files) to disk, so the rename that publishes a checkpoint never lands
    before its content (a power cut then still leaves a complete previous checkpoint). Best effort."""
    try:
        for child in Path(path).iterdir():
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
