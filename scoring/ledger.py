"""The decision ledger: every decision and outcome, durable before the reply, chained with a
keyed MAC and anchored by signed checkpoints.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``: a commit is on disk when it
returns. Concurrent requests share commits: a single writer thread drains everything queued
while the previous commit was being flushed and writes it in one transaction (group commit), so
durability costs one fsync per batch, not per request. Callers wait on a future that resolves
only after their row is committed. The file and its ``-wal``/``-shm`` companions are 0600 (they
hold names and tax ids); an existing file readable by others is narrowed when it is opened.

**Compact records.** A row's payload is the canonical JSON text of the entry (sorted keys, no
spaces), stored as a *compact record*: a BLOB of one format byte (``1``) and the text's UTF-8
compressed as raw deflate (RFC 1951, zlib level 6) with a preset dictionary of the payloads'
recurring keys and reason texts (:data:`DICTIONARIES`, frozen: a new dictionary is a new
format byte). A decision of about 4 KB of JSON takes about 1 KB on disk instead of about 5 KB.
Decoding gives back exactly the JSON text that was written, so :attr:`Row.payload` is that text
whatever the row's storage. Ledgers written before compact records hold the JSON itself as
TEXT; such rows are recognised by their SQLite storage class (TEXT, not BLOB), still verify,
replay and export, and a ledger may hold both kinds (new rows are always compact). Anyone can
decode a record with zlib alone: ``zlib.decompressobj(-15, zdict=DICTIONARIES[1])`` over the
bytes after the format byte.

**The chain.** Each row stores ``key_id`` and ``hash = HMAC-SHA256(key[key_id],
"centinela-ledger-row/3" | key_id | prev_hash | seq | kind | decision_id | recorded_at |
payload)``, each part preceded by its length in 8 bytes, where ``payload`` is the compact
record's bytes exactly as stored and ``prev_hash`` is the previous row's ``hash``. Rows stored
as JSON text (before compact records) are chained the same way under
``"centinela-ledger-row/2"`` with the text's UTF-8 as ``payload``: the domain binds the MAC to
the storage class, so a row cannot be passed off as the other kind. ``ledger_head`` holds the
last seq and hash with a MAC of its own, written in the same transaction, so rows cut off the
end are caught too. Keys live in a key ring outside the database (:mod:`scoring.ledger_keys`);
the database holds only key ids, so rotation is a new key id from some seq on, and verifying
needs every key it meets.

**Checkpoints.** Every ``checkpoint_rows`` rows or ``checkpoint_seconds`` seconds (and when the
writer closes) the writer stores a checkpoint in ``checkpoints``: (seq, the hash at seq, its key
id, time) with an Ed25519 signature over their canonical text (:meth:`Checkpoint.message`).
``centinela ledger checkpoint --out FILE`` exports the latest one, with the public key, for an
outside witness to keep.

**Threat model**, by what an adversary holds:

- *Write access to the file, no keys* (a DBA, a backup, a stolen disk image put back): cannot
  edit, delete, reorder or append a row and re-chain, because every later MAC needs the key
  (recomputing plain SHA-256 or MACs under a guessed key fails at the first changed row); cannot
  cut rows off the end, because the head's MAC needs the key; cannot strip the key ids and pass
  the ledger off as an old unkeyed one, because unkeyed rows are accepted only as a prefix
  sealed by a checkpoint signed with the signing key. What such an adversary *can* do is put
  back an older copy of the whole file, or delete it: both are consistent states the service
  once wrote. Only a checkpoint held outside catches them (the witness, below).
- *The MAC key* (the service itself, or whoever takes its host): can write any chain. The
  signing key usually sits beside it, so checkpoints in the file prove nothing against this
  adversary either. A **witnessed checkpoint**, exported earlier and kept where the service
  cannot reach (another team, a ticket, a notary), pins the whole chain up to its seq: the
  chain's hash at that seq depends on every earlier row, so a rollback, a wipe or a rewrite of
  any row at or before it is caught, even by someone holding both keys.
- *The public key only* (a witness): can check that an exported checkpoint is genuine, and
  cannot forge one; whether it is still in the chain is checked by ``ledger verify --witness``
  (or the server's ``ledger_witness_file``), which needs the MAC keys.

All of this holds only while the keys are out of the file writer's reach. By default (no key
settings) both are generated beside the ledger, which keeps ``make run`` and the tests working
but protects nothing against someone who can read that directory: in production point
``ledger_key_file`` / ``CENTINELA_LEDGER_KEY`` and ``ledger_signing_key_file`` at secrets the
ledger's other writers cannot read.

:func:`verify` checks the MAC chain, the head, every checkpoint (signature, and that it matches
the chain at its seq) and optionally a witnessed checkpoint, and names the first bad row. A
server opening the ledger checks its tail (the last ``check_rows`` rows back to the latest
checkpoint, the head, the seal, a configured witness) and refuses to append to a broken chain.

**Health.** The writer keeps a few figures for the metrics endpoint to read at scrape time
(:meth:`Ledger.health`): the rows (the head's seq: rows are numbered from 1 without gaps), the
bytes of the file and its ``-wal``, a bucket count of each group commit's duration (encoding,
MACs and the transaction with its fsync: what the batch's callers wait for) and of its rows,
and the result and time of the last verification: the tail check at open, then the same check
every ``verify_interval`` seconds if set, by a thread of its own on a read-only connection, in
one read transaction (a consistent snapshot while the writer goes on; a tail of 10,000
decisions takes about 0.2 s, holding the GIL in slices like any Python thread). A failed check
is logged at ERROR; the writer keeps appending (refusing would stop every port's scoring for
whoever can write the file), and later checks reach back to the first bad row found, so a
failure stays reported after the row has left the tail. Rows older than the tail are for
``centinela ledger verify``.

**Ledgers from before keys** (rows without a key id, chained with plain SHA-256) are not
silently adopted: nothing distinguishes them from a keyed ledger whose ids an adversary
stripped. The server refuses them, naming ``centinela ledger seal``, with which an operator who
trusts the file signs a checkpoint at its last unkeyed row. After that the unkeyed rows are a
sealed prefix (verify reports "rows 1..N are unkeyed (written before keys were configured)"),
the first keyed row chains on from the last unkeyed hash, and any change to the prefix breaks
the seal.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import queue
import sqlite3
import stat
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson
import polars as pl
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.build import context_rows
from features.errors import ConfigError, FailedPrecondition, NotFound
from features.history import Keyed
from features.state import EntityState
from features.tables import GOODS_SCHEMA, INSPECTIONS_SCHEMA, SHIPMENTS_SCHEMA, table_path
from features.watchlist import Watchlist
from scoring.ledger_keys import (
    KEY_ENV,
    KEY_FILE_ENV,
    SIGNING_KEY_FILE_ENV,
    KeyRing,
    add_key,
    fingerprint,
    generate_signing_key,
    load_key_ring,
    load_public_key,
    load_signing_key,
    public_key_from_text,
    public_key_text,
    write_private,
)

if TYPE_CHECKING:
    from scoring.settings import Settings

log = logging.getLogger(__name__)

GENESIS = "0" * 64
ROW_DOMAIN = "centinela-ledger-row/2"  # rows stored as JSON text (before compact records)
COMPACT_ROW_DOMAIN = "centinela-ledger-row/3"  # rows stored as compact records
HEAD_DOMAIN = "centinela-ledger-head/2"
CHECKPOINT_FORMAT = "centinela-ledger-checkpoint/1"
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


def row_hash(
    prev_hash: str, seq: int, kind: str, decision_id: str, recorded_at: str, payload: str
) -> str:
    """The unkeyed SHA-256 chain of ledgers written before keys (verified, never written)."""
    digest = hashlib.sha256()
    for part in (prev_hash, str(seq), kind, decision_id, recorded_at, payload):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def row_mac(
    keys: KeyRing,
    key_id: str,
    prev_hash: str,
    seq: int,
    kind: str,
    decision_id: str,
    recorded_at: str,
    payload: str | bytes,
) -> str:
    """A keyed row's ``hash``: HMAC-SHA256 under ``key_id`` of the row and the previous hash.

    ``payload`` is the payload as stored: a compact record (bytes, under
    :data:`COMPACT_ROW_DOMAIN`) or the JSON text of a row from before compact records (under
    :data:`ROW_DOMAIN`)."""
    if isinstance(payload, str):
        return keys.mac(key_id, ROW_DOMAIN, key_id, prev_hash, str(seq), kind, decision_id,
                        recorded_at, payload)  # fmt: skip
    parts = (COMPACT_ROW_DOMAIN, key_id, prev_hash, str(seq), kind, decision_id, recorded_at)
    message = bytearray()
    for part in (*(p.encode() for p in parts), payload):
        message += len(part).to_bytes(8, "big") + part
    return hmac.new(keys.keys[key_id], message, hashlib.sha256).hexdigest()


def head_mac(keys: KeyRing, key_id: str, seq: int, head: str) -> str:
    """The head's MAC: the chain ends at ``seq`` with ``head``, says the key holder."""
    return keys.mac(key_id, HEAD_DOMAIN, key_id, str(seq), head)


