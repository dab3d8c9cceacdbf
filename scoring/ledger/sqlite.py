"""The SQLite backend of the ledger: one file in WAL mode with ``synchronous=FULL``.

A commit is on disk when it returns, so the writer's group commit (one transaction per batch,
:meth:`SqliteWriter.write`) costs one fsync per batch, not per row. The file and its
``-wal``/``-shm`` companions are 0600 (they hold names and tax ids); an existing file readable by
others is narrowed when it is opened. One writer per file: :class:`WriterLock` holds an
exclusive ``flock`` on ``<ledger>.lock`` for as long as the writer lives.

Tables: ``ledger`` (the rows), ``ledger_head`` (one row: the chain's head and its MAC) and
``checkpoints``. Files from before keys lack the key id and head MAC columns and the checkpoints
table: a writer adds them when it opens the file (:func:`connect`), and the reads here give
``None`` for what such a file does not have, so those ledgers still verify and replay. A row's
payload is a BLOB (a compact record) or, in rows from before compact records, TEXT: the storage
class is read back as ``bytes`` or ``str`` (:attr:`scoring.ledger.record.Row.stored`).

:class:`SqliteStore` is what :func:`scoring.ledger.store.open_store` gives for a plain path or a
``sqlite:///`` URL; it satisfies :class:`scoring.ledger.store.LedgerStore`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from features.errors import ConfigError, FailedPrecondition
from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.record import Commit, CommitSql, Head, Row

KIND = "SQLite database"
"""What a ledger of this backend is, as error messages name it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'outcome')),
    decision_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT
);
CREATE INDEX IF NOT EXISTS ledger_decision ON ledger (decision_id, kind);
CREATE TABLE IF NOT EXISTS ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT,
    mac TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    key_id TEXT,
    recorded_at TEXT NOT NULL,
    signer TEXT NOT NULL,
    signature TEXT NOT NULL
);
"""
# Columns added since the first schema: (table, column), added to older files when opened.
_ADDED_COLUMNS = (("ledger", "key_id"), ("ledger_head", "key_id"), ("ledger_head", "mac"))
_ROW_COLUMNS = ("seq", "kind", "decision_id", "recorded_at", "payload", "prev_hash", "hash")
# The payload is read as its bytes and its storage class: a compact record is a BLOB, the JSON
# of rows from before compact records is TEXT (read as bytes too, so that text that is not UTF-8,
# which no writer wrote, is reported by verify instead of failing the read).
_SELECTED = ", ".join(
    "CAST(payload AS BLOB), typeof(payload) = 'blob'" if c == "payload" else c for c in _ROW_COLUMNS
)
_INSERT_ROW = (
    f"INSERT INTO ledger ({', '.join(_ROW_COLUMNS)}, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_HEAD = (
    "INSERT INTO ledger_head (id, seq, hash, key_id, mac) VALUES (1, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
    "key_id = excluded.key_id, mac = excluded.mac"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (seq, head, key_id, recorded_at, signer, signature) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


# ------------------------------------------------------------------------ the file and its lock


def _make_private(path: Path) -> None:
    """Create the ledger file 0600 before SQLite opens it: SQLite gives its ``-wal`` and ``-shm``
    files the database file's mode. A file (or companion) readable by others is narrowed."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        try:
            companion = path.with_name(name)
            if stat.S_IMODE(companion.stat().st_mode) & 0o077:
                companion.chmod(0o600)
        except FileNotFoundError:
            continue


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


PAGE_SIZE = 16384
"""Page size of a new ledger file (SQLite's default is 4096)."""


