"""Benchmark the decision ledger: bytes per decision on disk, compact records against the JSON
text rows written before them (the baseline, measured in the same run on the same payloads), and
commit latency for each.

Simulates a world, trains a model, scores ``--decisions`` of its shipments through
:class:`ScoringService` (whose ledger writes compact records), reads the payloads back, and
writes the very same entries into two fresh ledgers, one as JSON text (``compact=False``, as
every ledger before compact records) and one compact: first ``--latency-rows`` of them one at a
time (one commit each, the latency an unary call waits for), then the rest in bursts of
``--burst`` (group commits). Bytes on disk are the database file plus its ``-wal`` after the WAL
is checkpointed into the file, divided by the decisions written. The target of issue 11: at
most 1.5 KB per decision.

Then the commit rate of each backend side by side (issue 14), the same compact entries into a
fresh SQLite file (WAL, ``synchronous=FULL``) and a fresh database of a PostgreSQL server
started for the run (``synchronous_commit=on``, fsync on; tests/postgres.py, as the tests start
it): ``--latency-rows`` appended one at a time (commits per second, each waited for), then the
rest by ``--writers`` threads each waiting for its own row before the next (what concurrent
calls do: rows per second, and rows per group commit). Without PostgreSQL binaries its column
says why, and the run fails under ``CI=true``.

    .venv/bin/python -m bench.ledger [--decisions 5000] [--world 12000] [--writers 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench.measure import percentiles
from bench.world import shipments_from_world, trained_world
from scoring.ledger import (
    Entry,
    Ledger,
    canonical_json,
    default_key_file,
    default_signing_key_file,
    encode_payload,
    iter_rows,
    payload_text,
    read_contents,
    verify,
)
from scoring.ledger_keys import add_key, generate_signing_key, load_key_ring, load_signing_key
from scoring.service import ScoringService
from tests.conftest import server_settings
from tests.postgres import PostgresServer, PostgresUnavailable

TARGET_BYTES = 1500
OWN = "the service's own ledger"


def on_disk(db: Path) -> int:
    """The database file plus its WAL, after the WAL is checkpointed into the file."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def ledger_at(db: Path, compact: bool, location: str | None = None) -> Ledger:
    """A writer on the SQLite file ``db`` (or on ``location``), its keys made beside ``db``."""
    add_key(default_key_file(db))
    signing = generate_signing_key(default_signing_key_file(db))
    keys = load_key_ring(default_key_file(db))
    return Ledger(location or db, keys, signing, compact=compact)


def commit_rate(
    home: Path, location: str | None, entries: list[Entry], one_by_one: int, writers: int
) -> tuple[float, list[float], float, float]:
    """Commits per second one at a time (and their latencies), then rows per second and rows
    per commit with ``writers`` threads each appending one row and waiting for it."""
    ledger = ledger_at(home, True, location)
    try:
        latencies = []
        started = time.perf_counter()
        for entry in entries[:one_by_one]:
            begun = time.perf_counter()
            ledger.append(entry).result(timeout=60)
            latencies.append(time.perf_counter() - begun)
        alone = one_by_one / (time.perf_counter() - started)
        rest, commits = entries[one_by_one:], ledger.commits
        started = time.perf_counter()
        with ThreadPoolExecutor(writers) as pool:
            for seq in pool.map(lambda e: ledger.append(e).result(timeout=60), rest):
                assert seq > 0
        elapsed = time.perf_counter() - started
        grouped = len(rest) / elapsed if rest else 0.0
        per_commit = len(rest) / max(ledger.commits - commits, 1)
    finally:
        ledger.close()
    public = load_signing_key(default_signing_key_file(home)).public_key()
    result = verify(location or home, ledger.keys, [public])
    assert result.ok, result.problem
    return alone, latencies, grouped, per_commit


def backend_rates(
    root: Path, entries: list[Entry], one_by_one: int, writers: int
) -> dict[str, tuple[float, list[float], float, float] | str]:
    """:func:`commit_rate` on a fresh SQLite file and a fresh PostgreSQL database (or why
    PostgreSQL was not measured; under ``CI=true`` that fails the run)."""
    rates: dict[str, tuple[float, list[float], float, float] | str] = {}
    db = root / "rates" / "ledger.sqlite"
    rates["SQLite"] = commit_rate(db, None, entries, one_by_one, writers)
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        rates["PostgreSQL"] = f"not measured: {exc}"
        return rates
    try:
        home = root / "rates-pg" / "ledger"
        home.parent.mkdir()
        rates["PostgreSQL"] = commit_rate(
            home, server.create_database(), entries, one_by_one, writers
        )
    finally:
        server.stop()
    return rates


