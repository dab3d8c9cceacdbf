"""Every Prometheus metric Centinela exports, on one registry, as ``server/metrics.yaml`` lists
them.

The catalogue file holds each metric's name, type, labels and help text. :class:`Metrics` makes
the live ones (what the server counts as it serves: calls, decisions, reloads, the shadow) as
the attributes the file names, and its collectors fill the others at scrape time: the lane
policy's shares per port (:class:`LaneCollector`), drift and label lag from the monitor
(:class:`MonitorCollector`; :mod:`scoring.drift` defines the statistics), and the ledger's
health and, where servers share it, how far this one follows the others' rows
(:class:`LedgerCollector`). The registry is explicit, not the process-global default, so tests
can run several servers in one process; it also carries the standard ``process_*`` and
``python_info`` collectors.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from threading import Thread
from typing import Annotated, Literal
from wsgiref.simple_server import WSGIServer

import yaml
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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from features.errors import ConfigError, FailedPrecondition
from features.yamlfiles import load_strict
from scoring.lanes import PortShares
from scoring.ledger import Buckets, FollowHealth, LedgerHealth
from scoring.monitor import Snapshot
from server.limits import port_taken
from server.settings import Settings

# The *_created series double every metric's lines and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CATALOGUE_FILE = Path(__file__).with_name("metrics.yaml")
_NAME = r"^centinela_[a-z0-9_]+$"


class MetricSpec(BaseModel):
    """One metric of the catalogue: its type, labels and help text; a live metric names its
    :class:`Metrics` attribute (and a histogram its bucket bounds), a scraped one neither."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["counter", "gauge", "histogram"]
    help: str = Field(min_length=1)
    labels: tuple[str, ...] = ()
    attribute: str | None = None
    buckets: str | None = None


