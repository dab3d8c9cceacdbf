"""Find watched chemicals and equipment in goods lines: by CAS, by HS code and by name.

One immutable :class:`Watchlist` serves both the live path (:meth:`Watchlist.match_line`, one
goods line) and the bulk path (:meth:`Watchlist.match_goods`, a canonical goods table); the bulk
path calls the same per-line code, so both give identical hits.

Disguised writings
  Every input is read in the project's canonical form (:mod:`features.canonical`), so writings
  that differ only in script, invisible characters, dashes or spacing give the same hits: the
  HS code through ``canonical_hs`` (``2933.37``, ``２９３３ ３７``), declared CAS numbers through
  ``read_cas`` (``039742-60-4``, ``39742604``, Arabic-Indic digits) and descriptions through
  ``canonical_name`` (Cyrillic and Greek look-alike letters, zero-width characters, soft
  hyphens). ``matched_text`` is cut from that canonical text. A declared CAS number that is not
  a valid CAS number never hits; it is reported in :attr:`LineMatch.invalid_cas`.

Names in descriptions
  Every name variant is found in one Aho-Corasick pass over the description's normalised
  tokens, as whole tokens only; the longer name wins an overlap, a span inside a *not-name*
  counts for nothing, a watched word split by spaces or hyphens is joined back, and a watched
  name that is the parent of a substituted derivative is not a hit
  (:mod:`features.watchlist.names`). A misspelled watched word is corrected first, unless the
  correction would name a different substance (:mod:`features.watchlist.spelling`).

Evidence strength
  Every hit carries ``similarity`` (how closely the text matches the name) and ``strength``
  (how much the hit identifies the item: a CAS is near-certain, a broad HS line like 2933.39 is
  weak, an abbreviation is weaker than a full name, and a name in its benign context such as
  "aniline dye" on a textile line is weak: :mod:`features.watchlist.evidence`). Hits at or
  above :data:`EVIDENCE_THRESHOLD` are identifications; weaker ones are context for the model.

Mismatches
  A line whose parts disagree (a watched CAS under another HS chapter, a specific HS code on a
  description that does not name its item...) is reported apart from its hits
  (:mod:`features.watchlist.mismatches`).

Repeated descriptions, HS codes and whole lines are cached: manifests repeat them heavily.
What is reported, per line and in bulk, is defined in :mod:`features.watchlist.results`; CAS
numbers and HS codes are looked up in :mod:`features.watchlist.codes`; what the evidence needs
of each entry is :mod:`features.watchlist.items`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from features.canonical import canonical_name
from features.errors import DataError
from features.watchlist.cache import BoundedCache
from features.watchlist.codes import CodeIndex
from features.watchlist.evidence import Scan, line_match
from features.watchlist.items import Item, compile_item
from features.watchlist.mismatches import Mismatch, MismatchKind
from features.watchlist.names import NameIndex
from features.watchlist.results import (
    EVIDENCE_THRESHOLD,
    HITS_SCHEMA,
    INVALID_CAS_SCHEMA,
    MISMATCHES_SCHEMA,
    GoodsMatches,
    GoodsRows,
    Hit,
    LineMatch,
)
from features.watchlist.schema import Entry, WatchlistSpec

# The records live in features.watchlist.results and .mismatches; still importable from here.
__all__ = [
    "EVIDENCE_THRESHOLD",
    "HITS_SCHEMA",
    "INVALID_CAS_SCHEMA",
    "MISMATCHES_SCHEMA",
    "GoodsMatches",
    "Hit",
    "LineMatch",
    "Mismatch",
    "MismatchKind",
    "Watchlist",
]

_GOODS_COLUMNS = ("shipment_id", "line_no", "hs_code", "description", "cas_numbers")
_LineKey = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class Watchlist:
    """A compiled, immutable watchlist. Build it with :meth:`from_spec` or ``load_watchlist``."""

    spec: WatchlistSpec
    _items: tuple[Item, ...] = field(repr=False)
    _codes: CodeIndex = field(repr=False)
    _names: NameIndex = field(repr=False)
    _entries: dict[str, Entry] = field(repr=False)
    _scan_cache: BoundedCache[str, Scan] = field(default_factory=BoundedCache, repr=False)
    _line_cache: BoundedCache[_LineKey, LineMatch] = field(default_factory=BoundedCache, repr=False)

    @classmethod
    def from_spec(cls, spec: WatchlistSpec) -> Watchlist:
        """Compile a validated spec: name automaton, CAS index, HS index, fuzzy vocabulary."""
        return cls(
            spec=spec,
            _items=tuple(compile_item(entry) for entry in spec.entries),
            _codes=CodeIndex(spec.entries),
            _names=NameIndex(spec.entries),
            _entries={entry.id: entry for entry in spec.entries},
        )

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def entry_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self._items)

    def entry(self, entry_id: str) -> Entry:
        """The full data-file entry for ``entry_id`` (lists, dates, sources)."""
        return self._entries[entry_id]

    @property
    def route_families(self) -> dict[str, str]:
        """Entry id -> its synthesis route family."""
        return {entry_id: entry.route_family for entry_id, entry in self._entries.items()}

    def match_line(
        self, hs_code: str, description: str, cas_numbers: Sequence[str] = ()
    ) -> LineMatch:
        """Match one goods line: its HS code, free-text description and declared CAS numbers.

        Any writing of the three that is equivalent in canonical form gives the same hits (see
        "Disguised writings" in the module docstring); ``matched_text`` is cut from the canonical
        text.
        """
        key = (hs_code, description, tuple(cas_numbers))
        cached = self._line_cache.get(key)
        if cached is None:
            cached = self._match(hs_code or "", description or "", key[2])
            self._line_cache.put(key, cached)
        return cached

    def match_goods(self, goods: pl.DataFrame, *, min_strength: float = 0.0) -> pl.DataFrame:
        """One row per hit in a canonical goods table (see ``HITS_SCHEMA``)."""
        return self.match_goods_full(goods, min_strength=min_strength).hits

    def goods_mismatches(self, goods: pl.DataFrame) -> pl.DataFrame:
        """One row per mismatch signal in a canonical goods table (see ``MISMATCHES_SCHEMA``)."""
        return self.match_goods_full(goods).mismatches

    def match_goods_full(self, goods: pl.DataFrame, *, min_strength: float = 0.0) -> GoodsMatches:
        """Hits, mismatches and invalid declared CAS numbers of every line of a goods table."""
        missing = [c for c in _GOODS_COLUMNS if c not in goods.columns]
        if missing:
            raise DataError(f"goods table lacks columns {missing} needed for watchlist matching")
        rows = GoodsRows()
        add_hit, add_mismatch = rows.hits.add, rows.mismatches.add
        add_invalid = rows.invalid_cas.add
        cache = self._line_cache
        empty: tuple[str, ...] = ()
        for shipment_id, line_no, hs, desc, cas in zip(
            *(goods.get_column(c).to_list() for c in _GOODS_COLUMNS), strict=True
        ):
            key = (hs, desc, tuple(cas) if cas else empty)
            found = cache.get(key)
            if found is None:
                found = self._match(hs or "", desc or "", key[2])
                cache.put(key, found)
            if not found.hits and not found.mismatches and not found.invalid_cas:
                continue
            for hit in found.hits:
                if hit.strength >= min_strength:
                    add_hit(shipment_id, line_no, hit)
            for mismatch in found.mismatches:
                add_mismatch(shipment_id, line_no, mismatch)
            for number in found.invalid_cas:
                add_invalid(shipment_id, line_no, number)
        return rows.tables()

    def _match(self, hs_code: str, description: str, cas_numbers: tuple[str, ...]) -> LineMatch:
        return line_match(self._items, self._codes, self._scan(description), hs_code, cas_numbers)

    def _scan(self, description: str) -> Scan:
        """What ``description`` says on its own: its CAS numbers and names (cached)."""
        cached = self._scan_cache.get(description)
        if cached is None:
            canon = canonical_name(description)
            names, tokens = self._names.find(canon)
            cached = Scan(canon, names, self._codes.cas_in_text(canon), tokens)
            self._scan_cache.put(description, cached)
        return cached
