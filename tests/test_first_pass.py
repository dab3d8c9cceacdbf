"""The first pass of a bulk run in two processes (every other chunk in a child process) keeps
what one process keeps: the same keys in chunk order and the same kept files; a failed child
is a clear error, not a hang."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from features.errors import ConfigError, FailedPrecondition
from features.tables import scan_table, stream_tables
from features.watchlist import load_watchlist
from scoring.first_pass import first_pass


def shuffled(world: Path, data: Path) -> Path:
    """The world's tables out of order, so the stream reads an ordered copy of them."""
    data.mkdir()
    for table, seed in (("shipments", 3), ("goods", 4), ("inspections", 5)):
        frame = scan_table(world, table).collect().sample(fraction=1.0, shuffle=True, seed=seed)
        frame.write_parquet(data / f"{table}.parquet")
    return data


@pytest.mark.parametrize("ordered", [True, False])
def test_two_processes_keep_what_one_process_keeps(
    world: Path, tmp_path: Path, ordered: bool
) -> None:
    data = world if ordered else shuffled(world, tmp_path / "shuffled")
    stream = stream_tables(data, tmp_path / "work", chunk_rows=700)  # 9 chunks, the last short
    watchlist = load_watchlist()
    one = first_pass(stream, watchlist, tmp_path / "one")
    two = first_pass(stream, watchlist, tmp_path / "two", processes=2)
    assert (tmp_path / "work" / "shipments.parquet").exists() is not ordered
    assert len(two.kept) == len(one.kept) == 9
    assert [p.name for p in two.kept] == [p.name for p in one.kept]
    assert all(p.parent == tmp_path / "two" for p in two.kept)
    assert [p.read_bytes() for p in two.kept] == [p.read_bytes() for p in one.kept]
    assert len(two.keyed.shipment_id) == 6000
    assert two.keyed.shipment_id == one.keyed.shipment_id
    assert two.keyed.declared_at.tolist() == one.keyed.declared_at.tolist()
    assert two.keyed.keys == one.keyed.keys
    assert two.keyed.families == one.keyed.families


def test_a_failed_child_is_an_error_with_its_stderr(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'the disk is full' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    stream = stream_tables(world, tmp_path / "work", chunk_rows=700)
    with pytest.raises(FailedPrecondition, match=r"exit status 3\): the disk is full"):
        first_pass(stream, load_watchlist(), tmp_path / "kept", processes=2)


def test_two_processes_need_a_directory_to_keep_chunks_in(world: Path, tmp_path: Path) -> None:
    stream = stream_tables(world, tmp_path / "work", chunk_rows=700)
    with pytest.raises(ConfigError, match="2 with a directory"):
        first_pass(stream, load_watchlist(), processes=2)
