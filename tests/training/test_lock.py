"""One trainer per model_dir: `model_dir/.lock` refuses a second trainer, a stale lock is taken over, and the lock
is removed when the run ends (also on an exception)."""

import json
import logging
import socket
import subprocess
import sys

import pytest

from tests.helpers import tiny_config
from tf_faceedit.errors import DataError, TrainingError
from tf_faceedit.training import driver
from tf_faceedit.training.lock import ModelDirLock, pid_alive


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def _write_lock(model_dir, pid, host=None):
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / ".lock").write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "created": 0}))


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_lock_holds_pid_and_host_and_is_removed(tmp_path):
    with ModelDirLock(tmp_path) as lock:
        content = json.loads((tmp_path / ".lock").read_text())
        assert content["host"] == socket.gethostname() and content["pid"] == lock.pid
        with pytest.raises(TrainingError, match=f"pid {lock.pid}"):
            ModelDirLock(tmp_path).acquire()  # the same process twice is refused too
    assert not (tmp_path / ".lock").exists()


def test_second_run_on_locked_dir_raises_naming_the_pid(tmp_path, live_pid, synthetic_celeba):
    _write_lock(tmp_path / "run", live_pid)
    cfg = tiny_config("sagan", synthetic_celeba, **{"train.strategy": "default"})
    with pytest.raises(TrainingError, match=rf"in use by another trainer \(pid {live_pid} "):
        driver.run(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == live_pid  # the owner's lock is kept
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before touching the folder


def test_lock_of_another_host_is_refused(tmp_path):
    _write_lock(tmp_path, 1, host="some-other-host")
    with pytest.raises(TrainingError, match="pid 1 on host some-other-host"):
        ModelDirLock(tmp_path).acquire()


def test_stale_lock_is_taken_over_with_a_warning_and_removed_on_exception(tmp_path, caplog):
    dead = _dead_pid()
    _write_lock(tmp_path / "run", dead)
    cfg = tiny_config("sagan", tmp_path / "no_such_data", **{"train.strategy": "default"})
    with caplog.at_level(logging.WARNING):
        with pytest.raises(DataError):  # got past the lock, then failed on the missing data
            driver.run(cfg, tmp_path / "run")
    assert any("stale lock" in r.getMessage() and str(dead) in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "run" / ".lock").exists()


def test_unreadable_old_lock_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("")  # a trainer killed between creating and writing it
    import os

    os.utime(tmp_path / ".lock", (0, 0))
    with ModelDirLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] > 0
    assert not (tmp_path / ".lock").exists()
