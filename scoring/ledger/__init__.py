"""The decision ledger: every decision and outcome, durable before the reply, chained with a
keyed MAC and anchored by signed checkpoints.

The package, by concern (each module's docstring has the details):

- :mod:`~scoring.ledger.record`: entries, rows and the head; the *compact record* format of
  payloads (canonical JSON, Zstandard with a frozen preset dictionary,
  :mod:`~scoring.ledger.dictionary`; raw deflate in records written before) and rows from before
  compact records (JSON text).
- :mod:`~scoring.ledger.chain`: the MAC chain of rows and head, and :func:`check`, which
  verifies it; :mod:`~scoring.ledger.checkpoint`: signed checkpoints and witness files.
- :mod:`~scoring.ledger.store`: the storage seam (:class:`LedgerStore`, :func:`open_store`:
  a SQLite file's path, a ``sqlite:///`` URL or a ``postgresql://`` URL);
  :mod:`~scoring.ledger.sqlite`: the SQLite backend (WAL, ``synchronous=FULL``, files 0600, one
  writer per file, the embedded default); :mod:`~scoring.ledger.postgres`: the PostgreSQL
  backend (``synchronous_commit=on``, one database shared by several writers, their appends
  serialised on the chain's head).
- :mod:`~scoring.ledger.writer`: :class:`Ledger`, the group-committing writer;
  :mod:`~scoring.ledger.health`: its figures for the metrics endpoint and its later checks of
  the chain's tail; :mod:`~scoring.ledger.config`: keys beside the ledger and
  :func:`open_ledger` from the settings.
- :mod:`~scoring.ledger.audit`: :func:`verify`, :func:`latest_checkpoint`, :func:`seal`;
  :mod:`~scoring.ledger.contents`, :mod:`~scoring.ledger.replay`,
  :mod:`~scoring.ledger.export`: the ledger read back into entity state and training tables;
  :mod:`~scoring.ledger.follow`: where servers share the ledger, the other servers' rows
  applied to this one's entity state as they are committed.

**The keys.** Each row is MACed under a key id of a key ring kept outside the database
(:mod:`scoring.ledger_keys`); the database holds only key ids, so rotation is a new key id from
some seq on, and verifying needs every key it meets. Every ``checkpoint_rows`` rows or
``checkpoint_seconds`` seconds (and when the writer closes) the writer stores a checkpoint
signed with an Ed25519 key; ``centinela ledger checkpoint --out FILE`` exports the latest one,
with the public key, for an outside witness to keep.

**Threat model**, by what an adversary holds:

- *Write access to the file, no keys* (a DBA, a backup, a stolen disk image put back): cannot
  edit, delete, reorder or append a row and re-chain, because every later MAC needs the key
  (recomputing plain SHA-256 or MACs under a guessed key fails at the first changed row); cannot
  cut rows off the end, because the head's MAC needs the key; cannot strip the key ids and pass
  the ledger off as an old unkeyed one, because unkeyed rows are accepted only as a prefix
  sealed by a checkpoint signed with the signing key. What such an adversary *can* do is put
  back an older copy of the whole file, or delete it: both are consistent states the service
  once wrote. Only a checkpoint held outside catches them (the witness, below).
- *The MAC key* (the service itself, or whoever takes its host): can write any chain. The
  signing key usually sits beside it, so checkpoints in the file prove nothing against this
  adversary either. A **witnessed checkpoint**, exported earlier and kept where the service
  cannot reach (another team, a ticket, a notary), pins the whole chain up to its seq: the
  chain's hash at that seq depends on every earlier row, so a rollback, a wipe or a rewrite of
  any row at or before it is caught, even by someone holding both keys.
- *The public key only* (a witness): can check that an exported checkpoint is genuine, and
  cannot forge one; whether it is still in the chain is checked by ``ledger verify --witness``
  (or the server's ``ledger_witness_file``), which needs the MAC keys.

All of this holds only while the keys are out of the file writer's reach. By default (no key
settings) both are generated beside the ledger, which keeps ``make run`` and the tests working
but protects nothing against someone who can read that directory: in production point
``ledger_key_file`` / ``CENTINELA_LEDGER_KEY`` and ``ledger_signing_key_file`` at secrets the
ledger's other writers cannot read.

:func:`verify` checks the MAC chain, the head, every checkpoint (signature, and that it matches
the chain at its seq) and optionally a witnessed checkpoint, and names the first bad row. A
server opening the ledger checks its tail (the last ``check_rows`` rows back to the latest
checkpoint, the head, the seal, a configured witness) and refuses to append to a broken chain.
"""

