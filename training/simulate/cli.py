"""``centinela simulate``: write a simulated world (and optionally its calibration report)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from features.errors import FieldViolation, InvalidInput
from training.cli_common import console, run


def parse_flags(shipments: int, months: int, start: str) -> date:
    """Check the flags together so one message names every bad one."""
    violations: list[FieldViolation] = []
    if shipments < 1:
        violations.append(FieldViolation("--shipments", f"must be at least 1, got {shipments}"))
    if months < 1:
        violations.append(FieldViolation("--months", f"must be at least 1, got {months}"))
    parsed: date | None = None
    try:
        parsed = date.fromisoformat(start)
    except ValueError:
        violations.append(FieldViolation("--start", f"expected a date YYYY-MM-DD, got {start!r}"))
    if violations or parsed is None:
        raise InvalidInput("invalid flags", violations)
    return parsed


def simulate(
    out: Path = typer.Option(..., "--out", help="Directory to write the four tables into."),
    shipments: int = typer.Option(20000, "--shipments", help="Number of shipments."),
    months: int = typer.Option(24, "--months", help="Length of the window in months."),
    start: str = typer.Option("2024-01-01", "--start", help="First day, YYYY-MM-DD."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives the same files."),
    report: bool = typer.Option(False, "--report", help="Also write the calibration report."),
    illicit_scale: float = typer.Option(
        1.0,
        "--illicit-scale",
        help="Multiply every smuggling pattern's rate (1: the sourced rates); a denser world "
        "for experiments with few shipments. Its manifest records the factor.",
    ),
) -> None:
    """Simulate inbound cargo, its inspections and its ground truth."""

    def body() -> None:
        from training.simulate import simulate_world
        from training.simulate.report import calibration_report

        first_day = parse_flags(shipments, months, start)
        summary = simulate_world(
            out,
            shipments=shipments,
            months=months,
            start=first_day,
            seed=seed,
            progress=True,
            illicit_scale=illicit_scale,
        )
        console.print(
            f"wrote {summary.rows['shipments']:,} shipments, {summary.rows['goods']:,} goods "
            f"lines, {summary.inspected:,} inspections, {summary.illicit:,} illicit to {out}"
        )
        if report:
            path = calibration_report(out)
            console.print(f"report: {path}")

    run(body)


if __name__ == "__main__":
    typer.run(simulate)
