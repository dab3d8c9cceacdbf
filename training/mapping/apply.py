"""Applying a mapping: the analyst's table converted, checked, grouped and written.

:func:`map_table` reads every mapped column into its canonical type
(:mod:`training.mapping.values`), records each cell that cannot be converted as an issue, drops
the whole declaration of an invalid row, refuses to write anything when more than
``max_invalid_share`` of the rows are invalid, and otherwise writes ``shipments``, ``goods`` and
``inspections`` (and ``extras.parquet``) with a ``mapping.json`` summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from features.errors import DataError
from features.tables import conform, table_path
from training.mapping.fields import (
    GOODS_FIELDS,
    MAPPABLE_FIELDS,
    NO_DEFAULT,
    NOT_EMPTY,
    SHIPMENT_FIELDS,
    TIMES,
)
from training.mapping.load import load_mapping
from training.mapping.result import SUMMARY_FILE, DropReason, MappedData
from training.mapping.schema import MappingSpec
from training.mapping.source import check_columns, read_table, resolve_table
from training.mapping.values import (
    apply_values,
    as_text,
    cell_tokens,
    convert,
    fill_empty,
    text_of,
    to_utc,
    unmapped,
    value_tokens,
)

EXTRAS_FILE: Final = "extras.parquet"
EXAMPLE_ROWS: Final = 5
"""Row numbers quoted per drop reason."""


@dataclass(frozen=True, slots=True)
class _Issue:
    """Rows of one field that failed one check; ``shown`` is the text to quote in reports."""

    field: str
    column: str
    reason: str
    bad: pl.Series
    shown: pl.Series


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
    check_columns(raw, spec, source, origin)
    n = raw.height
    if n == 0:
        raise DataError(f"{source}: the table has no rows")
    row_numbers = pl.Series("_row", range(1, n + 1), dtype=pl.Int64)

    issues: list[_Issue] = []
    fields = {
        field: _read_field(field, raw, spec, row_numbers, issues) for field in MAPPABLE_FIELDS
    }
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
    _write_tables(out_dir, shipments, goods, inspections, extras)
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


def _read_field(
    field: str, raw: pl.DataFrame, spec: MappingSpec, row_numbers: pl.Series, issues: list[_Issue]
) -> pl.Series:
    """One canonical field for every row, appending an issue for each check its cells fail.

    A field with no column takes its default or the canonical empty value. A mapped column is
    read as text, translated through ``values``, defaulted where empty and converted; a native
    date/time column only needs the time zone.
    """
    column = spec.columns.get(field)
    if column is None:
        return unmapped(field, spec, raw.height, row_numbers)
    cells = raw[column]
    if field in TIMES and isinstance(cells.dtype, pl.Date | pl.Datetime):
        values = to_utc(cells, spec.timezone)
        shown = cells.cast(pl.String)
        lost = cells.is_not_null() & values.is_null()
        if lost.any():
            reason = f"does not exist in time zone {spec.timezone}"
            issues.append(_Issue(field, column, reason, lost, shown))
    else:
        shown = as_text(cells)
        if field in spec.values:
            shown = apply_values(shown, spec.values[field])
        if field in spec.defaults:
            shown = shown.fill_null(text_of(spec.defaults[field]))
        converted = convert(field, shown, spec)
        values = converted.values
        if converted.bad.any():
            issues.append(_Issue(field, column, converted.reason, converted.bad, shown))
    empty = shown.is_null()
    if field in NOT_EMPTY and empty.any():
        hint = "" if field in NO_DEFAULT else f" (set defaults.{field} to fill them)"
        issues.append(_Issue(field, column, f"empty{hint}", empty, shown))
    return fill_empty(field, values)


def _write_tables(
    out_dir: Path,
    shipments: pl.DataFrame,
    goods: pl.DataFrame,
    inspections: pl.DataFrame,
    extras: pl.DataFrame | None,
) -> None:
    """The canonical tables, conformed, and the extras beside them, all zstd Parquet."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("shipments", shipments), ("goods", goods), ("inspections", inspections)):
        conform(table, name).write_parquet(table_path(out_dir, name), compression="zstd")
    if extras is not None:
        extras.write_parquet(out_dir / EXTRAS_FILE, compression="zstd")


def _labels(
    raw: pl.DataFrame, spec: MappingSpec, issues: list[_Issue]
) -> tuple[pl.Series, pl.Series]:
    """(inspected, positive) per row, recording label values that are neither outcome."""
    label = spec.label
    text = as_text(raw[label.column])
    token = cell_tokens(text)
    positive_tokens = [t for v in label.positive for t in value_tokens(v)]
    is_positive = token.is_in(positive_tokens).fill_null(False)
    labelled = text.is_not_null()
    if label.negative is not None:
        negative_tokens = [t for v in label.negative for t in value_tokens(v)]
        neither = labelled & ~is_positive & ~token.is_in(negative_tokens).fill_null(False)
        if neither.any():
            issues.append(
                _Issue("label", label.column, "neither positive nor negative", neither, text)
            )
    if label.inspected_column is None:
        inspected = labelled
    else:
        flags = cell_tokens(as_text(raw[label.inspected_column]))
        inspected_tokens = [t for v in label.inspected_values for t in value_tokens(v)]
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
