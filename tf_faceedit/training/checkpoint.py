"""Backend-portable, atomic checkpoints of a trainer.

Layout of `model_dir/checkpoints/ckpt-00001000/`:
  <network>.weights.h5   Keras weights of each network (load on any Keras backend)
  optimizers.npz         every optimizer's variables, keyed `<optimizer>/<index>`
  trainer_state.npz      step counter and RNG state (`GANTrainer.state_variables()`), and the seed-generator
                         states inside the networks (e.g. Dropout), keyed `net/<network>/<index>`
  state.json             {"step": int, "format": 1, ...extra state from the method}

A checkpoint is written into `ckpt-XXXXXXXX.tmp/` and renamed when complete, so a crash mid-write leaves the
previous checkpoint loadable; half-written `.tmp` folders are ignored and cleaned up.
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

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d+)$")


class CheckpointManager:
    """Saves and restores `trainer.networks`, its optimizers and its state variables.

    Args:
        directory: folder holding the `ckpt-*` checkpoints.
        trainer: a built and compiled `GANTrainer`.
        max_to_keep: number of most recent checkpoints kept on disk.
        writable: False on the non-chief workers of a multi-worker run: `save` writes nothing (they only restore).
    """

    def __init__(self, directory, trainer, max_to_keep=3, writable=True):
        self.directory = Path(directory)
        self.trainer = trainer
        self.max_to_keep = max_to_keep
        self.writable = writable

    # -- listing ------------------------------------------------------------------------------------------------
    def checkpoints(self):
        """Complete checkpoints, oldest first, as (step, path)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and (path / "state.json").is_file():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self):
        found = self.checkpoints()
        return found[-1][1] if found else None

    # -- save ---------------------------------------------------------------------------------------------------
    def save(self, step, extra_state=None):
        if not self.writable:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"ckpt-{int(step):08d}"
        tmp = self.directory / f"ckpt-{int(step):08d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, network in self.trainer.networks.items():
            network.save_weights(str(tmp / f"{name}.weights.h5"))
        arrays = {}
        for opt_name in self.trainer.optimizer_names:
            for i, variable in enumerate(getattr(self.trainer, opt_name).variables):
                arrays[f"{opt_name}/{i}"] = keras.ops.convert_to_numpy(variable)
        np.savez(tmp / "optimizers.npz", **arrays)
        state = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(self.trainer.state_variables())}
        state.update({key: keras.ops.convert_to_numpy(v) for key, v in self._network_seed_states().items()})
        np.savez(tmp / "trainer_state.npz", **state)
        (tmp / "state.json").write_text(json.dumps({"step": int(step), "format": 1, **(extra_state or {})}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        _fsync_dir(tmp)
        os.replace(tmp, final)
        _fsync_dir(self.directory)
        self._prune()
        return final

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
        for _, path in self.checkpoints()[: -self.max_to_keep]:
            shutil.rmtree(path, ignore_errors=True)
        for path in self.directory.glob("ckpt-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)

    # -- restore ------------------------------------------------------------------------------------------------
    def peek(self, path=None):
        """The state.json of `path` (default: latest) without restoring anything, or None."""
        path = Path(path) if path is not None else self.latest()
        if path is None or not (path / "state.json").is_file():
            return None
        return json.loads((path / "state.json").read_text())

    def restore(self, path=None):
        """Restores `path` (default: the latest checkpoint). Returns its state dict, or None when there is none."""
        path = Path(path) if path is not None else self.latest()
        if path is None:
            return None
        if not (path / "state.json").is_file():
            raise TrainingError(f"checkpoint {path} is incomplete or missing (no state.json)")
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
                        raise TrainingError(f"checkpoint {path} does not match this model's optimizer '{opt_name}' "
                                            "(was it written with another config?)")
                    variable.assign(arrays[key])
        with np.load(path / "trainer_state.npz") as arrays:
            for i, variable in enumerate(self.trainer.state_variables()):
                variable.assign(arrays[f"v{i}"])
            for key, variable in self._network_seed_states().items():
                if key in arrays.files and tuple(arrays[key].shape) == tuple(variable.shape):  # absent in old ones
                    variable.assign(arrays[key])
        state = json.loads((path / "state.json").read_text())
        log.info("restored %s (step %d)", path, state["step"])
        return state

    def restore_networks(self, path=None):
        """Restores only the networks' weights of `path` (default: latest), for inference and export (no optimizer
        or RNG state is needed). Returns the state dict; a checkpoint of another architecture raises TrainingError."""
        path = Path(path) if path is not None else self.latest()
        if path is None or not (path / "state.json").is_file():
            raise TrainingError(f"checkpoint {path} is incomplete or missing (no state.json)")
        for name, network in self.trainer.networks.items():
            weights = path / f"{name}.weights.h5"
            if not weights.is_file():
                raise TrainingError(f"checkpoint {path} has no weights for network '{name}' (was it written by "
                                    "another method?)")
            try:
                network.load_weights(str(weights))
            except ValueError as err:
                raise TrainingError(f"checkpoint {path} does not match this model's network '{name}' (was it "
                                    f"written with another config?): {err}") from err
        return json.loads((path / "state.json").read_text())


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
