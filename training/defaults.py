"""The defaults of the analysts' commands, in one place.

Where the core settings name the same thing, the default is that setting's field default in
:class:`scoring.settings.CoreSettings` (the declared default: ``CENTINELA_*`` variables do not
move it), so ``centinela train``, ``evaluate``, ``score``, ``models``, ``drift`` and ``ledger``
use the registry and the ledger a server started without settings uses, unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from scoring.settings import CoreSettings


def _setting_default(name: str) -> Any:
    """The default of setting ``name``, as the field declares it."""
    return CoreSettings.model_fields[name].get_default(call_default_factory=True)


DATA_DIR: Final[Path] = _setting_default("data_dir")
"""Historical canonical tables (``models compare --data``): the setting ``data_dir``."""

REGISTRY_DIR: Final[Path] = _setting_default("registry_dir")
"""Model registry directory (``--registry``): the setting ``registry_dir``."""

LEDGER_PATH: Final[Path] = _setting_default("ledger_path")
"""Decision ledger SQLite file (``ledger --db``, ``drift --ledger``): the setting
``ledger_path``."""

DRIFT_MIN_DECISIONS: Final[int] = _setting_default("drift_min_decisions")
"""Decisions a port needs for its PSI to count (``drift --min-decisions``): the setting
``drift_min_decisions``."""
