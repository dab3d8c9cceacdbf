"""``centinela drift``: the server's drift figures for a past window of the decision ledger.

The statistics are the live ones (:mod:`scoring.drift`: PSI with the bundle's fixed bins, the
no-history share, the watchlist-hit rate), computed over the decisions the ledger holds between
``--since`` and ``--until`` (by ``decided_at``; one decision per shipment id, its latest, as
``ledger export`` keeps them) instead of each port's rolling window, against the drift
reference of ``--model`` (default: the promoted bundle). Printed as a table, as JSON with
``--json``, and drawn as a PNG with ``--plot``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from features.errors import ConfigError
from scoring.drift import ALERT_PSI, DriftReference, PortDrift, payload_drift
from scoring.ledger import latest_decisions, read_contents
from scoring.registry import Registry
from training.cli_common import (
    console,
    json_option,
    ledger_location,
    ledger_option,
    path_option,
    print_json,
    registry_option,
    run,
    say,
)
from training.defaults import DRIFT_MIN_DECISIONS

MODERATE_PSI = 0.1


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not an ISO 8601 date or time (e.g. 2025-06-01 or "
            "2025-06-01T12:00:00Z)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _row(d: PortDrift, min_decisions: int) -> dict[str, Any]:
    return {
        "port": d.port,
        "decisions": d.decisions,
        "enough_decisions": d.decisions >= min_decisions,
        "psi": d.psi,
        "max_psi": max(d.psi.values()) if d.psi else None,
        "no_history_share": d.no_history_share,
        "watchlist_hit_rate": d.watchlist_hit_rate,
    }


def _cell(value: float | None) -> str:
    if value is None:
        return "—"  # no reference, or no decisions
    style = "bold red" if value > ALERT_PSI else "yellow" if value > MODERATE_PSI else "green"
    return f"[{style}]{value:.3f}[/]"


def _plot(path: Path, rows: list[dict[str, Any]], series: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [r for r in rows if r["psi"]]
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.55 * max(len(shown), 1) * max(len(series), 1) / 3))
    height = 0.8 / max(len(series), 1)
    y = np.arange(len(shown))
    for k, name in enumerate(series):
        values = [r["psi"].get(name, 0.0) for r in shown]
        ax.barh(y + k * height, values, height, label=name)
    ax.axvline(MODERATE_PSI, color="orange", linestyle="--", linewidth=1, label="0.1 moderate")
    ax.axvline(ALERT_PSI, color="red", linestyle="--", linewidth=1, label="0.25 alert")
    ax.set_yticks(y + height * (len(series) - 1) / 2)
    ax.set_yticklabels([f"{r['port']} (n={r['decisions']:,})" for r in shown])
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("population stability index (symlog scale)")
    ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _decisions_between(
    ledger: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """The ledger's latest decision of each shipment id decided in ``[start, end)`` (either
    bound may be open; a decision without a time is always in)."""
    decisions = []
    for d in latest_decisions(read_contents(ledger)).values():
        decided = _when(str(d.get("decided_at")), "decided_at")
        if (start is None or decided is None or decided >= start) and (
            end is None or decided is None or decided < end
        ):
            decisions.append(d)
    return decisions


def _print_drift(result: dict[str, Any]) -> None:
    """The drift figures of :func:`drift` as tables: each port's summary, then PSI by series."""
    window = f"{result['since'] or 'the first decision'} to {result['until'] or 'the last'}"
    model, models = result["model"], result["decided_by"]
    say(
        f"{result['decisions']:,} decisions from {window} against [bold]{model}[/]'s "
        f"training reference (PSI over {ALERT_PSI} is a major shift)"
    )
    if len(models) > 1 or (models and model not in models):
        decided_by = ", ".join(f"{v or '?'} ({n:,})" for v, n in models.items())
        say(f"decided by {decided_by}", err=True)
    rows = [*result["ports"], result["all"]]
    summary = Table("port", "decisions", "no history", "watchlist hits", "highest PSI")
    for row in rows:
        dim = "" if row["enough_decisions"] else "[dim]"
        summary.add_row(
            str(row["port"]),
            f"{row['decisions']:,}",
            f"{row['no_history_share']:.1%}",
            f"{row['watchlist_hit_rate']:.1%}",
            dim + _cell(row["max_psi"]) + (" (few decisions)" if dim else ""),
        )
    console.print(summary)
    if result["series"]:
        by_series = Table("PSI", *(str(r["port"]) for r in rows))
        for name in result["series"]:
            by_series.add_row(name, *(_cell(r["psi"].get(name)) for r in rows))
        console.print(by_series)


def drift(
    ledger: str = ledger_option("The ledger to read: a SQLite file or a postgresql:// URL."),
    model: str | None = typer.Option(
        None, "--model", help="Bundle whose reference to compare with (default: the promoted one)."
    ),
    registry: Path = registry_option("Model registry."),
    since: str | None = typer.Option(
        None, "--since", help="First decision time, ISO 8601 (UTC unless an offset is given)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Decisions before this time, ISO 8601 (UTC unless an offset)."
    ),
    min_decisions: int = typer.Option(
        DRIFT_MIN_DECISIONS,
        "--min-decisions",
        min=1,
        help="Decisions a port needs for its PSI to count (as the server's drift_min_decisions); "
        "fewer are shown dimmed and marked in JSON.",
    ),
    json_out: bool = json_option("every figure"),
    plot: Path | None = path_option("--plot", "Write a PNG chart of PSI by port."),
) -> None:
    """Drift of a past window of decisions against a model's training reference: PSI of the
    score and the model's top features per port, no-history share, watchlist-hit rate."""

    def body() -> None:
        start, end = _when(since, "--since"), _when(until, "--until")
        bundle = Registry(registry).load(model)
        reference = DriftReference.from_json(bundle.meta.drift)
        if reference is None:
            say(
                f"bundle {bundle.version} holds no drift reference (trained before drift "
                "figures existed): PSI is not computed; train a new bundle to get it",
                err=True,
            )
        decisions = _decisions_between(ledger, start, end)
        ports, overall = payload_drift(decisions, reference)
        result: dict[str, Any] = {
            "ledger": ledger_location(ledger),
            "model": bundle.version,
            "since": start.isoformat() if start else None,
            "until": end.isoformat() if end else None,
            "decisions": len(decisions),
            "decided_by": dict(
                sorted(Counter(str(d.get("model_version", "")) for d in decisions).items())
            ),
            "statistic": "psi",
            "alert_threshold": ALERT_PSI,
            "min_decisions": min_decisions,
            "series": list(reference.series) if reference is not None else [],
            "ports": [_row(d, min_decisions) for d in ports],
            "all": _row(overall, min_decisions),
        }
        if plot is not None:
            title = f"drift against {bundle.version}: {len(decisions):,} decisions"
            _plot(plot, [*result["ports"], result["all"]], result["series"], title)
        if json_out:
            print_json(result)
            return
        _print_drift(result)
        if plot is not None:
            say(f"plot written to {plot}", err=True)

    run(body)
