"""The ledger keeps every entry durably, shares commits, names the first tampered row, and
exports and replays one shipment per shipment id. (Attacks on the keyed chain, checkpoints,
witnesses and keys: tests/test_ledger_keyed.py.)

Each test that exercises storage runs once per backend (the ``store`` fixture,
tests/ledger_backends.py); what is SQLite's own (the file, its mode) runs once per form of a
SQLite location (``sqlite_store``)."""

from __future__ import annotations

import dataclasses
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from features.errors import ConfigError
from features.live import goods_rows, shipment_row
from features.records import Party, Shipment
from features.state import EntityState
from features.watchlist import load_watchlist
from scoring.ledger import Entry, Row, export, reading, replay_into
from tests.ledger_backends import Backend, SqliteBackend, open_ledger_in, verified
from tests.support import make_shipment

pytest_plugins = ("tests.ledger_fixtures",)  # the store and sqlite_store fixtures


def fill(store: Backend, n: int = 10) -> None:
    ledger = open_ledger_in(store)
    futures = [
        ledger.append(Entry("decision", f"d{i}", {"i": i, "lane": "green"})) for i in range(n)
    ]
    assert [f.result(timeout=10) for f in futures] == list(range(1, n + 1))
    ledger.close()


def test_entries_survive_reopening_and_chain_continues(store: Backend) -> None:
    fill(store, 5)
    ledger = open_ledger_in(store)
    assert ledger.append(Entry("outcome", "d1", {"result": "negative"})).result(timeout=10) == 6
    assert [r.kind for r in ledger.entries_for("d1")] == ["decision", "outcome"]
    ledger.close()
    assert verified(store).ok
    assert verified(store).rows == 6


def test_concurrent_appends_share_commits(store: Backend) -> None:
    ledger = open_ledger_in(store)
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(lambda i: ledger.append(Entry("decision", f"d{i}", {"i": i})).result(), i)
            for i in range(400)
        ]
        seqs = sorted(f.result(timeout=30) for f in futures)
    assert seqs == list(range(1, 401))
    assert ledger.commits < 400
    ledger.close()
    assert verified(store).ok


def test_a_batch_appended_at_once_is_one_commit_in_order(store: Backend) -> None:
    ledger = open_ledger_in(store)
    first = ledger.append(Entry("decision", "d0", {"i": 0})).result(timeout=10)
    commits = ledger.commits
    appended = ledger.append_many([Entry("decision", f"d{i}", {"i": i}) for i in range(1, 9)])
    assert appended.result(timeout=10) == list(range(first + 1, first + 9))
    assert ledger.commits == commits + 1  # one hand-over, one transaction, one fsync
    assert ledger.append_many([]).result(timeout=10) == []
    ledger.close()
    assert verified(store).ok
    assert [r.decision_id for r in rows_of(store)] == [f"d{i}" for i in range(9)]


def test_an_entry_json_cannot_hold_fails_alone_and_the_writer_goes_on(store: Backend) -> None:
    ledger = open_ledger_in(store)
    first, bad, third = ledger.append_many(
        [
            Entry("decision", "d0", {"i": 0}),
            Entry("decision", "bad", {"i": object()}),  # no JSON for it
            Entry("decision", "d2", {"i": 2}),
        ]
    ).result(timeout=10)
    assert (first, third) == (1, 2)
    assert isinstance(bad, TypeError)
    with pytest.raises(TypeError):  # alone, through append
        ledger.append(Entry("decision", "bad", {"i": object()})).result(timeout=10)
    # The writer thread is alive: later entries are still written, on the same chain.
    assert ledger.append(Entry("decision", "d3", {"i": 3})).result(timeout=10) == 3
    ledger.close()
    assert verified(store).ok
    assert [r.decision_id for r in rows_of(store)] == ["d0", "d2", "d3"]


def rows_of(store: Backend) -> list[Row]:
    with reading(store.location) as view:
        return list(view.rows())


@pytest.mark.parametrize(
    ("sql", "seq", "words"),
    [
        ('UPDATE ledger SET payload = \'{"i":3,"lane":"red"}\' WHERE seq = 4', 4, "edited"),
        ("DELETE FROM ledger WHERE seq = 6", 6, "missing"),
        ("DELETE FROM ledger WHERE seq = 10", 10, "head"),
        (
            "UPDATE ledger SET seq = CASE seq WHEN 3 THEN 1003 WHEN 7 THEN 3 END "
            "WHERE seq IN (3, 7)",
            3,
            "reordered",
        ),
    ],
)
def test_verify_names_the_first_tampered_row(
    store: Backend, sql: str, seq: int, words: str
) -> None:
    fill(store, 10)
    store.execute(sql)
    result = verified(store)
    assert not result.ok
    assert result.seq == seq
    assert words in result.problem


def test_cutting_the_end_and_dropping_the_head_is_seen(store: Backend) -> None:
    fill(store, 10)
    store.execute("DELETE FROM ledger WHERE seq > 8", "DROP TABLE ledger_head")
    result = verified(store)
    assert not result.ok
    assert "ledger head is missing" in result.problem


