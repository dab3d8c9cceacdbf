"""Trust boundaries through real TLS and mutual TLS clients: who may call what.

Certificates come from ``centinela certs`` run as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import ssl
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from features.errors import ConfigError
from scoring.caller import Caller
from server.app import CentinelaServer
from server.auth import (
    OPEN_SERVICES,
    ROLE_BY_METHOD,
    Authenticator,
    CredentialStore,
    check_transport,
    load_credentials,
)
from server.certs import identity_of, parse_caller
from server.pb import admin_pb2, admin_pb2_grpc, risk_scoring_pb2
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from server.settings import load_settings
from tests.conftest import server_settings
from tests.support import ServerThread, centinela, make_shipment, request_for

GOOD = make_shipment("AUTH-1")
TOKENS = {"scorer": "tok-scorer-0123456789", "reporter": "tok-reporter-0123456789"}
TOKENS |= {"admin": "tok-admin-0123456789", "ops": "tok-ops-0123456789"}


def make_pki(out: Path, *callers: str) -> Path:
    args = [arg for caller in callers for arg in ("--caller", caller)]
    result = centinela("certs", "--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    return out


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_credentials(path: Path, roles: dict[str, list[str]], tokens: dict[str, str]) -> Path:
    callers = [
        {"name": name, "token_sha256": sha256(tokens[name]), "roles": r}
        for name, r in roles.items()
    ]
    path.write_text(json.dumps({"callers": callers}), encoding="utf-8")  # JSON is YAML
    return path


CALLER_ROLES = {
    "scorer": ["scorer"],
    "reporter": ["reporter"],
    "admin": ["admin"],
    "ops": ["scorer", "reporter"],
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(
        tmp_path_factory.mktemp("pki"),
        "scorer:scorer",
        "reporter:reporter",
        "admin:admin",
        "ops:scorer,reporter",
    )


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_credentials(
        tmp_path_factory.mktemp("creds") / "callers.yaml", CALLER_ROLES, TOKENS
    )


def channel(
    port: int,
    ca: Path,
    client: tuple[Path, Path] | None = None,
    token: str | None = None,
) -> grpc.Channel:
    """A TLS channel of its own (never a shared connection) trusting ``ca``, with a client
    certificate (cert, key) and a bearer token if given."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None,
    )
    if token is not None:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(
        f"127.0.0.1:{port}", creds, options=[("grpc.use_local_subchannel_pool", 1)]
    )


def client_files(pki: Path, name: str) -> tuple[Path, Path]:
    return pki / f"{name}.pem", pki / f"{name}-key.pem"


def start(settings: Any) -> ServerThread:
    running = ServerThread(settings)
    assert running.load()
    return running


