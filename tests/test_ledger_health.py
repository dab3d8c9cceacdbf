"""Ledger health: the writer counts rows, commits and group sizes, the server's verifications
are recorded, and a real server exports them as ``centinela_ledger_*``; a row tampered with
while the server runs turns ``centinela_ledger_last_verify_ok`` to 0.

The tests of the ledger alone run once per storage backend (``store``,
tests/ledger_backends.py)."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scoring.ledger import Entry, Ledger, encode_payload, payload_text
from server.metrics import Metrics
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.ledger_backends import Backend, SqliteBackend, open_ledger_in
from tests.support import ServerThread, make_shipment, request_for

pytest_plugins = ("tests.ledger_fixtures",)  # the store and sqlite_store fixtures


def write(ledger: Ledger, n: int, start: int = 0, *, together: bool = False) -> None:
    """``n`` decisions: one commit each, or ``together`` queued at once (grouped)."""
    futures: list[Future[int]] = []
    for i in range(start, start + n):
        future = ledger.append(Entry("decision", f"d{i}", {"lane": "green", "i": i}))
        if together:
            futures.append(future)
        else:
            future.result(timeout=10)
    for future in futures:
        future.result(timeout=10)


def count_rows(store: Backend) -> int:
    ((count,),) = store.query("SELECT COUNT(*) FROM ledger")
    return int(count)


def edit(store: Backend, seq: int, old: str, new: str) -> None:
    """Change row ``seq``'s payload in place, as anyone who can write the storage can."""
    ((stored,),) = store.query("SELECT payload FROM ledger WHERE seq = ?", seq)
    text = payload_text(stored)
    assert old in text
    store.execute(
        (
            "UPDATE ledger SET payload = ? WHERE seq = ?",
            (encode_payload(text.replace(old, new)), seq),
        )
    )


# --------------------------------------------------------------------------- the ledger alone


def test_the_writer_counts_rows_commits_and_group_sizes(store: Backend) -> None:
    before = time.time()
    ledger = open_ledger_in(store)
    try:
        opened = ledger.health()
        assert (opened.rows, opened.commit_seconds.count, opened.group_size.count) == (0, 0, 0)
        assert opened.verified.ok
        assert before <= opened.verified.at <= time.time()

        write(ledger, 10)
        write(ledger, 200, start=10, together=True)
        health = ledger.health()
        assert health.rows == count_rows(store) == 210
        assert health.group_size.total == 210
        assert health.commit_seconds.count == health.group_size.count == ledger.commits
        assert ledger.commits < 210, "the 200 queued at once share commits"
        assert health.commit_seconds.total > 0
        assert len(health.commit_seconds.counts) == len(health.commit_seconds.bounds) + 1
        if isinstance(store, SqliteBackend):  # the bytes of the file and its -wal
            db, wal = store.file, store.file.with_name(store.file.name + "-wal")
            assert health.bytes == db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        assert health.bytes > 0
    finally:
        ledger.close()

    reopened = open_ledger_in(store)
    try:
        health = reopened.health()
        assert health.rows == 210  # the head's seq, not this writer's rows
        assert health.group_size.count == 0
        assert health.verified.ok
    finally:
        reopened.close()