def print_rates(
    rates: dict[str, tuple[float, list[float], float, float] | str], n: int, writers: int
) -> None:
    print(f"commit rate, the same {n:,} compact decisions into a fresh ledger of each backend:")
    print(f"  {'backend':<12}{'one at a time':<60}{writers} writers at once")
    for name, figures in rates.items():
        if isinstance(figures, str):
            print(f"  {name:<12}{figures}")
            continue
        alone, latencies, grouped, per_commit = figures
        one = f"{alone:,.0f} commits/s ({percentiles(latencies)})"
        print(f"  {name:<12}{one:<60}{grouped:,.0f} rows/s, {per_commit:.1f} rows per commit")


def write(
    db: Path, entries: list[Entry], compact: bool, one_by_one: int, burst: int
) -> list[float]:
    """Write ``entries``: the first ``one_by_one`` each in its own commit (their latencies are
    returned), the rest in bursts of ``burst`` appended together."""
    ledger = ledger_at(db, compact)
    latencies = []
    try:
        for entry in entries[:one_by_one]:
            started = time.perf_counter()
            ledger.append(entry).result(timeout=60)
            latencies.append(time.perf_counter() - started)
        rest = entries[one_by_one:]
        for i in range(0, len(rest), burst):
            futures: list[Future[int]] = [ledger.append(e) for e in rest[i : i + burst]]
            for future in futures:
                future.result(timeout=60)
    finally:
        ledger.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__)
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--world", type=int, default=12_000, help="shipments to simulate")
    parser.add_argument("--latency-rows", type=int, default=1000, help="rows committed alone")
    parser.add_argument("--burst", type=int, default=64, help="rows appended together after")
    parser.add_argument("--writers", type=int, default=8, help="threads appending at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world, registry = trained_world(root, args.world, seed=5)
        shipments = shipments_from_world(world, args.decisions)

        service = ScoringService(server_settings(registry, root / "service"))
        service.load()
        for i in range(0, len(shipments), 50):
            service.score(shipments[i : i + 50])
        service.close()
        served = root / "service" / "ledger.sqlite"
        served_bytes = on_disk(served)
        conn = sqlite3.connect(served)
        entries = [Entry(r.kind, r.decision_id, json.loads(r.payload)) for r in iter_rows(conn)]
        conn.close()
        n = len(entries)
        texts = [canonical_json(e.payload) for e in entries]

        figures = {}
        for name, compact in (("baseline: JSON text rows", False), ("compact records", True)):
            db = root / ("compact" if compact else "text") / "ledger.sqlite"
            latencies = write(db, entries, compact, min(args.latency_rows, n), args.burst)
            started = time.perf_counter()
            contents = read_contents(db)
            read_s = time.perf_counter() - started
            assert list(contents.decisions.values()) == [e.payload for e in entries], name
            assert verify(db).ok, name
            figures[name] = (on_disk(db) / n, latencies, read_s)

        one_by_one = min(args.latency_rows, n)
        rates = backend_rates(root, entries, one_by_one, args.writers)

        started = time.perf_counter()
        records = [encode_payload(t) for t in texts]
        encode_us = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        assert [payload_text(r) for r in records] == texts
        decode_us = (time.perf_counter() - started) / n * 1e6

    json_bytes = statistics.mean(len(t.encode()) for t in texts)
    record_bytes = statistics.mean(len(r) for r in records)
    base, small = figures["baseline: JSON text rows"][0], figures["compact records"][0]
    print(f"decisions: {n:,} scored through ScoringService (JSON payload mean {json_bytes:,.0f} B)")
    print("on disk per decision (db + wal after a WAL checkpoint), the same payloads:")
    for name, (per, latencies, read_s) in figures.items():
        print(
            f"  {name:<26}{per:>8,.0f} B   commit alone: {percentiles(latencies)}   "
            f"read back all: {read_s:.2f}s"
        )
    print(f"  {OWN:<26}{served_bytes / n:>8,.0f} B   (compact, batches of 50)")
    print(
        f"compact/baseline: {small / base:.2f} ({base / small:.1f}x smaller); "
        f"target {TARGET_BYTES:,} B: {'met' if small <= TARGET_BYTES else 'NOT MET'}"
    )
    print(
        f"record: mean {record_bytes:,.0f} B of {json_bytes:,.0f} B JSON; encode "
        f"{encode_us:.0f} us, decode {decode_us:.0f} us per record (in the writer thread)"
    )
    print_rates(rates, n, args.writers)


if __name__ == "__main__":
    main()
