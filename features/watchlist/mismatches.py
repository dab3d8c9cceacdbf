"""When a goods line's parts disagree: the kinds of disagreement, their record, their detection.

A watched CAS number or name under an HS chapter its entry does not belong in, and a watched
CAS number or an HS code specific to an entry on a line whose description does not name it,
are signals of their own (a disguised or mislabelled line), whatever the hits' strength.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from features.watchlist.items import Item

MismatchKind = Literal[
    "cas_under_other_hs",
    "cas_under_benign_description",
    "name_under_other_hs",
    "hs_specific_under_benign_description",
]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A line whose parts disagree: e.g. a watched CAS under an unrelated HS chapter."""

    entry_id: str
    kind: MismatchKind
    """Which parts of the line disagree."""
    detail: str
    """The disagreement in words: the identifier, what the line declares, what was expected."""


def line_mismatches(
    items: tuple[Item, ...],
    hs_code: str,
    chapter: str,
    description: str,
    cas_items: dict[int, str],
    named: set[int],
    specific: set[int],
) -> list[Mismatch]:
    """A line's disagreements: ``cas_items`` (entry -> the CAS that identified it), ``named``
    and ``specific`` (entries its description names, or its HS code is specific to, as
    evidence) against its HS chapter and description."""
    if not cas_items and not named and not specific:
        return []
    shown = description if len(description) <= 60 else description[:57] + "..."
    declared = f"the line is declared under HS {hs_code} (chapter {chapter})"
    unnamed = f"the description ({shown!r}) does not name it"
    out: list[Mismatch] = []
    for item, cas in cas_items.items():
        it = items[item]
        if chapter and chapter not in it.chapters:
            detail = f"CAS {cas} is {it.label}, but {declared}; {it.label} belongs in chapter "
            out.append(Mismatch(it.id, "cas_under_other_hs", detail + _chapters(it)))
        if item not in named:
            detail = f"CAS {cas} is {it.label}, but {unnamed}"
            out.append(Mismatch(it.id, "cas_under_benign_description", detail))
    for item in sorted(named):
        it = items[item]
        if chapter and chapter not in it.chapters:
            detail = f"the description names {it.label}, but {declared}; expected chapter "
            out.append(Mismatch(it.id, "name_under_other_hs", detail + _chapters(it)))
    for item in sorted(specific - named - set(cas_items)):
        it = items[item]
        detail = f"HS {hs_code} is specific to {it.label}, but {unnamed}"
        out.append(Mismatch(it.id, "hs_specific_under_benign_description", detail))
    return out


def _chapters(item: Item) -> str:
    """The HS chapters ``item`` belongs in, as a mismatch detail names them."""
    return "/".join(sorted(item.chapters))
