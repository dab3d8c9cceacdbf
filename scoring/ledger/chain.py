"""The chain: how each row and the head are MACed, and :func:`check`, which verifies a chain.

Each row stores ``key_id`` and ``hash = HMAC-SHA256(key[key_id], "centinela-ledger-row/3" |
key_id | prev_hash | seq | kind | decision_id | recorded_at | payload)``, each part preceded by
its length in 8 bytes, where ``payload`` is the compact record's bytes exactly as stored and
``prev_hash`` is the previous row's ``hash`` (:func:`row_mac`). Rows stored as JSON text (before
compact records) are chained the same way under ``"centinela-ledger-row/2"`` with the text's
UTF-8 as ``payload``: the domain binds the MAC to the storage class, so a row cannot be passed
off as the other kind. The head holds the last seq and hash with a MAC of its own
(:func:`head_mac`), written in the same transaction as the rows, so rows cut off the end are
caught too. Rows from before keys are chained with plain SHA-256 (:func:`row_hash`) and are
accepted only as a prefix sealed by a signed checkpoint.

:func:`check` walks the rows (all, or a tail), the head, the seal of an unkeyed prefix, the
checkpoints and a witnessed checkpoint, and names the first bad row; it reads through a
:class:`scoring.ledger.store.LedgerView`, so it is the same for every backend.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.record import PayloadError, Row
from scoring.ledger.store import LedgerView
from scoring.ledger_keys import KeyRing

GENESIS = "0" * 64
ROW_DOMAIN = "centinela-ledger-row/2"  # rows stored as JSON text (before compact records)
COMPACT_ROW_DOMAIN = "centinela-ledger-row/3"  # rows stored as compact records
HEAD_DOMAIN = "centinela-ledger-head/2"


def row_hash(
    prev_hash: str, seq: int, kind: str, decision_id: str, recorded_at: str, payload: str
) -> str:
    """The unkeyed SHA-256 chain of ledgers written before keys (verified, never written)."""
    digest = hashlib.sha256()
    for part in (prev_hash, str(seq), kind, decision_id, recorded_at, payload):
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def row_mac(
    keys: KeyRing,
    key_id: str,
    prev_hash: str,
    seq: int,
    kind: str,
    decision_id: str,
    recorded_at: str,
    payload: str | bytes,
) -> str:
    """A keyed row's ``hash``: HMAC-SHA256 under ``key_id`` of the row and the previous hash.

    ``payload`` is the payload as stored: a compact record (bytes, under
    :data:`COMPACT_ROW_DOMAIN`) or the JSON text of a row from before compact records (under
    :data:`ROW_DOMAIN`)."""
    if isinstance(payload, str):
        return keys.mac(key_id, ROW_DOMAIN, key_id, prev_hash, str(seq), kind, decision_id,
                        recorded_at, payload)  # fmt: skip
    parts = (COMPACT_ROW_DOMAIN, key_id, prev_hash, str(seq), kind, decision_id, recorded_at)
    message = bytearray()
    for part in (*(p.encode() for p in parts), payload):
        message += len(part).to_bytes(8, "big") + part
    return hmac.new(keys.keys[key_id], message, hashlib.sha256).hexdigest()


def head_mac(keys: KeyRing, key_id: str, seq: int, head: str) -> str:
    """The head's MAC: the chain ends at ``seq`` with ``head``, says the key holder."""
    return keys.mac(key_id, HEAD_DOMAIN, key_id, str(seq), head)


# ------------------------------------------------------------------------------ verification


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int  # rows walked (all of them unless a tail was checked)
    problem: str = ""
    seq: int | None = None  # the first bad row, when one can be named
    last: int = 0  # the ledger's last seq
    unkeyed: int = 0  # rows 1..unkeyed were written before keys were configured
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key id -> first, last seq
    checkpoints: int = 0  # checkpoints whose signature and place in the chain were checked
    signers: tuple[str, ...] = ()  # fingerprints of the keys that signed them
    witnessed: int | None = None  # seq of the witnessed checkpoint found in the chain
    notes: tuple[str, ...] = ()


