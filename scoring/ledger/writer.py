"""The ledger's writer: appends entries durably, group-committed, MAC-chained and checkpointed.

Concurrent requests share commits: a single writer thread drains everything queued while the
previous commit was being flushed and writes it in one transaction (group commit), so
durability costs one fsync per batch, not per request. Callers wait on a future that resolves
only after their row is committed. Checkpoints are signed every ``checkpoint_rows`` rows or
``checkpoint_seconds`` seconds and when the writer closes. Where the rows live is the store's
business (:mod:`scoring.ledger.store`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError
from scoring.ledger.chain import GENESIS, check, head_mac, row_mac
from scoring.ledger.checkpoint import Checkpoint, sign_checkpoint, trusted_keys
from scoring.ledger.health import (
    COMMIT_SECONDS_BUCKETS,
    GROUP_SIZE_BUCKETS,
    LedgerHealth,
    TailVerifier,
    Tally,
    Verified,
)
from scoring.ledger.record import Commit, Entry, Head, Row, canonical_json, encode_payload
from scoring.ledger.sqlite import SqliteStore
from scoring.ledger.store import LedgerView, open_store
from scoring.ledger_keys import KeyRing

log = logging.getLogger("scoring.ledger")  # the package's one logger, as before it was split

Appended = list[int | Exception]
"""What one :meth:`Ledger.append_many` resolves to: each entry's seq, or the error that kept
that entry (alone) out of the ledger."""


@dataclass(frozen=True, slots=True)
class _Call:
    """The entries of one append or append_many call, committed together, and the one future
    their caller waits on (one per call, not per entry: a future costs a lock and a condition)."""

    entries: Sequence[Entry]
    future: Future[Appended]


_Batch = list[_Call]  # the calls of one group commit; None in the queue: stop


class Ledger:
    """Append-only, group-committed, MAC-chained, checkpointed store of decisions and outcomes.

    ``path`` is where it is stored (:func:`scoring.ledger.store.open_store`: a SQLite file's
    path, a ``sqlite:///`` or a ``postgresql://`` URL), kept as :attr:`location` for readers
    to open it again; :attr:`path` is the SQLite file (None for a database server). Where
    several writers share the ledger (PostgreSQL), each commit chains on from the head as the
    database has it then, so they all extend one chain (:meth:`LedgerWriter.append`).

    Opening checks the tail of the chain
    (:func:`scoring.ledger.chain.check` with ``tail=check_rows``; 0: all of it) and raises
    :class:`ConfigError` naming the first bad row rather than append to a broken chain. New rows
    are written with ``keys.current``; checkpoints are signed with ``signing_key`` (none are
    written without one). ``trusted`` are further public keys whose checkpoints are accepted
    (earlier signing keys); ``witness`` is a checkpoint held outside that must still be in the
    chain. ``compact`` False writes payloads as JSON text, as ledgers before compact records did
    (the baseline of ``python -m bench.ledger``, and tests of ledgers that hold both kinds).
    ``verify_interval`` > 0: the same tail check again every that many seconds, in a thread of
    its own (:meth:`verify_tail`; 0: only at open).
    """

    def __init__(
        self,
        path: Path | str,
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
        self._store = open_store(path)
        self.location: Path | str = path
        self.path = self._store.path if isinstance(self._store, SqliteStore) else None
        self.compact = compact
        if keys.current is None:
            raise ConfigError(
                f"ledger {self._store.location}: no MAC key to write with ({keys.source})"
            )
        self.keys, self.key_id = keys, keys.current
        self.max_batch = max_batch
        self.checkpoint_rows, self.checkpoint_seconds = checkpoint_rows, checkpoint_seconds
        self._signing_key = signing_key
        signers = [signing_key.public_key()] if signing_key is not None else []
        trust = trusted_keys([*trusted, *signers], witness)
        self.check_rows, self.verify_interval = check_rows, verify_interval
        self._storage = self._store.writer()  # closed by close(), or by a failure in _opened
        head, self._checkpoint_seq = self._opened(trust, witness)
        self._seq, self._hash = (head.seq, head.hash) if head else (0, GENESIS)
        self._checkpoint_time = time.monotonic()
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._readers = threading.local()  # each thread's view for entries_for
        self._views: list[LedgerView] = []  # all of them, closed by close()
        self._views_lock = threading.Lock()
        self.commits = 0
        self.checkpoints = 0  # written by this writer
        # The seq ranges of this writer's own commits, kept once a follower asks for them
        # (track_own) and handed over by take_own: what the follower must not apply again.
        self._own: deque[tuple[int, int]] | None = None
        self._own_lock = threading.Lock()
        # Health: written by the writer, read by health(); one short lock.
        self._health_lock = threading.Lock()
        self._commit_seconds = Tally(COMMIT_SECONDS_BUCKETS)
        self._group_size = Tally(GROUP_SIZE_BUCKETS)
        self._verifier = TailVerifier(
            self._store, keys, trust, witness, check_rows=check_rows, interval=verify_interval
        )
        self._writer = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._writer.start()
        self._verifier.start()

    def _opened(
        self, trust: dict[str, Ed25519PublicKey], witness: Checkpoint | None
    ) -> tuple[Head | None, int]:
        """Check the tail of the chain just opened; its head and the seq of the latest
        checkpoint. On a broken chain (ConfigError) or any failure the storage is closed."""
        try:
            with self._storage.snapshot():  # other writers of a shared ledger may be appending
                result = check(self._storage, self.keys, trust, witness, tail=self.check_rows)
                head, checkpoints = self._storage.head(), self._storage.checkpoints()
        except BaseException:
            self._storage.close()
            raise
        if not result.ok:
            self._storage.close()
            where = self._store.location
            raise ConfigError(
                f"ledger {where}: {result.problem}; refusing to append to a broken chain "
                f"(`centinela ledger verify --db {where}` checks all of it)"
            )
        return head, max(checkpoints, default=0)

    def append(self, entry: Entry) -> Future[int]:
        """Queue ``entry``; the future resolves to its seq once it is committed to disk."""
        out: Future[int] = Future()

        def resolve(done: Future[Appended]) -> None:
            try:
                (result,) = done.result()
            except Exception as error:
                out.set_exception(error)
                return
            if isinstance(result, Exception):
                out.set_exception(result)
            else:
                out.set_result(result)

        self._submit([entry]).add_done_callback(resolve)
        return out

    def append_many(self, entries: Sequence[Entry]) -> Future[Appended]:
        """Queue ``entries`` in one hand-over to the writer (a batch's decisions): one wake-up
        and one future instead of one per entry. The future resolves, once they are committed
        to disk, to each entry's seq in order, or for an entry whose payload JSON cannot hold,
        its error (the others are written); it fails as a whole when the commit fails."""
        return self._submit(entries)

    def _submit(self, entries: Sequence[Entry]) -> Future[Appended]:
        future: Future[Appended] = Future()
        if entries:
            self._queue.put(_Call(entries, future))
        else:
            future.set_result([])
        return future

    # ------------------------------------------------------------------ the writer thread

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
            batch, size = [item], len(item.entries)
            while size < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit_or_fail(batch)
                    self._checkpoint_alone()
                    return
                batch.append(nxt)
                size += len(nxt.entries)
            self._commit_or_fail(batch)

    def _commit_or_fail(self, batch: _Batch) -> None:
        """:meth:`_commit`, and if it fails unexpectedly, each waiting caller gets the error:
        the writer thread goes on, and no reply waits forever for a commit that never comes."""
        try:
            self._commit(batch)
        except Exception as error:
            log.error("ledger commit failed unexpectedly", exc_info=error)
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)

    def _sign(self, seq: int, head: str) -> Checkpoint:
        """A checkpoint of ``seq`` with hash ``head``, signed now."""
        assert self._signing_key is not None
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        return sign_checkpoint(self._signing_key, seq, head, self.key_id, now)

    def _checkpoint_alone(self) -> None:
        """A checkpoint of the head in its own transaction (time due while idle, or closing):
        the head as the store has it (another writer of a shared ledger may have moved it)."""
        if self._signing_key is None or self._seq <= self._checkpoint_seq:
            return

        def sign(seq: int, last: str) -> Commit:
            if seq <= self._checkpoint_seq:
                return Commit()
            return Commit(head=None, checkpoint=self._sign(seq, last))

        try:
            commit = self._storage.append(sign, self._seq, self._hash)
        except self._store.error as error:
            log.error("ledger checkpoint failed", exc_info=error)
            self._checkpoint_time = time.monotonic()  # retried after another interval
            return
        self._checkpoint_time = time.monotonic()
        if (cp := commit.checkpoint) is not None:
            self._seq, self._hash, self._checkpoint_seq = cp.seq, cp.head, cp.seq
            self.checkpoints += 1

    def _chained(
        self, entries: Sequence[tuple[Entry, str | bytes]], seq: int, prev: str
    ) -> list[Row]:
        """The rows of ``entries`` (each with its payload as stored): numbered and MACed on
        from the head ``seq``, ``prev``, recorded now."""
        key_id = self.key_id
        rows = []
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        for entry, payload in entries:
            seq += 1
            mac = row_mac(self.keys, key_id, prev, seq, entry.kind, entry.decision_id, now, payload)
            rows.append(Row(seq, entry.kind, entry.decision_id, now, payload, prev, mac, key_id))
            prev = mac
        return rows

    def _chain(self, entries: Sequence[tuple[Entry, str | bytes]]) -> Callable[[int, str], Commit]:
        """What one group commit stores, given the head it follows: the rows of ``entries``,
        the new head, and a checkpoint of it if one is due."""

        def chain(seq: int, prev: str) -> Commit:
            rows = self._chained(entries, seq, prev)
            seq, last = rows[-1].seq, rows[-1].hash
            head = Head(seq, last, self.key_id, head_mac(self.keys, self.key_id, seq, last))
            return Commit(rows, head, self._sign(seq, last) if self._checkpoint_due(seq) else None)

        return chain

    @staticmethod
    def _encodable(batch: _Batch) -> tuple[list[tuple[Entry, str]], list[Appended]]:
        """The entries of ``batch`` with their payload's JSON, and each call's results so far:
        an entry whose JSON cannot be written (a value orjson refuses) has its error there and
        is left out, not the batch or the writer; the others' seqs are filled in later."""
        out = []
        results: list[Appended] = []
        for call in batch:
            mine: Appended = []
            for entry in call.entries:
                try:
                    out.append((entry, canonical_json(entry.payload)))
                    mine.append(-1)  # its seq, once committed
                except (TypeError, ValueError) as error:
                    log.error("ledger entry %s not encodable", entry.decision_id, exc_info=error)
                    mine.append(error)
            results.append(mine)
        return out, results

    def _commit(self, batch: _Batch) -> None:
        """One group commit: the rows, the head and a checkpoint if one is due, then every
        future of the batch resolved (to its seq, or to the storage's error)."""
        started = time.perf_counter()
        encoded, results = self._encodable(batch)
        if not encoded:
            _resolve(batch, results, [])
            return
        # Compressed before the store is asked for the head: with writers sharing the ledger,
        # its lock is held only while the rows are numbered, MACed and written.
        payloads = [
            (entry, encode_payload(text) if self.compact else text) for entry, text in encoded
        ]
        try:
            # The commit and the note of its seqs as this writer's own happen under one lock:
            # a follower that read these rows the moment they committed waits in take_own
            # until they are noted, so it never takes this server's rows for another's.
            with self._own_lock:
                commit = self._storage.append(self._chain(payloads), self._seq, self._hash)
                if self._own is not None:
                    self._own.append((commit.rows[0].seq, commit.rows[-1].seq))
        except self._store.error as exc:
            for call in batch:
                call.future.set_exception(exc)
            return
        rows = commit.rows
        self._seq, self._hash = rows[-1].seq, rows[-1].hash
        with self._health_lock:
            self._commit_seconds.observe(time.perf_counter() - started)
            self._group_size.observe(len(rows))
        if commit.checkpoint is not None:
            self._checkpoint_seq, self._checkpoint_time = self._seq, time.monotonic()
            self.checkpoints += 1
        self.commits += 1
        _resolve(batch, results, [row.seq for row in rows])

    # ------------------------------------------------------------------------------ reads

    @property
    def shared(self) -> bool:
        """Whether other writers (other servers) may append to this ledger too (PostgreSQL)."""
        return self._store.shared

    def track_own(self) -> None:
        """From now on, remember the seqs of this writer's commits for :meth:`take_own`."""
        with self._own_lock:
            if self._own is None:
                self._own = deque()

    def take_own(self) -> list[tuple[int, int]]:
        """The seq ranges (first, last) this writer committed since the last call, in seq
        order (after :meth:`track_own`; none before it)."""
        with self._own_lock:
            if not self._own:
                return []
            taken = list(self._own)
            self._own.clear()
            return taken

    def _reader(self) -> LedgerView:
        view: LedgerView | None = getattr(self._readers, "view", None)
        if view is None:
            view = self._readers.view = self._store.reader()
            with self._views_lock:
                self._views.append(view)
        return view

    def entries_for(self, decision_id: str) -> list[Row]:
        """The rows of ``decision_id`` (its decisions and outcomes) in seq order."""
        return self._reader().rows_for(decision_id)

    def health(self) -> LedgerHealth:
        """Rows, bytes, commit and group-size counts, and the last verification, as of now
        (two ``stat`` calls and a copy of the counts: cheap enough for every scrape)."""
        size = self._store.size()
        with self._health_lock:
            return LedgerHealth(
                rows=self._seq,
                bytes=size,
                commit_seconds=self._commit_seconds.snapshot(),
                group_size=self._group_size.snapshot(),
                verified=self._verifier.last,
            )

    def verify_tail(self) -> Verified:
        """Check the chain's tail again (:meth:`TailVerifier.verify`), on a read-only
        connection while the writer goes on; record and return the result."""
        return self._verifier.verify()

    def close(self) -> None:
        self._verifier.stop()
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._storage.close()
        with self._views_lock:
            views, self._views = self._views, []
            self._readers = threading.local()  # a read after close opens a view again
        for view in views:
            view.close()


def _resolve(batch: _Batch, results: list[Appended], seqs: Sequence[int]) -> None:
    """Resolve each call of ``batch``: its entries' ``results`` with the committed ``seqs``
    (in the order of the entries that were written) in place of the placeholders."""
    written = iter(seqs)
    for call, mine in zip(batch, results, strict=True):
        call.future.set_result([r if isinstance(r, Exception) else next(written) for r in mine])
