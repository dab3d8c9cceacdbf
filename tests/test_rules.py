"""Hard rules: the shipped file, the guarantees it states, the rule language, and validation
that names the line of every mistake, through the API and the ``rules validate`` CLI."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.build import FeatureBlock
from features.declarations import Declarations
from features.errors import ConfigError
from features.records import GoodsLine, Shipment
from features.schema import FEATURE_NAMES
from features.watchlist import Watchlist, load_watchlist
from scoring.lanes import LANES
from scoring.reasons import Reason
from scoring.rules import (
    VECTOR_ROWS,
    RuleContext,
    RuleHit,
    RuleSet,
    evidence_from_lines,
    load_rules,
    parse_rules_text,
    strongest_lane,
)
from tests.support import make_shipment
from training.red_team import broken_cas_cases, table_i_cases

ROOT = Path(__file__).parents[1]
BAD = Path(__file__).parent / "data" / "rules_bad"
PACKAGED = ROOT / "scoring" / "rules.yaml"
ACCUSING = ("suspicious", "sospechos", "criminal", "smuggl", "contrabandista", "guilty", "culpable")

ESTABLISHED = {"consignee_age_days": 400.0, "consignee_has_tax_id": 1.0}
NEW = {"consignee_age_days": math.nan, "consignee_has_tax_id": 1.0}


@pytest.fixture(scope="module")
def watchlist() -> Watchlist:
    return load_watchlist()


@pytest.fixture(scope="module")
def rules(watchlist: Watchlist) -> RuleSet:
    return load_rules(watchlist=watchlist)


def _shipment(*goods: GoodsLine, **changes: Any) -> Shipment:
    return make_shipment("SHP-R1", goods=goods, **changes)


def _context(
    watchlist: Watchlist, shipment: Shipment, features: Mapping[str, float] | None = None
) -> RuleContext:
    lines = [watchlist.match_line(g.hs_code, g.description, g.cas_numbers) for g in shipment.goods]
    hits, mismatches = evidence_from_lines(lines, watchlist)
    return RuleContext(shipment, hits, mismatches, ESTABLISHED if features is None else features)


def _fired(rules: RuleSet, ctx: RuleContext) -> list[str]:
    return [h.rule_id for h in rules.evaluate(ctx)]


def _hit(rule_id: str, lane: str) -> RuleHit:
    return RuleHit(rule_id, lane, Reason(f"RULE_{rule_id.upper()}", "es", "en"))


# ------------------------------------------------------------------ the shipped file


def test_shipped_file_validates(rules: RuleSet) -> None:
    assert rules.version == "2026.11.3"
    assert rules.source == "(packaged) rules.yaml"
    assert [r.id for r in rules.rules] == [
        "table-i-precursor",
        "table-i-precursor-named",
        "fentanyl-identified",
        "controlled-precursor-new-consignee",
        "watched-cas-misdeclared",
        "declared-cas-invalid",
        "pill-press-equipment",
        "pill-press-new-consignee",
    ]
    assert {r.lane for r in rules.rules} <= {"red", "yellow"}
    assert rules.rules[0].code == "RULE_TABLE_I_PRECURSOR"


def test_shipped_file_loads_from_a_path_too(watchlist: Watchlist, rules: RuleSet) -> None:
    from_path = load_rules(PACKAGED, watchlist)
    assert from_path.rules == rules.rules
    assert from_path.source == str(PACKAGED)


def test_shipped_reasons_are_bilingual_and_neutral(rules: RuleSet) -> None:
    for rule in rules.rules:
        es, en = rule.reason.es, rule.reason.en
        assert es != en
        assert es.startswith("Seleccionado para")
        assert en.startswith("Selected for")
        assert not any(word in (es + en).lower() for word in ACCUSING)


def test_rule_set_is_immutable(rules: RuleSet) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.version = "2099.1.1"  # type: ignore[misc]
    assert isinstance(rules.rules, tuple)


# ------------------------------------------------------------------ the guarantees


@pytest.mark.parametrize("model_lane", LANES)
def test_table_i_precursor_by_cas_is_red_whatever_the_model_says(
    watchlist: Watchlist, rules: RuleSet, model_lane: str
) -> None:
    shipment = _shipment(GoodsLine("2827.20", "calcium chloride", ("39742-60-4",)))
    fired = rules.evaluate(_context(watchlist, shipment))
    table_i = next(h for h in fired if h.rule_id == "table-i-precursor")
    assert table_i.lane == "red"
    assert table_i.reason == Reason(
        "RULE_TABLE_I_PRECURSOR",
        "Seleccionado para reconocimiento físico: la partida 1 identifica "
        "N-Phenethyl-4-piperidone, precursor de la Tabla I de la Convención de 1988, por "
        "«39742-60-4».",
        "Selected for physical examination: goods line 1 identifies N-Phenethyl-4-piperidone, a "
        "1988 Convention Table I precursor, by “39742-60-4”.",
        0.0,
    )
    assert strongest_lane(model_lane, fired) == "red"


def test_table_i_precursor_by_specific_hs_is_red(watchlist: Watchlist, rules: RuleSet) -> None:
    shipment = _shipment(GoodsLine("2933.37", "organic chemical intermediate"))
    fired = rules.evaluate(_context(watchlist, shipment))
    assert [h.rule_id for h in fired] == ["table-i-precursor"]
    assert "by “2933.37”" in fired[0].reason.message_en
    assert strongest_lane("green", fired) == "red"


def test_table_i_precursor_named_in_full_is_red(watchlist: Watchlist, rules: RuleSet) -> None:
    shipment = _shipment(GoodsLine("2933.39", "N-phenethyl-4-piperidone 99%"))
    assert _fired(rules, _context(watchlist, shipment)) == ["table-i-precursor-named"]


@pytest.mark.parametrize("features", [ESTABLISHED, NEW, {}])
def test_broad_hs_alone_forces_nothing(
    watchlist: Watchlist, rules: RuleSet, features: dict[str, float]
) -> None:
    shipment = _shipment(GoodsLine("2933.39", "heterocyclic compound"))
    ctx = _context(watchlist, shipment, features)
    assert any(h.match_type == "hs_broad" for h in ctx.hits)
    assert rules.evaluate(ctx) == []


def test_placeholders_come_from_the_first_matching_hit(
    watchlist: Watchlist, rules: RuleSet
) -> None:
    shipment = _shipment(
        GoodsLine("3926.90", "plastic household articles"),
        GoodsLine("2933.36", "industrial chemical", ("21409-26-7",)),
    )
    (hit, *_) = rules.evaluate(_context(watchlist, shipment))
    assert hit.reason.message_en == (
        "Selected for physical examination: goods line 2 identifies "
        "4-Anilino-N-phenethylpiperidine, a 1988 Convention Table I precursor, by “21409-26-7”."
    )
    assert "{" not in hit.reason.message_es


def test_misdeclared_cas_fills_placeholders_from_the_hit_behind_the_mismatch(
    watchlist: Watchlist, rules: RuleSet
) -> None:
    shipment = _shipment(GoodsLine("2827.20", "calcium chloride", ("39742-60-4",)))
    ctx = _context(watchlist, shipment)
    assert {m.kind for m in ctx.mismatches} >= {"cas_under_benign_description"}
    hit = next(h for h in rules.evaluate(ctx) if h.rule_id == "watched-cas-misdeclared")
    assert hit.lane == "red"
    assert hit.reason.code == "RULE_WATCHED_CAS_MISDECLARED"
    assert "declares CAS “39742-60-4” of N-Phenethyl-4-piperidone" in hit.reason.message_en
    assert "declara el número CAS «39742-60-4» de N-Phenethyl-4-piperidone" in (
        hit.reason.message_es
    )


@pytest.mark.parametrize(
    ("features", "extra"),
    [
        (ESTABLISHED, []),
        ({"consignee_age_days": 30.0, "consignee_has_tax_id": 1.0}, ["new"]),
        (NEW, ["new"]),
        ({"consignee_age_days": 400.0, "consignee_has_tax_id": 0.0}, ["new"]),
    ],
)
def test_ephedrines_are_table_i_and_always_red(
    watchlist: Watchlist, rules: RuleSet, features: dict[str, float], extra: list[str]
) -> None:
    shipment = _shipment(GoodsLine("2939.42", "pseudoephedrine hydrochloride", ("345-78-8",)))
    fired = rules.evaluate(_context(watchlist, shipment, features))
    ids = [h.rule_id for h in fired]
    assert ids[0] == "table-i-precursor"
    assert ("controlled-precursor-new-consignee" in ids) == bool(extra)
    assert strongest_lane("green", fired) == "red"
    assert "identifies Pseudoephedrine" in fired[0].reason.message_en


def test_pill_press_is_yellow_and_red_for_a_new_consignee(
    watchlist: Watchlist, rules: RuleSet
) -> None:
    shipment = _shipment(GoodsLine("8479.89", "rotary tablet press TDP-5"))
    established = rules.evaluate(_context(watchlist, shipment))
    assert [(h.rule_id, h.lane) for h in established] == [("pill-press-equipment", "yellow")]
    assert strongest_lane("green", established) == "yellow"
    assert strongest_lane("red", established) == "red"
    new = rules.evaluate(_context(watchlist, shipment, NEW))
    assert [h.rule_id for h in new] == ["pill-press-equipment", "pill-press-new-consignee"]
    assert strongest_lane("green", new) == "red"


def test_benign_context_and_ordinary_goods_force_nothing(
    watchlist: Watchlist, rules: RuleSet
) -> None:
    for goods in (
        GoodsLine("3822.19", "fentanyl test strips"),
        GoodsLine("1006.30", "milled rice"),
        GoodsLine("5204.11", "aniline dyed cotton thread"),
    ):
        assert _fired(rules, _context(watchlist, _shipment(goods), NEW)) == [], goods


@pytest.mark.parametrize("model_lane", LANES)
def test_rules_never_lower_a_lane(model_lane: str) -> None:
    rank = LANES.index
    for lanes in ([], ["yellow"], ["red"], ["yellow", "red"], ["red", "yellow"]):
        hits = [_hit(f"r{i}", lane) for i, lane in enumerate(lanes)]
        final = strongest_lane(model_lane, hits)
        assert rank(final) >= rank(model_lane)
        assert final == max([model_lane, *lanes], key=rank)


def test_strongest_lane_rejects_an_unknown_model_lane() -> None:
    with pytest.raises(ValueError, match="unknown lane 'blue'"):
        strongest_lane("blue", [])


# ------------------------------------------------------------------ the rule language


LANGUAGE = """\
version: "2026.11.1"
rules:
  - id: route-check
    when:
      hs_prefixes: ["29.33", "2939"]
      origin_countries: [CN, IN]
      export_countries: [CN]
      ports: [MXZLO, MXLZC]
      modes: [sea]
      transshipment_via: [KRPUS]
      features:
        value_per_kg: {ge: 5, lt: 1000}
    lane: yellow
    reason: {es: "Seleccionado por ruta.", en: "Selected by route."}
  - id: no-history
    when:
      features:
        shipper_age_days: {is_null: true}
    lane: yellow
    reason: {es: "Seleccionado.", en: "Selected."}
  - id: named-entry
    when:
      watchlist: {entries: [npp], match_types: [name_exact, name_fuzzy], min_strength: 0.3}
      any:
        - origin_countries: [IN]
        - features: {consignee_positives: {gt: 0}}
    lane: red
    reason:
      es: "{entry_name} en la partida {goods_line}: «{matched_text}»."
      en: "{entry_name} on goods line {goods_line}: “{matched_text}”."
