"""server/metrics.yaml is every metric the server exports: the registry holds exactly its
metrics with its types, labels and help, and a broken catalogue is refused naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from features.errors import ConfigError
from scoring.ledger import Buckets, FollowHealth
from server.metrics import CATALOGUE, CATALOGUE_FILE, Metrics, load_catalogue

_PROMETHEUS_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def _exported(metrics: Metrics) -> dict[str, tuple[str, str]]:
    """Every centinela_ family the registry yields: name -> (type, help)."""
    return {
        f.name: (f.type, f.documentation)
        for f in metrics.registry.collect()
        if f.name.startswith("centinela_")
    }


def test_the_registry_exports_exactly_the_catalogue() -> None:
    exported = _exported(Metrics())
    assert set(exported) == set(CATALOGUE.metrics)
    for name, spec in CATALOGUE.metrics.items():
        assert exported[name] == (_PROMETHEUS_TYPE[spec.type], spec.help), name


def test_labels_and_buckets_come_from_the_catalogue() -> None:
    metrics = Metrics()
    metrics.requests.labels("ScoreShipment", "OK").inc()
    metrics.latency.labels("ScoreShipment").observe(0.003)
    text = generate_latest(metrics.registry).decode()
    assert 'centinela_grpc_requests_total{code="OK",method="ScoreShipment"} 1.0' in text
    for bound in CATALOGUE.buckets["latency"]:
        assert f'le="{bound}",method="ScoreShipment"' in text
    spec = CATALOGUE.metrics["centinela_lane_share"]
    assert spec.labels == ("port", "lane")
    assert spec.attribute is None


def test_scraped_values_fill_the_catalogue_families() -> None:
    metrics = Metrics()
    delay = Buckets(bounds=(0.1, 1.0), counts=(2, 1, 0), total=0.7)
    metrics.ledger.follow = lambda: FollowHealth(
        applied=9, lag_rows=3, lag_seconds=2.5, followed=40, delay=delay, failures=1
    )
    text = generate_latest(metrics.registry).decode()
    assert "centinela_ledger_follow_lag_rows 3.0" in text
    assert "centinela_ledger_followed_rows_total 40.0" in text
    assert 'centinela_ledger_follow_delay_seconds_bucket{le="1.0"} 3.0' in text
    assert "\ncentinela_ledger_rows " not in text  # no ledger health: the family has no sample


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metrics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


_GOOD = """\
buckets:
  latency: [0.1, 1.0]
metrics:
  centinela_calls:
    type: counter
    attribute: calls
    help: Calls.
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("centinela_calls:", "centinela_calls_total:"), "drop _total"),
        (("centinela_calls:", "calls:"), "centinela_"),
        (("type: counter", "type: summary"), "type"),
        (("help: Calls.", "help: ''"), "help"),
        (("help: Calls.", "help: Calls.\n    unit: seconds"), "unit"),
        (("type: counter", "type: histogram"), "names its buckets"),
        (
            ("metrics:\n", "metrics:\n  centinela_calls:\n    type: gauge\n    help: Again.\n"),
            "duplicate",
        ),
    ],
)
def test_a_broken_catalogue_is_refused_naming_the_problem(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert load_catalogue(_write(tmp_path, _GOOD)).metrics["centinela_calls"].attribute == "calls"
    path = _write(tmp_path, _GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)


def test_the_shipped_catalogue_is_the_one_loaded() -> None:
    assert load_catalogue(CATALOGUE_FILE) == CATALOGUE
