"""Fixtures over the ledger's storage backends (tests/ledger_backends.py): ``store`` runs a test
once per backend (the ledger's contract: what every backend must do alike), ``sqlite_store``
once per form of a SQLite location (what is SQLite's own: files, their modes, SQLite's SQL),
``postgres_store`` on PostgreSQL alone (what is its own: several writers on one database).

PostgreSQL runs as a real server, one per test session (``postgres_server``, started the first
time a test needs it, tests/postgres.py), with a fresh database per test. Where its binaries
are missing those tests fail under ``CI=true``, naming what to install, and are skipped
elsewhere (a developer's machine without PostgreSQL).

A test module uses them by naming this module a plugin:
``pytest_plugins = ("tests.ledger_fixtures",)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ledger_backends import (
    BACKENDS,
    POSTGRES,
    SQLITE_FORMS,
    Backend,
    PostgresBackend,
    SqliteBackend,
)
from tests.postgres import PostgresServer, PostgresUnavailable


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI=true and no PostgreSQL server for the ledger's tests: {exc}")
        pytest.skip(f"no PostgreSQL server for the ledger's tests (CI would fail): {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_store(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[PostgresBackend]:
    url = postgres_server.create_database()
    try:
        yield PostgresBackend(url, tmp_path)
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == POSTGRES:
        backend: Backend = request.getfixturevalue("postgres_store")
        return backend
    return SQLITE_FORMS[request.param](tmp_path)


@pytest.fixture(params=list(SQLITE_FORMS))
def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteBackend:
    return SQLITE_FORMS[request.param](tmp_path)