"""


@pytest.fixture(scope="module")
def language(watchlist: Watchlist) -> RuleSet:
    return parse_rules_text(LANGUAGE, "language.yaml", watchlist)


def test_every_condition_of_a_rule_must_hold(watchlist: Watchlist, language: RuleSet) -> None:
    shipment = _shipment(GoodsLine("2933.99", "heterocyclic compound"))
    features = {"value_per_kg": 20.0, "shipper_age_days": 12.0}
    assert _fired(language, _context(watchlist, shipment, features)) == ["route-check"]
    for changes in (
        {"origin_country": "DE"},
        {"export_country": "IN"},
        {"port_of_entry": "MXNLD"},
        {"mode": "land"},
        {"transshipment_ports": ("SGSIN",)},
        {"goods": (GoodsLine("3926.90", "plastic articles"),)},
    ):
        changed = dataclasses.replace(shipment, **changes)
        assert _fired(language, _context(watchlist, changed, features)) == [], changes
    for value in (2.0, 1000.0, math.nan):
        low = {**features, "value_per_kg": value}
        assert _fired(language, _context(watchlist, shipment, low)) == [], value


def test_null_features_match_is_null_and_fail_number_tests(
    watchlist: Watchlist, language: RuleSet
) -> None:
    shipment = _shipment(GoodsLine("3926.90", "plastic articles"))
    assert _fired(language, _context(watchlist, shipment, {"shipper_age_days": math.nan})) == [
        "no-history"
    ]
    assert _fired(language, _context(watchlist, shipment, {})) == ["no-history"]
    assert _fired(language, _context(watchlist, shipment, {"shipper_age_days": 3.0})) == []


def test_any_needs_one_alternative_and_placeholders_fill(
    watchlist: Watchlist, language: RuleSet
) -> None:
    shipment = _shipment(
        GoodsLine("3926.90", "plastic articles"), GoodsLine("2933.39", "fenetil piperidona")
    )
    assert "named-entry" not in _fired(language, _context(watchlist, shipment, {}))
    from_india = dataclasses.replace(shipment, origin_country="IN")
    with_finding = {"consignee_positives": 2.0}
    for ship, features in ((from_india, {}), (shipment, with_finding)):
        fired = language.evaluate(_context(watchlist, ship, features))
        (hit,) = [h for h in fired if h.rule_id == "named-entry"]
        assert hit.lane == "red"
        assert hit.reason.code == "RULE_NAMED_ENTRY"
        assert hit.reason.message_es == (
            "N-Phenethyl-4-piperidone en la partida 2: «fenetil piperidona»."
        )
        assert hit.reason.message_en == (
            "N-Phenethyl-4-piperidone on goods line 2: “fenetil piperidona”."
        )
        assert hit.reason.contribution == 0.0


# ------------------------------------------------------------------ a batch at once


EDGES = """\
version: "2026.11.1"
rules:
  - id: weak-evidence-by-sea
    when:
      modes: [sea]
      any:
        - watchlist: {match_types: [hs_broad], min_strength: 0.1}
        - watchlist: {kinds: [equipment]}
    lane: yellow
    reason:
      es: "{entry_name} en la partida {goods_line}."
      en: "{entry_name} on goods line {goods_line}."
  - id: mismatch-or-young
    when:
      features: {consignee_has_tax_id: {eq: 1}}
      any:
        - mismatch: {}
        - watchlist: {kinds: [equipment]}
        - features: {consignee_age_days: {ge: 0, lt: 90}}
    lane: yellow
    reason: {es: "Seleccionado.", en: "Selected."}
