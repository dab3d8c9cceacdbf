"""``centinela models compare``: judge a challenger off-policy on the ledger's live traffic, end
in the gate's verdict, and keep it beside the challenger (see :mod:`training.compare` for what
is measured and :mod:`training.gate` for the checks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from features.errors import FailedPrecondition
from training.cli_common import (
    REGISTRY_OPTION,
    config_option,
    console,
    date_option,
    json_option,
    ledger_option,
    path_option,
    print_json,
    read_settings,
    run,
    say,
)
from training.defaults import DATA_DIR

if TYPE_CHECKING:
    from scoring.verdict import GateVerdict
    from training.compare import Judgement
    from training.periods import Period


def models_compare(
    challenger: str = typer.Argument(..., help="Bundle version to judge, e.g. v0004."),
    against: str | None = typer.Option(
        None, "--against", metavar="VERSION", help="Champion (default: the promoted bundle)."
    ),
    ledger: str = ledger_option(
        "The ledger of live traffic: a SQLite file or a postgresql:// URL."
    ),
    data: Path = typer.Option(
        DATA_DIR, "--data", help="The historical tables the ledger's traffic follows."
    ),
    registry: Path = REGISTRY_OPTION,
    config: Path | None = config_option(
        "Settings file: the lane budgets (each port's RED capacity), watchlist and rules."
    ),
    since: datetime | None = date_option(
        "--from", "Judge only traffic declared on or after DATE (always after both fitted windows)."
    ),
    until: datetime | None = date_option(
        "--until", "Judge only traffic declared on or before DATE."
    ),
    replicates: int = typer.Option(
        1000, "--replicates", min=100, help="Bootstrap replicates of each interval."
    ),
    selections: Path | None = path_option(
        "--selections",
        "Write the judged traffic with what each bundle would have opened (Parquet).",
    ),
    json_out: bool = json_option("every figure"),
) -> None:
    """Estimate what CHALLENGER would have caught on the ledger's traffic beside the champion,
    and give the promotion gate's verdict (kept for models promote)."""

    def body() -> None:
        from training.periods import Period, as_date

        period = Period(as_date(since), as_date(until)) if since or until else None
        judged = _judged(challenger, against, ledger, data, registry, config, period, replicates)
        if selections is not None:
            judged.judgement.selections().write_parquet(selections)
        _report(judged, json_out)

    run(body)


@dataclass(frozen=True)
class _Judged:
    judgement: Judgement
    verdict: GateVerdict


def _judged(
    challenger: str,
    against: str | None,
    ledger: str,
    data: Path,
    registry: Path,
    config: Path | None,
    period: Period | None,
    replicates: int,
) -> _Judged:
    """Measure, judge, and keep the verdict beside the challenger (its card follows)."""
    from features.watchlist import load_watchlist
    from scoring.ledger import open_store
    from scoring.rules import load_rules
    from scoring.scorer import Scorer
    from training.compare import judge
    from training.gate import verdict
    from training.model_card import carded_registry
    from training.red_team import table_i_cases, table_i_recall

    settings = read_settings(config)
    reg = carded_registry(registry)
    champion = against or reg.promoted()
    if champion is None:
        raise FailedPrecondition(
            f"nothing is promoted in {registry} to compare {challenger} against: name a "
            "champion with --against, or promote a first model with --force --reason"
        )
    bundles = reg.load(challenger), reg.load(champion)
    watchlist = load_watchlist(settings.watchlist_file)
    judgement = judge(
        *bundles,
        data_dir=data,
        ledger=ledger,
        watchlist=watchlist,
        settings=settings,
        period=period,
        replicates=replicates,
    )
    rules, cases = load_rules(settings.rules_file, watchlist), table_i_cases(watchlist)
    table_i = (
        table_i_recall(Scorer.create(bundles[0], watchlist, rules, settings), cases),
        table_i_recall(Scorer.create(bundles[1], watchlist, rules, settings), cases),
    )
    where = open_store(ledger).location  # a URL without its password
    decided = verdict(challenger, champion, judgement, table_i, evidence=f"ledger {where}")
    reg.save_verdict(challenger, decided)
    return _Judged(judgement, decided)


def _report(judged: _Judged, json_out: bool) -> None:
    decided = judged.verdict
    if json_out:
        print_json({"verdict": decided.to_json()})
        return
    console.print(str(judged.judgement.comparisons), markup=False, highlight=False)
    console.print(f"champion's live RED decisions: {judged.judgement.realised.overall.line()}")
    console.print(f"[bold]verdict: {decided.summary()}[/]")
    for check in decided.checks:
        mark = "[green]pass[/]" if check.passed else "[bold red]fail[/]"
        console.print(f"  {mark} {check.name}: {check.detail}", highlight=False)
    if not decided.passed:
        say(f"models promote {decided.challenger} will refuse it (exit 6)")