def test_swapping_two_payloads_is_an_edit(store: Backend) -> None:
    fill(store, 4)
    (p2,), (p3,) = store.query("SELECT payload FROM ledger WHERE seq IN (2, 3) ORDER BY seq")
    store.execute(
        ("UPDATE ledger SET payload = ? WHERE seq = 2", (p3,)),
        ("UPDATE ledger SET payload = ? WHERE seq = 3", (p2,)),
    )
    result = verified(store)
    assert (result.ok, result.seq) == (False, 2)


def test_not_a_database(sqlite_store: SqliteBackend) -> None:
    sqlite_store.file.write_text("this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        open_ledger_in(sqlite_store)


def decision(shipment: Shipment, propensity: float = 0.5) -> dict[str, object]:
    """A decision payload with what export and replay read from it."""
    row = {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in shipment_row(shipment).items()
    }
    return {
        "shipment": row,
        "goods": goods_rows(shipment),
        "propensity": propensity,
        "random_selection": False,
    }


def outcome(inspected: bool, result: str = "", version: int = 1) -> dict[str, object]:
    return {"inspected": inspected, "result": result, "substances": [], "version": version}


def test_export_and_replay_keep_one_shipment_per_shipment_id(
    store: Backend, tmp_path: Path
) -> None:
    x = make_shipment("X-1")
    later = dataclasses.replace(x, declared_at=x.declared_at + timedelta(days=3), goods=x.goods[:1])
    y = make_shipment("Y-1", consignee=Party("CNE-2", "Otra", "MX"))
    ledger = open_ledger_in(store)
    entries = [
        Entry("decision", "dx1", decision(x, propensity=0.25)),
        Entry("outcome", "dx1", outcome(True, "positive")),
        Entry("decision", "dy1", decision(y)),
        Entry("outcome", "dy1", outcome(True, "negative")),
        Entry("decision", "dx2", decision(x)),
        Entry("outcome", "dx2", outcome(False)),  # not inspected this time: erases nothing
        Entry("outcome", "dy1", outcome(True, "positive", version=2)),  # a correction
        Entry("decision", "dx3", decision(later, propensity=0.75)),
    ]
    for entry in entries:
        ledger.append(entry).result(timeout=10)
    ledger.close()

    result = export(store.location, tmp_path / "out")
    assert (result.shipments, result.goods, result.inspections, result.folded) == (2, 3, 2, 2)
    shipments = pl.read_parquet(tmp_path / "out" / "shipments.parquet")
    assert shipments["shipment_id"].to_list() == ["X-1", "Y-1"]
    assert shipments["declared_at"][0] == later.declared_at  # the latest decision's
    goods = pl.read_parquet(tmp_path / "out" / "goods.parquet")
    assert goods.group_by("shipment_id").len().sort("shipment_id")["len"].to_list() == [1, 2]
    inspections = pl.read_parquet(tmp_path / "out" / "inspections.parquet").sort("shipment_id")
    assert inspections["shipment_id"].to_list() == ["X-1", "Y-1"]
    assert inspections["positive"].to_list() == [True, True]  # Y: the corrected version
    assert inspections["selection_probability"].to_list() == [0.25, 0.5]  # X: dx1 selected it

    # A restart credits each shipment once: one record and one outcome per shipment id.
    state = EntityState.empty()
    replay_into(state, store.location, load_watchlist())
    assert (state.shipments, state.outcomes) == (2, 2)
    assert not state.add_outcome("X-1", datetime.now(UTC), True)


def test_checkpoints_every_n_rows_and_at_close(store: Backend) -> None:
    ledger = open_ledger_in(store, checkpoint_rows=4)
    for i in range(10):  # one commit each: checkpoints at rows 4 and 8
        ledger.append(Entry("decision", f"d{i}", {"i": i})).result(timeout=10)
    ledger.close()  # and one of the head at close
    seqs = [r[0] for r in store.query("SELECT seq FROM checkpoints ORDER BY seq")]
    assert seqs == [4, 8, 10]
    result = verified(store)
    assert (result.ok, result.rows, result.checkpoints) == (True, 10, 3), result.problem


def test_checkpoints_every_t_seconds_while_idle(store: Backend) -> None:
    ledger = open_ledger_in(store, checkpoint_rows=1000, checkpoint_seconds=0.2)
    ledger.append(Entry("decision", "d0", {"i": 0})).result(timeout=10)
    deadline = time.monotonic() + 10
    while ledger.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # idle: the writer signs the head on its own
    assert ledger.checkpoints == 1
    ledger.close()
    assert verified(store).checkpoints == 1


def test_the_ledger_and_its_companions_are_private(
    sqlite_store: SqliteBackend, tmp_path: Path
) -> None:
    ledger = open_ledger_in(sqlite_store)
    ledger.append(Entry("decision", "d0", {"i": 0})).result(timeout=10)
    names = ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "ledger.key"]
    for name in [*names, "ledger.signing.pem"]:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    ledger.close()
