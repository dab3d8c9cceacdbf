"""The one typed settings object.

Values come, in rising precedence, from the field defaults, an optional YAML file (``centinela
serve --config FILE``) and environment variables prefixed ``CENTINELA_`` (``CENTINELA_GRPC_PORT``).
Unknown keys in the file are rejected, naming the key, so a typo never silently falls back to a
default. Dicts and lists from the environment are JSON; a value that is not JSON at all is a
:class:`~features.errors.ConfigError` naming the variable and the JSON the setting takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from features.errors import ConfigError, pydantic_violations
from features.yamlfiles import read_yaml_file
from scoring.exams import ExamCapacity
from scoring.lanes import Budget


class Settings(BaseSettings):
    """Everything an operator can set. Each field's description is its documentation."""

    model_config = SettingsConfigDict(env_prefix="CENTINELA_", extra="forbid", frozen=True)

    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    grpc_port: int = Field(
        50051, ge=0, le=65535, description="gRPC port; 0 picks a free port (tests)."
    )
    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus endpoint.")
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Prometheus port; 0 picks a free port."
    )
    metrics_enabled: bool = Field(True, description="Serve the Prometheus endpoint at all.")
    registry_dir: Path = Field(
        Path("var/registry"), description="Model registry directory; the promoted bundle serves."
    )
    model_version: str | None = Field(
        None, description="Serve this bundle version instead of the promoted one."
    )
    watchlist_file: Path | None = Field(
        None, description="Watchlist YAML file; unset means the file shipped with Centinela."
    )
    rules_file: Path | None = Field(
        None, description="Hard rules YAML file; unset means the file shipped with Centinela."
    )
    data_dir: Path = Field(
        Path("var/data"),
        description="Canonical tables of past shipments and outcomes: the entity history live "
        "scoring starts from, and where --bootstrap simulates data when no model exists.",
    )
    bootstrap_shipments: int = Field(
        100_000, ge=1_000, description="Size of the world --bootstrap simulates."
    )
    bootstrap_seed: int = Field(7, description="Seed of the bootstrap world and model.")
    ledger_path: Path = Field(
        Path("var/ledger.sqlite"), description="SQLite file of the decision ledger (WAL mode)."
    )
    ledger_enabled: bool = Field(
        True, description="Store every decision and outcome durably before replying."
    )
    ledger_key_file: Path | None = Field(
        None,
        description="Key ring of the ledger's MAC chain: YAML/JSON {key_id: base64 key}; the "
        "last key writes new rows, the others verify older ones. Unset: <ledger>.key beside "
        "the ledger, generated (0600) on first start when no row needs an older key.",
    )
    ledger_key: SecretStr | None = Field(
        None,
        description="One MAC key from the environment (CENTINELA_LEDGER_KEY=ID:BASE64); added "
        "to the key ring as the key that writes. Never stored in the ledger.",
    )
    ledger_signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs ledger checkpoints. Unset: "
        "<ledger>.signing.pem beside the ledger, generated (0600) on first start.",
    )
    ledger_public_key_files: list[Path] = Field(
        default_factory=list,
        description="Public keys (PEM, or exported checkpoints) of earlier signing keys whose "
        "checkpoints stay trusted after the signing key is rotated.",
    )
    ledger_checkpoint_rows: int = Field(
        1000, ge=1, description="Write a signed ledger checkpoint at least every this many rows."
    )
    ledger_checkpoint_seconds: float = Field(
        300.0,
        gt=0,
        description="Write a signed ledger checkpoint at least this often while rows are "
        "unsigned, and one at shutdown.",
    )
    ledger_start_check_rows: int = Field(
        10_000,
        ge=0,
        description="At start, verify this many last rows of the ledger (and back to its "
        "latest checkpoint when that is earlier) before appending; 0 verifies the whole chain.",
    )
    ledger_verify_interval_s: float = Field(
        3600.0,
        ge=0,
        description="While serving, check the ledger again every this many seconds as at start "
        "(ledger_start_check_rows rows, the head, the witness; from the first bad row once one "
        "is found) without stopping the writer, for centinela_ledger_last_verify_ok; 0: only "
        "at start. A failure is logged and alerted on; the server keeps appending.",
    )
    ledger_witness_file: Path | None = Field(
        None,
        description="A checkpoint exported earlier (centinela ledger checkpoint) and kept "
        "outside: the server refuses to start unless the ledger still holds it.",
    )
    grace_period_s: float = Field(
        10.0, ge=0, description="Seconds in-flight RPCs get to finish on SIGTERM/SIGINT."
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request or response message accepted."
    )
    stream_batch_max: int = Field(
        64, ge=1, le=4096, description="Most shipments of a stream scored together in a batch."
    )
    batch_max_size: int = Field(
        64,
        ge=1,
        le=4096,
        description="Most shipments scored together in one batch across calls: concurrent "
        "ScoreShipment calls and stream micro-batches queue for one batcher, which scores "
        "whatever is queued, up to this many, as one batch (a stream's micro-batch is never "
        "split, so one larger than this is a batch of its own).",
    )
    batch_max_wait_us: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Microseconds a batch with room left waits for more calls before it is "
        "scored. 0 (the default) never delays a call: a lone call is scored at once, and "
        "calls that arrive while a batch is being scored form the next one.",
    )
    max_goods_lines: int = Field(
        1_000, ge=1, description="Most goods lines one shipment may declare."
    )
    max_in_flight: int = Field(
        16,
        ge=1,
        description="Most scoring calls (RiskScoring methods; a stream counts as one for its "
        "life) served at once; more wait in a queue of max_queued. Calls in flight are scored "
        "together in batches (one thread, one batch at a time), so more in flight means larger "
        "batches: on 2 CPUs with 8 clients, 4 gave 680 calls/s (p99 15 ms), 8 gave 879/s "
        "(p99 11 ms), 16 gave 901/s (p99 12 ms).",
    )
    max_queued: int = Field(
        32,
        ge=0,
        description="Most scoring calls waiting for a slot; a call beyond max_in_flight and "
        "this is refused RESOURCE_EXHAUSTED at once, so admitted calls finish in bounded time.",
    )
    rate_limit_per_s: float = Field(
        0.0,
        ge=0,
        description="Scoring calls, and stream messages, each caller may make per second "
        "(token bucket; 0 turns it off). A unary call over it is refused RESOURCE_EXHAUSTED; "
        "a stream over it is slowed.",
    )
    rate_limit_burst: int = Field(
        50, ge=1, description="Calls a caller may make at once above rate_limit_per_s."
    )
    max_stream_messages: int = Field(
        100_000,
        ge=1,
        description="Most messages one ScoreShipments stream may send; the stream ends "
        "RESOURCE_EXHAUSTED after answering that many.",
    )
    shutdown_notice_s: float = Field(
        2.0,
        ge=0,
        description="On SIGTERM/SIGINT, seconds health reports NOT_SERVING while calls are "
        "still served, so load balancers stop sending; then the grace period starts. A "
        "second signal skips what is left of it.",
    )
    declared_at_max_age_days: float = Field(
        21.0,
        gt=0,
        description="Live scoring accepts a declaredAt at most this many days before now: "
        "history enters through data_dir, so a back-dated declaration cannot make a new "
        "shipper look established.",
    )
    declared_at_max_ahead_days: float = Field(
        3.0, ge=0, description="Live scoring accepts a declaredAt at most this many days ahead."
    )
    lane_budgets: dict[str, Budget] = Field(
        default_factory=lambda: {"default": Budget()},
        description="Inspection budget per port (UN/LOCODE); 'default' covers the others.",
    )
    exploration_seed: int = Field(
        20241203, description="Seed of the exploration draw (a hash of it and the shipment id)."
    )
    exam_capacity: ExamCapacity = Field(
        default_factory=dict,
        description="Exam capacity per port (UN/LOCODE; 'default' covers the others): exam "
        "(physical_sampling, non_intrusive, canine, documentary) -> share 0..1 of the port's "
        "last 1000 decisions; an exam not named, or nothing configured, is unlimited.",
    )
    drift_window: int = Field(
        2000,
        ge=10,
        le=1_000_000,
        description="Decisions per port the drift figures (PSI of the score and the model's "
        "top features against the bundle's training window, no-history share, watchlist-hit "
        "rate) are computed over: each port's last this many.",
    )
    drift_min_decisions: int = Field(
        200,
        ge=1,
        description="Decisions a port's drift window must hold before its PSI is exported "
        "(sampling noise alone gives about 9/n on n decisions).",
    )
    label_window_days: float = Field(
        30.0,
        gt=0,
        description="Days of decisions the outcome rate, and of reports the positive share "
        "among inspected, are computed over.",
    )
    label_max_age_days: float = Field(
        90.0,
        gt=0,
        description="A RED or YELLOW decision still awaiting an outcome after this many days "
        "leaves centinela_decisions_awaiting_outcome (counted once as expired).",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="Server certificate chain (PEM) for gRPC; with tls_key_file, gRPC serves "
        "TLS only. Both files are re-read when they change, for each new connection.",
    )
    tls_key_file: Path | None = Field(None, description="Private key (PEM) of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) that sign client certificates: set, every gRPC "
        "client must present one (mutual TLS) and authentication is required; the caller's "
        "name and roles come from its certificate.",
    )
    credentials_file: Path | None = Field(
        None,
        description="YAML file of callers with bearer tokens (callers: [{name, token_sha256, "
        "roles}]); set, authentication is required. Re-read when it changes.",
    )
    admin_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve the Admin service on this port of grpc_host only (0 picks one); "
        "unset, Admin shares grpc_port.",
    )
    allow_insecure_remote: bool = Field(
        False,
        description="Serve plaintext gRPC or metrics on a non-loopback address; without it "
        "the server refuses to start there with no TLS.",
    )
    metrics_tls_cert_file: Path | None = Field(
        None, description="Certificate chain (PEM) of the Prometheus endpoint: HTTPS only."
    )
    metrics_tls_key_file: Path | None = Field(
        None, description="Private key (PEM) of metrics_tls_cert_file."
    )
    metrics_tls_client_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) the Prometheus endpoint requires a client "
        "certificate from (the scraper's).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the JSON logs on stderr."
    )
    log_json: bool = Field(True, description="JSON log lines (false: plain text for humans).")


