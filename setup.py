"""The one thing pyproject.toml's tables cannot say: package the top-level `configs/` folder (the presets' home in
the checkout) into the wheel as `tf_faceedit/configs/presets/`.

setuptools maps a package to a folder outside the package tree only through `package_dir`, and `[tool.setuptools]`
cannot list such a package next to `packages.find`; so the package list lives here, the mapping beside it.
Everything else (name, version, dependencies, extras, scripts, package data, ruff) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    # namespace packages as pyproject's `packages.find` found them (the zoo's entry folders hold no __init__.py)
    packages=[*find_namespace_packages(include=["tf_faceedit", "tf_faceedit.*"]), "tf_faceedit.configs.presets"],
    package_dir={"tf_faceedit.configs.presets": "configs"},
)
