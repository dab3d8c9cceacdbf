"""``centinela ledger``: check the decision ledger's MAC chain and checkpoints, hand a signed
checkpoint to a witness, seal a ledger from before keys, rotate the MAC key, export the ledger
for retraining, and explain a decision from what it stored.

``--db`` is a SQLite file's path or a URL (``sqlite:///path``, ``postgresql://host/database``:
the ledger several servers share). Keys are found as the server finds them: ``--key-file``,
else ``$CENTINELA_LEDGER_KEY_FILE``, else the ring beside the ledger (``var/ledger.key``), plus
``$CENTINELA_LEDGER_KEY``; the signing key is ``--signing-key``, else
``$CENTINELA_LEDGER_SIGNING_KEY_FILE``, else the PEM beside the ledger
(``var/ledger.signing.pem``). A ledger in a database server has nothing beside it: its key files
must be given (the option or the environment), or the command says which.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from features.errors import ConfigError, DataError, ModelError
from scoring import ledger_keys
from scoring.explain import explain
from scoring.ledger import (
    VerifyResult,
    default_key_file,
    default_key_ring,
    default_public_keys,
    default_signing_key,
    export,
    latest_checkpoint,
    read_checkpoint,
    read_decision,
    seal,
    verify,
    write_checkpoint,
)
from scoring.ledger.config import key_home
from scoring.registry import Registry
from training.cli_common import (
    console,
    json_option,
    ledger_location,
    path_option,
    print_json,
    registry_option,
    run,
    say,
)
from training.defaults import LEDGER_PATH

app = typer.Typer(
    help="Verify, witness, seal and export the decision ledger.", no_args_is_help=True
)

DB_OPTION = typer.Option(
    str(LEDGER_PATH),
    "--db",
    help="The ledger: a SQLite file, or a URL (sqlite:///path, postgresql://host/database).",
)
KEY_FILE_OPTION = typer.Option(
    None, "--key-file", help="MAC key ring (default: beside the ledger, or the environment)."
)
SIGNING_KEY_OPTION = typer.Option(
    None, "--signing-key", help="Ed25519 signing key PEM (default: beside the ledger)."
)


def _home(db: str, needed: str) -> Path:
    """The SQLite file whose key files are beside it; for a ledger in a database server,
    ConfigError saying what to give instead (``needed``)."""
    home = key_home(db)
    if home is None:
        raise ConfigError(
            f"ledger {ledger_location(db)} is in a database server, which keeps no key file "
            f"beside it: give {needed}"
        )
    return home


def _key_ring_of(db: str, key_file: Path | None) -> ledger_keys.KeyRing:
    """The MAC key ring for ``db``: beside a SQLite file by default, named for a database."""
    if key_file is None and not (
        os.environ.get(ledger_keys.KEY_FILE_ENV) or os.environ.get(ledger_keys.KEY_ENV)
    ):
        return default_key_ring(
            _home(db, f"--key-file (or set {ledger_keys.KEY_FILE_ENV} or {ledger_keys.KEY_ENV})")
        )
    return default_key_ring(key_home(db), key_file)


def _signing_key_of(db: str, signing_key: Path | None) -> Ed25519PrivateKey:
    """The signing key for ``db``: beside a SQLite file by default, named for a database."""
    if signing_key is None and not os.environ.get(ledger_keys.SIGNING_KEY_FILE_ENV):
        return default_signing_key(
            _home(db, f"--signing-key (or set {ledger_keys.SIGNING_KEY_FILE_ENV})")
        )
    home = key_home(db)
    return default_signing_key(home if home is not None else Path(), signing_key)


def _public_keys_of(db: str, given: list[Path]) -> list[Ed25519PublicKey] | None:
    """The trusted public keys: those given, else the signing key's (beside a SQLite file, or
    from the environment); for a database with neither, ConfigError."""
    if given:
        return [ledger_keys.load_public_key(p) for p in given]
    if key_home(db) is None and not os.environ.get(ledger_keys.SIGNING_KEY_FILE_ENV):
        _home(db, f"--public-key (or set {ledger_keys.SIGNING_KEY_FILE_ENV})")
    return None


def _summary(result: VerifyResult) -> str:
    spans = ", ".join(f"{k} rows {a}-{b}" for k, (a, b) in result.keys.items())
    parts = [f"{result.rows} rows, MAC chain intact" + (f" ({spans})" if spans else "")]
    if result.checkpoints:
        parts.append(f"{result.checkpoints} checkpoints signed by {', '.join(result.signers)} hold")
    else:
        parts.append("no checkpoints yet")
    if result.witnessed is not None:
        parts.append(f"the witnessed checkpoint at row {result.witnessed} is in the chain")
    return "; ".join(parts)


@app.command("verify")
def verify_command(
    db: str = DB_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
    public_key: list[Path] = typer.Option(
        [],
        "--public-key",
        help="Trusted public key of checkpoints (PEM or an exported checkpoint); repeatable. "
        "Default: the public half of the signing key beside the ledger.",
    ),
    witness: Path | None = path_option(
        "--witness", "A checkpoint exported earlier and kept outside: must be in the chain."
    ),
    json_out: bool = json_option("the result"),
) -> None:
    """Walk the MAC chain and check every checkpoint (and a witnessed one); name the first row
    that was edited, deleted, reordered, forged or cut off."""

    def body() -> None:
        keys = _key_ring_of(db, key_file)
        publics = _public_keys_of(db, public_key)
        witnessed = read_checkpoint(witness) if witness is not None else None
        result = verify(db, keys, publics, witnessed)
        found = publics if publics is not None else default_public_keys(key_home(db))
        if witnessed is not None:
            found = [*found, ledger_keys.public_key_from_text(witnessed.public_key, str(witness))]
        trusted = list({ledger_keys.fingerprint(k): k for k in found}.values())
        if json_out:
            print_json(
                {
                    "ok": result.ok,
                    "rows": result.rows,
                    "problem": result.problem,
                    "row": result.seq,
                    "unkeyed": result.unkeyed,
                    "keys": {k: list(v) for k, v in result.keys.items()},
                    "checkpoints": result.checkpoints,
                    "signers": list(result.signers),
                    "witnessed": result.witnessed,
                    "notes": list(result.notes),
                    "public_keys": {
                        ledger_keys.fingerprint(k): ledger_keys.public_key_text(k) for k in trusted
                    },
                }
            )
        elif result.ok:
            say(f"ledger {ledger_location(db)}: {_summary(result)}")
            for note in result.notes:
                say(f"  {note}")
            for key in trusted:
                text = ledger_keys.public_key_text(key)
                say(f"  signing key {ledger_keys.fingerprint(key)}: {text}")
        else:
            say(f"ledger {ledger_location(db)}: [bold red]{result.problem}[/]", err=True)
        if not result.ok:
            raise typer.Exit(6)

    run(body)


@app.command("checkpoint")
def checkpoint_command(
    out: Path = typer.Option(..., "--out", help="File for the checkpoint (JSON, 0600)."),
    db: str = DB_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
    signing_key: Path | None = SIGNING_KEY_OPTION,
    public_key_out: Path | None = path_option(
        "--public-key-out", "Also write the signing public key here (PEM)."
    ),
) -> None:
    """Export the latest signed checkpoint, with the public key, for a witness to keep.

    The whole chain is verified first: a broken ledger is never witnessed. Hand the file to
    someone the service cannot reach; later, `ledger verify --witness FILE` (or the server's
    ledger_witness_file) proves the ledger still holds everything up to it.
    """

    def body() -> None:
        public = _signing_key_of(db, signing_key).public_key()
        result = verify(db, _key_ring_of(db, key_file), [public])
        if not result.ok:
            raise ConfigError(
                f"ledger {ledger_location(db)} does not verify, refusing to export: "
                f"{result.problem}"
            )
        checkpoint = latest_checkpoint(db)
        if checkpoint is None:
            raise ConfigError(
                f"ledger {ledger_location(db)} has no checkpoint yet: the server writes one every "
                "ledger_checkpoint_rows rows or ledger_checkpoint_seconds, and when it stops"
            )
        write_checkpoint(checkpoint, public, out)
        if public_key_out is not None:
            public_key_out.write_text(ledger_keys.public_key_pem(public))
        say(
            f"checkpoint of row {checkpoint.seq} (signed {checkpoint.recorded_at} by "
            f"{checkpoint.signer}) written to {out}; the ledger has {result.last} rows"
        )

    run(body)


@app.command("seal")
def seal_command(
    db: str = DB_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
    signing_key: Path | None = SIGNING_KEY_OPTION,
) -> None:
    """Adopt a ledger written before keys: check its SHA-256 chain, then sign a checkpoint at
    its last unkeyed row so a keyed server can append to it. Only for a file you trust."""

    def body() -> None:
        checkpoint = seal(db, _key_ring_of(db, key_file), _signing_key_of(db, signing_key))
        say(
            f"sealed rows 1..{checkpoint.seq} of {ledger_location(db)} (unkeyed, written before "
            f"keys were configured) with a checkpoint signed by {checkpoint.signer}"
        )

    run(body)


@app.command("new-key")
def new_key_command(
    db: str = DB_OPTION,
    key_file: Path | None = path_option(
        "--key-file", "Key ring to add to (default: beside the ledger)."
    ),
    key_id: str | None = typer.Option(None, "--key-id", help="Id of the new key (default kN)."),
) -> None:
    """Rotate the MAC key: append a fresh random key to the ring as the key that writes.

    Restart the server to write with it; older rows keep verifying with the keys before it,
    so keep them in the ring.
    """

    def body() -> None:
        path = key_file or default_key_file(_home(db, "--key-file, the key ring to add to"))
        new_id = ledger_keys.add_key(path, key_id)
        console.print(f"added key {new_id} to {path}; restart the server to write with it")

    run(body)


@app.command("export")
def export_command(
    out: Path = typer.Option(..., "--out", help="Directory for the canonical tables."),
    db: str = DB_OPTION,
    json_out: bool = json_option("the counts"),
) -> None:
    """Write decisions and outcomes as tables `centinela train --data OUT` reads.

    One shipment per shipment id: a shipment scored more than once is exported as its latest
    decision declared it, with one inspection at most.
    """

    def body() -> None:
        result = export(db, out)
        if json_out:
            print_json(
                {
                    "shipments": result.shipments,
                    "goods": result.goods,
                    "inspections": result.inspections,
                    "folded": result.folded,
                    "out": str(out),
                }
            )
            return
        console.print(
            f"exported {result.shipments} shipments, {result.goods} goods lines and "
            f"{result.inspections} inspection outcomes to {out}"
        )
        if result.folded:
            say(f"folded {result.folded} repeated decisions of the same shipment ids (latest kept)")

    run(body)


@app.command("explain")
def explain_command(
    decision_id: str = typer.Argument(..., help="The decision to explain."),
    db: str = DB_OPTION,
    registry: Path = registry_option("Model registry holding the deciding model."),
    limit: int = typer.Option(5, "--limit", min=1, max=20, help="Reasons to show each way."),
    json_out: bool = json_option("the explanation"),
) -> None:
    """Why a ledgered decision scored as it did: the deciding model's contributions on the
    features the ledger stored (GREEN decisions carry no model reasons live), and the score
    computed again beside the one recorded."""

    def body() -> None:
        payload = read_decision(db, decision_id)
        version = str(payload.get("model_version") or "")
        if not version:
            raise DataError(f"decision {decision_id!r} does not name the model that made it")
        found = explain(payload, Registry(registry).load(version), limit=limit)
        if json_out:
            print_json(found.to_json())
        else:
            say(
                f"decision {found.decision_id} (shipment {found.shipment_id}): "
                f"{found.lane.upper()}, score {found.recorded_score:.4f} by model "
                f"{found.model_version}"
            )
            for reason in found.reasons:
                say(
                    f"  + {reason.contribution:+.3f} {reason.code}: {reason.message_en} / "
                    f"{reason.message_es}"
                )
            if not found.reasons:
                say("  no feature raised the score")
            for name, contribution in found.pushed_down:
                say(f"  - {contribution:+.3f} {name}")
        if not found.reproduced:
            raise ModelError(
                f"model {found.model_version} now scores the stored features "
                f"{found.score:.6f}, not the recorded {found.recorded_score:.6f}: the bundle "
                "or the ledger row is not what made this decision"
            )
        if not json_out:
            say(f"score reproduced: {found.score:.6f}")

    run(body)


if __name__ == "__main__":
    app()
