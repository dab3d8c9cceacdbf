"""Signed checkpoints of the chain, and their export for an outside witness.

Every ``checkpoint_rows`` rows or ``checkpoint_seconds`` seconds (and when the writer closes) the
writer stores a checkpoint: (seq, the hash at seq, its key id, time) with an Ed25519 signature
over their canonical text (:meth:`Checkpoint.message`). ``centinela ledger checkpoint --out
FILE`` exports the latest one, with the public key (:func:`write_checkpoint`), for an outside
witness to keep; :func:`read_checkpoint` reads such a file back, its signature checked.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError
from scoring.ledger_keys import fingerprint, public_key_from_text, public_key_text, write_private

CHECKPOINT_FORMAT = "centinela-ledger-checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain's hash at ``seq`` is ``head``" (``key_id`` None: the seal
    of an unkeyed prefix). ``public_key`` (base64) is carried only by exported checkpoints."""

    seq: int
    head: str
    key_id: str | None
    recorded_at: str
    signer: str  # fingerprint of the public key that signed
    signature: str  # base64 Ed25519 signature over message()
    public_key: str = ""

    def message(self) -> bytes:
        """The canonical text that is signed."""
        return (
            f"{CHECKPOINT_FORMAT}\nseq={self.seq}\nhead={self.head}\n"
            f"key_id={self.key_id or '-'}\nrecorded_at={self.recorded_at}\n"
        ).encode()

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        """Whether ``key`` made :attr:`signature` over :meth:`message`."""
        try:
            key.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, **asdict(self)}


def sign_checkpoint(
    signing_key: Ed25519PrivateKey, seq: int, head: str, key_id: str | None, recorded_at: str
) -> Checkpoint:
    """The checkpoint "the chain's hash at ``seq`` is ``head``", signed with ``signing_key``."""
    public = signing_key.public_key()
    unsigned = Checkpoint(seq, head, key_id, recorded_at, fingerprint(public), "")
    signature = base64.b64encode(signing_key.sign(unsigned.message())).decode()
    return Checkpoint(seq, head, key_id, recorded_at, unsigned.signer, signature)


def read_checkpoint(path: Path) -> Checkpoint:
    """An exported (witnessed) checkpoint file, its signature checked against its own key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format is not {CHECKPOINT_FORMAT}")
        cp = Checkpoint(
            seq=int(data["seq"]),
            head=str(data["head"]),
            key_id=None if data["key_id"] is None else str(data["key_id"]),
            recorded_at=str(data["recorded_at"]),
            signer=str(data["signer"]),
            signature=str(data["signature"]),
            public_key=str(data["public_key"]),
        )
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not an exported ledger checkpoint ({exc})") from exc
    key = public_key_from_text(cp.public_key, str(path))
    if fingerprint(key) != cp.signer or not cp.signed_by(key):
        raise ConfigError(
            f"checkpoint {path}: its signature does not verify (the file was altered)"
        )
    return cp


def write_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey, out: Path) -> None:
    """Export ``checkpoint`` with its public key for a witness (0600)."""
    exported = dataclasses.replace(checkpoint, public_key=public_key_text(public_key))
    write_private(out, (json.dumps(exported.to_json(), indent=2) + "\n").encode())


def trusted_keys(
    public_keys: Iterable[Ed25519PublicKey], witness: Checkpoint | None = None
) -> dict[str, Ed25519PublicKey]:
    """The public keys whose checkpoints are accepted, by fingerprint: ``public_keys`` and the
    key a ``witness`` carries (it is checked against its own key when read)."""
    trusted = {fingerprint(k): k for k in public_keys}
    if witness is not None:
        trusted[witness.signer] = public_key_from_text(witness.public_key, "witness")
    return trusted
