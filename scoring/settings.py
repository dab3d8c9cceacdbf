"""The core's settings, and how every settings object is loaded.

:class:`CoreSettings` holds what scoring reads; :class:`server.settings.Settings` adds what the
server alone needs, and is the one object an operator configures. Values come, in rising
precedence, from the field defaults, an optional YAML file (``centinela serve --config FILE``)
and environment variables prefixed ``CENTINELA_`` (``CENTINELA_GRPC_PORT``). Unknown keys in the
file are rejected, naming the key, so a typo never silently falls back to a default. Dicts and
lists from the environment are JSON; a value that is not JSON at all is a
:class:`~features.errors.ConfigError` naming the variable and the JSON the setting takes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar, get_origin

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


class CoreSettings(BaseSettings):
    """What the scoring core reads: model, watchlist, rules, history, ledger, lanes, exams and
    drift. The server's transport, security and logging settings extend it
    (:class:`server.settings.Settings`): one object, one ``CENTINELA_`` namespace, one file.
    Each field's docstring is its description, and its documentation."""

    model_config = SettingsConfigDict(
        env_prefix="CENTINELA_", extra="forbid", frozen=True, use_attribute_docstrings=True
    )

    registry_dir: Path = Path("var/registry")
    """Model registry directory; the promoted bundle serves."""
    model_version: str | None = None
    """Serve this bundle version instead of the promoted one."""
    shadow_model: str | None = Field(None, pattern=r"^v\d{4,}$")
    """A bundle version of the registry (v0003) scored beside the serving model on every shipment,
    on features measured against its own reference: it decides nothing; each decision's ledger
    record keeps its score and the lane it would have had (shadow), and centinela_shadow_* metrics
    count the lanes against the serving model's. It loads with the serving model, at start and on
    ReloadModel. Unset: none."""
    watchlist_file: Path | None = None
    """Watchlist YAML file; unset means the file shipped with Centinela."""
    rules_file: Path | None = None
    """Hard rules YAML file; unset means the file shipped with Centinela."""
    data_dir: Path = Path("var/data")
    """Canonical tables of past shipments and outcomes: the entity history live scoring starts from,
    and where --bootstrap simulates data when no model exists."""
    bootstrap_shipments: int = Field(100_000, ge=1_000)
    """Size of the world --bootstrap simulates."""
    bootstrap_seed: int = 7
    """Seed of the bootstrap world and model."""
    ledger_path: Path = Path("var/ledger.sqlite")
    """SQLite file of the decision ledger (WAL mode), unless ledger_url is set."""
    ledger_url: str | None = None
    """Where the decision ledger is, as a URL: sqlite:///path/to/file (three slashes: a relative
    path) or postgresql://user@host:port/database (PostgreSQL, which several servers may share; give
    its password as libpq reads it, PGPASSWORD or a .pgpass file, not in the URL; its key files have
    no default place: set ledger_key_file and ledger_signing_key_file). Unset: the SQLite file
    ledger_path."""
    ledger_enabled: bool = True
    """Store every decision and outcome durably before replying."""
    ledger_key_file: Path | None = None
    """Key ring of the ledger's MAC chain: YAML/JSON {key_id: base64 key}; the last key writes new
    rows, the others verify older ones. Unset: <ledger>.key beside the ledger, generated (0600) on
    first start when no row needs an older key."""
    ledger_key: SecretStr | None = None
    """One MAC key from the environment (CENTINELA_LEDGER_KEY=ID:BASE64); added to the key ring as
    the key that writes. Never stored in the ledger."""
    ledger_signing_key_file: Path | None = None
    """Ed25519 private key (PEM) that signs ledger checkpoints. Unset: <ledger>.signing.pem beside
    the ledger, generated (0600) on first start."""
    ledger_public_key_files: list[Path] = Field(default_factory=list)
    """Public keys (PEM, or exported checkpoints) of earlier signing keys whose checkpoints stay
    trusted after the signing key is rotated."""
    ledger_checkpoint_rows: int = Field(1000, ge=1)
    """Write a signed ledger checkpoint at least every this many rows."""
    ledger_checkpoint_seconds: float = Field(300.0, gt=0)
    """Write a signed ledger checkpoint at least this often while rows are unsigned, and one at
    shutdown."""
    ledger_start_check_rows: int = Field(10_000, ge=0)
    """At start, verify this many last rows of the ledger (and back to its latest checkpoint when
    that is earlier) before appending; 0 verifies the whole chain."""
    ledger_verify_interval_s: float = Field(3600.0, ge=0)
    """While serving, check the ledger again every this many seconds as at start
    (ledger_start_check_rows rows, the head, the witness; from the first bad row once one is found)
    without stopping the writer, for centinela_ledger_last_verify_ok; 0: only at start. A failure is
    logged and alerted on; the server keeps appending."""
    ledger_follow_interval_s: float = Field(0.2, gt=0, le=60)
    """Where several servers share the ledger (ledger_url postgresql://), how often each reads the
    rows the others committed (one indexed query when none are new) and adds them to its entity
    history: a shipment scored on one server counts in every server's history features at most about
    this long plus one poll later (centinela_ledger_follow_lag_seconds). Unused with a SQLite ledger
    (one server)."""
    ledger_witness_file: Path | None = None
    """A checkpoint exported earlier (centinela ledger checkpoint) and kept outside: the server
    refuses to start unless the ledger still holds it."""
    max_goods_lines: int = Field(1_000, ge=1)
    """Most goods lines one shipment may declare."""
    declared_at_max_age_days: float = Field(21.0, gt=0)
    """Live scoring accepts a declaredAt at most this many days before now: history enters through
    data_dir, so a back-dated declaration cannot make a new shipper look established."""
    declared_at_max_ahead_days: float = Field(3.0, ge=0)
    """Live scoring accepts a declaredAt at most this many days ahead."""
    lane_budgets: dict[str, Budget] = Field(default_factory=lambda: {"default": Budget()})
    """Inspection budget per port (UN/LOCODE); 'default' covers the others."""
    exploration_seed: int = 20241203
    """Seed of the exploration draw (a hash of it and the shipment id)."""
    exam_capacity: ExamCapacity = Field(default_factory=dict)
    """Exam capacity per port (UN/LOCODE; 'default' covers the others): exam (physical_sampling,
    non_intrusive, canine, documentary) -> share 0..1 of the port's last 1000 decisions; an exam not
    named, or nothing configured, is unlimited."""
    drift_window: int = Field(2000, ge=10, le=1_000_000)
    """Decisions per port the drift figures (PSI of the score and the model's top features against
    the bundle's training window, no-history share, watchlist-hit rate) are computed over: each
    port's last this many."""
    drift_min_decisions: int = Field(200, ge=1)
    """Decisions a port's drift window must hold before its PSI is exported (sampling noise alone
    gives about 9/n on n decisions)."""
    label_window_days: float = Field(30.0, gt=0)
    """Days of decisions the outcome rate, and of reports the positive share among inspected, are
    computed over."""
    label_max_age_days: float = Field(90.0, gt=0)
    """A RED or YELLOW decision still awaiting an outcome after this many days leaves
    centinela_decisions_awaiting_outcome (counted once as expired)."""

    @property
    def ledger_location(self) -> Path | str:
        """Where the ledger is: ``ledger_url`` if set, else the SQLite file ``ledger_path``
        (what :func:`scoring.ledger.store.open_store` takes)."""
        return self.ledger_url if self.ledger_url is not None else self.ledger_path


