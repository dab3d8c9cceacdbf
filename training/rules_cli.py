"""``centinela rules``: check a hard-rules file before it ships.

Analysts run ``validate`` after editing the rules, before the file reaches a service, where a
mistake would surface only as a log line. Every problem is printed with its line in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from features.watchlist import load_watchlist
from scoring.rules import PACKAGED_FILE, load_rules
from training.cli_common import json_option, packaged_file_argument, print_json, run, say

app = typer.Typer(help="Check the hard-rules file that forces inspection lanes.")


@app.callback()
def rules() -> None:
    """Check the hard-rules file that forces inspection lanes.

    A callback keeps ``validate`` a subcommand: typer would otherwise fold a one-command app into
    the command itself, and ``centinela rules validate FILE`` must read the same standalone.
    """


@app.command()
def validate(
    file: Annotated[Path | None, packaged_file_argument("rules")] = None,
    watchlist_file: Annotated[
        Path | None,
        typer.Option(
            "--watchlist", help="Watchlist YAML the rules refer to; default: the packaged one."
        ),
    ] = None,
    as_json: bool = json_option("the result"),
) -> None:
    """Validate a rules file: OK with version and rule count, or each problem with its line."""

    def body() -> None:
        watchlist = load_watchlist(watchlist_file)
        rules = load_rules(file, watchlist)
        lanes = {lane: sum(1 for r in rules.rules if r.lane == lane) for lane in ("red", "yellow")}
        if as_json:
            print_json(
                {
                    "version": rules.version,
                    "rules": [{"id": r.id, "lane": r.lane} for r in rules.rules],
                    "watchlistVersion": watchlist.version,
                }
            )
            return
        say(
            f"[bold green]OK[/] {file or PACKAGED_FILE}: version {rules.version}, "
            f"{len(rules.rules)} rules ({lanes['red']} red, {lanes['yellow']} yellow), "
            f"checked against watchlist {watchlist.version}"
        )

    run(body)


if __name__ == "__main__":
    app()