def test_a_later_check_catches_a_tampered_row_and_keeps_reporting_it(
    store: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # A 5-row tail and no checkpoint to reach back to: row 8 leaves the tail after 5 more rows.
    ledger = open_ledger_in(store, check_rows=5, checkpoint_rows=10_000)
    try:
        write(ledger, 10)
        assert ledger.verify_tail().ok
        edit(store, 8, '"i":7', '"i":70')
        with caplog.at_level(logging.ERROR, logger="scoring.ledger"):
            failed = ledger.verify_tail()
        assert not failed.ok
        assert "row 8 was edited" in failed.problem
        assert ledger.health().verified == failed
        assert any("row 8 was edited" in r.getMessage() for r in caplog.records)

        write(ledger, 20, start=10)  # the writer goes on; row 8 is far out of the tail now
        assert ledger.health().rows == 30
        still = ledger.verify_tail()
        assert not still.ok
        assert "row 8 was edited" in still.problem
        assert still.at >= failed.at

        edit(store, 8, '"i":70', '"i":7')  # put back as it was
        assert ledger.verify_tail().ok
        assert ledger.health().verified.ok
    finally:
        ledger.close()


def test_the_periodic_check_runs_in_its_own_thread(store: Backend) -> None:
    ledger = open_ledger_in(store, verify_interval=0.05)
    try:
        write(ledger, 5)
        first = ledger.health().verified.at
        deadline = time.monotonic() + 10
        while ledger.health().verified.at == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ledger.health().verified.ok
        assert ledger.health().verified.at > first
        edit(store, 3, '"i":2', '"i":20')
        while ledger.health().verified.ok and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not ledger.health().verified.ok
        assert "row 3 was edited" in ledger.health().verified.problem
    finally:
        started = time.monotonic()
        ledger.close()
    assert time.monotonic() - started < 5, "closing stops the verifier at once"


def test_no_ledger_no_ledger_samples() -> None:
    """With ledger_enabled false nothing is exported, so the verification alert cannot fire."""
    text = generate_latest(Metrics().registry).decode()
    assert "# TYPE centinela_ledger_last_verify_ok gauge" in text
    assert "\ncentinela_ledger_" not in text


# --------------------------------------------------------------------------- a real server


def scrape(server: ServerThread) -> dict[str, float]:
    """Every sample of /metrics by name (labels dropped: the ledger's have only ``le``, and
    the bucket samples are not used here)."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "centinela_decisions_total":
                samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
            elif not sample.name.endswith("_bucket"):
                samples[sample.name] = sample.value
    return samples


@pytest.fixture
def live(registry: Path, world: Path, tmp_path: Path) -> Iterator[ServerThread]:
    settings = server_settings(registry, tmp_path, data_dir=world, ledger_verify_interval_s=0.2)
    running = ServerThread(settings)
    assert running.load()
    yield running
    running.stop()


def test_a_server_exports_its_ledger_health(live: ServerThread, tmp_path: Path) -> None:
    started = time.time()
    stub = pb_grpc.RiskScoringStub(live.channel)
    decision = stub.ScoreShipment(request_for(make_shipment("HEALTH-1")), timeout=30)
    stub.ScoreShipment(request_for(make_shipment("HEALTH-2")), timeout=30)
    streamed = list(
        stub.ScoreShipments(
            iter([request_for(make_shipment(f"HEALTH-S{i}")) for i in range(6)]), timeout=30
        )
    )
    assert len(streamed) == 6
    stub.RecordOutcome(
        pb.RecordOutcomeRequest(
            decision_id=decision.decision_id, inspected=True, result="negative"
        ),
        timeout=30,
    )

    m = scrape(live)
    db = SqliteBackend(tmp_path, as_url=False)  # the server's ledger_path
    assert m["centinela_decisions_total"] == 8
    assert m["centinela_ledger_rows"] == count_rows(db) == 8 + 1  # and the outcome
    assert m["centinela_ledger_commit_seconds_count"] > 0
    assert m["centinela_ledger_commit_seconds_sum"] > 0
    assert m["centinela_ledger_group_size_sum"] == m["centinela_ledger_rows"]
    assert m["centinela_ledger_group_size_count"] == m["centinela_ledger_commit_seconds_count"]
    assert m["centinela_ledger_bytes"] >= db.file.stat().st_size > 0
    assert m["centinela_ledger_last_verify_ok"] == 1
    assert started - 60 < m["centinela_ledger_last_verify_timestamp_seconds"] <= time.time()

    # Someone with write access to the file edits a decision while the server runs.
    edit(db, 2, '"shipment_id":"HEALTH-2"', '"shipment_id":"HEALTH-X"')
    deadline = time.monotonic() + 30
    while scrape(live)["centinela_ledger_last_verify_ok"] == 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = scrape(live)
    assert after["centinela_ledger_last_verify_ok"] == 0
    assert after["centinela_ledger_last_verify_timestamp_seconds"] > started
    # The writer keeps going: scoring still answers and is written.
    stub.ScoreShipment(request_for(make_shipment("HEALTH-3")), timeout=30)
    assert scrape(live)["centinela_ledger_rows"] == 10
