"""The client kit: the Python and Node examples run against a real server, plaintext and over TLS
with a bearer token, and the protos in clients/proto are the ones the server speaks.

Without ``node`` the Node tests are skipped, unless CI=true, where a missing Node is a failure
(.ci/run installs the example's packages with ``npm ci``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2

from tests.conftest import server_settings
from tests.support import ServerThread
from tests.test_auth import make_pki, write_credentials

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "clients"
PROTOS = CLIENTS / "proto"
NODE_DIR = CLIENTS / "node"
TOKEN = "tok-client-kit-0123456789"


# --- The protos ---------------------------------------------------------------------------------


def test_centinela_protos_are_copies_of_the_contract() -> None:
    contract = sorted(p.name for p in (ROOT / "proto/centinela/v1").glob("*.proto"))
    copies = sorted(p.name for p in (PROTOS / "centinela/v1").glob("*.proto"))
    assert copies == contract
    for name in contract:
        assert (PROTOS / "centinela/v1" / name).read_bytes() == (
            ROOT / "proto/centinela/v1" / name
        ).read_bytes(), f"clients/proto/centinela/v1/{name} is stale: run make client-protos"


def compiled(path: str, tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    """``path`` (under clients/proto) compiled by protoc, as a FileDescriptorProto."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    out = tmp_path / "set.pb"
    code = protoc.main(
        ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--descriptor_set_out={out}", path]
    )
    assert code == 0, f"protoc failed on {path}"
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (proto,) = files.file
    return proto


def served(descriptor: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor.CopyToProto(proto)
    return proto


def fields(message: descriptor_pb2.DescriptorProto) -> dict[str, tuple[int, int, int, str]]:
    return {f.name: (f.number, f.type, f.label, f.type_name) for f in message.field}


def messages(
    proto: descriptor_pb2.FileDescriptorProto,
) -> dict[str, descriptor_pb2.DescriptorProto]:
    found = {}
    stack = [(m, m.name) for m in proto.message_type]
    while stack:
        message, name = stack.pop()
        found[name] = message
        stack += [(n, f"{name}.{n.name}") for n in message.nested_type]
    return found


def test_health_proto_is_the_service_the_server_runs(tmp_path: Path) -> None:
    copy = compiled("grpc/health/v1/health.proto", tmp_path)
    server = served(health_pb2.DESCRIPTOR)
    assert copy.package == server.package == "grpc.health.v1"
    assert {n: fields(m) for n, m in messages(copy).items()} == {
        n: fields(m) for n, m in messages(server).items()
    }
    for ours, theirs in zip(copy.service, server.service, strict=True):
        assert ours.name == theirs.name
        assert sorted(
            (m.name, m.input_type, m.output_type, m.server_streaming) for m in ours.method
        ) == sorted(
            (m.name, m.input_type, m.output_type, m.server_streaming) for m in theirs.method
        )


@pytest.mark.parametrize(
    ("path", "descriptor"),
    [
        ("google/rpc/status.proto", status_pb2.DESCRIPTOR),
        ("google/rpc/error_details.proto", error_details_pb2.DESCRIPTOR),
    ],
)
def test_google_rpc_protos_are_compatible_with_the_installed_ones(
    tmp_path: Path, path: str, descriptor: FileDescriptor
) -> None:
    """Every field of the copies is in the installed package's messages, same number and type
    (upstream may add fields; a client compiled from the copy still reads what it knows)."""
    copy = messages(compiled(path, tmp_path))
    installed = messages(served(descriptor))
    for name, message in copy.items():
        assert name in installed, name
        theirs = fields(installed[name])
        for field, shape in fields(message).items():
            assert theirs.get(field) == shape, f"{name}.{field}"
    assert {"Status"} <= set(copy) or {"BadRequest", "BadRequest.FieldViolation"} <= set(copy)


def test_copied_protos_keep_their_licence_headers() -> None:
    for path in (
        "grpc/health/v1/health.proto",
        *(f"google/rpc/{n}" for n in ("status.proto", "error_details.proto")),
    ):
        head = (PROTOS / path).read_text(encoding="utf-8")[:800]
        assert "Licensed under the Apache License, Version 2.0" in head, path
        assert "Copyright" in head, path


# --- Servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(
    registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, Path]]:
    """TLS with bearer tokens; the token's caller may score and report outcomes."""
    pki = make_pki(tmp_path_factory.mktemp("pki"), "kit:scorer,reporter")
    creds = write_credentials(
        tmp_path_factory.mktemp("creds") / "callers.yaml",
        {"kit": ["scorer", "reporter"]},
        {"kit": TOKEN},
    )
    settings = server_settings(
        registry,
        tmp_path_factory.mktemp("kit-tls"),
        data_dir=world,
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server-key.pem",
        credentials_file=creds,
    )
    running = ServerThread(settings)
    assert running.load()
    yield running, pki / "ca.pem"
    running.stop()