class Catalogue(BaseModel):
    """``server/metrics.yaml``: every metric Centinela exports and the histograms' bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buckets: dict[str, tuple[float, ...]]
    metrics: dict[Annotated[str, StringConstraints(pattern=_NAME)], MetricSpec]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        for name, spec in self.metrics.items():
            if spec.type == "counter" and name.endswith("_total"):
                raise ValueError(f"counter {name}: drop _total, the exposition adds it")
            live_histogram = spec.type == "histogram" and spec.attribute is not None
            if live_histogram != (spec.buckets is not None):
                raise ValueError(f"{name}: a live histogram, and only one, names its buckets")
            if spec.buckets is not None and spec.buckets not in self.buckets:
                raise ValueError(f"{name}: no buckets named {spec.buckets!r}")
        return self


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    """The metric catalogue at ``path``; :class:`~features.errors.ConfigError` naming the file
    and what is wrong (a duplicate name included)."""
    try:
        return Catalogue.model_validate(load_strict(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"metric catalogue {path}: {error}") from None


CATALOGUE = load_catalogue()
_LIVE = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
_FAMILIES: dict[str, type[Family]] = {
    "counter": CounterMetricFamily,
    "gauge": GaugeMetricFamily,
    "histogram": HistogramMetricFamily,
}
Sample = tuple[Sequence[str], float]  # label values and the value


def _empty(name: str) -> Family:
    spec = CATALOGUE.metrics[name]
    return _FAMILIES[spec.type](name, spec.help, labels=list(spec.labels))


def family(name: str, samples: Iterable[Sample] = ()) -> Family:
    """The catalogue's scraped gauge or counter ``name`` (its type, help and labels from the
    file) with these samples, as a collector yields it."""
    scraped = _empty(name)
    if isinstance(scraped, HistogramMetricFamily):
        raise ConfigError(f"{CATALOGUE_FILE.name}: {name} is a histogram")
    for labels, value in samples:
        scraped.add_metric(labels, value)
    return scraped


def histogram(name: str, counts: Buckets | None) -> Family:
    """The catalogue's scraped histogram ``name`` with the counts of ``counts`` (no sample when
    there are none)."""
    scraped = _empty(name)
    if not isinstance(scraped, HistogramMetricFamily):
        raise ConfigError(f"{CATALOGUE_FILE.name}: {name} is not a histogram")
    if counts is not None:
        buckets: list[tuple[str, float]] = []
        seen = 0
        for bound, n in zip((*counts.bounds, float("inf")), counts.counts, strict=True):
            seen += n
            buckets.append((floatToGoString(bound), seen))  # type: ignore[no-untyped-call]
        scraped.add_metric([], buckets, counts.total)
    return scraped


@dataclass
class Metrics:
    """Every metric the server exports, on one registry: the live ones the server counts as it
    serves (an attribute each, declared in ``server/metrics.yaml``), and collectors that read
    the lane policy, the monitor and the ledger at scrape time."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Calls: how many, how they ended, how long they took, what the limits refused.
    requests: Counter = field(init=False)
    rejected: Counter = field(init=False)
    in_flight: Gauge = field(init=False)
    queued: Gauge = field(init=False)
    latency: Histogram = field(init=False)
    stream_messages: Counter = field(init=False)
    stream_batch_size: Histogram = field(init=False)
    batch_size: Histogram = field(init=False)
    # What was decided.
    decisions: Counter = field(init=False)
    exams: Counter = field(init=False)
    risk_score: Histogram = field(init=False)
    invalid_shipments: Counter = field(init=False)
    watchlist_hits: Counter = field(init=False)
    outcomes: Counter = field(init=False)
    # What serves, and the shadow beside it.
    model_loaded: Gauge = field(init=False)
    serving_versions: Gauge = field(init=False)
    reloads: Counter = field(init=False)
    shadow_decisions: Counter = field(init=False)
    shadow_score_difference: Histogram = field(init=False)
    shadow_info: Gauge = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        for name, spec in CATALOGUE.metrics.items():
            if spec.attribute is None:
                continue
            metric: Counter | Gauge | Histogram
            if spec.buckets is None:
                metric = _LIVE[spec.type](name, spec.help, spec.labels, registry=r)
            else:
                bounds = CATALOGUE.buckets[spec.buckets]
                metric = Histogram(name, spec.help, spec.labels, buckets=bounds, registry=r)
            setattr(self, spec.attribute, metric)
        self.lanes = LaneCollector()
        r.register(self.lanes)
        self.monitor = MonitorCollector()
        r.register(self.monitor)
        self.ledger = LedgerCollector()
        r.register(self.ledger)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def set_shadow(self, model_version: str) -> None:
        """The shadow model serving (empty: none)."""
        self.shadow_info.clear()
        if model_version:
            self.shadow_info.labels(model_version).set(1)

    def set_versions(self, model_version: str, watchlist_version: str, rules_version: str) -> None:
        self.serving_versions.clear()
        self.serving_versions.labels(model_version, watchlist_version, rules_version).set(1)
        self.model_loaded.set(1 if model_version else 0)


def _check_attributes() -> None:
    """The catalogue's live metrics and :class:`Metrics`' declared attributes are the same
    names with the same types: a metric added to one and not the other fails at import."""
    declared = {
        f.name: f.type for f in fields(Metrics) if f.type in ("Counter", "Gauge", "Histogram")
    }
    listed = {
        s.attribute: _LIVE[s.type].__name__
        for s in CATALOGUE.metrics.values()
        if s.attribute is not None
    }
    if declared != listed:
        raise ConfigError(
            f"{CATALOGUE_FILE.name} and server.metrics.Metrics disagree on the live metrics: "
            f"only in the file {sorted(listed.items() - declared.items())}, only in the class "
            f"{sorted(declared.items() - listed.items())}"
        )


_check_attributes()


class LaneCollector(Collector):
    """Each port's capacity, read from the lane policy at scrape time: realised shares over
    its window beside the budget, the share forced by rules, how far over capacity, events."""

    def __init__(self) -> None:
        self.source: Callable[[], Sequence[PortShares]] = list

    def collect(self) -> Iterator[Family]:
        shares = self.source()
        yield family("centinela_lane_share", _lanes(shares, lambda p: (p.red, p.yellow)))
        yield family(
            "centinela_lane_budget", _lanes(shares, lambda p: (p.budget_red, p.budget_yellow))
        )
        yield family("centinela_lane_rule_red_share", (([p.port], p.rule_red) for p in shares))
        yield family("centinela_lane_explored_share", (([p.port], p.explored) for p in shares))
        over = (([p.port], p.over_capacity) for p in shares)
        yield family("centinela_lane_over_capacity_share", over)
        thresholds = _lanes(shares, lambda p: (p.red_threshold, p.yellow_threshold))
        yield family("centinela_lane_threshold", thresholds)
        events = (([p.port], p.over_capacity_events) for p in shares)
        yield family("centinela_lane_over_capacity_events", events)


