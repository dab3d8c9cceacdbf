"""How the evaluation's figures read: in ``report.md``, on its plots and in the terminal.

A share reads as a percentage with its bootstrap interval in brackets (``42.0% [35.0, 49.0]``);
a precision with no positives to find reads "no positives", never as a zero.
"""

from __future__ import annotations

from collections.abc import Iterable

from training.evaluation_intervals import Interval
from training.evaluation_record import (
    NO_POSITIVES,
    SELECTORS,
    BudgetMetrics,
    BySelector,
    LabelSource,
)


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal; a dash for a missing figure."""
    return "—" if value is None else f"{value * 100:.1f}%"


def with_interval(value: float | None, interval: Interval | None) -> str:
    """A share and its interval: ``42.0% [35.0, 49.0]``; just the share without an interval."""
    if value is None or interval is None:
        return percent(value)
    return f"{percent(value)} [{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]"


def bracketed(interval: Interval | None, digits: int = 3) -> str:
    """A plain figure's interval as `` [0.120, 0.450]``; nothing without one."""
    if interval is None:
        return ""
    return f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def points(value: float | None, interval: Interval | None) -> str:
    """A difference of shares in percentage points, signed, with its interval."""
    if value is None:
        return "—"
    text = f"{value * 100:+.1f} pts"
    if interval is None:
        return text
    return f"{text} [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]"


def probability(value: float | None) -> str:
    """A model score: four decimals, or two significant digits in scientific notation when it
    is below 0.001, so ``7.6e-23`` is not printed as ``0.0000``."""
    if value is None:
        return "—"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4f}"


def budget_label(key: str) -> str:
    """A budget key (``"0.005"``) as a percentage of shipments (``0.5%``)."""
    return f"{float(key) * 100:g}%"


def fixed(value: float | None, digits: int) -> str:
    """A number with ``digits`` decimals; a dash for a missing figure."""
    return "—" if value is None else f"{value:.{digits}f}"


def pr_cells(m: BudgetMetrics) -> list[str]:
    """Precision and recall cells of one selection, each with its interval; "no positives"
    where there was nothing to find."""
    if m.reason == NO_POSITIVES:
        return [NO_POSITIVES, "—"]
    return [
        with_interval(m.precision, m.precision_interval),
        with_interval(m.recall, m.recall_interval),
    ]


def row(cells: Iterable[str]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def source_heading(src: LabelSource) -> str:
    return f"### {src.capitalize()} labels"


def selector_table(
    head: list[str],
    align: str,
    rows: Iterable[tuple[list[str], BySelector]],
    src: LabelSource,
) -> list[str]:
    """A table of leading columns, then every selector's precision and recall against ``src``.

    ``head`` names the leading columns and ``align`` aligns each (``l`` left, ``r`` right);
    ``rows`` give each row's leading cells and its metrics by selector.
    """
    rule = "".join("---|" if a == "l" else "---:|" for a in align + "rr" * len(SELECTORS))
    lines = [row([*head, *(f"{s} precision | {s} recall" for s in SELECTORS)]), "|" + rule]
    for cells, by_selector in rows:
        lines.append(row([*cells, *(c for s in SELECTORS for c in pr_cells(by_selector[s][src]))]))
    return [*lines, ""]
