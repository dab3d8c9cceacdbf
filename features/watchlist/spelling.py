"""Misspelled watched words, corrected before the name automaton runs.

A token that is neither a watched-name token nor a protected ordinary word
(:mod:`features.watchlist.lexicon`, and the words of names and benign contexts) is compared,
with rapidfuzz, against the watched tokens that share its first letter (ph = f) and have a
similar length; within a small edit distance it is replaced. Corrections that change a chemical
suffix class (-ol vs -ane) or only add or drop a leading part (dimethylformamide vs
methylformamide, ethylamine vs methylamine) are refused: those are different substances, not
typos.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from features.watchlist.cache import BoundedCache

MIN_FUZZY_LEN = 5
"""Shorter tokens are never corrected, and shorter watched words never corrected to."""
_MIN_FUZZY_SIMILARITY = 0.8
_SUFFIX_CLASSES: tuple[tuple[str, str], ...] = (
    ("nitrile", "nitrile"),
    ("nitrilo", "nitrile"),
    ("amide", "amide"),
    ("amida", "amide"),
    ("amine", "amine"),
    ("amina", "amine"),
    ("ol", "ol"),
    ("one", "one"),
    ("ona", "one"),
    ("ine", "ine"),
    ("ina", "ine"),
    ("ane", "ane"),
    ("ano", "ane"),
    ("ene", "ene"),
    ("eno", "ene"),
    ("ide", "ide"),
    ("uro", "ide"),
    ("ate", "ate"),
    ("ato", "ate"),
    ("ite", "ite"),
    ("ito", "ite"),
    ("yl", "yl"),
    ("ilo", "yl"),
    ("ic", "ic"),
    ("ico", "ic"),
    ("al", "al"),
)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _suffix_class(token: str) -> str | None:
    for suffix, cls in _SUFFIX_CLASSES:
        if token.endswith(suffix):
            return cls
    return None


def _first_key(token: str) -> str:
    return "f" if token.startswith("ph") else token[0]


def _max_edits(length: int) -> int:
    if length < 8:
        return 1
    if length < 12:
        return 2
    return 3


class Speller:
    """Corrects tokens to the watched words they misspell; immutable but for its cache."""

    __slots__ = ("_blocks", "_cache", "_protected", "_vocabulary")

    def __init__(self, vocabulary: Iterable[str], protected: Iterable[str]) -> None:
        """``vocabulary``: the watched words tokens are corrected to (at least
        :data:`MIN_FUZZY_LEN` letters); ``protected``: words never corrected."""
        words = frozenset(vocabulary)
        blocks: dict[tuple[str, int], list[str]] = {}
        for word in sorted(words):
            blocks.setdefault((_first_key(word), len(word)), []).append(word)
        self._vocabulary = words
        self._protected = frozenset(protected) - words
        self._blocks = {k: tuple(v) for k, v in blocks.items()}
        self._cache: BoundedCache[str, tuple[str, int]] = BoundedCache()

    def fix(self, token: str) -> tuple[str, int]:
        """The watched token ``token`` is a misspelling of, with the edit distance; else itself."""
        if (
            len(token) < MIN_FUZZY_LEN
            or token in self._vocabulary
            or token in self._protected
            or not token.isalpha()
        ):
            return token, 0
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        result = self._fix_uncached(token)
        self._cache.put(token, result)
        return result

    def _fix_uncached(self, token: str) -> tuple[str, int]:
        limit = _max_edits(len(token))
        key = _first_key(token)
        candidates: list[str] = []
        for length in range(len(token) - limit, len(token) + limit + 1):
            candidates.extend(self._blocks.get((key, length), ()))
        if not candidates:
            return token, 0
        found = process.extract(
            token, candidates, scorer=Levenshtein.distance, score_cutoff=limit, limit=None
        )
        if not found:
            return token, 0
        word, distance = min(
            ((w, int(d)) for w, d, _ in found),
            key=lambda wd: (wd[1], -_common_prefix(token, wd[0]), abs(len(wd[0]) - len(token))),
        )
        if distance > _max_edits(len(word)):
            return token, 0
        if 1.0 - distance / max(len(word), len(token)) < _MIN_FUZZY_SIMILARITY:
            return token, 0
        if word.endswith(token) or token.endswith(word):
            return token, 0
        ours, theirs = _suffix_class(token), _suffix_class(word)
        if ours and theirs and ours != theirs:
            return token, 0
        return word, distance
