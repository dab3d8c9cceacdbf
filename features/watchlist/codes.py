"""Watched identifiers: CAS numbers (declared or written in a description) and HS codes.

A CAS number identifies one entry; it is looked up in its canonical text
(:func:`features.canonical.read_cas`), so every equivalent writing finds it, and a description
is searched for CAS numbers with :func:`features.watchlist.cas.find_cas`. An HS code matches
every entry listed under a prefix of its digits; the longest prefix listed for an entry wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from features.canonical import read_cas
from features.watchlist.cache import BoundedCache
from features.watchlist.cas import find_cas
from features.watchlist.schema import Confidence, Entry, Specificity

HsHit = tuple[int, Specificity, Confidence]
"""An entry index, how specific the HS line is to it, and the listing's confidence."""
CasHit = tuple[int, str, Confidence]
"""An entry index, the canonical CAS number that found it, and the listing's confidence."""


def hs_digits(code: str) -> str:
    """The digits of an HS code (the code in canonical form, less its separators)."""
    return "".join(ch for ch in code if ch.isdigit())


class CodeIndex:
    """The CAS numbers and HS codes of a watchlist's entries; an index is an entry's position.
    Immutable but for its cache of HS look-ups."""

    __slots__ = ("_cas", "_hs", "_hs_cache", "_hs_lengths")

    def __init__(self, entries: Sequence[Entry]) -> None:
        cas: dict[str, tuple[int, Confidence]] = {}
        hs: dict[str, list[HsHit]] = {}
        for index, entry in enumerate(entries):
            for number in entry.cas:
                cas[read_cas(number.number).text] = (index, number.confidence)
            for code in entry.hs:
                hs.setdefault(code.code, []).append((index, code.specificity, code.confidence))
        self._cas = cas
        self._hs = {k: tuple(v) for k, v in hs.items()}
        self._hs_lengths = tuple(sorted({len(k) for k in hs}, reverse=True))
        self._hs_cache: BoundedCache[str, tuple[HsHit, ...]] = BoundedCache()

    def cas(self, number: str) -> tuple[int, Confidence] | None:
        """The entry a canonical CAS number identifies, with the listing's confidence."""
        return self._cas.get(number)

    def cas_in_text(self, canon: str) -> tuple[CasHit, ...]:
        """The watched CAS numbers written in a description in canonical form, in order."""
        found: list[CasHit] = []
        for number, _, _ in find_cas(canon):
            listed = self._cas.get(number)
            if listed is not None:
                found.append((listed[0], number, listed[1]))
        return tuple(found)

    def hs_hits(self, digits: str) -> tuple[HsHit, ...]:
        """The entries listed under a prefix of an HS code's ``digits``, each once, under its
        longest listed prefix."""
        cached = self._hs_cache.get(digits)
        if cached is not None:
            return cached
        best: dict[int, HsHit] = {}
        for length in self._hs_lengths:
            if len(digits) < length:
                continue
            for item, specificity, confidence in self._hs.get(digits[:length], ()):
                best.setdefault(item, (item, specificity, confidence))
        result = tuple(best.values())
        self._hs_cache.put(digits, result)
        return result
