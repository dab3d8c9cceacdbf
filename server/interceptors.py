"""Cross-cutting concerns as ``grpc.aio.ServerInterceptor``s: errors and metrics.

Handlers raise domain errors; :class:`ErrorInterceptor` turns them into a gRPC status with rich
details (the mapping itself lives in :mod:`server.errors`). :class:`MetricsInterceptor` counts
every call by method and final status and times it.

grpc.aio parses a request *before* any handler or interceptor code runs and answers a parse
failure with UNKNOWN, the parser's text and a logged traceback (unary), or ends the whole stream
(streaming). So :class:`ErrorInterceptor` also replaces each method's request deserializer with
a total one (:func:`server.errors.tolerant_deserializer`): bytes that do not parse arrive as an
:class:`~server.errors.Undecodable`, answered INVALID_ARGUMENT with a generic message and one
WARNING line. Streams of requests get the same, except the methods in
:data:`ITEM_ERRORS_IN_STREAM`, whose servicer answers an undecodable item on its own and goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_status import rpc_status

from server.errors import (
    RateLimitedLog,
    Undecodable,
    log_undecodable,
    log_unexpected,
    to_rpc_status,
    tolerant_deserializer,
)
from server.metrics import Metrics

log = logging.getLogger(__name__)

ITEM_ERRORS_IN_STREAM = frozenset({"/centinela.v1.RiskScoring/ScoreShipments"})
"""Request streams whose servicer answers each item, an undecodable one included, on its own."""

if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]


def _short(method: str) -> str:
    """'/centinela.v1.RiskScoring/ScoreShipment' -> 'RiskScoring/ScoreShipment'."""
    service, _, name = method.rpartition("/")
    return f"{service.rsplit('.', 1)[-1]}/{name}"


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary: Callable[[Any, str], Any],
    streaming: Callable[[Any, str], Any],
    method: str,
    deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A copy of ``handler`` whose behaviour is wrapped by ``unary`` or ``streaming`` (and
    whose request deserializer is ``deserializer`` if given)."""
    parse = deserializer or handler.request_deserializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary, method),
            request_deserializer=parse,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream, method),
            request_deserializer=parse,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream, method),
            request_deserializer=parse,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_unary_rpc_method_handler(
        unary(handler.stream_unary, method),
        request_deserializer=parse,
        response_serializer=handler.response_serializer,
    )


class ErrorInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Abort with the mapped status for domain errors; INTERNAL, logged, for anything else;
    INVALID_ARGUMENT, logged in one line, for a request that does not parse."""

    def __init__(self, item_errors_in_stream: frozenset[str] = ITEM_ERRORS_IN_STREAM) -> None:
        self.item_errors_in_stream = item_errors_in_stream
        self.undecodable_log = RateLimitedLog(log)

    async def intercept_service(  # type: ignore[override]
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        streaming: Callable[[Any, str], Any] = self._streaming
        unary: Callable[[Any, str], Any]
        if handler.stream_stream or handler.stream_unary:
            tolerant = method in self.item_errors_in_stream
            unary = self._unary_from_stream(tolerant)
            streaming = self._streaming_from_stream(tolerant)
        else:
            unary = self._unary
        return _wrap(
            handler,
            unary,
            streaming,
            method,
            deserializer=tolerant_deserializer(handler.request_deserializer),
        )

    @staticmethod
    async def _abort(error: Exception, context: aio.ServicerContext[Any, Any], method: str) -> None:
        log_unexpected(error, method)
        await context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(to_rpc_status(error))
        )

    def _reject(self, request: Any, method: str) -> None:
        """Raise the caller's error for an undecodable ``request``, logged in one line."""
        if isinstance(request, Undecodable):
            log_undecodable(self.undecodable_log, method, request)
            raise request.error()

    def _checked(self, requests: AsyncIterator[Any], method: str, tolerant: bool) -> Any:
        """``requests`` with each undecodable item logged; unless ``tolerant`` (the servicer
        answers it), the first one ends the call with INVALID_ARGUMENT."""

        async def items() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    if not tolerant:
                        self._reject(request, method)
                    log_undecodable(self.undecodable_log, method, request)
                yield request

        return items()

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            try:
                self._reject(request, method)
                return await behaviour(request, context)
            except aio.AbortError:
                raise
            except Exception as error:
                await self._abort(error, context, method)

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                self._reject(request, method)
                async for response in behaviour(request, context):
                    yield response
            except aio.AbortError:
                raise
            except Exception as error:
                await self._abort(error, context, method)

        return run

    def _unary_from_stream(self, tolerant: bool) -> Callable[[Any, str], Any]:
        def wrap(behaviour: Any, method: str) -> Any:
            async def run(requests: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await behaviour(self._checked(requests, method, tolerant), context)
                except aio.AbortError:
                    raise
                except Exception as error:
                    await self._abort(error, context, method)

            return run

        return wrap

    def _streaming_from_stream(self, tolerant: bool) -> Callable[[Any, str], Any]:
        def wrap(behaviour: Any, method: str) -> Any:
            async def run(
                requests: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                try:
                    async for response in behaviour(
                        self._checked(requests, method, tolerant), context
                    ):
                        yield response
                except aio.AbortError:
                    raise
                except Exception as error:
                    await self._abort(error, context, method)

            return run

        return wrap


class MetricsInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Count and time every call, labelled by short method name and final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def intercept_service(  # type: ignore[override]
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, self._unary, self._streaming, _short(handler_call_details.method))

    def _record(self, method: str, context: aio.ServicerContext[Any, Any], start: float) -> None:
        code = context.code()
        name = code.name if isinstance(code, grpc.StatusCode) else "OK"
        if name == "CANCELLED" or context.cancelled():
            name = "CANCELLED"
        self.metrics.requests.labels(method, name).inc()
        self.metrics.latency.labels(method).observe(time.perf_counter() - start)

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            try:
                return await behaviour(request, context)
            finally:
                self._record(method, context, start)

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            start = time.perf_counter()
            try:
                async for response in behaviour(request, context):
                    yield response
            finally:
                self._record(method, context, start)

        return run
