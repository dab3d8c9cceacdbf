"""Loading the watchlist: a file, or the one shipped with Centinela.

:func:`load_watchlist` builds the :class:`~features.watchlist.matcher.Watchlist` completely or
raises, so a caller that swaps it in while the service runs keeps the old list when a file fails
validation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from features.watchlist.matcher import Watchlist
from features.watchlist.schema import parse_watchlist_text, read_watchlist_file

PACKAGED_FILE = "watchlist.yaml"


def load_watchlist(path: Path | None = None) -> Watchlist:
    """Load and compile a watchlist file; ``None`` loads the one shipped with Centinela.

    Raises :class:`~features.errors.ConfigError` naming every invalid field.
    """
    if path is None:
        resource = resources.files(__package__).joinpath(PACKAGED_FILE)
        spec = parse_watchlist_text(
            resource.read_text(encoding="utf-8"), f"(packaged) {PACKAGED_FILE}"
        )
    else:
        spec = read_watchlist_file(Path(path))
    return Watchlist.from_spec(spec)
