"""`tf_faceedit.backend.onednn`: importing the package turns TensorFlow's oneDNN CPU kernels on (x86-64 Linux),
unless the user chose, or TensorFlow was imported first. Each case runs in a fresh interpreter: TensorFlow reads the
variable once, when it is imported."""

import json
import os
import subprocess
import sys

import pytest

from tf_faceedit.backend import onednn

pytestmark = pytest.mark.skipif(not onednn._x86_64_linux(), reason="tf_faceedit sets the variable on x86-64 Linux only")

REPORT = (
    "import json, os, sys; from tf_faceedit.backend import onednn; "
    "print(json.dumps({'env': os.environ.get(onednn.ENV), 'enabled': onednn.enabled(), "
    "'describe': onednn.describe(), 'advice': onednn.advice()}))"
)


def run_fresh(code, env_value=None):
    env = {k: v for k, v in os.environ.items() if k != onednn.ENV}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if env_value is not None:
        env[onednn.ENV] = env_value
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_tf_faceedit_first_turns_the_kernels_on():
    report = run_fresh("import tf_faceedit; " + REPORT)
    assert report["env"] == "1"
    assert report["enabled"] is True  # TensorFlow's x86-64 Linux wheels are built with oneDNN
    assert report["describe"] == f"on ({onednn.ENV}=1 set by tf_faceedit)"
    assert report["advice"] is None


def test_the_users_choice_is_kept():
    report = run_fresh("import tf_faceedit; " + REPORT, env_value="0")
    assert report["env"] == "0"
    assert report["enabled"] is False
    assert report["describe"] == f"off ({onednn.ENV}=0)"
    assert report["advice"] is None  # asked for: no warning


def test_tensorflow_imported_first_keeps_its_default_and_says_how_to_fix():
    report = run_fresh("import tensorflow; import tf_faceedit; " + REPORT)
    assert report["env"] is None  # too late to choose: the variable is left alone
    assert report["describe"] == ("on" if report["enabled"] else "off") + " (TensorFlow's default for this CPU)"
    if report["enabled"]:  # a CPU where TensorFlow turns them on itself (AVX512_VNNI, AMX, ...)
        assert report["advice"] is None
    else:
        assert f"set {onednn.ENV}=1 before TensorFlow is imported" in report["advice"]


def test_prefer_never_overrides_a_set_variable(monkeypatch):
    monkeypatch.setenv(onednn.ENV, "0")
    assert onednn.prefer() is False
    assert os.environ[onednn.ENV] == "0"
