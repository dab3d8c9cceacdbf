"""Cross-cutting concerns as ``grpc.aio.ServerInterceptor``s: errors and metrics.

Handlers raise domain errors; :class:`ErrorInterceptor` turns them into a gRPC status with rich
details (the mapping itself lives in :mod:`server.errors`). :class:`MetricsInterceptor` counts
every call by method and final status and times it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_status import rpc_status

from server.errors import log_unexpected, to_rpc_status
from server.metrics import Metrics

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
) -> grpc.RpcMethodHandler[Any, Any]:
    """A copy of ``handler`` whose behaviour is wrapped by ``unary`` or ``streaming``."""
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_unary_rpc_method_handler(
        unary(handler.stream_unary, method),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ErrorInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Abort with the mapped status for domain errors; INTERNAL, logged, for anything else."""

    async def intercept_service(  # type: ignore[override]
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(handler, self._unary, self._streaming, handler_call_details.method)

    @staticmethod
    async def _abort(error: Exception, context: aio.ServicerContext[Any, Any], method: str) -> None:
        log_unexpected(error, method)
        await context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(to_rpc_status(error))
        )

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await behaviour(request, context)
            except aio.AbortError:
                raise
            except Exception as error:
                await self._abort(error, context, method)

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                async for response in behaviour(request, context):
                    yield response
            except aio.AbortError:
                raise
            except Exception as error:
                await self._abort(error, context, method)

        return run


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
