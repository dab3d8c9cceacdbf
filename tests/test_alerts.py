"""The alert rules and the metrics they read, checked by Prometheus's own tool.

``promtool`` comes from Debian's ``prometheus`` package, which ``.ci/run`` installs: in CI
(``CI=true``) a missing promtool fails these tests; elsewhere they are skipped, saying how to
install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import ServerThread, make_shipment, request_for

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is not on PATH, and CI guarantees it (.ci/run installs it)")
    pytest.skip(
        "promtool is not installed (apt-get install --no-install-recommends prometheus; "
        ".ci/run does it in CI)"
    )


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    print(done.stdout, done.stderr)
    return done


def test_the_alert_rules_are_valid() -> None:
    done = run("check", "rules", str(RULES / "alerts.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout


def test_each_alert_fires_on_its_fixture_and_stays_silent_on_the_others() -> None:
    done = run("test", "rules", str(RULES / "alerts_test.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((RULES / "alerts.yaml").read_text(encoding="utf-8"))
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    tests = yaml.safe_load((RULES / "alerts_test.yaml").read_text(encoding="utf-8"))
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if not case.get("exp_alerts")
    }
    assert alerts == fired == silent


def test_a_live_scrape_passes_promtool_check_metrics(server: ServerThread) -> None:
    stub = pb_grpc.RiskScoringStub(server.channel)
    decision = stub.ScoreShipment(request_for(make_shipment("ALERTS-1")))
    list(stub.ScoreShipments(request_for(make_shipment(f"ALERTS-S{i}")) for i in range(3)))
    outcome = pb.RecordOutcomeRequest(
        decision_id=decision.decision_id, inspected=True, result="positive"
    )
    stub.RecordOutcome(outcome)
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in (
        "centinela_decisions_awaiting_outcome",
        "centinela_outcome_rate",
        "centinela_seconds_since_last_outcome",
        "centinela_drift_no_history_share",
        "centinela_drift_watchlist_hit_rate",
        "process_cpu_seconds_total",
        "python_info",
    ):
        assert f"\n{family}" in text, family
    done = run("check", "metrics", stdin=text)
    assert done.returncode == 0, done.stdout + done.stderr
