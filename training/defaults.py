"""The defaults of the analysts' commands, in one place.

Where the server's settings name the same thing, the default is that setting's own field default
(:class:`scoring.settings.Settings`; never the environment, which only ``--config``-reading
commands consult), so ``centinela train``, ``score``, ``drift`` and ``ledger`` use the registry
and the ledger ``centinela serve`` uses unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from scoring.settings import Settings


def _setting_default(name: str) -> Any:
    """The default of setting ``name``, as the field declares it."""
    return Settings.model_fields[name].get_default(call_default_factory=True)


REGISTRY_DIR: Final[Path] = _setting_default("registry_dir")
"""Model registry directory (``--registry``): the setting ``registry_dir``."""

LEDGER_PATH: Final[Path] = _setting_default("ledger_path")
"""Decision ledger SQLite file (``ledger --db``, ``drift --ledger``): the setting
``ledger_path``."""

DRIFT_MIN_DECISIONS: Final[int] = _setting_default("drift_min_decisions")
"""Decisions a port needs for its PSI to count (``drift --min-decisions``): the setting
``drift_min_decisions``."""
