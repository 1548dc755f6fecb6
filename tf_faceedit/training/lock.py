"""One trainer per model_dir: an exclusive lock file `model_dir/.lock`.

The lock file holds JSON `{"pid": int, "host": str, "created": float}`. It is created atomically (`O_CREAT|O_EXCL`),
so of two trainers started at once exactly one gets it. A lock whose owner is a dead process on this host is stale
(the trainer was killed, e.g. SIGKILL or a power cut): it is taken over with a warning. A lock held by another host
cannot be checked and is always refused (remove the file by hand when that run is known to be gone).

    with ModelDirLock(model_dir):
        ...train...
"""

import json
import logging
import os
import socket
import time
from pathlib import Path

from tf_faceedit.errors import TrainingError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


def pid_alive(pid):
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class ModelDirLock:
    """Exclusive lock of a run folder, as a context manager (also `acquire()` / `release()`).

    Args:
        model_dir: the run folder; the lock is `model_dir/.lock`.
    Raises (on acquire): TrainingError naming the pid and host of the trainer that holds the folder.
    """

    def __init__(self, model_dir):
        self.path = Path(model_dir) / LOCK_NAME
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.held = False

    def read(self):
        """The lock's content as a dict, or None (no lock, or an unreadable/half-written one)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _create(self):
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": self.pid, "host": self.host, "created": time.time()}, f)
        except OSError as err:  # e.g. a full disk: the file exists but is empty; do not leave it behind
            self.path.unlink(missing_ok=True)
            raise TrainingError(f"cannot write the lock file {self.path}: {err.strerror or err}") from None

    def acquire(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrainingError(f"cannot create --model_dir {self.path.parent}: {err.strerror or err}") from None
        for _ in range(3):
            try:
                self._create()
                self.held = True
                return self
            except FileExistsError:
                pass
            except OSError as err:  # permissions, a full disk (no inode), a read-only file system
                raise TrainingError(f"cannot create the lock file {self.path}: {err.strerror or err}") from None
            owner = self.read()
            if owner is None:
                # written by a trainer killed between create and write, or being written right now
                if time.time() - _mtime(self.path) < 5.0:
                    time.sleep(0.5)
                    continue
                log.warning("taking over the unreadable lock %s", self.path)
            elif owner.get("host") != self.host:
                raise TrainingError(
                    f"--model_dir {self.path.parent} is in use by pid {owner.get('pid')} on host {owner.get('host')} "
                    f"(lock file {self.path}); if that run is gone, delete the lock file"
                )
            elif owner.get("pid") == self.pid or pid_alive(int(owner.get("pid", -1))):
                raise TrainingError(
                    f"--model_dir {self.path.parent} is in use by another trainer (pid {owner.get('pid')} on host "
                    f"{owner.get('host')}, lock file {self.path}); wait for it to finish or use another --model_dir"
                )
            else:
                log.warning(
                    "taking over the stale lock %s of pid %s on %s (that process is gone)",
                    self.path,
                    owner.get("pid"),
                    owner.get("host"),
                )
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        raise TrainingError(f"could not take the lock {self.path} (another trainer keeps taking it)")

    def release(self):
        if not self.held:
            return
        self.held = False
        owner = self.read()
        if owner is not None and (owner.get("pid"), owner.get("host")) != (self.pid, self.host):
            log.warning("lock %s now belongs to pid %s; left in place", self.path, owner.get("pid"))
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _mtime(path):
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
