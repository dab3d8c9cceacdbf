"""What the watchlist matcher reports: per-line records, and the bulk tables made of them.

:meth:`~features.watchlist.matcher.Watchlist.match_line` answers with a :class:`LineMatch`;
:meth:`~features.watchlist.matcher.Watchlist.match_goods_full` with a :class:`GoodsMatches`,
one table row per hit, per mismatch and per invalid declared CAS number. The bulk tables'
columns after ``shipment_id`` and ``line_no`` are the fields of the line records, by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import polars as pl

from features.canonical import read_cas
from features.watchlist.match_types import MatchType
from features.watchlist.mismatches import Mismatch

EVIDENCE_THRESHOLD = 0.5
"""Hits with at least this strength identify the item; weaker hits are context only."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence that a goods line involves a watched item.

    ``matched_text`` is the span as written in the input, in canonical form (the canonical CAS
    number, the HS code as written less invisible characters, or the words of the description
    with look-alike letters folded); ``similarity`` is 1.0 for exact matches; ``strength`` is
    the evidence weight in [0, 1] described in :mod:`features.watchlist.matcher`.
    """

    entry_id: str
    name: str
    match_type: MatchType
    matched_text: str
    similarity: float
    strength: float


@dataclass(frozen=True, slots=True)
class LineMatch:
    """Everything the watchlist found on one goods line, strongest hits first.

    ``invalid_cas`` holds the declared CAS numbers (canonical text, in declared order, without
    repeats) that are not valid CAS numbers: the check digit fails or the text is not shaped
    like a CAS number. They never produce a hit; a broken identifier on a chemical line is a
    signal of its own. ``read_cas`` on one of them gives the reason.
    """

    hits: tuple[Hit, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    invalid_cas: tuple[str, ...] = ()

    def identified(self, threshold: float = EVIDENCE_THRESHOLD) -> frozenset[str]:
        """Entry ids with at least one hit of ``threshold`` strength or more."""
        return frozenset(h.entry_id for h in self.hits if h.strength >= threshold)


HITS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "entry_id": pl.String(),
    "name": pl.String(),
    "match_type": pl.String(),
    "matched_text": pl.String(),
    "similarity": pl.Float64(),
    "strength": pl.Float64(),
}

MISMATCHES_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "entry_id": pl.String(),
    "kind": pl.String(),
    "detail": pl.String(),
}

INVALID_CAS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "cas": pl.String(),
    "status": pl.String(),
}
"""One row per declared CAS number that is not valid: its canonical text and ``read_cas``
status (``check_digit``: shaped like a CAS but the check digit fails; ``shape``: not a CAS)."""


def _empty_invalid_cas() -> pl.DataFrame:
    return pl.DataFrame(schema=INVALID_CAS_SCHEMA)


@dataclass(frozen=True, slots=True)
class GoodsMatches:
    """Bulk results: one row per hit, per mismatch and per invalid declared CAS number, keyed by
    shipment and line (``invalid_cas``: see ``INVALID_CAS_SCHEMA``)."""

    hits: pl.DataFrame
    mismatches: pl.DataFrame
    invalid_cas: pl.DataFrame = field(default_factory=_empty_invalid_cas)


class LineRows:
    """One bulk table's rows as they are found: each row's line (shipment id and line number)
    and the record that fills its other columns, read out column by column when the table is
    built (:meth:`frame`)."""

    __slots__ = ("line_nos", "records", "shipment_ids")

    def __init__(self) -> None:
        self.shipment_ids: list[str] = []
        self.line_nos: list[int] = []
        self.records: list[Any] = []

    def add(self, shipment_id: str, line_no: int, record: Any) -> None:
        self.shipment_ids.append(shipment_id)
        self.line_nos.append(line_no)
        self.records.append(record)

    def frame(
        self, schema: dict[str, pl.DataType], values: Mapping[str, Callable[[Any], Any]]
    ) -> pl.DataFrame:
        """The table: ``schema``'s line columns, then each other column's ``values`` of the
        records."""
        columns: dict[str, list[Any]] = {"shipment_id": self.shipment_ids, "line_no": self.line_nos}
        for name, value in values.items():
            columns[name] = list(map(value, self.records))
        return pl.DataFrame(columns, schema=schema)


# How each bulk table's columns after the line's are read from its records: a hit's and a
# mismatch's fields are named as their columns; an invalid CAS number is its own text.
_LINE_COLUMNS = ("shipment_id", "line_no")
_HIT_VALUES = {c: attrgetter(c) for c in HITS_SCHEMA if c not in _LINE_COLUMNS}
_MISMATCH_VALUES = {c: attrgetter(c) for c in MISMATCHES_SCHEMA if c not in _LINE_COLUMNS}
_INVALID_CAS_VALUES: Mapping[str, Callable[[str], str]] = {
    "cas": str,
    "status": lambda number: read_cas(number).status,
}


class GoodsRows:
    """The rows of the three bulk tables, gathered line by line: hits (:class:`Hit`),
    mismatches (:class:`Mismatch`) and invalid declared CAS numbers (their canonical text)."""

    __slots__ = ("hits", "invalid_cas", "mismatches")

    def __init__(self) -> None:
        self.hits = LineRows()
        self.mismatches = LineRows()
        self.invalid_cas = LineRows()

    def tables(self) -> GoodsMatches:
        return GoodsMatches(
            hits=self.hits.frame(HITS_SCHEMA, _HIT_VALUES),
            mismatches=self.mismatches.frame(MISMATCHES_SCHEMA, _MISMATCH_VALUES),
            invalid_cas=self.invalid_cas.frame(INVALID_CAS_SCHEMA, _INVALID_CAS_VALUES),
        )
