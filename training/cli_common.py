"""Shared pieces of the ``centinela`` command line: console objects, error reporting, JSON
output, the progress bar and the options several commands take.

Every command runs its body through :func:`run`, the one place that turns a
:class:`~features.errors.CentinelaError` into a readable message and an exit status. Default
values live in :mod:`training.defaults`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from features.errors import (
    CentinelaError,
    ConfigError,
    DataError,
    InvalidInput,
    ModelError,
    NotFound,
)
from scoring.ledger.store import open_store
from scoring.settings import CoreSettings, load_settings
from scoring.verdict import GateRefused
from training.defaults import LEDGER_PATH, REGISTRY_DIR

# soft_wrap: never break a message or a path across lines; scripts grep what we print.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")


def registry_option(help_text: str = "Model registry directory.") -> Path:
    """``--registry DIR`` (default: the registry the server serves from)."""
    return typer.Option(REGISTRY_DIR, "--registry", help=help_text)  # type: ignore[no-any-return]


REGISTRY_OPTION = registry_option()


def path_option(name: str, help_text: str) -> Path | None:
    """An optional file or directory named ``name`` (unset: None)."""
    return typer.Option(None, name, help=help_text)  # type: ignore[no-any-return]


def config_option(help_text: str) -> Path | None:
    """``--config FILE``: a settings file, ``help_text`` saying what the command reads of it."""
    return path_option("--config", help_text)


def ledger_location(ledger: str) -> str:
    """The ledger at ``ledger`` (a path or a URL) as messages name it: a URL without its
    password."""
    return open_store(ledger).location


def ledger_option(help_text: str) -> str:
    """``--ledger PATH_OR_URL``: a SQLite file or a ``postgresql://`` URL (default: the
    setting ``ledger_path``'s default)."""
    return typer.Option(str(LEDGER_PATH), "--ledger", metavar="PATH_OR_URL", help=help_text)  # type: ignore[no-any-return]


def date_option(name: str, help_text: str) -> datetime | None:
    """An optional calendar date (``YYYY-MM-DD``, a whole day in UTC) named ``name``."""
    return typer.Option(None, name, formats=["%Y-%m-%d"], metavar="DATE", help=help_text)  # type: ignore[no-any-return]


def json_option(what: str) -> bool:
    """``--json``: print ``what`` (e.g. "the result", "every figure") as JSON, not as text."""
    return typer.Option(False, "--json", help=f"Print {what} as JSON.")  # type: ignore[no-any-return]


class TrainOption:
    """The options ``train`` and ``retrain`` share: one spelling and one help text each."""

    SEED: int = typer.Option(7, "--seed", help="Seed for LightGBM (training is deterministic).")
    PROPENSITY_WEIGHTS: bool = typer.Option(
        False,
        "--propensity-weights",
        help="Weigh each inspected shipment by 1/the probability that it was selected for "
        "inspection (inverse propensity).",
    )
    TRAIN_UNTIL = date_option(
        "--train-until",
        "Fit on shipments declared on or before DATE (UTC), instead of the oldest 70%. "
        "Needs --valid-until.",
    )
    VALID_UNTIL = date_option(
        "--valid-until",
        "Stop early and calibrate on shipments declared after --train-until and on or before "
        "DATE; what is newer is the test window (it may be empty).",
    )
    PARAMS = path_option(
        "--params",
        "Training settings file (YAML): learning_rate, num_leaves, min_data_in_leaf, "
        "feature_fraction, bagging_fraction, lambda_l2, max_rounds, early_stopping_rounds.",
    )


SettingsLoader = Callable[[Path | None], CoreSettings]
_settings_loader: list[SettingsLoader] = [load_settings]


def use_settings_loader(loader: SettingsLoader) -> None:
    """How ``--config`` files are read. ``centinela`` (:mod:`server.cli`, the composition root)
    installs the server's loader, so the file written for ``serve`` (core and server settings
    together) is read whole, and a misspelt key is still an error; alone, the core's."""
    _settings_loader[0] = loader


def read_settings(config: Path | None) -> CoreSettings:
    """The settings of a ``--config`` file (defaults and ``CENTINELA_*`` variables without)."""
    return _settings_loader[0](config)


# Exit status by error kind: 2 is reserved for usage errors (typer/click), 1 for anything else.
# 3 is for what running again cannot mend: a bad input or file. 6 is a promotion the gate
# refuses (`models promote` without a passing, current verdict; the reasons are printed), its
# own status so a deployment script can tell "not good enough" from "wrong file".
_EXIT_CODES: dict[type[CentinelaError], int] = {
    InvalidInput: 3,
    ConfigError: 3,
    DataError: 3,
    GateRefused: 6,
    NotFound: 4,
    ModelError: 5,
}


def exit_code_for(error: CentinelaError) -> int:
    for kind in type(error).__mro__:
        if kind in _EXIT_CODES:
            return _EXIT_CODES[kind]  # type: ignore[index]
    return 1


def fail(error: CentinelaError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    raise typer.Exit(exit_code_for(error))


def run(body: Callable[[], T]) -> T:
    """Run a command body, reporting Centinela errors as a message and an exit status."""
    try:
        return body()
    except CentinelaError as error:
        fail(error)


def _finite(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON parsers reject them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    text = json.dumps(_finite(obj), indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(text + "\n")


def say(message: str, *, err: bool = False) -> None:
    """Print a message on stdout (``err``: stderr) as written: markup such as ``[bold]`` applies,
    but numbers, paths and the like are not highlighted automatically."""
    (err_console if err else console).print(message, highlight=False)


def progress_bar(label: str, unit: str, *, disable: bool = False) -> Progress:
    """A transient progress bar on :data:`console`: ``label``, the bar, done/total, ``unit``
    (plain text or a ``{task.fields[...]}`` template) and the time elapsed."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


def packaged_file_argument(kind: str) -> Any:
    """The optional FILE argument of a ``validate`` command for ``kind`` files (``"rules"``,
    ``"watchlist"``): without it the file packaged with Centinela is checked."""
    return typer.Argument(help=f"{kind.capitalize()} YAML to check; default: the packaged {kind}.")
