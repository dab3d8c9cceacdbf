"""The mapping file's schema: which table, which columns, how values and labels are read.

Pydantic models with unknown keys forbidden, so a typo in a mapping file is rejected by name.
What pydantic cannot check (canonical field names, the defaults' types) is checked on loading
(:mod:`training.mapping.load`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool


class LabelSpec(BaseModel):
    """Where the inspection outcome is, and which of its values mean contraband was found."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    column: str
    """Source column holding the outcome."""
    positive: list[Scalar] = Field(min_length=1)
    """Values meaning contraband or fraud was found."""
    negative: list[Scalar] | None = None
    """Values meaning nothing was found. When given, any other non-empty value makes its row
    invalid; when absent, every non-empty value not in positive is negative."""
    inspected_column: str | None = None
    """Source column saying whether the row was inspected. Absent: every row with a non-empty label
    was inspected."""
    inspected_values: list[Scalar] = Field(
        default_factory=lambda: list[Scalar]([True]), min_length=1
    )
    """Values of inspected_column meaning inspected (true matches true/yes/y/1)."""


class MappingSpec(BaseModel):
    """One mapping file. Unknown keys are rejected by name, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    table: str = Field(min_length=1)
    """The table, relative to --data DIR or absolute; .csv or .parquet."""
    columns: dict[str, str]
    """Canonical field → source column."""
    label: LabelSpec
    date_format: str | None = None
    """strptime format of date/time text cells; absent means ISO 8601."""
    timezone: str = "UTC"
    """Zone of date/times that carry no offset."""
    separator: str = Field(",", min_length=1, max_length=1)
    """CSV field separator."""
    values: dict[str, dict[Scalar, Scalar]] = Field(default_factory=dict)
    """Per canonical field, source value → canonical value."""
    defaults: dict[str, Scalar] = Field(default_factory=dict)
    """Value of a field that has no column, or of its empty cells."""
    scale: dict[str, float] = Field(default_factory=dict)
    """Multiplier per numeric field, e.g. a currency rate to US dollars."""
    extras: list[str] = Field(default_factory=list)
    """Source columns copied to extras.parquet."""
    max_invalid_share: float = Field(0.05, ge=0.0, le=1.0)
    """Fail, writing nothing, when more than this share of rows is invalid."""
