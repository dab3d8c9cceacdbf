"""The watchlist's one cache shape: a dict that empties itself when full.

Manifests repeat descriptions, HS codes, tokens and whole lines heavily, and reuse recent ones,
so a cache that forgets everything at once when it reaches its limit costs nothing per hit
(a plain ``dict.get``) and keeps memory bounded without bookkeeping.
"""

from __future__ import annotations

from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

DEFAULT_LIMIT = 100_000


class BoundedCache(dict[_K, _V]):
    """A dict that empties itself when full: cheap, and manifests reuse recent keys. Read it
    with ``get``; write it with :meth:`put`."""

    __slots__ = ("limit",)

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: _K, value: _V) -> None:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
