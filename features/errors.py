"""The one error hierarchy of Centinela.

Every error the core raises derives from :class:`CentinelaError`. Each subclass names a *kind*
of failure; the transport layers map kinds to their own vocabulary in exactly one place each
(``server/errors.py`` for gRPC status codes, the CLI's error handler for exit codes). Nothing in
``features/``, ``scoring/`` or ``training/`` knows about gRPC.

::

    CentinelaError
    ├── InvalidInput          bad data from a caller; carries field violations
    ├── NotFound              a named thing (decision id, model version, file) does not exist
    ├── FailedPrecondition    the system is not in a state to do this (no model promoted, ...)
    ├── Unavailable           not ready yet or shutting down; the caller may retry
    ├── ResourceExhausted     a size, batch or concurrency limit was exceeded
    ├── DeadlineExceeded      the caller's deadline passed before the work was done
    ├── ConfigError           settings, watchlist, rules or mapping files are invalid
    ├── ModelError            a model bundle is corrupt or does not match the code's schema
    └── DataError             a data table is missing columns or has the wrong types
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

QUOTE_LIMIT = 40


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a caller's value, cut to a short prefix: error messages never echo a huge
    or hostile value back whole (it would overflow the caller's trailer limit)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def suggest(value: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``known`` to ``value``, or nothing: the hint
    an analyst's misspelt name (a feature, an exam, a key) gets in its error."""
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: ``field`` is a path such as ``goods[2].hs_code``; ``description`` says why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


def pydantic_violations(
    error: ValidationError, describe: Callable[[ErrorDetails], str] | None = None
) -> list[FieldViolation]:
    """One :class:`FieldViolation` per error of a pydantic ``ValidationError``: the dotted
    location (``(file)`` for the document as a whole) and pydantic's message, or what
    ``describe`` says of the error when given."""
    return [
        FieldViolation(
            ".".join(str(p) for p in e["loc"]) or "(file)",
            describe(e) if describe is not None else e["msg"],
        )
        for e in error.errors()
    ]


MAX_LISTED_VIOLATIONS = 20
"""At most this many violations are spelt out in a message; the rest are counted."""
MAX_MESSAGE_CHARS = 900
"""An :class:`InvalidInput` message never grows past this, however many violations it has."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with ``...`` when cut."""
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def more_violations(count: int) -> str:
    return f"... and {count} more violation{'s' if count != 1 else ''}"


def violations_summary(message: str, violations: list[FieldViolation]) -> str:
    """``message: v1; v2; ...`` listing the first violations that fit in
    :data:`MAX_MESSAGE_CHARS` (at most :data:`MAX_LISTED_VIOLATIONS`) and counting the rest.

    A request with thousands of bad goods lines, or one whose violation quotes a long value,
    still gets a message small enough for a gRPC trailer."""
    if not violations:
        return clip(message, MAX_MESSAGE_CHARS)
    head = clip(message, MAX_MESSAGE_CHARS // 2)
    reserve = len("; ") + len(more_violations(len(violations)))
    budget = MAX_MESSAGE_CHARS - len(head) - len(": ") - reserve
    listed: list[str] = []
    for violation in violations[:MAX_LISTED_VIOLATIONS]:
        text = clip(str(violation), 200)
        if len(text) + len("; ") > budget and listed:
            break
        listed.append(text)
        budget -= len(text) + len("; ")
    rest = len(violations) - len(listed)
    if rest:
        listed.append(more_violations(rest))
    return f"{head}: " + "; ".join(listed)


class CentinelaError(Exception):
    """Root of every error Centinela raises on purpose. ``message`` is safe to show callers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CentinelaError):
    """A request or file had bad fields. ``violations`` names each one (all of them; the
    message spells out only the first few, see :func:`violations_summary`)."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(violations_summary(message, list(violations or [])))
        self.violations: list[FieldViolation] = list(violations or [])


class NotFound(CentinelaError):
    """A named thing does not exist."""


class FailedPrecondition(CentinelaError):
    """The system is not in a state where this operation can run."""


class Unavailable(CentinelaError):
    """Not ready (no model loaded) or shutting down; retrying later may succeed."""


class ResourceExhausted(CentinelaError):
    """A size, batch or concurrency limit was exceeded."""


class DeadlineExceeded(CentinelaError):
    """The caller's deadline passed before the work was done: nothing was decided or stored."""


class ConfigError(CentinelaError):
    """A settings, watchlist, rules or mapping file is invalid. ``violations`` names each entry."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        if violations:
            message = f"{message}:\n" + "\n".join(f"  - {v}" for v in violations)
        super().__init__(message)
        self.violations: list[FieldViolation] = list(violations or [])


class ModelError(CentinelaError):
    """A model bundle is unreadable or its feature schema does not match the code."""


class DataError(CentinelaError):
    """An input table is missing, lacks columns, or has columns of the wrong type."""
