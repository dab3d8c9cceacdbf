"""The PNG plots of the evaluation report, one function each, and the table that names them.

Plots are drawn on Agg canvases directly (no ``pyplot``), so writing a report never touches
global matplotlib state or needs a display. File names are fixed (:data:`PLOTS`) and nothing
in a plot depends on the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.evaluation_format import budget_label, fixed
from training.evaluation_metrics import labels, precision_recall_curve, ranking
from training.evaluation_record import BUDGET_KEYS, BUDGETS, NO_POSITIVES, SELECTORS

if TYPE_CHECKING:  # names the plots' signatures use, never at run time
    from training.evaluation_record import (
        BudgetMetrics,
        BudgetTable,
        Evaluation,
        LabelSource,
        PolicyMetrics,
        Selector,
    )

PORT_BUDGET = "0.02"
"""The budget of the per-port chart: the share of shipments lanes send RED by default."""

PORT_PLOT_MAX = 40
"""Ports drawn in the per-port charts, busiest first; every port is in the report's tables."""

_COLOURS: dict[Selector, str] = {
    "model": "#1f4e79",
    "random": "#9e9e9e",
    "rules": "#c55a11",
    "watchlist": "#548235",
}
_POLICY_COLOURS: dict[str, str] = {
    "policy": "#7030a0",
    "model, same count": _COLOURS["model"],
    "model, at capacity": "#9dc3e6",
}
_DPI = 110


def draw_plots(evaluation: Evaluation, directory: Path) -> dict[str, Path]:
    """Draw every plot of :data:`PLOTS` into ``directory``; returns their paths by role."""
    written = {}
    for role, plot in _PLOTS.items():
        written[role] = directory / plot.file
        plot.draw(evaluation, written[role])
    return written


# --------------------------------------------------------------------------- the plots