from scoring.ledger.audit import latest_checkpoint, seal, verify
from scoring.ledger.chain import (
    COMPACT_ROW_DOMAIN,
    GENESIS,
    HEAD_DOMAIN,
    ROW_DOMAIN,
    VerifyResult,
    check,
    head_mac,
    row_hash,
    row_mac,
)
from scoring.ledger.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    read_checkpoint,
    sign_checkpoint,
    trusted_keys,
    write_checkpoint,
)
from scoring.ledger.config import (
    default_key_file,
    default_key_ring,
    default_public_keys,
    default_signing_key,
    default_signing_key_file,
    open_ledger,
)
from scoring.ledger.contents import (
    LedgerContents,
    decision_frames,
    latest_decisions,
    read_contents,
    read_decision,
)
from scoring.ledger.export import ExportResult, export
from scoring.ledger.follow import FOLLOW_DELAY_BUCKETS, Follower, FollowHealth
from scoring.ledger.health import (
    COMMIT_SECONDS_BUCKETS,
    GROUP_SIZE_BUCKETS,
    Buckets,
    LedgerHealth,
    TailVerifier,
    Verified,
)
from scoring.ledger.record import (
    DEFLATE_1,
    DICTIONARIES,
    ZSTD_2,
    Commit,
    Entry,
    Head,
    PayloadError,
    Row,
    canonical_json,
    encode_payload,
    payload_text,
)
from scoring.ledger.replay import replay_into
from scoring.ledger.sqlite import SqliteStore, WriterLock, connect, connect_or_release, iter_rows
from scoring.ledger.store import LedgerStore, LedgerView, LedgerWriter, open_store, reading
from scoring.ledger.writer import Ledger

__all__ = [
    "CHECKPOINT_FORMAT",
    "COMMIT_SECONDS_BUCKETS",
    "COMPACT_ROW_DOMAIN",
    "DEFLATE_1",
    "DICTIONARIES",
    "FOLLOW_DELAY_BUCKETS",
    "GENESIS",
    "GROUP_SIZE_BUCKETS",
    "HEAD_DOMAIN",
    "ROW_DOMAIN",
    "ZSTD_2",
    "Buckets",
    "Checkpoint",
    "Commit",
    "Entry",
    "ExportResult",
    "FollowHealth",
    "Follower",
    "Head",
    "Ledger",
    "LedgerContents",
    "LedgerHealth",
    "LedgerStore",
    "LedgerView",
    "LedgerWriter",
    "PayloadError",
    "Row",
    "SqliteStore",
    "TailVerifier",
    "Verified",
    "VerifyResult",
    "WriterLock",
    "canonical_json",
    "check",
    "connect",
    "connect_or_release",
    "decision_frames",
    "default_key_file",
    "default_key_ring",
    "default_public_keys",
    "default_signing_key",
    "default_signing_key_file",
    "encode_payload",
    "export",
    "head_mac",
    "iter_rows",
    "latest_checkpoint",
    "latest_decisions",
    "open_ledger",
    "open_store",
    "payload_text",
    "read_checkpoint",
    "read_contents",
    "read_decision",
    "reading",
    "replay_into",
    "row_hash",
    "row_mac",
    "seal",
    "sign_checkpoint",
    "trusted_keys",
    "verify",
    "write_checkpoint",
]
