"""``centinela watchlist validate`` and ``match``, through typer's runner and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.watchlist_cli import app

ROOT = Path(__file__).parents[1]
BAD = Path(__file__).parent / "data" / "watchlist_bad"
runner = CliRunner()


def test_validate_packaged_file() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert (
        "OK watchlist.yaml: version 2026.11.2, 43 entries (40 substances, 3 equipment)"
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
    assert list(payload) == ["hits", "mismatch", "invalidCas", "watchlistVersion"]
    assert payload["invalidCas"] == []
    assert payload["watchlistVersion"] == "2026.11.2"
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
    assert "no watchlist hits (watchlist 2026.11.2)" in none.output


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


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.watchlist_cli", "match", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_invalid_declared_cas_is_reported_not_matched() -> None:
    completed = _run_cli("calcium chloride", "--hs", "2827.20", "--cas", "39742-60-5")
    assert completed.returncode == 0, completed.stderr
    text = " ".join(completed.stdout.split())
    assert "no watchlist hits" in text
    assert "declared CAS 39742-60-5 is invalid: check digit is 5, the CAS rule gives 4" in text
    shape = _run_cli("sample", "--cas", "12-3")
    assert "declared CAS '12-3' is invalid: not shaped like a CAS number" in " ".join(
        shape.stdout.split()
    )


def test_invalid_declared_cas_in_json() -> None:
    completed = _run_cli(
        "calcium chloride", "--cas", "39742-60-5", "--cas", "39742-60-4", "--cas", "x1", "--json"
    )
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert [h["entryId"] for h in payload["hits"]] == ["npp"]
    assert payload["invalidCas"] == [
        {
            "cas": "39742-60-5",
            "status": "check_digit",
            "problem": "check digit is 5, the CAS rule gives 4",
        },
        {
            "cas": "X1",
            "status": "shape",
            "problem": "not shaped like a CAS number (NNNNNNN-NN-R, 2-7 digits first)",
        },
    ]


@pytest.mark.parametrize(
    "written",
    ["039742-60-4", "39742604", "\uff13\uff19\uff17\uff14\uff12\uff0d\uff16\uff10\uff0d\uff14",
     "\u0663\u0669\u0667\u0664\u0662\u2013\u0666\u0660\u2013\u0664", " 39742 60 4 "],
)  # fmt: skip
def test_equivalent_cas_writings_match_in_cli(written: str) -> None:
    completed = _run_cli("chemical raw material", "--cas", written, "--json")
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert [(h["entryId"], h["matchType"], h["matchedText"]) for h in payload["hits"]] == [
        ("npp", "cas", "39742-60-4")
    ]
    assert payload["invalidCas"] == []


def test_disguised_name_and_hs_in_cli() -> None:
    # Cyrillic a and p, a zero-width space, a soft hyphen and a full-width dotted HS code.
    text = "4-\u0430nilino\u200bpi\u0440eri\u00addine 5 kg"
    completed = _run_cli(text, "--hs", "\uff12\uff19\uff13\uff13.\uff13\uff19", "--json")
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    found = {(h["entryId"], h["matchType"]) for h in payload["hits"]}
    assert ("4-ap", "name_exact") in found
    assert ("4-ap", "hs_broad") in found
    name = next(h for h in payload["hits"] if h["matchType"] == "name_exact")
    assert name["matchedText"] == "4-anilinopiperidine"
