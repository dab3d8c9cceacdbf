"""The storage seam of the ledger: :func:`open_store` picks the backend for a location, and
every backend (``store``, tests/ledger_backends.py) keeps the contract the writer relies on: a
commit is all or nothing, one chain whoever writes (one writer at a time, or appends serialised
on the head), rows read back exactly as written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from features.errors import ConfigError, FailedPrecondition
from scoring.ledger import (
    Checkpoint,
    Commit,
    Head,
    Row,
    SqliteStore,
    open_store,
)
from tests.ledger_backends import Backend

pytest_plugins = ("tests.ledger_fixtures",)  # the store and sqlite_store fixtures


def rows(first: int, n: int, prev: str = "0" * 64) -> list[Row]:
    """``n`` rows from seq ``first``, chained by made-up hashes (the store does not check)."""
    made = []
    for seq in range(first, first + n):
        stored: str | bytes = b"\x01payload" if seq % 2 else '{"text":true}'
        made.append(Row(seq, "decision", f"d{seq}", "2026-01-01", stored, prev, f"h{seq}", "k1"))
        prev = f"h{seq}"
    return made


def test_a_path_or_a_sqlite_url_is_a_sqlite_file(tmp_path: Path) -> None:
    file = tmp_path / "ledger.sqlite"
    for location in (file, str(file), f"sqlite:///{file}"):
        opened = open_store(location)
        assert isinstance(opened, SqliteStore)
        assert opened.path == file
    relative = open_store("sqlite:///var/ledger.sqlite")
    assert isinstance(relative, SqliteStore)
    assert relative.path == Path("var/ledger.sqlite")  # three slashes: relative, as SQLAlchemy


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("mysql://ledger@db/centinela", "no ledger backend for mysql://"),
        ("sqlite://", "a SQLite ledger URL is sqlite:///path/to/file"),
        ("sqlite://host/file", "a SQLite ledger URL is sqlite:///path/to/file"),
    ],
)
def test_an_unknown_location_is_refused(location: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        open_store(location)


def test_a_commit_is_stored_whole_and_read_back_as_written(store: Backend) -> None:
    opened = open_store(store.location)
    assert not opened.exists()
    writer = opened.writer()
    try:
        assert opened.exists()
        assert (writer.last_seq(), writer.head(), writer.checkpoints()) == (0, None, {})
        written = rows(1, 4)
        checkpoint = Checkpoint(4, "h4", "k1", "2026-01-01", "signer", "signature")
        writer.write(Commit(written, Head(4, "h4", "k1", "mac"), checkpoint))
        reader = opened.reader()
        try:
            assert list(reader.rows()) == written  # bytes stay bytes, text stays text
            assert reader.rows_for("d3") == [written[2]]
            assert reader.head() == Head(4, "h4", "k1", "mac")
            assert reader.checkpoints() == {4: checkpoint}
            assert (reader.last_seq(), reader.hash_at(2), reader.link_at(3)) == (
                4,
                "h2",
                ("h3", "k1"),
            )
            assert reader.key_ids() == {"k1"}
        finally:
            reader.close()
        # A failed commit (a seq taken) leaves nothing of itself behind, not even the head.
        with pytest.raises(opened.error):
            writer.write(Commit(rows(4, 2, prev="h3"), Head(5, "h5", "k1", "mac")))
        assert (writer.last_seq(), writer.head()) == (4, Head(4, "h4", "k1", "mac"))
        assert opened.size() > 0
    finally:
        writer.close()


def test_a_postgresql_url_is_a_postgresql_database_named_without_its_password() -> None:
    from scoring.ledger.postgres import PostgresStore

    for url in ("postgresql://ledger@db:5433/centinela", "postgres://db/centinela"):
        opened = open_store(url)
        assert isinstance(opened, PostgresStore)
        assert (opened.url, opened.location, opened.shared) == (url, url, True)
    secret = open_store("postgresql://ledger:s3cret@db/centinela?password=s3cret&sslmode=require")
    assert "s3cret" not in secret.location
    assert secret.location == "postgresql://ledger:***@db/centinela?password=***&sslmode=require"


def on_head(n: int) -> Callable[[int, str], Commit]:
    """What a writer appends: ``n`` rows chained on from the head it is given, and the head."""

    def chain(seq: int, last: str) -> Commit:
        made = rows(seq + 1, n, last)
        return Commit(made, Head(made[-1].seq, made[-1].hash, "k1", "mac"))

    return chain


def test_one_writer_at_a_time_or_appends_serialised_on_the_head(store: Backend) -> None:
    opened = open_store(store.location)
    first = opened.writer()
    try:
        if not opened.shared:
            with pytest.raises(FailedPrecondition, match="a ledger has one writer"):
                open_store(store.location).writer()
        else:  # a second writer is let in; its appends follow the head the first one moved
            second = open_store(store.location).writer()
            try:
                first.append(on_head(2), 0, "0" * 64)
                second.append(on_head(1), 0, "0" * 64)  # its own view of the head is stale
                assert [(r.seq, r.prev_hash) for r in second.rows()] == [
                    (1, "0" * 64),
                    (2, "h1"),
                    (3, "h2"),
                ]
                assert first.head() == Head(3, "h3", "k1", "mac")
            finally:
                second.close()
    finally:
        first.close()
    open_store(store.location).writer().close()  # free once the first is closed
