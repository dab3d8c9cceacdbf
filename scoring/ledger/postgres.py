"""The PostgreSQL backend of the ledger (psycopg 3): one database, shared by every writer.

**Durable before the reply.** Every connection sets ``synchronous_commit = on`` whatever the
server's or the database's default, so a commit returns only once the server has flushed it to
its WAL (and to synchronous standbys, if the server has them); one group commit
(:meth:`PostgresWriter.append`) is one transaction, so one flush per batch as with SQLite.

**One chain across every writer.** Unlike a SQLite file, a database is shared: several servers
(processes) may append to one ledger at once. Appends are serialised on the chain's head: a
commit locks the head row (``SELECT ... FOR UPDATE``; the first commits of an empty ledger, with
no row to lock yet, take turns on an advisory lock and read the head again), chains its rows on
from the head as it is *then* (another writer may have moved it since this one last wrote) and
writes the rows and the new head in the same transaction. Every writer therefore extends the
one chain; ``seq`` being the primary key, two rows can never claim one place even if the lock
were lost.

**Schema.** ``ledger`` (the rows), ``ledger_head`` (one row: the head and its MAC) and
``checkpoints``, as in SQLite, in the connection's schema (a database, or a schema, of its own:
the names are the ledger's). A payload is ``bytea``: a compact record, or, with ``json_text``
true, the UTF-8 of a row's JSON text (a writer with ``compact=False``); the flag is to this
backend what SQLite's storage class is to that one, and the MAC binds it (the domain differs).
Timestamps, hashes and key ids are text exactly as MACed. Checkpoints are kept at most one per
seq: two writers may both sign one head, and the first stored stands (both signed the same
row's hash).

**Credentials.** Give them as libpq does (``PGPASSWORD``, a ``.pgpass`` file, a client
certificate) rather than in the URL: messages name the ledger by its URL with any password
replaced by ``***``.

:class:`PostgresStore` is what :func:`scoring.ledger.store.open_store` gives for a
``postgresql://`` (or ``postgres://``) URL; it satisfies
:class:`scoring.ledger.store.LedgerStore`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import IsolationLevel

from features.errors import ConfigError
from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.record import Commit, CommitSql, Head, Row

log = logging.getLogger("scoring.ledger")

KIND = "PostgreSQL database"
"""What a ledger of this backend is, as error messages name it."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ledger (
        seq bigint PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('decision', 'outcome')),
        decision_id text NOT NULL,
        recorded_at text NOT NULL,
        payload bytea NOT NULL,
        json_text boolean NOT NULL DEFAULT false,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        key_id text
    )""",
    "CREATE INDEX IF NOT EXISTS ledger_decision ON ledger (decision_id, kind)",
    """CREATE TABLE IF NOT EXISTS ledger_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL,
        key_id text,
        mac text
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq bigint PRIMARY KEY,
        head text NOT NULL,
        key_id text,
        recorded_at text NOT NULL,
        signer text NOT NULL,
        signature text NOT NULL
    )""",
)
# Writers creating the schema at once would race on the catalogue: one at a time, by this lock.
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('centinela-ledger-schema'))"
_TABLES = ("ledger", "ledger_head", "checkpoints")
_SELECTED = "seq, kind, decision_id, recorded_at, payload, json_text, prev_hash, hash, key_id"
_INSERT_ROW = (
    "INSERT INTO ledger (seq, kind, decision_id, recorded_at, payload, json_text, prev_hash, "
    "hash, key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_LOCK_HEAD = "SELECT seq, hash, key_id, mac FROM ledger_head WHERE id = 1 FOR UPDATE"
# Taken only while there is no head row to lock: not a table lock, which would deadlock with
# the row-level locks SELECT ... FOR UPDATE takes on the table.
_FIRST_LOCK = "SELECT pg_advisory_xact_lock(hashtext('centinela-ledger-first-head'))"
_UPSERT_HEAD = (
    "INSERT INTO ledger_head (id, seq, hash, key_id, mac) VALUES (1, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
    "key_id = excluded.key_id, mac = excluded.mac"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (seq, head, key_id, recorded_at, signer, signature) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (seq) DO NOTHING"
)
_PAGE = 2000  # rows read per query while iterating (keyset paging by seq)


def redacted(url: str) -> str:
    """``url`` with any password (``user:password@``, ``password=`` parameter) as ``***``."""
    url = re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


def _connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection that commits synchronously (durable when a commit returns)."""
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute("SET synchronous_commit TO on")
    except BaseException:
        conn.close()
        raise
    return conn


