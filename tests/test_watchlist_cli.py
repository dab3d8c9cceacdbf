"""``centinela watchlist validate`` and ``match``, through typer's runner and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from training.watchlist_cli import app

ROOT = Path(__file__).parents[1]
BAD = Path(__file__).parent / "data" / "watchlist_bad"
runner = CliRunner()


def test_validate_packaged_file() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert (
        "OK watchlist.yaml: version 2026.11.1, 43 entries (40 substances, 3 equipment)"
        in " ".join(result.output.split())
    )


def test_validate_bad_file_names_entry_and_field() -> None:
    result = runner.invoke(app, ["validate", str(BAD / "norfentanyl_bad_check_digit.yaml")])
    assert result.exit_code == 3
    text = " ".join(result.output.split())
    assert "watchlist is invalid" in text
    assert (
        "entries[1] (norfentanyl).cas[0].number: 1609-66-5 fails the CAS check digit: last digit "
        "is 5, the rule gives 1"
    ) in text


def test_validate_missing_file() -> None:
    result = runner.invoke(app, ["validate", "no/such/watchlist.yaml"])
    assert result.exit_code == 3
    assert "cannot read watchlist" in result.output


def test_match_json_shape() -> None:
    result = runner.invoke(
        app, ["match", "calcium chloride", "--hs", "2827.20", "--cas", "39742-60-4", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["hits", "mismatch", "watchlistVersion"]
    assert payload["watchlistVersion"] == "2026.11.1"
    assert payload["hits"] == [
        {
            "entryId": "npp",
            "name": "N-Phenethyl-4-piperidone",
            "matchType": "cas",
            "matchedText": "39742-60-4",
            "similarity": 1.0,
        }
    ]
    assert [(m["entryId"], m["kind"]) for m in payload["mismatch"]] == [
        ("npp", "cas_under_other_hs"),
        ("npp", "cas_under_benign_description"),
    ]
    assert all(set(m) == {"entryId", "kind", "detail"} for m in payload["mismatch"])


def test_match_table_output() -> None:
    result = runner.invoke(app, ["match", "pseudoefedrine hcl 25 kg"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "pseudoephedrine" in result.output
    assert "name_fuzzy" in result.output
    none = runner.invoke(app, ["match", "cotton t-shirts"])
    assert "no watchlist hits (watchlist 2026.11.1)" in none.output


def test_match_as_subprocess_names_npp() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "training.watchlist_cli", "match",
         "25 kg drums 1-phenethyl 4 piperidinone 99%", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["hits"][0]["entryId"] == "npp"
    assert payload["hits"][0]["matchType"] == "name_exact"
    assert payload["hits"][0]["matchedText"] == "1-phenethyl 4 piperidinone"
    assert payload["mismatch"] == []
