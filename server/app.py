"""The composition root: wires settings, the scoring core, servicers, interceptors, health,
reflection and the metrics endpoint into one server, and runs it until a signal.

Lifecycle: the server binds and answers at once with health NOT_SERVING; the model and
watchlist load in a worker thread (after ``prepare``, e.g. bootstrapping data and a model, if
given); health turns SERVING. On SIGTERM/SIGINT health turns NOT_SERVING while calls are
still answered for ``shutdown_notice_s``, so load balancers see it and stop sending; then new
calls are refused and in-flight calls get ``grace_period_s`` to finish.

One server per port (``grpc.so_reuseport`` off) and per ledger file (its writer lock): a
second one, like a port in use or a file that cannot be read, fails at start with one error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from features.errors import CentinelaError, DataError, FailedPrecondition, ModelError, NotFound
from scoring.service import ScoringService
from server.auth import (
    Authenticator,
    AuthInterceptor,
    add_port,
    certificate_files,
    check_transport,
    current_caller,
    log_trust,
)
from server.interceptors import (
    ErrorInterceptor,
    InterceptorChain,
    LimitsInterceptor,
    MetricsInterceptor,
)
from server.limits import CallerBuckets, Gate, caller_key, check_port_free
from server.metrics import Metrics, MetricsEndpoint, start_endpoint
from server.pb import admin_pb2, admin_pb2_grpc, risk_scoring_pb2, risk_scoring_pb2_grpc
from server.servicers import AdminServicer, RiskScoringServicer
from server.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    risk_scoring_pb2.DESCRIPTOR.services_by_name["RiskScoring"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class CentinelaServer:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.service = ScoringService(self.settings)
        self.metrics.lanes.source = self.service.lane_shares
        self.metrics.monitor.source = self.service.monitor.snapshot
        if self.service.ledger is not None:
            self.metrics.ledger.source = self.service.ledger.health
            self.metrics.ledger.follow = self.service.follow_health
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.server: aio.Server | None = None
        self.port = 0
        self.admin_server: aio.Server | None = None  # when Admin has its own port
        self.admin_port = 0
        self.endpoint: MetricsEndpoint | None = None
        self.scoring: RiskScoringServicer | None = None  # its batcher, once started
        self._stopping = False

    async def start(self) -> int:
        """Bind and start serving (health NOT_SERVING); return the bound gRPC port."""
        s = self.settings
        check_transport(s)
        tls = certificate_files(s)
        authenticator = Authenticator.from_settings(s)
        limits = [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", 0),  # one server per port: a second one cannot bind it
        ]
        interceptors = [
            InterceptorChain(
                [
                    MetricsInterceptor(self.metrics),
                    AuthInterceptor(authenticator),
                    ErrorInterceptor(),
                    self._limits(),
                ]
            )
        ]
        server = aio.server(interceptors=interceptors, options=limits)
        admin_server = server
        if s.admin_port is not None:
            # Admin alone on a port of its own, which a firewall can keep to operators.
            admin_server = aio.server(interceptors=interceptors, options=limits)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, admin_server)
        self.scoring = RiskScoringServicer(
            self.service,
            self.metrics,
            batch_max_size=s.batch_max_size,
            batch_max_wait_us=s.batch_max_wait_us,
            stream_batch_max=s.stream_batch_max,
        )
        risk_scoring_pb2_grpc.add_RiskScoringServicer_to_server(self.scoring, server)
        admin_pb2_grpc.add_AdminServicer_to_server(
            AdminServicer(self.service, self.metrics, self._on_change), admin_server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        check_port_free("gRPC", s.grpc_host, s.grpc_port)
        self.port = add_port(server, f"{s.grpc_host}:{s.grpc_port}", tls)
        if admin_server is not server:
            check_port_free("Admin gRPC", s.grpc_host, s.admin_port or 0)
            self.admin_port = add_port(admin_server, f"{s.grpc_host}:{s.admin_port}", tls)
        await self._set_health(NOT_SERVING)
        await server.start()
        self.server = server
        if admin_server is not server:
            await admin_server.start()
            self.admin_server = admin_server
        log_trust(s, authenticator, tls is not None)
        if s.metrics_enabled:
            self.endpoint = start_endpoint(self.metrics, s)
        self.metrics.model_loaded.set(0)
        log.info(
            "listening",
            extra={
                "grpc": f"{s.grpc_host}:{self.port}",
                "metrics": f"{s.metrics_host}:{self.endpoint.port}" if self.endpoint else None,
            },
        )
        return self.port

    def _limits(self) -> LimitsInterceptor:
        """Calls in flight and queued, each caller's rate, stream length (server.limits)."""
        s = self.settings
        return LimitsInterceptor(
            Gate(s.max_in_flight, s.max_queued),
            CallerBuckets(s.rate_limit_per_s, s.rate_limit_burst),
            s.max_stream_messages,
            self.metrics,
            caller_key=lambda context: caller_key(current_caller(), context),
        )

    async def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def _on_change(self) -> None:
        self.metrics.set_versions(*self.service.versions)
        self.metrics.set_shadow(self.service.shadow_version)
        if self.service.ready and not self._stopping:
            await self._set_health(SERVING)

    async def load(self, prepare: Callable[[], None] | None = None) -> bool:
        """Run ``prepare`` then load model and watchlist off the loop; health follows.

        What a reload mends (no model promoted, a version the registry lacks, a bad bundle)
        is logged and answered False: health stays NOT_SERVING until a reload succeeds.
        Anything else (a watchlist, rules, data or ledger file that cannot be read or is
        invalid) raises a CentinelaError: nothing can serve from it."""
        try:
            if prepare is not None:
                await asyncio.to_thread(prepare)
            await asyncio.to_thread(self.service.load)
        except (FailedPrecondition, NotFound, ModelError) as error:
            log.error("model not loaded; serving NOT_SERVING until a reload succeeds: %s", error)
            return False
        except CentinelaError:
            raise
        except Exception as error:
            s, why = self.settings, " ".join(str(error).split())
            raise DataError(
                f"cannot start serving from data_dir {s.data_dir} and ledger {s.ledger_location}: "
                f"{type(error).__name__}: {why}"
            ) from error
        await self._on_change()
        return True

    async def stop(self, grace: float | None = None) -> None:
        self._stopping = True
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(self.settings.grace_period_s if grace is None else grace)
        if self.admin_server is not None:
            await self.admin_server.stop(self.settings.grace_period_s if grace is None else grace)
        if self.scoring is not None:
            await self.scoring.close()
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        await asyncio.to_thread(self.service.close)
        log.info("stopped")

    async def wait(self) -> None:
        if self.server is not None:
            await self.server.wait_for_termination()