@pytest.fixture(scope="module")
def mtls_server(
    registry: Path, pki: Path, credentials: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    settings = server_settings(
        registry,
        tmp_path_factory.mktemp("mtls"),
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server-key.pem",
        tls_client_ca_file=pki / "ca.pem",
        credentials_file=credentials,
    )
    running = start(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token_server(
    registry: Path, pki: Path, credentials: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """TLS (no client certificates) with bearer tokens."""
    settings = server_settings(
        registry,
        tmp_path_factory.mktemp("tokens"),
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server-key.pem",
        credentials_file=credentials,
    )
    running = start(settings)
    yield running
    running.stop()


def call(ch: grpc.Channel, rpc: str, metadata: Sequence[tuple[str, str]] = ()) -> Any:
    scoring = pb_grpc.RiskScoringStub(ch)
    admin = admin_pb2_grpc.AdminStub(ch)
    md = tuple(metadata)
    calls: dict[str, Callable[[], Any]] = {
        "ScoreShipment": lambda: scoring.ScoreShipment(request_for(GOOD), timeout=60, metadata=md),
        "ScoreShipments": lambda: list(
            scoring.ScoreShipments(iter([request_for(GOOD)]), timeout=60, metadata=md)
        ),
        "GetModelInfo": lambda: scoring.GetModelInfo(
            pb.GetModelInfoRequest(), timeout=60, metadata=md
        ),
        "RecordOutcome": lambda: scoring.RecordOutcome(
            pb.RecordOutcomeRequest(decision_id="0" * 32), timeout=60, metadata=md
        ),
        "ReloadModel": lambda: admin.ReloadModel(
            admin_pb2.ReloadModelRequest(), timeout=120, metadata=md
        ),
        "ReloadWatchlists": lambda: admin.ReloadWatchlists(
            admin_pb2.ReloadWatchlistsRequest(), timeout=60, metadata=md
        ),
    }
    return calls[rpc]()


RPCS = ("ScoreShipment", "ScoreShipments", "GetModelInfo", "RecordOutcome", "ReloadWatchlists")
ROLE_OF = {rpc: ROLE_BY_METHOD[m] for m in ROLE_BY_METHOD for rpc in RPCS if m.endswith(rpc)}


def outcome_of(ch: grpc.Channel, rpc: str, metadata: Sequence[tuple[str, str]] = ()) -> Any:
    """The status code ``rpc`` ends with."""
    try:
        call(ch, rpc, metadata)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def allowed_code(rpc: str) -> grpc.StatusCode:
    # An outcome against a decision that does not exist passed the door and was looked up.
    return grpc.StatusCode.NOT_FOUND if rpc == "RecordOutcome" else grpc.StatusCode.OK


# --- The role table -------------------------------------------------------------------------


def test_every_rpc_of_our_services_needs_a_known_role() -> None:
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (risk_scoring_pb2, admin_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert set(ROLE_BY_METHOD) == methods
    assert set(ROLE_BY_METHOD.values()) == {"scorer", "reporter", "admin"}
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= OPEN_SERVICES


@pytest.mark.parametrize("name", ["scorer", "reporter", "admin", "ops"])
def test_mtls_each_role_may_call_only_its_rpcs(
    mtls_server: ServerThread, pki: Path, name: str
) -> None:
    with channel(mtls_server.port, pki / "ca.pem", client_files(pki, name)) as ch:
        for rpc in RPCS:
            code = outcome_of(ch, rpc)
            if ROLE_OF[rpc] in CALLER_ROLES[name]:
                assert code is allowed_code(rpc), (name, rpc)
            else:
                assert code is grpc.StatusCode.PERMISSION_DENIED, (name, rpc)


def test_permission_denied_names_the_caller_and_the_role(
    mtls_server: ServerThread, pki: Path
) -> None:
    with (
        channel(mtls_server.port, pki / "ca.pem", client_files(pki, "scorer")) as ch,
        pytest.raises(grpc.RpcError) as caught,
    ):
        call(ch, "ReloadModel")
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "caller 'scorer' may not call Admin/ReloadModel: it needs the role 'admin'"
    )


def test_admin_reloads_the_model_over_mtls(mtls_server: ServerThread, pki: Path) -> None:
    with channel(mtls_server.port, pki / "ca.pem", client_files(pki, "admin")) as ch:
        response = call(ch, "ReloadModel")
    assert response.model_version == "v0001"


def test_mtls_without_a_client_certificate_cannot_connect(
    mtls_server: ServerThread, pki: Path
) -> None:
    with channel(mtls_server.port, pki / "ca.pem") as ch, pytest.raises(grpc.RpcError) as caught:
        call(ch, "GetModelInfo")
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_cannot_connect(
    mtls_server: ServerThread, pki: Path, tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other", "scorer:scorer,reporter,admin")
    with (
        channel(mtls_server.port, pki / "ca.pem", client_files(other, "scorer")) as ch,
        pytest.raises(grpc.RpcError) as caught,
    ):
        call(ch, "GetModelInfo")
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_mtls_caller_is_in_the_ledger_and_the_access_log(
    mtls_server: ServerThread, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = mtls_server.app.service.ledger
    assert ledger is not None
    with caplog.at_level(logging.INFO, logger="centinela.access"):
        with channel(mtls_server.port, pki / "ca.pem", client_files(pki, "scorer")) as ch:
            decision = call(ch, "ScoreShipment")
        with channel(mtls_server.port, pki / "ca.pem", client_files(pki, "reporter")) as ch:
            receipt = pb_grpc.RiskScoringStub(ch).RecordOutcome(
                pb.RecordOutcomeRequest(
                    decision_id=decision.decision_id, inspected=True, result="negative"
                ),
                timeout=30,
            )
            # The same report from another caller is a repeat, not a new version.
        with channel(mtls_server.port, pki / "ca.pem", client_files(pki, "ops")) as ch:
            again = pb_grpc.RiskScoringStub(ch).RecordOutcome(
                pb.RecordOutcomeRequest(
                    decision_id=decision.decision_id, inspected=True, result="negative"
                ),
                timeout=30,
            )
            denied = outcome_of(ch, "ReloadWatchlists")
        deadline = time.monotonic() + 5
        while len(access_lines(caplog)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert receipt.version == 1
    assert (again.version, again.duplicate) == (1, True)
    assert denied is grpc.StatusCode.PERMISSION_DENIED

    rows = {r.kind: json.loads(r.payload) for r in ledger.entries_for(decision.decision_id)}
    assert rows["decision"]["caller"] == {"name": "scorer", "method": "mtls", "roles": ["scorer"]}
    assert rows["outcome"]["caller"] == {
        "name": "reporter",
        "method": "mtls",
        "roles": ["reporter"],
    }

    lines = access_lines(caplog)
    assert lines[:4] == [
        ("RiskScoring/ScoreShipment", "scorer", "mtls", "OK"),
        ("RiskScoring/RecordOutcome", "reporter", "mtls", "OK"),
        ("RiskScoring/RecordOutcome", "ops", "mtls", "OK"),
        ("Admin/ReloadWatchlists", "ops", "mtls", "PERMISSION_DENIED"),
    ]
    records = [r for r in caplog.records if r.name == "centinela.access"]
    record = records[0]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert "127.0.0.1" in record.peer  # type: ignore[attr-defined]
    # What each call was about, by id; never a name or a goods description.
    assert record.shipment_id == decision.shipment_id  # type: ignore[attr-defined]
    assert records[1].decision_id == decision.decision_id  # type: ignore[attr-defined]
    text = " ".join(str(vars(r)) for r in records)
    assert "Shanghai Jinhua" not in text
    assert GOOD.goods[0].description not in text


def access_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, str]]:
    return [
        (r.method, r.caller, r.auth, r.code)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "centinela.access"
    ]


def test_a_token_identifies_the_call_over_a_certificate(
    mtls_server: ServerThread, pki: Path
) -> None:
    ledger = mtls_server.app.service.ledger
    assert ledger is not None
    scorer = client_files(pki, "scorer")
    with channel(mtls_server.port, pki / "ca.pem", scorer, token=TOKENS["admin"]) as ch:
        assert outcome_of(ch, "ReloadWatchlists") is grpc.StatusCode.OK
        assert outcome_of(ch, "GetModelInfo") is grpc.StatusCode.PERMISSION_DENIED


# --- Bearer tokens over TLS -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["scorer", "reporter", "admin", "ops"])
def test_tokens_each_role_may_call_only_its_rpcs(
    token_server: ServerThread, pki: Path, name: str
) -> None:
    with channel(token_server.port, pki / "ca.pem", token=TOKENS[name]) as ch:
        for rpc in RPCS:
            code = outcome_of(ch, rpc)
            if ROLE_OF[rpc] in CALLER_ROLES[name]:
                assert code is allowed_code(rpc), (name, rpc)
            else:
                assert code is grpc.StatusCode.PERMISSION_DENIED, (name, rpc)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            (),
            "authentication required: present a client certificate or an 'authorization: "
            "Bearer <token>' header",
        ),
        ((("authorization", "Bearer not-a-known-token"),), "unknown bearer token"),
        (
            (("authorization", "Basic dXNlcjpwYXNz"),),
            "the authorization header is not 'Bearer <token>'",
        ),
        ((("authorization", "Bearer "),), "the authorization header is not 'Bearer <token>'"),
    ],
)
def test_no_or_bad_credentials_are_unauthenticated(
    token_server: ServerThread, pki: Path, metadata: tuple[tuple[str, str], ...], message: str
) -> None:
    with channel(token_server.port, pki / "ca.pem") as ch:
        for rpc in RPCS:
            with pytest.raises(grpc.RpcError) as caught:
                call(ch, rpc, metadata)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED, rpc
            assert caught.value.details() == message


def test_token_caller_is_in_the_ledger(token_server: ServerThread, pki: Path) -> None:
    ledger = token_server.app.service.ledger
    assert ledger is not None
    with channel(token_server.port, pki / "ca.pem") as ch:
        decisions = call(ch, "ScoreShipments", [("authorization", f"Bearer {TOKENS['ops']}")])
    (row,) = ledger.entries_for(decisions[0].decision_id)
    caller = json.loads(row.payload)["caller"]
    assert caller == {"name": "ops", "method": "token", "roles": ["reporter", "scorer"]}


def test_health_and_reflection_answer_without_credentials(
    token_server: ServerThread, pki: Path
) -> None:
    with channel(token_server.port, pki / "ca.pem") as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="centinela.v1.RiskScoring"), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        services = {s.name for r in replies for s in r.list_services_response.service}
    assert "centinela.v1.RiskScoring" in services


