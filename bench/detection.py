"""Detection on simulated worlds: recall against ground truth over several worlds, side by side
with the rules and the watchlist of the same runs.

One world is one draw: on 300,000 shipments the evaluated window holds about 120 illicit
shipments and a dozen observed positives, so a figure of one world moves by several points from
one seed to the next. This bench simulates each world, trains on it and evaluates it as an
analyst does (``centinela simulate``, ``centinela train``, ``centinela evaluate --json``, as
subprocesses) and prints, per world and on average: recall at each budget against truth with
its 95% interval beside the rules' and the watchlist's, the pattern the model finds least of,
the recall lost across the tactic shift inside the window with its interval, and the Brier skill
against the base rate with the observed positives it rests on.

    .venv/bin/python -m bench.detection [--worlds 11,12,13,14,15] [--shipments 300000]
                                        [--seed 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from bench.measure import cli, cli_json

BUDGETS: Final[tuple[str, ...]] = ("0.005", "0.01", "0.02", "0.05")
HEADLINE: Final[str] = "0.02"
SELECTORS: Final[tuple[str, ...]] = ("model", "rules", "watchlist")


@dataclass(frozen=True)
class WorldFigures:
    """What one world's evaluation says against truth."""

    seed: int
    illicit: int
    recall: dict[str, dict[str, float]]
    """budget -> selector -> recall against truth"""
    interval: dict[str, list[float]]
    """budget -> the model's 95% recall interval"""
    lowest_pattern: str
    lowest_recall: float
    shift_in_window: bool
    shift_loss: float | None
    """recall before the shift minus after it; None without a shift or without positives on
    one side of it"""
    shift_interval: list[float] | None
    brier_skill: float | None
    brier_skill_interval: list[float] | None
    observed_positives: int


def measure_world(work: Path, seed: int, shipments: int, train_seed: int) -> WorldFigures:
    """Simulate world ``seed``, train with ``train_seed`` and evaluate; its figures."""
    world, registry = work / f"world-{seed}", work / f"registry-{seed}"
    cli("simulate", "--out", str(world), "--shipments", str(shipments), "--seed", str(seed))
    cli_json("train", "--data", str(world), "--registry", str(registry), "--seed",
             str(train_seed), "--promote")  # fmt: skip
    evaluated = cli_json("evaluate", "--data", str(world), "--registry", str(registry))
    return figures_of(seed, evaluated)


