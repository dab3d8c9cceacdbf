"""What an operator runs against a ledger at rest: :func:`verify` the whole chain, export the
:func:`latest_checkpoint` for a witness, and :func:`seal` a ledger from before keys.

**Ledgers from before keys** (rows without a key id, chained with plain SHA-256) are not
silently adopted: nothing distinguishes them from a keyed ledger whose ids an adversary
stripped. The server refuses them, naming ``centinela ledger seal``, with which an operator who
trusts the file signs a checkpoint at its last unkeyed row. After that the unkeyed rows are a
sealed prefix (verify reports "rows 1..N are unkeyed (written before keys were configured)"),
the first keyed row chains on from the last unkeyed hash, and any change to the prefix breaks
the seal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError
from scoring.ledger.chain import VerifyResult, check, head_mac
from scoring.ledger.checkpoint import Checkpoint, sign_checkpoint, trusted_keys
from scoring.ledger.config import default_key_ring, default_public_keys, key_home
from scoring.ledger.record import Commit, Head
from scoring.ledger.store import open_store, reading
from scoring.ledger_keys import KeyRing


def verify(
    path: Path | str,
    keys: KeyRing | None = None,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    witness: Checkpoint | None = None,
) -> VerifyResult:
    """Walk the whole chain; report the first row that was edited, deleted, reordered, forged
    or cut off, every checkpoint that does not hold, and a ``witness`` no longer in the chain.

    ``keys`` None: the key ring a command line finds (:func:`default_key_ring`);
    ``public_keys`` None: the public half of the signing key beside the ledger (or named by
    ``$CENTINELA_LEDGER_SIGNING_KEY_FILE``). A witness's own public key is trusted too.
    """
    beside = key_home(path)  # where the key files are by default (None: nowhere)
    with reading(path) as view, view.snapshot():  # writers may go on meanwhile
        ring = keys if keys is not None else default_key_ring(beside)
        publics = list(public_keys) if public_keys is not None else default_public_keys(beside)
        return check(view, ring, trusted_keys(publics, witness), witness)


def latest_checkpoint(path: Path | str) -> Checkpoint | None:
    """The ledger's latest stored checkpoint (None: it has none)."""
    with reading(path) as view:
        checkpoints = view.checkpoints()
    return checkpoints[max(checkpoints)] if checkpoints else None


def seal(path: Path | str, keys: KeyRing, signing_key: Ed25519PrivateKey) -> Checkpoint:
    """Seal the unkeyed rows of a ledger written before keys: check their SHA-256 chain and
    head, then sign a checkpoint at the last of them and give the head a MAC, so a keyed writer
    can chain on from them. For an operator who trusts the file as it is."""
    if keys.current is None:
        raise ConfigError(f"cannot seal ledger {path}: no MAC key ({keys.source})")
    store = open_store(path)
    if not store.exists():
        raise ConfigError(f"ledger {path} does not exist")
    storage = store.writer()  # never beside a running server
    try:
        result = check(storage, keys, trusted_keys([signing_key.public_key()]), sealing=True)
        if not result.ok:
            raise ConfigError(f"cannot seal ledger {path}: {result.problem}")
        if not result.unkeyed:
            raise ConfigError(f"ledger {path} has no unkeyed rows: there is nothing to seal")
        sealed = storage.checkpoints().get(result.unkeyed)
        if (sealed is not None and sealed.key_id is None) or result.unkeyed != result.last:
            raise ConfigError(f"ledger {path} is sealed already (rows 1..{result.unkeyed})")
        last = storage.hash_at(result.last)
        assert last is not None  # the check found the chain whole up to it
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        checkpoint = sign_checkpoint(signing_key, result.last, last, None, now)
        mac = head_mac(keys, keys.current, result.last, last)
        storage.write(
            Commit(head=Head(result.last, last, keys.current, mac), checkpoint=checkpoint)
        )
        return checkpoint
    finally:
        storage.close()
