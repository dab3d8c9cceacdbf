"""The ledger's storage backends under test (their fixtures: tests/ledger_fixtures.py).

A backend under test gives the location the code under test is handed (:attr:`location`), the
place its key files are kept (:attr:`beside`), and raw access to its tables (:meth:`execute`,
:meth:`query`) as anyone who can write the storage has it: the attacker of the tamper tests.
The SQL is SQLite's and PostgreSQL's alike, parameters written ``?``.

:data:`BACKENDS` names them: the SQLite forms (:data:`SQLITE_FORMS`, made from a directory) and
``postgresql`` (:class:`PostgresBackend`, a fresh database of the session's server,
tests/postgres.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scoring.ledger import (
    Ledger,
    VerifyResult,
    default_key_file,
    default_signing_key_file,
    verify,
)
from scoring.ledger_keys import (
    KeyRing,
    add_key,
    generate_signing_key,
    load_key_ring,
    load_signing_key,
)


def beside(path: Path) -> tuple[KeyRing, Ed25519PrivateKey]:
    """The MAC key ring and signing key in their default places beside the ledger at ``path``
    (made on first use), where ``verify(path)`` and ``centinela ledger verify`` find them."""
    key_file, signing_file = default_key_file(path), default_signing_key_file(path)
    if not key_file.exists():
        add_key(key_file)
    if not signing_file.exists():
        generate_signing_key(signing_file)
    return load_key_ring(key_file), load_signing_key(signing_file)


class Backend(Protocol):
    """One ledger storage under test."""

    location: str | Path  # what Ledger, verify, export, ... are given
    beside: Path  # the key files are default_key_file(beside) and default_signing_key_file(beside)

    def execute(self, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        """Run ``statements`` (SQL, or SQL with its parameters) in one transaction."""
        ...

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]: ...


class SqliteBackend:
    """A ledger in a SQLite file under ``root``, given by its path or as a ``sqlite:///`` URL."""

    def __init__(self, root: Path, *, as_url: bool) -> None:
        self.file = self.beside = root / "ledger.sqlite"
        self.location: str | Path = f"sqlite:///{self.file}" if as_url else self.file

    def execute(self, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        conn = sqlite3.connect(self.file)
        try:
            for statement in statements:
                sql, params = (statement, ()) if isinstance(statement, str) else statement
                conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.file)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


class PostgresBackend:
    """A ledger in a fresh database of a PostgreSQL server, its key files under ``root``."""

    def __init__(self, url: str, root: Path) -> None:
        self.location: str | Path = url
        self.url = url
        self.beside = root / "ledger"

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        import psycopg

        with psycopg.connect(self.url) as conn, conn.cursor() as cur:  # commits on leaving
            yield cur

    def execute(self, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        with self._cursor() as cur:
            for statement in statements:
                sql, params = (statement, ()) if isinstance(statement, str) else statement
                cur.execute(sql.replace("?", "%s"), params)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return [tuple(r) for r in cur.fetchall()]


SQLITE_FORMS: dict[str, Callable[[Path], SqliteBackend]] = {
    "sqlite-path": lambda root: SqliteBackend(root, as_url=False),
    "sqlite-url": lambda root: SqliteBackend(root, as_url=True),
}
POSTGRES = "postgresql"
BACKENDS: tuple[str, ...] = (*SQLITE_FORMS, POSTGRES)


def open_ledger_in(store: Backend, **options: Any) -> Ledger:
    """A writer on ``store`` with the keys kept beside it."""
    return Ledger(store.location, *beside(store.beside), **options)


def verified(store: Backend) -> VerifyResult:
    """:func:`verify` of the whole of ``store``, with the keys kept beside it."""
    keys, signing = beside(store.beside)
    return verify(store.location, keys, [signing.public_key()])
