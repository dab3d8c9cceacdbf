"""Cross-cutting concerns as ``grpc.aio.ServerInterceptor``s: errors, limits and metrics.

Handlers raise domain errors; :class:`ErrorInterceptor` turns them into a gRPC status with rich
details (the mapping itself lives in :mod:`server.errors`). :class:`LimitsInterceptor` admits
calls within the server's limits (:mod:`server.limits`) and refuses the rest with
RESOURCE_EXHAUSTED. :class:`MetricsInterceptor` counts every call by method and the status its
caller received (a reply after the deadline counts as DEADLINE_EXCEEDED) and times it.

A streaming handler may be an async generator or a coroutine that writes with
``context.write`` (the health service's ``Watch``); the wrappers keep each kind as it is, since
grpc.aio decides how to drive a handler by its kind.

grpc.aio parses a request *before* any handler or interceptor code runs and answers a parse
failure with UNKNOWN, the parser's text and a logged traceback (unary), or ends the whole stream
(streaming). So :class:`ErrorInterceptor` also replaces each method's request deserializer with
a total one (:func:`server.errors.tolerant_deserializer`): bytes that do not parse arrive as an
:class:`~server.errors.Undecodable`, answered INVALID_ARGUMENT with a generic message and one
WARNING line. Streams of requests get the same, except the methods in
:data:`ITEM_ERRORS_IN_STREAM`, whose servicer answers an undecodable item on its own and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_status import rpc_status

from features.errors import DeadlineExceeded
from server.errors import (
    RateLimitedLog,
    Undecodable,
    log_undecodable,
    log_unexpected,
    to_rpc_status,
    tolerant_deserializer,
)
from server.limits import (
    CallerBuckets,
    Gate,
    Overloaded,
    RateLimited,
    StreamTooLong,
    peer_key,
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
    whose request deserializer is ``deserializer`` if given).

    A streaming handler that is a coroutine (it writes its responses with ``context.write``
    and returns None) is wrapped by ``unary``, which awaits it: ``streaming`` iterates an
    async generator, and grpc.aio must still see a coroutine to drive it as one."""
    parse = deserializer or handler.request_deserializer
    if inspect.iscoroutinefunction(handler.unary_stream or handler.stream_stream):
        streaming = unary
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


class WrappingInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]
    """An interceptor that wraps each method's handler, once per method: its wrapping depends
    only on the method and the handler it wraps, and building closures and a handler per call
    costs every call (grpc.aio asks each interceptor for the handler on every RPC). A different
    inner handler for the method (the service registered again) is wrapped anew.

    Subclasses say how in :meth:`wrap` (by default: :meth:`_unary` wraps unary and
    coroutine-streaming behaviours, :meth:`_streaming` the async-generator ones; see
    :func:`_wrap`), and which methods in :meth:`applies`."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], Any]] = {}

    def applies(self, method: str) -> bool:
        return True

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return _wrap(handler, self._unary, self._streaming, method)

    def _unary(self, behaviour: Any, method: str) -> Any:
        raise NotImplementedError

    def _streaming(self, behaviour: Any, method: str) -> Any:
        raise NotImplementedError

    async def intercept_service(  # type: ignore[override]
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.applies(method):
            return handler
        made = self._made.get(method)
        if made is not None and made[0] is handler:
            return made[1]  # type: ignore[no-any-return]
        wrapped = self.wrap(handler, method)
        self._made[method] = (handler, wrapped)
        return wrapped


class InterceptorChain(WrappingInterceptor):
    """Wrapping interceptors applied as one, ``interceptors[0]`` outermost as grpc.aio orders
    a list of them: each method's handler is wrapped by all of them once, and a call passes one
    ``intercept_service`` instead of one per interceptor (grpc.aio awaits each on every RPC).
    An interceptor whose :meth:`~WrappingInterceptor.applies` is false for a method is left
    out of that method's wrapping, as it would leave the handler alone on its own."""

    def __init__(self, interceptors: Sequence[WrappingInterceptor]) -> None:
        self.interceptors = tuple(interceptors)
        super().__init__()

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        for interceptor in reversed(self.interceptors):
            if interceptor.applies(method):
                handler = interceptor.wrap(handler, method)
        return handler