def canonical_json(obj: Any) -> str:
    """The payload's stored JSON: keys sorted, no spaces, UTF-8 as is. orjson, because the
    standard library's encoder was the writer thread's largest cost (a decision's payload is
    about 3.7 KB of JSON). The MAC covers the stored bytes, so rows written by the standard
    encoder before still verify; every reader parses either with ``json.loads`` alike."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


# ------------------------------------------------------------------------- compact records

DEFLATE_1 = 1
"""Format byte of a compact record: raw deflate of the JSON text with dictionary 1."""
_LEVEL, _MEM_LEVEL = 6, 8  # zlib's defaults: at 9 a record is ~1% smaller for ~30% more CPU
_MAX_PAYLOAD = 64 << 20  # a record decoding to more than this is not one this code wrote


class PayloadError(ValueError):
    """A stored payload that is not a compact record this version can decode."""


def encode_payload(text: str) -> bytes:
    """The compact record of a payload's JSON ``text`` (format :data:`DEFLATE_1`)."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, _MEM_LEVEL, zdict=_DICTIONARY_1)
    return bytes((DEFLATE_1,)) + deflate.compress(text.encode()) + deflate.flush()


def payload_text(stored: str | bytes) -> str:
    """The JSON text of a stored payload: a compact record decoded, or the text of a row from
    before compact records as it is. Raises :class:`PayloadError` for anything else."""
    if isinstance(stored, str):
        return stored
    if not stored or stored[0] not in DICTIONARIES:
        found = f"format byte {stored[0]}" if stored else "an empty record"
        raise PayloadError(f"{found} is not a compact record format this version knows")
    inflate = zlib.decompressobj(-15, zdict=DICTIONARIES[stored[0]])
    try:
        data = inflate.decompress(memoryview(stored)[1:], _MAX_PAYLOAD)
        if inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
            raise PayloadError("the compressed record is truncated, too long or has bytes after it")
        return data.decode()
    except (zlib.error, UnicodeDecodeError) as exc:
        raise PayloadError(f"the compressed record is corrupt ({exc})") from None


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
    stored: str | bytes  # the payload as on disk: a compact record, or JSON text (older rows)
    prev_hash: str
    hash: str  # the row's MAC (keyed rows) or SHA-256 (unkeyed rows from before keys)
    key_id: str | None = None  # None: written before keys were configured

    @property
    def payload(self) -> str:
        """The payload's JSON text, decoded from the stored form (:class:`PayloadError`,
        naming the row, when it cannot be)."""
        try:
            return payload_text(self.stored)
        except PayloadError as exc:
            raise PayloadError(f"row {self.seq}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain's hash at ``seq`` is ``head``" (``key_id`` None: the seal
    of an unkeyed prefix). ``public_key`` (base64) is carried only by exported checkpoints."""

    seq: int
    head: str
    key_id: str | None
    recorded_at: str
    signer: str  # fingerprint of the public key that signed
    signature: str  # base64 Ed25519 signature over message()
    public_key: str = ""

    def message(self) -> bytes:
        """The canonical text that is signed."""
        return (
            f"{CHECKPOINT_FORMAT}\nseq={self.seq}\nhead={self.head}\n"
            f"key_id={self.key_id or '-'}\nrecorded_at={self.recorded_at}\n"
        ).encode()

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "head": self.head,
            "key_id": self.key_id,
            "recorded_at": self.recorded_at,
            "signer": self.signer,
            "signature": self.signature,
            "public_key": self.public_key,
        }


def sign_checkpoint(
    signing_key: Ed25519PrivateKey, seq: int, head: str, key_id: str | None, recorded_at: str
) -> Checkpoint:
    public = signing_key.public_key()
    unsigned = Checkpoint(seq, head, key_id, recorded_at, fingerprint(public), "")
    signature = base64.b64encode(signing_key.sign(unsigned.message())).decode()
    return Checkpoint(seq, head, key_id, recorded_at, unsigned.signer, signature)


def read_checkpoint(path: Path) -> Checkpoint:
    """An exported (witnessed) checkpoint file, its signature checked against its own key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format is not {CHECKPOINT_FORMAT}")
        cp = Checkpoint(
            seq=int(data["seq"]),
            head=str(data["head"]),
            key_id=None if data["key_id"] is None else str(data["key_id"]),
            recorded_at=str(data["recorded_at"]),
            signer=str(data["signer"]),
            signature=str(data["signature"]),
            public_key=str(data["public_key"]),
        )
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not an exported ledger checkpoint ({exc})") from exc
    key = public_key_from_text(cp.public_key, str(path))
    if fingerprint(key) != cp.signer or not cp.signed_by(key):
        raise ConfigError(
            f"checkpoint {path}: its signature does not verify (the file was altered)"
        )
    return cp


def write_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey, out: Path) -> None:
    """Export ``checkpoint`` with its public key for a witness (0600)."""
    exported = dataclasses.replace(checkpoint, public_key=public_key_text(public_key))
    write_private(out, (json.dumps(exported.to_json(), indent=2) + "\n").encode())


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


def connect(path: Path) -> sqlite3.Connection:
    """The writer's connection: the file created 0600, the schema created or brought up to date
    (older files gain the key id and head MAC columns and the checkpoints table)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _make_private(path)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        for table, column in _ADDED_COLUMNS:
            if column not in _columns(conn, table):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"ledger {path}: not a usable SQLite database ({exc})") from exc
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


COMMIT_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Upper bounds of the commit duration counts (seconds); 0.25 is the alert's p99 threshold."""
GROUP_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
"""Upper bounds of the rows-per-commit counts (a commit holds at most ``max_batch``, 512)."""


