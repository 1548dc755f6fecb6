"""The top level's packaging files agree: requirements.txt pins every dependency pyproject.toml names (its
dependencies and the extras CI installs, `.ci/run`), each pin inside pyproject's range; the presets' home is the
top-level configs/, which setup.py packages. (Building and installing the wheel: tests/test_wheel.py, slow.)"""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tf_faceedit import configs as presets

ROOT = Path(__file__).resolve().parents[1]
CI_EXTRAS = ("test", "demo", "jax")  # `.ci/run`: pip install -r requirements.txt -e ".[test,demo,jax]"


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras, wanted, seen = project.get("optional-dependencies", {}), list(CI_EXTRAS), set()
    requirements = [Requirement(line) for line in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in extras[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                wanted += sorted(requirement.extras)  # tf_faceedit[other]: that extra's requirements too
            else:
                requirements.append(requirement)
    return requirements


def _pins():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier  # one exact pin per line
            assert spec.operator == "==", f"requirements.txt: {line} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_requirements_pin_every_dependency_within_its_range():
    pins = _pins()
    missing, outside = [], []
    for requirement in _pyproject_requirements():
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            missing.append(str(requirement))
        elif not requirement.specifier.contains(version, prereleases=True):
            outside.append(f"{requirement.name}=={version} (pyproject.toml: {requirement})")
    assert not missing, f"pyproject.toml names these, requirements.txt pins no version: {missing}"
    assert not outside, f"requirements.txt pins outside pyproject.toml's range: {outside}"


def test_ci_installs_the_pinned_set():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"pip install .*-r requirements\.txt", script), "CI must install requirements.txt"
    assert f'-e ".[{",".join(CI_EXTRAS)}]"' in script


def test_the_presets_live_in_the_top_level_configs_folder():
    assert presets.PRESET_DIR == ROOT / "configs"  # a checkout (an installed wheel: tf_faceedit/configs/presets)
    assert not list((ROOT / "tf_faceedit" / "configs").glob("*.yaml")), "presets belong in the top-level configs/"
    assert 'package_dir={"tf_faceedit.configs.presets": "configs"}' in (ROOT / "setup.py").read_text()
