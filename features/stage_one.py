"""Stage 1 of the features: what a shipment says about itself, for a whole batch at once.

:func:`stage_one` reads :class:`~features.declarations.Declarations` and gives every shipment its
per-shipment features (port, mode, countries, goods aggregates, watchlist evidence) and its
entity keys (:class:`~features.history.Keyed`), which the history features (stage 2) look up.

Sums over a shipment's lines are taken in line order by one numpy reduction over the flat lines,
so a shipment's features are bit-identical whether it is computed alone or among a million
others.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from features.declarations import Array, Declarations
from features.history import OUTCOME_KEYS, US_PER_DAY, Keyed
from features.vocab import COUNTRY_CODES, MODE_CODES, PORT_CODES
from features.watchlist import EVIDENCE_THRESHOLD, Hit, LineMatch, Watchlist
from features.watchlist.match_types import MATCH_TYPE_INFO

_CHEMICAL_CHAPTERS = frozenset({28, 29, 38})
# The features counting lines with a hit of some match type, each once, sorted.
_KINDS = tuple(sorted({info.feature for info in MATCH_TYPE_INFO.values()}))
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "watchlist_max_strength",
    "watchlist_strength_sum",
    "watchlist_identified_lines",
    "watchlist_route_families",
    *_KINDS,
    "watchlist_mismatches",
)
STAGE_ONE_COLUMNS: tuple[str, ...] = (
    "port_code",
    "mode_code",
    "origin_code",
    "export_code",
    "export_differs",
    "transshipment_count",
    "goods_line_count",
    "principal_hs_chapter",
    "principal_hs_heading",
    "hs_chapter_count",
    "chemical_line_share",
    "cas_line_count",
    "total_weight_kg",
    "total_value_usd",
    "value_per_kg",
    "consignee_is_foreign",
    "consignee_has_tax_id",
    "shipper_rfc_days_since_founding",
    "consignee_rfc_days_since_founding",
    *EVIDENCE_COLUMNS,
    "invalid_cas_lines",
)


@dataclass(frozen=True)
class Basics:
    """Stage 1 of a batch: per-shipment features (float64, NaN for null) and entity keys."""

    columns: dict[str, Array]
    keyed: Keyed
    port_of_entry: list[str | None]

    def __len__(self) -> int:
        return len(self.keyed)


def stage_one(d: Declarations, watchlist: Watchlist) -> Basics:
    """Stage 1 for every shipment of ``d``, in its order."""
    goods = _goods_aggregates(d)
    evidence, families, items = _evidence_columns(d, watchlist)
    columns = {
        "port_code": _code(d.port_of_entry, PORT_CODES),
        "mode_code": _code(d.mode, MODE_CODES),
        "origin_code": _code(d.origin_country, COUNTRY_CODES),
        "export_code": _code(d.export_country, COUNTRY_CODES),
        "export_differs": _differs(d.origin_country, d.export_country),
        "transshipment_count": d.transshipment_count,
        **goods,
        "consignee_is_foreign": np.array(
            [math.nan if c is None else float(c != "MX") for c in d.consignee_country]
        ),
        "consignee_has_tax_id": np.array(
            [math.nan if t is None else float(len(t) > 0) for t in d.consignee_tax_id]
        ),
        "shipper_rfc_days_since_founding": _rfc_age(d.shipper_tax_id, d.declared_at),
        "consignee_rfc_days_since_founding": _rfc_age(d.consignee_tax_id, d.declared_at),
        **evidence,
    }
    headings = columns["principal_hs_heading"].tolist()
    keys = {
        "shipper": d.shipper_id,
        "consignee": d.consignee_id,
        "broker": d.broker_id,
        "route": [
            None if o is None or p is None else _route(o, p)
            for o, p in zip(d.origin_country, d.port_of_entry, strict=True)
        ],
        "heading": ["" if math.isnan(h) else _heading(h) for h in headings],
        "item": items,
    }
    keyed = Keyed(
        shipment_id=d.shipment_id,
        declared_at=d.declared_at,
        keys={e: keys[e] for e in OUTCOME_KEYS},  # type: ignore[misc]
        families=families,
    )
    return Basics({c: columns[c] for c in STAGE_ONE_COLUMNS}, keyed, d.port_of_entry)


# --------------------------------------------------------------------------- per shipment


# A Mexican RFC: 3 letters (a company) or 4 (a person), the founding or birth date YYMMDD, and
# a 3-character homoclave.
_RFC = re.compile(r"^[A-ZÑ&]{3,4}(\d{2})(\d{2})(\d{2})[A-Z0-9]{3}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=65_536)
def _rfc_date(tax_id: str) -> tuple[int, int, int] | None:
    """(two-digit year, month, day) an RFC encodes, or None when ``tax_id`` is not one."""
    found = _RFC.match(tax_id.upper())
    if found is None:
        return None
    yy, month, day = (int(g) for g in found.groups())
    return (yy, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None


def _rfc_age(tax_ids: Sequence[str | None], declared_at: Array) -> Array:
    """Days from the date a Mexican RFC encodes (a company's founding) to the declaration's
    day (UTC); NaN when the tax id is not an RFC. The two-digit year is the latest one not
    after the declaration's year."""
    out = np.full(len(tax_ids), math.nan)
    encoded = [_rfc_date(tax_id) if tax_id else None for tax_id in tax_ids]
    rows = [i for i, e in enumerate(encoded) if e is not None]
    if not rows:
        return out
    days = declared_at[rows] // US_PER_DAY  # days since the epoch of each declared day
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    for i, day, declared_year in zip(rows, days.tolist(), years.tolist(), strict=True):
        yy, month, day_of_month = encoded[i]  # type: ignore[misc]
        year = 2000 + yy if 2000 + yy <= declared_year else 1900 + yy
        founded = _epoch_day(year, month, day_of_month)
        if founded is not None:  # None: 31 April, 29 February of a common year
            out[i] = float(day - founded)
    return out


_EPOCH_ORDINAL = _EPOCH.date().toordinal()


@functools.lru_cache(maxsize=65_536)
def _epoch_day(year: int, month: int, day: int) -> int | None:
    """Days from the epoch to a date, None when there is no such date."""
    try:
        return date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def _code(values: Sequence[str | None], table: Mapping[str, int]) -> Array:
    """Codes of ``values`` in a frozen vocabulary; unknown or null values are NaN."""
    nan = math.nan
    return np.array([table.get(v, nan) if v is not None else nan for v in values], np.float64)


def _differs(left: Sequence[str | None], right: Sequence[str | None]) -> Array:
    return np.array(
        [
            math.nan if a is None or b is None else float(a != b)
            for a, b in zip(left, right, strict=True)
        ],
        dtype=np.float64,
    )


@functools.lru_cache(maxsize=65_536)
def _route(origin: str, port: str) -> str:
    """The route key (origin > port), one object per route."""
    return f"{origin}>{port}"


@functools.lru_cache(maxsize=65_536)
def _heading(heading: float) -> str:
    """The HS heading key, one object per heading."""
    return str(int(heading))


# --------------------------------------------------------------------------- over goods lines


def _hs_int(code: str | None, digits: int) -> float:
    """The number formed by the first ``digits`` characters of an HS code, NaN if they are not
    all ASCII digits (canonical codes always are)."""
    if code is None:
        return math.nan
    head = code[:digits]
    return float(int(head)) if head.isascii() and head.isdigit() else math.nan


def _hs_ints(codes: Sequence[str | None], digits: int) -> Array:
    """:func:`_hs_int` of every code, each distinct code read once."""
    known = {code: _hs_int(code, digits) for code in set(codes)}
    return np.array([known[code] for code in codes], dtype=np.float64)


def _goods_aggregates(d: Declarations) -> dict[str, Array]:
    """Per-shipment aggregates of the goods lines; NaN for a shipment without lines."""
    n = len(d)
    starts = d.line_start
    counts = np.diff(starts)
    has = counts > 0
    firsts = starts[:-1][has]
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    chapter = _hs_ints(d.hs_code, 2)
    heading = _hs_ints(d.hs_code, 4)

    def per_shipment(values: Array) -> Array:
        out = np.full(n, np.nan)
        out[has] = values
        return out

    def line_sum(values: Array) -> Array:  # null lines count 0, as a polars sum skips them
        return per_shipment(np.add.reduceat(np.nan_to_num(values, nan=0.0), firsts))

    # The principal line: the highest declared value, the first one on ties.
    value = np.where(np.isnan(d.declared_value_usd), -np.inf, d.declared_value_usd)
    by_value = np.lexsort((np.arange(len(owner)), -value, owner))
    principal = by_value[firsts]
    # Distinct chapters per shipment (an unreadable chapter is one value of its own).
    chapter_key = np.where(np.isnan(chapter), 100, chapter).astype(np.int64)  # chapters < 100
    pairs = np.unique(owner * 128 + chapter_key)
    distinct = np.bincount(pairs // 128, minlength=n).astype(np.float64)
    readable = ~np.isnan(chapter)
    chemical = np.isin(chapter, sorted(_CHEMICAL_CHAPTERS)).astype(np.float64)
    read_lines: Array = np.zeros(0)
    chemical_lines: Array = np.zeros(0)
    if len(firsts):
        read_lines = np.add.reduceat(readable.astype(np.float64), firsts)
        chemical_lines = np.add.reduceat(chemical * readable, firsts)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(read_lines > 0, chemical_lines / read_lines, np.nan)
    total_weight = line_sum(d.gross_weight_kg)
    total_value = line_sum(d.declared_value_usd)
    return {
        "goods_line_count": per_shipment(counts[has].astype(np.float64)),
        "principal_hs_chapter": per_shipment(chapter[principal]),
        "principal_hs_heading": per_shipment(heading[principal]),
        "hs_chapter_count": per_shipment(distinct[has]),
        "chemical_line_share": per_shipment(share),
        "cas_line_count": line_sum((d.cas_count > 0).astype(np.float64)),
        "total_weight_kg": total_weight,
        "total_value_usd": total_value,
        "value_per_kg": total_value / np.maximum(total_weight, 0.001),
    }


# --------------------------------------------------------------------------- watchlist evidence


def _evidence(
    lines: Sequence[LineMatch], families: dict[str, str]
) -> tuple[list[float], tuple[str, ...], str]:
    """One shipment's watchlist evidence (:data:`EVIDENCE_COLUMNS` in order, then
    ``invalid_cas_lines``), its identified route families, sorted, and its identified item
    (:func:`_item`)."""
    strengths = sorted(max(h.strength for h in line.hits) for line in lines if line.hits)
    hits = [h for line in lines for h in line.hits if h.strength >= EVIDENCE_THRESHOLD]
    identified = {families.get(h.entry_id, "") for h in hits}
    kinds = dict.fromkeys(_KINDS, 0.0)
    for line in lines:
        for kind in {MATCH_TYPE_INFO[h.match_type].feature for h in line.hits}:
            kinds[kind] += 1.0
    values = [
        max(strengths, default=0.0),
        float(sum(strengths)),
        float(sum(1 for s in strengths if s >= EVIDENCE_THRESHOLD)),
        float(len(identified)),
        *kinds.values(),
        float(sum(len(line.mismatches) for line in lines)),
        float(sum(1 for line in lines if line.invalid_cas)),
    ]
    return values, tuple(sorted(f for f in identified if f)), _item(hits)


def _item(identifications: Sequence[Hit]) -> str:
    """The watchlist entry a shipment's strongest identification names (on a tie, the first
    entry id in sorted order): the key of its item history; "" when nothing is identified."""
    if not identifications:
        return ""
    strongest = max(h.strength for h in identifications)
    return min(h.entry_id for h in identifications if h.strength == strongest)


def _evidence_columns(
    d: Declarations, watchlist: Watchlist
) -> tuple[dict[str, Array], list[tuple[str, ...]], list[str]]:
    n = len(d)
    names = [*EVIDENCE_COLUMNS, "invalid_cas_lines"]
    out = np.zeros((len(names), n))
    counts = np.diff(d.line_start)
    out[-1][counts == 0] = np.nan  # like the goods aggregates: null without goods lines
    families: list[tuple[str, ...]] = [()] * n
    items = [""] * n
    route = watchlist.route_families
    # Only shipments with a line the watchlist said anything about: most have none.
    flagged = [j for j, m in enumerate(d.matches) if m.hits or m.mismatches or m.invalid_cas]
    owners = np.unique(np.searchsorted(d.line_start, flagged, side="right") - 1)
    for row in owners.tolist():
        values, families[row], items[row] = _evidence(d.lines_of(row), route)
        out[:, row] = values
    return dict(zip(names, out, strict=True)), families, items
