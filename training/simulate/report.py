"""Calibration report of a simulated world against the reference figures it was built from.

It answers "does this world look like what we meant?": port and mode volumes next to the
reference shares, the HS mix, illicit rates by pattern and half-year, how often the legacy policy
inspected and how much of the hidden contraband its labels actually show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from rich.table import Table

from features.tables import scan_table
from training.cli_common import console
from training.simulate import reference
from training.simulate.illicit import PATTERN_NAMES, period_expr, period_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

REPORT_NAME = "report.md"


def port_share_table(data_dir: Path) -> pl.DataFrame:
    """Shipments per (mode, port), share within the mode and the reference share."""
    targets = reference.port_shares_within_mode()
    counts = (
        scan_table(data_dir, "shipments")
        .group_by("mode", "port_of_entry")
        .agg(shipments=pl.len())
        .collect()
    )
    reference_rows = pl.DataFrame(
        [
            {
                "mode": mode,
                "port_of_entry": port,
                "reference_share": share,
                "sourced": mode in reference.SOURCED_MODES,
            }
            for mode, ports in targets.items()
            for port, share in ports.items()
        ]
    )
    return (
        reference_rows.join(counts, on=["mode", "port_of_entry"], how="full", coalesce=True)
        .with_columns(pl.col("shipments").fill_null(0).cast(pl.Int64))
        .with_columns(share=pl.col("shipments") / pl.col("shipments").sum().over("mode"))
        .with_columns(deviation=pl.col("share") / pl.col("reference_share") - 1.0)
        .sort("mode", "port_of_entry")
    )


def mode_share_table(data_dir: Path) -> pl.DataFrame:
    targets = reference.mode_shares()
    counts = scan_table(data_dir, "shipments").group_by("mode").agg(shipments=pl.len()).collect()
    return (
        counts.with_columns(share=pl.col("shipments") / pl.col("shipments").sum())
        .with_columns(reference_share=pl.col("mode").replace_strict(targets, default=None))
        .sort("mode")
    )


def chapter_share_table(data_dir: Path) -> pl.DataFrame:
    return (
        scan_table(data_dir, "goods")
        .group_by(chapter=pl.col("hs_code").str.slice(0, 2))
        .agg(lines=pl.len())
        .collect()
        .with_columns(share=pl.col("lines") / pl.col("lines").sum())
        .sort(["lines", "chapter"], descending=[True, False])
    )


def _periods(data_dir: Path) -> pl.DataFrame:
    shipments = scan_table(data_dir, "shipments").select("shipment_id", "declared_at")
    return shipments.with_columns(period=period_expr(pl.col("declared_at"))).collect()


def illicit_table(data_dir: Path) -> pl.DataFrame:
    """Illicit shipments per pattern and half-year, with the rate per 10,000 shipments."""
    periods = _periods(data_dir)
    truth = scan_table(data_dir, "truth").collect().join(periods, on="shipment_id")
    totals = truth.group_by("period").agg(shipments=pl.len())
    counts = truth.filter(pl.col("illicit")).group_by("pattern", "period").agg(illicit=pl.len())
    grid = pl.DataFrame({"pattern": list(PATTERN_NAMES)}).join(totals, how="cross")
    return (
        grid.join(counts, on=["pattern", "period"], how="left")
        .with_columns(pl.col("illicit").fill_null(0).cast(pl.Int64))
        .with_columns(per_10k=pl.col("illicit") / pl.col("shipments") * 10_000)
        .sort("pattern", "period")
    )


def inspection_table(data_dir: Path) -> pl.DataFrame:
    shipments = scan_table(data_dir, "shipments").select("shipment_id", "mode", "port_of_entry")
    inspections = scan_table(data_dir, "inspections")
    return (
        shipments.join(inspections, on="shipment_id", how="left")
        .group_by("mode", "port_of_entry")
        .agg(
            shipments=pl.len(),
            inspected=pl.col("inspected_at").is_not_null().sum(),
            random=pl.col("random_selection").fill_null(False).sum(),
            positive=pl.col("positive").fill_null(False).sum(),
        )
        .with_columns(rate=pl.col("inspected") / pl.col("shipments"))
        .sort("mode", "port_of_entry")
        .collect()
    )


def detection_table(data_dir: Path) -> pl.DataFrame:
    """Per pattern: truly illicit, inspected, found positive; what labels show of the truth."""
    truth = scan_table(data_dir, "truth").filter(pl.col("illicit"))
    inspections = scan_table(data_dir, "inspections")
    return (
        truth.join(inspections, on="shipment_id", how="left")
        .group_by("pattern")
        .agg(
            true_illicit=pl.len(),
            inspected=pl.col("inspected_at").is_not_null().sum(),
            observed_positive=pl.col("positive").fill_null(False).sum(),
        )
        .with_columns(
            inspected_share=pl.col("inspected") / pl.col("true_illicit"),
            observed_share=pl.col("observed_positive") / pl.col("true_illicit"),
        )
        .sort("pattern")
        .collect()
    )


def monthly_volume(data_dir: Path) -> pl.DataFrame:
    return (
        scan_table(data_dir, "shipments")
        .group_by(month=pl.col("declared_at").dt.truncate("1mo"), mode=pl.col("mode"))
        .agg(shipments=pl.len())
        .sort("month", "mode")
        .collect()
    )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if value is None:
        return "—"
    return str(value)


def _markdown(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule, *body])


def _rich(title: str, frame: pl.DataFrame) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column)
    for row in frame.iter_rows():
        table.add_row(*(_fmt(v) for v in row))
    return table


def _plot_port_shares(ax: Axes, tables: Mapping[str, pl.DataFrame]) -> None:
    ports = tables["ports"]
    labels = [f"{m}:{p}" for m, p in zip(ports["mode"], ports["port_of_entry"], strict=True)]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], ports["share"].fill_null(0).to_list(), 0.4, label="simulated")
    ax.bar(
        [i + 0.2 for i in x],
        ports["reference_share"].fill_null(0).to_list(),
        0.4,
        label="reference",
    )
    ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share within mode")
    ax.legend()


def _plot_monthly_volume(ax: Axes, tables: Mapping[str, pl.DataFrame]) -> None:
    monthly = tables["monthly"]
    for mode in sorted(set(monthly["mode"].to_list())):
        part = monthly.filter(pl.col("mode") == mode)
        ax.plot(part["month"].to_list(), part["shipments"].to_list(), label=mode)
    ax.set_ylabel("shipments per month")
    ax.legend()


def _plot_illicit_by_period(ax: Axes, tables: Mapping[str, pl.DataFrame]) -> None:
    illicit = tables["illicit"]
    periods = sorted(set(illicit["period"].to_list()))
    bottom = [0.0] * len(periods)
    for pattern in PATTERN_NAMES:
        part = illicit.filter(pl.col("pattern") == pattern).sort("period")
        values = part["per_10k"].to_list()
        ax.bar(periods, values, bottom=bottom, label=pattern)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("illicit per 10,000 shipments")
    ax.legend(fontsize=7)


def _plot_observed_vs_true(ax: Axes, tables: Mapping[str, pl.DataFrame]) -> None:
    detection = tables["detection"]
    names = detection["pattern"].to_list()
    x = range(len(names))
    ax.bar([i - 0.27 for i in x], detection["true_illicit"].to_list(), 0.27, label="true")
    ax.bar(list(x), detection["inspected"].to_list(), 0.27, label="inspected")
    ax.bar(
        [i + 0.27 for i in x],
        detection["observed_positive"].to_list(),
        0.27,
        label="observed positive",
    )
    ax.set_xticks(list(x), names, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.legend()


PLOTS: tuple[tuple[str, Callable[[Axes, Mapping[str, pl.DataFrame]], None]], ...] = (
    ("port_shares.png", _plot_port_shares),
    ("monthly_volume.png", _plot_monthly_volume),
    ("illicit_by_period.png", _plot_illicit_by_period),
    ("observed_vs_true.png", _plot_observed_vs_true),
)
"""Each plot of the report: its file name and what it draws from the calibration tables."""


def _plots(out_dir: Path, tables: Mapping[str, pl.DataFrame]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, plot in PLOTS:
        fig, ax = plt.subplots(figsize=(10, 4))
        plot(ax, tables)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100, metadata={"Software": None})
        plt.close(fig)
    return [name for name, _ in PLOTS]


def calibration_report(data_dir: Path, out_dir: Path | None = None) -> Path:
    """Print the calibration tables and write ``report.md`` with PNG plots; return its path."""
    data_dir = Path(data_dir)
    out_dir = Path(out_dir) if out_dir is not None else data_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "modes": mode_share_table(data_dir),
        "ports": port_share_table(data_dir),
        "chapters": chapter_share_table(data_dir).head(20),
        "illicit": illicit_table(data_dir),
        "inspections": inspection_table(data_dir),
        "detection": detection_table(data_dir),
        "monthly": monthly_volume(data_dir),
    }
    titles = {
        "modes": "Shipments by mode (reference: §5b trucks and §5c TEU; air and postal assumed)",
        "ports": "Shipments by port within mode (sourced = share from reference §5)",
        "chapters": "HS chapter shares of goods lines (top 20)",
        "illicit": "Illicit shipments by pattern and half-year",
        "inspections": "Legacy inspection policy by port",
        "detection": "Observed (inspected and found) vs true illicit, by pattern",
    }
    truth = scan_table(data_dir, "truth").select(pl.col("illicit").sum(), pl.len()).collect()
    illicit_total, shipments_total = int(truth.item(0, 0)), int(truth.item(0, 1))
    inspected = tables["inspections"]["inspected"].sum()
    observed = tables["detection"]["observed_positive"].sum() if tables["detection"].height else 0
    lines = [
        "# Simulated world: calibration report",
        "",
        f"- data: `{data_dir}`",
        f"- shipments: {shipments_total:,}; illicit: {illicit_total:,} "
        f"({illicit_total / max(1, shipments_total):.3%})",
        f"- inspected: {inspected:,} ({inspected / max(1, shipments_total):.2%}); "
        f"observed positives: {observed:,} of {illicit_total:,} truly illicit",
        f"- half-years: see `{period_of.__name__}` in `training/simulate/illicit.py`",
        "",
    ]
    for key, title in titles.items():
        frame = tables[key]
        console.print(_rich(title, frame))
        lines += [f"## {title}", "", _markdown(frame), ""]
    plots = _plots(out_dir, tables)
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    path = out_dir / REPORT_NAME
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