@dataclass(frozen=True, slots=True)
class Buckets:
    """Observations counted by bucket: ``counts[i]`` of those over ``bounds[i - 1]`` and at most
    ``bounds[i]``, the last one of those over every bound (not cumulative); ``total`` is their
    sum."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class _Tally:
    """A :class:`Buckets` being counted (by the writer, under the ledger's health lock)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> Buckets:
        return Buckets(self.bounds, tuple(self.counts), self.total)


@dataclass(frozen=True, slots=True)
class Verified:
    """The result of a verification the writer's process ran: ``at`` in Unix seconds,
    ``problem`` (empty when ``ok``) as :func:`check` words it."""

    ok: bool
    at: float
    problem: str = ""


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """What :meth:`Ledger.health` reports: the figures behind ``centinela_ledger_*``."""

    rows: int
    bytes: int  # the database file and its -wal
    commit_seconds: Buckets  # of this writer's group commits
    group_size: Buckets
    verified: Verified  # the last verification: the tail check at open, or a later one


class Ledger:
    """Append-only, group-committed, MAC-chained, checkpointed store of decisions and outcomes.

    Opening checks the tail of the chain (:func:`check` with ``tail=check_rows``; 0: all of it)
    and raises :class:`ConfigError` naming the first bad row rather than append to a broken
    chain. New rows are written with ``keys.current``; checkpoints are signed with
    ``signing_key`` (none are written without one). ``trusted`` are further public keys whose
    checkpoints are accepted (earlier signing keys); ``witness`` is a checkpoint held outside
    that must still be in the chain. ``compact`` False writes payloads as JSON text, as ledgers
    before compact records did (the baseline of ``python -m bench.ledger``, and tests of
    ledgers that hold both kinds). ``verify_interval`` > 0: the same tail check again every
    that many seconds, in a thread of its own (:meth:`verify_tail`; 0: only at open).
    """

    def __init__(
        self,
        path: Path,
        keys: KeyRing,
        signing_key: Ed25519PrivateKey | None = None,
        *,
        checkpoint_rows: int = 1000,
        checkpoint_seconds: float = 300.0,
        check_rows: int = 10_000,
        trusted: Sequence[Ed25519PublicKey] = (),
        witness: Checkpoint | None = None,
        max_batch: int = 512,
        compact: bool = True,
        verify_interval: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.compact = compact
        if keys.current is None:
            raise ConfigError(f"ledger {self.path}: no MAC key to write with ({keys.source})")
        self.keys, self.key_id = keys, keys.current
        self.max_batch = max_batch
        self.checkpoint_rows, self.checkpoint_seconds = checkpoint_rows, checkpoint_seconds
        self._signing_key = signing_key
        trust = {fingerprint(k): k for k in trusted}
        if signing_key is not None:
            trust[fingerprint(signing_key.public_key())] = signing_key.public_key()
        if witness is not None:
            trust[witness.signer] = public_key_from_text(witness.public_key, "witness")
        self.check_rows, self.verify_interval = check_rows, verify_interval
        self._trust, self._witness = trust, witness
        self._writer_lock = WriterLock.hold(self.path)  # released by close() or a failure here
        self._conn = connect_or_release(self.path, self._writer_lock)
        try:
            result = check(self._conn, keys, trust, witness, tail=check_rows)
            head = self._conn.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
            cp = self._conn.execute("SELECT MAX(seq) FROM checkpoints").fetchone()
        except BaseException:
            self._conn.close()
            self._writer_lock.release()
            raise
        if not result.ok:
            self._conn.close()
            self._writer_lock.release()
            raise ConfigError(
                f"ledger {self.path}: {result.problem}; refusing to append to a broken chain "
                f"(`centinela ledger verify --db {self.path}` checks all of it)"
            )
        self._seq, self._hash = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        self._checkpoint_seq = int(cp[0] or 0)
        self._checkpoint_time = time.monotonic()
        # Each item is the entries of one append or append_many call, committed together.
        self._queue: queue.Queue[list[tuple[Entry, Future[int]]] | None] = queue.Queue()
        self._reader = threading.local()
        self.commits = 0
        self.checkpoints = 0  # written by this writer
        # Health: written by the writer and the verifier, read by health(); one short lock.
        self._health_lock = threading.Lock()
        self._commit_seconds = _Tally(COMMIT_SECONDS_BUCKETS)
        self._group_size = _Tally(GROUP_SIZE_BUCKETS)
        self._verified = Verified(True, time.time())
        self._first_bad: int | None = None  # the first bad row a later check found
        self._stopping = threading.Event()
        self._writer = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._writer.start()
        self._verifier: threading.Thread | None = None
        if verify_interval > 0:
            self._verifier = threading.Thread(
                target=self._verify_every, name="ledger-verifier", daemon=True
            )
            self._verifier.start()

    def append(self, entry: Entry) -> Future[int]:
        """Queue ``entry``; the future resolves to its seq once it is committed to disk."""
        future: Future[int] = Future()
        self._queue.put([(entry, future)])
        return future

    def append_many(self, entries: Sequence[Entry]) -> list[Future[int]]:
        """Queue ``entries`` in one hand-over to the writer (a batch's decisions): one wake-up
        instead of one per entry. Each future resolves as :meth:`append`'s does."""
        pending = [(entry, Future[int]()) for entry in entries]
        if pending:
            self._queue.put(pending)
        return [future for _, future in pending]

    def _checkpoint_wait(self) -> float | None:
        """Seconds until a time-based checkpoint is due (None: none is pending)."""
        if self._signing_key is None or self._seq <= self._checkpoint_seq:
            return None
        elapsed = time.monotonic() - self._checkpoint_time
        return max(0.0, self.checkpoint_seconds - elapsed)

    def _checkpoint_due(self, seq: int) -> bool:
        if self._signing_key is None or seq <= self._checkpoint_seq:
            return False
        elapsed = time.monotonic() - self._checkpoint_time
        return (
            seq - self._checkpoint_seq >= self.checkpoint_rows or elapsed >= self.checkpoint_seconds
        )

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._checkpoint_wait())
            except queue.Empty:
                self._checkpoint_alone()
                continue
            if item is None:
                self._checkpoint_alone()
                return
            batch = list(item)
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(batch)
                    self._checkpoint_alone()
                    return
                batch.extend(nxt)
            self._commit(batch)

    def _write_head(self, seq: int, head: str) -> None:
        self._conn.execute(
            "INSERT INTO ledger_head (id, seq, hash, key_id, mac) VALUES (1, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
            "key_id = excluded.key_id, mac = excluded.mac",
            (seq, head, self.key_id, head_mac(self.keys, self.key_id, seq, head)),
        )

    def _checkpoint(self, seq: int, head: str, key_id: str | None) -> Checkpoint:
        """Sign and insert a checkpoint of ``seq``, inside the caller's transaction."""
        assert self._signing_key is not None
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        checkpoint = sign_checkpoint(self._signing_key, seq, head, key_id, now)
        _insert_checkpoint(self._conn, checkpoint)
        return checkpoint

    def _checkpoint_alone(self) -> None:
        """A checkpoint of the head in its own transaction (time due while idle, or closing)."""
        if self._signing_key is None or self._seq <= self._checkpoint_seq:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._checkpoint(self._seq, self._hash, self.key_id)
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            self._conn.execute("ROLLBACK") if self._conn.in_transaction else None
            log.error("ledger checkpoint failed", exc_info=error)
            self._checkpoint_time = time.monotonic()  # retried after another interval
            return
        self._checkpoint_seq, self._checkpoint_time = self._seq, time.monotonic()
        self.checkpoints += 1

    def _commit(self, batch: list[tuple[Entry, Future[int]]]) -> None:
        started = time.perf_counter()
        seq, prev, key_id = self._seq, self._hash, self.key_id
        rows = []
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        for entry, _ in batch:
            seq += 1
            text = canonical_json(entry.payload)
            payload = encode_payload(text) if self.compact else text
            mac = row_mac(self.keys, key_id, prev, seq, entry.kind, entry.decision_id, now, payload)
            rows.append((seq, entry.kind, entry.decision_id, now, payload, prev, mac, key_id))
            prev = mac
        due = self._checkpoint_due(seq)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                f"INSERT INTO ledger ({', '.join(_ROW_COLUMNS)}, key_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._write_head(seq, prev)
            if due:
                self._checkpoint(seq, prev, key_id)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK") if self._conn.in_transaction else None
            for _, future in batch:
                future.set_exception(exc)
            return
        self._seq, self._hash = seq, prev
        with self._health_lock:
            self._commit_seconds.observe(time.perf_counter() - started)
            self._group_size.observe(len(rows))
        if due:
            self._checkpoint_seq, self._checkpoint_time = seq, time.monotonic()
            self.checkpoints += 1
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
            f"SELECT {_SELECTED}, key_id FROM ledger WHERE decision_id = ? ORDER BY seq",
            (decision_id,),
        )
        return [_row(r) for r in cur.fetchall()]

    def health(self) -> LedgerHealth:
        """Rows, bytes, commit and group-size counts, and the last verification, as of now
        (two ``stat`` calls and a copy of the counts: cheap enough for every scrape)."""
        size = 0
        for name in (self.path.name, f"{self.path.name}-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += self.path.with_name(name).stat().st_size
        with self._health_lock:
            return LedgerHealth(
                rows=self._seq,
                bytes=size,
                commit_seconds=self._commit_seconds.snapshot(),
                group_size=self._group_size.snapshot(),
                verified=self._verified,
            )

    def verify_tail(self) -> Verified:
        """Check the chain's tail as at open (the last ``check_rows`` rows back to the latest
        checkpoint, the head, the seal, the witness; from the first bad row an earlier check
        found, if any) on a read-only connection, in one read transaction; record and return
        the result. The writer goes on meanwhile; a failure is logged at ERROR."""
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            return self._verified_as(Verified(False, time.time(), f"cannot open it ({exc})"))
        try:
            conn.execute("BEGIN")  # one snapshot for every query of the check
            tail = self.check_rows
            if tail > 0 and self._first_bad is not None:
                last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0])
                tail = max(tail, last - self._first_bad + 1)
            result = check(conn, self.keys, self._trust, self._witness, tail=tail)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            return self._verified_as(Verified(False, time.time(), f"cannot read it ({exc})"))
        finally:
            conn.close()
        if result.ok:
            self._first_bad = None  # every row from it checks again: the file was put right
        elif result.seq is not None and (self._first_bad is None or result.seq < self._first_bad):
            self._first_bad = result.seq
        return self._verified_as(Verified(result.ok, time.time(), result.problem))

    def _verified_as(self, verified: Verified) -> Verified:
        if not verified.ok:
            log.error(
                "ledger verification failed: %s",
                verified.problem,
                extra={"path": str(self.path), "problem": verified.problem},
            )
        with self._health_lock:
            self._verified = verified
        return verified

    def _verify_every(self) -> None:
        while not self._stopping.wait(self.verify_interval):
            try:
                self.verify_tail()
            except Exception as exc:  # the verifier must outlive any surprise; say so
                self._verified_as(Verified(False, time.time(), f"the check itself failed ({exc})"))

    def close(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._writer.join(timeout=30)
        if self._verifier is not None:
            self._verifier.join(timeout=30)
        self._conn.close()
        self._writer_lock.release()


def _insert_checkpoint(conn: sqlite3.Connection, cp: Checkpoint) -> None:
    conn.execute(
        "INSERT INTO checkpoints (seq, head, key_id, recorded_at, signer, signature) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (cp.seq, cp.head, cp.key_id, cp.recorded_at, cp.signer, cp.signature),
    )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int  # rows walked (all of them unless a tail was checked)
    problem: str = ""
    seq: int | None = None  # the first bad row, when one can be named
    last: int = 0  # the ledger's last seq
    unkeyed: int = 0  # rows 1..unkeyed were written before keys were configured
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key id -> first, last seq
    checkpoints: int = 0  # checkpoints whose signature and place in the chain were checked
    signers: tuple[str, ...] = ()  # fingerprints of the keys that signed them
    witnessed: int | None = None  # seq of the witnessed checkpoint found in the chain
    notes: tuple[str, ...] = ()


# The payload is read as its bytes and its storage class: a compact record is a BLOB, the JSON
# of rows from before compact records is TEXT (read as bytes too, so that text that is not UTF-8,
# which no writer wrote, is reported by verify instead of failing the read).
_SELECTED = ", ".join(
    "CAST(payload AS BLOB), typeof(payload) = 'blob'" if c == "payload" else c for c in _ROW_COLUMNS
)


def _row(r: Sequence[Any]) -> Row:
    """A :class:`Row` from the columns of :data:`_SELECTED` and the key id."""
    seq, kind, decision_id, recorded_at, data, compact, prev_hash, digest, key_id = r
    data = bytes(data or b"")
    # surrogateescape keeps text that is not UTF-8 byte for byte; such a row fails its check.
    stored = data if compact else data.decode("utf-8", "surrogateescape")
    return Row(seq, kind, decision_id, recorded_at, stored, prev_hash, digest, key_id)


def _select_row(conn: sqlite3.Connection) -> str:
    """The row columns, with ``NULL`` for the key id of a file never opened by a keyed writer."""
    has_key = "key_id" in _columns(conn, "ledger")
    return f"{_SELECTED}, {'key_id' if has_key else 'NULL'}"


def iter_rows(conn: sqlite3.Connection, first: int = 1) -> Iterator[Row]:
    for r in conn.execute(
        f"SELECT {_select_row(conn)} FROM ledger WHERE seq >= ? ORDER BY seq", (first,)
    ):
        yield _row(r)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _checkpoints(conn: sqlite3.Connection) -> dict[int, Checkpoint]:
    if "checkpoints" not in _tables(conn):
        return {}
    cur = conn.execute(
        "SELECT seq, head, key_id, recorded_at, signer, signature FROM checkpoints ORDER BY seq"
    )
    return {int(r[0]): Checkpoint(int(r[0]), *r[1:]) for r in cur}


class _Problems:
    """Problems found, each with the row it concerns; the first bad row is the lowest."""

    def __init__(self) -> None:
        self.found: list[tuple[float, int, str, int | None]] = []

    def add(self, seq: int | None, text: str) -> None:
        self.found.append((float("inf") if seq is None else seq, len(self.found), text, seq))

    def first(self) -> tuple[str, int | None] | None:
        if not self.found:
            return None
        _, _, text, seq = min(self.found)
        return text, seq


def check(
    conn: sqlite3.Connection,
    keys: KeyRing,
    trusted: Mapping[str, Ed25519PublicKey],
    witness: Checkpoint | None = None,
    *,
    tail: int = 0,
    sealing: bool = False,
) -> VerifyResult:
    """Check the chain in ``conn``: every row from the first (``tail`` > 0: from the last
    ``tail`` rows or the latest checkpoint, whichever is earlier), the head and its MAC, the
    seal of an unkeyed prefix, the checkpoints (their signature by a ``trusted`` key, and that
    each matches the chain at its seq) and ``witness``. ``sealing``: the prefix is about to be
    sealed, so a missing seal and head MAC are not problems."""
    problems = _Problems()
    if "ledger" not in _tables(conn):
        last, first_keyed, late_unkeyed, unkeyed = 0, None, None, 0
    else:
        has_key = "key_id" in _columns(conn, "ledger")
        last = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0])
        first_keyed = (
            conn.execute("SELECT MIN(seq) FROM ledger WHERE key_id IS NOT NULL").fetchone()[0]
            if has_key
            else None
        )
        late_unkeyed = (
            conn.execute(
                "SELECT MIN(seq) FROM ledger WHERE key_id IS NULL AND seq > ?", (first_keyed,)
            ).fetchone()[0]
            if first_keyed is not None
            else None
        )
        unkeyed = int(
            conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM ledger"
                + (" WHERE key_id IS NULL AND seq < ?" if has_key else ""),
                (first_keyed or last + 1,) if has_key else (),
            ).fetchone()[0]
        )
    checkpoints = _checkpoints(conn)
    latest = max(checkpoints, default=last)
    first = 1 if tail <= 0 else max(1, min(last - tail + 1, latest))
    seal = checkpoints.get(unkeyed) if unkeyed else None
    seal = seal if seal is not None and seal.key_id is None else None
    scope = {s: cp for s, cp in checkpoints.items() if s >= first or cp is seal}

    # The rows.
    ranges: dict[str, list[int]] = {}
    walked = 0
    prev = GENESIS
    if first > 1:
        before = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (first - 1,)).fetchone()
        if before is None:
            problems.add(first - 1, f"row {first - 1} is missing (deleted)")
        prev = str(before[0]) if before else GENESIS
    if late_unkeyed is not None and late_unkeyed < first:
        problems.add(
            late_unkeyed,
            f"row {late_unkeyed} has no key id but follows keyed rows (written without the key)",
        )
    keyed_seen = first_keyed is not None and first_keyed < first
    expected = first
    for row in iter_rows(conn, first) if last else iter([]):
        walked += 1
        problem = _row_problem(row, expected, prev, keyed_seen, keys)
        if problem is None and row.seq in scope:
            cp = scope[row.seq]
            if (cp.head, cp.key_id) != (row.hash, row.key_id):
                problem = (
                    f"row {row.seq} differs from the checkpoint signed at {cp.recorded_at}: "
                    f"rows up to {row.seq} were rewritten"
                )
        if (
            problem is None
            and witness is not None
            and witness.seq == row.seq
            and (witness.head, witness.key_id) != (row.hash, row.key_id)
        ):
            problem = (
                f"row {row.seq} differs from the witnessed checkpoint of "
                f"{witness.recorded_at}: rows up to {row.seq} were rewritten"
            )
        if problem is not None:
            problems.add(min(expected, row.seq), problem)
            break
        if row.key_id is not None:
            keyed_seen = True
            span = ranges.setdefault(row.key_id, [row.seq, row.seq])
            span[1] = row.seq
        prev, expected = row.hash, expected + 1

    _check_head(conn, keys, last, problems, sealing)

    # The unkeyed prefix must be sealed by a signed checkpoint at its last row.
    notes: list[str] = []
    if unkeyed and seal is None and not sealing:
        problems.add(
            1,
            f"rows 1..{unkeyed} are unkeyed (written before keys were configured) and no "
            "signed checkpoint seals them; if this file is known to be good, seal it with "
            "`centinela ledger seal`",
        )
    elif unkeyed and seal is not None:
        notes.append(
            f"rows 1..{unkeyed} are unkeyed (written before keys were configured), sealed by "
            f"the checkpoint signed at {seal.recorded_at}"
        )

    # The checkpoints: signed by a trusted key, inside the ledger, unkeyed only as the seal.
    signers: set[str] = set()
    valid = 0
    for seq, cp in scope.items():
        if seq > last:
            problems.add(
                last + 1,
                f"the ledger ends at row {last} but a checkpoint signed at {cp.recorded_at} "
                f"covers row {seq} (rows deleted at the end)",
            )
        public = trusted.get(cp.signer)
        if public is None:
            why = (
                f"it is signed by key {cp.signer}, which is not trusted "
                f"(trusted: {', '.join(trusted)})"
                if trusted
                else "no public key was given (--public-key FILE, or the signing key file)"
            )
            problems.add(seq, f"cannot check the checkpoint at row {seq}: {why}")
        elif not cp.signed_by(public):
            problems.add(seq, f"the checkpoint at row {seq} has a bad signature (forged or edited)")
        else:
            signers.add(cp.signer)
            valid += 1
        if cp.key_id is None and seq != unkeyed:
            problems.add(seq, f"the checkpoint at row {seq} seals unkeyed rows that are not there")
        if seq < first and seq <= last:  # the seal, outside a checked tail: its row alone
            _compare(conn, cp, "the checkpoint signed at", problems)

    witnessed = None
    if witness is not None:
        if witness.seq > last:
            problems.add(
                last + 1,
                f"the ledger ends at row {last}, before the witnessed checkpoint at row "
                f"{witness.seq} of {witness.recorded_at}: rows {last + 1}..{witness.seq} were "
                "deleted (truncated, wiped or rolled back)",
            )
        else:
            if witness.seq < first:
                _compare(conn, witness, "the witnessed checkpoint of", problems)
            witnessed = witness.seq

    found = problems.first()
    return VerifyResult(
        ok=found is None,
        rows=walked,
        problem=found[0] if found else "",
        seq=found[1] if found else None,
        last=last,
        unkeyed=unkeyed,
        keys={k: (v[0], v[1]) for k, v in ranges.items()},
        checkpoints=valid,
        signers=tuple(sorted(signers)),
        witnessed=witnessed if found is None else None,
        notes=tuple(notes),
    )


