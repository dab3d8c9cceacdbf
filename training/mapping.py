"""Bring your own data: map an analyst's declaration table onto the canonical tables.

A mapping file (YAML, :class:`MappingSpec`) names the analyst's table (CSV or Parquet) and says
which of its columns holds each canonical field. :func:`apply_mapping` reads the table, converts
every mapped column to the canonical type, and writes ``shipments``, ``goods`` and
``inspections`` (:mod:`features.tables`) so ``train`` and ``evaluate`` run on it unchanged.

Rules that decide what the model sees, all documented in ``docs/mapping.md``:

* Several rows with the same shipment id are one declaration: its shipment fields come from its
  first row, each row becomes a goods line in table order, and it counts as inspected (positive)
  when any of its rows is.
* A cell that cannot be converted marks its row invalid, and the whole declaration of an invalid
  row is dropped, so no shipment enters with goods lines or totals missing. Every drop is
  counted and reported with reasons and row numbers (data rows counted from 1, header excluded).
  When more than ``max_invalid_share`` of the rows are invalid nothing is written: a mapping
  that mangles a large part of the data is more likely wrong than the data.
* Labels are observed outcomes only; no ``truth`` table is written.
* ``extras`` columns go to ``extras.parquet`` (``shipment_id``, ``line_no``, then the columns as
  read) for analysts; they are not model features, because the feature schema is frozen.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pycountry
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from features.canonical import canonical_code, canonical_text, read_cas
from features.errors import ConfigError, DataError, FieldViolation, pydantic_violations
from features.records import MODES
from features.tables import GOODS_SCHEMA, SHIPMENTS_SCHEMA, UTC_TS, conform, table_path
from features.yamlfiles import load_strict

MAPPING_FORMAT_VERSION: Final = 1
"""Part of the cache key: bump it when the conversion rules change so old caches are not reused."""

CACHE_DIR_NAME: Final = ".centinela-mapped"
SUMMARY_FILE: Final = "mapping.json"
EXTRAS_FILE: Final = "extras.parquet"
EXAMPLE_ROWS: Final = 5

Scalar = str | int | float | bool

INSPECTION_FIELDS: Final[tuple[str, ...]] = (
    "inspected_at",
    "reported_at",
    "selection_probability",
    "random_selection",
    "substances",
)
SHIPMENT_FIELDS: Final[tuple[str, ...]] = tuple(SHIPMENTS_SCHEMA)
GOODS_FIELDS: Final[tuple[str, ...]] = tuple(
    f for f in GOODS_SCHEMA if f not in ("shipment_id", "line_no")
)
MAPPABLE_FIELDS: Final[tuple[str, ...]] = (*SHIPMENT_FIELDS, *GOODS_FIELDS, *INSPECTION_FIELDS)
"""Every canonical field a mapping may name under ``columns``, ``values`` or ``defaults``."""

_REQUIRED: Final = frozenset({"declared_at"})
_NO_DEFAULT: Final = frozenset({"shipment_id", "declared_at", "inspected_at", "reported_at"})
_NOT_EMPTY: Final = frozenset(
    {"shipment_id", "declared_at", "hs_code", "quantity", "gross_weight_kg", "declared_value_usd"}
)
_TIMES: Final = frozenset({"declared_at", "inspected_at", "reported_at"})
_NUMBERS: Final = frozenset(
    {"quantity", "gross_weight_kg", "declared_value_usd", "selection_probability"}
)
_COUNTRIES: Final = frozenset(
    {"origin_country", "export_country", "shipper_country", "consignee_country"}
)
_LISTS: Final = frozenset({"transshipment_ports", "cas_numbers", "substances"})
# Ids and codes, read in canonical form (features.canonical.canonical_code: upper case, ASCII
# digits and dashes, look-alike letters folded, invisible characters removed), exactly as live
# scoring reads them, so history from these tables joins the live shipments of the same entity.
_CODES: Final = frozenset(
    {
        "shipment_id",
        "port_of_entry",
        "container_id",
        "conveyance_id",
        "shipper_id",
        "shipper_tax_id",
        "consignee_id",
        "consignee_tax_id",
        "broker_id",
        "transshipment_ports",
    }
)
_NUMBER_WHEN_UNMAPPED: Final[dict[str, float]] = {
    "quantity": 0.0,
    "gross_weight_kg": 0.0,
    "declared_value_usd": 0.0,
    "selection_probability": 1.0,
}
_TRUE_WORDS: Final = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE_WORDS: Final = frozenset({"false", "f", "no", "n", "off", "0"})
_LIST_SPLIT: Final = r"[;,|\s]+"
_ISO_NAIVE: Final = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_ISO_AWARE: Final = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


# --------------------------------------------------------------------------- the mapping file


class LabelSpec(BaseModel):
    """Where the inspection outcome is, and which of its values mean contraband was found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="Source column holding the outcome.")
    positive: list[Scalar] = Field(
        min_length=1, description="Values meaning contraband or fraud was found."
    )
    negative: list[Scalar] | None = Field(
        None,
        description="Values meaning nothing was found. When given, any other non-empty value "
        "makes its row invalid; when absent, every non-empty value not in positive is negative.",
    )
    inspected_column: str | None = Field(
        None,
        description="Source column saying whether the row was inspected. Absent: every row "
        "with a non-empty label was inspected.",
    )
    inspected_values: list[Scalar] = Field(
        default_factory=lambda: list[Scalar]([True]),
        min_length=1,
        description="Values of inspected_column meaning inspected (true matches true/yes/y/1).",
    )


