"""The analyst's table: where it is, reading it without losing leading zeros, its columns."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from features.errors import ConfigError, DataError, FieldViolation
from training.mapping.schema import MappingSpec


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


def check_columns(frame: pl.DataFrame, spec: MappingSpec, source: Path, origin: str) -> None:
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