def _is_text(stored: str | bytes) -> TypeGuard[str]:
    """Whether ``stored`` is JSON-era text that is UTF-8 (what every writer of text wrote)."""
    if isinstance(stored, bytes):
        return False
    try:
        stored.encode()
    except UnicodeEncodeError:
        return False
    return True


def _row_problem(row: Row, expected: int, prev: str, keyed_seen: bool, keys: KeyRing) -> str | None:
    if row.seq != expected:
        return f"row {expected} is missing (deleted); next is {row.seq}"
    if row.prev_hash != prev:
        return f"row {row.seq} does not follow row {row.seq - 1} (deleted or reordered)"
    if row.key_id is None:
        if keyed_seen:
            return f"row {row.seq} has no key id but follows keyed rows (written without the key)"
        if not _is_text(row.stored):  # no writer before keys wrote compact records
            return f"row {row.seq} was edited (its hash does not match)"
        digest = row_hash(
            row.prev_hash, row.seq, row.kind, row.decision_id, row.recorded_at, row.stored
        )
        return None if digest == row.hash else f"row {row.seq} was edited (its hash does not match)"
    if row.key_id not in keys.keys:
        return f"row {row.seq} cannot be checked: {keys.missing(row.key_id)}"
    if isinstance(row.stored, str) and not _is_text(row.stored):
        return f"row {row.seq} was edited (its payload is text that is not UTF-8)"
    mac = row_mac(
        keys, row.key_id, row.prev_hash, row.seq, row.kind, row.decision_id, row.recorded_at,
        row.stored,
    )  # fmt: skip
    if not hmac.compare_digest(mac, row.hash):
        return (
            f"row {row.seq} was edited (its MAC does not match: changed, or written without the "
            "key)"
        )
    try:
        row.payload  # noqa: B018 (authentic, and it must decode too)
    except PayloadError as exc:
        return f"{exc} (written by the key holder, or by a newer version)"
    return None


