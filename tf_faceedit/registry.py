"""Method registry: METHODS[name] -> MethodSpec(config_class, trainer_class).

Importing `tf_faceedit.methods` registers every built-in method; `get(name)` does that import lazily so the CLIs
can list methods without building anything.
"""

import dataclasses
import importlib

from tf_faceedit.errors import ConfigError, suggest

METHODS = {}


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    config_class: type
    trainer_class: type
    description: str = ""


def register(name, config_class, trainer_class, description=""):
    """Registers a method; used by each file of `tf_faceedit/methods/` at import time."""
    METHODS[name] = MethodSpec(name, config_class, trainer_class, description)
    return trainer_class


def names():
    importlib.import_module("tf_faceedit.methods")
    return sorted(METHODS)


def get(name):
    """Returns the MethodSpec of `name`, or raises ConfigError listing the registered methods."""
    available = names()
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}{suggest(name, available)}; "
                          f"registered methods: {', '.join(available)}")
    return METHODS[name]
