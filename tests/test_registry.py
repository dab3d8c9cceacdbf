"""The promotion gate, the verdicts and the promotion log, through ``centinela models`` as an
analyst runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from features.errors import FailedPrecondition
from scoring.registry import Registry
from scoring.verdict import GateVerdict
from tests.model_registry import FAILING, PASSING, verdict
from tests.support import centinela


def models(*args: str, gated: Path) -> tuple[int, str, str]:
    result = centinela("models", *args, "--registry", str(gated))
    return result.returncode, result.stdout, result.stderr


def log_of(gated: Path) -> list[dict[str, object]]:
    """The promotion log as ``models log --json`` prints it (read here without a process)."""
    return [entry.to_json() for entry in Registry(gated).promotion_log()]


def test_the_first_model_is_logged_as_forced_with_what_promoted_it(gated: Path) -> None:
    [first] = log_of(gated)
    assert first["action"] == "promote"
    assert first["version"] == "v0001"
    assert first["forced"] is True
    assert first["gate"] is None
    assert first["by"] == "centinela train"
    assert first["reason"] == "first model of an empty registry: nothing to compare against"


def test_promote_without_a_verdict_is_refused_with_exit_6(gated: Path) -> None:
    code, _, err = models("promote", "v0002", gated=gated)
    assert code == 6
    assert "v0002 has no gate verdict" in err
    assert "centinela models compare v0002 --ledger" in err
    assert "--force --reason TEXT" in err
    assert Registry(gated).promoted() == "v0001"
    assert len(log_of(gated)) == 1


def test_promote_with_a_failed_verdict_prints_each_failed_check(gated: Path) -> None:
    Registry(gated).save_verdict("v0002", verdict("v0002", "v0001", *FAILING))
    code, _, err = models("promote", "v0002", gated=gated)
    assert code == 6
    assert "v0002's gate verdict failed" in err
    assert "recall at 2%: challenger 30.5% [25.9, 35.3] below champion" in err
    assert "calibration: Brier 0.0131 above the champion's 0.0102" in err
    assert "red share" not in err  # it passed
    assert Registry(gated).promoted() == "v0001"


def test_a_verdict_judged_against_another_champion_is_stale(gated: Path) -> None:
    registry = Registry(gated)
    # v0003 is judged against v0001; then v0002 is promoted, so that judgement no longer holds.
    shutil.copytree(gated / "v0002", gated / "v0003")
    registry.save_verdict("v0003", verdict("v0003", "v0001", *PASSING))
    registry.save_verdict("v0002", verdict("v0002", "v0001", *PASSING))
    assert models("promote", "v0002", gated=gated)[0] == 0
    code, _, err = models("promote", "v0003", gated=gated)
    assert code == 6
    assert "v0003's gate verdict is stale" in err
    assert "judged against v0001, but v0002 is promoted now" in err
    # A verdict from when the registry was empty is stale once anything is promoted.
    registry.save_verdict("v0001", verdict("v0001", None, *PASSING))
    code, _, err = models("promote", "v0001", gated=gated)
    assert code == 6
    assert "judged against an empty registry, but v0002 is promoted now" in err


def test_promote_with_a_passing_verdict_logs_the_gate(gated: Path) -> None:
    Registry(gated).save_verdict("v0002", verdict("v0002", "v0001", *PASSING))
    code, out, err = models("promote", "v0002", "--by", "ana.lopez", gated=gated)
    assert code == 0, err
    assert "promoted v0002 (gate passed vs v0001)" in out
    entry = log_of(gated)[-1]
    assert entry["version"] == "v0002"
    assert entry["replaced"] == "v0001"
    assert entry["by"] == "ana.lopez"
    assert entry["forced"] is False
    assert entry["gate"] == {"passed": True, "champion": "v0001"}
    assert "gate verdict passed against v0001" in str(entry["reason"])
    listed = json.loads(models("list", "--json", gated=gated)[1])
    assert [(m["version"], m["promoted"]) for m in listed] == [("v0001", False), ("v0002", True)]
    assert listed[1]["gate"]["passed"] is True
    assert listed[0]["gateStatus"] == "not judged"


def test_the_first_promotion_of_an_empty_registry_is_gated_too(gated: Path) -> None:
    (gated / "registry.json").unlink()
    code, _, err = models("promote", "v0001", gated=gated)
    assert code == 6
    assert "v0001 has no gate verdict" in err
    Registry(gated).save_verdict("v0001", verdict("v0001", None, *PASSING))
    code, out, err = models("promote", "v0001", gated=gated)
    assert code == 0, err
    assert "promoted v0001 (gate passed vs empty registry)" in out
    assert log_of(gated)[-1]["gate"] == {"passed": True, "champion": None}


def test_force_needs_a_reason(gated: Path) -> None:
    code, _, err = models("promote", "v0002", "--force", gated=gated)
    assert code == 2
    assert "--force needs --reason TEXT" in err
    assert Registry(gated).promoted() == "v0001"


def test_a_forced_promotion_is_kept_in_the_log_with_its_reason(gated: Path) -> None:
    Registry(gated).save_verdict("v0002", verdict("v0002", "v0001", *FAILING))
    why = "watchlist 2025.06 names a new precursor; v0001 cannot see it"
    code, out, err = models(
        "promote", "v0002", "--force", "--reason", why, "--by", "ana.lopez", gated=gated
    )
    assert code == 0, err
    assert f"forced: {why}" in out
    assert Registry(gated).promoted() == "v0002"
    code, out, _ = models("log", "--json", gated=gated)
    assert code == 0
    entry = json.loads(out)[-1]
    assert (entry["forced"], entry["reason"]) == (True, why)
    assert entry["gate"] == {"passed": False, "champion": "v0001"}
    code, out, _ = models("log", gated=gated)
    assert code == 0
    assert f"promoted v0002 (replacing v0001) by ana.lopez [forced; failed vs v0001]: {why}" in out


def test_rollback_is_logged(gated: Path) -> None:
    models("promote", "v0002", "--force", "--reason", "trial", gated=gated)
    code, out, err = models(
        "rollback", "--by", "ana.lopez", "--reason", "too many REDs at MXZLO", gated=gated
    )
    assert code == 0, err
    assert "rolled back from v0002; v0001 is promoted" in out
    entry = log_of(gated)[-1]
    assert entry["action"] == "rollback"
    assert (entry["version"], entry["replaced"]) == ("v0001", "v0002")
    assert (entry["by"], entry["reason"], entry["forced"]) == (
        "ana.lopez",
        "too many REDs at MXZLO",
        False,
    )
    assert Registry(gated).history() == ["v0001"]


def test_a_record_from_before_the_log_still_reads_and_gains_one(gated: Path) -> None:
    (gated / "registry.json").write_text('{"history": ["v0001"]}')
    assert log_of(gated) == []
    assert models("list", gated=gated)[0] == 0
    Registry(gated).save_verdict("v0002", verdict("v0002", "v0001", *PASSING))
    assert models("promote", "v0002", gated=gated)[0] == 0
    record = json.loads((gated / "registry.json").read_text())
    assert record["history"] == ["v0001", "v0002"]
    assert [e["version"] for e in record["log"]] == ["v0002"]


def test_a_damaged_gate_json_is_a_clear_error(gated: Path) -> None:
    gate = gated / "v0002" / "gate.json"
    gate.write_text('{"challenger": "v0002", "champ')
    code, _, err = models("promote", "v0002", gated=gated)
    assert code == 1
    assert f"{gate}: the gate verdict is damaged" in err
    assert "Traceback" not in err

    doc = verdict("v0002", "v0001", *PASSING).to_json()
    doc["checks"][1]["passed"] = "yes"
    gate.write_text(json.dumps(doc))
    code, _, err = models("promote", "v0002", gated=gated)
    assert code == 1
    assert f"{gate}: field 'checks[1].passed' of the gate verdict: must be true or false" in err

    code, out, err = models("list", gated=gated)  # the listing goes on, and says so
    assert code == 0, err
    assert "unreadable" in out
    assert Registry(gated).promoted() == "v0001"


def test_a_verdict_that_contradicts_its_checks_is_refused(gated: Path) -> None:
    doc = verdict("v0002", "v0001", *FAILING).to_json()
    doc["passed"] = True
    (gated / "v0002" / "gate.json").write_text(json.dumps(doc))
    with pytest.raises(FailedPrecondition, match="passed=True disagrees with its checks"):
        Registry(gated).verdict("v0002")


def test_a_damaged_log_entry_is_named(gated: Path) -> None:
    record = json.loads((gated / "registry.json").read_text())
    record["log"][0]["forced"] = "no"
    (gated / "registry.json").write_text(json.dumps(record))
    code, _, err = models("log", gated=gated)
    assert code == 1
    assert "registry.json: the registry record is damaged (log entry 0: 'forced'" in err
    assert Registry(gated).promoted() == "v0001"  # serving reads the history alone


def test_a_verdict_reads_back_as_written_and_gives_its_reasons() -> None:
    failed = verdict("v0002", "v0001", *FAILING)
    again = GateVerdict.from_json(json.loads(json.dumps(failed.to_json())))
    assert again == failed
    assert failed.reasons() == [f"{name}: {detail}" for name, ok, detail in FAILING if not ok]
    passed = verdict("v0002", None, *PASSING)
    assert passed.passed
    assert passed.reasons() == [f"{name}: {detail}" for name, _, detail in PASSING]
