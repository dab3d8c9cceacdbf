"""Compact records: every payload is stored as a BLOB of a format byte and a Zstandard frame
with a preset dictionary (raw deflate in records written before), decodes back to exactly the
JSON the service produced, takes at most 1.5 KB per decision on disk, is chained over the bytes
stored, and ledgers written as JSON text (before compact records) still verify, replay and
export, alone or with compact rows after them.

Integrity tests run once per storage backend (``store``, tests/ledger_backends.py); those that
use SQLite's own SQL (storage classes) once per form of a SQLite location (``sqlite_store``)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import math
import os
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zstandard import DICT_TYPE_RAWCONTENT, ZstdCompressionDict, ZstdCompressor, ZstdDecompressor

from features.errors import ConfigError
from features.live import shipments_from_frames
from features.records import Shipment
from features.state import EntityState
from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.ledger import (
    COMPACT_ROW_DOMAIN,
    DEFLATE_1,
    DICTIONARIES,
    ROW_DOMAIN,
    ZSTD_2,
    Entry,
    Ledger,
    PayloadError,
    canonical_json,
    encode_payload,
    export,
    payload_text,
    read_contents,
    replay_into,
    row_mac,
    verify,
)
from scoring.ledger.sqlite import PAGE_SIZE
from scoring.service import Outcome, ScoringService
from tests.conftest import server_settings
from tests.ledger_backends import Backend, SqliteBackend, beside, open_ledger_in, verified
from tests.support import make_shipment
from tests.test_ledger import decision, outcome

pytest_plugins = ("tests.ledger_fixtures",)  # the store and sqlite_store fixtures

# Dictionary 1 is frozen: every compact record written with format byte 1 or 2 needs these bytes.
DICTIONARY_1_SHA256 = "e1957040c1f7f26bcfa3699af725566f7834477b96ce293048c8936b14473625"


def world_shipments(world: Path, n: int) -> list[Shipment]:
    ships = scan_table(world, "shipments").sort("declared_at").collect().tail(n)
    goods = scan_table(world, "goods").filter(
        pl.col("shipment_id").is_in(ships["shipment_id"].implode())
    )
    return shipments_from_frames(ships, goods.collect())


def on_disk(db: Path) -> int:
    """Bytes of the ledger file and its WAL, after the WAL is checkpointed into the file."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(
        os.path.getsize(p) for p in (db, db.with_name(db.name + "-wal")) if os.path.exists(p)
    )


