"""One file per method, or one package (e.g. `pggan_completion/`: config, networks, trainer); importing this
package imports (and so registers) every module and subpackage in it.

A new method is a new file (or package) here that calls `tf_faceedit.registry.register(...)` at import time;
nothing else needs to list it.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
