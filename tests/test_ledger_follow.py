"""Servers sharing one PostgreSQL ledger follow each other (scoring/ledger/follow.py): a shipment
scored on one counts in the other's history once it has polled, its own rows are not applied
twice, the later decision of a shipment re-scored on both wins on both, an outcome reported on
one for a decision made on the other is credited, and a server that starts catches up before it
serves. Polls are made by hand here (the interval is long); tests/test_replicas.py runs real
servers with their follower threads."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.records import Shipment
from features.state import EntityState
from scoring.decisions import Outcome
from scoring.ledger import Entry, Follower, default_key_file, default_signing_key_file
from scoring.service import ScoringService
from tests.conftest import server_settings
from tests.ledger_backends import PostgresBackend, beside, verified
from tests.support import make_shipment

pytest_plugins = ("tests.ledger_fixtures",)

CONSIGNEE = "CNE-FOLLOW-1"
DECLARED = datetime(2025, 6, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def pair(
    postgres_store: PostgresBackend, registry: Path, tmp_path: Path
) -> Iterator[tuple[ScoringService, ScoringService]]:
    """Two services on one PostgreSQL ledger, polled by hand (no data dir: an empty history)."""
    beside(postgres_store.beside)
    services = [start(postgres_store, registry, tmp_path / name) for name in ("a", "b")]
    try:
        yield services[0], services[1]
    finally:
        for service in services:
            service.close()


def start(store: PostgresBackend, registry: Path, workdir: Path) -> ScoringService:
    settings = server_settings(
        registry,
        workdir,
        ledger_url=store.url,
        ledger_key_file=default_key_file(store.beside),
        ledger_signing_key_file=default_signing_key_file(store.beside),
        ledger_follow_interval_s=60.0,  # polled by the tests
    )
    service = ScoringService(settings)
    service.load()
    return service


def follower(service: ScoringService) -> Follower:
    assert service.follower is not None
    return service.follower


def state(service: ScoringService) -> EntityState:
    assert service.state is not None
    return service.state


def shipment(shipment_id: str, hours: int = 0) -> Shipment:
    base = make_shipment(shipment_id)
    consignee = dataclasses.replace(base.consignee, id=CONSIGNEE)
    return dataclasses.replace(
        base, consignee=consignee, declared_at=DECLARED + timedelta(hours=hours)
    )


def consignee_count(service: ScoringService, shipment_id: str, hours: int) -> int:
    """What ``consignee_count_30d`` a new shipment of the consignee would see on ``service``."""
    probe = service._require().score_batch([shipment(shipment_id, hours)], state(service))
    return int(probe.scored[0].features["consignee_count_30d"])


def test_a_shipment_scored_on_one_counts_on_the_other_once_followed(
    pair: tuple[ScoringService, ScoringService], postgres_store: PostgresBackend
) -> None:
    a, b = pair
    a.score([shipment(f"FA-{i}", i) for i in range(3)])
    assert consignee_count(a, "PROBE", 10) == 3
    assert consignee_count(b, "PROBE", 10) == 0  # not polled yet
    assert follower(b).poll() == 3
    assert consignee_count(b, "PROBE", 10) == 3
    health = follower(b).health()
    assert (health.applied, health.followed, health.lag_rows) == (3, 3, 3)
    assert health.delay.count == 3

    b.score([shipment("FB-0", 4)])
    assert follower(b).poll() == 1  # its own row: read, not applied again
    assert follower(b).health().followed == 3
    assert state(b).shipments == 4
    follower(a).poll()
    assert (consignee_count(a, "PROBE", 10), consignee_count(b, "PROBE", 10)) == (4, 4)
    assert follower(a).health().followed == 1
    assert verified(postgres_store).ok


def test_a_shipment_rescored_on_both_keeps_the_later_decision_on_both(
    pair: tuple[ScoringService, ScoringService],
) -> None:
    a, b = pair
    a.score([shipment("SAME", 0)])
    b.score([shipment("SAME", 5)])  # later in the ledger
    later = state(b)._records["SAME"].at
    assert state(a)._records["SAME"].at != later
    follower(b).poll()  # a's earlier row must not replace b's later one
    follower(a).poll()
    assert state(a)._records["SAME"].at == later == state(b)._records["SAME"].at
    assert state(a).shipments == state(b).shipments == 1


def test_the_live_path_does_not_overwrite_a_later_row_already_followed(
    pair: tuple[ScoringService, ScoringService],
) -> None:
    """b commits its decision (seq 1), a commits a later one of the same id (seq 2), b's
    follower applies a's before b's live path remembers its own: a's, the later, stays."""
    a, b = pair
    f, ledger = follower(b), b.ledger
    assert ledger is not None
    ours = b._require().score_batch([shipment("RACE", 1)], state(b)).keyed
    with f.live() as remember:
        seq = ledger.append(Entry("decision", "ours", {"shipment": {}})).result(timeout=10)
        a.score([shipment("RACE", 9)])
        f.poll()  # skips seq 1 (b's own), applies a's seq 2
        remember(ours, [seq])
    assert seq == 1
    expected = int((DECLARED + timedelta(hours=9)).timestamp() * 1_000_000)
    assert state(b)._records["RACE"].at == expected