def connect(path: Path) -> sqlite3.Connection:
    """The writer's connection: the file created 0600, the schema created or brought up to date
    (older files gain the key id and head MAC columns and the checkpoints table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _make_private(path)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A new file only (an existing one keeps its page size): a compact row is about 1 KB,
        # and 4 KB pages held three of them (1.43 KB a decision on disk), 16 KB pages fifteen.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        for table, column in _ADDED_COLUMNS:
            if column not in _columns(conn, table):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"ledger {path}: not a usable {KIND} ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"ledger {path}: cannot open ({exc.strerror})") from exc
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


def connect_or_release(path: Path, lock: WriterLock) -> sqlite3.Connection:
    """:func:`connect`, releasing ``lock`` if it fails."""
    try:
        return connect(path)
    except BaseException:
        lock.release()
        raise


# ---------------------------------------------------------------------------------- the rows


def _row(r: Sequence[Any]) -> Row:
    """A :class:`Row` from the columns of :data:`_SELECTED` and the key id."""
    seq, kind, decision_id, recorded_at, data, compact, prev_hash, digest, key_id = r
    data = bytes(data or b"")
    # surrogateescape keeps text that is not UTF-8 byte for byte; such a row fails its check.
    stored = data if compact else data.decode("utf-8", "surrogateescape")
    return Row(seq, kind, decision_id, recorded_at, stored, prev_hash, digest, key_id)


def _values(r: Row) -> tuple[Any, ...]:
    """The values of :data:`_INSERT_ROW` for the row ``r``."""
    return (r.seq, r.kind, r.decision_id, r.recorded_at, r.stored, r.prev_hash, r.hash, r.key_id)


_COMMIT_SQL = CommitSql(_INSERT_ROW, _UPSERT_HEAD, _INSERT_CHECKPOINT, _values)


def _key_column(conn: sqlite3.Connection) -> str:
    """``key_id``, or ``NULL`` in a file never opened by a keyed writer."""
    return "key_id" if "key_id" in _columns(conn, "ledger") else "NULL"


def iter_rows(conn: sqlite3.Connection, first: int = 1) -> Iterator[Row]:
    """The rows of the ledger in ``conn`` from seq ``first`` on, in order."""
    for r in conn.execute(
        f"SELECT {_SELECTED}, {_key_column(conn)} FROM ledger WHERE seq >= ? ORDER BY seq",
        (first,),
    ):
        yield _row(r)


def _seq(found: Any) -> int | None:
    return None if found is None else int(found)


class SqliteView:
    """Reads of the ledger over one connection (a :class:`scoring.ledger.store.LedgerView`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _one(self, sql: str, *args: Any) -> Any:
        """The first column of the first row ``sql`` gives (None if none)."""
        found = self._conn.execute(sql, args).fetchone()
        return None if found is None else found[0]

    def _has_rows_table(self) -> bool:
        return "ledger" in _tables(self._conn)

    def _keyed(self) -> bool:
        return self._has_rows_table() and "key_id" in _columns(self._conn, "ledger")

    def last_seq(self) -> int:
        if not self._has_rows_table():
            return 0
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM ledger"))

    def first_keyed_seq(self) -> int | None:
        if not self._keyed():
            return None
        return _seq(self._one("SELECT MIN(seq) FROM ledger WHERE key_id IS NOT NULL"))

    def first_unkeyed_seq(self, after: int) -> int | None:
        if not self._keyed():
            return None
        return _seq(
            self._one("SELECT MIN(seq) FROM ledger WHERE key_id IS NULL AND seq > ?", after)
        )

    def last_unkeyed_seq(self, before: int) -> int:
        if not self._has_rows_table():
            return 0
        unkeyed = "key_id IS NULL AND " if self._keyed() else ""
        return int(
            self._one(f"SELECT COALESCE(MAX(seq), 0) FROM ledger WHERE {unkeyed}seq < ?", before)
        )

    def hash_at(self, seq: int) -> str | None:
        found = self._one("SELECT hash FROM ledger WHERE seq = ?", seq)
        return None if found is None else str(found)

    def link_at(self, seq: int) -> tuple[str, str | None] | None:
        found = self._conn.execute(
            f"SELECT hash, {_key_column(self._conn)} FROM ledger WHERE seq = ?", (seq,)
        ).fetchone()
        return None if found is None else (str(found[0]), found[1])

    def rows(self, first: int = 1) -> Iterator[Row]:
        return iter_rows(self._conn, first)

    def rows_for(self, decision_id: str) -> list[Row]:
        cur = self._conn.execute(
            f"SELECT {_SELECTED}, {_key_column(self._conn)} FROM ledger WHERE decision_id = ? "
            "ORDER BY seq",
            (decision_id,),
        )
        return [_row(r) for r in cur.fetchall()]

    def key_ids(self) -> set[str]:
        if not self._keyed():
            return set()
        cur = self._conn.execute("SELECT DISTINCT key_id FROM ledger WHERE key_id IS NOT NULL")
        return {str(r[0]) for r in cur}

    def checkpoints(self) -> dict[int, Checkpoint]:
        if "checkpoints" not in _tables(self._conn):
            return {}
        cur = self._conn.execute(
            "SELECT seq, head, key_id, recorded_at, signer, signature FROM checkpoints ORDER BY seq"
        )
        return {int(r[0]): Checkpoint(int(r[0]), *r[1:]) for r in cur}

    def tracks_head(self) -> bool:
        return {"ledger", "ledger_head"} <= _tables(self._conn)

    def head(self) -> Head | None:
        if not self.tracks_head():
            return None
        keyed = "mac" in _columns(self._conn, "ledger_head")
        found = self._conn.execute(
            "SELECT seq, hash, " + ("key_id, mac" if keyed else "NULL, NULL")
            + " FROM ledger_head WHERE id = 1"
        ).fetchone()  # fmt: skip
        return None if found is None else Head(int(found[0]), str(found[1]), found[2], found[3])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same state of the file."""
        self._conn.execute("BEGIN")
        yield
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class SqliteWriter(SqliteView):
    """The one writer's connection (a :class:`scoring.ledger.store.LedgerWriter`): holds the
    file's :class:`WriterLock` until :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection, lock: WriterLock) -> None:
        super().__init__(conn)
        self._lock = lock

    def write(self, commit: Commit) -> None:
        """Store ``commit`` in one transaction, on disk when this returns; nothing of it on a
        failure (raised)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            _COMMIT_SQL.store(conn, commit)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def append(self, chain: Callable[[int, str], Commit], seq: int, last: str) -> Commit:
        """Store what ``chain`` makes of the head ``seq``, ``last``: the one writer's own last
        commit is the head (its lock keeps every other writer out), so it is not read again."""
        commit = chain(seq, last)
        self.write(commit)
        return commit

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._lock.release()


class SqliteStore:
    """A ledger in the SQLite file at ``path`` (a :class:`scoring.ledger.store.LedgerStore`)."""

    kind = KIND
    error = sqlite3.Error
    shared = False  # one writer per file (WriterLock)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def size(self) -> int:
        """Bytes of the file and its ``-wal`` (two ``stat`` calls)."""
        size = 0
        for name in (self.path.name, f"{self.path.name}-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += self.path.with_name(name).stat().st_size
        return size

    def writer(self) -> SqliteWriter:
        """The writer: the file's lock held (FailedPrecondition naming the holder when another
        writer has it), the file created 0600 and its schema brought up to date."""
        lock = WriterLock.hold(self.path)
        return SqliteWriter(connect_or_release(self.path, lock), lock)

    def reader(self) -> SqliteView:
        """A read-only connection (usable from any one thread at a time)."""
        return SqliteView(
            sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False,
            )
        )  # fmt: skip