def test_a_plaintext_client_cannot_talk_to_a_tls_server(token_server: ServerThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{token_server.port}") as ch:
        code = outcome_of(ch, "GetModelInfo", [("authorization", "Bearer x")])
    assert code is grpc.StatusCode.UNAVAILABLE


# --- Open mode (make run) -------------------------------------------------------------------


def test_without_credentials_the_server_is_open_and_says_so(
    registry: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="server.auth"):
        running = start(server_settings(registry, tmp_path))
    try:
        warnings = [r.getMessage() for r in caplog.records if r.name == "server.auth"]
        assert warnings == [
            "authentication is off: no credentials_file or tls_client_ca_file is set, so "
            "anyone who reaches 127.0.0.1 may score, report outcomes and reload"
        ]
        decision = call(running.channel, "ScoreShipment")
        ledger = running.app.service.ledger
        assert ledger is not None
        (row,) = ledger.entries_for(decision.decision_id)
        caller = json.loads(row.payload)["caller"]
        assert caller == {
            "name": "anonymous",
            "method": "none",
            "roles": ["admin", "reporter", "scorer"],
        }
    finally:
        running.stop()


# --- Transport rules ------------------------------------------------------------------------


def test_refuses_plaintext_grpc_on_a_non_loopback_address(registry: Path, tmp_path: Path) -> None:
    app = CentinelaServer(server_settings(registry, tmp_path, grpc_host="0.0.0.0"))
    try:
        with pytest.raises(ConfigError) as caught:
            asyncio.run(app.start())
    finally:
        app.service.close()
    assert caught.value.message == (
        "refusing plaintext gRPC on non-loopback address '0.0.0.0': set tls_cert_file and "
        "tls_key_file, or allow_insecure_remote: true"
    )
    assert app.server is None


def test_serve_refuses_a_public_plaintext_address_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"grpc_host: 0.0.0.0\ngrpc_port: 0\nmetrics_enabled: false\n"
        f"ledger_path: {tmp_path / 'ledger.sqlite'}\nregistry_dir: {tmp_path / 'registry'}\n",
        encoding="utf-8",
    )
    result = centinela("serve", "--config", str(config))
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: refusing plaintext gRPC on non-loopback address '0.0.0.0': set tls_cert_file "
        "and tls_key_file, or allow_insecure_remote: true"
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grpc_host": "10.1.2.3"}, "refusing plaintext gRPC on non-loopback address '10.1.2.3'"),
        ({"grpc_host": "centinela.internal"}, "refusing plaintext gRPC on non-loopback"),
        ({"metrics_host": "0.0.0.0"}, "refusing plaintext metrics on non-loopback address"),
        ({"tls_cert_file": "x.pem"}, "tls_cert_file and tls_key_file must be set together"),
        ({"tls_client_ca_file": "ca.pem"}, "tls_client_ca_file (mutual TLS) needs tls_cert_file"),
        (
            {
                "credentials_file": "c.yaml",
                "metrics_host": "0.0.0.0",
                "allow_insecure_remote": True,
            },
            "refusing metrics on non-loopback address '0.0.0.0' without client certificates",
        ),
        ({"admin_port": 7000, "grpc_port": 7000}, "admin_port 7000 is grpc_port"),
    ],
)
def test_transport_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_transport(load_settings(**changes))
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"grpc_host": "localhost", "metrics_host": "::1"},
        {"grpc_host": "[::1]"},
        {"grpc_host": "0.0.0.0", "metrics_host": "0.0.0.0", "allow_insecure_remote": True},
        {"grpc_host": "0.0.0.0", "tls_cert_file": "s.pem", "tls_key_file": "k.pem"},
        {"credentials_file": "c.yaml", "metrics_host": "0.0.0.0", "metrics_enabled": False},
    ],
)
def test_transport_allowed(changes: dict[str, Any]) -> None:
    check_transport(load_settings(**changes))


