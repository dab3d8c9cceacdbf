"""The matcher: normalisation, misspellings, hard negatives, evidence strength, mismatches,
the bulk path's agreement with the live path, and loading a watchlist file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from features.errors import ConfigError, DataError
from features.tables import GOODS_SCHEMA
from features.watchlist import (
    EVIDENCE_THRESHOLD,
    GoodsMatches,
    Hit,
    LineMatch,
    Watchlist,
    find_cas,
    load_watchlist,
    normalize_cas,
)
from features.watchlist.results import HITS_SCHEMA, INVALID_CAS_SCHEMA, MISMATCHES_SCHEMA
from features.watchlist.text import normalize_text, tokenize

PACKAGED = Path(__file__).parents[1] / "features" / "watchlist" / "watchlist.yaml"


@pytest.fixture(scope="module")
def watchlist() -> Watchlist:
    return load_watchlist()


def _ids(found: LineMatch) -> set[str]:
    return set(found.identified())


def _name_hit(found: LineMatch, entry_id: str) -> Hit:
    hits = [h for h in found.hits if h.entry_id == entry_id and h.match_type.startswith("name")]
    assert hits, found
    return hits[0]


def _evidence(found: LineMatch) -> list[tuple[str, str, float, float]]:
    """The hits without ``matched_text``: what two equivalent writings must agree on."""
    return [(h.entry_id, h.match_type, h.similarity, h.strength) for h in found.hits]


# ------------------------------------------------------------------ normalisation


def test_normalisation_folds_case_accents_punctuation_and_variants() -> None:
    assert normalize_text("N-Phenethyl-4-PIPERIDINONE") == "n phenethyl 4 piperidone"
    assert normalize_text("ácido  fenilacético, 99%") == "acido fenilacetico 99"
    assert normalize_text("4AP·2HCl") == "4 ap 2 hcl"
    assert normalize_text("1-(2-phenylethyl)-4-piperidinone") == "1 2 phenethyl 4 piperidone"


@pytest.mark.parametrize(
    "text",
    [
        "1-phenethyl-4-piperidone",
        "N-phenethyl-4-piperidinone",
        "NPP",
        "fenetil piperidona",
        "1-phenethyl 4 piperidinone",
        "1 PHENETHYL-4-PIPERIDONE",
        "N-fenetil-4-piperidona",
        "phenethylpiperidone",
        "1-(2-phenylethyl)piperidin-4-one",
    ],
)
def test_npp_name_variants(watchlist: Watchlist, text: str) -> None:
    found = watchlist.match_line("", f"25 kg drums {text} 99%", ())
    hit = _name_hit(found, "npp")
    assert hit.match_type == "name_exact"
    assert hit.similarity == 1.0
    assert hit.matched_text == text
    assert _ids(found) == {"npp"}


def test_matched_text_is_the_span_as_written(watchlist: Watchlist) -> None:
    text = "ASSORTED LAB CHEMICALS INCLUDING N-Phenethyl-4-Piperidone (NPP), 50 KG NET"
    hit = _name_hit(watchlist.match_line("", text, ()), "npp")
    assert hit.matched_text == "N-Phenethyl-4-Piperidone"


@pytest.mark.parametrize(
    ("text", "entry_id", "corrected"),
    [
        ("1-phenethyl-4-piperdone", "npp", "piperdone"),
        ("pseudoefedrine hcl", "pseudoephedrine", "pseudoefedrine"),
        ("norfentanly hydrochloride", "norfentanyl", "norfentanly"),
        ("ephedrin HCL", "ephedrine", "ephedrin"),
        ("4-anilinopiperdine 5kg", "4-ap", "4-anilinopiperdine"),
    ],
)
def test_misspellings_are_fuzzy_hits(
    watchlist: Watchlist, text: str, entry_id: str, corrected: str
) -> None:
    hit = _name_hit(watchlist.match_line("", text, ()), entry_id)
    assert hit.match_type == "name_fuzzy"
    assert 0.8 <= hit.similarity < 1.0
    assert hit.strength >= EVIDENCE_THRESHOLD
    assert corrected in hit.matched_text


# ------------------------------------------------------------------ hard negatives


@pytest.mark.parametrize(
    "text",
    [
        "piperazine anhydrous",
        "pyridine 99.5%",
        "1-methyl-4-piperidone",
        "2,2,6,6-tetramethyl-4-piperidone",
        "ethyl piperidine-4-carboxylate",
        "N-methyl piperidine",
        "ephedra herbal tea",
        "nitromethane racing fuel",
        "N,N-dimethylformamide",
        "ethylamine 70% solution",
        "dimethylamine 40%",
        "4-chloroaniline",
        "ethyl methylphenylglycidate (strawberry aldehyde)",
        "pill crusher",
        "hydraulic press 100 ton",
        "tablet PC 10 inch",
        "SNPP satellite parts",
        "PAAS rack",
        "phenyl acetate",
    ],
)
def test_hard_negatives_identify_nothing(watchlist: Watchlist, text: str) -> None:
    assert _ids(watchlist.match_line("", text, ())) == set()


def test_piperidine_is_not_4_piperidone(watchlist: Watchlist) -> None:
    assert _ids(watchlist.match_line("2933.32", "piperidine 99%", ())) == {"piperidine"}
    assert _ids(watchlist.match_line("", "4-piperidone HCl", ())) == {"4-piperidone"}


def test_longer_name_wins_over_the_name_inside_it(watchlist: Watchlist) -> None:
    assert _ids(watchlist.match_line("", "1-boc-4-piperidone", ())) == {"boc-4-piperidone"}
    assert _ids(watchlist.match_line("", "1-benzyl-4-piperidone", ())) == {"1-benzyl-4-piperidone"}
    assert _ids(watchlist.match_line("", "pseudo ephedrine sulphate", ())) == {"pseudoephedrine"}


def test_functional_suffix_makes_a_different_substance(watchlist: Watchlist) -> None:
    assert _ids(watchlist.match_line("", "PIPERIDINE-4-ONE HCL", ())) == {"4-piperidone"}
    assert _ids(watchlist.match_line("", "piperidine-4-carboxamide", ())) == set()


def test_fentanyl_test_strips_are_weak_evidence(watchlist: Watchlist) -> None:
    strips = watchlist.match_line("3822.19", "fentanyl test strips 100 pcs", ())
    assert _name_hit(strips, "fentanyl").strength < EVIDENCE_THRESHOLD
    assert _ids(watchlist.match_line("", "fentanyl citrate 1 kg", ())) == {"fentanyl"}


def test_abbreviations_only_as_whole_tokens(watchlist: Watchlist) -> None:
    assert _ids(watchlist.match_line("", "NPP 99%", ())) == {"npp"}
    assert _ids(watchlist.match_line("", "NPPX resin", ())) == set()
    assert _ids(watchlist.match_line("", "snpp", ())) == set()
    assert (
        _name_hit(watchlist.match_line("", "NPP 99%", ()), "npp").strength
        < _name_hit(watchlist.match_line("", "N-phenethyl-4-piperidone 99%", ()), "npp").strength
    )


def test_benign_context_weakens_evidence(watchlist: Watchlist) -> None:
    textile = _name_hit(
        watchlist.match_line("5208.52", "cotton fabric, aniline dye", ()), "aniline"
    )
    chemical = _name_hit(watchlist.match_line("2921.41", "aniline, 99%", ()), "aniline")
    assert textile.strength < EVIDENCE_THRESHOLD <= chemical.strength
    mma = _name_hit(watchlist.match_line("2916.14", "MMA monomer", ()), "methylamine")
    assert mma.strength < EVIDENCE_THRESHOLD
    assert watchlist.match_line("5208.52", "cotton fabric, aniline dye", ()).mismatches == ()


# ------------------------------------------------------------------ CAS and HS


def test_cas_in_field_and_in_text(watchlist: Watchlist) -> None:
    found = watchlist.match_line("", "white powder", ["99918-43-1"])
    assert [(h.entry_id, h.match_type, h.matched_text) for h in found.hits] == [
        ("4-ap", "cas", "99918-43-1")
    ]
    in_text = watchlist.match_line("", "chemical CAS No. 79099-07-3, 20 kg", ())
    assert _ids(in_text) == {"boc-4-piperidone"}
    assert watchlist.match_line("", "CAS 39742604", ["39742604"]).hits[0].entry_id == "npp"


def test_invalid_cas_never_hits(watchlist: Watchlist) -> None:
    assert (
        watchlist.match_line("", "norfentanyl standard CAS 1609-66-5", ["1609-66-5"])
        .hits[0]
        .match_type.startswith("name")
    )
    assert watchlist.match_line("", "sample", ["1609-66-5", "39742-60-5"]).hits == ()
    assert find_cas("1609-66-5 and 1609-66-1") == [("1609-66-1", 14, 23)]


def test_hs_specific_national_and_broad(watchlist: Watchlist) -> None:
    npp = watchlist.match_line("2933370000", "intermediate", ())
    assert next((h.entry_id, h.match_type) for h in npp.hits) == ("npp", "hs_specific")
    china = watchlist.match_line("2933399073", "intermediate", ())
    assert _ids(china) == {"4-ap", "boc-4-ap", "norfentanyl"}
    broad = watchlist.match_line("2933.39", "2-aminopyridine", ())
    assert broad.hits
    assert all(h.match_type == "hs_broad" for h in broad.hits)
    assert _ids(broad) == set()


# ------------------------------------------------------------------ mismatch signals


def test_cas_under_other_hs_and_benign_description(watchlist: Watchlist) -> None:
    found = watchlist.match_line("2827.20", "calcium chloride anhydrous", ["39742-60-4"])
    kinds = {(m.entry_id, m.kind) for m in found.mismatches}
    assert kinds == {("npp", "cas_under_other_hs"), ("npp", "cas_under_benign_description")}
    detail = next(m.detail for m in found.mismatches if m.kind == "cas_under_other_hs")
    assert detail == (
        "CAS 39742-60-4 is NPP (N-Phenethyl-4-piperidone), but the line is declared under HS "
        "2827.20 (chapter 28); NPP (N-Phenethyl-4-piperidone) belongs in chapter 29"
    )


@pytest.mark.parametrize("hs", ["3004.90", "2827.20"])
def test_name_under_other_hs(watchlist: Watchlist, hs: str) -> None:
    found = watchlist.match_line(hs, "NPP 99% purity", ())
    assert [(m.entry_id, m.kind) for m in found.mismatches] == [("npp", "name_under_other_hs")]
    assert f"declared under HS {hs}" in found.mismatches[0].detail


def test_specific_hs_under_unrelated_description(watchlist: Watchlist) -> None:
    found = watchlist.match_line("2933.37", "resina combustible", ())
    assert [(m.entry_id, m.kind) for m in found.mismatches] == [
        ("npp", "hs_specific_under_benign_description")
    ]


def test_consistent_line_has_no_mismatch(watchlist: Watchlist) -> None:
    found = watchlist.match_line("2933.37", "N-phenethyl-4-piperidone", ["39742-60-4"])
    assert found.mismatches == ()
    assert {h.match_type for h in found.hits} == {"cas", "hs_specific", "name_exact"}


# ------------------------------------------------------------------ bulk path


def _goods(rows: list[tuple[str, str, list[str]]]) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "shipment_id": [f"S{i // 2}" for i in range(n)],
            "line_no": [i % 2 for i in range(n)],
            "hs_code": [r[0] for r in rows],
            "description": [r[1] for r in rows],
            "cas_numbers": [r[2] for r in rows],
            "quantity": [1.0] * n,
            "unit": ["kg"] * n,
            "gross_weight_kg": [1.0] * n,
            "declared_value_usd": [1.0] * n,
        },
        schema=GOODS_SCHEMA,
    )


def test_bulk_matches_live_exactly(watchlist: Watchlist) -> None:
    rows = [
        ("293337", "N-phenethyl-4-piperidone", ["39742-60-4"]),
        ("610910", "cotton t-shirts", []),
        ("282720", "calcium chloride", ["39742-60-4"]),
        ("610910", "cotton t-shirts", []),
        ("", "fenetil piperidona", []),
        ("293339", "4-anilinopiperidine 2HCl", ["99918-43-1", "bad"]),
    ]
    result = watchlist.match_goods_full(_goods(rows))
    assert result.hits.schema == pl.Schema(HITS_SCHEMA)
    assert result.mismatches.schema == pl.Schema(MISMATCHES_SCHEMA)
    expected_hits = []
    expected_mismatches = []
    for i, (hs, desc, cas) in enumerate(rows):
        found = watchlist.match_line(hs, desc, cas)
        key = (f"S{i // 2}", i % 2)
        expected_hits += [
            (*key, h.entry_id, h.name, h.match_type, h.matched_text, h.similarity, h.strength)
            for h in found.hits
        ]
        expected_mismatches += [(*key, m.entry_id, m.kind, m.detail) for m in found.mismatches]
    assert result.hits.rows() == expected_hits
    assert result.mismatches.rows() == expected_mismatches
    assert result.invalid_cas.schema == pl.Schema(INVALID_CAS_SCHEMA)
    assert result.invalid_cas.rows() == [("S2", 1, "BAD", "shape")]
    assert watchlist.match_goods(_goods(rows)).equals(result.hits)
    assert watchlist.goods_mismatches(_goods(rows)).equals(result.mismatches)
    strong = watchlist.match_goods(_goods(rows), min_strength=EVIDENCE_THRESHOLD)
    assert strong["strength"].min() >= EVIDENCE_THRESHOLD  # type: ignore[operator]


def test_bulk_handles_empty_and_null_values(watchlist: Watchlist) -> None:
    frame = _goods([("", "", [])]).with_columns(
        pl.lit(None, pl.String()).alias("description"),
        pl.lit(None, pl.List(pl.String())).alias("cas_numbers"),
    )
    assert watchlist.match_goods(frame).height == 0
    assert watchlist.match_goods(_goods([]).head(0)).height == 0


def test_bulk_requires_goods_columns(watchlist: Watchlist) -> None:
    with pytest.raises(DataError, match=r"lacks columns \['cas_numbers'\]"):
        watchlist.match_goods(_goods([]).drop("cas_numbers"))


# ------------------------------------------------------------------ loading


def test_load_watchlist_reads_a_file_and_names_every_invalid_field(tmp_path: Path) -> None:
    assert load_watchlist().version == "2026.11.2"
    newer = tmp_path / "watchlist.yaml"
    newer.write_text(PACKAGED.read_text().replace('version: "2026.11.2"', 'version: "2026.12.1"'))
    assert load_watchlist(newer).version == "2026.12.1"
    broken = tmp_path / "broken.yaml"
    broken.write_text(newer.read_text().replace("39742-60-4", "39742-60-5"))
    with pytest.raises(ConfigError, match=r"entries\[0\] \(npp\)\.cas\[0\]\.number"):
        load_watchlist(broken)
    newer.write_text("version: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_watchlist(newer)


# ------------------------------------------------------------------ disguised writings (issue 9)

_ZWSP, _ZWJ, _SHY, _WJ, _BOM = "\u200b", "\u200d", "\u00ad", "\u2060", "\ufeff"


@pytest.mark.parametrize(
    ("text", "entry_id", "matched"),
    [
        # Cyrillic a, p, e, i and o in Latin words
        ("4-\u0430nilino\u0440ip\u0435r\u0456din\u0435 5 kg", "4-ap", "4-anilinopiperidine"),
        (
            "N-\u0440hen\u0435thyl-4-\u0440i\u0440erid\u043en\u0435",
            "npp",
            "N-phenethyl-4-piperidone",
        ),
        # Greek omicron and Cyrillic a; upper-case Greek Nu and Rho in an abbreviation
        ("n\u03bfrfent\u0430nyl", "norfentanyl", "norfentanyl"),
        ("\u039d\u03a1\u03a1 99%", "npp", "NPP"),
        # zero-width characters and soft hyphens inside words
        (f"pipe{_ZWSP}ri{_SHY}dine", "piperidine", "piperidine"),
        (f"{_BOM}pseudo{_ZWJ}ephedrine{_WJ} HCl", "pseudoephedrine", "pseudoephedrine"),
        # combining marks put on letters to break a word (long stroke overlay)
        ("p\u0336i\u0336p\u0336eridine 99%", "piperidine", "p\u0336i\u0336p\u0336eridine"),
        # a combining accent on a Cyrillic look-alike: the span still covers the whole name
        ("N-\u0440hen\u0435\u0301thyl-4-piperidone", "npp", "N-phene\u0301thyl-4-piperidone"),
        # dash variants and full-width letters
        ("1\u2010phenethyl\u20134\u2212piperidone", "npp", "1-phenethyl-4-piperidone"),
        ("\uff2e\uff30\uff30 powder", "npp", "NPP"),
    ],
)
def test_disguised_names_match_as_plain(
    watchlist: Watchlist, text: str, entry_id: str, matched: str
) -> None:
    found = watchlist.match_line("", text, ())
    hit = _name_hit(found, entry_id)
    assert hit.match_type == "name_exact"
    assert hit.similarity == 1.0
    assert hit.matched_text == matched
    assert _ids(found) == {entry_id}


@pytest.mark.parametrize(
    ("text", "entry_id", "matched"),
    [
        ("4 - anilino piperidine", "4-ap", "4 - anilino piperidine"),
        ("4-anilino-piperidine 2HCl", "4-ap", "4-anilino-piperidine"),
        ("4-anilinopiper idine", "4-ap", "4-anilinopiper idine"),
        ("piper idine 99%", "piperidine", "piper idine"),
        ("pi-peridine", "piperidine", "pi-peridine"),
        ("1-phenethyl-4- piperidone", "npp", "1-phenethyl-4- piperidone"),
        ("N-phenethyl-4-piper idone", "npp", "N-phenethyl-4-piper idone"),
        ("norfen tanyl", "norfentanyl", "norfen tanyl"),
        ("pseu do ephedrine", "pseudoephedrine", "pseu do ephedrine"),
        ("benz aldehyde", "benzaldehyde", "benz aldehyde"),
    ],
)
def test_split_words_are_joined_back(
    watchlist: Watchlist, text: str, entry_id: str, matched: str
) -> None:
    found = watchlist.match_line("", text, ())
    hit = _name_hit(found, entry_id)
    assert (hit.match_type, hit.similarity, hit.matched_text) == ("name_exact", 1.0, matched)
    assert _ids(found) == {entry_id}


@pytest.mark.parametrize(
    "text",
    [
        "piper, idine",  # a comma is not a split word
        "piper / idine",
        "a mine detector",  # "amine" is a word of names, but "a" and "mine" are words too
        "1-methyl-4-piper idone",  # the not-name is joined back as well
        "N-methyl piper idine",
    ],
)
def test_split_word_joining_stays_precise(watchlist: Watchlist, text: str) -> None:
    found = watchlist.match_line("", text, ())
    assert not {"piperidine", "4-piperidone"} & _ids(found)
    assert not [h for h in found.hits if h.match_type == "name_exact"]


def test_joining_keeps_two_watched_words(watchlist: Watchlist) -> None:
    # "phenethyl" is itself a word of a name: the two words are kept, and still name NPP
    found = watchlist.match_line("", "phenethyl piperidone", ())
    assert _ids(found) == {"npp"}
    hit = _name_hit(found, "npp")
    assert (hit.match_type, hit.similarity, hit.matched_text) == (
        "name_exact",
        1.0,
        "phenethyl piperidone",
    )


def test_tokens_see_through_invisible_characters_and_look_alikes() -> None:
    assert normalize_text(f"N-\u0440hen{_SHY}ethyl-4-pi{_ZWSP}peridinone") == (
        "n phenethyl 4 piperidone"
    )
    assert normalize_text("\u03b1-phenylacetoacetonitrile") == "alpha phenylacetoacetonitrile"
    assert normalize_text("\u03b2-bromoethylbenzene") == "beta bromoethylbenzene"
    tokens, starts, ends = tokenize(f"x {_ZWSP}NPP")
    assert tokens == ["x", "npp"]
    assert (starts, ends) == ([0, 2], [1, 5])  # offsets into the canonical text "x NPP"


@pytest.mark.parametrize(
    "written",
    [
        "039742-60-4",
        "39742604",
        " 39742 60 4 ",
        "39742\u201360\u20144",
        "\uff13\uff19\uff17\uff14\uff12-\uff16\uff10-\uff14",
        "\u0663\u0669\u0667\u0664\u0662-\u0666\u0660-\u0664",
        f"3974{_ZWSP}2-6{_SHY}0-4",
    ],
)
def test_declared_cas_in_any_writing(watchlist: Watchlist, written: str) -> None:
    found = watchlist.match_line("293337", "N-phenethyl-4-piperidone", [written])
    plain = watchlist.match_line("293337", "N-phenethyl-4-piperidone", ["39742-60-4"])
    assert found == plain
    assert ("npp", "cas", "39742-60-4") in [
        (h.entry_id, h.match_type, h.matched_text) for h in found.hits
    ]
    assert found.invalid_cas == ()
    assert normalize_cas(written) == "39742-60-4"


@pytest.mark.parametrize(
    "text",
    [
        "chemical CAS No. 39742\u201360\u20134, 20 kg",
        "CAS \u0663\u0669\u0667\u0664\u0662-\u0666\u0660-\u0664",
        "CAS 039742-60-4",
        "CAS 39742 - 60 - 4",
    ],
)
def test_cas_in_text_in_any_writing(watchlist: Watchlist, text: str) -> None:
    found = watchlist.match_line("", text, ())
    assert [(h.entry_id, h.match_type, h.matched_text) for h in found.hits] == [
        ("npp", "cas", "39742-60-4")
    ]


def test_find_cas_reads_canonical_text() -> None:
    assert find_cas("CAS \u0661\u0666\u0660\u0669\u2013\u0666\u0666\u2013\u0661") == [
        ("1609-66-1", 4, 13)
    ]
    assert find_cas("lot 0001609-66-1") == [("1609-66-1", 4, 16)]
    assert find_cas("1609-66-1-2 and 41609-66-1") == []  # longer runs are not CAS numbers
    assert find_cas("order 16096613") == []  # free text needs the hyphens


def test_invalid_declared_cas_is_reported_and_never_hits(watchlist: Watchlist) -> None:
    found = watchlist.match_line(
        "", "sample", ["39742-60-5", "039742605", "bad", "", "  ", "99918-43-1"]
    )
    assert found.invalid_cas == ("39742-60-5", "BAD")
    assert [(h.entry_id, h.match_type) for h in found.hits] == [("4-ap", "cas")]
    clean = watchlist.match_line("", "sample", ["39742-60-4"])
    assert clean.invalid_cas == ()
    only_bad = watchlist.match_line("2933.37", "intermediate", ["39742-60-5"])
    assert "cas" not in {h.match_type for h in only_bad.hits}
    assert only_bad.invalid_cas == ("39742-60-5",)


@pytest.mark.parametrize(
    "hs",
    [
        "2933.37",
        "293337",
        "2933 37",
        "2933.37.00",
        "2933370000",
        " 2933-37 ",
        "\uff12\uff19\uff13\uff13\uff0e\uff13\uff17",
        "\u0662\u0669\u0663\u0663.\u0663\u0667",
        f"29{_ZWSP}33.37",
    ],
)
def test_hs_code_in_any_writing(watchlist: Watchlist, hs: str) -> None:
    found = watchlist.match_line(hs, "resina combustible", ())
    plain = watchlist.match_line("2933.37", "resina combustible", ())
    assert _evidence(found) == _evidence(plain)
    assert ("npp", "hs_specific") in {(h.entry_id, h.match_type) for h in found.hits}
    assert [(m.entry_id, m.kind) for m in found.mismatches] == [
        ("npp", "hs_specific_under_benign_description")
    ]


def test_mismatch_details_show_canonical_text(watchlist: Watchlist) -> None:
    found = watchlist.match_line(
        "\uff12\uff18\uff12\uff17.\uff12\uff10", f"calcium{_ZWSP}  chloride", ["039742604"]
    )
    details = {m.kind: m.detail for m in found.mismatches}
    assert "declared under HS 2827.20 (chapter 28)" in details["cas_under_other_hs"]
    assert "CAS 39742-60-4 is NPP" in details["cas_under_other_hs"]
    assert "('calcium chloride')" in details["cas_under_benign_description"]


def test_bulk_disguised_lines_match_live_and_report_invalid_cas(watchlist: Watchlist) -> None:
    rows = [
        ("\uff12\uff19\uff13\uff13\uff13\uff17", "N-\u0440henethyl-4-piperidone", ["039742604"]),
        ("2933.39", "4-anilino piper idine", ["99918-43-2", "99918431"]),
        ("", "sample", ["39742-60-5", "39742-60-5", "1-2-3"]),
    ]
    result = watchlist.match_goods_full(_goods(rows))
    for i, (hs, desc, cas) in enumerate(rows):
        found = watchlist.match_line(hs, desc, cas)
        key = (f"S{i // 2}", i % 2)
        got = result.hits.filter(
            (pl.col("shipment_id") == key[0]) & (pl.col("line_no") == key[1])
        ).select("entry_id", "match_type", "similarity", "strength")
        assert got.rows() == _evidence(found)
    assert result.invalid_cas.rows() == [
        ("S0", 1, "99918-43-2", "check_digit"),
        ("S1", 0, "39742-60-5", "check_digit"),
        ("S1", 0, "1-2-3", "shape"),
    ]
    assert {(r[2], r[4]) for r in result.hits.rows()} >= {
        ("npp", "cas"),
        ("npp", "name_exact"),
        ("npp", "hs_specific"),
        ("4-ap", "cas"),
        ("4-ap", "name_exact"),
    }


def test_goods_matches_without_invalid_cas_frame_still_builds() -> None:
    hits = pl.DataFrame(schema=HITS_SCHEMA)
    mismatches = pl.DataFrame(schema=MISMATCHES_SCHEMA)
    matches = GoodsMatches(hits, mismatches)
    assert matches.invalid_cas.height == 0
    assert matches.invalid_cas.schema == pl.Schema(INVALID_CAS_SCHEMA)
