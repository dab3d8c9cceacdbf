"""Cell values translated to canonical ones: text, value maps, types, defaults and empties.

Cells are first read as canonical text (:func:`as_text`), then a mapping's ``values`` table
translates source codes (:func:`apply_values`), and :func:`convert` turns the text into the
field's canonical type, flagging the cells it cannot convert. :func:`unmapped` and
:func:`fill_empty` give the canonical value of a field with no column or an empty cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import polars as pl
import pycountry

from features.canonical import canonical_code, canonical_text, read_cas
from features.errors import ConfigError, DataError, FieldViolation
from features.records import MODES
from features.tables import UTC_TS
from training.mapping.fields import (
    CODES,
    COUNTRIES,
    LISTS,
    NOT_EMPTY,
    NUMBER_WHEN_UNMAPPED,
    NUMBERS,
    TIMES,
)
from training.mapping.schema import MappingSpec, Scalar

_TRUE_WORDS: Final = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE_WORDS: Final = frozenset({"false", "f", "no", "n", "off", "0"})
_LIST_SPLIT: Final = r"[;,|\s]+"
_ISO_NAIVE: Final = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_ISO_AWARE: Final = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Converted:
    """A field's cells in canonical type; ``bad`` marks cells that had text but no value."""

    values: pl.Series
    bad: pl.Series
    reason: str