def _check_head(
    conn: sqlite3.Connection, keys: KeyRing, last: int, problems: _Problems, sealing: bool
) -> None:
    tables = _tables(conn)
    if "ledger_head" not in tables or "ledger" not in tables:
        return
    has_mac = "mac" in _columns(conn, "ledger_head")
    head = conn.execute(
        "SELECT seq, hash, " + ("key_id, mac" if has_mac else "NULL, NULL")
        + " FROM ledger_head WHERE id = 1"
    ).fetchone()  # fmt: skip
    if head is None:
        if last:
            problems.add(None, "the ledger head is missing")
        return
    seq, digest, key_id, mac = int(head[0]), str(head[1]), head[2], head[3]
    stored = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (last,)).fetchone()
    if (seq, digest) != (last, str(stored[0]) if stored else GENESIS):
        cause = "rows deleted at the end" if seq > last else "rows added or changed at the end"
        problems.add(
            min(seq, last) + 1, f"the ledger ends at row {last} but its head says {seq} ({cause})"
        )
    elif mac is None or key_id is None:
        if not sealing:
            problems.add(last + 1, "the ledger head has no MAC (rewritten without the key)")
    elif key_id not in keys.keys:
        problems.add(None, f"the ledger head cannot be checked: {keys.missing(str(key_id))}")
    elif not hmac.compare_digest(head_mac(keys, str(key_id), seq, digest), str(mac)):
        problems.add(
            last + 1,
            f"the ledger head (row {last}) is not authentic: its MAC does not match "
            "(rows deleted at the end and the head rewritten?)",
        )


def _compare(conn: sqlite3.Connection, cp: Checkpoint, what: str, problems: _Problems) -> None:
    """A checkpoint outside the walked rows against its row alone."""
    has_key = "key_id" in _columns(conn, "ledger")
    row = conn.execute(
        "SELECT hash, " + ("key_id" if has_key else "NULL") + " FROM ledger WHERE seq = ?",
        (cp.seq,),
    ).fetchone()
    if row is None or (str(row[0]), row[1]) != (cp.head, cp.key_id):
        problems.add(
            cp.seq,
            f"row {cp.seq} differs from {what} {cp.recorded_at}: rows up to {cp.seq} were "
            "rewritten",
        )


# ------------------------------------------------------------------ keys next to the ledger


def default_key_file(db: Path) -> Path:
    """Where the key ring lives when ``ledger_key_file`` is unset: beside the ledger."""
    db = Path(db)
    return db.with_name(db.stem + ".key")


def default_signing_key_file(db: Path) -> Path:
    """Where the signing key lives when ``ledger_signing_key_file`` is unset: beside the
    ledger."""
    db = Path(db)
    return db.with_name(db.stem + ".signing.pem")


def default_key_ring(db: Path, key_file: Path | None = None) -> KeyRing:
    """The ring a command line finds: ``key_file``, else ``$CENTINELA_LEDGER_KEY_FILE``, else
    the file beside the ledger if there is one; plus ``$CENTINELA_LEDGER_KEY``."""
    if key_file is None:
        env_file = os.environ.get(KEY_FILE_ENV)
        beside = default_key_file(db)
        key_file = Path(env_file) if env_file else beside if beside.exists() else None
    ring = load_key_ring(key_file, os.environ.get(KEY_ENV))
    if not ring.keys:
        return KeyRing(source=f"no key file at {default_key_file(db)}, no {KEY_ENV}")
    return ring


