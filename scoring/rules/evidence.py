"""What rules look at: a shipment, its watchlist evidence and its feature values.

The matcher's results (``Watchlist.match_line``, one per goods line) become
:class:`RuleEvidence` (a hit) and :class:`MismatchEvidence` (a mismatch signal) through
:func:`evidence_from_lines`. Each hit carries what the watchlist says about its entry (name,
lists, kind, route family), so rules compiled against one watchlist version keep working when
the watchlist is reloaded; :class:`RuleContext` gathers it all for one shipment.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from features.errors import DataError
from features.records import Shipment
from features.watchlist import LineMatch, Watchlist
from features.watchlist.match_types import MATCH_TYPE_INFO


@dataclass(frozen=True, slots=True)
class RuleEvidence:
    """One watchlist hit on one goods line, with what the watchlist says about its entry.

    Memberships travel with the evidence so rules keep working when the watchlist is reloaded.
    """

    entry_id: str
    match_type: str
    strength: float
    goods_index: int
    matched_text: str
    entry_name: str = ""
    lists: frozenset[str] = frozenset()
    kind: str = ""
    route_family: str = ""


class MismatchEvidence(NamedTuple):
    """A mismatch signal of the matcher on one goods line."""

    entry_id: str
    kind: str
    goods_index: int


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the watchlist says about one entry, as every hit on it carries it."""

    name: str
    lists: frozenset[str]
    kind: str
    route_family: str


_FACTS: weakref.WeakKeyDictionary[Watchlist, Mapping[str, _Facts]] = weakref.WeakKeyDictionary()


def _facts(watchlist: Watchlist) -> Mapping[str, _Facts]:
    """The facts of every entry by id, computed once per watchlist (and freed with it)."""
    found = _FACTS.get(watchlist)
    if found is None:
        found = {
            e.id: _Facts(e.name, frozenset(m.list for m in e.memberships), e.kind, e.route_family)
            for e in watchlist.spec.entries
        }
        _FACTS[watchlist] = found
    return found


def _evidence(
    facts: Mapping[str, _Facts],
    entry_id: str,
    match_type: str,
    strength: float,
    goods_index: int,
    matched_text: str,
) -> RuleEvidence:
    fact = facts.get(entry_id)
    if fact is None:
        raise DataError(
            f"watchlist hit names entry {entry_id!r}, which the watchlist lacks: "
            "hits and watchlist must come from the same version"
        )
    return RuleEvidence(
        entry_id,
        match_type,
        float(strength),
        goods_index,
        matched_text,
        fact.name,
        fact.lists,
        fact.kind,
        fact.route_family,
    )


def evidence_from_lines(
    lines: Sequence[LineMatch], watchlist: Watchlist
) -> tuple[tuple[RuleEvidence, ...], tuple[MismatchEvidence, ...]]:
    """Evidence from ``Watchlist.match_line`` results, one per goods line in goods order."""
    for line in lines:
        if line.hits or line.mismatches:
            break
    else:
        return (), ()  # most shipments: no line has anything to look up
    facts = _facts(watchlist)
    hits = tuple(
        _evidence(facts, h.entry_id, h.match_type, h.strength, index, h.matched_text)
        for index, line in enumerate(lines)
        for h in line.hits
    )
    mismatches = tuple(
        MismatchEvidence(m.entry_id, m.kind, index)
        for index, line in enumerate(lines)
        for m in line.mismatches
    )
    return hits, mismatches


_EVIDENCE_RANK: Mapping[str, int] = {
    match_type: info.evidence_rank for match_type, info in MATCH_TYPE_INFO.items()
}


def _preference(ev: RuleEvidence) -> int:
    """The hit's rank when a rule cites evidence: the most specific identification first."""
    return _EVIDENCE_RANK.get(ev.match_type, len(_EVIDENCE_RANK))


_NO_FEATURES: Mapping[str, float] = MappingProxyType({})


class RuleContext(NamedTuple):
    """Everything rules may look at for one shipment. ``features`` holds NaN for null values.

    A feature missing from ``features`` counts as null. A tuple, not a frozen dataclass: one is
    built for every shipment scored, and a tuple is built in a third of the time.
    """

    shipment: Shipment
    hits: Sequence[RuleEvidence] = ()
    mismatches: Sequence[MismatchEvidence] = ()
    features: Mapping[str, float] = _NO_FEATURES

    def evidence_at(self, entry_id: str, goods_index: int) -> RuleEvidence | None:
        """The hit behind a mismatch signal: the entry's CAS hit on that line if there is one.

        Only called for a mismatch rule that fires, so a linear scan beats building an index.
        """
        candidates = [
            ev for ev in self.hits if ev.entry_id == entry_id and ev.goods_index == goods_index
        ]
        return min(candidates, key=_preference, default=None)
