"""The ledger as configured: where its keys are found when no setting names them (beside the
ledger, generated there on first use by default: see the package's docstring for what that does
not protect), and :func:`open_ledger`, the ledger the server writes with the keys its settings
name. A ledger in a database server (PostgreSQL) has no "beside": its keys must be named
(``ledger_key_file`` or ``CENTINELA_LEDGER_KEY``, and ``ledger_signing_key_file``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError
from scoring.ledger.checkpoint import read_checkpoint
from scoring.ledger.sqlite import SqliteStore
from scoring.ledger.store import open_store
from scoring.ledger.writer import Ledger
from scoring.ledger_keys import (
    KEY_ENV,
    KEY_FILE_ENV,
    SIGNING_KEY_FILE_ENV,
    KeyRing,
    add_key,
    fingerprint,
    generate_signing_key,
    load_key_ring,
    load_public_key,
    load_signing_key,
)

if TYPE_CHECKING:
    from scoring.settings import CoreSettings

log = logging.getLogger("scoring.ledger")  # the package's one logger, as before it was split


def key_home(location: Path | str) -> Path | None:
    """The SQLite file whose key files default beside it (None: the ledger at ``location`` is
    in a database server, and its key files have no default place)."""
    store = open_store(location)
    return store.path if isinstance(store, SqliteStore) else None


def default_key_file(db: Path) -> Path:
    """Where the key ring lives when ``ledger_key_file`` is unset: beside the ledger."""
    db = Path(db)
    return db.with_name(db.stem + ".key")


def default_signing_key_file(db: Path) -> Path:
    """Where the signing key lives when ``ledger_signing_key_file`` is unset: beside the
    ledger."""
    db = Path(db)
    return db.with_name(db.stem + ".signing.pem")


def default_key_ring(db: Path | None, key_file: Path | None = None) -> KeyRing:
    """The ring a command line finds: ``key_file``, else ``$CENTINELA_LEDGER_KEY_FILE``, else
    the file beside the ledger if there is one (``db`` None: a database server's ledger, none
    is); plus ``$CENTINELA_LEDGER_KEY``."""
    if key_file is None:
        env_file = os.environ.get(KEY_FILE_ENV)
        beside = None if db is None else default_key_file(db)
        key_file = Path(env_file) if env_file else beside if beside and beside.exists() else None
    ring = load_key_ring(key_file, os.environ.get(KEY_ENV))
    if not ring.keys:
        where = f"no key file at {default_key_file(db)}" if db else f"no {KEY_FILE_ENV}"
        return KeyRing(source=f"{where}, no {KEY_ENV}")
    return ring


def default_signing_key(db: Path, signing_key_file: Path | None = None) -> Ed25519PrivateKey:
    """The signing key a command line uses: the file given, else
    ``$CENTINELA_LEDGER_SIGNING_KEY_FILE``, else the file beside the ledger."""
    if signing_key_file is None:
        env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
        signing_key_file = Path(env_file) if env_file else default_signing_key_file(db)
    return load_signing_key(signing_key_file)


def default_public_keys(db: Path | None) -> list[Ed25519PublicKey]:
    """The public half of the signing key a command line finds (none if there is none; ``db``
    None: a database server's ledger, with no signing key beside it)."""
    env_file = os.environ.get(SIGNING_KEY_FILE_ENV)
    path = Path(env_file) if env_file else None if db is None else default_signing_key_file(db)
    return [load_signing_key(path).public_key()] if path and path.exists() else []


def _peek(location: Path | str) -> tuple[set[str], int]:
    """The key ids of a ledger's rows and its number of checkpoints (before opening it)."""
    store = open_store(location)
    if not store.exists() or store.size() == 0:
        return set(), 0
    try:
        with contextlib.closing(store.reader()) as view:
            return view.key_ids(), len(view.checkpoints())
    except store.error:
        return set(), 0  # the writer names the problem when it opens the ledger


def open_ledger(settings: CoreSettings) -> Ledger:
    """The ledger the server writes, with the keys its settings name.

    With ``ledger_key_file`` unset and no ``CENTINELA_LEDGER_KEY``, the key ring beside the
    ledger is used, and generated (0600, logged once) if it does not exist and no row needs an
    older key; likewise the signing key with ``ledger_signing_key_file`` unset. A key file that
    is configured is never generated: a missing one is an error. The ledger is
    ``ledger_url`` if set, else the SQLite file ``ledger_path``; a ledger in a database server
    has no "beside", so there its keys must be configured (ConfigError naming the settings).
    """
    location = settings.ledger_location
    home = key_home(location)
    if home is None:
        keys, signing = _server_keys(settings, open_store(location).location)
    else:
        key_ids, checkpoints = _peek(home)
        keys = _mac_keys(settings, home, key_ids)
        signing = _signing_key(settings, home, checkpoints)
    return Ledger(
        location,
        keys,
        signing,
        checkpoint_rows=settings.ledger_checkpoint_rows,
        checkpoint_seconds=settings.ledger_checkpoint_seconds,
        check_rows=settings.ledger_start_check_rows,
        verify_interval=settings.ledger_verify_interval_s,
        trusted=[load_public_key(p) for p in settings.ledger_public_key_files],
        witness=read_checkpoint(settings.ledger_witness_file)
        if settings.ledger_witness_file
        else None,
    )


def _server_keys(settings: CoreSettings, where: str) -> tuple[KeyRing, Ed25519PrivateKey]:
    """The keys the settings name for a ledger in a database server (``where``), which has no
    default place for them: ConfigError naming the settings to set when they are not."""
    env_key = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    missing = []
    if settings.ledger_key_file is None and env_key is None:
        missing.append("ledger_key_file (or CENTINELA_LEDGER_KEY) for the MAC key ring")
    if settings.ledger_signing_key_file is None:
        missing.append("ledger_signing_key_file for the checkpoints' signing key")
    if missing:
        raise ConfigError(
            f"ledger {where} is in a database server, where no key file is kept beside it: "
            f"set {' and '.join(missing)}"
        )
    assert settings.ledger_signing_key_file is not None
    keys = load_key_ring(settings.ledger_key_file, env_key)
    key_file = settings.ledger_key_file
    if key_file is not None and stat.S_IMODE(Path(key_file).stat().st_mode) & 0o077:
        log.warning("ledger key file is readable by others", extra={"path": str(key_file)})
    return keys, load_signing_key(settings.ledger_signing_key_file)


def _mac_keys(settings: CoreSettings, path: Path, key_ids: set[str]) -> KeyRing:
    """The key ring the settings name, or the one beside the ledger (generated while no row of
    the ledger, keyed with ``key_ids``, needs it)."""
    env_key = settings.ledger_key.get_secret_value() if settings.ledger_key else None
    key_file = settings.ledger_key_file
    if key_file is None and (default_key_file(path).exists() or env_key is None):
        key_file = default_key_file(path)
        if not key_file.exists():
            if key_ids:
                raise ConfigError(
                    f"ledger {path} has rows keyed with {', '.join(sorted(key_ids))} but its key "
                    f"file {key_file} is missing: restore it or set ledger_key_file"
                )
            add_key(key_file)
            log.warning("generated a ledger MAC key", extra={"path": str(key_file)})
    keys = load_key_ring(key_file, env_key)
    if key_file is not None and stat.S_IMODE(Path(key_file).stat().st_mode) & 0o077:
        log.warning("ledger key file is readable by others", extra={"path": str(key_file)})
    return keys


def _signing_key(settings: CoreSettings, path: Path, checkpoints: int) -> Ed25519PrivateKey:
    """The signing key the settings name, or the one beside the ledger (generated while the
    ledger has no ``checkpoints`` it signed)."""
    signing_file = settings.ledger_signing_key_file
    if signing_file is not None or default_signing_key_file(path).exists():
        return load_signing_key(signing_file or default_signing_key_file(path))
    signing_file = default_signing_key_file(path)
    if checkpoints:
        raise ConfigError(
            f"ledger {path} has {checkpoints} signed checkpoints but its signing key "
            f"{signing_file} is missing: restore it or set ledger_signing_key_file"
        )
    signing_key = generate_signing_key(signing_file)
    log.warning(
        "generated a ledger signing key",
        extra={"path": str(signing_file), "signer": fingerprint(signing_key.public_key())},
    )
    return signing_key
