"""The evaluation report: ``report.md``, its PNG plots and ``evaluation.json``.

File names are fixed and nothing in them depends on the clock, so running the same evaluation
twice gives the same directory. Plots are drawn on Agg canvases directly (no ``pyplot``), so
writing a report never touches global matplotlib state or needs a display.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.evaluate import (
    BASELINES,
    BUDGET_KEYS,
    BUDGETS,
    RED_SOURCES,
    RULE_CHAPTERS,
    RULE_ORIGINS,
    SELECTORS,
    WATCHLIST_EVIDENCE,
    BudgetMetrics,
    BudgetTable,
    Evaluation,
    LabelSource,
    PolicyMetrics,
    Selector,
    precision_recall_curve,
    ranking,
)

REPORT_FILE = "report.md"
JSON_FILE = "evaluation.json"
PLOTS: dict[str, str] = {
    "precision": "precision_at_budget.png",
    "recall": "recall_at_budget.png",
    "pr": "pr_curves.png",
    "reliability": "reliability.png",
    "ports": "per_port_precision.png",
    "policy": "policy_recall.png",
}
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


def write_report(evaluation: Evaluation, directory: Path) -> dict[str, Path]:
    """Write every report file into ``directory``; returns them by role."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {"json": directory / JSON_FILE, "report": directory / REPORT_FILE}
    written["json"].write_text(
        json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for role, name in PLOTS.items():
        written[role] = directory / name
    _budget_plot(evaluation, "precision", written["precision"])
    _budget_plot(evaluation, "recall", written["recall"])
    _pr_plot(evaluation, written["pr"])
    _reliability_plot(evaluation, written["reliability"])
    _port_plot(evaluation, written["ports"])
    _policy_plot(evaluation, written["policy"])
    written["report"].write_text(markdown(evaluation), encoding="utf-8")
    return written


# --------------------------------------------------------------------------- Markdown


def markdown(evaluation: Evaluation) -> str:
    """The whole ``report.md``."""
    doc = evaluation.to_json()
    window = doc["window"]
    sources = evaluation.label_sources
    lines = [
        f"# Evaluation of model {doc['model']['version']}",
        "",
        f"Shipments declared after {window['after']} (the end of the model's validation window, "
        f"so none of them shaped the model): {window['shipments']:,} shipments from "
        f"{window['start']} to {window['end']}, {window['inspected']:,} inspected. Positives: "
        + ", ".join(f"{n:,} {src}" for src, n in window["positives"].items())
        + ".",
        "",
        "## Summary",
        "",
    ]
    if doc["model"]["watchlistVersion"] != doc["model"]["evaluatedWithWatchlist"]:
        lines += [
            f"**Note:** the model was trained with watchlist {doc['model']['watchlistVersion']} "
            f"and evaluated with {doc['model']['evaluatedWithWatchlist']}; its watchlist "
            "features, and the watchlist baseline, use the latter.",
            "",
        ]
    for src in sources:
        lines += _summary(evaluation.budgets, src)
    lines += [
        "## How shipments are selected and labelled",
        "",
        "A budget is a share of the window's shipments; the selector opens that many, rounded "
        "up, taking its highest-ranked shipments. Per port, the budget is that share of the "
        "port's own shipments.",
        "",
        "- **model**: highest risk score first.",
        "- **random**: selection at random. Its figures are *expected values computed "
        "analytically*, not a random draw: precision is the base rate, recall is the share "
        "selected, PR-AUC is the exact expectation over all orderings.",
        "- **rules**: a legacy rule score, one point each for a goods line in HS chapter "
        + "/".join(RULE_CHAPTERS)
        + ", an origin in "
        + ", ".join(RULE_ORIGINS)
        + ", and any transshipment (0 to 3 points).",
        "- **watchlist**: the watchlist matcher alone. Each goods line counts once at its "
        "strongest match type; shipments rank by those counts in the order "
        + " > ".join(f"`{t}`" for t in WATCHLIST_EVIDENCE)
        + "; shipments without hits rank last.",
        "",
        "Ties in any ranking are broken by a fixed hash of the shipment id, so every figure is "
        "reproducible.",
        "",
        "- **observed** labels are inspection outcomes. Shipments never inspected count as "
        "negative, which understates the precision of any selector that opens shipments the "
        "legacy policy did not; *precision among inspected* (selected shipments that were "
        "inspected) is reported beside it.",
    ]
    if "truth" in sources:
        lines.append(
            "- **truth** labels are the simulated world's ground truth (`truth.parquet`), "
            "known for every shipment."
        )
    else:
        lines.append("- **truth**: not reported; the data has no `truth.parquet`.")
    lines.append("")

    lines += ["## Precision and recall at each budget", ""]
    for src in sources:
        lines += [f"### {src.capitalize()} labels", ""]
        lines += _budget_table(evaluation.budgets, src)
        if src == "observed":
            lines += ["Precision among inspected shipments only:", ""]
            lines += _inspected_table(evaluation.budgets)
    lines += [
        f"![precision at budget]({PLOTS['precision']})",
        "",
        f"![recall at budget]({PLOTS['recall']})",
        "",
    ]

    lines += ["## PR-AUC (average precision over the whole ranking)", ""]
    lines += [
        "| selector | " + " | ".join(sources) + " |",
        "|---|" + "---:|" * len(sources),
    ]
    for sel in SELECTORS:
        lines.append(
            f"| {sel} | " + " | ".join(_pct(doc["prAuc"][sel].get(src)) for src in sources) + " |"
        )
    lines += ["", f"![PR curves]({PLOTS['pr']})", ""]

    lines += [f"## Per port (budget {_budget_label(PORT_BUDGET)} of each port's shipments)", ""]
    for src in sources:
        lines += [f"### {src.capitalize()} labels", ""]
        lines += _port_table(evaluation, src)
    lines += [
        "Every budget per port is in `evaluation.json` under `perPort`.",
        "",
        f"![per-port precision]({PLOTS['ports']})",
        "",
    ]

    lines += _policy_section(evaluation)

    cal = doc["calibration"]
    lines += [
        "## Calibration (model, observed labels, inspected shipments only)",
        "",
        f"{cal['inspected']:,} inspected shipments, {cal['positives']:,} positive. "
        f"Brier score: {_num(cal['brier'], 4)}.",
        "",
        "| bin | shipments | mean risk score | observed positive rate |",
        "|---|---:|---:|---:|",
    ]
    for b in cal["bins"]:
        lines.append(
            f"| {b['lower']:.1f}–{b['upper']:.1f} | {b['count']:,} | "
            f"{_num(b['meanPredicted'], 4)} | {_num(b['observedRate'], 4)} |"
        )
    lines += ["", f"![reliability diagram]({PLOTS['reliability']})", ""]

    shift = evaluation.shift
    lines += [
        "## Before and after the tactic shift",
        "",
        f"Split at {shift.at.isoformat()} ({shift.source}). Budgets are shares of each part's "
        f"own shipments: {shift.before.shipments:,} before, {shift.after.shipments:,} after.",
        "",
    ]
    for src in sources:
        lines += [f"### {src.capitalize()} labels", ""]
        lines += _shift_table(evaluation, src)
    return "\n".join(lines).rstrip() + "\n"


def _summary(table: BudgetTable, src: LabelSource) -> list[str]:
    lines = [f"With **{src}** labels:", ""]
    for key in BUDGET_KEYS:
        by_sel = table[key]
        model = by_sel["model"][src].precision
        if model is None:
            lines.append(f"- budget {_budget_label(key)}: no shipments selected.")
            continue
        if by_sel["model"][src].positives == 0:
            lines.append(f"- budget {_budget_label(key)}: no positives in the window to find.")
            continue
        points = {b: _diff(model, by_sel[b][src].precision) for b in BASELINES}
        ratios = {b: _lift(model, by_sel[b][src].precision) for b in BASELINES}
        if all(p > 0 for p in points.values()):
            worst = min(BASELINES, key=lambda b: points[b])
            lines.append(
                f"- budget {_budget_label(key)}: the model beats every baseline by at least "
                f"{points[worst] * 100:.1f} points / {ratios[worst]} (closest: {worst}); "
                f"model precision {_pct(model)}."
            )
        else:
            lines.append(
                f"- budget {_budget_label(key)}: the model (precision {_pct(model)}) does not "
                "beat every baseline: "
                + ", ".join(
                    f"{b} {'matches' if points[b] == 0 else 'beats'} it "
                    f"({_pct(by_sel[b][src].precision)})"
                    for b in BASELINES
                    if points[b] <= 0
                )
                + "."
            )
        lines.append(
            "  Lift over "
            + "; ".join(f"{b}: {points[b] * 100:+.1f} points, {ratios[b]}" for b in BASELINES)
            + "."
        )
    lines.append("")
    return lines


def _budget_table(table: BudgetTable, src: LabelSource) -> list[str]:
    head = "| budget | selected | " + " | ".join(f"{s} precision | {s} recall" for s in SELECTORS)
    lines = [head + " |", "|---|---:|" + "---:|---:|" * len(SELECTORS)]
    for key in BUDGET_KEYS:
        cells = [_budget_label(key), f"{table[key]['model'][src].selected:,}"]
        for sel in SELECTORS:
            m = table[key][sel][src]
            cells += [_pct(m.precision), _pct(m.recall)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _inspected_table(table: BudgetTable) -> list[str]:
    lines = [
        "| budget | " + " | ".join(f"{s} (inspected / precision)" for s in SELECTORS) + " |",
        "|---|" + "---:|" * len(SELECTORS),
    ]
    for key in BUDGET_KEYS:
        cells = [_budget_label(key)]
        for sel in SELECTORS:
            m = table[key][sel]["observed"]
            cells.append(f"{_num(m.inspected_selected, 1)} / {_pct(m.precision_inspected)}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _port_table(evaluation: Evaluation, src: LabelSource) -> list[str]:
    lines = [
        "| port | shipments | positives | selected | "
        + " | ".join(f"{s} precision | {s} recall" for s in SELECTORS)
        + " |",
        "|---|---:|---:|---:|" + "---:|---:|" * len(SELECTORS),
    ]
    counts = evaluation.window["ports"]
    for port, table in evaluation.per_port.items():
        row = table[PORT_BUDGET]
        cells = [
            port,
            f"{counts[port]:,}",
            f"{row['model'][src].positives:,}",
            f"{row['model'][src].selected:,}",
        ]
        for sel in SELECTORS:
            cells += [_pct(row[sel][src].precision), _pct(row[sel][src].recall)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _policy_section(evaluation: Evaluation) -> list[str]:
    policy = evaluation.policy
    lines = [
        "## The policy at each port's capacity",
        "",
        "The whole decision policy, run as the server would (model, hard rules "
        f"{policy.rules_version}, each port's lane budget and exploration with seed "
        f"{policy.exploration_seed}), over every shipment in declared order; the figures are the "
        "evaluated window's. *RED budget* is the port's RED share in the settings and *capacity* "
        "the REDs it allows (rounded up); *RED share* is what the policy realised. Each RED is "
        "counted once, for "
        + ", then ".join(f"*{s}*" for s in RED_SOURCES)
        + ": a hard rule with lane RED fired, else it was a random exploration pick, else the "
        "model's score sent it.",
        "",
        "*Model alone* opens, at each port, its highest-scored shipments, as many as the policy "
        "sent RED there (the same number of containers); *model at capacity* opens exactly the "
        "port's capacity. The row *all ports* adds up the ports. Everything is in "
        "`evaluation.json` under `policy`.",
        "",
    ]
    rows = [*policy.per_port.items(), ("**all ports**", policy.overall)]
    for src in evaluation.label_sources:
        lines += [f"### {src.capitalize()} labels, RED lane", ""]
        lines += [
            "| port | shipments | positives | RED budget | capacity | RED | RED share | "
            "rules / exploration / model | policy precision | policy recall | "
            "model alone precision | model alone recall | "
            "model at capacity precision | model at capacity recall |",
            "|---|" + "---:|" * 13,
        ]
        for port, m in rows:
            cells = [
                port,
                f"{m.shipments:,}",
                f"{m.red[src].positives:,}",
                _pct(m.red_budget),
                f"{m.capacity:,}",
                f"{m.lanes['red']:,}",
                _pct(m.red_share),
                " / ".join(f"{m.red_by[s]:,}" for s in RED_SOURCES),
                *_pr(m.red[src]),
                *_pr(m.model_red[src]),
                *_pr(m.model_capacity[src]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"### {src.capitalize()} labels, RED and YELLOW (selected)", ""]
        lines += [
            "| port | YELLOW budget | RED+YELLOW | share | policy precision | policy recall | "
            "model alone precision | model alone recall |",
            "|---|" + "---:|" * 7,
        ]
        for port, m in rows:
            cells = [
                port,
                _pct(m.yellow_budget),
                f"{m.lanes['red'] + m.lanes['yellow']:,}",
                _pct(m.selected_share),
                *_pr(m.selected[src]),
                *_pr(m.model_selected[src]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"![policy recall at capacity]({PLOTS['policy']})", ""]
    return lines


def _pr(m: BudgetMetrics) -> list[str]:
    return [_pct(m.precision), _pct(m.recall)]


def _shift_table(evaluation: Evaluation, src: LabelSource) -> list[str]:
    parts = (("before", evaluation.shift.before), ("after", evaluation.shift.after))
    lines = [
        "| budget | part | positives | "
        + " | ".join(f"{s} precision | {s} recall" for s in SELECTORS)
        + " |",
        "|---|---|---:|" + "---:|---:|" * len(SELECTORS),
    ]
    for key in BUDGET_KEYS:
        for name, segment in parts:
            cells = [_budget_label(key), name, f"{segment.positives.get(src, 0):,}"]
            for sel in SELECTORS:
                m = segment.budgets[key][sel][src]
                cells += [_pct(m.precision), _pct(m.recall)]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- plots


def _figure(rows: int, cols: int, width: float, height: float) -> Figure:
    fig = Figure(figsize=(width * cols, height * rows), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})


def _budget_plot(evaluation: Evaluation, metric: str, path: Path) -> None:
    sources = evaluation.label_sources
    fig = _figure(1, len(sources), 5.0, 3.8)
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    x = np.arange(len(BUDGETS))
    for ax, src in zip(axes, sources, strict=True):
        for sel in SELECTORS:
            values = [_value(evaluation.budgets[k][sel][src], metric) for k in BUDGET_KEYS]
            ax.plot(x, values, marker="o", label=sel, color=_COLOURS[sel])
        ax.set_xticks(x, [_budget_label(k) for k in BUDGET_KEYS])
        ax.set_xlabel("inspection budget (share of shipments)")
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.02 if metric == "recall" else _top(evaluation.budgets, src))
        ax.set_title(f"{metric} at budget, {src} labels")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save(fig, path)


def _pr_plot(evaluation: Evaluation, path: Path) -> None:
    sources = evaluation.label_sources
    frame = evaluation.frame
    fig = _figure(1, len(sources), 5.0, 4.0)
    axes = fig.subplots(1, len(sources), squeeze=False)[0]
    for ax, src in zip(axes, sources, strict=True):
        y = frame[src].to_numpy().astype(np.int64)
        ax.set_title(f"precision-recall, {src} labels")
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
            label = f"{sel} (AP {_num(auc, 3)})"
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
        f"reliability, inspected shipments (Brier {_num(evaluation.calibration.brier, 4)})"
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
        ax.set_title(f"precision at {_budget_label(PORT_BUDGET)} of each port, {src} labels")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small", ncols=len(SELECTORS))
    _save(fig, path)


def _policy_plot(evaluation: Evaluation, path: Path) -> None:
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
            ax.text(
                0.5,
                0.5,
                "no positives in the window",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.legend(fontsize="small", ncols=len(series))
    _save(fig, path)


# --------------------------------------------------------------------------- formatting


def _value(m: BudgetMetrics, metric: str) -> float:
    value = m.precision if metric == "precision" else m.recall
    return float("nan") if value is None else value


def _top(table: BudgetTable, src: LabelSource) -> float:
    """A y-axis top for precision: a little above the highest value, never a collapsed axis."""
    values = [m[src].precision or 0.0 for by_sel in table.values() for m in by_sel.values()]
    return min(1.02, max(0.05, 1.1 * max(values, default=0.0)))


def _diff(model: float, baseline: float | None) -> float:
    return model - (baseline or 0.0)


def _lift(model: float, baseline: float | None) -> str:
    if baseline:
        return f"{model / baseline:.1f}×"
    return "∞× (baseline found none)" if model > 0 else "— (neither found any)"


def _budget_label(key: str) -> str:
    return f"{float(key) * 100:g}%"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
