"""What a mapping run wrote and what it left out: :class:`MappedData` and its drop reasons.

The same record is printed as the run's one-line summary, written as ``mapping.json`` beside the
mapped tables, and read back when a cached mapping is reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

SUMMARY_FILE: Final = "mapping.json"


@dataclass(frozen=True, slots=True)
class DropReason:
    """Rows invalid for one reason: ``field`` is the canonical field (or ``label``)."""

    field: str
    column: str  # the source column
    reason: str
    rows: int
    """How many rows; the first few of them by row number (from 1), and up to three values."""
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