# --- Metrics endpoint over TLS --------------------------------------------------------------


def test_metrics_over_tls_require_a_client_certificate(
    registry: Path, pki: Path, credentials: Path, tmp_path: Path
) -> None:
    settings = server_settings(
        registry,
        tmp_path,
        credentials_file=credentials,
        metrics_tls_cert_file=pki / "server.pem",
        metrics_tls_key_file=pki / "server-key.pem",
        metrics_tls_client_ca_file=pki / "ca.pem",
    )
    running = ServerThread(settings)
    try:
        url = f"https://127.0.0.1:{running.metrics_port}/metrics"
        trusted = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(url, timeout=10, context=trusted).close()
        trusted.load_cert_chain(*client_files(pki, "scorer"))
        with urllib.request.urlopen(url, timeout=10, context=trusted) as response:
            assert b"centinela_" in response.read()
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(url.replace("https", "http"), timeout=10).close()
    finally:
        running.stop()


# --- Certificate reload ---------------------------------------------------------------------


def test_a_replaced_server_certificate_serves_new_connections(
    registry: Path, pki: Path, credentials: Path, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server-key.pem"):
        shutil.copy(pki / name, live / name)
    settings = server_settings(
        registry,
        tmp_path,
        tls_cert_file=live / "server.pem",
        tls_key_file=live / "server-key.pem",
        credentials_file=credentials,
    )
    other = make_pki(tmp_path / "other", "x:scorer")
    running = ServerThread(settings)
    token = TOKENS["scorer"]

    def works(ca: Path) -> bool:
        with channel(running.port, ca, token=token) as ch:
            code = outcome_of(ch, "GetModelInfo")
        assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK), code
        return code is grpc.StatusCode.OK  # UNAVAILABLE: the handshake failed

    try:
        assert running.load()
        assert works(pki / "ca.pem")
        assert not works(other / "ca.pem")

        # Half a rotation (a new certificate, the old key) does not serve: the old pair stays.
        shutil.copy(other / "server.pem", live / "server.pem")
        assert works(pki / "ca.pem")

        shutil.copy(other / "server-key.pem", live / "server-key.pem")
        assert works(other / "ca.pem")
        assert not works(pki / "ca.pem")
    finally:
        running.stop()