# A setting from the environment whose value pydantic-settings cannot parse as JSON.
_UNPARSABLE = re.compile(r'field "(?P<name>\w+)" from source "(?P<source>\w+)"')
# What a dict or list setting looks like in the environment, for the error that names it.
_ENV_EXAMPLES = {
    "lane_budgets": '{"MXZLO": {"red": 0.015, "yellow": 0.04}}',
    "exam_capacity": '{"MXZLO": {"canine": 0.02}}',
    "ledger_public_key_files": '["/etc/centinela/old-signing.pem"]',
}


def _unparsable(error: SettingsError, settings_class: type[BaseSettings]) -> str:
    """One line for a setting whose value could not be parsed at all (pydantic-settings parses
    dicts and lists from the environment as JSON before validating them)."""
    found = _UNPARSABLE.search(str(error))
    if found is None:
        return f"invalid settings: {error}"
    name, source = found["name"], found["source"]
    why = " ".join(str(error.__cause__).split()) if error.__cause__ else "cannot be parsed"
    field = settings_class.model_fields.get(name)
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


S = TypeVar("S", bound=CoreSettings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> CoreSettings:
    """Core settings from defaults, ``config_file`` (YAML mapping), the environment and
    ``overrides``; a key of the file that is not a core setting is an error."""
    return load(CoreSettings, config_file, **overrides)


def load(settings_class: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """``settings_class`` from its defaults, ``config_file`` (a YAML mapping), the environment
    and ``overrides``, in rising precedence; unknown keys are rejected by name."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        loaded = read_yaml_file(config_file, "settings file")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"settings file {config_file} must be a mapping of setting: value")
        file_values = loaded

    class FromFile(settings_class):  # type: ignore[valid-type,misc]
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
        raise ConfigError(_unparsable(exc, settings_class)) from None
    except ValidationError as exc:
        where = f"settings file {config_file} or environment" if config_file else "settings"
        raise ConfigError(f"invalid {where}", pydantic_violations(exc)) from exc