def test_an_outcome_reported_on_the_other_server_is_credited_on_both(
    pair: tuple[ScoringService, ScoringService],
) -> None:
    a, b = pair
    (decision,) = a.score([shipment("OUT-1")])
    # b has not followed a's decision yet: the outcome cannot be credited live on b
    b.record_outcome(Outcome(decision.decision_id, True, "positive"))
    assert state(b).outcomes == 0
    follower(b).poll()  # the decision, then the outcome
    follower(a).poll()
    assert state(a).outcomes == state(b).outcomes == 1


def test_a_server_that_starts_replays_then_follows_from_the_last_row(
    pair: tuple[ScoringService, ScoringService],
    postgres_store: PostgresBackend,
    registry: Path,
    tmp_path: Path,
) -> None:
    a, b = pair
    a.score([shipment(f"ST-{i}", i) for i in range(4)])
    c = start(postgres_store, registry, tmp_path / "c")
    try:
        assert follower(c).cursor == 4
        assert consignee_count(c, "PROBE", 10) == 4
        b.score([shipment("ST-B", 6)])
        assert follower(c).poll() == 1
        assert consignee_count(c, "PROBE", 10) == 5
    finally:
        c.close()


def test_a_sqlite_ledger_has_no_follower(registry: Path, tmp_path: Path) -> None:
    service = ScoringService(server_settings(registry, tmp_path))
    service.load()
    try:
        assert service.follower is None
        assert service.follow_health() is None
        assert service.ledger is not None
        assert not service.ledger.shared
    finally:
        service.close()


def test_own_rows_read_the_moment_they_commit_are_still_own(
    pair: tuple[ScoringService, ScoringService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower may read this server's rows between their commit and the writer noting
    their seqs as its own: it must wait for the note, not take them for another server's."""
    a, _ = pair
    assert a.ledger is not None
    storage = a.ledger._storage
    commit = storage.append
    polls: list[threading.Thread] = []

    def append_then_poll(*args: object, **kwargs: object) -> object:
        done = commit(*args, **kwargs)  # committed: visible to the follower's connection
        poll = threading.Thread(target=follower(a).poll)
        poll.start()
        polls.append(poll)
        poll.join(timeout=0.5)  # the follower reads the rows now, before they are noted
        return done

    monkeypatch.setattr(storage, "append", append_then_poll)
    a.score([shipment("OWN-0", 1)])
    for poll in polls:
        poll.join(timeout=10)
    assert polls
    assert not any(p.is_alive() for p in polls)
    assert follower(a).health().followed == 0  # read, and known as its own
    assert state(a).shipments == 1
