"""Drift through a real server, as operations see it in Prometheus and analysts with
``centinela drift``: a shifted stream at one port crosses the alert threshold, an unshifted
control at another stays below it.

The control is the traffic the model's drift reference was built from (the validation
window's shipments at Nuevo Laredo, scored again live): unshifted by definition, so any PSI it
shows is a difference between live and training features. The shifted stream is that window's
other shipments arriving at Manzanillo from a new origin mix (India, Viet Nam, Thailand,
Malaysia) by exporters and importers never seen before. Later windows of this small simulated
world drift by themselves (its parties only age), so they make no control.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from features.live import shipments_from_frames
from features.records import Party, Shipment
from features.tables import scan_table
from scoring.drift import ALERT_PSI, SCORE
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import CENTINELA, ServerThread, request_for
from training.train import TRAIN_SHARE, VALID_SHARE

CONTROL, SHIFTED = "MXNLD", "MXZLO"
NEW_ORIGINS = ("IN", "VN", "TH", "MY")
WINDOW, MIN_DECISIONS = 250, 100


def streams(world: Path) -> tuple[list[Shipment], list[Shipment]]:
    ships = scan_table(world, "shipments").sort("declared_at", "shipment_id").collect()
    first, end = int(ships.height * TRAIN_SHARE), int(ships.height * (TRAIN_SHARE + VALID_SHARE))
    valid = ships.slice(first, end - first)
    goods = scan_table(world, "goods").collect()

    def of(frame: pl.DataFrame) -> list[Shipment]:
        ids = frame["shipment_id"].implode()
        return list(shipments_from_frames(frame, goods.filter(pl.col("shipment_id").is_in(ids))))

    control = of(valid.filter(pl.col("port_of_entry") == CONTROL))
    shifted = []
    for i, s in enumerate(of(valid.filter(pl.col("port_of_entry") != CONTROL))):
        country = NEW_ORIGINS[i % len(NEW_ORIGINS)]
        shifted.append(
            dataclasses.replace(
                s,
                shipment_id=f"NEWMIX-{i:05d}",
                port_of_entry=SHIFTED,
                mode="sea",
                origin_country=country,
                export_country=country,
                transshipment_ports=(),
                shipper=Party(f"SHP-NEW-{i // 3:05d}", "New Export Co.", country, ""),
                consignee=Party(f"CNE-NEW-{i // 3:05d}", "Nueva Importadora", "MX", ""),
            )
        )
    return control, shifted


def scrape(running: ServerThread) -> str:
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
    return text


def sample(text: str, name: str, **labels: str) -> float | None:
    wanted = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in text.splitlines():
        if line.startswith(f"{name}{wanted if labels else ''} "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(scope="module")
def drifted(
    registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, str, Path]]:
    control, shifted = streams(world)
    assert len(control) >= WINDOW
    assert len(shifted) >= WINDOW
    workdir = tmp_path_factory.mktemp("drift")
    settings = server_settings(
        registry,
        workdir,
        data_dir=world,
        drift_window=WINDOW,
        drift_min_decisions=MIN_DECISIONS,
    )
    running = ServerThread(settings)
    try:
        assert running.load()
        stub = pb_grpc.RiskScoringStub(running.channel)
        for stream in (control, shifted):  # the control first: its history is the world's
            decided = list(stub.ScoreShipments(request_for(s) for s in stream))
            assert not any(d.HasField("error") for d in decided)
        yield running, scrape(running), settings.ledger_path
    finally:
        running.stop()


def test_a_shifted_port_crosses_the_alert_threshold_and_the_control_stays_below(
    drifted: tuple[ServerThread, str, Path],
) -> None:
    running, text, _ = drifted
    series = running.app.service.monitor.reference
    assert series is not None
    shifted = sample(text, "centinela_drift_psi", port=SHIFTED, feature=SCORE)
    control = {
        name: sample(text, "centinela_drift_psi", port=CONTROL, feature=name)
        for name in series.series
    }
    print(f"risk_score PSI: {SHIFTED} (shifted) {shifted:.3f}; {CONTROL} (control) {control}")
    assert shifted is not None
    assert shifted > ALERT_PSI
    assert all(v is not None and v < 0.1 for v in control.values()), control
    # Each new exporter ships three times: its first shipment has no history.
    no_history = sample(text, "centinela_drift_no_history_share", port=SHIFTED)
    assert no_history == pytest.approx(1 / 3, abs=0.01)
    # The control stream is the world's own validation window: its shippers have history,
    # except the odd licit exporter starting to trade there (1 of the 250 on seed 11).
    control_no_history = sample(text, "centinela_drift_no_history_share", port=CONTROL)
    assert control_no_history is not None
    assert control_no_history <= 0.01
    assert sample(text, "centinela_drift_window_decisions", port=SHIFTED) == WINDOW
    assert sample(text, "centinela_drift_watchlist_hit_rate", port=CONTROL) is not None


def test_the_drift_command_reads_the_same_window_from_the_ledger(
    drifted: tuple[ServerThread, str, Path], registry: Path, tmp_path: Path
) -> None:
    _, _, ledger = drifted
    plot = tmp_path / "drift.png"
    done = subprocess.run(
        [
            CENTINELA,
            "drift",
            "--ledger",
            str(ledger),
            "--registry",
            str(registry),
            "--json",
            "--plot",
            str(plot),
            "--since",
            "2000-01-01",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    ports = {row["port"]: row for row in result["ports"]}
    assert set(ports) == {CONTROL, SHIFTED}
    assert ports[SHIFTED]["psi"][SCORE] > ALERT_PSI
    assert ports[CONTROL]["max_psi"] < 0.1
    assert ports[SHIFTED]["no_history_share"] == pytest.approx(1 / 3, abs=0.01)
    assert result["series"][0] == SCORE
    assert len(result["series"]) == 6
    assert plot.read_bytes().startswith(b"\x89PNG")

    table = subprocess.run(
        [CENTINELA, "drift", "--ledger", str(ledger), "--registry", str(registry)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    assert SHIFTED in table.stdout
    assert "risk_score" in table.stdout

    future = subprocess.run(
        [
            CENTINELA,
            "drift",
            "--ledger",
            str(ledger),
            "--registry",
            str(registry),
            "--json",
            "--since",
            "2999-01-01",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert future.returncode == 0, future.stderr
    assert json.loads(future.stdout)["decisions"] == 0

    bad = subprocess.run(
        [
            CENTINELA,
            "drift",
            "--ledger",
            str(ledger),
            "--registry",
            str(registry),
            "--since",
            "yesterday",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 3
    assert "--since 'yesterday'" in bad.stderr


def test_outcomes_feed_label_lag_and_a_repeat_is_not_counted(
    drifted: tuple[ServerThread, str, Path],
) -> None:
    running, before, _ = drifted
    stub = pb_grpc.RiskScoringStub(running.channel)
    awaiting = sample(before, "centinela_decisions_awaiting_outcome", port=SHIFTED, age="lt_1d")
    assert awaiting is not None
    assert awaiting > 0
    request = pb.RecordOutcomeRequest(
        decision_id=_red_decision(running), inspected=True, result="negative"
    )
    for _ in range(3):  # the same report three times: one outcome
        stub.RecordOutcome(request)
    after = scrape(running)
    assert sample(after, "centinela_outcomes_total", result="negative") == 1.0
    assert (
        sample(after, "centinela_decisions_awaiting_outcome", port=SHIFTED, age="lt_1d")
        == awaiting - 1
    )
    assert sample(after, "centinela_positive_share_inspected", port=SHIFTED) == 0.0
    rate = sample(after, "centinela_outcome_rate", port=SHIFTED)
    assert rate is not None
    assert 0 < rate < 0.01
    since = sample(after, "centinela_seconds_since_last_outcome")
    assert since is not None
    assert since < 60
    assert sample(after, "process_resident_memory_bytes") is not None


def _red_decision(running: ServerThread) -> str:
    from scoring.ledger import read_contents

    ledger = running.app.service.ledger
    assert ledger is not None
    contents = read_contents(ledger.path)
    return next(
        i
        for i, d in contents.decisions.items()
        if d["lane"] == "red" and d["shipment"]["port_of_entry"] == SHIFTED
    )