class ErrorInterceptor(WrappingInterceptor):
    """Abort with the mapped status for domain errors; INTERNAL, logged, for anything else;
    INVALID_ARGUMENT, logged in one line, for a request that does not parse."""

    def __init__(self, item_errors_in_stream: frozenset[str] = ITEM_ERRORS_IN_STREAM) -> None:
        self.item_errors_in_stream = item_errors_in_stream
        self.undecodable_log = RateLimitedLog(log)
        super().__init__()

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        prepare: Callable[[Any, str], Any] = self._checked_one
        if handler.stream_stream or handler.stream_unary:
            tolerant = method in self.item_errors_in_stream

            def prepare(requests: Any, method: str) -> Any:
                return self._checked(requests, method, tolerant)

        unary, streaming = self._unary_for(prepare), self._streaming_for(prepare)
        return _wrap(
            handler,
            unary,
            streaming,
            method,
            deserializer=tolerant_deserializer(handler.request_deserializer),
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

    def _checked_one(self, request: Any, method: str) -> Any:
        """``request``, unless it is undecodable: then the call ends with the caller's error."""
        self._reject(request, method)
        return request

    def _unary_for(self, prepare: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
        """A wrapper for behaviours that answer once: the request (or request stream) passes
        through ``prepare``, and an unexpected error ends the call with its status."""

        def wrap(behaviour: Any, method: str) -> Any:
            async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                async with _EndsTheCall(context, method):
                    return await behaviour(prepare(request, method), context)

            return run

        return wrap

    def _streaming_for(self, prepare: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
        """As :meth:`_unary_for`, for behaviours that answer with a stream."""

        def wrap(behaviour: Any, method: str) -> Any:
            async def run(
                request: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                async with _EndsTheCall(context, method):
                    async for response in behaviour(prepare(request, method), context):
                        yield response

            return run

        return wrap


class _EndsTheCall:
    """Around a call's behaviour: an unexpected error is logged and ends the call with the
    status :func:`~server.errors.to_rpc_status` gives it; an abort passes through. A class, not
    ``contextlib.asynccontextmanager``: it runs on every call, and this costs less."""

    __slots__ = ("context", "method")

    def __init__(self, context: aio.ServicerContext[Any, Any], method: str) -> None:
        self.context = context
        self.method = method

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: Any, tb: Any) -> bool:
        if error is None or isinstance(error, aio.AbortError) or not isinstance(error, Exception):
            return False
        log_unexpected(error, self.method)
        await self.context.abort_with_status(  # type: ignore[attr-defined]
            rpc_status.to_status(to_rpc_status(error))
        )
        return False  # abort_with_status raises; never reached


class MetricsInterceptor(WrappingInterceptor):
    """Count and time every call, labelled by short method name and final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        super().__init__()

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return _wrap(handler, self._unary, self._streaming, _short(method))

    def _record(
        self,
        method: str,
        context: aio.ServicerContext[Any, Any],
        start: float,
        error: BaseException | None,
    ) -> None:
        self.metrics.requests.labels(method, received_code(context, error)).inc()
        self.metrics.latency.labels(method).observe(time.perf_counter() - start)

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with _Counted(self, method, context):
                return await behaviour(request, context)

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with _Counted(self, method, context):
                async for response in behaviour(request, context):
                    yield response

        return run


class _Counted:
    """Around a call's behaviour: its time and the status the caller received, recorded
    however it ends (an error passes through)."""

    __slots__ = ("context", "interceptor", "method", "start")

    def __init__(
        self, interceptor: MetricsInterceptor, method: str, context: aio.ServicerContext[Any, Any]
    ) -> None:
        self.interceptor, self.method, self.context = interceptor, method, context
        self.start = time.perf_counter()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: Any, tb: Any) -> bool:
        self.interceptor._record(self.method, self.context, self.start, error)
        return False


def expired(context: aio.ServicerContext[Any, Any] | None) -> bool:
    """True when the call had a deadline and it has passed."""
    if context is None:
        return False
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


DEADLINE_SLACK_S = 0.1
"""A client's deadline timer runs ahead of the server's by the network delay (the server counts
from when the call arrived), so a cancellation this close to the deadline is the deadline."""


def received_code(context: aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    """The status the caller received, by name. A call past its deadline ended
    DEADLINE_EXCEEDED for its caller whatever the handler did afterwards (grpc.aio cancels the
    handler, or its reply comes too late), and so did one cancelled within
    :data:`DEADLINE_SLACK_S` of it; a handler cancelled before that is CANCELLED; an exception
    no interceptor mapped is UNKNOWN."""
    cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit) or context.cancelled()
    remaining = context.time_remaining()
    if remaining is not None and (remaining <= 0 or (cancelled and remaining < DEADLINE_SLACK_S)):
        return "DEADLINE_EXCEEDED"
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return str(code.name)
    if cancelled:
        return "CANCELLED"
    if error is not None:
        return "UNKNOWN"
    return "OK"


LIMITED_METHODS = ("/centinela.v1.RiskScoring/",)
"""Method prefixes the limits apply to: the scoring service. Health, reflection and Admin are
never queued or refused for load (load balancers and operators must get through)."""


class LimitsInterceptor(WrappingInterceptor):
    """Admit each call of :data:`LIMITED_METHODS` within the limits, or refuse it with a
    domain error (RESOURCE_EXHAUSTED, or DEADLINE_EXCEEDED when its deadline has already
    passed) for :class:`ErrorInterceptor`, which must wrap this one, to map.

    In order: the caller's rate (``buckets``, keyed by ``caller_key``), then a slot of
    ``gate`` (waiting in its queue if need be), held until the call ends. A request stream
    also has each message paced by the caller's rate and ends RESOURCE_EXHAUSTED after
    ``max_stream_messages`` (the servicer answers those read before)."""

    def __init__(
        self,
        gate: Gate,
        buckets: CallerBuckets,
        max_stream_messages: int,
        metrics: Metrics,
        caller_key: Callable[[aio.ServicerContext[Any, Any]], str] = peer_key,
        limited: tuple[str, ...] = LIMITED_METHODS,
    ) -> None:
        self.gate = gate
        self.buckets = buckets
        self.max_stream_messages = max_stream_messages
        self.metrics = metrics
        self.caller_key = caller_key
        self.limited = limited
        self.overload_log = RateLimitedLog(log, burst=1, period=10.0)
        super().__init__()
        metrics.in_flight.set_function(lambda: gate.in_flight)
        metrics.queued.set_function(lambda: gate.queued)

    def applies(self, method: str) -> bool:
        return method.startswith(self.limited)

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.stream_stream or handler.stream_unary:
            return _wrap(handler, self._unary_from_stream, self._streaming_from_stream, method)
        return _wrap(handler, self._unary, self._streaming, method)

    @contextlib.asynccontextmanager
    async def _admitted(self, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[str]:
        """A slot for the call, within its caller's rate; yields the caller's key."""
        if expired(context):
            raise DeadlineExceeded("the call's deadline passed before it was admitted")
        key = self.caller_key(context)
        try:
            if self.buckets.enabled:
                self.buckets.check(key)
            await self.gate.acquire()
        except RateLimited:
            self.metrics.rejected.labels("rate_limited").inc()
            raise
        except Overloaded as error:
            self.metrics.rejected.labels("overloaded").inc()
            self.overload_log.warning("shedding load: %s", error.message)
            raise
        try:
            yield key
        finally:
            self.gate.release()

    def _counted(self, requests: AsyncIterator[Any], key: str) -> AsyncIterator[Any]:
        """``requests`` paced by the caller's rate, ending in :class:`StreamTooLong` after
        ``max_stream_messages``."""

        async def items() -> AsyncIterator[Any]:
            count = 0
            async for request in requests:
                count += 1
                if count > self.max_stream_messages:
                    self.metrics.rejected.labels("stream_too_long").inc()
                    raise StreamTooLong(
                        f"stream longer than {self.max_stream_messages} messages "
                        "(max_stream_messages): those before were answered; send the rest "
                        "in a new stream"
                    )
                if self.buckets.enabled:
                    await self.buckets.pace(key)
                yield request

        return items()

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with self._admitted(context):
                return await behaviour(request, context)

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._admitted(context):
                async for response in behaviour(request, context):
                    yield response

        return run

    def _unary_from_stream(self, behaviour: Any, method: str) -> Any:
        async def run(requests: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with self._admitted(context) as key:
                return await behaviour(self._counted(requests, key), context)

        return run

    def _streaming_from_stream(self, behaviour: Any, method: str) -> Any:
        async def run(requests: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._admitted(context) as key:
                async for response in behaviour(self._counted(requests, key), context):
                    yield response

        return run
