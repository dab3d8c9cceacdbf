"""The analysts' commands of ``centinela``: simulate, train, evaluate, score, drift, models,
watchlist, ledger and rules.

``train`` and ``evaluate`` live here; the others come from their own modules
(:mod:`training.simulate.cli`, :mod:`training.score_cli`, :mod:`training.drift_cli`,
:mod:`training.models_cli`, :mod:`training.watchlist_cli`, :mod:`training.ledger_cli`,
:mod:`training.rules_cli`).
:mod:`server.cli` adds ``serve`` and ``certs`` to this same :data:`app`. Every command runs its
body through :func:`training.cli_common.run` so errors read the same everywhere.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from features.tables import Folded
from scoring.registry import Registry
from training import (
    drift_cli,
    ledger_cli,
    models_cli,
    retrain_cli,
    rules_cli,
    score_cli,
    watchlist_cli,
)
from training.cli_common import (
    REGISTRY_OPTION,
    TrainOption,
    config_option,
    console,
    date_option,
    err_console,
    json_option,
    path_option,
    print_json,
    progress_bar,
    read_settings,
    run,
    say,
)
from training.simulate.cli import simulate
from training.train_output import print_training

if TYPE_CHECKING:
    from training.evaluation_record import Evaluation
    from training.periods import Period

app = typer.Typer(
    name="centinela",
    help="Centinela: fentanyl and precursor risk scoring for inbound cargo.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("simulate", help="Generate a simulated world of manifests and outcomes.")(simulate)
app.command("score", help="Decide a lane for every shipment of a table, as the server would.")(
    score_cli.score
)
app.command(
    "drift", help="Drift of a past window of the ledger against a model's training reference."
)(drift_cli.drift)
app.add_typer(watchlist_cli.app, name="watchlist")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(rules_cli.app, name="rules")

app.add_typer(models_cli.app, name="models")
app.command("retrain", help="Train a challenger on the history plus the ledger; never promoted.")(
    retrain_cli.retrain
)

MAPPING_OPTION = typer.Option(
    None,
    "--mapping",
    help="Mapping file (YAML) that turns your own declaration table in DATA into the "
    "canonical tables; see docs/mapping.md.",
)


def _canonical_data(data: Path, mapping: Path | None) -> Path:
    """DATA itself, or with ``--mapping`` the canonical tables mapped from it (the mapping's
    summary goes to stderr)."""
    if mapping is None:
        return data
    from training.mapping import mapped_data

    mapped = mapped_data(data, mapping)
    err_console.print(mapped.summary(), markup=False, highlight=False, soft_wrap=True)
    return mapped.out_dir


@app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Directory with the canonical tables."),
    mapping: Path | None = MAPPING_OPTION,
    registry: Path = REGISTRY_OPTION,
    seed: int = TrainOption.SEED,
    promote: bool = typer.Option(
        False, "--promote", help="Promote the new bundle (the first bundle is always promoted)."
    ),
    propensity_weights: bool = TrainOption.PROPENSITY_WEIGHTS,
    balance: bool = typer.Option(
        False, "--balance", help="Up-weight positives by the square root of the class imbalance."
    ),
    train_until: datetime | None = TrainOption.TRAIN_UNTIL,
    valid_until: datetime | None = TrainOption.VALID_UNTIL,
    params: Path | None = TrainOption.PARAMS,
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS",
        help="Boost on a Dask cluster: a scheduler's ADDRESS (tcp://host:port), or local:N for "
        "N local worker processes. Features are built here as always; needs the dask extra.",
    ),
    json_out: bool = json_option("the result"),
) -> None:
    """Train a model on DATA with a time-based split and add it to the registry."""
    from training.periods import as_date
    from training.train import train
    from training.train_dask import DaskTarget
    from training.train_settings import DateSplit, load_train_settings

    def body() -> None:
        split = DateSplit.from_options(as_date(train_until), as_date(valid_until))
        settings = load_train_settings(params)
        cluster = None if dask is None else DaskTarget.parse(dask).check_installed()
        data_dir = _canonical_data(data, mapping)
        with progress_bar("[bold]training", "rounds", disable=json_out) as progress:
            task = progress.add_task("train", total=None)

            def on_round(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = train(
                data_dir,
                registry,
                seed=seed,
                promote=True if promote else None,
                propensity_weights=propensity_weights,
                balance=balance,
                on_round=on_round,
                settings=settings,
                split=split,
                dask=cluster,
                promoted_by=f"{models_cli.default_user()} (centinela train)",
            )
        print_training(result, json_out)

    run(body)


@app.command("evaluate")
def evaluate_command(
    data: Path = typer.Option(..., "--data", help="Directory with the canonical tables."),
    mapping: Path | None = MAPPING_OPTION,
    model: str | None = typer.Option(
        None, "--model", help="Bundle version to evaluate (default: the promoted one)."
    ),
    registry: Path = REGISTRY_OPTION,
    report: Path | None = path_option(
        "--report", "Write report.md, PNG plots and evaluation.json into this directory."
    ),
    config: Path | None = config_option(
        "Settings file for the policy at capacity: lane budgets, exploration seed, rules "
        "and watchlist files (as for score and serve)."
    ),
    since: datetime | None = date_option(
        "--from", "Evaluate only shipments declared on or after DATE (UTC)."
    ),
    until: datetime | None = date_option(
        "--until", "Evaluate only shipments declared on or before DATE (UTC)."
    ),
    json_out: bool = json_option("every figure"),
) -> None:
    """Evaluate a model at inspection budgets against random, rule and watchlist selection,
    and the whole decision policy at each port's capacity.

    Only shipments declared after the model's validation window are evaluated; --from and
    --until narrow that to a period (a --from inside the windows the model was fitted on is
    refused).
    """
    from training.periods import Period, as_date

    def body() -> None:
        period = (
            Period(as_date(since), as_date(until))
            if since is not None or until is not None
            else None
        )
        data_dir = _canonical_data(data, mapping)
        result = _evaluate(data_dir, model, registry, config, report, period)
        if json_out:
            print_json(result.to_json())
            return
        _print_evaluation(result)
        if report is not None:
            err_console.print(f"report written to {report}")

    run(body)


def _evaluate(
    data_dir: Path,
    model: str | None,
    registry: Path,
    config: Path | None,
    report: Path | None,
    period: Period | None = None,
) -> Evaluation:
    """Evaluate bundle ``model`` as ``config`` sets the policy, and write the report if asked,
    telling what is being done on a status line."""
    from features.watchlist import load_watchlist
    from training.evaluate import evaluate
    from training.evaluation_report import write_report

    settings = read_settings(config)
    watchlist = load_watchlist(settings.watchlist_file)
    bundle = Registry(registry).load(model)
    with err_console.status(f"evaluating {bundle.version}") as status:

        def on_stage(message: str) -> None:
            status.update(f"evaluating {bundle.version}: {message}")

        result = evaluate(
            data_dir,
            bundle,
            watchlist=watchlist,
            settings=settings,
            on_stage=on_stage,
            period=period,
        )
        if report is not None:
            on_stage("writing report")
            write_report(result, report)
    return result


def _print_evaluation(result: Evaluation) -> None:
    """The evaluation in the terminal: what was evaluated, then each label source's budgets."""
    from training.evaluation_format import budget_label, percent
    from training.evaluation_record import BUDGET_KEYS, SELECTORS

    window = result.window
    folded = Folded(**window["folded"])
    if folded.total:
        say(folded.summary())
    console.print(
        f"model [bold]{result.model['version']}[/] on {window['shipments']:,} shipments declared "
        f"after {window['after'][:19]} ({window['start'][:10]} to {window['end'][:10]})"
    )
    for source in result.label_sources:
        table = Table(
            "budget",
            *(f"{s}\nprecision / recall" for s in SELECTORS),
            title=f"{source} labels ({window['positives'][source]:,} positives)",
        )
        for key in BUDGET_KEYS:
            cells = [budget_label(key)]
            for selector in SELECTORS:
                m = result.budgets[key][selector][source]
                cells.append(f"{percent(m.precision)} / {percent(m.recall)}")
            table.add_row(*cells)
        console.print(table)
        auc = ", ".join(f"{s} {percent(result.pr_auc[s][source])}" for s in SELECTORS)
        console.print(f"  PR-AUC: {auc}")
    brier = result.calibration.brier
    console.print(f"Brier score on inspected shipments: {'—' if brier is None else f'{brier:.4f}'}")
