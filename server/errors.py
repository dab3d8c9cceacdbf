"""The one place that maps Centinela errors to gRPC status.

Bad input becomes INVALID_ARGUMENT with ``google.rpc.BadRequest`` field violations in the rich
status details; anything unexpected becomes INTERNAL with a generic message, the detail going to
the log only.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from features.errors import (
    AlreadyExists,
    CentinelaError,
    ConfigError,
    DataError,
    FailedPrecondition,
    InvalidInput,
    ModelError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[CentinelaError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # A bad watchlist, rules or model file on reload: the old state keeps serving.
    ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    ModelError: grpc.StatusCode.FAILED_PRECONDITION,
    DataError: grpc.StatusCode.FAILED_PRECONDITION,
}

INTERNAL_MESSAGE = "internal error; the server log has the details"


def status_code_for(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, CentinelaError):
        for kind in type(error).__mro__:
            if kind in STATUS_BY_ERROR:
                return STATUS_BY_ERROR[kind]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def public_message(error: BaseException) -> str:
    """What the caller may see: our own messages, never an unexpected exception's text."""
    return error.message if isinstance(error, CentinelaError) else INTERNAL_MESSAGE


def to_rpc_status(error: BaseException) -> status_pb2.Status:
    """A ``google.rpc.Status`` for ``error``, with BadRequest details for invalid input."""
    code = status_code_for(error)
    status = status_pb2.Status(code=code.value[0], message=public_message(error))
    if isinstance(error, InvalidInput) and error.violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    return status


def log_unexpected(error: BaseException, method: str) -> None:
    if not isinstance(error, CentinelaError):
        log.error("unexpected error in %s", method, exc_info=error)
