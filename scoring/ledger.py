"""The decision ledger: every decision and outcome, durable before the reply, hash-chained.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``: a commit is on disk when it
returns. Concurrent requests share commits: a single writer thread drains everything queued
while the previous commit was being flushed and writes it in one transaction (group commit), so
durability costs one fsync per batch, not per request. Callers wait on a future that resolves
only after their row is committed.

Rows form one hash chain: ``hash = sha256(prev_hash | seq | kind | decision_id | recorded_at |
payload)``; ``ledger_head`` holds the last seq and hash, updated in the same transaction, so a
deleted last row is caught too. :func:`verify` names the first row that was edited, deleted or
reordered.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import queue
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from features.build import context_rows
from features.errors import ConfigError, FailedPrecondition
from features.state import EntityState
from features.tables import GOODS_SCHEMA, INSPECTIONS_SCHEMA, SHIPMENTS_SCHEMA, table_path
from features.watchlist import Watchlist

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'outcome')),
    decision_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_decision ON ledger (decision_id, kind);
CREATE TABLE IF NOT EXISTS ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""


def row_hash(
    prev_hash: str, seq: int, kind: str, decision_id: str, recorded_at: str, payload: str
) -> str:
    digest = hashlib.sha256()
    for part in (prev_hash, str(seq), kind, decision_id, recorded_at, payload):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    decision_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    kind: str
    decision_id: str
    recorded_at: str
    payload: str
    prev_hash: str
    hash: str


def connect(path: Path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"ledger {path}: not a usable SQLite database ({exc})") from exc
    return conn


class WriterLock:
    """One writer per ledger file: an exclusive ``flock`` on ``<ledger>.lock``, held from
    :meth:`hold` to :meth:`release` (or the holder's exit, however it ends). The file names
    its holder, so a second writer is told which process has the ledger."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def hold(cls, ledger: Path) -> WriterLock:
        """The lock of ``ledger``; FailedPrecondition naming the holder when another writer
        has it, ConfigError when its lock file cannot be opened."""
        path = Path(f"{ledger}.lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"ledger {ledger}: cannot open {path} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise FailedPrecondition(
                    f"ledger {ledger} is in use by another server (held by {holder}, see "
                    f"{path}); a ledger has one writer"
                ) from None
            raise ConfigError(f"ledger {ledger}: cannot lock {path} ({exc.strerror})") from None
        command = " ".join(" ".join(sys.argv).split())[:200]
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command})\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