"""
"""Rules whose evidence is asked for only by their alternatives, and one that a hit weaker than
the identification threshold satisfies."""

FIXTURE_GOODS = (
    GoodsLine("2827.20", "calcium chloride", ("39742-60-4",)),
    GoodsLine("2933.37", "organic chemical intermediate"),
    GoodsLine("2933.39", "N-phenethyl-4-piperidone 99%"),
    GoodsLine("2933.39", "heterocyclic compound"),
    GoodsLine("2933.99", "heterocyclic compound"),
    GoodsLine("2939.42", "pseudoephedrine hydrochloride", ("345-78-8",)),
    GoodsLine("2933.33", "fentanyl citrate"),
    GoodsLine("8479.89", "rotary tablet press TDP-5"),
    GoodsLine("3822.19", "fentanyl test strips"),
    GoodsLine("1006.30", "milled rice"),
    GoodsLine("5204.11", "aniline dyed cotton thread"),
    GoodsLine("2933.39", "fenetil piperidona"),
)


def _batch(watchlist: Watchlist) -> tuple[list[Shipment], FeatureBlock]:
    """Shipments of every red-team case and test fixture, alone or in pairs, by several routes,
    and a seeded feature matrix whose rule features take values on both sides of every test."""
    cases = [c.shipment for c in (*table_i_cases(watchlist), *broken_cas_cases(watchlist))]
    pairs = [(g,) for g in FIXTURE_GOODS] + list(
        zip(FIXTURE_GOODS, FIXTURE_GOODS[3:], strict=False)
    )
    routes: tuple[dict[str, Any], ...] = (
        {},
        {"origin_country": "IN", "mode": "land"},
        {"transshipment_ports": ()},
    )
    own = [_shipment(*goods, **routes[i % len(routes)]) for i, goods in enumerate(pairs * 3)]
    shipments = [*cases, *own, _shipment()]  # the last has no goods line
    rng = np.random.default_rng(7)
    matrix = rng.uniform(0.0, 500.0, (len(shipments), len(FEATURE_NAMES)))
    matrix[rng.random(matrix.shape) < 0.2] = math.nan
    for name, values in {
        "consignee_age_days": [math.nan, 30.0, 400.0, 0.0, 90.0],
        "consignee_has_tax_id": [1.0, 0.0],
        "invalid_cas_lines": [0.0, 0.0, 1.0, math.nan],
        "shipper_age_days": [math.nan, 12.0],
        "value_per_kg": [20.0, 2.0, math.nan, 1000.0],
        "consignee_positives": [0.0, 2.0, math.nan],
    }.items():
        matrix[:, FEATURE_NAMES.index(name)] = rng.choice(values, len(shipments))
    return shipments, _block(shipments, matrix)


def _block(shipments: list[Shipment], matrix: np.ndarray) -> FeatureBlock:
    return FeatureBlock(
        matrix,
        [s.shipment_id for s in shipments],
        np.zeros(len(shipments), dtype=np.int64),
        [s.port_of_entry for s in shipments],
    )


def test_evidence_asked_for_only_by_alternatives_or_below_the_threshold(
    watchlist: Watchlist,
) -> None:
    edges = parse_rules_text(EDGES, "edges.yaml", watchlist)
    broad = _shipment(GoodsLine("2933.39", "heterocyclic compound"))
    plain = _shipment(GoodsLine("1006.30", "milled rice"))
    young = {"consignee_has_tax_id": 1.0, "consignee_age_days": 30.0}
    assert _fired(edges, _context(watchlist, broad, ESTABLISHED)) == ["weak-evidence-by-sea"]
    assert _fired(edges, _context(watchlist, plain, young)) == ["mismatch-or-young"]
    assert _fired(edges, _context(watchlist, plain, ESTABLISHED)) == []
    misdeclared = _shipment(GoodsLine("2827.20", "calcium chloride", ("39742-60-4",)))
    assert _fired(edges, _context(watchlist, misdeclared, ESTABLISHED)) == ["mismatch-or-young"]


def test_a_batch_is_evaluated_as_one_shipment_at_a_time(
    watchlist: Watchlist, rules: RuleSet, language: RuleSet
) -> None:
    shipments, block = _batch(watchlist)
    declarations = Declarations.from_shipments(shipments, watchlist)
    edges = parse_rules_text(EDGES, "edges.yaml", watchlist)
    for rule_set in (rules, language, edges):
        batch = rule_set.evaluate_batch(shipments, declarations, block, watchlist)
        one_by_one = [
            tuple(rule_set.evaluate(_context(watchlist, s, block.row(i))))
            for i, s in enumerate(shipments)
        ]
        assert batch == one_by_one, rule_set.source
        assert {h.rule_id for hits in batch for h in hits} == {r.id for r in rule_set.rules}
        assert 0 < batch.count(()) < len(batch), rule_set.source
        few = shipments[-VECTOR_ROWS + 1 :]  # one by one, without numpy
        small = _block(few, block.matrix[-len(few) :])
        few_lines = Declarations.from_shipments(few, watchlist)
        assert rule_set.evaluate_batch(few, few_lines, small, watchlist) == one_by_one[-len(few) :]


def test_a_batch_needs_one_row_of_everything_per_shipment(
    watchlist: Watchlist, rules: RuleSet
) -> None:
    shipments, block = _batch(watchlist)
    declarations = Declarations.from_shipments(shipments[:-1], watchlist)
    with pytest.raises(ValueError, match=r"batch of \d+ shipments needs as many declarations"):
        rules.evaluate_batch(shipments, declarations, block, watchlist)


# ------------------------------------------------------------------ validation, with lines


@pytest.mark.parametrize(
    ("fixture", "field", "description"),
    [
        (
            "unknown_condition.yaml",
            "line 6: rules[0].when.watchlist_lsts",
            "rule 'table-i-precursor': unknown condition 'watchlist_lsts'; did you mean "
            "'watchlist'?",
        ),
        (
            "unknown_key.yaml",
            "line 8: rules[0].severity",
            "rule 'table-i-precursor': unknown key 'severity'",
        ),
        (
            "bad_operator.yaml",
            "line 8: rules[0].when.features.consignee_age_days.lte",
            "rule 'table-i-precursor': unknown operator 'lte'; did you mean 'lt'?",
        ),
        (
            "unknown_feature.yaml",
            "line 8: rules[0].when.features.consignee_age",
            "rule 'table-i-precursor': unknown feature 'consignee_age'; did you mean "
            "'consignee_age_days'?",
        ),
        (
            "unknown_list.yaml",
            "line 9: rules[0].when.watchlist.lists[1]",
            "rule 'table-i-precursor': unknown watchlist list 'un-1988-table-iii'",
        ),
        (
            "unknown_entry.yaml",
            "line 7: rules[0].when.watchlist.entries[0]",
            "rule 'table-i-precursor': no watchlist entry has id 'nppp'; did you mean 'npp'?",
        ),
        (
            "lane_green.yaml",
            "line 7: rules[0].lane",
            "rule 'table-i-precursor': rules only raise a lane, so green cannot be forced",
        ),
        (
            "lane_purple.yaml",
            "line 7: rules[0].lane",
            "rule 'table-i-precursor': lane must be red or yellow, not 'purple'",
        ),
        (
            "bad_country.yaml",
            "line 6: rules[0].when.origin_countries[1]",
            "rule 'table-i-precursor': 'UK' is not an ISO 3166 alpha-2 country code",
        ),
        (
            "missing_reason_language.yaml",
            "line 8: rules[0].reason.en",
            "rule 'table-i-precursor': reason needs 'en', the English text",
        ),
    ],
)
def test_bad_file_is_rejected_naming_the_line(
    watchlist: Watchlist, fixture: str, field: str, description: str
) -> None:
    path = BAD / fixture
    with pytest.raises(ConfigError) as caught:
        load_rules(path, watchlist)
    error = caught.value
    assert error.message.startswith(f"{path}: rules file is invalid (1 problem):")
    (violation,) = error.violations
    assert violation.field == field
    assert violation.description.startswith(description)


def _problems(watchlist: Watchlist, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_rules_text(text, "edited.yaml", watchlist)
    return [str(v) for v in caught.value.violations]


HEAD = 'version: "2026.11.1"\nrules:\n'
REASON = '    reason: {es: "Seleccionado.", en: "Selected."}\n'


def test_every_problem_is_reported_in_line_order(watchlist: Watchlist) -> None:
    text = (
        HEAD
        + "  - id: first\n    when: {modes: [ship], hs_prefixes: [2933]}\n    lane: red\n"
        + REASON
        + "  - id: second\n    when: {ports: [mxzlo], export_countries: [NO]}\n    lane: red\n"
        + REASON
    )
    assert _problems(watchlist, text) == [
        "line 4: rules[0].when.hs_prefixes[0]: rule 'first': HS prefix 2933 was read as a number: "
        'quote it, e.g. "2933"',
        "line 4: rules[0].when.modes[0]: rule 'first': Input should be 'sea', 'land', 'air' or "
        "'postal'",
        "line 8: rules[1].when.ports[0]: rule 'second': 'mxzlo' is not a UN/LOCODE: two letters "
        "of country, three of place",
    ]


def test_structural_mistakes_are_named(watchlist: Watchlist) -> None:
    text = (
        'versoin: "2026.11.1"\nrules:\n'
        "  - id: a\n    when:\n      any:\n        - any: [{modes: [sea]}]\n    lane: red\n"
        + REASON
        + "  - id: a\n    when: {}\n    lane: yellow\n"
        + '    reason: {es: "{entry_name}", en: "{line}"}\n'
    )
    assert _problems(watchlist, text) == [
        "line 1: versoin: unknown key 'versoin'; did you mean 'version'?",
        "line 1: version: 'version' is required",
        "line 6: rules[0].when.any[0].any: rule 'a': 'any' alternatives cannot be nested",
        "line 10: rules[1].when: rule 'a': no conditions: a rule that always fires would select "
        "everything",
        "line 12: rules[1].reason.en: rule 'a': unknown placeholder {line}: use {entry_name}, "
        "{goods_line}, {matched_text}",
    ]


def test_placeholders_need_evidence_and_ids_are_unique(watchlist: Watchlist) -> None:
    rule = "  - id: same\n    when: {modes: [air]}\n    lane: yellow\n"
    text = HEAD + rule + '    reason: {es: "{goods_line}", en: "x"}\n' + rule + REASON
    assert _problems(watchlist, text) == [
        "line 6: rules[0].reason: rule 'same': the reason uses placeholders, which are filled "
        "from watchlist evidence: give the rule a watchlist or mismatch condition",
        "line 7: rules[1].id: rule 'same': duplicate id, first at line 3",
    ]


def test_duplicate_keys_and_broken_yaml_are_named(watchlist: Watchlist) -> None:
    text = HEAD + "  - id: a\n    when: {modes: [sea]}\n    lane: yellow\n    lane: red\n" + REASON
    assert _problems(watchlist, text) == [
        "line 6: rules[0].lane: duplicate key 'lane', first at line 5"
    ]
    with pytest.raises(ConfigError, match=r"edited\.yaml: not valid YAML") as caught:
        parse_rules_text(HEAD + "  - id: a\n    when: {modes: [sea}\n", "edited.yaml", watchlist)
    assert caught.value.violations[0].field == "line 4"


def test_missing_file_is_a_config_error(watchlist: Watchlist) -> None:
    with pytest.raises(ConfigError, match="cannot read rules"):
        load_rules(Path("no/such/rules.yaml"), watchlist)


# ------------------------------------------------------------------ CLI


def _cli(*args: str) -> tuple[int, str, str]:
    """Run ``rules validate``: its exit code, stdout and stderr, each with the line breaks and
    runs of spaces of rich's wrapping collapsed to single spaces."""
    done = subprocess.run(
        [sys.executable, "-m", "training.rules_cli", "validate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    return done.returncode, " ".join(done.stdout.split()), " ".join(done.stderr.split())


def test_cli_validate_good_file() -> None:
    code, out, err = _cli(str(PACKAGED))
    assert code == 0, err
    assert (
        f"OK {PACKAGED}: version 2026.11.3, 8 rules (5 red, 3 yellow), checked against "
        f"watchlist {load_watchlist().version}"
    ) in out


def test_cli_validate_bad_file_names_the_line() -> None:
    code, _, err = _cli(str(BAD / "unknown_condition.yaml"))
    assert code == 3
    assert "rules file is invalid (1 problem)" in err
    assert (
        "line 6: rules[0].when.watchlist_lsts: rule 'table-i-precursor': unknown condition "
        "'watchlist_lsts'"
    ) in err
