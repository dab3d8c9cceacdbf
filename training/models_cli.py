"""``centinela models``: list, promote, roll back and describe the bundles of a registry.

``promote`` goes through the gate: a bundle is promoted only when its verdict
(``centinela models compare``, kept as the bundle's ``gate.json``) passed against the bundle
promoted now. Otherwise it exits 6 naming why (no verdict, a failed one with each failed check,
or a stale one), unless ``--force --reason TEXT`` overrides it, which the promotion log keeps.
Every promotion and rollback is logged with who did it and why (``models log``), and rewrites
the model cards it concerns (``models card``).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markdown import Markdown
from rich.table import Table

from features.errors import CentinelaError, InvalidInput
from scoring.registry import Registry
from training import compare_cli
from training.cli_common import (
    REGISTRY_OPTION,
    console,
    err_console,
    json_option,
    print_json,
    run,
    say,
)
from training.model_card import carded_registry, describe_entry, gate_stamp, render_card

app = typer.Typer(
    help="List, compare, promote, roll back and describe model bundles; the promotion log.",
    no_args_is_help=True,
)
app.command("compare")(compare_cli.models_compare)

BY_OPTION = typer.Option(
    None, "--by", metavar="NAME", help="Who does it, for the promotion log (default: the OS user)."
)


def default_user() -> str:
    """The OS user running the command, as the promotion log names it."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no password entry for the uid
        return f"uid {os.getuid()}"


def gate_status(registry: Registry, version: str) -> tuple[str, dict[str, Any] | None]:
    """``version``'s verdict for people and as JSON: not judged, passed or failed against its
    champion, stale when that is no longer the promoted bundle, or unreadable."""
    try:
        verdict = registry.verdict(version)
    except CentinelaError as error:
        return "unreadable gate.json", {"error": error.message}
    if verdict is None:
        return "not judged", None
    stale = verdict.champion != registry.promoted() and registry.promoted() != version
    against = verdict.champion or "empty registry"
    text = f"{'passed' if verdict.passed else 'failed'} vs {against}" + (" (stale)" * stale)
    return text, {
        "passed": verdict.passed,
        "champion": verdict.champion,
        "decidedAt": verdict.decided_at.isoformat(),
        "evidence": verdict.evidence,
        "stale": stale,
    }


@app.command("list")
def models_list(
    registry: Path = REGISTRY_OPTION,
    json_out: bool = json_option("the list"),
) -> None:
    """List the bundles in the registry: the promoted one is marked, and each one's verdict."""

    def body() -> None:
        reg = Registry(registry)
        rows = []
        for entry in reg.entries():
            meta = reg.meta(entry.version)
            status, gate = gate_status(reg, entry.version)
            rows.append(
                {
                    "version": entry.version,
                    "promoted": entry.promoted,
                    "trainedAt": meta.trained_at.isoformat(),
                    "watchlistVersion": meta.watchlist_version,
                    "metrics": meta.metrics,
                    "gate": gate,
                    "gateStatus": status,
                }
            )
        if json_out:
            print_json(rows)
            return
        table = Table("version", "promoted", "trained at", "watchlist", "test PR-AUC", "gate")
        for row in rows:
            table.add_row(
                str(row["version"]),
                "●" if row["promoted"] else "",
                str(row["trainedAt"])[:19],
                str(row["watchlistVersion"]),
                f"{row['metrics'].get('test_pr_auc', float('nan')):.4f}",  # type: ignore[attr-defined]
                str(row["gateStatus"]),
            )
        console.print(table)

    run(body)


@app.command("promote")
def models_promote(
    version: str = typer.Argument(..., help="Bundle version, e.g. v0003."),
    registry: Path = REGISTRY_OPTION,
    force: bool = typer.Option(
        False,
        "--force",
        help="Promote although the gate refuses (no verdict, a failed or a stale one); needs "
        "--reason, and the promotion log keeps both.",
    ),
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Why, for the promotion log."
    ),
    by: str | None = BY_OPTION,
) -> None:
    """Make VERSION the bundle that servers load, if its gate verdict passed against the bundle
    promoted now (exit 6 and the reasons when it did not)."""
    if force and not (reason or "").strip():
        raise typer.BadParameter(
            "--force needs --reason TEXT saying why the gate is overridden", param_hint="--reason"
        )

    def body() -> None:
        reg = carded_registry(registry)
        if reg.promoted() == version:
            say(f"{version} is already promoted; nothing to do")
            return
        if not force:
            reg.check_gate(version)
        reg.load(version)  # refuse to promote a bundle that would not load
        verdict = reg.verdict(version)
        why = reason or (f"gate verdict {verdict.summary()}" if verdict else "")
        entry = reg.promote(version, by=by or default_user(), reason=why, forced=force)
        how = f"forced: {entry.reason}" if entry.forced else f"gate {gate_stamp(entry)}"
        say(f"promoted {version} ({how}); servers load it on Admin/ReloadModel")

    run(body)


@app.command("rollback")
def models_rollback(
    registry: Path = REGISTRY_OPTION,
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Why, for the promotion log."
    ),
    by: str | None = BY_OPTION,
) -> None:
    """Return to the previously promoted bundle."""

    def body() -> None:
        entry = carded_registry(registry).rollback(
            by=by or default_user(), reason=reason or "not given (no --reason)"
        )
        say(f"rolled back from {entry.replaced}; {entry.version} is promoted")

    run(body)


@app.command("log")
def models_log(
    registry: Path = REGISTRY_OPTION,
    json_out: bool = json_option("the log"),
) -> None:
    """The promotion log: every promotion and rollback, oldest first, one a line: when, what,
    by whom, whether forced past the gate and on which verdict, and why."""

    def body() -> None:
        entries = Registry(registry).promotion_log()
        if json_out:
            print_json([e.to_json() for e in entries])
            return
        if not entries:
            say(f"no promotions logged in {registry}")
        for e in entries:
            tags = ["forced"] if e.forced else []
            if e.action == "promote":
                tags.append(gate_stamp(e))
            bracket = f" [{'; '.join(tags)}]" if tags else ""
            console.print(
                f"{e.at.isoformat(timespec='seconds')}  {describe_entry(e)} by {e.by}{bracket}: "
                f"{e.reason}",
                markup=False,
                highlight=False,
            )

    run(body)


@app.command("card")
def models_card(
    version: str = typer.Argument(..., help="Bundle version, e.g. v0003."),
    registry: Path = REGISTRY_OPTION,
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the card (Markdown) to FILE instead."
    ),
) -> None:
    """VERSION's model card, rendered now: what it was trained on, its figures, its blind spots,
    its gate verdict and who promoted it and why."""

    def body() -> None:
        text = render_card(Registry(registry), version)
        if out is not None:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as error:
                raise InvalidInput(
                    f"{out}: cannot write the card ({error.strerror or error})"
                ) from None
            err_console.print(f"card of {version} written to {out}", markup=False)
        elif console.is_terminal:
            console.print(Markdown(text))
        else:
            sys.stdout.write(text)

    run(body)
