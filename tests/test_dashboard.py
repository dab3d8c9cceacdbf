"""The Grafana dashboard: generated from deploy/grafana/build_dashboard.py, well formed, and every
metric its queries name is one a real server exports."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import yaml

from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import ServerThread, make_shipment, request_for

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "deploy" / "grafana" / "build_dashboard.py"
DASHBOARD = ROOT / "deploy" / "grafana" / "centinela.json"

# Series Prometheus makes itself for every scrape target, not exported by the server.
PROMETHEUS_OWN = {"up"}
# Every name the dashboard may use starts with one of these.
OUR_PREFIXES = ("centinela_", "process_")
# A metric name in PromQL: an identifier followed by a selector or a range.
SELECTED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]")
PREFIXED = re.compile(r"\b((?:centinela|process)_[A-Za-z0-9_:]+)")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets, annotations and template variables."""
    found = [n["expr"] for n in walk(dashboard) if isinstance(n.get("expr"), str)]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["definition"])
    return found


def metric_names(expr: str) -> set[str]:
    names = set(PREFIXED.findall(expr))
    # label_values(metric{...}, label) and friends
    names |= {n for n in SELECTED.findall(expr) if n not in {"by", "without", "on", "ignoring"}}
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_checked_in_dashboard_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text(encoding="utf-8") == load_generator().render(), (
        "deploy/grafana/centinela.json is stale: run "
        ".venv/bin/python deploy/grafana/build_dashboard.py (or make deploy-files)"
    )


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), "panel titles repeat"
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert len(rows) == 4
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    # No two panels overlap.
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    names = {v["name"] for v in board["templating"]["list"]}
    assert names == {"datasource", "job", "instance", "port"}


def test_every_metric_name_in_a_query_is_ours() -> None:
    for expr in queries(dashboard()):
        for name in metric_names(expr):
            assert name in PROMETHEUS_OWN or name.startswith(OUR_PREFIXES), (name, expr)


def exported_names(text: str) -> set[str]:
    """Series names a scrape can hold: every declared family with its suffixes, and every
    sample seen."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {name, f"{name}_sum", f"{name}_count"}
            elif kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def scrape(server: ServerThread) -> str:
    """/metrics of a real server after it scored shipments (unary and a stream), refused a bad
    one and recorded an outcome."""
    stub = pb_grpc.RiskScoringStub(server.channel)
    decision = stub.ScoreShipment(request_for(make_shipment("DASH-1")), timeout=30)
    list(
        stub.ScoreShipments(
            iter([request_for(make_shipment(f"DASH-S{i}")) for i in range(3)]), timeout=30
        )
    )
    bad = make_shipment("DASH-BAD", mode="")
    with pytest.raises(grpc.RpcError) as refused:
        stub.ScoreShipment(request_for(bad), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.RecordOutcome(
        pb.RecordOutcomeRequest(
            decision_id=decision.decision_id, inspected=True, result="positive"
        ),
        timeout=30,
    )
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text: str = response.read().decode()
    return text


def test_every_metric_the_dashboard_queries_is_exported(scrape: str) -> None:
    exported = exported_names(scrape)
    used: dict[str, list[str]] = {}
    for expr in queries(dashboard()):
        for name in metric_names(expr) - PROMETHEUS_OWN:
            used.setdefault(name, []).append(expr)
    missing = sorted(set(used) - exported)
    assert not missing, "the dashboard queries metrics the server does not export: " + ", ".join(
        missing
    )


def rules_from_queries(exprs: list[str]) -> dict[str, Any]:
    """Each dashboard query as a recording rule, Grafana's variables replaced by values."""
    rules = []
    for i, expr in enumerate(exprs):
        concrete = (
            expr.replace("$__rate_interval", "5m")
            .replace('"$job"', '".*"')
            .replace('"$instance"', '".*"')
            .replace('"$port"', '".*"')
        )
        if concrete.startswith("label_values("):
            concrete = concrete[len("label_values(") :].rsplit(",", 1)[0]
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    return {"groups": [{"name": "dashboard", "rules": rules}]}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules_from_queries(queries(dashboard()))), encoding="utf-8")
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