class MappingSpec(BaseModel):
    """One mapping file. Unknown keys are rejected by name, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(
        min_length=1, description="The table, relative to --data DIR or absolute; .csv or .parquet."
    )
    columns: dict[str, str] = Field(description="Canonical field → source column.")
    label: LabelSpec
    date_format: str | None = Field(
        None, description="strptime format of date/time text cells; absent means ISO 8601."
    )
    timezone: str = Field("UTC", description="Zone of date/times that carry no offset.")
    separator: str = Field(",", min_length=1, max_length=1, description="CSV field separator.")
    values: dict[str, dict[Scalar, Scalar]] = Field(
        default_factory=dict, description="Per canonical field, source value → canonical value."
    )
    defaults: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Value of a field that has no column, or of its empty cells.",
    )
    scale: dict[str, float] = Field(
        default_factory=dict,
        description="Multiplier per numeric field, e.g. a currency rate to US dollars.",
    )
    extras: list[str] = Field(
        default_factory=list, description="Source columns copied to extras.parquet."
    )
    max_invalid_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Fail, writing nothing, when more than this share of rows is invalid.",
    )


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    if len(loc) >= 2 and loc[0] == "label":
        return list(LabelSpec.model_fields)
    return list(model.model_fields)


def _describe(e: ErrorDetails) -> str:
    if e["type"] == "extra_forbidden":
        known = ", ".join(_known_keys(MappingSpec, tuple(e["loc"])))
        return f"unknown key (known keys here: {known})"
    if e["type"] == "missing":
        return "required key is missing"
    return str(e["msg"]).removeprefix("Value error, ")


def parse_mapping(data: object, origin: str = "mapping") -> MappingSpec:
    """Validate parsed YAML; raise :class:`ConfigError` naming every bad key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a mapping file must be a YAML mapping of key: value")
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{origin}: invalid mapping", pydantic_violations(exc, _describe)
        ) from None
    problems = _field_problems(spec)
    if problems:
        raise ConfigError(f"{origin}: invalid mapping", problems)
    return spec


