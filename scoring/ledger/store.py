"""The storage seam of the ledger: what the writer, verification and the readers need from
where the rows live, and :func:`open_store`, which picks the backend for a location.

A backend is one module with a class that satisfies :class:`LedgerStore`
(:class:`scoring.ledger.sqlite.SqliteStore`, :class:`scoring.ledger.postgres.PostgresStore`)
and one entry in :data:`_BACKENDS`. Everything above this seam (the chain and its verification,
group commit, checkpoints, replay, export) is written against these protocols only. A backend
keeps the ledger's guarantees: :meth:`LedgerWriter.write` and :meth:`LedgerWriter.append` are
one transaction each, durable when they return; every writer extends one chain, either because
:meth:`LedgerStore.writer` admits one writer at a time (SQLite: ``shared`` False) or because
appends are serialised on the chain's head inside the transaction (PostgreSQL: ``shared`` True);
a view reads rows back exactly as written (``bytes`` for a compact record, ``str`` for the JSON
text of rows from before compact records).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from features.errors import ConfigError
from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.record import Commit, Head, Row
from scoring.ledger.sqlite import SqliteStore


class LedgerView(Protocol):
    """Reads of one ledger. Each read sees the ledger as it is then, unless made inside
    :meth:`snapshot`. What a ledger from before keys lacks reads as None (or nothing)."""

    def last_seq(self) -> int:
        """The last row's seq (rows are numbered from 1 without gaps); 0 when there are none."""
        ...

    def first_keyed_seq(self) -> int | None:
        """The first row with a key id (None: no row has one)."""
        ...

    def first_unkeyed_seq(self, after: int) -> int | None:
        """The first row after seq ``after`` without a key id."""
        ...

    def last_unkeyed_seq(self, before: int) -> int:
        """The last row before seq ``before`` without a key id (0: none)."""
        ...

    def hash_at(self, seq: int) -> str | None:
        """The ``hash`` of row ``seq`` (None: there is no such row)."""
        ...

    def link_at(self, seq: int) -> tuple[str, str | None] | None:
        """The ``hash`` and key id of row ``seq`` (None: there is no such row)."""
        ...

    def rows(self, first: int = 1) -> Iterator[Row]:
        """The rows from seq ``first`` on, in seq order, read as they are iterated."""
        ...

    def rows_for(self, decision_id: str) -> list[Row]:
        """The rows of one decision id (its decisions and outcomes), in seq order."""
        ...

    def key_ids(self) -> set[str]:
        """The key ids of the rows."""
        ...

    def checkpoints(self) -> dict[int, Checkpoint]:
        """The stored checkpoints by seq, in seq order."""
        ...

    def tracks_head(self) -> bool:
        """Whether the ledger keeps a head at all (False: nothing was ever written to it)."""
        ...

    def head(self) -> Head | None:
        """The stored head (None: there is none)."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Every read inside sees one consistent state while the writer goes on."""
        ...

    def close(self) -> None: ...


class LedgerWriter(LedgerView, Protocol):
    """A writer's connection; :meth:`close` lets another writer in (where only one may be)."""

    def write(self, commit: Commit) -> None:
        """Store ``commit`` in one transaction, durable when this returns; on a failure (raised
        as :attr:`LedgerStore.error`) none of it is stored."""
        ...

    def append(self, chain: Callable[[int, str], Commit], seq: int, last: str) -> Commit:
        """Store the commit ``chain(head_seq, head_hash)`` makes from the chain's head, as
        :meth:`write` does, and return it. ``seq`` and ``last`` are the head as this writer
        last left it: the head itself where the writer is the only one; where writers share
        the ledger, the head is read again with its lock held for the transaction, so rows are
        always chained on from the head they follow. ``chain`` may be called in the transaction
        (with locks held): it only numbers and MACs."""
        ...


class LedgerStore(Protocol):
    """Where one ledger lives."""

    @property
    def kind(self) -> str:
        """What such a ledger is, as messages name it ("SQLite database")."""
        ...

    @property
    def shared(self) -> bool:
        """Whether several writers may append at once (False: :meth:`writer` admits one)."""
        ...

    @property
    def error(self) -> type[Exception]:
        """The base of what the backend raises when a read or write fails."""
        ...

    @property
    def location(self) -> str:
        """Where the ledger is, as messages name it."""
        ...

    def exists(self) -> bool: ...

    def size(self) -> int:
        """Bytes the ledger takes, cheap enough for every metrics scrape."""
        ...

    def writer(self) -> LedgerWriter:
        """The writer, storage created or brought up to date; FailedPrecondition naming the
        holder when another writer has the ledger, ConfigError when it cannot be opened."""
        ...

    def reader(self) -> LedgerView:
        """A read-only view, for one thread at a time (raises :attr:`error`)."""
        ...


def _sqlite(url: str, rest: str) -> LedgerStore:
    """``sqlite:///relative/path`` or ``sqlite:////absolute/path``, as SQLAlchemy spells them."""
    path = rest.removeprefix("/")
    if not rest.startswith("/") or not path:
        raise ConfigError(f"ledger {url}: a SQLite ledger URL is sqlite:///path/to/file")
    return SqliteStore(Path(path))


def _postgres(url: str, rest: str) -> LedgerStore:
    """``postgresql://user@host:port/database`` (libpq's URL, its parameters and environment)."""
    from scoring.ledger.postgres import PostgresStore  # psycopg only when a ledger needs it

    return PostgresStore(url)


_BACKENDS: dict[str, Callable[[str, str], LedgerStore]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}
"""Backend by URL scheme: given the whole URL and what follows ``scheme://``."""
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)


def open_store(location: str | Path) -> LedgerStore:
    """The store at ``location``: a URL (``sqlite:///path``, ``postgresql://host/database``) or
    a plain path of a SQLite file (a :class:`~pathlib.Path`, or a string without a scheme)."""
    if not isinstance(location, str) or (url := _URL.fullmatch(location)) is None:
        return SqliteStore(Path(location))
    backend = _BACKENDS.get(url["scheme"])
    if backend is None:
        raise ConfigError(
            f"ledger {location}: no ledger backend for {url['scheme']}:// "
            f"(known: {', '.join(f'{s}://' for s in _BACKENDS)})"
        )
    return backend(location, url["rest"])


@contextmanager
def reading(location: str | Path) -> Iterator[LedgerView]:
    """A read-only view of the existing ledger at ``location``, closed on leaving; ConfigError
    when there is none or it cannot be opened, and when a read fails."""
    store = open_store(location)
    if not store.exists():
        raise ConfigError(f"ledger {store.location} does not exist")
    try:
        view = store.reader()
    except store.error as exc:
        raise ConfigError(f"ledger {store.location}: cannot open ({exc})") from exc
    try:
        yield view
    except store.error as exc:
        raise ConfigError(f"ledger {store.location}: not a usable {store.kind} ({exc})") from exc
    finally:
        view.close()