# --- Admin on its own port ------------------------------------------------------------------


def test_admin_on_its_own_port(
    registry: Path, pki: Path, credentials: Path, tmp_path: Path
) -> None:
    settings = server_settings(
        registry,
        tmp_path,
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server-key.pem",
        credentials_file=credentials,
        admin_port=0,
    )
    running = start(settings)
    try:
        admin = [("authorization", f"Bearer {TOKENS['admin']}")]
        with channel(running.port, pki / "ca.pem") as ch:
            assert outcome_of(ch, "ReloadWatchlists", admin) is (grpc.StatusCode.UNIMPLEMENTED)
        assert running.app.admin_port not in (0, running.port)
        with channel(running.app.admin_port, pki / "ca.pem") as ch:
            assert outcome_of(ch, "ReloadWatchlists", admin) is grpc.StatusCode.OK
            scorer = [("authorization", f"Bearer {TOKENS['scorer']}")]
            assert outcome_of(ch, "ReloadWatchlists", scorer) is (grpc.StatusCode.PERMISSION_DENIED)
            assert outcome_of(ch, "GetModelInfo", scorer) is (grpc.StatusCode.UNIMPLEMENTED)
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop()


# --- Credentials file and certificates (no server) -----------------------------------------


def test_credentials_file_rejects_unknown_keys_and_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "callers.yaml"
    path.write_text(
        "callers:\n"
        f"  - {{name: a, token_sha256: {sha256('x')}, roles: [scorer], role: admin}}\n"
        "  - {name: b, token_sha256: ABC, roles: [scorer]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_credentials(path)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["callers.0.role", "callers.1.token_sha256"]

    path.write_text(
        "callers:\n"
        f"  - {{name: a, token_sha256: {sha256('x')}, roles: [scorer, root]}}\n"
        f"  - {{name: a, token_sha256: {sha256('x')}, roles: [admin]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_credentials(path)
    assert [str(v) for v in caught.value.violations] == [
        "callers.0.roles: unknown role 'root'; roles: scorer, reporter, admin",
        "callers.1.roles: 'a' is listed with other roles",
        "callers.1.token_sha256: the same token hash appears twice",
    ]


def test_a_rotated_token_takes_effect_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "callers.yaml"

    def entry(token: str) -> str:
        return f"  - {{name: svc, token_sha256: {sha256(token)}, roles: [scorer]}}\n"

    path.write_text("callers:\n" + entry("old-token"), encoding="utf-8")
    store = CredentialStore(path, check_every=0)
    assert store.lookup("old-token") == Caller("svc", frozenset({"scorer"}), "token")
    # Rotation: the caller holds both tokens while its clients move, then the old one goes.
    path.write_text("callers:\n" + entry("old-token") + entry("new-token"), encoding="utf-8")
    assert store.lookup("new-token") == store.lookup("old-token") is not None
    path.write_text("callers:\n" + entry("new-token"), encoding="utf-8")
    assert store.lookup("old-token") is None
    assert store.lookup("new-token") is not None
    path.write_text("callers: [{name: svc}]", encoding="utf-8")  # broken: the last good stays
    assert store.lookup("new-token") is not None


def test_identity_comes_from_a_token_or_a_certificate(pki: Path, credentials: Path) -> None:
    auth = Authenticator(CredentialStore(credentials), mtls=True)
    pem = (pki / "ops.pem").read_bytes()
    assert auth.identify([], {"x509_pem_cert": [pem]}) == Caller(
        "ops", frozenset({"scorer", "reporter"}), "mtls"
    )
    bearer = [("authorization", f"Bearer {TOKENS['admin']}")]
    assert auth.identify(bearer, {"x509_pem_cert": [pem]}) == Caller(
        "admin", frozenset({"admin"}), "token"
    )
    assert Authenticator(None, mtls=False).identify(bearer, {}).name == "anonymous"  # type: ignore[union-attr]
    assert Authenticator(None, mtls=True).identify(bearer, {}) == (
        "this server does not accept bearer tokens; present a client certificate"
    )


def test_certs_command_writes_keys_0600_and_reuses_its_ca(tmp_path: Path) -> None:
    out = make_pki(tmp_path / "pki", "ana:scorer,reporter")
    for key in ("ca-key.pem", "server-key.pem", "ana-key.pem"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    assert identity_of((out / "ana.pem").read_bytes()) == ("ana", frozenset({"scorer", "reporter"}))
    ca = (out / "ca.pem").read_bytes()
    again = centinela("certs", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"reused CA {out / 'ca.pem'}")
    assert (out / "ca.pem").read_bytes() == ca
    assert {"scorer.pem", "reporter.pem", "admin.pem"} <= {p.name for p in out.iterdir()}

    bad = centinela("certs", "--out", str(out), "--caller", "eve:root")
    assert bad.returncode == 3
    assert "unknown role 'root'" in bad.stderr


def test_parse_caller() -> None:
    assert parse_caller("ana:scorer, reporter") == ("ana", ("scorer", "reporter"))
    for spec in ("ana", "ana:", "../x:scorer", "ana:god"):
        with pytest.raises(Exception, match="caller"):
            parse_caller(spec)


def readme_block(first_line: str) -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"```yaml\n{first_line}") + len("```yaml\n")
    return readme[start : readme.index("```", start)]


def test_the_readme_examples_are_valid(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(readme_block("# centinela serve --config FILE"), encoding="utf-8")
    settings = load_settings(settings_file)
    assert settings.tls_client_ca_file == Path("var/pki/ca.pem")
    check_transport(settings)
    callers_file = tmp_path / "callers.yaml"
    callers_file.write_text(readme_block("callers:"), encoding="utf-8")
    names = {c.name: c.roles for c in load_credentials(callers_file).values()}
    assert names == {"portal-zlo": {"scorer"}, "inspeccion-lzc": {"reporter"}}