def text_of(value: Scalar) -> str:
    """A value written in a mapping file as cell text: ``true``, ``10`` (not ``10.0``), ``CN``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_tokens(value: Scalar) -> list[str]:
    """Normalised forms a configured value matches: booleans match their usual spellings."""
    if isinstance(value, bool):
        return sorted(_TRUE_WORDS if value else _FALSE_WORDS)
    return [text_of(value).strip().lower()]


def cell_tokens(series: pl.Series) -> pl.Series:
    """Cells as comparable text: trimmed, lower-case, ``10.0`` read as ``10``."""
    return (
        series.cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^(-?\d+)\.0+$", "${1}")
    )


def _each_distinct(series: pl.Series, read: Callable[[str], str]) -> pl.Series:
    """``read`` applied to each distinct value once: tables repeat their values heavily."""
    distinct = series.drop_nulls().unique().to_list()
    lookup = {value: read(value) for value in distinct}
    return series.replace_strict(lookup, default=None, return_dtype=pl.String)


def _cas_text(value: str) -> str:
    return read_cas(value).text


def as_text(series: pl.Series) -> pl.Series:
    """Canonical text (:func:`features.canonical.canonical_text`: NFKC, ASCII digits and
    dashes, no invisible characters, trimmed) with empty cells as null."""
    text = _each_distinct(series.cast(pl.String), canonical_text)
    return pl.select(pl.when(text.str.len_chars() > 0).then(text)).to_series().rename(series.name)


def apply_values(text: pl.Series, table: dict[Scalar, Scalar]) -> pl.Series:
    """Source codes replaced by the canonical values of a ``values`` table; others kept."""
    lookup = {
        token: text_of(target) for source, target in table.items() for token in value_tokens(source)
    }
    keys = cell_tokens(text)
    mapped = keys.replace_strict(lookup, default=None, return_dtype=pl.String)
    return pl.select(pl.coalesce(mapped, text)).to_series().rename(text.name)


def _bad(values: pl.Series, text: pl.Series) -> pl.Series:
    """Cells that had text but no converted value."""
    return (text.is_not_null() & values.is_null()).rename("bad")


def convert(field: str, text: pl.Series, spec: MappingSpec) -> Converted:
    """Convert trimmed text cells (nulls already defaulted) of ``field`` to its canonical type."""
    if field in NUMBERS:
        numbers = text.str.replace_all(r"[\s_]", "").cast(pl.Float64, strict=False)
        ok = numbers.is_finite() & (numbers >= 0)
        reason = "not a non-negative number"
        if field == "selection_probability":
            ok = ok & (numbers > 0) & (numbers <= 1)
            reason = "not a probability in (0, 1]"
        values = pl.select(pl.when(ok).then(numbers)).to_series()
        values = values * spec.scale.get(field, 1.0)
        return Converted(values, _bad(values, text), reason)
    if field in COUNTRIES:
        upper = text.str.to_uppercase()
        lookup = {v: _country_code(v) for v in upper.drop_nulls().unique().to_list()}
        values = upper.replace_strict(lookup, default=None, return_dtype=pl.String)
        return Converted(values, _bad(values, text), "not an ISO 3166 country code or name")
    if field == "hs_code":
        values = _hs_codes(text)
        return Converted(values, _bad(values, text), "not an HS code of 6 to 10 digits")
    if field == "mode":
        lower = text.str.to_lowercase()
        values = pl.select(pl.when(lower.is_in(MODES)).then(lower)).to_series()
        reason = f"not one of {', '.join(MODES)} (map source codes under values.mode)"
        return Converted(values, _bad(values, text), reason)
    if field == "random_selection":
        token = cell_tokens(text)
        values = pl.select(
            pl.when(token.is_in(_TRUE_WORDS))
            .then(True)
            .when(token.is_in(_FALSE_WORDS))
            .then(False)
            .otherwise(None)
        ).to_series()
        return Converted(values, _bad(values, text), "not true or false")
    if field in LISTS:
        values = (
            text.str.replace_all(_LIST_SPLIT, " ")
            .str.strip_chars()
            .str.split(" ")
            .list.eval(pl.element().filter(pl.element() != ""))
        )
        read = {"cas_numbers": _cas_text, "transshipment_ports": canonical_code}.get(field)
        if read is not None:
            lookup = {v: read(v) for v in values.explode().drop_nulls().unique().to_list()}
            values = values.list.eval(
                pl.element().replace_strict(lookup, default=None, return_dtype=pl.String)
            )
        values = pl.select(
            pl.when(values.is_null()).then(pl.lit([], dtype=pl.List(pl.String))).otherwise(values)
        ).to_series()
        return Converted(values, pl.Series([False] * len(text)), "")
    if field in TIMES:
        values = _parse_times(text, spec)
        hint = f"format {spec.date_format!r}" if spec.date_format else "ISO 8601"
        return Converted(values, _bad(values, text), f"not a date/time in {hint}")
    values = _each_distinct(text, canonical_code) if field in CODES else text
    return Converted(values, pl.Series([False] * len(text)), "")


def _country_code(value: str) -> str | None:
    if _COUNTRY_CODE.match(value):
        return value
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        return None


def _hs_codes(text: pl.Series) -> pl.Series:
    """Digits-only HS codes. A plain number (``29333``, ``293337.0``) lost its leading zero to a
    spreadsheet or a float column, so it is zero-padded to 6; dotted or spaced notation
    (``2933.37``, ``2933 37 01``) keeps its digits."""
    numeric = text.str.extract(r"^(\d+)(?:\.0+)?$", 1).str.zfill(6)
    dotted = pl.select(
        pl.when(text.str.contains(r"^\d{4}([ .\-]?\d{2}){1,3}$")).then(
            text.str.replace_all(r"[ .\-]", "")
        )
    ).to_series()
    code = pl.select(pl.coalesce(numeric, dotted)).to_series()
    return pl.select(pl.when(code.str.contains(r"^\d{6,10}$")).then(code)).to_series()


def _parse_times(text: pl.Series, spec: MappingSpec) -> pl.Series:
    """UTC timestamps from text; text without an offset is read in ``spec.timezone``."""
    if spec.date_format is not None:
        try:
            parsed = text.str.strptime(pl.Datetime("us"), spec.date_format, strict=False)
        except pl.exceptions.PolarsError as exc:
            raise ConfigError(
                "invalid mapping", [FieldViolation("date_format", f"unusable format: {exc}")]
            ) from None
        return to_utc(parsed, spec.timezone)
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    candidates = [
        to_utc(iso.str.strptime(pl.Datetime("us"), fmt, strict=False), spec.timezone)
        for fmt in (*_ISO_AWARE, *_ISO_NAIVE)
    ]
    return pl.select(pl.coalesce(candidates)).to_series()


def to_utc(values: pl.Series, timezone: str) -> pl.Series:
    """Dates or date/times as UTC timestamps; naive ones are read in ``timezone``."""
    dtype = values.dtype
    if isinstance(dtype, pl.Date):
        values = values.cast(pl.Datetime("us"))
        dtype = values.dtype
    if not isinstance(dtype, pl.Datetime):
        raise DataError(f"cannot read {values.dtype} values as date/times")
    if dtype.time_zone is None:
        values = values.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return values.dt.convert_time_zone("UTC").cast(UTC_TS)


def unmapped(field: str, spec: MappingSpec, n: int, row_numbers: pl.Series) -> pl.Series:
    """A field with no column: its default, or the canonical empty value."""
    if field in spec.defaults:
        text = pl.Series(field, [text_of(spec.defaults[field])] * n, dtype=pl.String)
        return convert(field, text, spec).values
    if field == "shipment_id":
        return ("ROW-" + row_numbers.cast(pl.String).str.zfill(9)).rename(field)
    if field in TIMES:
        return pl.Series(field, [None] * n, dtype=UTC_TS)
    if field in NUMBERS:
        return pl.Series(field, [NUMBER_WHEN_UNMAPPED[field]] * n, dtype=pl.Float64)
    if field == "random_selection":
        return pl.Series(field, [False] * n, dtype=pl.Boolean)
    if field in LISTS:
        return pl.Series(field, [[]] * n, dtype=pl.List(pl.String))
    return pl.Series(field, [""] * n, dtype=pl.String)


def fill_empty(field: str, values: pl.Series) -> pl.Series:
    """Canonical empty values where a mapped cell was empty and had no default.

    Fields in :data:`NOT_EMPTY` stay null: their empty cells are reported as invalid instead.
    Null inspection times become the declared time once all fields are known.
    """
    if field == "selection_probability":
        values = values.fill_null(1.0)
    elif field == "random_selection":
        values = values.fill_null(False)
    elif values.dtype == pl.String and field not in NOT_EMPTY:
        values = values.fill_null("")
    return values.rename(field)