class Ledger:
    """Append-only, group-committed, hash-chained store of decisions and outcomes."""

    def __init__(self, path: Path, max_batch: int = 512) -> None:
        self.path = Path(path)
        self.max_batch = max_batch
        self._writer_lock = WriterLock.hold(self.path)  # released by close()
        try:
            self._conn = connect(self.path)
        except BaseException:
            self._writer_lock.release()
            raise
        head = self._conn.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
        self._seq, self._hash = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        self._queue: queue.Queue[tuple[Entry, Future[int]] | None] = queue.Queue()
        self._reader = threading.local()
        self.commits = 0
        self._writer = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._writer.start()

    def append(self, entry: Entry) -> Future[int]:
        """Queue ``entry``; the future resolves to its seq once it is committed to disk."""
        future: Future[int] = Future()
        self._queue.put((entry, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(batch)
                    return
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Entry, Future[int]]]) -> None:
        seq, prev = self._seq, self._hash
        rows = []
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        for entry, _ in batch:
            seq += 1
            payload = canonical_json(entry.payload)
            digest = row_hash(prev, seq, entry.kind, entry.decision_id, now, payload)
            rows.append((seq, entry.kind, entry.decision_id, now, payload, prev, digest))
            prev = digest
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.execute(
                "INSERT INTO ledger_head (id, seq, hash) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                (seq, prev),
            )
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK") if self._conn.in_transaction else None
            for _, future in batch:
                future.set_exception(exc)
            return
        self._seq, self._hash = seq, prev
        self.commits += 1
        for (_, future), row in zip(batch, rows, strict=True):
            future.set_result(row[0])

    def _read(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._reader, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            self._reader.conn = conn
        return conn

    def entries_for(self, decision_id: str) -> list[Row]:
        cur = self._read().execute(
            "SELECT * FROM ledger WHERE decision_id = ? ORDER BY seq", (decision_id,)
        )
        return [Row(*r) for r in cur.fetchall()]

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._conn.close()
        self._writer_lock.release()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int
    problem: str = ""
    seq: int | None = None


def iter_rows(conn: sqlite3.Connection) -> Iterator[Row]:
    for r in conn.execute("SELECT * FROM ledger ORDER BY seq"):
        yield Row(*r)


def verify(path: Path) -> VerifyResult:
    """Walk the chain; report the first row that was edited, deleted or reordered."""
    if not Path(path).exists():
        raise ConfigError(f"ledger {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        prev, expected_seq, count = GENESIS, 1, 0
        for row in iter_rows(conn):
            count += 1
            if row.seq != expected_seq:
                return VerifyResult(
                    False,
                    count,
                    f"row {expected_seq} is missing (deleted); next is {row.seq}",
                    expected_seq,
                )
            if row.prev_hash != prev:
                return VerifyResult(
                    False,
                    count,
                    f"row {row.seq} does not follow row {row.seq - 1} (deleted or reordered)",
                    row.seq,
                )
            digest = row_hash(
                row.prev_hash, row.seq, row.kind, row.decision_id, row.recorded_at, row.payload
            )
            if digest != row.hash:
                return VerifyResult(False, count, f"row {row.seq} was edited", row.seq)
            prev, expected_seq = row.hash, expected_seq + 1
        head = conn.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
        last = expected_seq - 1
        if head is not None and (int(head[0]), str(head[1])) != (last, prev):
            return VerifyResult(
                False,
                count,
                f"the ledger ends at row {last} but its head says {head[0]} "
                "(rows deleted at the end)",
                last + 1,
            )
        if head is None and count:
            return VerifyResult(False, count, "the ledger head is missing", None)
        return VerifyResult(True, count)
    finally:
        conn.close()


@dataclass(frozen=True)
class LedgerContents:
    """Decision payloads by id, and each decision's outcome payloads in version order (each
    with ``recorded_at``)."""

    decisions: dict[str, dict[str, Any]]
    outcomes: dict[str, list[dict[str, Any]]]


def read_contents(path: Path) -> LedgerContents:
    if not Path(path).exists():
        raise ConfigError(f"ledger {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    decisions: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    try:
        for row in iter_rows(conn):
            payload = json.loads(row.payload)
            if row.kind == "decision":
                decisions[row.decision_id] = payload
            else:
                outcomes.setdefault(row.decision_id, []).append(
                    {**payload, "recorded_at": row.recorded_at}
                )
    finally:
        conn.close()
    return LedgerContents(decisions, outcomes)


def latest_decisions(contents: LedgerContents) -> dict[str, dict[str, Any]]:
    """The latest decision (highest seq) of each shipment id, by shipment id.

    A shipment id is one shipment however often it was scored: its latest decision holds the
    shipment as last declared, and the earlier ones are folded away.
    """
    latest: dict[str, dict[str, Any]] = {}
    for decision in contents.decisions.values():  # in seq order
        latest[decision["shipment"]["shipment_id"]] = decision
    return latest


def _frames(decisions: Iterable[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    decisions = list(decisions)
    ships = [
        {**d["shipment"], "declared_at": datetime.fromisoformat(d["shipment"]["declared_at"])}
        for d in decisions
    ]
    goods = [line for d in decisions for line in d["goods"]]
    return (
        pl.DataFrame(ships, schema=SHIPMENTS_SCHEMA),
        pl.DataFrame(goods, schema=GOODS_SCHEMA),
    )


def _definite(version: dict[str, Any]) -> bool:
    return bool(version["inspected"]) and version["result"] != "inconclusive"


def replay_into(state: EntityState, path: Path, watchlist: Watchlist) -> None:
    """Bring a live entity state up to date with the ledger, as the live path credited it:
    each decided shipment id once, as its latest decision declared it, and one outcome per
    shipment id: the earliest first report against one of its decisions that is a definite
    result (positive or negative)."""
    if not Path(path).exists():
        return
    contents = read_contents(path)
    if not contents.decisions:
        return
    shipments, goods = _frames(latest_decisions(contents).values())
    state.add_shipments(context_rows(shipments, goods, watchlist))
    # In the order each decision got its first outcome; the state credits an id only once.
    for decision_id, versions in contents.outcomes.items():
        first = versions[0]
        if _definite(first):
            state.add_outcome(
                contents.decisions[decision_id]["shipment"]["shipment_id"],
                datetime.fromisoformat(first["recorded_at"]),
                first["result"] == "positive",
            )


@dataclass(frozen=True, slots=True)
class ExportResult:
    shipments: int
    goods: int
    inspections: int
    folded: int = 0  # decisions folded into a later decision of the same shipment id


def export(path: Path, out_dir: Path) -> ExportResult:
    """Write decisions and outcomes as canonical tables (``shipments``, ``goods``,
    ``inspections``) that ``centinela train`` reads, closing the loop from inspection to model.

    One shipment per shipment id: its latest decision (highest seq) gives the shipment row and
    its goods lines; earlier decisions of the id are folded away and counted in ``folded``.
    At most one inspection row per shipment id: each decision's outcome is its latest version;
    of the decisions of one id whose outcome says inspected, the latest decision's wins. An
    outcome reported as not inspected gives no row and does not erase an inspection reported
    against an earlier decision of the same shipment. ``selection_probability`` is the
    propensity recorded by the decision the inspection was reported against.
    """
    contents = read_contents(path)
    latest = latest_decisions(contents)
    shipments, goods = _frames(latest.values())
    inspected: dict[str, dict[str, Any]] = {}
    for decision_id, decision in contents.decisions.items():  # in seq order: later ones win
        versions = contents.outcomes.get(decision_id)
        if not versions or not versions[-1]["inspected"]:
            continue
        outcome = versions[-1]
        reported = datetime.fromisoformat(outcome["recorded_at"])
        shipment_id = decision["shipment"]["shipment_id"]
        inspected[shipment_id] = {
            "shipment_id": shipment_id,
            "inspected_at": reported,
            "reported_at": reported,
            "positive": outcome["result"] == "positive",
            "substances": list(outcome["substances"]),
            "selection_probability": max(float(decision["propensity"]), 1e-6),
            "random_selection": bool(decision["random_selection"]),
        }
    inspections = [inspected[s] for s in latest if s in inspected]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shipments.write_parquet(table_path(out_dir, "shipments"))
    goods.write_parquet(table_path(out_dir, "goods"))
    pl.DataFrame(inspections, schema=INSPECTIONS_SCHEMA).write_parquet(
        table_path(out_dir, "inspections")
    )
    return ExportResult(
        shipments.height,
        goods.height,
        len(inspections),
        folded=len(contents.decisions) - len(latest),
    )
