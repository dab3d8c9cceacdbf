"""LightGBM, imported without its optional scikit-learn and pandas integrations.

Where scikit-learn and pandas are installed (the ``dask`` extra installs both), a plain
``import lightgbm`` imports them too: 1.06 s and 181 MB of peak RSS, against 0.20 s and 52 MB
without them (measured on the 2-core development machine). Centinela trains, reads and scores
boosters through LightGBM's core API on NumPy arrays and uses neither integration, so every
module imports LightGBM from here (``from scoring.lgbm import lgb``): the server's resident
memory, the start of every ``centinela`` command and the child that checks each model file
(:mod:`scoring.bundle_check`) do not pay for them.

``centinela train --dask`` needs ``lightgbm.dask``, which needs both: :func:`full_lightgbm`
imports the package again, whole, for that one use.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

_OPTIONAL = ("sklearn", "pandas")
"""Integrations LightGBM imports when it finds them and Centinela does not use."""


def _lean_import() -> None:
    """Import ``lightgbm`` with the optional integrations that are not already imported made
    unimportable for the length of the import (``None`` in :data:`sys.modules`)."""
    blocked = [name for name in _OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        importlib.import_module("lightgbm")
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


_lean_import()
import lightgbm as lgb  # noqa: E402  (the module _lean_import put in sys.modules)


def full_lightgbm() -> ModuleType:
    """The ``lightgbm`` package imported again with every integration it finds (what
    ``lightgbm.dask`` needs); modules that imported :data:`lgb` keep the lean one. Boosters
    of either are the same model, read and written through the same library."""
    if getattr(sys.modules.get("lightgbm.compat"), "SKLEARN_INSTALLED", False):
        return sys.modules["lightgbm"]
    for name in [n for n in sys.modules if n == "lightgbm" or n.startswith("lightgbm.")]:
        del sys.modules[name]
    return importlib.import_module("lightgbm")


__all__ = ["full_lightgbm", "lgb"]