class _Problems:
    """Problems found, each with the row it concerns; the first bad row is the lowest."""

    def __init__(self) -> None:
        self.found: list[tuple[float, int, str, int | None]] = []

    def add(self, seq: int | None, text: str) -> None:
        self.found.append((float("inf") if seq is None else seq, len(self.found), text, seq))

    def first(self) -> tuple[str, int | None] | None:
        if not self.found:
            return None
        _, _, text, seq = min(self.found)
        return text, seq


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one check covers: where the keyed rows are, the rows walked (from ``first`` to
    ``last``) and the checkpoints checked (those in the walk, and the seal)."""

    last: int
    first_keyed: int | None  # the first row with a key id
    late_unkeyed: int | None  # the first row without one after it (never written so)
    unkeyed: int  # rows 1..unkeyed were written before keys
    first: int
    seal: Checkpoint | None  # the checkpoint that seals rows 1..unkeyed
    checkpoints: dict[int, Checkpoint]


def _scope(view: LedgerView, tail: int) -> _Scope:
    last = view.last_seq()
    first_keyed = view.first_keyed_seq()
    late_unkeyed = None if first_keyed is None else view.first_unkeyed_seq(first_keyed)
    unkeyed = view.last_unkeyed_seq(first_keyed or last + 1)
    checkpoints = view.checkpoints()
    latest = max(checkpoints, default=last)
    first = 1 if tail <= 0 else max(1, min(last - tail + 1, latest))
    seal = checkpoints.get(unkeyed) if unkeyed else None
    seal = seal if seal is not None and seal.key_id is None else None
    covered = {s: cp for s, cp in checkpoints.items() if s >= first or cp is seal}
    return _Scope(last, first_keyed, late_unkeyed, unkeyed, first, seal, covered)


def check(
    view: LedgerView,
    keys: KeyRing,
    trusted: Mapping[str, Ed25519PublicKey],
    witness: Checkpoint | None = None,
    *,
    tail: int = 0,
    sealing: bool = False,
) -> VerifyResult:
    """Check the chain in ``view``: every row from the first (``tail`` > 0: from the last
    ``tail`` rows or the latest checkpoint, whichever is earlier), the head and its MAC, the
    seal of an unkeyed prefix, the checkpoints (their signature by a ``trusted`` key, and that
    each matches the chain at its seq) and ``witness``. ``sealing``: the prefix is about to be
    sealed, so a missing seal and head MAC are not problems."""
    problems = _Problems()
    scope = _scope(view, tail)
    walked, ranges = _walk_rows(view, scope, keys, witness, problems)
    _check_head(view, keys, scope.last, problems, sealing)
    notes = _check_seal(scope, problems, sealing)
    valid, signers = _check_checkpoints(view, scope, trusted, problems)
    witnessed = _check_witness(view, scope, witness, problems)
    found = problems.first()
    return VerifyResult(
        ok=found is None,
        rows=walked,
        problem=found[0] if found else "",
        seq=found[1] if found else None,
        last=scope.last,
        unkeyed=scope.unkeyed,
        keys={k: (v[0], v[1]) for k, v in ranges.items()},
        checkpoints=valid,
        signers=tuple(sorted(signers)),
        witnessed=witnessed if found is None else None,
        notes=tuple(notes),
    )


def _walk_rows(
    view: LedgerView,
    scope: _Scope,
    keys: KeyRing,
    witness: Checkpoint | None,
    problems: _Problems,
) -> tuple[int, dict[str, list[int]]]:
    """Walk the rows from ``scope.first`` to the first bad one: the rows walked, and the first
    and last seq of each key id met."""
    first = scope.first
    prev = GENESIS
    if first > 1:
        before = view.hash_at(first - 1)
        if before is None:
            problems.add(first - 1, f"row {first - 1} is missing (deleted)")
        prev = GENESIS if before is None else before
    late = scope.late_unkeyed
    if late is not None and late < first:
        problems.add(
            late, f"row {late} has no key id but follows keyed rows (written without the key)"
        )
    keyed_seen = scope.first_keyed is not None and scope.first_keyed < first
    ranges: dict[str, list[int]] = {}
    walked, expected = 0, first
    for row in view.rows(first) if scope.last else iter([]):
        walked += 1
        problem = _row_problem(row, expected, prev, keyed_seen, keys) or _pinned_problem(
            row, scope.checkpoints, witness
        )
        if problem is not None:
            problems.add(min(expected, row.seq), problem)
            break
        if row.key_id is not None:
            keyed_seen = True
            span = ranges.setdefault(row.key_id, [row.seq, row.seq])
            span[1] = row.seq
        prev, expected = row.hash, expected + 1
    return walked, ranges


def _is_text(stored: str | bytes) -> TypeGuard[str]:
    """Whether ``stored`` is JSON-era text that is UTF-8 (what every writer of text wrote)."""
    if isinstance(stored, bytes):
        return False
    try:
        stored.encode()
    except UnicodeEncodeError:
        return False
    return True


def _row_problem(row: Row, expected: int, prev: str, keyed_seen: bool, keys: KeyRing) -> str | None:
    """What is wrong with ``row`` where row ``expected`` after hash ``prev`` should be."""
    if row.seq != expected:
        return f"row {expected} is missing (deleted); next is {row.seq}"
    if row.prev_hash != prev:
        return f"row {row.seq} does not follow row {row.seq - 1} (deleted or reordered)"
    if row.key_id is None:
        if keyed_seen:
            return f"row {row.seq} has no key id but follows keyed rows (written without the key)"
        if not _is_text(row.stored):  # no writer before keys wrote compact records
            return f"row {row.seq} was edited (its hash does not match)"
        digest = row_hash(
            row.prev_hash, row.seq, row.kind, row.decision_id, row.recorded_at, row.stored
        )
        return None if digest == row.hash else f"row {row.seq} was edited (its hash does not match)"
    if row.key_id not in keys.keys:
        return f"row {row.seq} cannot be checked: {keys.missing(row.key_id)}"
    if isinstance(row.stored, str) and not _is_text(row.stored):
        return f"row {row.seq} was edited (its payload is text that is not UTF-8)"
    mac = row_mac(
        keys, row.key_id, row.prev_hash, row.seq, row.kind, row.decision_id, row.recorded_at,
        row.stored,
    )  # fmt: skip
    if not hmac.compare_digest(mac, row.hash):
        return (
            f"row {row.seq} was edited (its MAC does not match: changed, or written without the "
            "key)"
        )
    try:
        row.payload  # noqa: B018 (authentic, and it must decode too)
    except PayloadError as exc:
        return f"{exc} (written by the key holder, or by a newer version)"
    return None


def _pinned_problem(
    row: Row, checkpoints: Mapping[int, Checkpoint], witness: Checkpoint | None
) -> str | None:
    """Whether a checkpoint, or the witnessed one, at ``row`` says otherwise."""
    cp = checkpoints.get(row.seq)
    if cp is not None and (cp.head, cp.key_id) != (row.hash, row.key_id):
        return (
            f"row {row.seq} differs from the checkpoint signed at {cp.recorded_at}: "
            f"rows up to {row.seq} were rewritten"
        )
    if (
        witness is not None
        and witness.seq == row.seq
        and (witness.head, witness.key_id) != (row.hash, row.key_id)
    ):
        return (
            f"row {row.seq} differs from the witnessed checkpoint of "
            f"{witness.recorded_at}: rows up to {row.seq} were rewritten"
        )
    return None


def _check_head(
    view: LedgerView, keys: KeyRing, last: int, problems: _Problems, sealing: bool
) -> None:
    """The head: at the last row, with its hash, under an authentic MAC."""
    if not view.tracks_head():
        # Only ledgers from before the head was kept lack its table; every version that MACs
        # rows keeps one, so keyed rows without it mean it was dropped (rows cut at the end
        # would otherwise go unseen).
        if view.first_keyed_seq() is not None:
            problems.add(last + 1, "the ledger head is missing (its table was dropped)")
        return
    head = view.head()
    if head is None:
        if last:
            problems.add(None, "the ledger head is missing")
        return
    stored = view.hash_at(last)
    if (head.seq, head.hash) != (last, GENESIS if stored is None else stored):
        cause = "rows deleted at the end" if head.seq > last else "rows added or changed at the end"
        problems.add(
            min(head.seq, last) + 1,
            f"the ledger ends at row {last} but its head says {head.seq} ({cause})",
        )
    elif head.mac is None or head.key_id is None:
        if not sealing:
            problems.add(last + 1, "the ledger head has no MAC (rewritten without the key)")
    elif head.key_id not in keys.keys:
        problems.add(None, f"the ledger head cannot be checked: {keys.missing(str(head.key_id))}")
    elif not hmac.compare_digest(
        head_mac(keys, str(head.key_id), head.seq, head.hash), str(head.mac)
    ):
        problems.add(
            last + 1,
            f"the ledger head (row {last}) is not authentic: its MAC does not match "
            "(rows deleted at the end and the head rewritten?)",
        )


def _check_seal(scope: _Scope, problems: _Problems, sealing: bool) -> list[str]:
    """The unkeyed prefix must be sealed by a signed checkpoint at its last row; the notes
    that say so."""
    unkeyed, seal = scope.unkeyed, scope.seal
    if unkeyed and seal is None and not sealing:
        problems.add(
            1,
            f"rows 1..{unkeyed} are unkeyed (written before keys were configured) and no "
            "signed checkpoint seals them; if this file is known to be good, seal it with "
            "`centinela ledger seal`",
        )
    elif unkeyed and seal is not None:
        return [
            f"rows 1..{unkeyed} are unkeyed (written before keys were configured), sealed by "
            f"the checkpoint signed at {seal.recorded_at}"
        ]
    return []


def _check_checkpoints(
    view: LedgerView, scope: _Scope, trusted: Mapping[str, Ed25519PublicKey], problems: _Problems
) -> tuple[int, set[str]]:
    """The checkpoints in scope: signed by a trusted key, inside the ledger, unkeyed only as
    the seal. The number that hold, and their signers."""
    last = scope.last
    signers: set[str] = set()
    valid = 0
    for seq, cp in scope.checkpoints.items():
        if seq > last:
            problems.add(
                last + 1,
                f"the ledger ends at row {last} but a checkpoint signed at {cp.recorded_at} "
                f"covers row {seq} (rows deleted at the end)",
            )
        public = trusted.get(cp.signer)
        if public is None:
            why = (
                f"it is signed by key {cp.signer}, which is not trusted "
                f"(trusted: {', '.join(trusted)})"
                if trusted
                else "no public key was given (--public-key FILE, or the signing key file)"
            )
            problems.add(seq, f"cannot check the checkpoint at row {seq}: {why}")
        elif not cp.signed_by(public):
            problems.add(seq, f"the checkpoint at row {seq} has a bad signature (forged or edited)")
        else:
            signers.add(cp.signer)
            valid += 1
        if cp.key_id is None and seq != scope.unkeyed:
            problems.add(seq, f"the checkpoint at row {seq} seals unkeyed rows that are not there")
        if seq < scope.first and seq <= last:  # the seal, outside a checked tail: its row alone
            _compare(view, cp, "the checkpoint signed at", problems)
    return valid, signers


def _check_witness(
    view: LedgerView, scope: _Scope, witness: Checkpoint | None, problems: _Problems
) -> int | None:
    """The witnessed checkpoint must still be in the chain; its seq when it can be."""
    if witness is None:
        return None
    if witness.seq > scope.last:
        problems.add(
            scope.last + 1,
            f"the ledger ends at row {scope.last}, before the witnessed checkpoint at row "
            f"{witness.seq} of {witness.recorded_at}: rows {scope.last + 1}..{witness.seq} were "
            "deleted (truncated, wiped or rolled back)",
        )
        return None
    if witness.seq < scope.first:
        _compare(view, witness, "the witnessed checkpoint of", problems)
    return witness.seq


def _compare(view: LedgerView, cp: Checkpoint, what: str, problems: _Problems) -> None:
    """A checkpoint outside the walked rows against its row alone."""
    if view.link_at(cp.seq) != (cp.head, cp.key_id):
        problems.add(
            cp.seq,
            f"row {cp.seq} differs from {what} {cp.recorded_at}: rows up to {cp.seq} were "
            "rewritten",
        )
