"""How the evaluation's figures read: in ``report.md``, on its plots and in the terminal."""

from __future__ import annotations


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal; a dash for a missing figure."""
    return "—" if value is None else f"{value * 100:.1f}%"


def budget_label(key: str) -> str:
    """A budget key (``"0.005"``) as a percentage of shipments (``0.5%``)."""
    return f"{float(key) * 100:g}%"


def fixed(value: float | None, digits: int) -> str:
    """A number with ``digits`` decimals; a dash for a missing figure."""
    return "—" if value is None else f"{value:.{digits}f}"
