from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from features.errors import ConfigError
from server.settings import load_settings


def test_defaults_are_the_documented_ports() -> None:
    settings = load_settings()
    assert (settings.grpc_host, settings.grpc_port) == ("127.0.0.1", 50051)
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)


def test_file_then_environment_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text("grpc_port: 6000\nmetrics_port: 6001\n")
    assert load_settings(config).grpc_port == 6000
    monkeypatch.setenv("CENTINELA_GRPC_PORT", "7000")
    settings = load_settings(config)
    assert (settings.grpc_port, settings.metrics_port) == (7000, 6001)


def test_unknown_key_in_file_is_rejected_by_name(tmp_path: Path) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text("grpc_port: 6000\nmetrics_prot: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "metrics_prot" in caught.value.message
    assert "Extra inputs are not permitted" in caught.value.message


def test_bad_value_from_environment_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTINELA_GRPC_PORT", "not-a-port")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "grpc_port" in caught.value.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "grpc_port: [\n"])
def test_malformed_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(config) in caught.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "absent.yaml")


def test_the_readme_capacity_example_is_valid_settings(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\nlane_budgets:") + len("```yaml\n")
    example = tmp_path / "capacity.yaml"
    example.write_text(readme[start : readme.index("```", start)], encoding="utf-8")
    budgets = load_settings(example).lane_budgets
    assert set(budgets) == {"default", "MXZLO", "MXLZC", "MXNLD"}
    assert budgets["MXNLD"].window_hours == 24
    assert budgets["MXZLO"].red == 0.015


@pytest.mark.parametrize(
    ("variable", "shape"),
    [
        ("CENTINELA_LANE_BUDGETS", "a JSON object"),
        ("CENTINELA_EXAM_CAPACITY", "a JSON object"),
        ("CENTINELA_LEDGER_PUBLIC_KEY_FILES", "a JSON array"),
    ],
)
def test_environment_value_that_is_not_json_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, shape: str
) -> None:
    monkeypatch.setenv(variable, "MXZLO: 0.01")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith(f"environment variable {variable} is not valid JSON (Expecting ")
    assert shape in message
    # The example the message gives is a value the setting accepts.
    example = message.split(f"e.g. {variable}='", 1)[1].removesuffix("'")
    monkeypatch.setenv(variable, example)
    assert getattr(load_settings(), variable.removeprefix("CENTINELA_").lower())


def test_serve_reports_an_environment_value_that_is_not_json_in_one_line(tmp_path: Path) -> None:
    centinela = Path(sys.executable).parent / "centinela"
    env = {**os.environ, "CENTINELA_LANE_BUDGETS": "x"}
    result = subprocess.run(
        [str(centinela), "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: environment variable CENTINELA_LANE_BUDGETS is not valid JSON (Expecting value: "
        "line 1 column 1 (char 0)); lane_budgets from the environment takes a JSON object, e.g. "
        """CENTINELA_LANE_BUDGETS='{"MXZLO": {"red": 0.015, "yellow": 0.04}}'"""
    ]
    assert not list(tmp_path.iterdir()), "nothing is started or written"
