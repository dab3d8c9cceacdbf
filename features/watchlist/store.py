"""Loading the watchlist and swapping it while the service runs.

Watchlists reload independently of the model: :class:`WatchlistStore` builds the new
:class:`~features.watchlist.matcher.Watchlist` completely before it replaces the current one, so
readers always see either the old or the new list, and a file that fails validation leaves the
old one in place.
"""

from __future__ import annotations

import threading
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


class WatchlistStore:
    """Holds the current watchlist; :meth:`reload` replaces it atomically or not at all."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._current = load_watchlist(path)

    @property
    def current(self) -> Watchlist:
        return self._current

    @property
    def path(self) -> Path | None:
        """The file the current watchlist came from; ``None`` for the packaged one."""
        return self._path

    def reload(self, path: Path | None = None) -> Watchlist:
        """Load ``path`` (default: the file last loaded) and make it current.

        On any error the exception propagates and the previous watchlist stays current.
        """
        with self._lock:
            target = path if path is not None else self._path
            fresh = load_watchlist(target)
            self._current = fresh
            self._path = target
            return fresh
