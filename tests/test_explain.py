"""`centinela ledger explain`: any ledgered decision, GREEN included, explained afterwards from
the features the ledger stored and the model that made it, with its score reproduced."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scoring.decisions import Decision
from scoring.ledger import encode_payload, payload_text
from scoring.service import ScoringService
from tests.conftest import server_settings
from tests.support import centinela, make_shipment


@pytest.fixture(scope="module")
def decided(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Decision]:
    workdir = tmp_path_factory.mktemp("explain")
    service = ScoringService(server_settings(registry, workdir))
    service.load()
    (decision,) = service.score([make_shipment("EXPLAIN-1")])
    service.close()
    return workdir / "ledger.sqlite", decision


def test_a_decision_is_explained_by_its_model_and_its_score_reproduced(
    decided: tuple[Path, Decision], registry: Path
) -> None:
    db, decision = decided
    args = ("ledger", "explain", decision.decision_id, "--db", str(db))
    result = centinela(*args, "--registry", str(registry), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["decision_id"] == decision.decision_id
    assert doc["shipment_id"] == "EXPLAIN-1"
    assert doc["lane"] == decision.scored.lane
    assert doc["reproduced"] is True
    assert doc["score"] == pytest.approx(decision.scored.risk_score, abs=1e-12)
    assert doc["reasons"] or doc["pushed_down"]  # a tree model's row has contributions
    assert all(r["code"].startswith("MODEL_") and r["contribution"] > 0 for r in doc["reasons"])
    assert all(d["contribution"] < 0 for d in doc["pushed_down"])

    text = centinela(*args, "--registry", str(registry))
    assert text.returncode == 0, text.stderr
    assert "score reproduced" in text.stdout


def test_an_unknown_decision_is_not_found(decided: tuple[Path, Decision], registry: Path) -> None:
    db, _ = decided
    result = centinela("ledger", "explain", "nope", "--db", str(db), "--registry", str(registry))
    assert result.returncode == 4
    assert "no decision with id 'nope'" in result.stderr


def test_features_that_no_longer_give_the_recorded_score_are_refused(
    decided: tuple[Path, Decision], registry: Path, tmp_path: Path
) -> None:
    db, decision = decided
    copy = tmp_path / "ledger.sqlite"
    copy.write_bytes(db.read_bytes())
    conn = sqlite3.connect(copy)
    (stored,) = conn.execute(
        "SELECT payload FROM ledger WHERE decision_id = ?", (decision.decision_id,)
    ).fetchone()
    doc = json.loads(payload_text(stored))
    doc["risk_score"] = doc["risk_score"] + 0.25  # a row edited after the fact
    edited = encode_payload(json.dumps(doc, sort_keys=True, separators=(",", ":")))
    conn.execute(
        "UPDATE ledger SET payload = ? WHERE decision_id = ?", (edited, decision.decision_id)
    )
    conn.commit()
    conn.close()
    result = centinela(
        "ledger", "explain", decision.decision_id, "--db", str(copy), "--registry", str(registry)
    )
    assert result.returncode == 5
    assert "not the recorded" in result.stderr