def _budget_plot(evaluation: Evaluation, path: Path, metric: str) -> None:
    """``metric`` of every selector at each budget with its interval, one panel per label
    source."""
    sources = evaluation.label_sources
    fig = _figure(1, len(sources), 5.0, 3.8)
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    x = np.arange(len(BUDGETS))
    for ax, src in zip(axes, sources, strict=True):
        for i, sel in enumerate(SELECTORS):
            ms = [evaluation.budgets[k][sel][src] for k in BUDGET_KEYS]
            values = np.array([_value(m, metric) for m in ms])
            low, high = _spread(ms, metric, values)
            ax.errorbar(
                x + (i - 1.5) * 0.06,
                values,
                yerr=[low, high],
                marker="o",
                capsize=3,
                label=sel,
                color=_COLOURS[sel],
            )
        ax.set_xticks(x, [budget_label(k) for k in BUDGET_KEYS])
        ax.set_xlabel("inspection budget (share of shipments)")
        ax.set_ylabel(f"{metric} (95% interval)")
        ax.set_ylim(0, 1.02 if metric == "recall" else _top(evaluation.budgets, src))
        ax.set_title(f"{metric} at budget, {src} labels{_few(evaluation, src)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save(fig, path)


def _pr_plot(evaluation: Evaluation, path: Path) -> None:
    """Each selector's precision-recall curve (random: its base rate), per label source."""
    sources = evaluation.label_sources
    frame = evaluation.frame
    fig = _figure(1, len(sources), 5.0, 4.0)
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    for ax, src in zip(axes, sources, strict=True):
        y = labels(frame, src)
        ax.set_title(f"precision-recall, {src} labels{_few(evaluation, src)}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if y.sum() == 0:
            ax.text(0.5, 0.5, "no positives in the window", ha="center", va="center")
            continue
        for sel in SELECTORS:
            auc = evaluation.pr_auc[sel][src]
            label = f"{sel} (AP {fixed(auc, 3)})"
            if sel == "random":
                ax.axhline(y.mean(), color=_COLOURS[sel], linestyle="--", label=label)
                continue
            precision, recall = precision_recall_curve(y[ranking(frame, sel)])
            ax.step(
                np.concatenate([[0.0], recall]),
                np.concatenate([precision[:1], precision]),
                where="pre",
                color=_COLOURS[sel],
                label=label,
            )
        ax.legend(fontsize="small")
    _save(fig, path)


def _reliability_plot(evaluation: Evaluation, path: Path) -> None:
    """The model's reliability diagram on inspected shipments over quantile bins, on log axes
    so tiny scores stay readable; bins without a positive sit on the floor as open triangles.
    Below: each bin's positives."""
    cal = evaluation.calibration
    bins = cal.bins
    fig = _figure(1, 1, 5.6, 6.2)
    ax, counts = fig.subplots(2, 1, height_ratios=[3, 1])
    predicted = np.array([b.mean_predicted or 0.0 for b in bins])
    observed = np.array([b.observed_rate or 0.0 for b in bins])
    floor = _log_floor(predicted, observed)
    top = 1.0
    ax.plot(
        [floor, top], [floor, top], linestyle=":", color="#9e9e9e", label="perfectly calibrated"
    )
    hit = observed > 0
    if hit.any():
        lower = np.array(
            [max(b.observed_interval[0], floor) if b.observed_interval else floor for b in bins]
        )
        upper = np.array([b.observed_interval[1] if b.observed_interval else 0 for b in bins])
        ax.errorbar(
            predicted[hit],
            observed[hit],
            yerr=[observed[hit] - lower[hit], upper[hit] - observed[hit]],
            marker="o",
            linestyle="none",
            capsize=3,
            color=_COLOURS["model"],
            label="quantile bin (95% interval)",
        )
    if (~hit).any():
        ax.scatter(
            np.maximum(predicted[~hit], floor),
            np.full(int((~hit).sum()), floor),
            marker="v",
            facecolors="none",
            edgecolors=_COLOURS["model"],
            label="bin with no positives",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, top)
    ax.set_ylim(floor, top)
    ax.set_xlabel("mean risk score in bin")
    ax.set_ylabel("observed positive rate")
    ax.set_title(
        f"reliability, {cal.inspected:,} inspected, {cal.positives:,} positive\n"
        f"Brier {fixed(cal.brier, 4)}, skill vs base rate {fixed(cal.brier_skill, 3)}"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="upper left")
    index = np.arange(1, len(bins) + 1)
    counts.bar(index, [b.positives for b in bins], color=_COLOURS["model"])
    counts.set_xticks(index)
    counts.set_xlabel(
        f"quantile bin, lowest scores first ({bins[0].count if bins else 0:,} shipments each)"
    )
    counts.set_ylabel("positives")
    _save(fig, path)


def _port_plot(evaluation: Evaluation, path: Path) -> None:
    """Every selector's precision at :data:`PORT_BUDGET` of each port, a row per port from the
    busiest down (at most :data:`PORT_PLOT_MAX`), the model with its interval; a port with no
    positives says so instead of showing a zero."""
    sources = evaluation.label_sources
    volume = evaluation.window["ports"]
    ports = sorted(evaluation.per_port, key=lambda p: (-volume[p], p))
    shown = ports[:PORT_PLOT_MAX]
    fig = _figure(1, len(sources), 5.2, 0.32 * len(shown) + 1.6)
    axes = fig.subplots(1, len(sources), squeeze=False, sharey=True)[0]
    y = np.arange(len(shown))[::-1]
    markers = {"model": "o", "random": "|", "rules": "s", "watchlist": "^"}
    for ax, src in zip(axes, sources, strict=True):
        top = max(_top(evaluation.per_port[p], src) for p in shown)
        for sel in SELECTORS:
            ms = [evaluation.per_port[p][PORT_BUDGET][sel][src] for p in shown]
            values = np.array([_value(m, "precision") for m in ms])
            low, high = _spread(ms, "precision", values)
            ax.errorbar(
                values,
                y,
                xerr=[low, high] if sel == "model" else None,
                marker=markers[sel],
                markersize=8 if sel == "random" else 5,
                linestyle="none",
                capsize=2,
                label=sel,
                color=_COLOURS[sel],
            )
        for row, port in zip(y, shown, strict=True):
            if evaluation.per_port[port][PORT_BUDGET]["model"][src].positives == 0:
                _mark_no_positives(ax, 0.02 * top, row)
        ax.set_yticks(y, [f"{p} ({volume[p]:,})" for p in shown])
        ax.set_xlim(0, top)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_xlabel(f"precision at {budget_label(PORT_BUDGET)} of the port's shipments")
        title = f"{src} labels{_few(evaluation, src)}"
        if len(shown) < len(ports):
            title += f"\n{len(shown)} busiest of {len(ports)} ports; all are in report.md"
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="x")
    _legend_below(fig, axes[0])
    _save(fig, path)


def _policy_plot(evaluation: Evaluation, path: Path) -> None:
    """Recall of the policy's RED lane beside the model alone, a row per port (busiest first,
    at most :data:`PORT_PLOT_MAX`) and all ports at the bottom."""
    sources = evaluation.label_sources
    policy = evaluation.policy
    ports = sorted(policy.per_port, key=lambda p: (-policy.per_port[p].shipments, p))
    rows: list[tuple[str, PolicyMetrics]] = [
        *((p, policy.per_port[p]) for p in ports[:PORT_PLOT_MAX]),
        ("all ports", policy.overall),
    ]
    fig = _figure(1, len(sources), 5.2, 0.36 * len(rows) + 1.6)
    axes = fig.subplots(1, len(sources), squeeze=False, sharey=True)[0]
    y = np.arange(len(rows))[::-1]
    height = 0.8 / len(_POLICY_COLOURS)
    for ax, src in zip(axes, sources, strict=True):
        series = {
            "policy": [m.red[src] for _, m in rows],
            "model, same count": [m.model_red[src] for _, m in rows],
            "model, at capacity": [m.model_capacity[src] for _, m in rows],
        }
        for i, (name, values) in enumerate(series.items()):
            ax.barh(
                y + (1 - i) * height,
                [_value(v, "recall") for v in values],
                height,
                label=name,
                color=_POLICY_COLOURS[name],
            )
        for row, (_, m) in zip(y, rows, strict=True):
            if m.red[src].positives == 0:
                _mark_no_positives(ax, 0.01, row)
        ax.set_yticks(y, [port for port, _ in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlabel("recall of the RED lane")
        ax.set_xlim(0, 1.02)
        ax.set_title(f"RED lane at each port's capacity\n{src} labels{_few(evaluation, src)}")
        ax.grid(alpha=0.3, axis="x")
    _legend_below(fig, axes[0])
    _save(fig, path)


# --------------------------------------------------------------------------- canvas and axes


def _figure(rows: int, cols: int, width: float, height: float) -> Figure:
    fig = Figure(figsize=(width * cols, height * rows), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})


def _value(m: BudgetMetrics, metric: str) -> float:
    value = m.precision if metric == "precision" else m.recall
    return float("nan") if value is None else value


def _spread(
    ms: list[BudgetMetrics], metric: str, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Error-bar lengths below and above ``values`` from each figure's interval (0 without)."""
    bounds = [m.precision_interval if metric == "precision" else m.recall_interval for m in ms]
    lower = np.array([b[0] if b else np.nan for b in bounds])
    upper = np.array([b[1] if b else np.nan for b in bounds])
    below = np.nan_to_num(np.clip(values - lower, 0, None))
    above = np.nan_to_num(np.clip(upper - values, 0, None))
    return below, above


def _legend_below(fig: Figure, ax: Axes) -> None:
    """One legend for every panel, below them, where it covers no row."""
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize="small")


def _few(evaluation: Evaluation, src: LabelSource) -> str:
    """A title suffix when ``src`` has too few positives for the figures to mean much."""
    if not evaluation.few_positives(src):
        return ""
    return f" (only {evaluation.positives(src)} positives: unreliable)"


def _log_floor(*arrays: np.ndarray) -> float:
    """The bottom of a log axis: a decade below the smallest positive value, in whole decades."""
    values = np.concatenate(arrays)
    values = values[values > 0]
    smallest = float(values.min()) if values.size else 1e-3
    return float(10 ** (np.floor(np.log10(min(smallest, 1e-2))) - 1))


def _top(table: BudgetTable, src: LabelSource) -> float:
    """A precision axis top: a little above the highest value or interval, never collapsed."""
    values = [
        max(m[src].precision or 0.0, (m[src].precision_interval or (0.0, 0.0))[1])
        for by_sel in table.values()
        for m in by_sel.values()
    ]
    return min(1.02, max(0.05, 1.1 * max(values, default=0.0)))


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Plot:
    """One PNG of the report: its fixed file name and the function that draws it."""

    file: str
    draw: Callable[[Evaluation, Path], None]


_PLOTS: dict[str, Plot] = {
    "precision": Plot("precision_at_budget.png", partial(_budget_plot, metric="precision")),
    "recall": Plot("recall_at_budget.png", partial(_budget_plot, metric="recall")),
    "pr": Plot("pr_curves.png", _pr_plot),
    "reliability": Plot("reliability.png", _reliability_plot),
    "ports": Plot("per_port_precision.png", _port_plot),
    "policy": Plot("policy_recall.png", _policy_plot),
}

PLOTS: dict[str, str] = {role: plot.file for role, plot in _PLOTS.items()}
"""The report's PNG files by role, in the order they are drawn."""


def _mark_no_positives(ax: Axes, x: float, row: float) -> None:
    """Say "no positives" on a bar's row, where a zero bar would read as zero precision."""
    ax.text(x, row, NO_POSITIVES, va="center", color="#757575", fontsize="small", style="italic")