def figures_of(seed: int, evaluated: dict[str, Any]) -> WorldFigures:
    """The figures of one ``centinela evaluate --json`` of a simulated world."""
    budgets = evaluated["budgets"]
    recall = {b: {s: float(budgets[b][s]["truth"]["recall"]) for s in SELECTORS} for b in BUDGETS}
    interval = {b: list(budgets[b]["model"]["truth"]["recallInterval"]) for b in BUDGETS}
    patterns = {
        name: float(by_budget[HEADLINE]["model"]["recall"])
        for name, by_budget in evaluated["patterns"].items()
    }
    lowest = min(patterns, key=lambda name: (patterns[name], name))
    shift = evaluated["shift"]
    in_window = bool(shift.get("inWindow"))
    loss: dict[str, Any] = shift["recallLoss"][HEADLINE]["model"]["truth"] if in_window else {}
    measured = loss.get("loss") is not None
    calibration = evaluated["calibration"]
    return WorldFigures(
        seed=seed,
        illicit=int(evaluated["window"]["positives"]["truth"]),
        recall=recall,
        interval=interval,
        lowest_pattern=lowest,
        lowest_recall=patterns[lowest],
        shift_in_window=in_window,
        shift_loss=float(loss["loss"]) if measured else None,
        shift_interval=[float(x) for x in loss["interval"]] if measured else None,
        brier_skill=calibration["brierSkill"],
        brier_skill_interval=calibration.get("brierSkillInterval"),
        observed_positives=int(calibration["positives"]),
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def report(worlds: Sequence[WorldFigures], shipments: int, train_seed: int) -> str:
    """The table: one line per world, then the mean over the worlds."""
    lines = [
        f"{len(worlds)} world(s) of {shipments:,} shipments, training seed {train_seed}; "
        f"recall against truth at {float(HEADLINE):.0%} of the evaluated window",
        f"{'world':>6} {'illicit':>8} {'model':>7} {'95% interval':>15} {'rules':>7} "
        f"{'watchlist':>9} {'model/rules':>11}  {'lowest pattern':<32} {'shift loss (95%)':<26} "
        f"{'Brier skill [95%] (positives)':<22}",
    ]
    for w in worlds:
        r = w.recall[HEADLINE]
        low, high = w.interval[HEADLINE]
        ratio = f"{r['model'] / r['rules']:.2f}x" if r["rules"] else "n/a"
        if not w.shift_in_window:
            shift = "no shift in window"
        elif w.shift_loss is None or w.shift_interval is None:
            shift = "no positives on one side"
        else:
            shift = (
                f"{100 * w.shift_loss:+.1f} pts ({100 * w.shift_interval[0]:+.1f} to "
                f"{100 * w.shift_interval[1]:+.1f})"
            )
        skill = "n/a" if w.brier_skill is None else f"{w.brier_skill:.3f}"
        if w.brier_skill_interval is not None:
            low_skill, high_skill = w.brier_skill_interval
            skill += f" [{low_skill:.2f}, {high_skill:.2f}]"
        lines.append(
            f"{w.seed:>6} {w.illicit:>8} {_pct(r['model']):>7} "
            f"{_pct(low) + '-' + _pct(high):>15} {_pct(r['rules']):>7} {_pct(r['watchlist']):>9} "
            f"{ratio:>11}  {w.lowest_pattern + ' ' + _pct(w.lowest_recall):<32} {shift:<26} "
            f"{skill} ({w.observed_positives})"
        )
    mean = {s: float(np.mean([w.recall[HEADLINE][s] for w in worlds])) for s in SELECTORS}
    skills = [w.brier_skill for w in worlds if w.brier_skill is not None]
    losses = [w.shift_loss for w in worlds if w.shift_loss is not None]
    ratio = f"{mean['model'] / mean['rules']:.2f}x" if mean["rules"] else "n/a"
    lowest = "lowest " + _pct(min(w.lowest_recall for w in worlds))
    loss = f"{100 * float(np.mean(losses)):+.1f} pts" if losses else "n/a"
    skill = f"{float(np.mean(skills)):.3f}" if skills else "n/a"
    lines.append(
        f"{'mean':>6} {'':>8} {_pct(mean['model']):>7} {'':>15} {_pct(mean['rules']):>7} "
        f"{_pct(mean['watchlist']):>9} {ratio:>11}  {lowest:<32} {loss:<26} {skill}"
    )
    lines.append("model recall at every budget, per world: " + "; ".join(
        f"{w.seed}: " + " / ".join(_pct(w.recall[b]["model"]) for b in BUDGETS) for w in worlds
    ) + f" (budgets {', '.join(f'{float(b):.1%}' for b in BUDGETS)})")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__)
    parser.add_argument("--worlds", default="11,12,13,14,15", help="world seeds, comma-separated")
    parser.add_argument("--shipments", type=int, default=300_000, help="shipments per world")
    parser.add_argument("--seed", type=int, default=7, help="training seed (train's default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.worlds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--worlds {args.worlds!r}: give world seeds as integers, e.g. 11,12,13")
    if not seeds:
        parser.error("--worlds: give at least one world seed")
    with tempfile.TemporaryDirectory() as tmp:
        worlds = []
        for seed in seeds:
            print(f"world {seed}: simulate, train, evaluate", file=sys.stderr, flush=True)
            worlds.append(measure_world(Path(tmp), seed, args.shipments, args.seed))
    print(report(worlds, args.shipments, args.seed))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"shipments": args.shipments, "trainingSeed": args.seed,
                 "worlds": [asdict(w) for w in worlds]},
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )  # fmt: skip


if __name__ == "__main__":
    main()
