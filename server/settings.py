"""The server's settings: the core's (:class:`scoring.settings.CoreSettings`) plus transport,
security and logging. One typed object, one ``CENTINELA_`` namespace, one file: this is what
``centinela serve --config`` reads, and what the analyst commands read a settings file with when
run as ``centinela`` (the server's file may hold both kinds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from scoring.settings import CoreSettings, load


class Settings(CoreSettings):
    """Everything an operator can set. Each field's docstring is its description."""

    grpc_host: str = "127.0.0.1"
    """Address the gRPC server binds to."""
    grpc_port: int = Field(50051, ge=0, le=65535)
    """gRPC port; 0 picks a free port (tests)."""
    metrics_host: str = "127.0.0.1"
    """Address of the Prometheus endpoint."""
    metrics_port: int = Field(9464, ge=0, le=65535)
    """Prometheus port; 0 picks a free port."""
    metrics_enabled: bool = True
    """Serve the Prometheus endpoint at all."""
    grace_period_s: float = Field(10.0, ge=0)
    """Seconds in-flight RPCs get to finish on SIGTERM/SIGINT."""
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest request or response message accepted."""
    stream_batch_max: int = Field(64, ge=1, le=4096)
    """Most shipments of a stream scored together in a batch."""
    batch_max_size: int = Field(64, ge=1, le=4096)
    """Most shipments scored together in one batch across calls: concurrent ScoreShipment calls and
    stream micro-batches queue for one batcher, which scores whatever is queued, up to this many, as
    one batch (a stream's micro-batch is never split, so one larger than this is a batch of its
    own)."""
    batch_max_wait_us: int = Field(0, ge=0, le=1_000_000)
    """Microseconds a batch with room left waits for more calls before it is scored. 0 (the default)
    never delays a call: a lone call is scored at once, and calls that arrive while a batch is being
    scored form the next one."""
    max_in_flight: int = Field(16, ge=1)
    """Most scoring calls (RiskScoring methods; a stream counts as one for its life) served at once;
    more wait in a queue of max_queued. Calls in flight are scored together in batches (one thread,
    one batch at a time), so more in flight means larger batches: on 2 CPUs with 8 clients, 4 gave
    680 calls/s (p99 15 ms), 8 gave 879/s (p99 11 ms), 16 gave 901/s (p99 12 ms)."""
    max_queued: int = Field(32, ge=0)
    """Most scoring calls waiting for a slot; a call beyond max_in_flight and this is refused
    RESOURCE_EXHAUSTED at once, so admitted calls finish in bounded time."""
    rate_limit_per_s: float = Field(0.0, ge=0)
    """Scoring calls, and stream messages, each caller may make per second (token bucket; 0 turns it
    off). A unary call over it is refused RESOURCE_EXHAUSTED; a stream over it is slowed."""
    rate_limit_burst: int = Field(50, ge=1)
    """Calls a caller may make at once above rate_limit_per_s."""
    max_stream_messages: int = Field(100_000, ge=1)
    """Most messages one ScoreShipments stream may send; the stream ends RESOURCE_EXHAUSTED after
    answering that many."""
    shutdown_notice_s: float = Field(2.0, ge=0)
    """On SIGTERM/SIGINT, seconds health reports NOT_SERVING while calls are still served, so load
    balancers stop sending; then the grace period starts. A second signal skips what is left of
    it."""
    tls_cert_file: Path | None = None
    """Server certificate chain (PEM) for gRPC; with tls_key_file, gRPC serves TLS only. Both files
    are re-read when they change, for each new connection."""
    tls_key_file: Path | None = None
    """Private key (PEM) of tls_cert_file."""
    tls_client_ca_file: Path | None = None
    """CA certificates (PEM) that sign client certificates: set, every gRPC client must present one
    (mutual TLS) and authentication is required; the caller's name and roles come from its
    certificate."""
    credentials_file: Path | None = None
    """YAML file of callers with bearer tokens (callers: [{name, token_sha256, roles}]); set,
    authentication is required. Re-read when it changes."""
    admin_port: int | None = Field(None, ge=0, le=65535)
    """Serve the Admin service on this port of grpc_host only (0 picks one); unset, Admin shares
    grpc_port."""
    allow_insecure_remote: bool = False
    """Serve plaintext gRPC or metrics on a non-loopback address; without it the server refuses to
    start there with no TLS."""
    metrics_tls_cert_file: Path | None = None
    """Certificate chain (PEM) of the Prometheus endpoint: HTTPS only."""
    metrics_tls_key_file: Path | None = None
    """Private key (PEM) of metrics_tls_cert_file."""
    metrics_tls_client_ca_file: Path | None = None
    """CA certificates (PEM) the Prometheus endpoint requires a client certificate from (the
    scraper's)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level of the JSON logs on stderr."""
    log_json: bool = True
    """JSON log lines (false: plain text for humans)."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, ``config_file`` (YAML mapping), the environment and ``overrides``."""
    return load(Settings, config_file, **overrides)