def default_signing_key(db: Path, signing_key_file: Path | None = None) -> Ed25519PrivateKey:
    """The signing key a command line uses: the file given, else
    ``$CENTINELA_LEDGER_SIGNING_KEY_FILE``, else the file beside the ledger."""
    if signing_key_file is None:
        env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
        signing_key_file = Path(env_file) if env_file else default_signing_key_file(db)
    return load_signing_key(signing_key_file)


def default_public_keys(db: Path) -> list[Ed25519PublicKey]:
    """The public half of the signing key a command line finds (none if there is none)."""
    env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
    path = Path(env_file) if env_file else default_signing_key_file(db)
    return [load_signing_key(path).public_key()] if path.exists() else []


def _peek(path: Path) -> tuple[set[str], int]:
    """The key ids of a ledger's rows and its number of checkpoints (before opening it)."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return set(), 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return set(), 0
    try:
        tables = _tables(conn)
        ids: set[str] = set()
        if "ledger" in tables and "key_id" in _columns(conn, "ledger"):
            ids = {
                str(r[0])
                for r in conn.execute("SELECT DISTINCT key_id FROM ledger WHERE key_id IS NOT NULL")
            }
        count = 0
        if "checkpoints" in tables:
            count = int(conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0])
        return ids, count
    except sqlite3.DatabaseError:
        return set(), 0  # connect() names the problem
    finally:
        conn.close()


def open_ledger(settings: Settings) -> Ledger:
    """The ledger the server writes, with the keys its settings name.

    With ``ledger_key_file`` unset and no ``CENTINELA_LEDGER_KEY``, the key ring beside the
    ledger is used, and generated (0600, logged once) if it does not exist and no row needs an
    older key; likewise the signing key with ``ledger_signing_key_file`` unset. A key file that
    is configured is never generated: a missing one is an error.
    """
    path = Path(settings.ledger_path)
    env_key = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    key_ids, checkpoints = _peek(path)
    key_file = settings.ledger_key_file
    if key_file is None and (default_key_file(path).exists() or env_key is None):
        key_file = default_key_file(path)
        if not key_file.exists():
            if key_ids:
                raise ConfigError(
                    f"ledger {path} has rows keyed with {', '.join(sorted(key_ids))} but its key "
                    f"file {key_file} is missing: restore it or set ledger_key_file"
                )
            add_key(key_file)
            log.warning("generated a ledger MAC key", extra={"path": str(key_file)})
    keys = load_key_ring(key_file, env_key)
    if key_file is not None and stat.S_IMODE(Path(key_file).stat().st_mode) & 0o077:
        log.warning("ledger key file is readable by others", extra={"path": str(key_file)})
    signing_file = settings.ledger_signing_key_file
    if signing_file is None and not default_signing_key_file(path).exists():
        signing_file = default_signing_key_file(path)
        if checkpoints:
            raise ConfigError(
                f"ledger {path} has {checkpoints} signed checkpoints but its signing key "
                f"{signing_file} is missing: restore it or set ledger_signing_key_file"
            )
        signing_key = generate_signing_key(signing_file)
        log.warning(
            "generated a ledger signing key",
            extra={"path": str(signing_file), "signer": fingerprint(signing_key.public_key())},
        )
    else:
        signing_key = load_signing_key(signing_file or default_signing_key_file(path))
    return Ledger(
        path,
        keys,
        signing_key,
        checkpoint_rows=settings.ledger_checkpoint_rows,
        checkpoint_seconds=settings.ledger_checkpoint_seconds,
        check_rows=settings.ledger_start_check_rows,
        verify_interval=settings.ledger_verify_interval_s,
        trusted=[load_public_key(p) for p in settings.ledger_public_key_files],
        witness=read_checkpoint(settings.ledger_witness_file)
        if settings.ledger_witness_file
        else None,
    )


def _open_ro(path: Path) -> sqlite3.Connection:
    if not Path(path).exists():
        raise ConfigError(f"ledger {path} does not exist")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"ledger {path}: cannot open ({exc})") from exc


def verify(
    path: Path,
    keys: KeyRing | None = None,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    witness: Checkpoint | None = None,
) -> VerifyResult:
    """Walk the whole chain; report the first row that was edited, deleted, reordered, forged
    or cut off, every checkpoint that does not hold, and a ``witness`` no longer in the chain.

    ``keys`` None: the key ring a command line finds (:func:`default_key_ring`);
    ``public_keys`` None: the public half of the signing key beside the ledger (or named by
    ``$CENTINELA_LEDGER_SIGNING_KEY_FILE``). A witness's own public key is trusted too.
    """
    conn = _open_ro(path)
    try:
        ring = keys if keys is not None else default_key_ring(path)
        publics = list(public_keys) if public_keys is not None else default_public_keys(path)
        trusted = {fingerprint(k): k for k in publics}
        if witness is not None:
            trusted[witness.signer] = public_key_from_text(witness.public_key, "witness")
        return check(conn, ring, trusted, witness)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"ledger {path}: not a usable SQLite database ({exc})") from exc
    finally:
        conn.close()


def latest_checkpoint(path: Path) -> Checkpoint | None:
    conn = _open_ro(path)
    try:
        checkpoints = _checkpoints(conn)
    finally:
        conn.close()
    return checkpoints[max(checkpoints)] if checkpoints else None


def seal(path: Path, keys: KeyRing, signing_key: Ed25519PrivateKey) -> Checkpoint:
    """Seal the unkeyed rows of a ledger written before keys: check their SHA-256 chain and
    head, then sign a checkpoint at the last of them and give the head a MAC, so a keyed writer
    can chain on from them. For an operator who trusts the file as it is."""
    if keys.current is None:
        raise ConfigError(f"cannot seal ledger {path}: no MAC key ({keys.source})")
    if not Path(path).exists():
        raise ConfigError(f"ledger {path} does not exist")
    lock = WriterLock.hold(Path(path))  # never beside a running server
    conn = connect_or_release(Path(path), lock)
    try:
        public = signing_key.public_key()
        result = check(conn, keys, {fingerprint(public): public}, sealing=True)
        if not result.ok:
            raise ConfigError(f"cannot seal ledger {path}: {result.problem}")
        if not result.unkeyed:
            raise ConfigError(f"ledger {path} has no unkeyed rows: there is nothing to seal")
        sealed = conn.execute(
            "SELECT 1 FROM checkpoints WHERE seq = ? AND key_id IS NULL", (result.unkeyed,)
        ).fetchone()
        if sealed is not None or result.unkeyed != result.last:
            raise ConfigError(f"ledger {path} is sealed already (rows 1..{result.unkeyed})")
        head = str(
            conn.execute("SELECT hash FROM ledger WHERE seq = ?", (result.last,)).fetchone()[0]
        )
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        checkpoint = sign_checkpoint(signing_key, result.last, head, None, now)
        conn.execute("BEGIN IMMEDIATE")
        _insert_checkpoint(conn, checkpoint)
        conn.execute(
            "UPDATE ledger_head SET key_id = ?, mac = ? WHERE id = 1",
            (keys.current, head_mac(keys, keys.current, result.last, head)),
        )
        conn.execute("COMMIT")
        return checkpoint
    finally:
        conn.close()
        lock.release()


@dataclass(frozen=True)
class LedgerContents:
    """Decision payloads by id, and each decision's outcome payloads in version order (each
    with ``recorded_at``)."""

    decisions: dict[str, dict[str, Any]]
    outcomes: dict[str, list[dict[str, Any]]]


def read_decision(path: Path, decision_id: str) -> dict[str, Any]:
    """The payload of one decision, read from the ledger file without opening it for writing;
    NotFound when no decision has that id."""
    conn = _open_ro(path)
    try:
        found = conn.execute(
            f"SELECT {_SELECTED}, key_id FROM ledger WHERE decision_id = ? AND kind = 'decision' "
            "ORDER BY seq",
            (decision_id,),
        ).fetchall()
    finally:
        conn.close()
    if not found:
        raise NotFound(f"no decision with id {decision_id!r} in ledger {path}")
    try:
        payload: dict[str, Any] = json.loads(_row(found[-1]).payload)
    except PayloadError as exc:
        raise ConfigError(
            f"ledger {path}: {exc}; `centinela ledger verify --db {path}` checks it"
        ) from None
    return payload


def read_contents(path: Path) -> LedgerContents:
    if not Path(path).exists():
        raise ConfigError(f"ledger {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    decisions: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    try:
        for row in iter_rows(conn):
            try:
                payload = json.loads(row.payload)
            except PayloadError as exc:
                raise ConfigError(
                    f"ledger {path}: {exc}; `centinela ledger verify --db {path}` checks it"
                ) from None
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
    state.add_shipments(Keyed.from_frame(context_rows(shipments, goods, watchlist)))
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


# --------------------------------------------------------------- the compact records' dictionary

# Dictionary 1 of compact records (format byte 1): text that decision and outcome payloads
# repeat, in their canonical JSON form, so that deflate refers back to it instead of spelling it
# out in every row. Composed once from the code's own vocabulary as it stood when compact
# records were introduced: the model's reason texts in both languages (the history ones for one
# entity: the others differ in a few words), the exam texts, and the skeleton of an outcome and
# of a decision with every key and feature name (most used last: nearer is cheaper). It only
# helps compression: a payload that shares nothing with it is stored as well, just larger.
# FROZEN: every compact record ever written needs exactly these bytes to be read back
# (tests/test_ledger_compact.py pins their SHA-256). A better dictionary is a new format byte
# with its own entry in DICTIONARIES, beside this one.
_DICTIONARY_1 = (
    'Risk profile of the port","message_es":"Perfil de riesgo del puerto de entrada"},'
    '{"code":"MODEL_PORT_CODE","contribution":0.1,"message_en":"'
    'Transport mode","message_es":"Modo de transporte"},{"code":"MODEL_MODE_CODE",'
    '"contribution":0.1,"message_en":"'
    'Country of origin AB","message_es":"País de origen AB"},{"code":"MODEL_ORIGIN_CODE",'
    '"contribution":0.1,"message_en":"'
    'Country of export AB","message_es":"País de exportación AB"},'
    '{"code":"MODEL_EXPORT_CODE","contribution":0.1,"message_en":"'
    'Export country differs from country of origin","message_es":"El país de exportación '
    'difiere del de origen"},{"code":"MODEL_EXPORT_DIFFERS","contribution":0.1,'
    '"message_en":"'
    '1 transshipment port(s) declared","message_es":"1 puerto(s) de transbordo '
    'declarados"},{"code":"MODEL_TRANSSHIPMENT_COUNT","contribution":0.1,"message_en":"'
    '1 goods line(s)","message_es":"1 partida(s) de mercancía"},'
    '{"code":"MODEL_GOODS_LINE_COUNT","contribution":0.1,"message_en":"'
    'Principal HS chapter 01","message_es":"Capítulo arancelario principal 01"},'
    '{"code":"MODEL_PRINCIPAL_HS_CHAPTER","contribution":0.1,"message_en":"'
    'Principal HS heading 0001","message_es":"Partida arancelaria principal 0001"},'
    '{"code":"MODEL_PRINCIPAL_HS_HEADING","contribution":0.1,"message_en":"'
    '1 distinct HS chapter(s)","message_es":"1 capítulo(s) arancelario(s) distintos"},'
    '{"code":"MODEL_HS_CHAPTER_COUNT","contribution":0.1,"message_en":"'
    '100% of goods lines are chemicals (HS 28, 29, 38)","message_es":"100% de las '
    'partidas son químicos (cap. 28, 29, 38)"},{"code":"MODEL_CHEMICAL_LINE_SHARE",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) declare a CAS number","message_es":"1 partida(s) declaran número CAS"},'
    '{"code":"MODEL_CAS_LINE_COUNT","contribution":0.1,"message_en":"'
    '1 line(s) declare an invalid CAS number","message_es":"1 partida(s) declaran un '
    'número CAS inválido"},{"code":"MODEL_INVALID_CAS_LINES","contribution":0.1,'
    '"message_en":"'
    'Total gross weight 1 kg","message_es":"Peso bruto total 1 kg"},'
    '{"code":"MODEL_TOTAL_WEIGHT_KG","contribution":0.1,"message_en":"'
    'Total declared value 1 USD","message_es":"Valor declarado total 1 USD"},'
    '{"code":"MODEL_TOTAL_VALUE_USD","contribution":0.1,"message_en":"'
    'Declared value of 1.00 USD/kg","message_es":"Valor declarado de 1.00 USD/kg"},'
    '{"code":"MODEL_VALUE_PER_KG","contribution":0.1,"message_en":"'
    'First shipment of this shipper","message_es":"Primer embarque del remitente"},'
    '{"code":"MODEL_SHIPPER_AGE_DAYS","contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 30 days","message_es":"1 embarque(s) del '
    'remitente en los 30 días previos"},{"code":"MODEL_SHIPPER_COUNT_30D",'
    '"contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 90 days","message_es":"1 embarque(s) del '
    'remitente en los 90 días previos"},{"code":"MODEL_SHIPPER_COUNT_90D",'
    '"contribution":0.1,"message_en":"'
    '1 shipment(s) by this shipper in the prior 365 days","message_es":"1 embarque(s) '
    'del remitente en los 365 días previos"},{"code":"MODEL_SHIPPER_COUNT_365D",'
    '"contribution":0.1,"message_en":"'
    '1 earlier inspection(s) of this shipper","message_es":"1 inspección(es) previas del '
    'remitente"},{"code":"MODEL_SHIPPER_INSPECTIONS","contribution":0.1,"message_en":"'
    '1 earlier finding(s) for this shipper","message_es":"1 hallazgo(s) previos del '
    'remitente"},{"code":"MODEL_SHIPPER_POSITIVES","contribution":0.1,"message_en":"'
    'Historical finding rate of this shipper: 100.0%","message_es":"Tasa histórica de '
    'hallazgos del remitente: 100.0%"},{"code":"MODEL_SHIPPER_POSITIVE_RATE",'
    '"contribution":0.1,"message_en":"'
    'No earlier findings for this shipper","message_es":"Sin hallazgos previos del '
    'remitente"},{"code":"MODEL_SHIPPER_DAYS_SINCE_POSITIVE","contribution":0.1,'
    '"message_en":"'
    '1 watched synthesis route(s) received by this shipper in 90 days","message_es":"1 '
    'ruta(s) de síntesis vigiladas recibidas del remitente en 90 días"},'
    '{"code":"MODEL_SHIPPER_ROUTE_FAMILIES_90D","contribution":0.1,"message_en":"'
    "Complementary items received by this shipper in 90 days (precursor and reagent, or "
    'tableting equipment)","message_es":"Sustancias complementarias recibidas del '
    'remitente en 90 días (precursor y reactivo, o equipo de tableteo)"},'
    '{"code":"MODEL_SHIPPER_COMPLEMENTARY_90D","contribution":0.1,"message_en":"'
    'Watchlist evidence (strength 1.00)","message_es":"Evidencia de lista de vigilancia '
    '(fuerza 1.00)"},{"code":"MODEL_WATCHLIST_MAX_STRENGTH","contribution":0.1,'
    '"message_en":"'
    'Watchlist evidence across goods lines","message_es":"Evidencia de lista de '
    'vigilancia en varias partidas"},{"code":"MODEL_WATCHLIST_STRENGTH_SUM",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) with a watched CAS","message_es":"1 partida(s) con número CAS vigilado"},'
    '{"code":"MODEL_WATCHLIST_CAS_LINES","contribution":0.1,"message_en":"'
    '1 line(s) under a watched substance\'s own HS code","message_es":"1 partida(s) con '
    'fracción arancelaria de sustancia vigilada"},'
    '{"code":"MODEL_WATCHLIST_HS_SPECIFIC_LINES","contribution":0.1,"message_en":"'
    '1 line(s) under a broad HS line of watched chemicals","message_es":"1 partida(s) en '
    'fracción genérica de químicos vigilados"},{"code":"MODEL_WATCHLIST_HS_BROAD_LINES",'
    '"contribution":0.1,"message_en":"'
    '1 line(s) name a watched substance","message_es":"1 partida(s) nombran una '
    'sustancia vigilada"},{"code":"MODEL_WATCHLIST_NAME_LINES","contribution":0.1,'
    '"message_en":"'
    '1 line(s) with a watched substance identified","message_es":"1 partida(s) con '
    'sustancia vigilada identificada"},{"code":"MODEL_WATCHLIST_IDENTIFIED_LINES",'
    '"contribution":0.1,"message_en":"'
    '1 distinct synthesis route(s) in the declaration","message_es":"1 ruta(s) de '
    'síntesis distintas en la declaración"},{"code":"MODEL_WATCHLIST_ROUTE_FAMILIES",'
    '"contribution":0.1,"message_en":"'
    '1 mismatch(es) between description, CAS and HS code","message_es":"1 '
    'incongruencia(s) entre descripción, CAS y fracción"},'
    '{"code":"MODEL_WATCHLIST_MISMATCHES","contribution":0.1,"message_en":"'
    'Value per kg 2.7 times the median of its HS heading","message_es":"Valor por kg 2.7 '
    'veces la mediana de su partida arancelaria"},{"code":"MODEL_VALUE_PER_KG_LOG_RATIO",'
    '"contribution":0.1,"message_en":"'
    " del remitente this shipper del consignatario this consignee del agente aduanal "
    "this customs broker de la ruta this route de la partida arancelaria this HS heading"
    "this sea shipment este embarque marítimo"
    "this land vehicle este vehículo de carga terrestre"
    "this air cargo consignment este envío de carga aérea"
    "this postal or courier parcel este envío postal o de mensajería"
    "an invalid CAS number un número CAS inválido"
    "a CAS number that does not agree with the HS code un número CAS que no concuerda "
    "con la fracción arancelaria"
    "a CAS number that does not agree with the description un número CAS que no "
    "concuerda con la descripción"
    "a substance name that does not agree with the HS code un nombre de sustancia que no "
    "concuerda con la fracción arancelaria"
    "a specific HS code that does not agree with the description una fracción "
    "arancelaria específica que no concuerda con la descripción"
    "a declared value per kg unusual for its HS heading un valor declarado por kg "
    "atípico para su partida arancelaria"
    '"exam":"physical_sampling","exam_reason":{"code":"EXAM_PHYSICAL_SAMPLING",'
    '"contribution":0.0,"message_en":"Physical examination with sampling for laboratory '
    'confirmation: ","message_es":"Reconocimiento físico con toma de muestras para '
    'confirmación de laboratorio: "'
    '"exam":"non_intrusive","exam_reason":{"code":"EXAM_NON_INTRUSIVE",'
    '"contribution":0.0,"message_en":"Non-intrusive inspection (X-ray or gamma scan): ",'
    '"message_es":"Inspección no intrusiva (rayos X o gamma): "'
    '"exam":"canine","exam_reason":{"code":"EXAM_CANINE","contribution":0.0,'
    '"message_en":"Canine inspection: ","message_es":"Revisión con binomio canino: "'
    '"exam":"documentary","exam_reason":{"code":"EXAM_DOCUMENTARY","contribution":0.0,'
    '"message_en":"Documentary review: ","message_es":"Revisión documental: "'
    "the goods lines identify a watched chemical substance. las partidas identifican una "
    "sustancia química sujeta a vigilancia."
    "the risk model selected  with no watched substance identified in the goods lines."
    "el modelo de riesgo seleccionó  sin identificar una sustancia vigilada en las "
    "partidas."
    '{"decision_id":"","inspected":true,"lab_confirmed":false,"notes":"",'
    '"result":"negative","shipment_id":"SHP-","substances":[],"version":1}'
    ',"lane":"yellow","lane":"red","declared":{"goods":['
    '{"caller":{"method":"mtls","name":"","roles":["admin","reporter","scorer"]},'
    '"decided_at":"2026-01-01T00:00:00.000000+00:00","decision_id":"","declared":null,'
    '"exam":"","exam_reason":null,"features":{"broker_age_days":0.0,'
    '"broker_complementary_90d":0.0,"broker_count_30d":0.0,"broker_count_365d":0.0,'
    '"broker_count_90d":0.0,"broker_days_since_positive":0.0,"broker_inspections":0.0,'
    '"broker_positive_rate":0.0,"broker_positives":0.0,"broker_route_families_90d":0.0,'
    '"cas_line_count":0.0,"chemical_line_share":0.0,"consignee_age_days":0.0,'
    '"consignee_complementary_90d":0.0,"consignee_count_30d":0.0,'
    '"consignee_count_365d":0.0,"consignee_count_90d":0.0,'
    '"consignee_days_since_positive":0.0,"consignee_has_tax_id":0.0,'
    '"consignee_inspections":0.0,"consignee_is_foreign":0.0,'
    '"consignee_positive_rate":0.0,"consignee_positives":0.0,'
    '"consignee_route_families_90d":0.0,"export_code":0.0,"export_differs":0.0,'
    '"goods_line_count":0.0,"heading_days_since_positive":0.0,"heading_inspections":0.0,'
    '"heading_positive_rate":0.0,"heading_positives":0.0,"hs_chapter_count":0.0,'
    '"invalid_cas_lines":0.0,"mode_code":0.0,"origin_code":0.0,"port_code":0.0,'
    '"principal_hs_chapter":0.0,"principal_hs_heading":0.0,'
    '"route_days_since_positive":0.0,"route_inspections":0.0,"route_positive_rate":0.0,'
    '"route_positives":0.0,"shipper_age_days":0.0,"shipper_count_30d":0.0,'
    '"shipper_count_365d":0.0,"shipper_count_90d":0.0,"shipper_days_since_positive":0.0,'
    '"shipper_inspections":0.0,"shipper_positive_rate":0.0,"shipper_positives":0.0,'
    '"total_value_usd":0.0,"total_weight_kg":0.0,"transshipment_count":0.0,'
    '"value_per_kg":0.0,"value_per_kg_log_ratio":0.0,"watchlist_cas_lines":0.0,'
    '"watchlist_hs_broad_lines":0.0,"watchlist_hs_specific_lines":0.0,'
    '"watchlist_identified_lines":0.0,"watchlist_max_strength":0.0,'
    '"watchlist_mismatches":0.0,"watchlist_name_lines":0.0,'
    '"watchlist_route_families":0.0,"watchlist_strength_sum":0.0},'
    '"goods":[{"cas_numbers":[],"declared_value_usd":0.0,"description":"",'
    '"gross_weight_kg":0.0,"hs_code":"","line_no":0,"quantity":0.0,"shipment_id":"SHP-",'
    '"unit":"KGM"}],"lane":"green","model_version":"v0001","propensity":0.0,'
    '"random_selection":false,"reasons":[],"risk_score":0.0,"rules_fired":[],'
    '"rules_version":"2026.01.1","shipment":{"broker_id":"BRK-","carrier":"",'
    '"consignee_country":"MX","consignee_id":"CNE-","consignee_name":"",'
    '"consignee_tax_id":"","container_id":"","conveyance_id":"",'
    '"declared_at":"2026-01-01T00:00:00.000000+00:00","export_country":"MX","mode":"",'
    '"origin_country":"","port_of_entry":"","shipment_id":"SHP-","shipper_country":"",'
    '"shipper_id":"SHR-","shipper_name":"","shipper_tax_id":"","transshipment_ports":[]},'
    '"thresholds":{"red":0.0,"yellow":0.0},"watchlist_hits":[{"entry_id":"",'
    '"goods_index":0,"match_type":"cas","matched_text":"","name":"","similarity":1.0}],'
    '"watchlist_version":"2026.01.1"}'
).encode()

DICTIONARIES: Mapping[int, bytes] = {DEFLATE_1: _DICTIONARY_1}
"""Preset dictionaries of compact records by format byte."""