def storage(db: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, typeof(payload) FROM ledger ORDER BY seq").fetchall()
    conn.close()
    return rows


def set_payload(store: Backend, seq: int, value: object) -> None:
    store.execute(("UPDATE ledger SET payload = ? WHERE seq = ?", (value, seq)))


def test_the_dictionary_is_frozen() -> None:
    assert set(DICTIONARIES) == {DEFLATE_1, ZSTD_2} == {1, 2}
    for dictionary in DICTIONARIES.values():
        assert hashlib.sha256(dictionary).hexdigest() == DICTIONARY_1_SHA256


def test_decisions_through_the_service_round_trip_and_are_compact(
    registry: Path, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ScoringService(server_settings(registry, tmp_path, data_dir=world))
    service.load()
    ledger = service.ledger
    assert ledger is not None
    written: list[Entry] = []
    append, append_many = ledger.append, ledger.append_many

    def copied(entry: Entry) -> Entry:
        return Entry(entry.kind, entry.decision_id, copy.deepcopy(entry.payload))

    def spy(entry: Entry) -> Any:
        written.append(copied(entry))
        return append(entry)

    def spy_many(entries: Sequence[Entry]) -> Any:
        written.extend(copied(e) for e in entries)
        return append_many(entries)

    monkeypatch.setattr(ledger, "append", spy)
    monkeypatch.setattr(ledger, "append_many", spy_many)
    shipments = world_shipments(world, 600)
    decisions = [d for i in range(0, 600, 50) for d in service.score(shipments[i : i + 50])]
    for i, d in enumerate(decisions[:20]):  # record_outcome reads the decision back
        service.record_outcome(Outcome(d.decision_id, True, "positive" if i % 4 else "negative"))
    service.close()
    db = tmp_path / "ledger.sqlite"

    # Lossless: every reader gets back exactly the payload the service produced.
    assert len(written) == 620
    contents = read_contents(db)
    by_id = {e.decision_id: e.payload for e in written if e.kind == "decision"}
    assert contents.decisions == by_id
    outcomes = [e.payload for e in written if e.kind == "outcome"]
    assert [
        {k: v for k, v in o.items() if k != "recorded_at"}
        for versions in contents.outcomes.values()
        for o in versions
    ] == outcomes
    assert any(p["declared"] is not None for p in by_id.values())  # both forms are kept
    reopened = Ledger(db, *beside(db))
    for entry in written[:50]:
        (row,) = [r for r in reopened.entries_for(entry.decision_id) if r.kind == entry.kind]
        assert isinstance(row.stored, bytes)
        assert row.stored[0] == ZSTD_2
        assert row.payload == canonical_json(entry.payload)  # the very text the MAC was over
        assert json.loads(row.payload) == entry.payload
    reopened.close()

    # Compact: every row a BLOB; at most 1.5 KB per decision on disk (the JSON is ~4 KB), in
    # pages of 16 KB (4 KB pages held three rows of about 1 KB each).
    assert {kind for _, kind in storage(db)} == {"blob"}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
    text = sum(len(canonical_json(e.payload).encode()) for e in written) / len(written)
    per_decision = on_disk(db) / len(decisions)
    assert text > 3000
    assert per_decision <= 1500, per_decision
    result = verify(db)
    assert (result.ok, result.rows) == (True, 620), result.problem
    assert export(db, tmp_path / "out").shipments == 600


JSON = st.recursive(
    st.none()
    | st.booleans()
    # What a payload holds: 64-bit integers and finite floats (the service writes null for a
    # value that is not finite); JSON has no infinities, and orjson refuses wider integers.
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_payload_round_trips(value: object) -> None:
    text = canonical_json(value)
    record = encode_payload(text)
    assert record[0] == ZSTD_2
    assert payload_text(record) == text
    assert json.loads(payload_text(record)) == value
    assert payload_text(deflate_record(text)) == text  # records written before zstd


def deflate_record(text: str) -> bytes:
    """A format-1 record, as the writer wrote them before format 2: raw deflate, level 6."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zdict=DICTIONARIES[DEFLATE_1])
    return bytes((DEFLATE_1,)) + deflate.compress(text.encode()) + deflate.flush()


def test_a_record_decodes_with_a_zstandard_library_and_the_dictionary_alone() -> None:
    """What the module docstring tells an auditor: Zstandard (zlib for format 1 records) and
    the dictionary, nothing else."""
    text = canonical_json(decision(make_shipment("SHP-9")))
    record = encode_payload(text)
    dictionary = ZstdCompressionDict(DICTIONARIES[record[0]], dict_type=DICT_TYPE_RAWCONTENT)
    assert ZstdDecompressor(dict_data=dictionary).decompress(record[1:]).decode() == text
    assert len(record) < len(text.encode()) / 2
    old = deflate_record(text)
    inflate = zlib.decompressobj(-15, zdict=DICTIONARIES[old[0]])
    assert inflate.decompress(old[1:]).decode() == text


@pytest.mark.parametrize(
    ("stored", "words"),
    [
        (b"", "an empty record"),
        (b"\x03" + encode_payload("{}")[1:], "format byte 3 is not a compact record format"),
        (encode_payload('{"a":1}')[:-2], "truncated"),
        (encode_payload('{"a":1}') + b"\x00", "bytes after it"),
        (encode_payload('{"a":1}') * 2, "bytes after it"),
        (b"\x02\xff\xff\xff", "corrupt"),
        (bytes((ZSTD_2,)) + ZstdCompressor(write_content_size=False).compress(b"{}"), "size"),
        (deflate_record('{"a":1}')[:-2], "truncated"),
        (deflate_record('{"a":1}') + b"\x00", "bytes after it"),
        (b"\x01\xff\xff\xff", "corrupt"),
    ],
)
def test_what_is_not_a_record_is_refused(stored: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        payload_text(stored)


def test_a_text_row_is_read_as_it_is() -> None:
    assert payload_text('{"i":1}') == '{"i":1}'


# ----------------------------------------------------------------------------- integrity


def fill_compact(store: Backend, n: int = 6) -> None:
    ledger = open_ledger_in(store)
    for i in range(n):
        payload = decision(make_shipment(f"SHP-{i}"))
        ledger.append(Entry("decision", f"d{i}", payload)).result(timeout=10)
    ledger.close()


def stored_at(store: Backend, seq: int) -> Any:
    ((value,),) = store.query("SELECT payload FROM ledger WHERE seq = ?", seq)
    return value


def flip_a_byte(record: bytes) -> bytes:
    return record[:-3] + bytes((record[-3] ^ 0x01,)) + record[-2:]


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (flip_a_byte, "row 3 was edited"),
        # The same JSON, stored as text: the MAC binds the storage class too.
        (payload_text, "row 3 was edited"),
        # Recompressed differently: the same text, other bytes on disk.
        (lambda r: deflate_record(payload_text(r)), "row 3 was edited"),
    ],
)
def test_verify_names_a_tampered_compact_row(store: Backend, tamper: Any, words: str) -> None:
    fill_compact(store)
    set_payload(store, 3, tamper(stored_at(store, 3)))
    result = verified(store)
    assert (result.ok, result.seq) == (False, 3), result.problem
    assert words in result.problem


def test_a_record_turned_into_text_that_is_not_utf8_is_named_not_a_crash(
    sqlite_store: SqliteBackend,
) -> None:
    """SQL's text functions turn a BLOB into TEXT that is not UTF-8 (``replace(payload, ...)``
    does): verify names the row instead of failing to read it."""
    fill_compact(sqlite_store)
    sqlite_store.execute("UPDATE ledger SET payload = CAST(payload AS TEXT) WHERE seq = 2")
    assert storage(sqlite_store.file)[1] == (2, "text")
    result = verified(sqlite_store)
    assert (result.ok, result.seq) == (False, 2), result.problem
    assert "row 2 was edited" in result.problem


def test_an_authentic_record_that_does_not_decode_is_named(store: Backend) -> None:
    """A row whose MAC holds but whose record this version cannot read (the key holder wrote
    it, or a newer version with a new format byte): verify names it, reading it says which."""
    fill_compact(store, 3)
    keys, _ = beside(store.beside)  # made by fill_compact
    ((seq, kind, did, at, prev),) = store.query(
        "SELECT seq, kind, decision_id, recorded_at, prev_hash FROM ledger WHERE seq = 2"
    )
    record = b"\x07" + encode_payload("{}")[1:]
    store.execute(
        (
            "UPDATE ledger SET payload = ?, hash = ? WHERE seq = 2",
            (record, row_mac(keys, "k1", prev, seq, kind, did, at, record)),
        )
    )
    result = verified(store)
    assert (result.ok, result.seq) == (False, 2)
    assert "row 2: format byte 7 is not a compact record format" in result.problem
    with pytest.raises(ConfigError, match="row 2: format byte 7"):
        read_contents(store.location)


# ------------------------------------------------------------- ledgers written as JSON text


def test_a_ledger_written_as_json_text_still_verifies_replays_and_exports(
    sqlite_store: SqliteBackend, tmp_path: Path
) -> None:
    """Rows written as JSON text (as every ledger before compact records), then compact rows
    after them by today's writer: one chain, read the same way."""
    db = sqlite_store
    x, y = make_shipment("X-1"), make_shipment("Y-1")
    old = open_ledger_in(db, compact=False)
    for entry in (
        Entry("decision", "dx1", decision(x, propensity=0.25)),
        Entry("outcome", "dx1", outcome(True, "positive")),
        Entry("decision", "dy1", decision(y)),
    ):
        old.append(entry).result(timeout=10)
    old.close()
    assert [kind for _, kind in storage(db.file)] == ["text"] * 3
    assert verified(db).ok

    # The text rows are the format written before compact records: the JSON itself, chained
    # under "centinela-ledger-row/2" over its UTF-8.
    keys, _ = beside(db.beside)
    ((seq, kind, did, at, payload, prev, digest),) = db.query(
        "SELECT seq, kind, decision_id, recorded_at, payload, prev_hash, hash FROM ledger "
        "WHERE seq = 2"
    )
    assert payload == canonical_json(outcome(True, "positive"))
    message = b"".join(
        len(p.encode()).to_bytes(8, "big") + p.encode()
        for p in (ROW_DOMAIN, "k1", prev, str(seq), kind, did, at, payload)
    )
    assert hmac.new(keys.keys["k1"], message, hashlib.sha256).hexdigest() == digest
    assert COMPACT_ROW_DOMAIN != ROW_DOMAIN

    new = open_ledger_in(db)  # today's writer chains on from the text rows
    new.append(Entry("outcome", "dy1", outcome(True, "negative"))).result(timeout=10)
    new.append(Entry("decision", "dx2", decision(x, propensity=0.5))).result(timeout=10)
    assert [r.kind for r in new.entries_for("dy1")] == ["decision", "outcome"]
    assert [type(r.stored) for r in new.entries_for("dy1")] == [str, bytes]
    assert json.loads(new.entries_for("dx1")[1].payload)["result"] == "positive"
    new.close()
    assert [kind for _, kind in storage(db.file)] == ["text"] * 3 + ["blob"] * 2
    result = verified(db)
    assert (result.ok, result.rows, result.keys) == (True, 5, {"k1": (1, 5)}), result.problem

    contents = read_contents(db.location)
    assert contents.decisions["dx1"] == decision(x, propensity=0.25)
    assert contents.outcomes["dy1"][0]["result"] == "negative"
    exported = export(db.location, tmp_path / "out")
    assert (exported.shipments, exported.inspections, exported.folded) == (2, 2, 1)
    state = EntityState.empty()
    replay_into(state, db.location, load_watchlist())
    assert (state.shipments, state.outcomes) == (2, 2)

    # An edit of a text row is still named, before the compact rows after it.
    set_payload(db, 2, canonical_json(outcome(True, "negative")))
    result = verified(db)
    assert (result.ok, result.seq) == (False, 2)
    assert "row 2 was edited" in result.problem


def test_float_text_survives_exactly() -> None:
    """Floats are stored as the shortest text that reads back as the same float."""
    values = [0.1, 1 / 3, 2.5e-308, 1.7976931348623157e308, math.pi, -0.0, 12345678.9]
    text = canonical_json({"v": values})
    decoded = json.loads(payload_text(encode_payload(text)))["v"]
    assert [v.hex() for v in decoded] == [v.hex() for v in values]
