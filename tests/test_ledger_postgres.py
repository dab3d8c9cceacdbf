"""What is PostgreSQL's own in the ledger: one database shared by several writers (threads of
one process, or processes) that still make one chain, every acknowledged row in it; commits
that are synchronous whatever the server's default; and a server configured with a
``postgresql://`` ``ledger_url`` (keys named, replay and label lag read back through the store).

The contract every backend keeps (tamper tests, checkpoints, export, replay) runs on PostgreSQL
too, through the ``store`` fixture of tests/test_ledger*.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from features.errors import ConfigError
from scoring.ledger import Entry, Ledger, default_key_file, default_signing_key_file, open_store
from scoring.ledger.postgres import PostgresWriter
from scoring.service import ScoringService
from server.settings import Settings
from tests.conftest import server_settings
from tests.ledger_backends import PostgresBackend, beside, open_ledger_in, verified
from tests.support import centinela, make_shipment
from tests.test_ledger import rows_of

pytest_plugins = ("tests.ledger_fixtures",)  # the postgres_store fixture

# Appends from a separate process: prints the seqs its futures resolved to, as JSON.
_WRITER = """
import json, sys
from tests.ledger_backends import PostgresBackend, open_ledger_in
from scoring.ledger import Entry
url, root, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
from pathlib import Path
ledger = open_ledger_in(PostgresBackend(url, Path(root)), checkpoint_rows=50)
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
futures = [ledger.append(Entry("decision", f"{prefix}{i}", {"i": i})) for i in range(n)]
seqs = [f.result(timeout=60) for f in futures]
ledger.close()
print(json.dumps(seqs))
"""


def append_all(ledger: Ledger, prefix: str, n: int, start: threading.Event) -> list[int]:
    """``n`` decisions appended in small groups once ``start`` is set; their seqs."""
    start.wait(10)
    seqs: list[int] = []
    for first in range(0, n, 7):
        futures: list[Future[int]] = [
            ledger.append(Entry("decision", f"{prefix}{i}", {"i": i}))
            for i in range(first, min(first + 7, n))
        ]
        seqs += [f.result(timeout=60) for f in futures]
    return seqs


def test_two_writers_in_one_process_make_one_chain(postgres_store: PostgresBackend) -> None:
    first = open_ledger_in(postgres_store, checkpoint_rows=40)
    second = open_ledger_in(postgres_store, checkpoint_rows=40)  # shared: both let in
    start = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        running = {
            p: pool.submit(append_all, w, p, 150, start) for p, w in (("a", first), ("b", second))
        }
        start.set()
        results = {p: future.result(timeout=60) for p, future in running.items()}
    first.close()
    second.close()
    acknowledged = results["a"] + results["b"]
    assert sorted(acknowledged) == list(range(1, 301))  # every row a place, none twice
    result = verified(postgres_store)
    assert (result.ok, result.rows, result.last) == (True, 300, 300), result.problem
    assert result.checkpoints >= 2
    stored = {r.seq: r.decision_id for r in rows_of(postgres_store)}
    for prefix in ("a", "b"):
        assert [stored[s] for s in results[prefix]] == [f"{prefix}{i}" for i in range(150)]


def test_two_writer_processes_make_one_chain(postgres_store: PostgresBackend) -> None:
    beside(postgres_store.beside)  # the keys both processes write with, made once
    url, root = postgres_store.url, str(postgres_store.beside.parent)
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, root, "child", "200"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        ours = open_ledger_in(postgres_store, checkpoint_rows=50)
        start = threading.Event()
        start.set()
        child.stdin.write("go\n")
        child.stdin.flush()
        mine = append_all(ours, "parent", 200, start)  # while the child appends its own
        out, _ = child.communicate(timeout=60)
        ours.close()
    assert child.returncode == 0
    theirs = json.loads(out)
    assert sorted(mine + theirs) == list(range(1, 401))
    result = verified(postgres_store)
    assert (result.ok, result.rows) == (True, 400), result.problem
    stored = {r.seq: r.decision_id for r in rows_of(postgres_store)}
    assert [stored[s] for s in theirs] == [f"child{i}" for i in range(200)]
    assert [stored[s] for s in mine] == [f"parent{i}" for i in range(200)]


def test_a_writer_whose_head_moved_chains_on_from_the_new_head(
    postgres_store: PostgresBackend,
) -> None:
    first = open_ledger_in(postgres_store)
    second = open_ledger_in(postgres_store)
    try:
        assert first.append(Entry("decision", "d1", {"i": 1})).result(timeout=10) == 1
        assert second.append(Entry("decision", "d2", {"i": 2})).result(timeout=10) == 2
        assert first.append(Entry("decision", "d3", {"i": 3})).result(timeout=10) == 3
        assert first.health().rows == 3  # the head as the last commit found it
    finally:
        first.close()
        second.close()
    assert verified(postgres_store).ok


def test_commits_are_synchronous_whatever_the_database_default(
    postgres_store: PostgresBackend,
) -> None:
    name = postgres_store.url.rsplit("/", 1)[1]
    postgres_store.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    writer = open_store(postgres_store.url).writer()
    try:
        assert isinstance(writer, PostgresWriter)
        ((setting,),) = writer._conn.execute("SHOW synchronous_commit").fetchall()
        assert setting == "on"
    finally:
        writer.close()


def test_an_unreachable_database_is_a_config_error_naming_it_without_its_password() -> None:
    store = open_store("postgresql://ledger:s3cret@127.0.0.1:1/centinela?connect_timeout=2")
    with pytest.raises(ConfigError, match=r"ledger postgresql://ledger:\*\*\*@") as raised:
        store.writer()
    assert "s3cret" not in str(raised.value)
    assert store.size() == 0  # a scrape does not fail for it


def test_a_server_ledger_needs_its_keys_named(
    postgres_store: PostgresBackend, registry: Path, tmp_path: Path
) -> None:
    settings = server_settings(registry, tmp_path, ledger_url=postgres_store.url)
    with pytest.raises(ConfigError, match=r"set ledger_key_file .* and ledger_signing_key_file"):
        ScoringService(settings)


def _settings_on(store: PostgresBackend, registry: Path, world: Path, tmp_path: Path) -> Settings:
    """A server's settings with its ledger on ``store``, keys named (made beside it)."""
    beside(store.beside)
    return server_settings(
        registry,
        tmp_path,
        data_dir=world,
        ledger_url=store.url,
        ledger_key_file=default_key_file(store.beside),
        ledger_signing_key_file=default_signing_key_file(store.beside),
    )


