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

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.evaluation_format import budget_label, fixed
from training.evaluation_metrics import labels, precision_recall_curve, ranking
from training.evaluation_record import (
    BUDGET_KEYS,
    BUDGETS,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    Evaluation,
    LabelSource,
    PolicyMetrics,
    Selector,
)

PORT_BUDGET = "0.02"
"""The budget of the per-port chart: the share of shipments lanes send RED by default."""

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
_NO_POSITIVES = "no positives in the window"


def draw_plots(evaluation: Evaluation, directory: Path) -> dict[str, Path]:
    """Draw every plot of :data:`PLOTS` into ``directory``; returns their paths by role."""
    written = {}
    for role, plot in _PLOTS.items():
        written[role] = directory / plot.file
        plot.draw(evaluation, written[role])
    return written


# --------------------------------------------------------------------------- the plots


def _budget_plot(evaluation: Evaluation, path: Path, metric: str) -> None:
    """``metric`` of every selector at each budget, one panel per label source."""
    sources = evaluation.label_sources
    fig = _figure(1, len(sources), 5.0, 3.8)
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    x = np.arange(len(BUDGETS))
    for ax, src in zip(axes, sources, strict=True):
        for sel in SELECTORS:
            values = [_value(evaluation.budgets[k][sel][src], metric) for k in BUDGET_KEYS]
            ax.plot(x, values, marker="o", label=sel, color=_COLOURS[sel])
        ax.set_xticks(x, [budget_label(k) for k in BUDGET_KEYS])
        ax.set_xlabel("inspection budget (share of shipments)")
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.02 if metric == "recall" else _top(evaluation.budgets, src))
        ax.set_title(f"{metric} at budget, {src} labels")
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
        ax.set_title(f"precision-recall, {src} labels")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if y.sum() == 0:
            ax.text(0.5, 0.5, _NO_POSITIVES, ha="center", va="center")
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
    """The model's reliability diagram on inspected shipments, with the bins' counts below."""
    bins = evaluation.calibration.bins
    fig = _figure(1, 1, 5.0, 5.0)
    ax, counts = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], linestyle=":", color="#9e9e9e", label="perfectly calibrated")
    filled = [b for b in bins if b.count]
    ax.plot(
        [b.mean_predicted for b in filled],
        [b.observed_rate for b in filled],
        marker="o",
        color=_COLOURS["model"],
        label="model",
    )
    ax.set_ylabel("observed positive rate")
    ax.set_ylim(0, 1.02)
    ax.set_title(
        f"reliability, inspected shipments (Brier {fixed(evaluation.calibration.brier, 4)})"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    centres = [(b.lower + b.upper) / 2 for b in bins]
    counts.bar(centres, [b.count for b in bins], width=0.09, color=_COLOURS["model"])
    counts.set_xlim(0, 1)
    counts.set_xlabel("risk score")
    counts.set_ylabel("shipments")
    _save(fig, path)


def _port_plot(evaluation: Evaluation, path: Path) -> None:
    """Every selector's precision at :data:`PORT_BUDGET` of each port, per label source."""
    sources = evaluation.label_sources
    ports = list(evaluation.per_port)
    fig = _figure(len(sources), 1, max(6.0, 0.8 * len(ports) + 2), 3.4)
    axes = fig.subplots(len(sources), 1, squeeze=False)[:, 0]
    x = np.arange(len(ports))
    width = 0.8 / len(SELECTORS)
    for ax, src in zip(axes, sources, strict=True):
        for i, sel in enumerate(SELECTORS):
            values = [
                _value(evaluation.per_port[p][PORT_BUDGET][sel][src], "precision") for p in ports
            ]
            ax.bar(x + (i - 1.5) * width, values, width, label=sel, color=_COLOURS[sel])
        ax.set_xticks(x, ports, rotation=45, ha="right")
        ax.set_ylabel("precision")
        ax.set_ylim(0, max(_top(t, src) for t in evaluation.per_port.values()))
        ax.set_title(f"precision at {budget_label(PORT_BUDGET)} of each port, {src} labels")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small", ncols=len(SELECTORS))
    _save(fig, path)


def _policy_plot(evaluation: Evaluation, path: Path) -> None:
    """Recall of the policy's RED lane beside the model alone, per port and overall."""
    sources = evaluation.label_sources
    policy = evaluation.policy
    rows: list[tuple[str, PolicyMetrics]] = [*policy.per_port.items(), ("all", policy.overall)]
    fig = _figure(len(sources), 1, max(6.0, 0.9 * len(rows) + 2), 3.4)
    axes = fig.subplots(len(sources), 1, squeeze=False)[:, 0]
    x = np.arange(len(rows))
    width = 0.8 / len(_POLICY_COLOURS)
    for ax, src in zip(axes, sources, strict=True):
        series = {
            "policy": [m.red[src] for _, m in rows],
            "model, same count": [m.model_red[src] for _, m in rows],
            "model, at capacity": [m.model_capacity[src] for _, m in rows],
        }
        for i, (name, values) in enumerate(series.items()):
            ax.bar(
                x + (i - 1) * width,
                [_value(v, "recall") for v in values],
                width,
                label=name,
                color=_POLICY_COLOURS[name],
            )
        ax.set_xticks(x, [port for port, _ in rows], rotation=45, ha="right")
        ax.set_ylabel("recall")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"recall of the RED lane at each port's capacity, {src} labels")
        ax.grid(alpha=0.3, axis="y")
        if policy.overall.red[src].positives == 0:
            ax.text(0.5, 0.5, _NO_POSITIVES, ha="center", va="center", transform=ax.transAxes)
        ax.legend(fontsize="small", ncols=len(series))
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


def _top(table: BudgetTable, src: LabelSource) -> float:
    """A y-axis top for precision: a little above the highest value, never a collapsed axis."""
    values = [m[src].precision or 0.0 for by_sel in table.values() for m in by_sel.values()]
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
