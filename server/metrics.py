"""Every Prometheus metric Centinela exports, in one module, on one registry.

Names are prefixed ``centinela_`` and unit-suffixed; labels are low-cardinality (method, status
code, known ports, lanes, match types, drift series, age buckets), never shipment ids or names.
The registry is explicit, not the process-global default, so tests can run several servers in
one process; it also carries the standard ``process_*`` and ``python_info`` collectors.

Drift and label lag (:mod:`scoring.drift` defines the statistics, :mod:`scoring.monitor` keeps
them) are read at scrape time by :class:`MonitorCollector`:
``centinela_drift_psi{port,feature}`` (the score is ``feature="risk_score"``),
``centinela_drift_no_history_share{port}``,
``centinela_drift_watchlist_hit_rate{port}``, ``centinela_drift_window_decisions{port}``,
``centinela_decisions_awaiting_outcome{port,age}``, ``centinela_outcome_rate{port}``,
``centinela_positive_share_inspected{port}``, ``centinela_seconds_since_last_outcome`` and
``centinela_decisions_outcome_expired_total{port}``.

Ledger health (:mod:`scoring.ledger`, which counts it in the writer thread) is read at scrape
time by :class:`LedgerCollector`: ``centinela_ledger_rows``, ``centinela_ledger_bytes``, the
histograms ``centinela_ledger_commit_seconds`` and ``centinela_ledger_group_size``, and
``centinela_ledger_last_verify_ok`` with ``centinela_ledger_last_verify_timestamp_seconds``
(none of them when the ledger is disabled). Where servers share the ledger (PostgreSQL), how
far this one's entity history follows the others' rows (:mod:`scoring.ledger.follow`):
``centinela_ledger_follow_lag_seconds``, ``centinela_ledger_follow_lag_rows``,
``centinela_ledger_followed_rows_total``, ``centinela_ledger_follow_failures_total`` and the
histogram ``centinela_ledger_follow_delay_seconds`` (none of them with a SQLite ledger).

A shadow model (setting ``shadow_model``, :mod:`scoring.shadow`) is counted as each decision is
returned: ``centinela_shadow_decisions_total{port, lane, shadow_lane}`` (the lane decided
against the lane the shadow would have given), the histogram
``centinela_shadow_score_difference{port}`` (|serving - shadow| calibrated score), and
``centinela_shadow_info{model_version}`` while a shadow serves (no samples without one).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from features.errors import FailedPrecondition
from scoring.lanes import PortShares
from scoring.ledger import Buckets, FollowHealth, LedgerHealth
from scoring.monitor import Snapshot
from server.limits import port_taken
from server.settings import Settings

# The *_created series double every metric's lines and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
DIFFERENCE_BUCKETS = (0.0001, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


@dataclass
class Metrics:
    """Every metric the server exports, on one registry: what the server counts as it serves,
    and collectors that read the lane policy, the monitor and the ledger at scrape time."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._calls()
        self._decisions()
        self._serving()
        self._shadow()
        r = self.registry
        self.lanes = LaneCollector()
        r.register(self.lanes)
        self.monitor = MonitorCollector()
        r.register(self.monitor)
        self.ledger = LedgerCollector()
        r.register(self.ledger)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def _calls(self) -> None:
        """Calls: how many, how they ended, how long they took, what the limits refused."""
        self.requests = self._counter(
            "centinela_grpc_requests",
            "gRPC requests handled, by method and the status code the caller received.",
            labels=("method", "code"),
        )
        self.rejected = self._counter(
            "centinela_rejected_calls",
            "Calls refused RESOURCE_EXHAUSTED by the server's limits, by reason (overloaded, "
            "rate_limited, stream_too_long).",
            labels=("reason",),
        )
        self.in_flight = self._gauge(
            "centinela_calls_in_flight",
            "Scoring calls admitted and not yet finished (at most max_in_flight).",
        )
        self.queued = self._gauge(
            "centinela_calls_queued",
            "Scoring calls waiting for a slot (at most max_queued).",
        )
        self.latency = self._histogram(
            "centinela_grpc_request_duration_seconds",
            "Time from receiving a gRPC request to finishing the reply, by method.",
            labels=("method",),
            buckets=LATENCY_BUCKETS,
        )
        self.stream_messages = self._counter(
            "centinela_stream_messages",
            "Messages of ScoreShipments streams, by outcome (scored or error).",
            labels=("outcome",),
        )
        self.stream_batch_size = self._histogram(
            "centinela_stream_batch_size",
            "Shipments scored together in one micro-batch of a ScoreShipments stream.",
            buckets=BATCH_BUCKETS,
        )
        self.batch_size = self._histogram(
            "centinela_batch_size",
            "Shipments scored together in one batch across calls: concurrent ScoreShipment "
            "calls and ScoreShipments micro-batches gathered by the server's batcher.",
            buckets=BATCH_BUCKETS,
        )

    def _decisions(self) -> None:
        """What was decided: lanes, exams, scores, watchlist hits, rejects and outcomes."""
        self.decisions = self._counter(
            "centinela_decisions",
            "Decisions returned, by port of entry and lane.",
            labels=("port", "lane"),
        )
        self.exams = self._counter(
            "centinela_exams_recommended",
            "Exams recommended for RED and YELLOW decisions, by port of entry and exam type.",
            labels=("port", "exam"),
        )
        self.risk_score = self._histogram(
            "centinela_risk_score",
            "Distribution of calibrated risk scores, by port of entry.",
            labels=("port",),
            buckets=SCORE_BUCKETS,
        )
        self.invalid_shipments = self._counter(
            "centinela_invalid_shipments", "Shipments rejected by validation."
        )
        self.watchlist_hits = self._counter(
            "centinela_watchlist_hits",
            "Watchlist hits in scored shipments, by match type.",
            labels=("match_type",),
        )
        self.outcomes = self._counter(
            "centinela_outcomes",
            "Inspection outcomes recorded, by result (an idempotent repeat is not counted).",
            labels=("result",),
        )

    def _serving(self) -> None:
        """What serves: the loaded versions and how reloads went."""
        self.model_loaded = self._gauge(
            "centinela_model_loaded",
            "1 while a model and watchlist are loaded and serving, else 0.",
        )
        self.serving_versions = self._gauge(
            "centinela_serving_info",
            "Always 1; the labels name the model, watchlist and rules versions serving.",
            labels=("model_version", "watchlist_version", "rules_version"),
        )
        self.reloads = self._counter(
            "centinela_reloads",
            "Reload attempts of the model or watchlist, by target and result.",
            labels=("target", "result"),
        )

    def _shadow(self) -> None:
        """The shadow model beside the serving one: what it would have decided, how far its
        scores sit from the serving model's, and which one it is."""
        self.shadow_decisions = self._counter(
            "centinela_shadow_decisions",
            "Decisions returned while a shadow model is scored beside the serving one, by port "
            "of entry, the lane decided and the lane the shadow's score would have given "
            "(the same lane policy, rules and exploration draw: see scoring/shadow.py).",
            labels=("port", "lane", "shadow_lane"),
        )
        self.shadow_score_difference = self._histogram(
            "centinela_shadow_score_difference",
            "Absolute difference between the serving and the shadow model's calibrated "
            "scores of each decision, by port of entry.",
            labels=("port",),
            buckets=DIFFERENCE_BUCKETS,
        )
        self.shadow_info = self._gauge(
            "centinela_shadow_info",
            "1 while a shadow model is scored beside the serving one; the label names its "
            "version. No sample without a shadow.",
            labels=("model_version",),
        )

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, labels: tuple[str, ...] = (), *, buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def set_shadow(self, model_version: str) -> None:
        """The shadow model serving (empty: none)."""
        self.shadow_info.clear()
        if model_version:
            self.shadow_info.labels(model_version).set(1)

    def set_versions(self, model_version: str, watchlist_version: str, rules_version: str) -> None:
        self.serving_versions.clear()
        self.serving_versions.labels(model_version, watchlist_version, rules_version).set(1)
        self.model_loaded.set(1 if model_version else 0)


