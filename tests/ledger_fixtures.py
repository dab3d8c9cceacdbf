"""Fixtures over the ledger's storage backends (tests/ledger_backends.py): ``store`` runs a test
once per backend (the ledger's contract: what every backend must do alike), ``sqlite_store``
once per form of a SQLite location (what is SQLite's own: files, their modes, SQLite's SQL).

A test module uses them by naming this module a plugin:
``pytest_plugins = ("tests.ledger_fixtures",)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger_backends import BACKENDS, SQLITE_FORMS, Backend, SqliteBackend


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture(params=list(SQLITE_FORMS))
def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteBackend:
    return SQLITE_FORMS[request.param](tmp_path)
