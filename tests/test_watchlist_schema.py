"""Validation of watchlist files: every error kind names the entry and field, and says why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.errors import ConfigError
from features.watchlist import (
    cas_check_digit,
    is_valid_cas,
    load_watchlist,
    normalize_cas,
    parse_watchlist,
    parse_watchlist_text,
    read_watchlist_file,
)

BAD = Path(__file__).parent / "data" / "watchlist_bad"


def _entry(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": "npp",
        "name": "N-Phenethyl-4-piperidone",
        "kind": "substance",
        "route_family": "fentanyl-npp-anpp",
        "cas": [{"number": "39742-60-4", "form": "base", "confidence": "H", "source": "famhp.be"}],
        "hs": [
            {"code": "2933.37", "specificity": "specific", "confidence": "H", "source": "HS 2022"}
        ],
        "sources": ["test"],
    }
    entry.update(overrides)
    return entry


def _errors(*entries: dict[str, object], **top: object) -> list[str]:
    data: dict[str, object] = {"version": "2026.11.1", "entries": list(entries), **top}
    with pytest.raises(ConfigError) as caught:
        parse_watchlist(data)
    return [str(v) for v in caught.value.violations]


# ------------------------------------------------------------------ CAS rule


@pytest.mark.parametrize(
    ("cas", "valid"),
    [
        ("39742-60-4", True),
        ("1609-66-1", True),
        ("99918-43-1", True),
        ("7723-14-0", True),
        ("1609-66-5", False),
        ("1155-56-4", False),
        ("39742-60-5", False),
        ("3974260-4", False),
        ("1-23-4", False),
    ],
)
def test_cas_check_digit(cas: str, valid: bool) -> None:
    assert is_valid_cas(cas) is valid


def test_check_digit_worked_example_from_reference() -> None:
    assert cas_check_digit("3974260") == 4
    assert cas_check_digit("39742-60") == 4


def test_normalize_cas_accepts_digits_only_and_rejects_bad_checks() -> None:
    assert normalize_cas(" 39742604 ") == "39742-60-4"
    assert normalize_cas("39742-60-4") == "39742-60-4"
    assert normalize_cas("1609-66-5") is None
    assert normalize_cas("not a cas") is None


# ------------------------------------------------------------------ the shipped file


def test_packaged_watchlist_is_valid_and_covers_the_reference() -> None:
    watchlist = load_watchlist()
    assert watchlist.version == "2026.11.2"
    ids = set(watchlist.entry_ids)
    required = {
        "npp", "anpp", "4-ap", "boc-4-ap", "norfentanyl", "4-piperidone", "boc-4-piperidone",
        "propionyl-chloride", "propionic-anhydride", "aniline", "phenethyl-bromide",
        "benzylfentanyl", "1-benzyl-4-piperidone", "sodium-borohydride", "stab", "piperidine",
        "4-anilino-1-benzylpiperidine", "ephedrine", "pseudoephedrine", "norephedrine", "p2p",
        "paa", "apaan", "apaa", "mapa", "bmk-glycidic-acid", "depapd", "methylamine",
        "n-methylformamide", "benzyl-cyanide", "benzaldehyde", "nitroethane", "red-phosphorus",
        "iodine", "hydriodic-acid", "ethyl-phenylacetate", "methyl-phenylacetate",
        "phenylacetyl-chloride", "acetic-acid", "tablet-press", "capsule-filler", "tablet-tooling",
    }  # fmt: skip
    assert required <= ids
    npp = watchlist.entry("npp")
    assert next((h.code, h.specificity) for h in npp.hs) == ("293337", "specific")
    four_ap = watchlist.entry("4-ap")
    assert {c.number: c.form for c in four_ap.cas} == {"23056-29-3": "base", "99918-43-1": "2HCl"}
    assert "2933399073" in {h.code for h in four_ap.hs}


def test_unsourced_items_are_marked_low_confidence() -> None:
    for entry in load_watchlist().spec.entries:
        for item in [*entry.cas, *entry.hs, *entry.memberships]:
            assert (item.source == "unsourced") == (item.confidence == "L"), entry.id


# ------------------------------------------------------------------ reference §8 fixtures


@pytest.mark.parametrize(
    ("fixture", "field", "message"),
    [
        (
            "norfentanyl_bad_check_digit.yaml",
            "entries[1] (norfentanyl).cas[0].number",
            "1609-66-5 fails the CAS check digit: last digit is 5, the rule gives 1",
        ),
        (
            "anilinobenzylpiperidine_bad_check_digit.yaml",
            "entries[0] (4-anilino-1-benzylpiperidine).cas[0].number",
            "1155-56-4 fails the CAS check digit: last digit is 4, the rule gives 2",
        ),
        (
            "benzylpiperidone_cas_as_4_piperidone.yaml",
            "entries[0] (4-piperidone).cas[1]",
            "known misattribution: 3612-20-2 is 1-benzyl-4-piperidone",
        ),
        (
            "mapa_cas_as_bmk_glycidate.yaml",
            "entries[0] (bmk-glycidate).cas[0]",
            "known misattribution: 16648-44-5 is MAPA",
        ),
        (
            "propionic_anhydride_wrong_cas.yaml",
            "entries[0] (propionic-anhydride).cas[0]",
            "known misattribution: 122-90-7 is not propionic anhydride",
        ),
        (
            "npp_wrong_formula.yaml",
            "entries[0] (npp).formula",
            "known misattribution: C11H13NO is a wrong formula for NPP",
        ),
        (
            "npp_formula_disagrees_with_mw.yaml",
            "entries[0] (phenethylpiperidone).mw",
            "formula C11H13NO weighs 175.23 g/mol but mw says 203.28",
        ),
    ],
)
def test_reference_section_8_mistakes_are_rejected(fixture: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_watchlist_file(BAD / fixture)
    assert len(caught.value.violations) == 1
    violation = caught.value.violations[0]
    assert violation.field == field
    assert violation.description.startswith(message)
    assert str(BAD / fixture) in caught.value.message


def test_misattributed_cas_is_fine_on_its_true_owner() -> None:
    entry = _entry(
        id="1-benzyl-4-piperidone",
        name="1-Benzyl-4-piperidone",
        cas=[{"number": "3612-20-2", "form": "base", "confidence": "H", "source": "chemicals"}],
        hs=[],
    )
    spec = parse_watchlist({"version": "2026.11.1", "entries": [entry]})
    assert spec.entries[0].cas[0].number == "3612-20-2"


# ------------------------------------------------------------------ each error kind


def test_duplicate_ids() -> None:
    second = _entry(cas=[], name="Another")
    assert _errors(_entry(), second) == [
        "entries[1] (npp).id: duplicate id 'npp', first at entries[0]"
    ]


def test_duplicate_cas_across_entries() -> None:
    other = _entry(id="npp-copy", name="NPP copy", hs=[])
    assert _errors(_entry(), other) == [
        "entries[1] (npp-copy).cas[0]: CAS 39742-60-4 is already listed under entries[0] (npp)"
    ]


def test_name_shared_by_two_entries() -> None:
    other = _entry(id="other", name="Other", cas=[], synonyms=["n-phenethyl 4 piperidone"])
    assert _errors(_entry(), other) == [
        "entries[1] (other).synonyms[0]: name 'n-phenethyl 4 piperidone' also names entries[0] "
        "(npp); a name must identify one entry"
    ]


def test_unknown_keys_in_entry_item_and_top_level() -> None:
    cas = [{"number": "39742-60-4", "form": "base", "confidence": "H", "source": "x", "cas_no": 1}]
    errors = _errors(_entry(synonym=["typo"], cas=cas), extra=1)
    assert sorted(errors) == [
        "entries[0] (npp).cas[0].cas_no: unknown key",
        "entries[0] (npp).synonym: unknown key",
        "extra: unknown key",
    ]


def test_hs_format() -> None:
    hs = [
        {"code": "2933", "specificity": "specific", "confidence": "H", "source": "x"},
        {"code": 2933.37, "specificity": "specific", "confidence": "H", "source": "x"},
        {"code": "2933.37", "specificity": "narrow", "confidence": "H", "source": "x"},
    ]
    errors = _errors(_entry(hs=hs))
    assert errors[0] == (
        "entries[0] (npp).hs[0].code: HS code '2933' must be 6 to 10 digits, optionally dotted "
        "like 2933.37 or 2933.39.90"
    )
    assert errors[1] == (
        "entries[0] (npp).hs[1].code: HS code 2933.37 was read as a number: quote it, "
        'e.g. "2933.37"'
    )
    assert errors[2].startswith("entries[0] (npp).hs[2].specificity: Input should be 'specific'")


def test_hs_codes_are_normalised_to_digits() -> None:
    hs = [{"code": "2933.39.90", "specificity": "broad", "confidence": "M", "source": "x"}]
    spec = parse_watchlist({"version": "2026.11.1", "entries": [_entry(hs=hs)]})
    assert spec.entries[0].hs[0].code == "29333990"


def test_dates() -> None:
    memberships = [
        {"list": "dea-list-i", "effective": "2023-02-30", "confidence": "H", "source": "x"},
        {
            "list": "dea-list-i",
            "decided": "2024-05-01",
            "effective": "2023-05-12",
            "confidence": "H",
            "source": "x",
        },
        {
            "list": "dea-list-i",
            "year": 2022,
            "effective": "2023-05-12",
            "confidence": "H",
            "source": "x",
        },
        {"list": "dea-list-9", "confidence": "H", "source": "x"},
    ]
    errors = _errors(_entry(memberships=memberships))
    assert errors[0].startswith(
        "entries[0] (npp).memberships[0].effective: Input should be a valid date"
    )
    assert (
        errors[1]
        == "entries[0] (npp).memberships[1]: decided 2024-05-01 is after effective 2023-05-12"
    )
    assert (
        errors[2]
        == "entries[0] (npp).memberships[2]: year 2022 disagrees with effective date 2023-05-12"
    )
    assert errors[3].startswith("entries[0] (npp).memberships[3].list: Input should be")


def test_confidence_and_source_must_agree() -> None:
    cas = [{"number": "39742-60-4", "form": "base", "confidence": "H", "source": "unsourced"}]
    hs = [{"code": "2933.37", "specificity": "specific", "confidence": "L", "source": "a blog"}]
    assert _errors(_entry(cas=cas, hs=hs)) == [
        "entries[0] (npp).cas[0]: confidence H needs a source; unsourced items are L",
        "entries[0] (npp).hs[0]: confidence L means no source was found: write source: unsourced",
    ]


def test_missing_fields_and_bad_id() -> None:
    entry = _entry(id="NPP Main")
    del entry["kind"]
    assert _errors(entry) == [
        "entries[0] (NPP Main).id: String should match pattern '^[a-z0-9]+(-[a-z0-9]+)*$'",
        "entries[0] (NPP Main).kind: required field is missing",
    ]


def test_equipment_cannot_have_cas() -> None:
    entry = _entry(id="tablet-press", name="Tablet press", kind="equipment", hs=[])
    assert _errors(entry) == ["entries[0] (tablet-press).cas: equipment has no CAS numbers"]


def test_version_format() -> None:
    assert _errors(_entry(), version="v1") == [
        "version: String should match pattern '^\\d{4}\\.\\d{1,2}\\.\\d+$'"
    ]


def test_yaml_duplicate_keys_are_rejected_not_silently_merged() -> None:
    text = 'version: "2026.11.1"\nentries: []\nversion: "2026.11.2"\n'
    with pytest.raises(ConfigError) as caught:
        parse_watchlist_text(text, "dup.yaml")
    assert caught.value.violations[0].field == "dup.yaml:3"
    assert "duplicate key 'version'" in caught.value.violations[0].description


def test_all_errors_are_reported_in_one_run() -> None:
    bad_cas = [{"number": "1609-66-5", "form": "base", "confidence": "H", "source": "x"}]
    errors = _errors(_entry(cas=bad_cas), _entry(id="npp", name="Again", cas=[], hs=[]))
    assert errors == [
        "entries[0] (npp).cas[0].number: 1609-66-5 fails the CAS check digit: last digit is 5, "
        "the rule gives 1",
        "entries[1] (npp).id: duplicate id 'npp', first at entries[0]",
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read watchlist"):
        read_watchlist_file(tmp_path / "missing.yaml")


def test_packaged_file_round_trips_through_yaml() -> None:
    text = (Path(__file__).parents[1] / "features" / "watchlist" / "watchlist.yaml").read_text()
    assert yaml.safe_load(text)["version"] == load_watchlist().version
