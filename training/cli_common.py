"""Shared pieces of the ``centinela`` command line: console objects and error reporting.

Every command runs its body through :func:`run`, the one place that turns a
:class:`~features.errors.CentinelaError` into a readable message and an exit status.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from features.errors import (
    CentinelaError,
    ConfigError,
    DataError,
    InvalidInput,
    ModelError,
    NotFound,
)

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

# Exit status by error kind: 2 is reserved for usage errors (typer/click), 1 for anything else.
_EXIT_CODES: dict[type[CentinelaError], int] = {
    InvalidInput: 3,
    ConfigError: 3,
    DataError: 3,
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


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