class LaneCollector(Collector):
    """Each port's capacity, read from the lane policy at scrape time: realised shares over
    its window beside the budget, the share forced by rules, how far over capacity, events."""

    def __init__(self) -> None:
        self.source: Callable[[], Sequence[PortShares]] = list

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        shares = self.source()
        realised = _gauge(
            "centinela_lane_share",
            "Share of a port's decisions in its rolling window sent to each lane.",
            "port",
            "lane",
        )
        budget = _gauge(
            "centinela_lane_budget",
            "A port's configured capacity for each lane, as a share of its shipments.",
            "port",
            "lane",
        )
        rules = _gauge(
            "centinela_lane_rule_red_share",
            "Share of a port's window forced RED by hard rules (part of its RED capacity).",
            "port",
        )
        explored = _gauge(
            "centinela_lane_explored_share",
            "Share of a port's window sent RED by random exploration (part of its RED capacity).",
            "port",
        )
        over = _gauge(
            "centinela_lane_over_capacity_share",
            "How far hard rules alone exceed a port's RED capacity (0 when within it).",
            "port",
        )
        threshold = _gauge(
            "centinela_lane_threshold",
            "The model score a shipment must exceed at a port for each lane, as last used.",
            "port",
            "lane",
        )
        events = _counter(
            "centinela_lane_over_capacity_events",
            "Rule-forced RED decisions made while a port's rules exceeded its RED capacity.",
            "port",
        )
        for p in shares:
            realised.add_metric([p.port, "red"], p.red)
            realised.add_metric([p.port, "yellow"], p.yellow)
            budget.add_metric([p.port, "red"], p.budget_red)
            budget.add_metric([p.port, "yellow"], p.budget_yellow)
            rules.add_metric([p.port], p.rule_red)
            explored.add_metric([p.port], p.explored)
            over.add_metric([p.port], p.over_capacity)
            threshold.add_metric([p.port, "red"], p.red_threshold)
            threshold.add_metric([p.port, "yellow"], p.yellow_threshold)
            events.add_metric([p.port], p.over_capacity_events)
        yield from (realised, budget, rules, explored, over, threshold, events)