def load_mapping(path: Path) -> MappingSpec:
    """Read and validate a mapping file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc.strerror or exc}") from None
    try:
        data = load_strict(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping file {path} is not valid YAML: {exc}") from None
    return parse_mapping(data, str(path))


def _unknown_field(key: str, allowed: Iterable[str]) -> str:
    return f"{key!r} is not a canonical field; one of: {', '.join(allowed)}"


def _field_problems(spec: MappingSpec) -> list[FieldViolation]:
    """What pydantic cannot say: canonical field names, required fields, the defaults' types."""
    out: list[FieldViolation] = []
    for key in spec.columns:
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"columns.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
    out += [
        FieldViolation(f"columns.{f}", "required: the source column of this field")
        for f in sorted(_REQUIRED - set(spec.columns))
    ]
    for key in spec.values:
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"values.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
        elif key in _TIMES:
            out.append(FieldViolation(f"values.{key}", "value maps do not apply to date/times"))
    for key, value in spec.defaults.items():
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"defaults.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
        elif key in _NO_DEFAULT:
            out.append(FieldViolation(f"defaults.{key}", "this field cannot have a default"))
        else:
            converted = _convert(key, pl.Series([_text_of(value)], dtype=pl.String), spec)
            if converted.bad.any():
                out.append(FieldViolation(f"defaults.{key}", f"{value!r}: {converted.reason}"))
    for key in spec.scale:
        if key not in _NUMBERS - {"selection_probability"}:
            allowed = sorted(_NUMBERS - {"selection_probability"})
            out.append(FieldViolation(f"scale.{key}", f"only numeric fields scale: {allowed}"))
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(FieldViolation("timezone", f"{spec.timezone!r} is not an IANA time zone"))
    seen: set[str] = set()
    for i, name in enumerate(spec.extras):
        if name in seen:
            out.append(FieldViolation(f"extras[{i}]", f"{name!r} is listed twice"))
        seen.add(name)
    return out


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class DropReason:
    """Rows invalid for one reason: ``field`` is the canonical field (or ``label``)."""

    field: str
    column: str
    reason: str
    rows: int
    example_rows: tuple[int, ...]
    example_values: tuple[str, ...]

    def __str__(self) -> str:
        rows = ", ".join(str(r) for r in self.example_rows)
        more = ", …" if self.rows > len(self.example_rows) else ""
        values = ", ".join(repr(v) for v in self.example_values)
        shown = f"; e.g. {values}" if values else ""
        which = "rows" if len(self.example_rows) > 1 else "row"
        return (
            f"{self.field} (column {self.column!r}): {self.reason}: {_count(self.rows, 'row')} "
            f"({which} {rows}{more}{shown})"
        )


@dataclass(frozen=True, slots=True)
class MappedData:
    """What :func:`apply_mapping` wrote and what it left out, and why.

    ``rows_invalid`` rows had a cell that could not be converted; ``rows_dropped`` adds the
    other rows of the same declarations, dropped with them.
    """

    out_dir: Path
    source: Path
    rows_read: int
    rows_mapped: int
    rows_invalid: int
    rows_dropped: int
    shipments: int
    shipments_dropped: int
    goods_lines: int
    inspections: int
    positives: int
    dropped: tuple[DropReason, ...] = ()
    reused: bool = False

    def summary(self) -> str:
        """One line for the terminal: what went in, what came out, what was left out."""
        line = (
            f"mapped {self.rows_mapped:,} of {self.rows_read:,} rows of {self.source.name} into "
            f"{self.shipments:,} shipments ({self.goods_lines:,} goods lines, "
            f"{self.inspections:,} inspected, {self.positives:,} positive)"
        )
        if self.rows_dropped:
            reasons = "; ".join(str(d) for d in self.dropped)
            line += (
                f"; dropped {_count(self.rows_dropped, 'row')} "
                f"({_count(self.shipments_dropped, 'declaration')}), "
                f"{self.rows_invalid:,} invalid: {reasons}"
            )
        if self.reused:
            line += f" [cached in {self.out_dir}]"
        return line

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["source"] = str(self.source)
        doc.pop("out_dir")
        doc.pop("reused")
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], out_dir: Path) -> MappedData:
        fields = {k: v for k, v in doc.items() if k not in ("out_dir", "source", "dropped")}
        dropped = tuple(
            DropReason(
                **{
                    **d,
                    "example_rows": tuple(d["example_rows"]),
                    "example_values": tuple(d["example_values"]),
                }
            )
            for d in doc.get("dropped", [])
        )
        return cls(
            out_dir=out_dir, source=Path(doc["source"]), dropped=dropped, reused=True, **fields
        )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# --------------------------------------------------------------------------- conversion


@dataclass(frozen=True, slots=True)
class _Issue:
    """Rows of one field that failed one check; ``shown`` is the text to quote in reports."""

    field: str
    column: str
    reason: str
    bad: pl.Series
    shown: pl.Series


@dataclass(frozen=True, slots=True)
class _Converted:
    values: pl.Series
    bad: pl.Series
    reason: str


