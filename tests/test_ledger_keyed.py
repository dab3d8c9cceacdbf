"""A file writer cannot rewrite the ledger: every re-chaining attack is caught by ``centinela
ledger verify`` and by the server at start, a witnessed checkpoint catches a wipe or a rollback
even by the key holder, keys rotate, files are private, and a ledger from before keys is
refused until an operator seals it.

The attacker functions below work on the SQLite file directly, as anyone who can write it can.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from features.errors import ConfigError
from scoring.ledger import (
    COMPACT_ROW_DOMAIN,
    Entry,
    VerifyResult,
    encode_payload,
    head_mac,
    open_ledger,
    payload_text,
    read_checkpoint,
    row_hash,
    row_mac,
    sign_checkpoint,
    verify,
)
from scoring.ledger_keys import (
    KeyRing,
    add_key,
    generate_signing_key,
    load_key_ring,
    load_public_key,
    load_signing_key,
    public_key_pem,
)
from scoring.service import ScoringService
from server.settings import Settings
from tests.conftest import server_settings
from tests.support import CENTINELA, centinela

ROWS = 20  # written one commit each, a checkpoint every 5 rows


@dataclass
class Site:
    """A ledger with its keys kept apart from it, as production keeps them."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "var" / "ledger.sqlite"

    @property
    def key_file(self) -> Path:
        return self.root / "secrets" / "ledger-keys.json"

    @property
    def signing_file(self) -> Path:
        return self.root / "secrets" / "ledger-signing.pem"

    @property
    def public_file(self) -> Path:
        return self.root / "public.pem"

    def keys(self) -> KeyRing:
        return load_key_ring(self.key_file)

    def signing_key(self) -> Ed25519PrivateKey:
        return load_signing_key(self.signing_file)

    def settings(self, **changes: object) -> Settings:
        values: dict[str, object] = {
            "ledger_key_file": self.key_file,
            "ledger_signing_key_file": self.signing_file,
            "ledger_checkpoint_rows": 5,
            **changes,
        }
        return server_settings(self.root / "registry", self.root, ledger_path=self.db, **values)

    def write(self, n: int, start: int = 0, **changes: object) -> None:
        """``n`` decisions through the server's own ledger, one commit each."""
        ledger = open_ledger(self.settings(**changes))
        for i in range(start, start + n):
            payload = {"lane": "green", "consignee": {"name": "Química del Pacífico", "i": i}}
            ledger.append(Entry("decision", f"d{i}", payload)).result(timeout=10)
        ledger.close()

    def verify(self, witness: Path | None = None) -> VerifyResult:
        return verify(
            self.db,
            self.keys(),
            [self.signing_key().public_key()],
            read_checkpoint(witness) if witness else None,
        )

    def cli_verify(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return centinela(
            "ledger", "verify", "--db", str(self.db), "--key-file", str(self.key_file),
            "--public-key", str(self.public_file), *extra,
        )  # fmt: skip

    def cli_seal(self) -> subprocess.CompletedProcess[str]:
        return centinela(
            "ledger", "seal", "--db", str(self.db), "--key-file", str(self.key_file),
            "--signing-key", str(self.signing_file),
        )  # fmt: skip

    def witness(self) -> Path:
        """The latest checkpoint exported for a witness, held outside the ledger's reach."""
        out = self.root / "witness" / "checkpoint.json"
        exported = centinela(
            "ledger", "checkpoint", "--out", str(out), "--db", str(self.db),
            "--key-file", str(self.key_file), "--signing-key", str(self.signing_file),
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        return out


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    add_key(s.key_file)
    generate_signing_key(s.signing_file)
    s.public_file.write_text(public_key_pem(s.signing_key().public_key()))
    s.write(ROWS)
    return s


# ------------------------------------------------------------------------------ the attacker


def _rows(conn: sqlite3.Connection) -> list[tuple[int, str, str, str, str | bytes, str | None]]:
    """Every row, its payload as stored: bytes (a compact record) or text (older rows)."""
    return conn.execute(
        "SELECT seq, kind, decision_id, recorded_at, payload, key_id FROM ledger ORDER BY seq"
    ).fetchall()


Chain = Callable[[str, int, str, str, str, str | bytes, str | None], str]


def sha256_chain(
    prev: str, seq: int, kind: str, did: str, at: str, payload: str | bytes, _: object
) -> str:
    return row_hash(prev, seq, kind, did, at, payload_text(payload))


def guessed_key_chain(
    prev: str, seq: int, kind: str, did: str, at: str, payload: str | bytes, key_id: str | None
) -> str:
    """A MAC as the code computes it, under a key the attacker made up."""
    ring = KeyRing({str(key_id): b"attacker's own key, not k1"}, str(key_id))
    return row_mac(ring, str(key_id), prev, seq, kind, did, at, payload)


def rechain(
    db: Path, first: int, chain: Chain, *, strip_keys: bool = False, as_text: bool = False
) -> None:
    """Recompute every row's hash from ``first`` on, and the head, with ``chain``; ``as_text``:
    and store each payload as JSON text, as ledgers before compact records did."""
    conn = sqlite3.connect(db)
    rows = _rows(conn)
    prev = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (first - 1,)).fetchone()
    prev = prev[0] if prev else "0" * 64
    for seq, kind, did, at, stored, stored_key_id in rows[first - 1 :]:
        key_id = None if strip_keys else stored_key_id
        payload = payload_text(stored) if as_text else stored
        digest = chain(prev, seq, kind, did, at, payload, key_id)
        conn.execute(
            "UPDATE ledger SET payload = ?, prev_hash = ?, hash = ?, key_id = ? WHERE seq = ?",
            (payload, prev, digest, key_id, seq),
        )
        prev = digest
    conn.execute("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1", (rows[-1][0], prev))
    conn.commit()
    conn.close()


def sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def edit(db: Path, seq: int, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the payload of row ``seq``, stored back in the form it
    had: the attacker knows the format (compact records are decoded and encoded again)."""
    conn = sqlite3.connect(db)
    (stored,) = conn.execute("SELECT payload FROM ledger WHERE seq = ?", (seq,)).fetchone()
    text = payload_text(stored)
    assert old in text
    edited = text.replace(old, new)
    conn.execute(
        "UPDATE ledger SET payload = ? WHERE seq = ?",
        (edited if isinstance(stored, str) else encode_payload(edited), seq),
    )
    conn.commit()
    conn.close()


def edit_and_rechain_sha256(site: Site) -> None:
    edit(site.db, 7, "green", "red")
    rechain(site.db, 7, sha256_chain)


def edit_and_rechain_guessed_key(site: Site) -> None:
    edit(site.db, 7, "green", "red")
    rechain(site.db, 7, guessed_key_chain)
    ring = KeyRing({"k1": b"attacker's own key, not k1"}, "k1")
    conn = sqlite3.connect(site.db)
    seq, head = conn.execute("SELECT seq, hash FROM ledger_head").fetchone()
    conn.execute("UPDATE ledger_head SET mac = ? WHERE id = 1", (head_mac(ring, "k1", seq, head),))
    conn.commit()
    conn.close()


def strip_keys_and_rechain(site: Site) -> None:
    """Pass the ledger off as one written before keys: plain SHA-256, no key ids, no
    checkpoints, no head MAC, and JSON text for payloads."""
    edit(site.db, 7, "green", "red")
    rechain(site.db, 1, sha256_chain, strip_keys=True, as_text=True)
    sql(site.db, "DELETE FROM checkpoints", "UPDATE ledger_head SET key_id = NULL, mac = NULL")


def truncate_and_fix_head(site: Site) -> None:
    """Cut rows 13..20 and the checkpoints that name them; the head says 12 with 12's hash."""
    sql(
        site.db,
        "DELETE FROM ledger WHERE seq > 12",
        "DELETE FROM checkpoints WHERE seq > 12",
        "UPDATE ledger_head SET seq = 12, hash = (SELECT hash FROM ledger WHERE seq = 12)",
    )


def forged_append(site: Site) -> None:
    conn = sqlite3.connect(site.db)
    prev = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (ROWS,)).fetchone()[0]
    at, payload = "2026-01-01T00:00:00.000000+00:00", encode_payload('{"lane":"green"}')
    digest = guessed_key_chain(prev, ROWS + 1, "decision", "forged", at, payload, "k1")
    conn.execute(
        "INSERT INTO ledger VALUES (?, 'decision', 'forged', ?, ?, ?, ?, 'k1')",
        (ROWS + 1, at, payload, prev, digest),
    )
    conn.execute("UPDATE ledger_head SET seq = ?, hash = ?", (ROWS + 1, digest))
    conn.commit()
    conn.close()


ATTACKS = {
    "edit + re-chain with SHA-256": (edit_and_rechain_sha256, 7, "row 7 was edited"),
    "edit + re-chain with a guessed key": (edit_and_rechain_guessed_key, 7, "row 7 was edited"),
    "strip the keys, re-chain as pre-key": (
        strip_keys_and_rechain,
        1,
        f"rows 1..{ROWS} are unkeyed",
    ),
    "truncate + fix the head": (truncate_and_fix_head, 13, "head (row 12) is not authentic"),
    "forged append": (forged_append, ROWS + 1, f"row {ROWS + 1} was edited"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_file_writer_without_the_key_cannot_rewrite_the_ledger(site: Site, name: str) -> None:
    attack, seq, words = ATTACKS[name]
    assert site.verify().ok
    attack(site)

    result = site.verify()
    assert (result.ok, result.seq) == (False, seq), result.problem
    assert words in result.problem

    cli = site.cli_verify("--json")
    assert cli.returncode == 6, cli.stderr
    assert (json.loads(cli.stdout)["row"], json.loads(cli.stdout)["ok"]) == (seq, False)

    with pytest.raises(ConfigError, match="refusing to append to a broken chain") as refused:
        ScoringService(site.settings())
    assert words in refused.value.message


def test_a_correct_ledger_passes_everywhere(site: Site) -> None:
    result = site.verify()
    assert result.ok, result.problem
    assert (result.rows, result.keys, result.checkpoints) == (ROWS, {"k1": (1, ROWS)}, 4)

    cli = site.cli_verify()
    assert cli.returncode == 0, cli.stderr
    assert f"{ROWS} rows, MAC chain intact (k1 rows 1-{ROWS})" in cli.stdout
    assert "4 checkpoints signed by" in cli.stdout
    signer = site.signing_key().public_key()
    assert base64.b64encode(signer.public_bytes_raw()).decode() in cli.stdout  # the public key

    service = ScoringService(site.settings())  # the server opens it and appends
    assert service.ledger is not None
    assert service.ledger.append(Entry("decision", "more", {})).result(timeout=10) == ROWS + 1
    service.close()
    assert site.verify().ok


def test_verify_needs_the_keys_and_trusts_only_given_public_keys(site: Site) -> None:
    no_key = verify(site.db, KeyRing(), [site.signing_key().public_key()])
    assert (no_key.ok, no_key.seq) == (False, 1)
    assert "key id 'k1' is needed but no MAC key was given" in no_key.problem

    stranger = Ed25519PrivateKey.generate().public_key()
    untrusted = verify(site.db, site.keys(), [stranger])
    assert (untrusted.ok, untrusted.seq) == (False, 5)
    assert "which is not trusted" in untrusted.problem


def test_a_forged_checkpoint_is_caught(site: Site) -> None:
    """A checkpoint signed with some other key, or edited, does not hold."""
    mallory = Ed25519PrivateKey.generate()
    conn = sqlite3.connect(site.db)
    head = conn.execute("SELECT hash FROM ledger WHERE seq = 3").fetchone()[0]
    forged = sign_checkpoint(mallory, 3, head, "k1", "2026-01-01T00:00:00+00:00")
    conn.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
        (3, forged.head, "k1", forged.recorded_at, forged.signer, forged.signature),
    )
    conn.execute("UPDATE checkpoints SET recorded_at = '2020-01-01' WHERE seq = 10")
    conn.commit()
    conn.close()
    result = site.verify()
    assert (result.ok, result.seq) == (False, 3)
    assert "not trusted" in result.problem
    sql(site.db, "DELETE FROM checkpoints WHERE seq = 3")
    result = site.verify()
    assert (result.ok, result.seq) == (False, 10)
    assert "bad signature" in result.problem


# ----------------------------------------------------------------------- witnessed checkpoints


def wipe_everything(site: Site) -> None:
    sql(site.db, "DELETE FROM ledger", "DELETE FROM ledger_head", "DELETE FROM checkpoints")


def delete_the_file(site: Site) -> None:
    for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
        (site.db.parent / name).unlink(missing_ok=True)
    site.write(3)  # the service starts over on an empty ledger


def rewrite_with_both_keys(site: Site) -> None:
    """The key holder edits row 3, re-chains with the real key and re-signs every checkpoint:
    only a checkpoint held outside can tell."""
    edit(site.db, 3, "green", "red")
    keys, signing = site.keys(), site.signing_key()

    def real(
        prev: str, seq: int, kind: str, did: str, at: str, payload: str | bytes, _: object
    ) -> str:
        return row_mac(keys, "k1", prev, seq, kind, did, at, payload)

    rechain(site.db, 3, real)
    conn = sqlite3.connect(site.db)
    seq, head = conn.execute("SELECT seq, hash FROM ledger_head").fetchone()
    conn.execute("UPDATE ledger_head SET mac = ?", (head_mac(keys, "k1", seq, head),))
    for (cp_seq,) in conn.execute("SELECT seq FROM checkpoints").fetchall():
        new_head = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (cp_seq,)).fetchone()[0]
        cp = sign_checkpoint(signing, cp_seq, new_head, "k1", "2026-01-01T00:00:00+00:00")
        conn.execute(
            "UPDATE checkpoints SET head = ?, recorded_at = ?, signature = ? WHERE seq = ?",
            (cp.head, cp.recorded_at, cp.signature, cp_seq),
        )
    conn.commit()
    conn.close()


WITNESSED = {
    "wipe everything": (wipe_everything, 1, f"rows 1..{ROWS} were deleted"),
    "delete the file, start over": (delete_the_file, 4, f"rows 4..{ROWS} were deleted"),
    "key holder rewrites and re-signs": (rewrite_with_both_keys, ROWS, "witnessed checkpoint"),
}


@pytest.mark.parametrize("name", list(WITNESSED))
def test_a_witnessed_checkpoint_catches_what_keys_cannot(site: Site, name: str) -> None:
    attack, seq, words = WITNESSED[name]
    witness = site.witness()
    assert stat.S_IMODE(witness.stat().st_mode) == 0o600
    assert read_checkpoint(witness).seq == ROWS
    attack(site)

    assert site.verify().ok  # consistent as far as the file and the keys can tell
    result = site.verify(witness)
    assert (result.ok, result.seq) == (False, seq), result.problem
    assert words in result.problem

    cli = site.cli_verify("--witness", str(witness))
    assert cli.returncode == 6
    assert words in cli.stderr

    with pytest.raises(ConfigError, match=words):
        ScoringService(site.settings(ledger_witness_file=witness))


def test_a_rollback_to_an_older_copy_is_caught_by_a_later_witness(site: Site) -> None:
    copy = site.root / "copy.sqlite"
    shutil.copy(site.db, copy)  # the ledger closed at row 20: no -wal to carry
    site.write(10, start=ROWS)
    witness = site.witness()
    shutil.copy(copy, site.db)
    assert site.verify().ok
    result = site.verify(witness)
    assert (result.ok, result.seq) == (False, ROWS + 1)
    assert f"ends at row {ROWS}, before the witnessed checkpoint at row {ROWS + 10}" in (
        result.problem
    )
    with_witness = site.cli_verify("--witness", str(witness), "--json")
    assert json.loads(with_witness.stdout)["ok"] is False
    # A witness that is still in the chain passes, and names its row.
    site.write(2, start=ROWS)
    assert site.verify(witness).ok is False  # other rows at 21..30: still not the witnessed head


def test_a_witness_still_in_the_chain_passes(site: Site) -> None:
    witness = site.witness()
    site.write(7, start=ROWS)
    result = site.verify(witness)
    assert (result.ok, result.witnessed) == (True, ROWS), result.problem
    cli = site.cli_verify("--witness", str(witness))
    assert cli.returncode == 0, cli.stderr
    assert f"the witnessed checkpoint at row {ROWS} is in the chain" in cli.stdout
    ScoringService(site.settings(ledger_witness_file=witness)).close()


def test_an_altered_witness_file_is_refused(site: Site) -> None:
    witness = site.witness()
    data = json.loads(witness.read_text())
    data["seq"] = 3
    witness.write_text(json.dumps(data))
    result = site.cli_verify("--witness", str(witness))
    assert result.returncode == 3
    assert "its signature does not verify" in result.stderr


# ------------------------------------------------------------------------------ at the server


def test_the_server_exits_with_one_clear_line_on_a_broken_chain(site: Site) -> None:
    edit_and_rechain_sha256(site)
    config = site.root / "centinela.yaml"
    config.write_text(
        f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {site.root / 'registry'}\n"
        f"ledger_path: {site.db}\nledger_key_file: {site.key_file}\n"
        f"ledger_signing_key_file: {site.signing_file}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
    served = subprocess.run(
        [CENTINELA, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert served.returncode == 3
    lines = served.stderr.strip().splitlines()
    assert len(lines) == 1, served.stderr
    assert lines[0].startswith(f"error: ledger {site.db}: row 7 was edited")
    assert "refusing to append to a broken chain" in lines[0]


def test_the_server_checks_the_tail_and_leaves_older_rows_to_verify(site: Site) -> None:
    """An edit before the tail that nobody re-chained is found by ``ledger verify``; once
    re-chained, the tail breaks too."""
    edit(site.db, 2, "green", "red")
    assert site.verify().seq == 2
    tail = site.settings(ledger_start_check_rows=5)  # rows 16..20, the latest checkpoint 20
    ScoringService(tail).close()
    with pytest.raises(ConfigError, match="row 2 was edited"):
        ScoringService(site.settings(ledger_start_check_rows=0))  # 0: the whole chain
    rechain(site.db, 2, sha256_chain)
    with pytest.raises(ConfigError, match="row 18 was edited"):
        ScoringService(site.settings(ledger_start_check_rows=3))  # rows 18..20


# ------------------------------------------------------------------------------------- keys


def test_key_rotation(site: Site) -> None:
    added = centinela("ledger", "new-key", "--key-file", str(site.key_file))
    assert added.returncode == 0, added.stderr
    assert "added key k2" in added.stdout
    assert list(site.keys().keys) == ["k1", "k2"]
    assert stat.S_IMODE(site.key_file.stat().st_mode) == 0o600
    site.write(6, start=ROWS)  # after a restart the server writes with k2

    result = site.verify()
    assert result.ok, result.problem
    assert result.keys == {"k1": (1, ROWS), "k2": (ROWS + 1, ROWS + 6)}
    cli = site.cli_verify()
    assert f"(k1 rows 1-{ROWS}, k2 rows {ROWS + 1}-{ROWS + 6})" in cli.stdout

    # Without the old key, its rows cannot be checked, and the key is named.
    ring = json.loads(site.key_file.read_text())
    only_new = site.root / "secrets" / "only-k2.json"
    only_new.write_text(json.dumps({"k2": ring["k2"]}))
    missing = centinela(
        "ledger", "verify", "--db", str(site.db), "--key-file", str(only_new),
        "--public-key", str(site.public_file),
    )  # fmt: skip
    assert missing.returncode == 6
    assert "row 1 cannot be checked: key id 'k1' is not in the key ring" in missing.stderr
    with pytest.raises(ConfigError, match="key id 'k1' is not in the key ring"):
        ScoringService(site.settings(ledger_key_file=only_new, ledger_start_check_rows=0))
    # The server itself needs only the keys of the tail it checks.
    ScoringService(site.settings(ledger_key_file=only_new, ledger_start_check_rows=3)).close()


def test_signing_key_rotation(site: Site) -> None:
    old_public = site.root / "old-signing.pub.pem"
    old_public.write_text(site.public_file.read_text())
    generate_signing_key(site.signing_file)  # the new key replaces the old file
    site.public_file.write_text(public_key_pem(site.signing_key().public_key()))
    with pytest.raises(ConfigError, match="which is not trusted"):
        ScoringService(site.settings())  # the latest checkpoint is the old key's
    site.write(6, start=ROWS, ledger_public_key_files=[old_public])
    assert site.cli_verify().returncode == 6  # the old checkpoints need the old public key
    both = site.cli_verify("--public-key", str(old_public))
    assert both.returncode == 0, both.stderr
    assert "6 checkpoints signed by" in both.stdout


def test_a_key_from_the_environment(site: Site) -> None:
    key = base64.b64encode(b"k3 key from a secret store, 32b").decode()
    site.write(2, start=ROWS, ledger_key=f"k3:{key}")
    assert site.verify().ok is False  # the ring file alone lacks k3
    env = {**os.environ, "CENTINELA_LEDGER_KEY": f"k3:{key}"}
    result = subprocess.run(
        [CENTINELA, "ledger", "verify", "--db", str(site.db), "--key-file", str(site.key_file),
         "--public-key", str(site.public_file), "--json"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keys"] == {"k1": [1, ROWS], "k3": [ROWS + 1, ROWS + 2]}


def test_the_mac_is_hmac_sha256_over_the_row(site: Site) -> None:
    """The documented construction over the bytes stored, so an auditor can recompute it
    independently (rows stored as JSON text: tests/test_ledger_compact.py)."""
    conn = sqlite3.connect(site.db)
    seq, kind, did, at, payload, prev, digest = conn.execute(
        "SELECT seq, kind, decision_id, recorded_at, payload, prev_hash, hash FROM ledger "
        "WHERE seq = 2"
    ).fetchone()
    conn.close()
    assert isinstance(payload, bytes)  # a compact record, a BLOB
    parts = [p.encode() for p in (COMPACT_ROW_DOMAIN, "k1", prev, str(seq), kind, did, at)]
    message = b"".join(len(p).to_bytes(8, "big") + p for p in [*parts, payload])
    assert hmac.new(site.keys().keys["k1"], message, hashlib.sha256).hexdigest() == digest


def test_default_keys_are_generated_beside_the_ledger_once(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "registry", tmp_path)
    service = ScoringService(settings)
    assert service.ledger is not None
    service.ledger.append(Entry("decision", "d", {})).result(timeout=10)
    for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    service.close()
    key, signing = tmp_path / "ledger.key", tmp_path / "ledger.signing.pem"
    assert stat.S_IMODE(key.stat().st_mode) == stat.S_IMODE(signing.stat().st_mode) == 0o600
    before = key.read_bytes()
    ScoringService(settings).close()
    assert key.read_bytes() == before
    assert verify(tmp_path / "ledger.sqlite").ok  # the CLI's defaults find them

    key.unlink()  # a lost key is not silently replaced once rows need it
    with pytest.raises(ConfigError, match=r"rows keyed with k1 but its key file .* is missing"):
        ScoringService(settings)
    assert not key.exists()


def test_a_configured_key_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    settings = server_settings(
        tmp_path / "registry", tmp_path, ledger_key_file=tmp_path / "nowhere.json"
    )
    with pytest.raises(ConfigError, match="cannot read ledger key file"):
        ScoringService(settings)


# --------------------------------------------------------------------- ledgers from before keys


def legacy_ledger(db: Path, n: int) -> None:
    """A ledger exactly as the code before keys wrote it: no key ids, plain SHA-256, 0644."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('decision', 'outcome')),
            decision_id TEXT NOT NULL, recorded_at TEXT NOT NULL, payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX ledger_decision ON ledger (decision_id, kind);
        CREATE TABLE ledger_head (
            id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
        """
    )
    prev = "0" * 64
    for seq in range(1, n + 1):
        at, payload = f"2025-06-0{seq}T00:00:00.000000+00:00", f'{{"i":{seq}}}'
        digest = row_hash(prev, seq, "decision", f"old{seq}", at, payload)
        conn.execute(
            "INSERT INTO ledger VALUES (?, 'decision', ?, ?, ?, ?, ?)",
            (seq, f"old{seq}", at, payload, prev, digest),
        )
        prev = digest
    conn.execute("INSERT INTO ledger_head VALUES (1, ?, ?)", (n, prev))
    conn.commit()
    conn.close()
    db.chmod(0o644)


def test_a_ledger_from_before_keys_is_refused_until_sealed(tmp_path: Path) -> None:
    site = Site(tmp_path)
    add_key(site.key_file)
    generate_signing_key(site.signing_file)
    site.public_file.write_text(public_key_pem(site.signing_key().public_key()))
    legacy_ledger(site.db, 5)

    before = site.verify()
    assert (before.ok, before.seq) == (False, 1)
    assert "rows 1..5 are unkeyed (written before keys were configured)" in before.problem
    assert "centinela ledger seal" in before.problem
    with pytest.raises(ConfigError, match=r"rows 1\.\.5 are unkeyed .*ledger seal"):
        ScoringService(site.settings())
    assert stat.S_IMODE(site.db.stat().st_mode) == 0o600  # narrowed when opened

    sealed = site.cli_seal()
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed rows 1..5" in sealed.stdout
    again = site.cli_seal()
    assert again.returncode == 3
    assert "sealed already" in again.stderr

    site.write(3, start=100)  # the server chains on from the last unkeyed row
    result = site.verify()
    assert result.ok, result.problem
    assert (result.unkeyed, result.keys) == (5, {"k1": (6, 8)})
    cli = site.cli_verify()
    assert cli.returncode == 0, cli.stderr
    assert "rows 1..5 are unkeyed (written before keys were configured), sealed by" in cli.stdout

    # The sealed prefix is as safe as the rest: re-chaining it breaks the seal.
    sql(site.db, "UPDATE ledger SET payload = '{\"i\":42}' WHERE seq = 2")
    rechain(site.db, 2, sha256_chain)
    broken = site.verify()
    assert (broken.ok, broken.seq) == (False, 5)
    assert "differs from the checkpoint" in broken.problem


def test_sealing_refuses_a_broken_old_ledger(tmp_path: Path) -> None:
    site = Site(tmp_path)
    add_key(site.key_file)
    generate_signing_key(site.signing_file)
    legacy_ledger(site.db, 5)
    sql(site.db, "UPDATE ledger SET payload = '{\"i\":42}' WHERE seq = 3")
    sealed = site.cli_seal()
    assert sealed.returncode == 3
    assert "cannot seal" in sealed.stderr
    assert "row 3 was edited" in sealed.stderr


def test_public_keys_load_from_pem_private_key_or_checkpoint(site: Site) -> None:
    fingerprint_of = site.signing_key().public_key().public_bytes_raw()
    witness = site.witness()
    for source in (site.public_file, site.signing_file, witness):
        assert load_public_key(source).public_bytes_raw() == fingerprint_of