def _lanes(
    shares: Sequence[PortShares], read: Callable[[PortShares], tuple[float, float]]
) -> Iterator[Sample]:
    """A port's red and yellow values as samples labelled (port, lane)."""
    for p in shares:
        red, yellow = read(p)
        yield [p.port, "red"], red
        yield [p.port, "yellow"], yellow


class MonitorCollector(Collector):
    """Drift per port and label lag, read from the service's monitor at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], Snapshot | None] = lambda: None

    def collect(self) -> Iterator[Family]:
        snapshot = self.source() or Snapshot()
        drift, labels = snapshot.drift, snapshot.labels
        psi = (([d.port, feature], v) for d in drift for feature, v in d.psi.items())
        yield family("centinela_drift_psi", psi)
        yield family(
            "centinela_drift_no_history_share", (([d.port], d.no_history_share) for d in drift)
        )
        yield family(
            "centinela_drift_watchlist_hit_rate", (([d.port], d.watchlist_hit_rate) for d in drift)
        )
        yield family("centinela_drift_window_decisions", (([d.port], d.decisions) for d in drift))
        awaiting = (([p.port, age], n) for p in labels for age, n in p.awaiting.items())
        yield family("centinela_decisions_awaiting_outcome", awaiting)
        rates = (([p.port], p.outcome_rate) for p in labels if p.outcome_rate is not None)
        yield family("centinela_outcome_rate", rates)
        positives = (
            ([p.port], p.positive_share_inspected)
            for p in labels
            if p.positive_share_inspected is not None
        )
        yield family("centinela_positive_share_inspected", positives)
        yield family("centinela_decisions_outcome_expired", (([p.port], p.expired) for p in labels))
        since: list[Sample] = [([], snapshot.seconds_since_last_outcome)]
        yield family("centinela_seconds_since_last_outcome", since)


class LedgerCollector(Collector):
    """The decision ledger's health, read from the ledger at scrape time (no samples when the
    ledger is disabled); where servers share it (PostgreSQL), how far this server's entity
    history follows the others' rows (no samples when it is not shared)."""

    def __init__(self) -> None:
        self.source: Callable[[], LedgerHealth | None] = lambda: None
        self.follow: Callable[[], FollowHealth | None] = lambda: None

    def collect(self) -> Iterator[Family]:
        health, follow = self.source(), self.follow()
        values: dict[str, float] = {}
        if health is not None:
            values |= {
                "centinela_ledger_rows": health.rows,
                "centinela_ledger_bytes": health.bytes,
                "centinela_ledger_last_verify_ok": 1 if health.verified.ok else 0,
                "centinela_ledger_last_verify_timestamp_seconds": health.verified.at,
            }
        if follow is not None:
            values |= {
                "centinela_ledger_follow_lag_seconds": follow.lag_seconds,
                "centinela_ledger_follow_lag_rows": follow.lag_rows,
                "centinela_ledger_followed_rows": follow.followed,
                "centinela_ledger_follow_failures": follow.failures,
            }
        for name in _LEDGER_VALUES:
            yield family(name, [([], values[name])] if name in values else [])
        yield histogram(
            "centinela_ledger_commit_seconds", None if health is None else health.commit_seconds
        )
        yield histogram(
            "centinela_ledger_group_size", None if health is None else health.group_size
        )
        yield histogram(
            "centinela_ledger_follow_delay_seconds", None if follow is None else follow.delay
        )


_LEDGER_VALUES = (
    "centinela_ledger_rows",
    "centinela_ledger_bytes",
    "centinela_ledger_last_verify_ok",
    "centinela_ledger_last_verify_timestamp_seconds",
    "centinela_ledger_follow_lag_seconds",
    "centinela_ledger_follow_lag_rows",
    "centinela_ledger_followed_rows",
    "centinela_ledger_follow_failures",
)


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