def _row(r: Sequence[Any]) -> Row:
    """A :class:`Row` from the columns of :data:`_SELECTED`."""
    seq, kind, decision_id, recorded_at, data, json_text, prev_hash, digest, key_id = r
    data = bytes(data)
    # surrogateescape keeps text that is not UTF-8 byte for byte; such a row fails its check.
    stored = data.decode("utf-8", "surrogateescape") if json_text else data
    return Row(int(seq), kind, decision_id, recorded_at, stored, prev_hash, digest, key_id)


def _values(r: Row) -> tuple[Any, ...]:
    """The values of :data:`_INSERT_ROW` for the row ``r``."""
    text = isinstance(r.stored, str)
    payload = r.stored.encode("utf-8", "surrogateescape") if isinstance(r.stored, str) else r.stored
    return (
        r.seq, r.kind, r.decision_id, r.recorded_at, payload, text, r.prev_hash, r.hash, r.key_id
    )  # fmt: skip


_COMMIT_SQL = CommitSql(_INSERT_ROW, _UPSERT_HEAD, _INSERT_CHECKPOINT, _values)


def _seq(found: Any) -> int | None:
    return None if found is None else int(found)


class PostgresView:
    """Reads of the ledger over one connection (a :class:`scoring.ledger.store.LedgerView`):
    each read on its own outside :meth:`snapshot`, one REPEATABLE READ transaction inside."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _one(self, sql: str, *args: Any) -> Any:
        """The first column of the first row ``sql`` gives (None if none)."""
        found = self._conn.execute(sql, args).fetchone()
        return None if found is None else found[0]

    def _has(self, table: str) -> bool:
        return self._one("SELECT to_regclass(%s) IS NOT NULL", table) is True

    def last_seq(self) -> int:
        if not self._has("ledger"):
            return 0
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM ledger"))

    def first_keyed_seq(self) -> int | None:
        if not self._has("ledger"):
            return None
        return _seq(self._one("SELECT MIN(seq) FROM ledger WHERE key_id IS NOT NULL"))

    def first_unkeyed_seq(self, after: int) -> int | None:
        if not self._has("ledger"):
            return None
        return _seq(
            self._one("SELECT MIN(seq) FROM ledger WHERE key_id IS NULL AND seq > %s", after)
        )

    def last_unkeyed_seq(self, before: int) -> int:
        if not self._has("ledger"):
            return 0
        return int(
            self._one(
                "SELECT COALESCE(MAX(seq), 0) FROM ledger WHERE key_id IS NULL AND seq < %s", before
            )
        )

    def hash_at(self, seq: int) -> str | None:
        found = self._one("SELECT hash FROM ledger WHERE seq = %s", seq)
        return None if found is None else str(found)

    def link_at(self, seq: int) -> tuple[str, str | None] | None:
        found = self._conn.execute(
            "SELECT hash, key_id FROM ledger WHERE seq = %s", (seq,)
        ).fetchone()
        return None if found is None else (str(found[0]), found[1])

    def rows(self, first: int = 1) -> Iterator[Row]:
        """The rows from ``first`` on, a page at a time (each page one query)."""
        while True:
            page = self._conn.execute(
                f"SELECT {_SELECTED} FROM ledger WHERE seq >= %s ORDER BY seq LIMIT {_PAGE}",
                (first,),
            ).fetchall()
            for r in page:
                yield _row(r)
            if len(page) < _PAGE:
                return
            first = int(page[-1][0]) + 1

    def rows_for(self, decision_id: str) -> list[Row]:
        cur = self._conn.execute(
            f"SELECT {_SELECTED} FROM ledger WHERE decision_id = %s ORDER BY seq", (decision_id,)
        )
        return [_row(r) for r in cur.fetchall()]

    def key_ids(self) -> set[str]:
        if not self._has("ledger"):
            return set()
        cur = self._conn.execute("SELECT DISTINCT key_id FROM ledger WHERE key_id IS NOT NULL")
        return {str(r[0]) for r in cur}

    def checkpoints(self) -> dict[int, Checkpoint]:
        if not self._has("checkpoints"):
            return {}
        cur = self._conn.execute(
            "SELECT seq, head, key_id, recorded_at, signer, signature FROM checkpoints ORDER BY seq"
        )
        return {int(r[0]): Checkpoint(int(r[0]), *r[1:]) for r in cur}

    def tracks_head(self) -> bool:
        return self._has("ledger") and self._has("ledger_head")

    def head(self) -> Head | None:
        if not self.tracks_head():
            return None
        found = self._conn.execute(
            "SELECT seq, hash, key_id, mac FROM ledger_head WHERE id = 1"
        ).fetchone()
        return None if found is None else Head(int(found[0]), str(found[1]), found[2], found[3])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read-only REPEATABLE READ transaction: every read inside sees one state."""
        conn = self._conn
        level, conn.isolation_level = conn.isolation_level, IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                yield
        finally:
            conn.isolation_level = level

    def close(self) -> None:
        self._conn.close()