async def serve(settings: Settings, prepare: Callable[[], None] | None = None) -> None:
    """Run a server until SIGTERM or SIGINT, then shut down gracefully: health NOT_SERVING,
    still answering, for ``shutdown_notice_s`` (a second signal cuts it short), then
    ``grace_period_s`` to drain. A start that fails (a port or the ledger taken, a file that
    cannot be read) stops what had started and raises, for the command line to report."""
    app = CentinelaServer(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except (OSError, RuntimeError) as error:  # gRPC's own bind failure, after our checks
        await app.stop(0)
        raise FailedPrecondition(f"cannot start: {error}") from None
    except BaseException:
        await app.stop(0)
        raise
    loader = asyncio.create_task(app.load(prepare))
    signalled = asyncio.create_task(stop.wait())
    await asyncio.wait({loader, signalled}, return_when=asyncio.FIRST_COMPLETED)
    failed = loader.exception() if loader.done() else None
    if failed is not None:
        signalled.cancel()
        await app.stop(0)
        raise failed
    await signalled
    log.info(
        "signal received; NOT_SERVING, then draining",
        extra={
            "shutdown_notice_s": settings.shutdown_notice_s,
            "grace_period_s": settings.grace_period_s,
        },
    )
    await app.health.enter_graceful_shutdown()
    stop.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), settings.shutdown_notice_s)
    loader.cancel()
    await app.stop()
