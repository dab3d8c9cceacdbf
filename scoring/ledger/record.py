"""What a ledger stores: entries as appended, rows as stored, the chain's head, what one commit
writes, and the compact record format of payloads.

A row's payload is the canonical JSON text of the entry (:func:`canonical_json`: sorted keys,
no spaces), stored as a *compact record*: a BLOB of one format byte (:data:`DEFLATE_1`) and the
text's UTF-8 compressed as raw deflate (RFC 1951, zlib level 6) with a preset dictionary of the
payloads' recurring keys and reason texts (:data:`DICTIONARIES`, frozen: a new dictionary is a
new format byte). Decoding gives back exactly the JSON text that was written, so
:attr:`Row.payload` is that text whatever the row's storage. Rows of ledgers written before
compact records hold the JSON itself as text (``str``); :func:`payload_text` reads both. Anyone
can decode a record with zlib alone: ``zlib.decompressobj(-15, zdict=DICTIONARIES[1])`` over the
bytes after the format byte.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.dictionary import DICTIONARY_1

DEFLATE_1 = 1
"""Format byte of a compact record: raw deflate of the JSON text with dictionary 1."""
DICTIONARIES: Mapping[int, bytes] = {DEFLATE_1: DICTIONARY_1}
"""Preset dictionaries of compact records by format byte."""
_LEVEL, _MEM_LEVEL = 6, 8  # zlib's defaults: at 9 a record is ~1% smaller for ~30% more CPU
_MAX_PAYLOAD = 64 << 20  # a record decoding to more than this is not one this code wrote


class PayloadError(ValueError):
    """A stored payload that is not a compact record this version can decode."""


def canonical_json(obj: Any) -> str:
    """The payload's stored JSON: keys sorted, no spaces, UTF-8 as is. orjson, because the
    standard library's encoder was the writer thread's largest cost (a decision's payload is
    about 3.7 KB of JSON). The MAC covers the stored bytes, so rows written by the standard
    encoder before still verify; every reader parses either with ``json.loads`` alike."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def encode_payload(text: str) -> bytes:
    """The compact record of a payload's JSON ``text`` (format :data:`DEFLATE_1`)."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, _MEM_LEVEL, zdict=DICTIONARY_1)
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
    """What a caller appends: a decision or an outcome, by decision id, with its payload."""

    kind: str
    decision_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the ledger as stored, its place in the chain included."""

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
class Head:
    """The chain's head as stored beside the rows: its last ``seq`` and ``hash``, with the MAC
    (:func:`scoring.ledger.chain.head_mac`) under ``key_id`` that makes cutting rows off the end
    detectable. ``key_id`` and ``mac`` are None in ledgers from before keys."""

    seq: int
    hash: str
    key_id: str | None
    mac: str | None


@dataclass(frozen=True, slots=True)
class Commit:
    """What one transaction stores, all of it or none: ``rows`` appended (numbered on from the
    head), the ``head`` set, a ``checkpoint`` added; each only if given."""

    rows: Sequence[Row] = ()
    head: Head | None = None
    checkpoint: Checkpoint | None = None


class Executes(Protocol):
    """A DB-API connection or cursor, as far as storing a commit needs one."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...


@dataclass(frozen=True, slots=True)
class CommitSql:
    """One backend's statements for the three parts of a :class:`Commit` (each in its
    placeholder style), and how a row becomes the values of ``insert_row``."""

    insert_row: str
    upsert_head: str
    insert_checkpoint: str
    row_values: Callable[[Row], tuple[Any, ...]]

    def store(self, db: Executes, commit: Commit) -> None:
        """The statements of ``commit``, in the transaction under way on ``db``."""
        if commit.rows:
            db.executemany(self.insert_row, [self.row_values(row) for row in commit.rows])
        if (head := commit.head) is not None:
            db.execute(self.upsert_head, (head.seq, head.hash, head.key_id, head.mac))
        if (cp := commit.checkpoint) is not None:
            db.execute(
                self.insert_checkpoint,
                (cp.seq, cp.head, cp.key_id, cp.recorded_at, cp.signer, cp.signature),
            )
