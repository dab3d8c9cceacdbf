"""The one place that maps Centinela errors to gRPC status.

Bad input becomes INVALID_ARGUMENT with ``google.rpc.BadRequest`` field violations in the rich
status details; anything unexpected becomes INTERNAL with a generic message, the detail going to
the log only.

What goes back is bounded: the message and the BadRequest details travel in the call's
trailers, which a client caps (8 KiB by default), so the message is cut to
:data:`MAX_MESSAGE_BYTES` and the details list the first violations that fit in
:data:`MAX_DETAILS_BYTES` (at most :data:`MAX_VIOLATIONS`), then one entry counting the rest.

A request that is not even a protobuf message never reaches a handler as an exception: the
deserializer of every method is wrapped (:func:`tolerant_deserializer`) to return an
:class:`Undecodable` instead, which the interceptor answers INVALID_ARGUMENT and the manifest
stream answers with an error Decision.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from features.errors import (
    CentinelaError,
    ConfigError,
    DataError,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidInput,
    ModelError,
    NotFound,
    ResourceExhausted,
    Unavailable,
    clip,
    more_violations,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[CentinelaError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # The caller's deadline passed first: nothing was scored or ledgered for it.
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    # A bad watchlist, rules or model file on reload: the old state keeps serving.
    ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    ModelError: grpc.StatusCode.FAILED_PRECONDITION,
    DataError: grpc.StatusCode.FAILED_PRECONDITION,
}

INTERNAL_MESSAGE = "internal error; the server log has the details"
MAX_MESSAGE_BYTES = 1024
MAX_VIOLATIONS = 20
MAX_DETAILS_BYTES = 1536
MAX_FIELD_CHARS = 120
MAX_DESCRIPTION_CHARS = 300


def status_code_for(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, CentinelaError):
        for kind in type(error).__mro__:
            if kind in STATUS_BY_ERROR:
                return STATUS_BY_ERROR[kind]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def _clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, on a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def public_message(error: BaseException) -> str:
    """What the caller may see: our own messages, never an unexpected exception's text, and
    never more than :data:`MAX_MESSAGE_BYTES`."""
    if isinstance(error, CentinelaError):
        return _clip_bytes(error.message, MAX_MESSAGE_BYTES)
    return INTERNAL_MESSAGE


def public_violations(error: BaseException) -> list[FieldViolation]:
    """The field violations the caller sees: each one clipped, the first that fit in
    :data:`MAX_DETAILS_BYTES` (at most :data:`MAX_VIOLATIONS`), then one entry counting the
    rest (field ``...``)."""
    if not isinstance(error, InvalidInput):
        return []
    out: list[FieldViolation] = []
    size = 0
    for violation in error.violations[:MAX_VIOLATIONS]:
        shown = FieldViolation(
            clip(violation.field, MAX_FIELD_CHARS),
            clip(violation.description, MAX_DESCRIPTION_CHARS),
        )
        # Serialized size of one BadRequest.FieldViolation, tags and lengths included.
        cost = len(shown.field.encode()) + len(shown.description.encode()) + 12
        if out and size + cost > MAX_DETAILS_BYTES:
            break
        out.append(shown)
        size += cost
    rest = len(error.violations) - len(out)
    if rest:
        out.append(FieldViolation("...", more_violations(rest)))
    return out


def to_rpc_status(error: BaseException) -> status_pb2.Status:
    """A ``google.rpc.Status`` for ``error``, with BadRequest details for invalid input."""
    code = status_code_for(error)
    status = status_pb2.Status(code=code.value[0], message=public_message(error))
    violations = public_violations(error)
    if violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in violations
                ]
            )
        )
        status.details.append(detail)
    return status


def log_unexpected(error: BaseException, method: str) -> None:
    """Log what the caller cannot see: an unexpected error with its traceback, or the whole
    message of an operator-facing error (a bad watchlist or rules file on reload) that was
    cut for the status. A caller's bad input is never logged here."""
    if not isinstance(error, CentinelaError):
        log.error("unexpected error in %s", method, exc_info=error)
    elif not isinstance(error, (InvalidInput, NotFound)) and public_message(error) != error.message:
        log.warning(
            "%s answered %s; in full: %s", method, status_code_for(error).name, error.message
        )


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Stands in for a request whose bytes did not parse as ``message_name``."""

    message_name: str
    size: int
    reason: str

    def error(self) -> InvalidInput:
        """What the caller is told: generic, nothing of the parser's internals."""
        return InvalidInput(f"request is not a valid {self.message_name} message")


def tolerant_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """``deserializer`` made total: bytes that do not parse give an :class:`Undecodable`
    instead of an exception, which grpc.aio would otherwise turn into UNKNOWN with the
    parser's text (unary) or an end of the stream (streaming), logging a traceback."""
    if deserializer is None or getattr(deserializer, "tolerant", False):
        return deserializer
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    name = str(getattr(descriptor, "name", None) or "request")
    parse = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as error:
            return Undecodable(name, len(data), f"{type(error).__name__}: {clip(str(error), 200)}")

    deserialize.tolerant = True  # type: ignore[attr-defined]
    return deserialize


class RateLimitedLog:
    """At most ``burst`` lines per ``period`` seconds; what is held back is counted and
    reported with the next line that goes out. Hostile traffic must not flood the log."""

    def __init__(self, logger: logging.Logger, burst: int = 20, period: float = 10.0) -> None:
        self.logger = logger
        self.burst = burst
        self.period = period
        self._lock = threading.Lock()
        self._window = 0.0
        self._sent = 0
        self._held = 0

    def warning(self, message: str, *args: object) -> bool:
        """Log one WARNING line (no traceback) unless over the rate; True if it went out."""
        now = time.monotonic()
        with self._lock:
            if now - self._window >= self.period:
                self._window, self._sent = now, 0
            if self._sent >= self.burst:
                self._held += 1
                return False
            self._sent += 1
            held, self._held = self._held, 0
        if held:
            message += " (%d similar lines held back)"
            args = (*args, held)
        self.logger.warning(message, *args)
        return True


def log_undecodable(limiter: RateLimitedLog, method: str, request: Undecodable) -> None:
    limiter.warning(
        "undecodable request to %s: %d bytes are not a valid %s message (%s)",
        method,
        request.size,
        request.message_name,
        request.reason,
    )