class PostgresWriter(PostgresView):
    """A writer's connection (a :class:`scoring.ledger.store.LedgerWriter`). Other writers,
    in this process or others, may append to the same ledger at once: see :meth:`append`."""

    def _store(self, commit: Commit) -> None:
        """The statements of ``commit``, in the transaction under way."""
        with self._conn.cursor() as cur:
            _COMMIT_SQL.store(cur, commit)

    def write(self, commit: Commit) -> None:
        """Store ``commit`` as it is in one transaction, durable when this returns; nothing of
        it on a failure (raised)."""
        with self._conn.transaction():
            self._store(commit)

    def _locked_head(self) -> Head | None:
        """The head, locked until the transaction ends. With no head yet (no row to lock), the
        writers of an empty ledger take turns on an advisory lock instead and read the head
        again: a writer that got there first has written one, which is then locked."""
        found = self._conn.execute(_LOCK_HEAD).fetchone()
        if found is None:
            self._conn.execute(_FIRST_LOCK)
            found = self._conn.execute(_LOCK_HEAD).fetchone()
        return None if found is None else Head(int(found[0]), str(found[1]), found[2], found[3])

    def append(self, chain: Callable[[int, str], Commit], seq: int, last: str) -> Commit:
        """Store what ``chain`` makes of the chain's head, in one transaction holding the head's
        lock: the head as the database has it (another writer may have moved it since ``seq``
        and ``last``, this writer's last commit), or ``seq`` and ``last`` when there is none."""
        with self._conn.transaction():
            head = self._locked_head()
            commit = chain(*((head.seq, head.hash) if head is not None else (seq, last)))
            self._store(commit)
        return commit


class PostgresStore:
    """A ledger in the PostgreSQL database at ``url`` (a
    :class:`scoring.ledger.store.LedgerStore`); several writers may share it."""

    kind = KIND
    error = psycopg.Error
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def location(self) -> str:
        return redacted(self.url)

    def _open(self) -> psycopg.Connection[Any]:
        """A connection; ConfigError naming the ledger when there is none to be had."""
        try:
            return _connect(self.url)
        except psycopg.Error as exc:
            raise ConfigError(f"ledger {self.location}: cannot connect ({exc})") from None

    def exists(self) -> bool:
        """Whether the database holds a ledger (its rows table); ConfigError when it cannot be
        reached."""
        with contextlib.closing(self._open()) as conn:
            return PostgresView(conn)._has("ledger")

    def size(self) -> int:
        """Bytes the ledger's tables and indexes take (one short connection; 0, logged, when
        the database cannot be reached: a scrape must not fail for it)."""
        try:
            with contextlib.closing(_connect(self.url)) as conn:
                found = conn.execute(
                    "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(t))), 0) "
                    "FROM unnest(%s::text[]) AS t",
                    (list(_TABLES),),
                ).fetchone()
        except psycopg.Error as exc:
            log.warning("ledger size unknown: %s", exc, extra={"path": self.location})
            return 0
        return int(found[0]) if found else 0

    def writer(self) -> PostgresWriter:
        """A writer, the schema created if the database has none; ConfigError when the
        database cannot be reached or the schema cannot be created."""
        conn = self._open()
        try:
            conn.isolation_level = IsolationLevel.READ_COMMITTED
            with conn.transaction():
                conn.execute(_SCHEMA_LOCK)
                for statement in _SCHEMA:
                    conn.execute(statement)
        except psycopg.Error as exc:
            conn.close()
            raise ConfigError(f"ledger {self.location}: not a usable {KIND} ({exc})") from None
        return PostgresWriter(conn)

    def reader(self) -> PostgresView:
        """A read-only view (raises :attr:`error` when the database cannot be reached)."""
        conn = _connect(self.url)
        conn.read_only = True
        return PostgresView(conn)