# A setting from the environment whose value pydantic-settings cannot parse as JSON.
_UNPARSABLE = re.compile(r'field "(?P<name>\w+)" from source "(?P<source>\w+)"')
# What a dict or list setting looks like in the environment, for the error that names it.
_ENV_EXAMPLES = {
    "lane_budgets": '{"MXZLO": {"red": 0.015, "yellow": 0.04}}',
    "exam_capacity": '{"MXZLO": {"canine": 0.02}}',
    "ledger_public_key_files": '["/etc/centinela/old-signing.pem"]',
}


def _unparsable(error: SettingsError) -> str:
    """One line for a setting whose value could not be parsed at all (pydantic-settings parses
    dicts and lists from the environment as JSON before validating them)."""
    found = _UNPARSABLE.search(str(error))
    if found is None:
        return f"invalid settings: {error}"
    name, source = found["name"], found["source"]
    why = " ".join(str(error.__cause__).split()) if error.__cause__ else "cannot be parsed"
    field = Settings.model_fields.get(name)
    origin = get_origin(field.annotation) if field else None
    shape = "a JSON object" if origin is dict else "a JSON array" if origin is list else "JSON"
    if source != "EnvSettingsSource":
        return f"setting {name} ({source}) is not valid JSON ({why}); it takes {shape}"
    variable = f"CENTINELA_{name.upper()}"
    example = f", e.g. {variable}='{_ENV_EXAMPLES[name]}'" if name in _ENV_EXAMPLES else ""
    return (
        f"environment variable {variable} is not valid JSON ({why}); {name} from the "
        f"environment takes {shape}{example}"
    )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, ``config_file`` (YAML mapping), the environment and ``overrides``."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        loaded = read_yaml_file(config_file, "settings file")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"settings file {config_file} must be a mapping of setting: value")
        file_values = loaded

    class FromFile(Settings):
        """Settings whose lowest-precedence source is this file's values."""

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            file_source = InitSettingsSource(settings_cls, init_kwargs=file_values)
            return (init_settings, env_settings, file_source)

    try:
        return FromFile(**overrides)
    except SettingsError as exc:
        raise ConfigError(_unparsable(exc)) from None
    except ValidationError as exc:
        where = f"settings file {config_file} or environment" if config_file else "settings"
        raise ConfigError(f"invalid {where}", pydantic_violations(exc)) from exc
