"""The evaluation report: ``report.md``, its PNG plots and ``evaluation.json``.

The report reads an :class:`~training.evaluation_record.Evaluation` (what
:func:`training.evaluate.evaluate` returns) and computes nothing of its own. File names are
fixed and nothing in them depends on the clock, so running the same evaluation twice gives the
same directory. ``report.md`` is built section by section (:data:`_SECTIONS`); the plots are
:mod:`training.evaluation_plots`'.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from training.evaluation_baselines import RULE_CHAPTERS, RULE_ORIGINS, WATCHLIST_EVIDENCE
from training.evaluation_format import budget_label, fixed, percent
from training.evaluation_plots import PLOTS, PORT_BUDGET, draw_plots
from training.evaluation_record import (
    BASELINES,
    BUDGET_KEYS,
    RED_SOURCES,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    BySelector,
    Evaluation,
    LabelSource,
    PolicyMetrics,
    json_value,
)

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
    """Per label source and budget: does the model beat every baseline, and by how much."""
    lines = []
    for src in evaluation.label_sources:
        lines += [f"With **{src}** labels:", ""]
        lines += [line for key in BUDGET_KEYS for line in _budget_summary(evaluation, key, src)]
        lines.append("")
    return lines


def _budget_summary(evaluation: Evaluation, key: str, src: LabelSource) -> list[str]:
    by_sel = evaluation.budgets[key]
    model = by_sel["model"][src].precision
    if model is None:
        return [f"- budget {budget_label(key)}: no shipments selected."]
    if by_sel["model"][src].positives == 0:
        return [f"- budget {budget_label(key)}: no positives in the window to find."]
    points = {b: _diff(model, by_sel[b][src].precision) for b in BASELINES}
    ratios = {b: _lift(model, by_sel[b][src].precision) for b in BASELINES}
    if all(p > 0 for p in points.values()):
        worst = min(BASELINES, key=lambda b: points[b])
        verdict = (
            f"- budget {budget_label(key)}: the model beats every baseline by at least "
            f"{points[worst] * 100:.1f} points / {ratios[worst]} (closest: {worst}); "
            f"model precision {percent(model)}."
        )
    else:
        verdict = (
            f"- budget {budget_label(key)}: the model (precision {percent(model)}) does not "
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
        lines += [_source_heading(src), ""]
        lines += _selector_table(
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
    ``evaluation.json`` has it."""
    sources = evaluation.label_sources
    auc = json_value(evaluation.pr_auc)
    rows = [_row([sel, *(percent(auc[sel].get(src)) for src in sources)]) for sel in SELECTORS]
    return [
        "## PR-AUC (average precision over the whole ranking)",
        "",
        _row(["selector", *sources]),
        "|---|" + "---:|" * len(sources),
        *rows,
        "",
        f"![PR curves]({PLOTS['pr']})",
        "",
    ]


def _ports(evaluation: Evaluation) -> list[str]:
    """Every selector at :data:`PORT_BUDGET` of each port, per label source."""
    lines = [f"## Per port (budget {budget_label(PORT_BUDGET)} of each port's shipments)", ""]
    counts = evaluation.window["ports"]
    for src in evaluation.label_sources:
        lines += [_source_heading(src), ""]
        lines += _selector_table(
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
        lines += [f"{_source_heading(src)}, RED lane", ""]
        lines += _red_lane_table(rows, src)
        lines += ["", f"{_source_heading(src)}, RED and YELLOW (selected)", ""]
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
            *_pr(m.red[src]),
            *_pr(m.model_red[src]),
            *_pr(m.model_capacity[src]),
        ]
        lines.append(_row(cells))
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
            *_pr(m.selected[src]),
            *_pr(m.model_selected[src]),
        ]
        lines.append(_row(cells))
    return lines


def _calibration(evaluation: Evaluation) -> list[str]:
    """The model's Brier score and reliability table on inspected shipments, as
    ``evaluation.json`` has them."""
    cal = evaluation.calibration.to_json()
    return [
        "## Calibration (model, observed labels, inspected shipments only)",
        "",
        f"{cal['inspected']:,} inspected shipments, {cal['positives']:,} positive. "
        f"Brier score: {fixed(cal['brier'], 4)}.",
        "",
        "| bin | shipments | mean risk score | observed positive rate |",
        "|---|---:|---:|---:|",
        *(
            f"| {b['lower']:.1f}–{b['upper']:.1f} | {b['count']:,} | "
            f"{fixed(b['meanPredicted'], 4)} | {fixed(b['observedRate'], 4)} |"
            for b in cal["bins"]
        ),
        "",
        f"![reliability diagram]({PLOTS['reliability']})",
        "",
    ]


def _shift(evaluation: Evaluation) -> list[str]:
    """Every selector at every budget before and after the tactic shift, per label source."""
    shift = evaluation.shift
    parts = (("before", shift.before), ("after", shift.after))
    lines = [
        "## Before and after the tactic shift",
        "",
        f"Split at {shift.at.isoformat()} ({shift.source}). Budgets are shares of each part's "
        f"own shipments: {shift.before.shipments:,} before, {shift.after.shipments:,} after.",
        "",
    ]
    for src in evaluation.label_sources:
        lines += [_source_heading(src), ""]
        lines += _selector_table(
            ["budget", "part", "positives"],
            "llr",
            (
                (
                    [budget_label(key), name, f"{part.positives.get(src, 0):,}"],
                    part.budgets[key],
                )
                for key in BUDGET_KEYS
                for name, part in parts
            ),
            src,
        )
    return lines


_SECTIONS: tuple[Callable[[Evaluation], list[str]], ...] = (
    _header,
    _summary,
    _method,
    _budgets,
    _pr_auc,
    _ports,
    _policy,
    _calibration,
    _shift,
)
"""The sections of ``report.md``, in order."""


# --------------------------------------------------------------------------- tables


def _selector_table(
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
    lines = [_row([*head, *(f"{s} precision | {s} recall" for s in SELECTORS)]), "|" + rule]
    for cells, by_selector in rows:
        lines.append(_row([*cells, *(c for s in SELECTORS for c in _pr(by_selector[s][src]))]))
    return [*lines, ""]


def _inspected_table(table: BudgetTable) -> list[str]:
    lines = [
        _row(["budget", *(f"{s} (inspected / precision)" for s in SELECTORS)]),
        "|---|" + "---:|" * len(SELECTORS),
    ]
    for key in BUDGET_KEYS:
        cells = [budget_label(key)]
        for sel in SELECTORS:
            m = table[key][sel]["observed"]
            cells.append(f"{fixed(m.inspected_selected, 1)} / {percent(m.precision_inspected)}")
        lines.append(_row(cells))
    return [*lines, ""]


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pr(m: BudgetMetrics) -> list[str]:
    return [percent(m.precision), percent(m.recall)]


def _source_heading(src: LabelSource) -> str:
    return f"### {src.capitalize()} labels"


# --------------------------------------------------------------------------- figures in words


def _diff(model: float, baseline: float | None) -> float:
    return model - (baseline or 0.0)


def _lift(model: float, baseline: float | None) -> str:
    if baseline:
        return f"{model / baseline:.1f}×"
    return "∞× (baseline found none)" if model > 0 else "— (neither found any)"
