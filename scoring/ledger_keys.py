"""Keys of the decision ledger: the MAC key ring that chains its rows and the Ed25519 key that
signs its checkpoints. What each key protects is in :mod:`scoring.ledger`'s docstring.

A **key ring** file is a YAML or JSON mapping of key id to a base64 key (at least 16 bytes)::

    {"k1": "q8Jx...=", "k2": "Zp0w...="}

The *last* entry is the key new rows are written with; earlier entries verify the rows they
wrote. Rotating is appending an entry (``centinela ledger new-key``) and restarting the server.
One more key may come from the environment, ``CENTINELA_LEDGER_KEY=ID:BASE64`` (or ``BASE64``,
whose id is then derived from the key); it is added to the ring as the key that writes. No key
is ever stored in the ledger database, only its id.

The **signing key** is an Ed25519 private key in PEM (PKCS#8). Its public key verifies
checkpoints; it is carried in exported checkpoints and read back from a PEM public key, a PEM
private key or an exported checkpoint (:func:`load_public_key`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError
from features.yamlfiles import read_yaml_file

KEY_ENV = "CENTINELA_LEDGER_KEY"
KEY_FILE_ENV = "CENTINELA_LEDGER_KEY_FILE"
SIGNING_KEY_FILE_ENV = "CENTINELA_LEDGER_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _length_prefixed(parts: tuple[str, ...]) -> bytes:
    out = bytearray()
    for part in parts:
        data = part.encode()
        out += len(data).to_bytes(8, "big") + data
    return bytes(out)


@dataclass(frozen=True)
class KeyRing:
    """MAC keys by id, and the id of the key new rows are written with (``None``: read-only)."""

    keys: Mapping[str, bytes] = field(default_factory=dict)
    current: str | None = None
    source: str = "no key ring"  # where the keys came from, for messages

    def mac(self, key_id: str, *parts: str) -> str:
        """HMAC-SHA256 under ``key_id`` of ``parts``, each length-prefixed (no separator can be
        forged by a value that contains it)."""
        return hmac.new(self.keys[key_id], _length_prefixed(parts), hashlib.sha256).hexdigest()

    def missing(self, key_id: str) -> str:
        """Why ``key_id`` cannot be checked: a message naming it and where keys were looked for."""
        if not self.keys:
            return (
                f"key id {key_id!r} is needed but no MAC key was given ({self.source}; pass "
                f"--key-file FILE or set {KEY_ENV})"
            )
        return f"key id {key_id!r} is not in the key ring ({self.source}: {', '.join(self.keys)})"


def key_id_for(key: bytes) -> str:
    """The id of a key given without one: derived from the key, revealing nothing about it."""
    return "k-" + hashlib.sha256(b"centinela ledger key id\x00" + key).hexdigest()[:8]


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: not a base64 key") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: a key must have at least {MIN_KEY_BYTES} bytes")
    return key


def read_key_file(path: Path) -> dict[str, bytes]:
    """The keys of a key ring file, in file order."""
    loaded = read_yaml_file(path, "ledger key file", secret=True)
    if not isinstance(loaded, dict) or not loaded:
        raise ConfigError(f"ledger key file {path} must be a mapping of key id: base64 key")
    keys: dict[str, bytes] = {}
    for key_id, value in loaded.items():
        name = str(key_id)
        if not _KEY_ID.fullmatch(name):
            raise ConfigError(
                f"ledger key file {path}: bad key id {name!r} (letters, digits . _ -)"
            )
        if not isinstance(value, str):
            raise ConfigError(f"ledger key file {path}: key {name!r} is not a base64 string")
        keys[name] = _decode_key(value, f"ledger key file {path}, key {name!r}")
    return keys


def parse_env_key(value: str) -> tuple[str, bytes]:
    """``ID:BASE64`` or ``BASE64`` (base64 has no colon) as (key id, key)."""
    key_id, sep, text = value.strip().rpartition(":")
    key = _decode_key(text, f"{KEY_ENV}")
    if not sep:
        return key_id_for(key), key
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError(f"{KEY_ENV}: bad key id {key_id!r} (letters, digits . _ -)")
    return key_id, key


def load_key_ring(path: Path | None, env_value: str | None = None) -> KeyRing:
    """The ring of ``path`` (if given) plus the environment key (if given), which then writes."""
    keys: dict[str, bytes] = read_key_file(path) if path is not None else {}
    sources = [f"key file {path}"] if path is not None else []
    if env_value:
        key_id, key = parse_env_key(env_value)
        if key_id in keys and not hmac.compare_digest(keys[key_id], key):
            raise ConfigError(
                f"ledger key id {key_id!r} has one value in {path}, another in {KEY_ENV}"
            )
        keys.pop(key_id, None)
        keys[key_id] = key
        sources.append(KEY_ENV)
    current = next(reversed(keys)) if keys else None
    return KeyRing(keys, current, " and ".join(sources) or "no key file and no " + KEY_ENV)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600), atomically: a reader sees
    the old file or the new one, never part of either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def add_key(path: Path, key_id: str | None = None) -> str:
    """Append a fresh random key to the ring at ``path`` (created if missing) as the key that
    writes from now on; return its id (``k1``, ``k2``, ... unless given)."""
    keys = read_key_file(path) if Path(path).exists() else {}
    if key_id is None:
        n = len(keys) + 1
        while f"k{n}" in keys:
            n += 1
        key_id = f"k{n}"
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError(f"bad key id {key_id!r} (letters, digits . _ -)")
    if key_id in keys:
        raise ConfigError(f"ledger key file {path} already has key id {key_id!r}")
    ring = {k: base64.b64encode(v).decode() for k, v in keys.items()}
    ring[key_id] = base64.b64encode(secrets.token_bytes(32)).decode()
    write_private(path, (json.dumps(ring, indent=2) + "\n").encode())
    return key_id


# --------------------------------------------------------------------------------- signing


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw public key in base64, as exported checkpoints carry it."""
    return base64.b64encode(public_bytes(key)).decode()


def public_key_from_text(text: str, where: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: not a base64 Ed25519 public key") from exc


def generate_signing_key(path: Path) -> Ed25519PrivateKey:
    """A new Ed25519 signing key, written to ``path`` as PEM (0600)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read ledger signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"ledger signing key {path} is not an unencrypted PEM key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"ledger signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The public key in ``path``: a PEM public key, a PEM private key (its public half) or an
    exported checkpoint (JSON with ``public_key``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror}") from exc
    if data.lstrip().startswith(b"{"):
        try:
            text = json.loads(data)["public_key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: a JSON file must be an exported checkpoint") from exc
        return public_key_from_text(str(text), str(path))
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path} is not a PEM public key or an exported checkpoint") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"public key {path} is not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
