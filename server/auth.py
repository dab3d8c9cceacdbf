"""Trust boundaries: who may call what, over which transport.

**Callers.** A call is made by a caller with a name and roles, identified by either

- a bearer token, ``authorization: Bearer <token>``, whose SHA-256 (hex) is listed in the
  credentials file (``credentials_file``: ``callers: [{name, token_sha256, roles}]``, unknown keys
  rejected, re-read when it changes), or
- a client certificate signed by ``tls_client_ca_file`` (mutual TLS): its subject common name is
  the caller's name, each URI SAN ``spiffe://centinela/role/ROLE`` one of its roles (see
  :mod:`server.certs`).

A token, when sent, is what identifies the call, over a certificate too.

**Roles.** :data:`ROLE_BY_METHOD` is the one table of what each RPC needs. Health and reflection
(:data:`OPEN_SERVICES`) answer anyone: a load balancer must probe without credentials, and the
contract is public. Any other method that is not in the table is refused, so a new RPC is closed
until someone gives it a role.

**When.** Authentication is required when a credentials file or a client CA is configured; with
neither the server runs open (every call is the caller ``anonymous`` with every role) and says
so in one warning line at start. No credentials is UNAUTHENTICATED, a role missing is
PERMISSION_DENIED. Under mutual TLS a client without a certificate cannot even connect.

**Transport.** :func:`check_transport` refuses to listen in plaintext on anything but loopback
unless ``allow_insecure_remote`` says so; with authentication on, the metrics endpoint (lanes
and RED rates per port) must be on loopback or require a client certificate.
:class:`CertificateFiles` re-reads the server certificate when its files change, for each new
connection, so a rotation needs no restart.

Every call gets one access log line (logger ``centinela.access``): method, caller, how it was
authenticated, status code and duration; health and reflection calls at DEBUG, the rest at INFO.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from grpc import aio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.canonical import canonical_code, canonical_text
from features.errors import ConfigError, FieldViolation, pydantic_violations
from features.yamlfiles import read_yaml_file
from scoring.caller import ROLES, Caller
from server.certs import identity_of, key_matches_certificate
from server.interceptors import WrappingInterceptor, _short, received_code
from server.settings import Settings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
access_log = logging.getLogger("centinela.access")

ROLE_BY_METHOD: dict[str, str] = {
    "/centinela.v1.RiskScoring/ScoreShipment": "scorer",
    "/centinela.v1.RiskScoring/ScoreShipments": "scorer",
    "/centinela.v1.RiskScoring/GetModelInfo": "scorer",
    "/centinela.v1.RiskScoring/RecordOutcome": "reporter",
    "/centinela.v1.Admin/ReloadModel": "admin",
    "/centinela.v1.Admin/ReloadWatchlists": "admin",
}
"""The role each RPC needs: the one place access is decided."""

OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
"""Services anyone may call, authenticated or not."""

ANONYMOUS = Caller("anonymous", frozenset(ROLES), "none")
"""Every call when authentication is off."""

NO_CREDENTIALS = (
    "authentication required: present a client certificate or an 'authorization: Bearer "
    "<token>' header"
)

_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "centinela_caller", default=None
)


def current_caller() -> Caller | None:
    """The caller of the RPC being served (set by :class:`AuthInterceptor`; each RPC runs in
    its own task, so this is that call's caller)."""
    return _current.get()


def _service(method: str) -> str:
    return method.lstrip("/").partition("/")[0]


# --- The credentials file --------------------------------------------------------------------


class _CallerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: list[str] = Field(min_length=1)


class _CredentialsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    callers: list[_CallerEntry]


def load_credentials(path: Path) -> dict[str, Caller]:
    """token SHA-256 (hex) -> caller, from a credentials file; ConfigError names each bad entry.

    A name may appear more than once, with the same roles: a caller holds two tokens while
    one replaces the other."""
    raw = read_yaml_file(path, "credentials file")
    try:
        parsed = _CredentialsFile.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        raise ConfigError(f"invalid credentials file {path}", pydantic_violations(error)) from error
    out: dict[str, Caller] = {}
    problems: list[FieldViolation] = []
    roles_of: dict[str, frozenset[str]] = {}
    for i, entry in enumerate(parsed.callers):
        unknown = sorted(set(entry.roles) - set(ROLES))
        if unknown:
            problems.append(
                FieldViolation(
                    f"callers.{i}.roles", f"unknown role {unknown[0]!r}; roles: {', '.join(ROLES)}"
                )
            )
        roles = frozenset(entry.roles)
        if roles_of.setdefault(entry.name, roles) != roles:
            problems.append(
                FieldViolation(f"callers.{i}.roles", f"{entry.name!r} is listed with other roles")
            )
        if entry.token_sha256 in out:
            problems.append(
                FieldViolation(f"callers.{i}.token_sha256", "the same token hash appears twice")
            )
        out[entry.token_sha256] = Caller(entry.name, roles, "token")
    if problems:
        raise ConfigError(f"invalid credentials file {path}", problems)
    return out


def _signature(paths: Sequence[Path]) -> tuple[tuple[int, ...], ...] | None:
    """What changes when any of ``paths`` is rewritten or replaced; None if one is missing."""
    try:
        stats = [os.stat(p) for p in paths]
    except OSError:
        return None
    return tuple((s.st_mtime_ns, s.st_ctime_ns, s.st_size, s.st_ino) for s in stats)


class CredentialStore:
    """The callers of a credentials file, re-read (at most every ``check_every`` seconds) when
    the file changes; a file that no longer loads keeps the callers already loaded."""

    def __init__(self, path: Path, check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        self._lock = threading.Lock()
        self._signature = _signature([self.path])
        self._by_hash = load_credentials(self.path)
        self._checked = time.monotonic()

    def _refresh(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.check_every:
                return
            self._checked = now
            signature = _signature([self.path])
            if signature is None or signature == self._signature:
                return
            self._signature = signature
            try:
                self._by_hash = load_credentials(self.path)
            except ConfigError as error:
                log.error("credentials file not reloaded; the callers before stay: %s", error)
                return
            log.info("credentials reloaded", extra={"callers": len(self._by_hash)})

    def lookup(self, token: str) -> Caller | None:
        self._refresh()
        return self._by_hash.get(hashlib.sha256(token.encode("utf-8")).hexdigest())


# --- Identifying a call ----------------------------------------------------------------------


class Authenticator:
    """Who a call is from, given its metadata and its TLS auth context."""

    def __init__(self, store: CredentialStore | None, mtls: bool) -> None:
        self.store = store
        self.mtls = mtls

    @property
    def required(self) -> bool:
        return self.store is not None or self.mtls

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        store = CredentialStore(settings.credentials_file) if settings.credentials_file else None
        return cls(store, settings.tls_client_ca_file is not None)

    def identify(
        self, metadata: Sequence[tuple[str, str | bytes]], auth_context: Mapping[str, Any]
    ) -> Caller | str:
        """The caller, or why it is not authenticated."""
        if not self.required:
            return ANONYMOUS
        headers = [v for k, v in metadata if k == "authorization"]
        if headers:
            value = headers[0] if isinstance(headers[0], str) else ""
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return "the authorization header is not 'Bearer <token>'"
            if self.store is None:
                return "this server does not accept bearer tokens; present a client certificate"
            caller = self.store.lookup(token.strip())
            return caller if caller is not None else "unknown bearer token"
        pems = auth_context.get("x509_pem_cert") or []
        if self.mtls and pems:
            try:
                name, roles = identity_of(bytes(pems[0]))
            except ValueError:
                return "the client certificate names no caller (no common name)"
            return Caller(name, roles, "mtls")
        return NO_CREDENTIALS


class AuthInterceptor(WrappingInterceptor):
    """Admit each call by :data:`ROLE_BY_METHOD`, make its caller :func:`current_caller`, and
    write its access log line."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        super().__init__()

    async def _admit(self, method: str, context: aio.ServicerContext[Any, Any]) -> Caller | None:
        """The call's caller, or abort; None for an open service (nobody is asked)."""
        if _service(method) in OPEN_SERVICES:
            return None
        metadata = [(key, value) for key, value in context.invocation_metadata() or ()]
        found = self.authenticator.identify(metadata, context.auth_context())
        if isinstance(found, str):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, found)
            raise AssertionError("unreachable")  # pragma: no cover
        _current.set(found)
        role = ROLE_BY_METHOD.get(method)
        if role is None or role not in found.roles:
            needs = f"the role {role!r}" if role else "a role no caller has"
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"caller {found.name!r} may not call {_short(method)}: it needs {needs}",
            )
        return found

    def _access(
        self,
        method: str,
        context: aio.ServicerContext[Any, Any],
        start: float,
        error: BaseException | None,
        *,
        subject: dict[str, str] | None = None,
        answers: int | None = None,
    ) -> None:
        """One line per call: method, caller, status, latency, and what it was about (the
        shipment or decision id of a unary call, the answers of a stream); never names or
        goods descriptions."""
        caller = _current.get()
        extra: dict[str, object] = {
            "method": _short(method),
            "caller": caller.name if caller else None,
            "auth": caller.method if caller else None,
            "code": received_code(context, error),
            "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            "peer": context.peer(),
        }
        if subject:
            extra.update(subject)
        if answers is not None:
            extra["answers"] = answers
        access_log.log(
            logging.DEBUG if _service(method) in OPEN_SERVICES else logging.INFO, "rpc", extra=extra
        )

    def _unary(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            error: BaseException | None = None
            _current.set(None)
            try:
                await self._admit(method, context)
                return await behaviour(request, context)
            except BaseException as caught:
                error = caught
                raise
            finally:
                self._access(method, context, start, error, subject=_subject(request))

        return run

    def _streaming(self, behaviour: Any, method: str) -> Any:
        async def run(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            start = time.perf_counter()
            error: BaseException | None = None
            answers = 0
            _current.set(None)
            try:
                await self._admit(method, context)
                async for response in behaviour(request, context):
                    answers += 1
                    yield response
            except BaseException as caught:
                error = caught
                raise
            finally:
                self._access(method, context, start, error, answers=answers)

        return run


SUBJECT_CHARS = 64  # an id in the access log is cut to this many characters


def _subject(request: Any) -> dict[str, str] | None:
    """The id a unary request is about, in canonical form and cut short (a caller's id is
    attacker-chosen text): ``shipment_id`` of a shipment, ``decision_id`` of an outcome."""
    shipment = getattr(request, "shipment", None)
    if shipment is not None and hasattr(shipment, "shipment_id"):
        return {
            "shipment_id": canonical_code(shipment.shipment_id[: 2 * SUBJECT_CHARS])[:SUBJECT_CHARS]
        }
    decision_id = getattr(request, "decision_id", None)
    if isinstance(decision_id, str):
        return {"decision_id": canonical_text(decision_id[: 2 * SUBJECT_CHARS])[:SUBJECT_CHARS]}
    return None


# --- Transport -------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` is reachable from this machine only."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name (or the wildcard '') may resolve to anything


def check_transport(settings: Settings) -> None:
    """Refuse, in one line, a transport that would leave a trust boundary open."""
    s = settings
    if (s.tls_cert_file is None) != (s.tls_key_file is None):
        raise ConfigError("tls_cert_file and tls_key_file must be set together")
    if s.tls_client_ca_file is not None and s.tls_cert_file is None:
        raise ConfigError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
    if (s.metrics_tls_cert_file is None) != (s.metrics_tls_key_file is None):
        raise ConfigError("metrics_tls_cert_file and metrics_tls_key_file must be set together")
    if s.metrics_tls_client_ca_file is not None and s.metrics_tls_cert_file is None:
        raise ConfigError("metrics_tls_client_ca_file needs metrics_tls_cert_file and _key_file")
    if s.admin_port is not None and s.admin_port != 0 and s.admin_port == s.grpc_port:
        raise ConfigError(f"admin_port {s.admin_port} is grpc_port; give Admin its own port")
    if s.tls_cert_file is None and not is_loopback(s.grpc_host) and not s.allow_insecure_remote:
        raise ConfigError(
            f"refusing plaintext gRPC on non-loopback address {s.grpc_host!r}: set tls_cert_file "
            "and tls_key_file, or allow_insecure_remote: true"
        )
    if not s.metrics_enabled or is_loopback(s.metrics_host):
        return
    auth_on = s.credentials_file is not None or s.tls_client_ca_file is not None
    if auth_on and s.metrics_tls_client_ca_file is None:
        raise ConfigError(
            f"refusing metrics on non-loopback address {s.metrics_host!r} without client "
            "certificates while authentication is on: set metrics_tls_client_ca_file (with "
            "metrics_tls_cert_file, metrics_tls_key_file) or bind metrics_host to loopback"
        )
    if s.metrics_tls_cert_file is None and not s.allow_insecure_remote:
        raise ConfigError(
            f"refusing plaintext metrics on non-loopback address {s.metrics_host!r}: set "
            "metrics_tls_cert_file and metrics_tls_key_file, or allow_insecure_remote: true"
        )


class CertificateFiles:
    """The server's certificate chain, key and (for mutual TLS) client CA, as grpc needs them.

    :meth:`fetch` is grpc's certificate-configuration fetcher: grpc calls it before each new
    connection's handshake (from its own threads); it re-reads the files when any of them
    changed and keeps serving the last good pair while they do not load (a key and a
    certificate caught mid-rotation, say), logging once per change."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.paths = [Path(cert), Path(key), *([Path(client_ca)] if client_ca else [])]
        self._lock = threading.Lock()
        self._served = _signature(self.paths)
        self._refused: tuple[tuple[int, ...], ...] | None = None
        self.initial = self.load()

    @property
    def mtls(self) -> bool:
        return len(self.paths) == 3

    def load(self) -> grpc.ServerCertificateConfiguration:
        """The configuration of the files as they are now; ConfigError if they do not serve."""
        names = ("tls_cert_file", "tls_key_file", "tls_client_ca_file")
        contents: list[bytes] = []
        for name, path in zip(names, self.paths, strict=False):
            try:
                contents.append(path.read_bytes())
            except OSError as error:
                raise ConfigError(f"cannot read {name} {path}: {error.strerror}") from error
        cert, key, *ca = contents
        try:
            matches = key_matches_certificate(cert, key)
            if ca and not x509.load_pem_x509_certificates(ca[0]):
                raise ValueError("no certificate in tls_client_ca_file")
        except (ValueError, TypeError) as error:
            raise ConfigError(f"TLS files {self.paths[0]} do not load: {error}") from error
        if not matches:
            raise ConfigError(f"tls_key_file {self.paths[1]} is not the key of {self.paths[0]}")
        return grpc.ssl_server_certificate_configuration(
            [(key, cert)], root_certificates=ca[0] if ca else None
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            with self._lock:
                signature = _signature(self.paths)
                if signature is None or signature in (self._served, self._refused):
                    return None
                try:
                    config = self.load()
                except ConfigError as error:
                    self._refused = signature
                    log.error("TLS certificate not reloaded; the previous one serves: %s", error)
                    return None
                self._served = signature
                log.info("TLS certificate reloaded", extra={"cert": str(self.paths[0])})
                return config
        except Exception as error:  # grpc's thread must get an answer, never an exception
            log.error("TLS certificate fetch failed", exc_info=error)
            return None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.initial,
            self.fetch,  # type: ignore[arg-type]  # None means "unchanged" (grpc's docstring)
            require_client_authentication=self.mtls,
        )


def certificate_files(settings: Settings) -> CertificateFiles | None:
    """The gRPC server's TLS files, loaded and checked; None for plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return CertificateFiles(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )


def add_port(server: aio.Server, address: str, tls: CertificateFiles | None) -> int:
    """Bind ``address`` (TLS when ``tls``); the bound port, or OSError."""
    port = (
        server.add_secure_port(address, tls.credentials())
        if tls is not None
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return port


def log_trust(settings: Settings, authenticator: Authenticator, tls: bool) -> None:
    """One line at start: how callers are authenticated, or a warning that they are not."""
    if not authenticator.required:
        log.warning(
            "authentication is off: no credentials_file or tls_client_ca_file is set, so "
            "anyone who reaches %s may score, report outcomes and reload",
            settings.grpc_host,
        )
        return
    log.info(
        "authentication required",
        extra={
            "tls": tls,
            "mtls": authenticator.mtls,
            "bearer_tokens": authenticator.store is not None,
        },
    )
