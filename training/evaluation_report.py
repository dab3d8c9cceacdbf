"""The evaluation report: ``report.md``, its PNG plots and ``evaluation.json``.

The report reads an :class:`~training.evaluation_record.Evaluation` (what
:func:`training.evaluate.evaluate` returns) and computes nothing of its own. File names are
fixed and nothing in them depends on the clock, so running the same evaluation twice gives the
same directory. ``report.md`` is built section by section (:data:`_SECTIONS`); the plots are
:mod:`training.evaluation_plots`'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from training.evaluation_baselines import RULE_CHAPTERS, RULE_ORIGINS, WATCHLIST_EVIDENCE
from training.evaluation_format import (
    budget_label,
    fixed,
    percent,
    pr_cells,
    row,
    selector_table,
    source_heading,
    with_interval,
)
from training.evaluation_plots import PLOTS, PORT_BUDGET, draw_plots
from training.evaluation_record import (
    BASELINES,
    BUDGET_KEYS,
    MIN_POSITIVES,
    RED_SOURCES,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    Evaluation,
    LabelSource,
    PolicyMetrics,
    json_value,
)
from training.evaluation_sections import calibration_section, pattern_section, shift_section

__all__ = ["JSON_FILE", "PLOTS", "PORT_BUDGET", "REPORT_FILE", "markdown", "write_report"]

REPORT_FILE = "report.md"
JSON_FILE = "evaluation.json"


def write_report(evaluation: Evaluation, directory: Path) -> dict[str, Path]:
    """Write every report file into ``directory``; returns them by role."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {"json": directory / JSON_FILE, "report": directory / REPORT_FILE}
    written["json"].write_text(
        json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    written |= draw_plots(evaluation, directory)
    written["report"].write_text(markdown(evaluation), encoding="utf-8")
    return written


def markdown(evaluation: Evaluation) -> str:
    """The whole ``report.md``: every section of :data:`_SECTIONS`, in order."""
    lines = [line for section in _SECTIONS for line in section(evaluation)]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- sections


def _header(evaluation: Evaluation) -> list[str]:
    """The title, what was evaluated, and a note when the watchlists differ."""
    model, window = evaluation.model, evaluation.window
    lines = [
        f"# Evaluation of model {model['version']}",
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
    if model["watchlistVersion"] != model["evaluatedWithWatchlist"]:
        lines += [
            f"**Note:** the model was trained with watchlist {model['watchlistVersion']} "
            f"and evaluated with {model['evaluatedWithWatchlist']}; its watchlist "
            "features, and the watchlist baseline, use the latter.",
            "",
        ]
    return lines


def _summary(evaluation: Evaluation) -> list[str]:
    """Warnings first; then per label source and budget: does the model beat every baseline,
    and by how much (no ratio when the positives are too few to carry one)."""
    lines = [f"**Warning:** {warning}." for warning in evaluation.warnings]
    lines += [""] if lines else []
    for src in evaluation.label_sources:
        lines += [f"With **{src}** labels ({evaluation.positives(src):,} positives):", ""]
        few = evaluation.few_positives(src)
        for key in BUDGET_KEYS:
            lines += (
                _few_summary(evaluation, key, src) if few else _budget_summary(evaluation, key, src)
            )
        lines.append("")
    return lines


def _few_summary(evaluation: Evaluation, key: str, src: LabelSource) -> list[str]:
    """One budget's counts and intervals, with no comparison: too few positives for one."""
    m = evaluation.budgets[key]["model"][src]
    if m.positives == 0:
        return [f"- budget {budget_label(key)}: no positives in the window to find."]
    precision, recall = pr_cells(m)
    return [
        f"- budget {budget_label(key)}: the model found {m.positives_found:,.0f} of "
        f"{m.positives:,} positives in {m.selected:,} selected (precision {precision}, "
        f"recall {recall}); too few positives for a ratio."
    ]


def _budget_summary(evaluation: Evaluation, key: str, src: LabelSource) -> list[str]:
    by_sel = evaluation.budgets[key]
    m = by_sel["model"][src]
    model = m.precision
    if model is None:
        return [f"- budget {budget_label(key)}: no shipments selected."]
    shown = with_interval(model, m.precision_interval)
    points = {b: _diff(model, by_sel[b][src].precision) for b in BASELINES}
    ratios = {b: _lift(model, by_sel[b][src].precision) for b in BASELINES}
    if all(p > 0 for p in points.values()):
        worst = min(BASELINES, key=lambda b: points[b])
        verdict = (
            f"- budget {budget_label(key)}: the model beats every baseline by at least "
            f"{points[worst] * 100:.1f} points / {ratios[worst]} (closest: {worst}); "
            f"model precision {shown}{_overlap(m, by_sel[worst][src], worst)}."
        )
    else:
        verdict = (
            f"- budget {budget_label(key)}: the model (precision {shown}) does not "
            "beat every baseline: "
            + ", ".join(
                f"{b} {'matches' if points[b] == 0 else 'beats'} it "
                f"({percent(by_sel[b][src].precision)})"
                for b in BASELINES
                if points[b] <= 0
            )
            + "."
        )
    lift = "; ".join(f"{b}: {points[b] * 100:+.1f} points, {ratios[b]}" for b in BASELINES)
    return [verdict, f"  Lift over {lift}."]


def _overlap(model: BudgetMetrics, baseline: BudgetMetrics, name: str) -> str:
    """A warning when the model's precision interval reaches down into the baseline's."""
    mine, theirs = model.precision_interval, baseline.precision_interval
    if mine is None or theirs is None or mine[0] > theirs[1]:
        return ""
    return (
        f", but its interval overlaps that of {name} ({with_interval(baseline.precision, theirs)})"
    )


def _method(evaluation: Evaluation) -> list[str]:
    """How selectors select and what the label sources mean."""
    lines = [
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
        "Figures in brackets are 95% bootstrap intervals over shipments (percentile, 500 "
        "Bayesian-bootstrap resamples with a Jeffreys half-shipment, fixed seed; "
        "`training/evaluation_intervals.py`): how far the figure could move on another sample "
        "of the same traffic. The selection is held fixed. With fewer than "
        f"{MIN_POSITIVES} positives against a label source the report gives no ratio to random "
        "or the baselines and marks PR-AUC unreliable. A precision reads *no positives* where "
        "there was nothing to find, never as zero.",
        "",
        "- **observed** labels are inspection outcomes. Shipments never inspected count as "
        "negative, which understates the precision of any selector that opens shipments the "
        "legacy policy did not; *precision among inspected* (selected shipments that were "
        "inspected) is reported beside it.",
    ]
    if "truth" in evaluation.label_sources:
        lines.append(
            "- **truth** labels are the simulated world's ground truth (`truth.parquet`), "
            "known for every shipment."
        )
    else:
        lines.append("- **truth**: not reported; the data has no `truth.parquet`.")
    return [*lines, ""]


def _budgets(evaluation: Evaluation) -> list[str]:
    """Precision and recall of every selector at every budget, per label source."""
    lines = ["## Precision and recall at each budget", ""]
    for src in evaluation.label_sources:
        lines += [source_heading(src), ""]
        lines += selector_table(
            ["budget", "selected"],
            "lr",
            (
                (
                    [budget_label(key), f"{evaluation.budgets[key]['model'][src].selected:,}"],
                    evaluation.budgets[key],
                )
                for key in BUDGET_KEYS
            ),
            src,
        )
        if src == "observed":
            lines += ["Precision among inspected shipments only:", ""]
            lines += _inspected_table(evaluation.budgets)
    return [
        *lines,
        f"![precision at budget]({PLOTS['precision']})",
        "",
        f"![recall at budget]({PLOTS['recall']})",
        "",
    ]


def _pr_auc(evaluation: Evaluation) -> list[str]:
    """Average precision of every selector's whole ranking, per label source, as
    ``evaluation.json`` has it; marked unreliable against a source with too few positives."""
    sources = evaluation.label_sources
    auc = json_value(evaluation.pr_auc)
    mark = {s: " (unreliable)" if evaluation.few_positives(s) else "" for s in sources}
    rows = [
        row([sel, *(percent(auc[sel].get(src)) + mark[src] for src in sources)])
        for sel in SELECTORS
    ]
    notes = [
        f"PR-AUC against {src} labels rests on {evaluation.positives(src):,} positives "
        f"(fewer than {MIN_POSITIVES}): one more or one fewer found near the top moves it "
        "by a lot; it is shown, not to be compared."
        for src in sources
        if mark[src]
    ]
    return [
        "## PR-AUC (average precision over the whole ranking)",
        "",
        row(["selector", *sources]),
        "|---|" + "---:|" * len(sources),
        *rows,
        "",
        *(line for note in notes for line in (note, "")),
        f"![PR curves]({PLOTS['pr']})",
        "",
    ]


def _ports(evaluation: Evaluation) -> list[str]:
    """Every selector at :data:`PORT_BUDGET` of each port, per label source."""
    lines = [
        f"## Per port (budget {budget_label(PORT_BUDGET)} of each port's shipments)",
        "",
        "*no positives*: the port had nothing to find in the window, so its precision says "
        "nothing about any selector (it is `null` with `reason` in `evaluation.json`).",
        "",
    ]
    counts = evaluation.window["ports"]
    for src in evaluation.label_sources:
        lines += [source_heading(src), ""]
        lines += selector_table(
            ["port", "shipments", "positives", "selected"],
            "lrrr",
            (
                (
                    [
                        port,
                        f"{counts[port]:,}",
                        f"{table[PORT_BUDGET]['model'][src].positives:,}",
                        f"{table[PORT_BUDGET]['model'][src].selected:,}",
                    ],
                    table[PORT_BUDGET],
                )
                for port, table in evaluation.per_port.items()
            ),
            src,
        )
    return [
        *lines,
        "Every budget per port is in `evaluation.json` under `perPort`.",
        "",
        f"![per-port precision]({PLOTS['ports']})",
        "",
    ]


def _policy(evaluation: Evaluation) -> list[str]:
    """The decision policy at each port's capacity: its RED lane and RED+YELLOW, per source."""
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
        lines += [f"{source_heading(src)}, RED lane", ""]
        lines += _red_lane_table(rows, src)
        lines += ["", f"{source_heading(src)}, RED and YELLOW (selected)", ""]
        lines += _selected_table(rows, src)
        lines.append("")
    return [*lines, f"![policy recall at capacity]({PLOTS['policy']})", ""]


def _red_lane_table(rows: list[tuple[str, PolicyMetrics]], src: LabelSource) -> list[str]:
    lines = [
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
            percent(m.red_budget),
            f"{m.capacity:,}",
            f"{m.lanes['red']:,}",
            percent(m.red_share),
            " / ".join(f"{m.red_by[s]:,}" for s in RED_SOURCES),
            *pr_cells(m.red[src]),
            *pr_cells(m.model_red[src]),
            *pr_cells(m.model_capacity[src]),
        ]
        lines.append(row(cells))
    return lines


def _selected_table(rows: list[tuple[str, PolicyMetrics]], src: LabelSource) -> list[str]:
    lines = [
        "| port | YELLOW budget | RED+YELLOW | share | policy precision | policy recall | "
        "model alone precision | model alone recall |",
        "|---|" + "---:|" * 7,
    ]
    for port, m in rows:
        cells = [
            port,
            percent(m.yellow_budget),
            f"{m.lanes['red'] + m.lanes['yellow']:,}",
            percent(m.selected_share),
            *pr_cells(m.selected[src]),
            *pr_cells(m.model_selected[src]),
        ]
        lines.append(row(cells))
    return lines


_SECTIONS: tuple[Callable[[Evaluation], list[str]], ...] = (
    _header,
    _summary,
    _method,
    _budgets,
    _pr_auc,
    _ports,
    _policy,
    calibration_section,
    pattern_section,
    shift_section,
)
"""The sections of ``report.md``, in order."""


# --------------------------------------------------------------------------- tables


def _inspected_table(table: BudgetTable) -> list[str]:
    lines = [
        row(["budget", *(f"{s} (inspected / precision)" for s in SELECTORS)]),
        "|---|" + "---:|" * len(SELECTORS),
    ]
    for key in BUDGET_KEYS:
        cells = [budget_label(key)]
        for sel in SELECTORS:
            m = table[key][sel]["observed"]
            shown = with_interval(m.precision_inspected, m.precision_inspected_interval)
            cells.append(
                f"{fixed(m.inspected_selected, 1)} / {shown if m.positives else 'no positives'}"
            )
        lines.append(row(cells))
    return [*lines, ""]


# --------------------------------------------------------------------------- figures in words


def _diff(model: float, baseline: float | None) -> float:
    return model - (baseline or 0.0)


def _lift(model: float, baseline: float | None) -> str:
    if baseline:
        return f"{model / baseline:.1f}×"
    return "∞× (baseline found none)" if model > 0 else "— (neither found any)"
