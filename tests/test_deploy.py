"""Deployment files: the example settings cover every setting and load, the compose file,
Prometheus and Grafana provisioning agree with each other and with the repository, the
Dockerfile runs as a user with a gRPC health check, the systemd unit is valid and hardened, and
the health-check script answers as a probe should. No test needs Docker."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from server.auth import check_transport
from server.settings import Settings, load_settings
from tests.conftest import server_settings
from tests.support import ServerThread

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "centinela.example.yaml"
HEALTHCHECK = DEPLOY / "healthcheck.py"


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CENTINELA_"):
            monkeypatch.delenv(name)


def words(text: str) -> str:
    return " ".join(text.split())


# --- The example settings file -----------------------------------------------------------------


def test_example_settings_are_what_the_generator_writes() -> None:
    generator = load_module(DEPLOY / "build_settings_example.py")
    assert EXAMPLE.read_text(encoding="utf-8") == generator.render(), (
        "deploy/centinela.example.yaml is stale: run "
        ".venv/bin/python deploy/build_settings_example.py (or make deploy-files)"
    )


@pytest.mark.usefixtures("clean_env")
def test_example_settings_load_and_name_every_setting_with_its_description() -> None:
    settings = load_settings(EXAMPLE)
    check_transport(settings)  # a coherent deployment: TLS where it listens beyond loopback
    keys = set(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    assert keys == set(Settings.model_fields), (
        f"missing: {sorted(set(Settings.model_fields) - keys)}; "
        f"unknown: {sorted(keys - set(Settings.model_fields))}"
    )
    comments = words(
        " ".join(
            line.removeprefix("#")
            for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        )
    )
    for name, info in Settings.model_fields.items():
        assert info.description, f"setting {name} has no description"
        assert words(info.description) in comments, f"{name}: description missing"
    assert settings.lane_budgets["MXNLD"].window_hours == 24
    assert settings.tls_cert_file == Path("/etc/centinela/tls/server.pem")


def documented_env(variable: str) -> str:
    """The value docs/operations.md gives ``variable`` in its shell example."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    found = re.search(rf"^(?:export )?{variable}='([^']*)'", text, re.MULTILINE)
    assert found, f"docs/operations.md shows no {variable}='...'"
    return found.group(1)


@pytest.mark.usefixtures("clean_env")
def test_lane_budgets_through_the_environment_as_documented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CENTINELA_LANE_BUDGETS", documented_env("CENTINELA_LANE_BUDGETS"))
    budgets = load_settings(EXAMPLE).lane_budgets
    # Merged into the file's mapping, port by port and field by field, as the guide says.
    assert set(budgets) == {"default", "MXZLO", "MXNLD"}
    assert (budgets["MXZLO"].red, budgets["MXZLO"].yellow, budgets["MXZLO"].window) == (
        0.015,
        0.04,
        5000,
    )
    nld = budgets["MXNLD"]
    assert (nld.red, nld.yellow, nld.exploration, nld.window_hours) == (0.012, 0.08, 0.15, 24)
    assert budgets["default"].red == 0.02


# --- Compose, Prometheus, Grafana --------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return loaded


def test_compose_mounts_files_that_exist() -> None:
    services = compose()["services"]
    assert set(services) == {"centinela", "prometheus", "grafana"}
    build = services["centinela"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"


def test_prometheus_scrapes_centinela_and_loads_the_alert_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    assert config["rule_files"] == ["alerts.yaml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro" in mounts
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "centinela"
    metrics_port = Settings.model_fields["metrics_port"].default
    assert job["static_configs"][0]["targets"] == [f"centinela:{metrics_port}"]


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text("utf-8")
    )["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/centinela.yaml").read_text("utf-8")
    )["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    path = provider["options"]["path"]
    assert f"./grafana/centinela.json:{path}/centinela.json:ro" in mounts
    dashboard = json.loads((DEPLOY / "grafana" / "centinela.json").read_text("utf-8"))
    assert dashboard["uid"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_slim_non_root_with_a_grpc_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(maxsplit=1) for line in re.sub(r"\\\n", " ", text).splitlines() if line
    ]
    instructions = [i for i in instructions if not i[0].startswith("#")]
    froms = [rest for op, rest in instructions if op == "FROM"]
    assert all(f.startswith("python:3.11-slim") for f in froms)
    (user,) = [rest for op, rest in instructions if op == "USER"]
    assert not user.startswith(("root", "0"))
    (check,) = [rest for op, rest in instructions if op == "HEALTHCHECK"]
    assert "/usr/local/bin/centinela-healthcheck" in check
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for op, rest in instructions:
        if op == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignored}, (
                    f"{source} is copied but the build context excludes it"
                )


# --- systemd -------------------------------------------------------------------------------------


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "centinela.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_is_hardened_and_reads_the_example_settings_path() -> None:
    u = unit()
    assert u["User"] == ["centinela"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestartPreventExitStatus": "3",
        "StateDirectory": "centinela",
    }.items():
        assert u[key] == [value], key
    assert "--config /etc/centinela/centinela.yaml" in u["ExecStart"][0]
    assert "/etc/centinela/centinela.yaml" in EXAMPLE.read_text(encoding="utf-8")
    stop = float(u["TimeoutStopSec"][0])
    defaults = Settings.model_fields
    notice = defaults["shutdown_notice_s"].default + defaults["grace_period_s"].default
    assert stop > notice


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    centinela = Path(sys.executable).parent / "centinela"
    text = (DEPLOY / "centinela.service").read_text(encoding="utf-8")
    copy = tmp_path / "centinela.service"
    copy.write_text(text.replace("/opt/centinela/bin/centinela", str(centinela)), "utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if str(copy) in line]
    assert result.returncode == 0, result.stderr
    assert not problems, problems


# --- The health check --------------------------------------------------------------------------


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_healthcheck_passes_on_a_serving_server(server: ServerThread) -> None:
    result = probe("--target", f"127.0.0.1:{server.port}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"127.0.0.1:{server.port}: SERVING"


def test_healthcheck_fails_while_no_model_is_loaded(registry: Path, tmp_path: Path) -> None:
    empty = tmp_path / "registry"
    empty.mkdir()
    running = ServerThread(server_settings(empty, tmp_path))
    try:
        assert not running.load()
        result = probe("--target", f"127.0.0.1:{running.port}")
    finally:
        running.stop()
    assert result.returncode == 1
    assert "NOT_SERVING" in result.stdout
    gone = probe("--target", f"127.0.0.1:{running.port}", "--timeout", "1")
    assert gone.returncode == 1
    assert "UNAVAILABLE" in gone.stderr