def test_a_server_on_postgresql_replays_and_reseeds_label_lag_after_a_restart(
    postgres_store: PostgresBackend, registry: Path, world: Path, tmp_path: Path
) -> None:
    settings = _settings_on(postgres_store, registry, world, tmp_path)
    service = ScoringService(settings)
    service.load()
    decisions = service.score([make_shipment(f"PG-{i}") for i in range(4)])
    assert all(d.decision_id for d in decisions)
    assert service.ledger is not None
    assert service.ledger.path is None  # no file
    assert service.state is not None
    before, known = service.monitor.snapshot(), service.state.shipments
    service.close()

    restarted = ScoringService(settings)
    restarted.load()
    try:
        assert restarted.monitor.snapshot().labels == before.labels  # read back through the store
        assert restarted.state is not None
        assert restarted.state.shipments == known  # the ledger's decisions replayed
    finally:
        restarted.close()
    assert not (tmp_path / "ledger.sqlite").exists()
    assert [r.decision_id for r in rows_of(postgres_store)] == [d.decision_id for d in decisions]
    assert verified(postgres_store).ok


def test_drift_reads_a_ledger_on_postgresql_by_its_url(
    postgres_store: PostgresBackend, registry: Path, world: Path, tmp_path: Path
) -> None:
    settings = _settings_on(postgres_store, registry, world, tmp_path)
    service = ScoringService(settings)
    service.load()
    try:
        service.score([make_shipment(f"DRIFT-{i}") for i in range(3)])
    finally:
        service.close()

    done = centinela("drift", "--ledger", postgres_store.url, "--registry", str(registry), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["decisions"] == 3
    assert result["ledger"] == open_store(postgres_store.url).location


def test_json_text_rows_and_compact_records_read_back_as_written(
    postgres_store: PostgresBackend,
) -> None:
    """``json_text`` is to PostgreSQL what SQLite's storage class is: text rows read back as
    ``str``, compact records as ``bytes``, and the MAC binds which (flipping it is an edit)."""
    text = open_ledger_in(postgres_store, compact=False)
    text.append(Entry("decision", "d1", {"i": "ñ"})).result(timeout=10)
    text.close()
    compact = open_ledger_in(postgres_store)
    compact.append(Entry("decision", "d2", {"i": 2})).result(timeout=10)
    compact.close()
    first, second = rows_of(postgres_store)
    assert (first.stored, type(second.stored)) == ('{"i":"ñ"}', bytes)
    assert verified(postgres_store).ok
    postgres_store.execute("UPDATE ledger SET json_text = NOT json_text WHERE seq = 1")
    result = verified(postgres_store)
    assert (result.ok, result.seq) == (False, 1)
    assert "row 1 was edited" in result.problem
