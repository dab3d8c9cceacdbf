"""The sections of ``report.md`` that hold the model to what really happened: calibration
against outcomes, recall of each illicit pattern against ground truth, and recall across a
tactic shift. Each reads an :class:`~training.evaluation_record.Evaluation` and computes nothing.
"""

from __future__ import annotations

from training.evaluation_format import (
    bracketed,
    budget_label,
    fixed,
    percent,
    points,
    probability,
    row,
    selector_table,
    source_heading,
    with_interval,
)
from training.evaluation_plots import PLOTS, PORT_BUDGET
from training.evaluation_record import (
    BUDGET_KEYS,
    MIN_POSITIVES,
    SELECTORS,
    Evaluation,
    LabelSource,
    Segment,
    Shift,
)

RANKED = tuple(s for s in SELECTORS if s != "random")


def calibration_section(evaluation: Evaluation) -> list[str]:
    """Brier score and its skill over the base rate, and the quantile reliability table."""
    cal = evaluation.calibration
    skill = cal.brier_skill
    verdict = (
        "no skill can be measured"
        if skill is None
        else "the scores beat the base rate"
        if skill > 0
        else "the scores do no better than the base rate"
    )
    lines = [
        "## Calibration (model, observed labels, inspected shipments only)",
        "",
        f"{cal.inspected:,} inspected shipments, {cal.positives:,} positive. Brier score "
        f"{fixed(cal.brier, 4)}; the base-rate predictor (every shipment at the observed rate) "
        f"scores {fixed(cal.brier_base, 4)}, so the Brier skill (1 − Brier / base) is "
        f"{fixed(skill, 3)}{bracketed(cal.brier_skill_interval)}: {verdict}.",
        "",
        "Bins are quantiles: each holds the same number of inspected shipments, so the table "
        "shows where the scores actually fall. Scores are the model's probability of a positive "
        "inspection; a bin is calibrated when its observed rate (95% interval in brackets) "
        "matches its mean score.",
        "",
    ]
    if cal.positives < MIN_POSITIVES:
        lines += [
            f"**Warning:** only {cal.positives:,} positive inspections (fewer than "
            f"{MIN_POSITIVES}): most bins hold none, and the observed rates say little.",
            "",
        ]
    lines += [
        "| bin | score range | shipments | positives | mean risk score | observed rate |",
        "|---:|---|---:|---:|---:|---:|",
        *(
            row(
                [
                    str(i + 1),
                    f"{probability(b.lower)} – {probability(b.upper)}",
                    f"{b.count:,}",
                    f"{b.positives:,}",
                    probability(b.mean_predicted),
                    with_interval(b.observed_rate, b.observed_interval),
                ]
            )
            for i, b in enumerate(cal.bins)
        ),
        "",
        f"![reliability diagram]({PLOTS['reliability']})",
        "",
    ]
    return lines


def pattern_section(evaluation: Evaluation) -> list[str]:
    """Recall of each illicit pattern at every budget, against ground truth."""
    lines = ["## Recall by illicit pattern (truth labels)", ""]
    patterns = evaluation.patterns
    if patterns is None:
        return [
            *lines,
            "Not reported: the data names no illicit patterns (no `pattern` column in "
            "`truth.parquet`).",
            "",
        ]
    if not patterns:
        return [*lines, "No true positives in the evaluated window.", ""]
    lines += [
        "How much of each pattern's true positives the model finds at each budget of the whole "
        "window (95% intervals). A pattern with few positives has a wide interval.",
        "",
        row(["pattern", "positives", *(f"model at {budget_label(k)}" for k in BUDGET_KEYS)]),
        "|---|---:|" + "---:|" * len(BUDGET_KEYS),
    ]
    for name, by_budget in patterns.items():
        first = by_budget[BUDGET_KEYS[0]]["model"]
        cells = [
            with_interval(by_budget[k]["model"].recall, by_budget[k]["model"].interval)
            for k in BUDGET_KEYS
        ]
        lines.append(row([name, f"{first.positives:,}", *cells]))
    lines += [
        "",
        f"Every selector at {budget_label(PORT_BUDGET)}:",
        "",
        row(["pattern", *(f"{s} recall" for s in SELECTORS)]),
        "|---|" + "---:|" * len(SELECTORS),
        *(
            row(
                [
                    name,
                    *(
                        with_interval(b[PORT_BUDGET][s].recall, b[PORT_BUDGET][s].interval)
                        for s in SELECTORS
                    ),
                ]
            )
            for name, b in patterns.items()
        ),
        "",
    ]
    for key in (PORT_BUDGET, BUDGET_KEYS[-1]):
        missed = [n for n, b in patterns.items() if b[key]["model"].found == 0]
        lines.append(
            f"Patterns the model finds none of at {budget_label(key)}: "
            + (", ".join(f"**{n}**" for n in missed) if missed else "none")
            + "."
        )
    return [*lines, ""]


def shift_section(evaluation: Evaluation) -> list[str]:
    """Recall across the tactic shift inside the window, or a plain statement that there is
    none."""
    shift = evaluation.shift
    lines = ["## Before and after a tactic shift", ""]
    known = [
        f"- {s['date'][:10]}: {s['name']}{' **(inside the window)**' if s['inWindow'] else ''}"
        for s in shift.shifts
    ]
    known = ["Known shifts:", "", *known, ""] if known else []
    if shift.at is None or shift.before is None or shift.after is None:
        return [
            *lines,
            f"**No tactic shift falls inside the evaluated window**: {shift.source}. No "
            "before/after comparison is made; halves of an unshifted window would compare "
            "nothing.",
            "",
            *known,
        ]
    before, after = shift.before, shift.after
    lines += [
        f"Split at {shift.at.isoformat()} ({shift.source}). Budgets are shares of each part's "
        f"own shipments: {before.shipments:,} before, {after.shipments:,} after.",
        "",
        *known,
    ]
    for src in evaluation.label_sources:
        lines += [source_heading(src), "", *_few_sides(before, after, src)]
        lines += _loss_table(shift, src)
        lines += selector_table(
            ["budget", "part", "positives"],
            "llr",
            (
                ([budget_label(key), name, f"{part.positives.get(src, 0):,}"], part.budgets[key])
                for key in BUDGET_KEYS
                for name, part in (("before", before), ("after", after))
            ),
            src,
        )
    return lines


def _few_sides(before: Segment, after: Segment, src: LabelSource) -> list[str]:
    few = [
        f"{name} ({part.positives.get(src, 0):,})"
        for name, part in (("before", before), ("after", after))
        if part.positives.get(src, 0) < MIN_POSITIVES
    ]
    if not few:
        return []
    return [
        f"**Warning:** fewer than {MIN_POSITIVES} {src} positives " + " and ".join(few) + ": the "
        "loss below is mostly interval.",
        "",
    ]


def _loss_table(shift: Shift, src: LabelSource) -> list[str]:
    """Recall before → after and the loss (before minus after) with its interval."""
    loss = shift.recall_loss or {}
    lines = [
        "Recall lost across the shift (before minus after, 95% interval; positive is a loss):",
        "",
        row(["budget", *(f"{s} recall before → after | {s} loss" for s in RANKED)]),
        "|---|" + "---:|---:|" * len(RANKED),
    ]
    for key in BUDGET_KEYS:
        cells = [budget_label(key)]
        for sel in RANKED:
            r = loss[key][sel][src]
            cells += [f"{percent(r.before)} → {percent(r.after)}", points(r.loss, r.interval)]
        lines.append(row(cells))
    return [*lines, ""]