class MonitorCollector(Collector):
    """Drift per port and label lag, read from the service's monitor at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], Snapshot | None] = lambda: None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self.source() or Snapshot()
        psi = _gauge(
            "centinela_drift_psi",
            "Population stability index of a port's last drift_window decisions against the "
            "model's training window, for the calibrated score (feature=risk_score) and the "
            "model's 5 most important features; fixed decile bins, epsilon 1e-4 for empty bins. "
            "Over 0.25: a major shift.",
            "port",
            "feature",
        )
        no_history = _gauge(
            "centinela_drift_no_history_share",
            "Share of a port's drift window whose shipper has no history.",
            "port",
        )
        hits = _gauge(
            "centinela_drift_watchlist_hit_rate",
            "Share of a port's drift window with at least one watchlist hit.",
            "port",
        )
        size = _gauge(
            "centinela_drift_window_decisions",
            "Decisions in a port's drift window (PSI is exported from drift_min_decisions on).",
            "port",
        )
        for d in snapshot.drift:
            for feature, value in d.psi.items():
                psi.add_metric([d.port, feature], value)
            no_history.add_metric([d.port], d.no_history_share)
            hits.add_metric([d.port], d.watchlist_hit_rate)
            size.add_metric([d.port], d.decisions)
        awaiting = _gauge(
            "centinela_decisions_awaiting_outcome",
            "RED and YELLOW decisions still awaiting their first outcome, by age (to the hour); "
            "those older than label_max_age_days leave the count.",
            "port",
            "age",
        )
        rate = _gauge(
            "centinela_outcome_rate",
            "Share of a port's decisions of the last label_window_days with an outcome.",
            "port",
        )
        positive = _gauge(
            "centinela_positive_share_inspected",
            "Positives among first outcomes saying inspected, reported in the last "
            "label_window_days.",
            "port",
        )
        expired = _counter(
            "centinela_decisions_outcome_expired",
            "RED and YELLOW decisions dropped from the awaiting count after label_max_age_days "
            "without an outcome (since the server started).",
            "port",
        )
        for p in snapshot.labels:
            for age, n in p.awaiting.items():
                awaiting.add_metric([p.port, age], n)
            if p.outcome_rate is not None:
                rate.add_metric([p.port], p.outcome_rate)
            if p.positive_share_inspected is not None:
                positive.add_metric([p.port], p.positive_share_inspected)
            expired.add_metric([p.port], p.expired)
        since = GaugeMetricFamily(
            "centinela_seconds_since_last_outcome",
            "Seconds since the last outcome was recorded (in the ledger); since the server "
            "started when there is none.",
            value=snapshot.seconds_since_last_outcome,
        )
        yield from (psi, no_history, hits, size, awaiting, rate, positive, expired, since)


class LedgerCollector(Collector):
    """The decision ledger's health, read from the ledger at scrape time (no samples when the
    ledger is disabled)."""

    def __init__(self) -> None:
        self.source: Callable[[], LedgerHealth | None] = lambda: None
        self.follow: Callable[[], FollowHealth | None] = lambda: None

    def collect(
        self,
    ) -> Iterator[GaugeMetricFamily | HistogramMetricFamily | CounterMetricFamily]:
        yield from self._health()
        yield from _follow_families(self.follow())

    def _health(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        health = self.source()
        rows = GaugeMetricFamily(
            "centinela_ledger_rows", "Rows in the decision ledger (decisions and outcomes)."
        )
        size = GaugeMetricFamily(
            "centinela_ledger_bytes",
            "Bytes of the decision ledger on disk: the database file and its write-ahead log.",
        )
        commit = HistogramMetricFamily(
            "centinela_ledger_commit_seconds",
            "Duration of each group commit of the ledger writer (encoding, MACs, the "
            "transaction and its fsync), which the batch's replies wait for.",
        )
        group = HistogramMetricFamily(
            "centinela_ledger_group_size", "Rows written together in one group commit."
        )
        verify_ok = GaugeMetricFamily(
            "centinela_ledger_last_verify_ok",
            "1 if the last verification of the ledger's chain by this server (the tail check "
            "at start, then every ledger_verify_interval_s) passed, 0 if it failed.",
        )
        verify_time = GaugeMetricFamily(
            "centinela_ledger_last_verify_timestamp_seconds",
            "Unix time of the last verification of the ledger's chain by this server.",
        )
        if health is not None:
            rows.add_metric([], health.rows)
            size.add_metric([], health.bytes)
            commit.add_metric([], *_histogram(health.commit_seconds))
            group.add_metric([], *_histogram(health.group_size))
            verify_ok.add_metric([], 1 if health.verified.ok else 0)
            verify_time.add_metric([], health.verified.at)
        yield from (rows, size, commit, group, verify_ok, verify_time)


def _follow_families(
    follow: FollowHealth | None,
) -> Iterator[GaugeMetricFamily | HistogramMetricFamily | CounterMetricFamily]:
    """How far this server's entity history follows a shared ledger (no samples when the
    ledger is not shared)."""
    lag = GaugeMetricFamily(
        "centinela_ledger_follow_lag_seconds",
        "Seconds since this server's history last caught up with the shared ledger (the start "
        "of its last poll that read to the head): every row committed before then by another "
        "server is in this server's history features. About ledger_follow_interval_s when "
        "healthy; it grows while the database cannot be read.",
    )
    rows = GaugeMetricFamily(
        "centinela_ledger_follow_lag_rows",
        "Rows of the shared ledger the last poll found not yet applied (committed by any "
        "server during the interval before it).",
    )
    followed = CounterMetricFamily(
        "centinela_ledger_followed_rows",
        "Rows other servers committed that this server applied to its history.",
    )
    failures = CounterMetricFamily(
        "centinela_ledger_follow_failures",
        "Polls of the shared ledger that failed (the database unreachable, a row unreadable).",
    )
    delay = HistogramMetricFamily(
        "centinela_ledger_follow_delay_seconds",
        "For each row another server committed: seconds from its recorded_at (the other "
        "server's clock, before its commit) until it was in this server's history.",
    )
    if follow is not None:
        lag.add_metric([], follow.lag_seconds)
        rows.add_metric([], follow.lag_rows)
        followed.add_metric([], follow.followed)
        failures.add_metric([], follow.failures)
        delay.add_metric([], *_histogram(follow.delay))
    yield from (lag, rows, followed, failures, delay)


def _histogram(counts: Buckets) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``le`` buckets (``+Inf`` last) and the sum, as HistogramMetricFamily takes."""
    buckets: list[tuple[str, float]] = []
    seen = 0
    for bound, n in zip((*counts.bounds, float("inf")), counts.counts, strict=True):
        seen += n
        buckets.append((floatToGoString(bound), seen))  # type: ignore[no-untyped-call]
    return buckets, counts.total


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_endpoint(metrics: Metrics, settings: Settings) -> MetricsEndpoint:
    """Serve ``/metrics`` on ``metrics_host:metrics_port`` of ``settings`` (port 0 picks a free
    one) in a daemon thread; a port in use is a :class:`~features.errors.FailedPrecondition`
    naming it and its holder. With ``metrics_tls_cert_file`` and ``metrics_tls_key_file`` it is
    HTTPS only; with ``metrics_tls_client_ca_file`` too, it answers only clients with a
    certificate that CA signed."""
    host, port = settings.metrics_host, settings.metrics_port
    client_ca = settings.metrics_tls_client_ca_file
    try:
        server, thread = start_http_server(
            port,
            addr=host,
            registry=metrics.registry,
            certfile=_named(settings.metrics_tls_cert_file),
            keyfile=_named(settings.metrics_tls_key_file),
            client_cafile=_named(client_ca),
            client_auth_required=client_ca is not None,
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise port_taken("metrics", host, port) from None
        raise FailedPrecondition(
            f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
        ) from None
    return MetricsEndpoint(server, thread)


def _named(path: Path | None) -> str | None:
    return str(path) if path is not None else None