def _text_of(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tokens(value: Scalar) -> list[str]:
    """Normalised forms a configured value matches: booleans match their usual spellings."""
    if isinstance(value, bool):
        return sorted(_TRUE_WORDS if value else _FALSE_WORDS)
    return [_text_of(value).strip().lower()]


def _token(series: pl.Series) -> pl.Series:
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


def _as_text(series: pl.Series) -> pl.Series:
    """Canonical text (:func:`features.canonical.canonical_text`: NFKC, ASCII digits and
    dashes, no invisible characters, trimmed) with empty cells as null."""
    text = _each_distinct(series.cast(pl.String), canonical_text)
    return pl.select(pl.when(text.str.len_chars() > 0).then(text)).to_series().rename(series.name)


def _apply_values(text: pl.Series, table: dict[Scalar, Scalar]) -> pl.Series:
    lookup = {
        token: _text_of(target) for source, target in table.items() for token in _tokens(source)
    }
    keys = _token(text)
    mapped = keys.replace_strict(lookup, default=None, return_dtype=pl.String)
    return pl.select(pl.coalesce(mapped, text)).to_series().rename(text.name)


def _bad(values: pl.Series, text: pl.Series) -> pl.Series:
    """Cells that had text but no converted value."""
    return (text.is_not_null() & values.is_null()).rename("bad")


def _convert(field: str, text: pl.Series, spec: MappingSpec) -> _Converted:
    """Convert trimmed text cells (nulls already defaulted) of ``field`` to its canonical type."""
    if field in _NUMBERS:
        numbers = text.str.replace_all(r"[\s_]", "").cast(pl.Float64, strict=False)
        ok = numbers.is_finite() & (numbers >= 0)
        reason = "not a non-negative number"
        if field == "selection_probability":
            ok = ok & (numbers > 0) & (numbers <= 1)
            reason = "not a probability in (0, 1]"
        values = pl.select(pl.when(ok).then(numbers)).to_series()
        values = values * spec.scale.get(field, 1.0)
        return _Converted(values, _bad(values, text), reason)
    if field in _COUNTRIES:
        upper = text.str.to_uppercase()
        lookup = {v: _country_code(v) for v in upper.drop_nulls().unique().to_list()}
        values = upper.replace_strict(lookup, default=None, return_dtype=pl.String)
        return _Converted(values, _bad(values, text), "not an ISO 3166 country code or name")
    if field == "hs_code":
        values = _hs_codes(text)
        return _Converted(values, _bad(values, text), "not an HS code of 6 to 10 digits")
    if field == "mode":
        lower = text.str.to_lowercase()
        values = pl.select(pl.when(lower.is_in(MODES)).then(lower)).to_series()
        reason = f"not one of {', '.join(MODES)} (map source codes under values.mode)"
        return _Converted(values, _bad(values, text), reason)
    if field == "random_selection":
        token = _token(text)
        values = pl.select(
            pl.when(token.is_in(_TRUE_WORDS))
            .then(True)
            .when(token.is_in(_FALSE_WORDS))
            .then(False)
            .otherwise(None)
        ).to_series()
        return _Converted(values, _bad(values, text), "not true or false")
    if field in _LISTS:
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
        return _Converted(values, pl.Series([False] * len(text)), "")
    if field in _TIMES:
        values = _parse_times(text, spec)
        hint = f"format {spec.date_format!r}" if spec.date_format else "ISO 8601"
        return _Converted(values, _bad(values, text), f"not a date/time in {hint}")
    values = _each_distinct(text, canonical_code) if field in _CODES else text
    return _Converted(values, pl.Series([False] * len(text)), "")


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
        return _to_utc(parsed, spec.timezone)
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    candidates = [
        _to_utc(iso.str.strptime(pl.Datetime("us"), fmt, strict=False), spec.timezone)
        for fmt in (*_ISO_AWARE, *_ISO_NAIVE)
    ]
    return pl.select(pl.coalesce(candidates)).to_series()


def _to_utc(values: pl.Series, timezone: str) -> pl.Series:
    dtype = values.dtype
    if isinstance(dtype, pl.Date):
        values = values.cast(pl.Datetime("us"))
        dtype = values.dtype
    if not isinstance(dtype, pl.Datetime):
        raise DataError(f"cannot read {values.dtype} values as date/times")
    if dtype.time_zone is None:
        values = values.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return values.dt.convert_time_zone("UTC").cast(UTC_TS)


# --------------------------------------------------------------------------- reading


def read_table(path: Path, separator: str = ",") -> pl.DataFrame:
    """The analyst's table. CSV cells are read as text: type inference would turn HS codes and
    ids with leading zeros into numbers and lose the zeros before any rule could see them."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such table file")
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False, separator=separator)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"{path}: cannot read table ({exc})") from None
    raise ConfigError(
        "invalid mapping",
        [FieldViolation("table", f"{path.name}: only .csv and .parquet tables are read")],
    )


def resolve_table(data_dir: Path, spec: MappingSpec) -> Path:
    table = Path(spec.table).expanduser()
    return table if table.is_absolute() else Path(data_dir) / table


def _check_columns(frame: pl.DataFrame, spec: MappingSpec, source: Path, origin: str) -> None:
    available = frame.columns
    wanted: list[tuple[str, str]] = [(f"columns.{f}", c) for f, c in spec.columns.items()]
    wanted.append(("label.column", spec.label.column))
    if spec.label.inspected_column is not None:
        wanted.append(("label.inspected_column", spec.label.inspected_column))
    wanted += [(f"extras[{i}]", c) for i, c in enumerate(spec.extras)]
    listing = ", ".join(repr(c) for c in available)
    missing = [
        FieldViolation(path, f"no column {column!r} in {source.name}; available: {listing}")
        for path, column in wanted
        if column not in available
    ]
    if missing:
        raise ConfigError(f"{origin}: mapping names columns the table does not have", missing)


# --------------------------------------------------------------------------- mapping


def apply_mapping(data_dir: Path, mapping_file: Path, out_dir: Path) -> MappedData:
    """Map the table named by ``mapping_file`` into canonical tables in ``out_dir``.

    Raises :class:`ConfigError` for a bad mapping or a column the table lacks, and
    :class:`DataError` when the table is unreadable, or when more than ``max_invalid_share``
    of its rows are invalid (nothing is written then).
    """
    spec = load_mapping(mapping_file)
    return map_table(spec, resolve_table(data_dir, spec), Path(out_dir), str(mapping_file))


def map_table(
    spec: MappingSpec, source: Path, out_dir: Path, origin: str = "mapping"
) -> MappedData:
    """:func:`apply_mapping` for an already-validated mapping and a resolved table path.

    ``origin`` names the mapping in error messages.
    """
    raw = read_table(source, spec.separator)
    _check_columns(raw, spec, source, origin)
    n = raw.height
    if n == 0:
        raise DataError(f"{source}: the table has no rows")
    row_numbers = pl.Series("_row", range(1, n + 1), dtype=pl.Int64)

    fields: dict[str, pl.Series] = {}
    issues: list[_Issue] = []
    for field in MAPPABLE_FIELDS:
        column = spec.columns.get(field)
        if column is None:
            fields[field] = _unmapped(field, spec, n, row_numbers)
            continue
        cells = raw[column]
        if field in _TIMES and isinstance(cells.dtype, pl.Date | pl.Datetime):
            values = _to_utc(cells, spec.timezone)
            shown = cells.cast(pl.String)
            lost = cells.is_not_null() & values.is_null()
            if lost.any():
                reason = f"does not exist in time zone {spec.timezone}"
                issues.append(_Issue(field, column, reason, lost, shown))
        else:
            shown = _as_text(cells)
            if field in spec.values:
                shown = _apply_values(shown, spec.values[field])
            if field in spec.defaults:
                shown = shown.fill_null(_text_of(spec.defaults[field]))
            converted = _convert(field, shown, spec)
            values = converted.values
            if converted.bad.any():
                issues.append(_Issue(field, column, converted.reason, converted.bad, shown))
        empty = shown.is_null()
        if field in _NOT_EMPTY and empty.any():
            hint = "" if field in _NO_DEFAULT else f" (set defaults.{field} to fill them)"
            issues.append(_Issue(field, column, f"empty{hint}", empty, shown))
        fields[field] = _fill_empty(field, values)
    inspected, positive = _labels(raw, spec, issues)

    frame = pl.DataFrame(
        {"_row": row_numbers, **fields, "_inspected": inspected, "_positive": positive}
    )
    frame = frame.with_columns(
        pl.col("inspected_at").fill_null(pl.col("declared_at")),
        pl.col("reported_at").fill_null(pl.col("declared_at")),
        *(pl.Series(f"_extra{i}", raw[name]) for i, name in enumerate(spec.extras)),
    )
    invalid = pl.Series([False] * n)
    for issue in issues:
        invalid = invalid | issue.bad.fill_null(False)
    bad_ids = frame.filter(invalid)["shipment_id"].drop_nulls().unique()
    dropped_mask = invalid | frame["shipment_id"].is_in(bad_ids.implode())
    rows_invalid = int(invalid.sum())
    if rows_invalid > spec.max_invalid_share * n:
        reasons = "\n".join(f"  - {_reason(i, row_numbers)}" for i in issues)
        raise DataError(
            f"{source}: {rows_invalid} of {n} rows ({rows_invalid / n:.1%}) cannot be converted, "
            f"more than max_invalid_share {spec.max_invalid_share:.1%}; nothing was written. "
            f"Fix the mapping (values, date_format, defaults) or the data:\n{reasons}"
        )
    kept = frame.filter(~dropped_mask)
    if kept.height == 0:
        raise DataError(f"{source}: no row could be mapped")
    shipments, goods, inspections, extras = _tables(kept, spec)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("shipments", shipments), ("goods", goods), ("inspections", inspections)):
        conform(table, name).write_parquet(table_path(out_dir, name), compression="zstd")
    if extras is not None:
        extras.write_parquet(out_dir / EXTRAS_FILE, compression="zstd")
    dropped_ships = frame.filter(dropped_mask)["shipment_id"]
    result = MappedData(
        out_dir=out_dir,
        source=source,
        rows_read=n,
        rows_mapped=kept.height,
        rows_invalid=rows_invalid,
        rows_dropped=n - kept.height,
        shipments=shipments.height,
        shipments_dropped=dropped_ships.drop_nulls().n_unique() + dropped_ships.null_count(),
        goods_lines=goods.height,
        inspections=inspections.height,
        positives=int(inspections["positive"].sum()),
        dropped=tuple(_reason(i, row_numbers) for i in issues),
    )
    (out_dir / SUMMARY_FILE).write_text(
        json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return result


def _unmapped(field: str, spec: MappingSpec, n: int, row_numbers: pl.Series) -> pl.Series:
    """A field with no column: its default, or the canonical empty value."""
    if field in spec.defaults:
        text = pl.Series(field, [_text_of(spec.defaults[field])] * n, dtype=pl.String)
        return _convert(field, text, spec).values
    if field == "shipment_id":
        return ("ROW-" + row_numbers.cast(pl.String).str.zfill(9)).rename(field)
    if field in _TIMES:
        return pl.Series(field, [None] * n, dtype=UTC_TS)
    if field in _NUMBERS:
        return pl.Series(field, [_NUMBER_WHEN_UNMAPPED[field]] * n, dtype=pl.Float64)
    if field == "random_selection":
        return pl.Series(field, [False] * n, dtype=pl.Boolean)
    if field in _LISTS:
        return pl.Series(field, [[]] * n, dtype=pl.List(pl.String))
    return pl.Series(field, [""] * n, dtype=pl.String)


def _fill_empty(field: str, values: pl.Series) -> pl.Series:
    """Canonical empty values where a mapped cell was empty and had no default.

    Fields in :data:`_NOT_EMPTY` stay null: their empty cells are reported as invalid instead.
    Null inspection times become the declared time once all fields are known.
    """
    if field == "selection_probability":
        values = values.fill_null(1.0)
    elif field == "random_selection":
        values = values.fill_null(False)
    elif values.dtype == pl.String and field not in _NOT_EMPTY:
        values = values.fill_null("")
    return values.rename(field)


def _labels(
    raw: pl.DataFrame, spec: MappingSpec, issues: list[_Issue]
) -> tuple[pl.Series, pl.Series]:
    """(inspected, positive) per row, recording label values that are neither outcome."""
    label = spec.label
    text = _as_text(raw[label.column])
    token = _token(text)
    positive_tokens = [t for v in label.positive for t in _tokens(v)]
    is_positive = token.is_in(positive_tokens).fill_null(False)
    labelled = text.is_not_null()
    if label.negative is not None:
        negative_tokens = [t for v in label.negative for t in _tokens(v)]
        neither = labelled & ~is_positive & ~token.is_in(negative_tokens).fill_null(False)
        if neither.any():
            issues.append(
                _Issue("label", label.column, "neither positive nor negative", neither, text)
            )
    if label.inspected_column is None:
        inspected = labelled
    else:
        flags = _token(_as_text(raw[label.inspected_column]))
        inspected_tokens = [t for v in label.inspected_values for t in _tokens(v)]
        inspected = flags.is_in(inspected_tokens).fill_null(False)
    return inspected.rename("_inspected"), (is_positive & inspected).rename("_positive")


def _reason(issue: _Issue, row_numbers: pl.Series) -> DropReason:
    mask = issue.bad.fill_null(False)
    rows = row_numbers.filter(mask)
    values = issue.shown.filter(mask).drop_nulls().unique(maintain_order=True).head(3)
    return DropReason(
        field=issue.field,
        column=issue.column,
        reason=issue.reason,
        rows=int(mask.sum()),
        example_rows=tuple(int(r) for r in rows.head(EXAMPLE_ROWS)),
        example_values=tuple(str(v) for v in values),
    )


def _tables(
    kept: pl.DataFrame, spec: MappingSpec
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    by_declaration = kept.group_by("shipment_id", maintain_order=True)
    shipments = by_declaration.agg(pl.col(f).first() for f in SHIPMENT_FIELDS if f != "shipment_id")
    lines = kept.with_columns(
        line_no=pl.int_range(pl.len(), dtype=pl.Int32).over("shipment_id")
    ).sort("shipment_id", "line_no", maintain_order=True)
    goods = lines.select("shipment_id", "line_no", *GOODS_FIELDS)
    inspections = (
        kept.filter(pl.col("_inspected"))
        .group_by("shipment_id", maintain_order=True)
        .agg(
            pl.col("inspected_at").min(),
            pl.col("reported_at").max(),
            pl.col("_positive").any().alias("positive"),
            pl.col("substances").explode().drop_nulls().unique(maintain_order=True),
            pl.col("selection_probability").first(),
            pl.col("random_selection").first(),
        )
        .with_columns(pl.col("reported_at").clip(lower_bound=pl.col("inspected_at")))
    )
    extras = None
    if spec.extras:
        extras = lines.select(
            "shipment_id",
            "line_no",
            *(pl.col(f"_extra{i}").alias(name) for i, name in enumerate(spec.extras)),
        )
    return shipments, goods, inspections, extras


# --------------------------------------------------------------------------- cache


def cache_key(spec_bytes: bytes, table: Path) -> str:
    """Changes when the mapping file, the table file or the conversion rules change."""
    stat = table.stat()
    digest = hashlib.sha256()
    digest.update(f"v{MAPPING_FORMAT_VERSION}\0".encode())
    digest.update(spec_bytes)
    digest.update(f"\0{table.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def mapped_data(data_dir: Path, mapping_file: Path) -> MappedData:
    """Map ``data_dir`` through ``mapping_file`` into ``DATA/.centinela-mapped/<key>/``.

    A directory already mapped with the same mapping file and the same table (size and
    modification time) is reused. The mapping is written to a temporary sibling and renamed,
    so an interrupted run never leaves a half-written cache that a later run would trust.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data directory")
    spec = load_mapping(mapping_file)
    source = resolve_table(data_dir, spec)
    if not source.is_file():
        raise DataError(f"{source}: no such table file (mapping {mapping_file}: table)")
    key = cache_key(Path(mapping_file).read_bytes(), source)
    root = data_dir / CACHE_DIR_NAME
    target = root / key
    summary = target / SUMMARY_FILE
    if summary.is_file():
        try:
            return MappedData.from_json(json.loads(summary.read_text(encoding="utf-8")), target)
        except (OSError, ValueError, TypeError, KeyError):
            shutil.rmtree(target, ignore_errors=True)
    staging = root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = map_table(spec, source, staging, str(mapping_file))
        try:
            staging.rename(target)
        except OSError:
            if not (target / SUMMARY_FILE).is_file():
                raise
    except OSError as exc:
        raise DataError(f"cannot write the mapped tables under {root}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return replace(result, out_dir=target)
