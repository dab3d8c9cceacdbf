"""The watchlist's entries as a goods line's evidence reads them.

An entry's index in the watchlist file is how the name and code indexes refer to it; its
:class:`Item` is what a line's hits and mismatches need of it: who it is, the HS chapters it
belongs in (those of its HS codes, or its kind's usual chapters), and its benign context.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.watchlist.schema import Entry
from features.watchlist.text import normalize_name

_DEFAULT_CHAPTERS = {"substance": frozenset({"28", "29", "38"}), "equipment": frozenset({"84"})}


@dataclass(frozen=True, slots=True)
class Item:
    """What a line's evidence needs of one entry: who it is (``id``, ``name``, and ``label``
    for mismatch details), the HS chapters it belongs in, and its benign context."""

    id: str
    name: str
    label: str
    chapters: frozenset[str]
    benign_chapters: frozenset[str]
    benign_words: frozenset[str]


def compile_item(entry: Entry) -> Item:
    chapters = frozenset(hs.code[:2] for hs in entry.hs) or _DEFAULT_CHAPTERS[entry.kind]
    short = entry.abbreviations[0] if entry.abbreviations else None
    label = f"{short} ({entry.name})" if short and short not in entry.name else entry.name
    words = frozenset(t for w in entry.benign_context.words for t in normalize_name(w))
    return Item(
        id=entry.id,
        name=entry.name,
        label=label,
        chapters=chapters,
        benign_chapters=frozenset(entry.benign_context.hs_chapters),
        benign_words=words,
    )