# --- The examples -------------------------------------------------------------------------------


def check_transcript(out: str) -> None:
    """The five steps, as both examples print them."""
    lines = out.splitlines()
    assert lines[0] == "health: SERVING", out
    score = re.fullmatch(
        r"score: decision=(\w+) shipment=\S+ lane=LANE_(RED|YELLOW|GREEN) .*", lines[1]
    )
    assert score, out
    decision_id = score.group(1)
    assert "invalid: INVALID_ARGUMENT" in lines
    assert "invalid:   goods[0].hs_code: 'ABC' is not 6 to 10 digits" in lines
    assert "invalid:   goods[0].gross_weight_kg: must be greater than 0, got -5" in lines
    manifest = [line for line in lines if line.startswith("manifest[")]
    assert len(manifest) == 3, out
    assert manifest[0].startswith("manifest[0]: decision=")
    assert manifest[1] == "manifest[1]: error INVALID_ARGUMENT (port_of_entry)"
    assert manifest[2].startswith("manifest[2]: decision=")
    assert [line for line in lines if line.startswith("outcome:")] == [
        f"outcome: decision={decision_id} version=1 duplicate=false",
        f"outcome: decision={decision_id} version=1 duplicate=true",
    ]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**clean, **(env or {})},
    )


PYTHON_EXAMPLE = [sys.executable, str(CLIENTS / "python" / "example.py")]


def test_python_example_against_a_plaintext_server(server: ServerThread) -> None:
    result = run([*PYTHON_EXAMPLE, "--target", f"127.0.0.1:{server.port}"])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


def test_python_example_over_tls_with_a_token(tls_server: tuple[ServerThread, Path]) -> None:
    running, ca = tls_server
    target = f"127.0.0.1:{running.port}"
    result = run([*PYTHON_EXAMPLE, "--target", target, "--ca", str(ca), "--token", TOKEN])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


@pytest.fixture(scope="session")
def node() -> str:
    """``node`` with the example's packages installed (``npm ci`` once, if .ci/run has not)."""
    found = shutil.which("node")
    npm = shutil.which("npm")
    if found is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are required in CI (the Node client example is tested)")
        pytest.skip("node or npm is not installed")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return found


def test_node_example_against_a_plaintext_server(server: ServerThread, node: str) -> None:
    result = run([node, str(NODE_DIR / "example.js"), "--target", f"127.0.0.1:{server.port}"])
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


def test_node_example_over_tls_with_a_token_from_the_environment(
    tls_server: tuple[ServerThread, Path], node: str
) -> None:
    running, ca = tls_server
    env = {
        "CENTINELA_TARGET": f"127.0.0.1:{running.port}",
        "CENTINELA_CA": str(ca),
        "CENTINELA_TOKEN": TOKEN,
    }
    result = run([node, str(NODE_DIR / "example.js")], env)
    assert result.returncode == 0, result.stderr
    check_transcript(result.stdout)


def test_node_example_without_the_token_is_refused_after_health(
    tls_server: tuple[ServerThread, Path], node: str
) -> None:
    running, ca = tls_server
    target = f"127.0.0.1:{running.port}"
    result = run([node, str(NODE_DIR / "example.js"), "--target", target, "--ca", str(ca)])
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["health: SERVING"]
    assert result.stderr.splitlines()[-1].startswith("error: UNAUTHENTICATED: "), result.stderr
