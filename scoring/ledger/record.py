"""What a ledger stores: entries as appended, rows as stored, the chain's head, what one commit
writes, and the compact record format of payloads.

A row's payload is the canonical JSON text of the entry (:func:`canonical_json`: sorted keys,
no spaces), stored as a *compact record*: a BLOB of one format byte and the text's UTF-8
compressed with a preset dictionary of the payloads' recurring keys and reason texts
(:data:`DICTIONARY_1`, frozen). New records are :data:`ZSTD_2`: a Zstandard frame (RFC 8878,
level 3, no checksum: the row's MAC covers the bytes) with the dictionary as raw content;
records written before it are :data:`DEFLATE_1`: raw deflate (RFC 1951) with the same
dictionary. Both decode back to exactly the JSON text that was written, so :attr:`Row.payload`
is that text whatever the row's storage. Rows of ledgers written before compact records hold the
JSON itself as text (``str``); :func:`payload_text` reads all three. Anyone can decode a record
with a Zstandard or zlib library and the dictionary: for format 2,
``zstandard.ZstdDecompressor(dict_data=ZstdCompressionDict(DICTIONARY_1,
dict_type=DICT_TYPE_RAWCONTENT))``; for format 1, ``zlib.decompressobj(-15,
zdict=DICTIONARY_1)``, each over the bytes after the format byte.

Why Zstandard: at level 3 it compresses a decision's 3.7 KB of JSON about 3.5 times faster than
deflate at level 6 did (the ledger writer's largest cost), at about 0.97 KB a record against
0.83 KB.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
import zstandard

from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.dictionary import DICTIONARY_1

DEFLATE_1 = 1
"""Format byte of a compact record: raw deflate of the JSON text with dictionary 1 (read only:
records written before :data:`ZSTD_2`)."""
ZSTD_2 = 2
"""Format byte of a compact record: a Zstandard frame of the JSON text with dictionary 1 as
raw content; what the writer writes."""
DICTIONARIES: Mapping[int, bytes] = {DEFLATE_1: DICTIONARY_1, ZSTD_2: DICTIONARY_1}
"""Preset dictionaries of compact records by format byte."""
_ZSTD_LEVEL = 3  # zstd's default; level 6 is ~2x the CPU for a record ~16% smaller
_MAX_PAYLOAD = 64 << 20  # a record decoding to more than this is not one this code wrote
_ZSTD_DICT = zstandard.ZstdCompressionDict(DICTIONARY_1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_ZSTD_DICT.precompute_compress(level=_ZSTD_LEVEL)  # once, not per record
T = TypeVar("T")


class PayloadError(ValueError):
    """A stored payload that is not a compact record this version can decode."""


def canonical_json(obj: Any) -> str:
    """The payload's stored JSON: keys sorted, no spaces, UTF-8 as is. orjson, because the
    standard library's encoder was the writer thread's largest cost (a decision's payload is
    about 3.7 KB of JSON). The MAC covers the stored bytes, so rows written by the standard
    encoder before still verify; every reader parses either with ``json.loads`` alike."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


# A zstd (de)compressor is not safe to share between threads: one of each per thread.
_compressors, _decompressors = threading.local(), threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(
        level=_ZSTD_LEVEL, dict_data=_ZSTD_DICT, write_checksum=False, write_dict_id=False
    )


def _decompressor() -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor(dict_data=_ZSTD_DICT)


def _zstd(cache: threading.local, make: Callable[[], T]) -> T:
    """This thread's (de)compressor from ``cache``, made by ``make`` on first use."""
    found: T | None = getattr(cache, "zstd", None)
    if found is None:
        found = cache.zstd = make()
    return found


def encode_payload(text: str) -> bytes:
    """The compact record of a payload's JSON ``text`` (format :data:`ZSTD_2`)."""
    return _ZSTD_HEADER + _zstd(_compressors, _compressor).compress(text.encode())


_ZSTD_HEADER = bytes((ZSTD_2,))


def payload_text(stored: str | bytes) -> str:
    """The JSON text of a stored payload: a compact record decoded, or the text of a row from
    before compact records as it is. Raises :class:`PayloadError` for anything else."""
    if isinstance(stored, str):
        return stored
    if not stored or stored[0] not in DICTIONARIES:
        found = f"format byte {stored[0]}" if stored else "an empty record"
        raise PayloadError(f"{found} is not a compact record format this version knows")
    try:
        data = _zstd_text(stored) if stored[0] == ZSTD_2 else _deflate_text(stored)
        return data.decode()
    except (zlib.error, zstandard.ZstdError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the compressed record is corrupt ({exc})") from None


def _deflate_text(stored: bytes) -> bytes:
    inflate = zlib.decompressobj(-15, zdict=DICTIONARY_1)
    data = inflate.decompress(memoryview(stored)[1:], _MAX_PAYLOAD)
    if inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        raise PayloadError("the compressed record is truncated, too long or has bytes after it")
    return data


def _zstd_text(stored: bytes) -> bytes:
    """The frame after the format byte, decoded: exactly one whole frame, nothing after it,
    whose header states its size (the writer always writes it), at most
    :data:`_MAX_PAYLOAD` bytes (libzstd checks the frame holds what its header says)."""
    frame = memoryview(stored)[1:]
    try:
        size = zstandard.frame_content_size(frame)
        if size < 0 or size > _MAX_PAYLOAD:
            raise PayloadError("the compressed record does not state a size this code writes")
        decompressor = _zstd(_decompressors, _decompressor).decompressobj()
        data = decompressor.decompress(frame)
    except zstandard.ZstdError as exc:
        raise PayloadError(f"the compressed record is corrupt ({exc})") from None
    if not decompressor.eof or decompressor.unused_data:
        raise PayloadError("the compressed record is truncated, too long or has bytes after it")
    return data


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
