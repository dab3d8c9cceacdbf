"""Which exam to run: the choice per situation, capacity fallback, settings and the wire."""

from __future__ import annotations

import dataclasses
import math
import threading
import urllib.request
from pathlib import Path

import pytest

from features.errors import ConfigError
from scoring.exams import (
    DOCUMENT_RULES,
    EQUIPMENT_RULES,
    EXAMS,
    IDENTITY_RULES,
    PREFERENCES,
    SITUATIONS,
    ExamContext,
    ExamHit,
    ExamPlanner,
    situation_of,
)
from scoring.reasons import Reason
from scoring.rules import load_rules
from server import converters
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from server.settings import load_settings
from tests.support import ServerThread, make_decision, make_shipment, request_for

NPP_CAS = ExamHit("substance", "cas")
PRESS = ExamHit("equipment", "name_exact")


def context(**changes: object) -> ExamContext:
    base = ExamContext(port="MXZLO", mode="sea", lane="red")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- choice


@pytest.mark.parametrize(
    ("changes", "situation", "exam"),
    [
        # A chemical identity in drums: a laboratory settles it.
        ({"hits": (NPP_CAS,)}, "substance", "physical_sampling"),
        ({"hits": (ExamHit("substance", "hs_specific"),)}, "substance", "physical_sampling"),
        ({"hits": (ExamHit("substance", "name_fuzzy"),)}, "substance", "physical_sampling"),
        ({"rules_fired": ("table-i-precursor",)}, "substance", "physical_sampling"),
        # The CAS identifies the substance under a benign description: sample, not papers.
        (
            {"hits": (NPP_CAS,), "mismatch_kinds": ("cas_under_benign_description",)},
            "substance",
            "physical_sampling",
        ),
        ({"hits": (NPP_CAS,), "lane": "yellow"}, "substance", "documentary"),
        # Tableting equipment.
        ({"hits": (PRESS,)}, "equipment", "physical_sampling"),
        ({"rules_fired": ("pill-press-equipment",), "lane": "yellow"}, "equipment", "documentary"),
        # A substance outranks equipment in the same shipment.
        ({"hits": (PRESS, NPP_CAS)}, "substance", "physical_sampling"),
        # Papers that disagree with themselves, nothing identified.
        ({"rules_fired": ("declared-cas-invalid",), "lane": "yellow"}, "documents", "documentary"),
        ({"features": {"invalid_cas_lines": 1.0}}, "documents", "documentary"),
        ({"mismatch_kinds": ("name_under_other_hs",)}, "documents", "documentary"),
        (
            {"mode": "land", "features": {"value_per_kg_log_ratio": math.log(12.0)}},
            "documents",
            "documentary",
        ),
        (
            {"mode": "land", "features": {"value_per_kg_log_ratio": -math.log(20.0)}},
            "documents",
            "documentary",
        ),
        # Model selection with no identity: by what carries the goods.
        (
            {"mode": "land", "features": {"value_per_kg_log_ratio": math.log(3.0)}},
            "container_or_vehicle",
            "non_intrusive",
        ),
        ({"mode": "sea"}, "container_or_vehicle", "non_intrusive"),
        (
            {"mode": "sea", "hits": (ExamHit("substance", "hs_broad"),)},
            "container_or_vehicle",
            "non_intrusive",
        ),
        ({"mode": "land", "lane": "yellow"}, "container_or_vehicle", "non_intrusive"),
        ({"mode": "postal"}, "small_consignment", "canine"),
        ({"mode": "air"}, "small_consignment", "canine"),
        ({"mode": "air", "lane": "yellow"}, "small_consignment", "non_intrusive"),
        ({"mode": ""}, "other", "non_intrusive"),
        ({"mode": "", "lane": "yellow"}, "other", "documentary"),
        # Random exploration: one exam for every pick, whatever else the shipment carries.
        ({"random_selection": True, "mode": "postal"}, "random", "non_intrusive"),
    ],
)
def test_the_exam_follows_what_selected_the_shipment(
    changes: dict[str, object], situation: str, exam: str
) -> None:
    ctx = context(**changes)
    assert situation_of(ctx) == situation
    choice = ExamPlanner().recommend(ctx)
    assert choice is not None
    assert (choice.exam, choice.situation, choice.preferred) == (exam, situation, exam)
    assert choice.reason.code == f"EXAM_{exam.upper()}"
    assert choice.reason.message_es
    assert choice.reason.message_en
    assert "capacity" not in choice.reason.message_en
    assert not choice.over_capacity


def test_green_gets_no_exam() -> None:
    assert ExamPlanner().recommend(context(lane="green", hits=(NPP_CAS,))) is None


def test_reasons_say_why_in_both_languages() -> None:
    planner = ExamPlanner()
    sampled = planner.recommend(context(hits=(NPP_CAS,)))
    assert sampled is not None
    assert "laboratorio" in sampled.reason.message_es
    assert "laboratory" in sampled.reason.message_en
    assert "sustancia química sujeta a vigilancia" in sampled.reason.message_es
    press = planner.recommend(context(hits=(PRESS,)))
    assert press is not None
    assert "punzones y matrices" in press.reason.message_es
    assert "punches and dies" in press.reason.message_en
    papers = planner.recommend(
        context(
            rules_fired=("declared-cas-invalid",),
            features={"value_per_kg_log_ratio": math.log(50.0)},
        )
    )
    assert papers is not None
    assert "un número CAS inválido y un valor declarado por kg" in papers.reason.message_es
    assert "an invalid CAS number and a declared value per kg" in papers.reason.message_en
    truck = planner.recommend(context(mode="land"))
    assert truck is not None
    assert (
        "el modelo de riesgo seleccionó este vehículo de carga terrestre" in truck.reason.message_es
    )
    assert "the risk model selected this land vehicle" in truck.reason.message_en
    by_rule = planner.recommend(context(mode="land", rules_fired=("route-watch",)))
    assert by_rule is not None
    assert "a selection rule selected this land vehicle" in by_rule.reason.message_en
    parcel = planner.recommend(context(mode="postal"))
    assert parcel is not None
    assert "binomio canino" in parcel.reason.message_es
    assert "postal or courier parcel" in parcel.reason.message_en
    picked = planner.recommend(context(random_selection=True))
    assert picked is not None
    assert "al azar" in picked.reason.message_es
    assert "not an indication of risk" in picked.reason.message_en


def test_yellow_never_opens_the_goods() -> None:
    """YELLOW is documentary review or a scan, whatever selected the shipment."""
    for situation in SITUATIONS:
        assert set(PREFERENCES[situation]["yellow"]) <= {"documentary", "non_intrusive"}
        assert set(PREFERENCES[situation]["red"]) <= set(EXAMS)
    assert set(PREFERENCES) == set(SITUATIONS)


def test_every_reason_is_neutral() -> None:
    planner = ExamPlanner({"MXZLO": dict.fromkeys(EXAMS, 0.0)})
    accusing = ("sospech", "suspicious", "suspect", "contrabando", "smuggl", "ilegal", "illegal")
    contexts = [
        context(hits=(NPP_CAS,)),
        context(hits=(PRESS,)),
        context(mismatch_kinds=("name_under_other_hs", "cas_under_other_hs")),
        context(mode="land"),
        context(mode="postal"),
        context(random_selection=True),
        context(mode="", lane="yellow"),
    ]
    for ctx in contexts:
        choice = planner.recommend(ctx)
        assert choice is not None
        text = (choice.reason.message_es + choice.reason.message_en).lower()
        assert not [word for word in accusing if word in text], text


def test_shipped_rule_ids_the_planner_names_exist() -> None:
    """A renamed rule would silently stop steering exams."""
    shipped = {rule.id for rule in load_rules().rules}
    assert shipped >= IDENTITY_RULES | EQUIPMENT_RULES | DOCUMENT_RULES


# --------------------------------------------------------------------------- capacity


def test_full_physical_capacity_falls_back_and_says_so() -> None:
    planner = ExamPlanner({"MXZLO": {"physical_sampling": 0.002}}, window=1000)  # 2 exams
    npp = context(hits=(NPP_CAS,))
    first, second, third = (planner.recommend(npp) for _ in range(3))
    assert first is not None
    assert second is not None
    assert third is not None
    assert [first.exam, second.exam] == ["physical_sampling", "physical_sampling"]
    assert third.exam == "non_intrusive"
    assert third.preferred == "physical_sampling"
    assert not third.over_capacity
    assert third.reason.code == "EXAM_NON_INTRUSIVE"
    es, en = third.reason.message_es, third.reason.message_en
    assert "reconocimiento físico con toma de muestras" in es
    assert "capacidad en MXZLO está completa" in es
    assert "physical examination with sampling" in en
    assert "capacity at MXZLO is full" in en
    assert "capacity" not in first.reason.message_en
    assert planner.usage("MXZLO") == (3, {"physical_sampling": 2, "non_intrusive": 1})
    # Another port has its own capacity (here none: unlimited) and its own count.
    other = planner.recommend(context(port="MXLZC", hits=(NPP_CAS,)))
    assert other is not None
    assert other.exam == "physical_sampling"


def test_every_suitable_exam_full_keeps_the_first_over_capacity() -> None:
    planner = ExamPlanner({"MXNLD": {"non_intrusive": 0.0, "canine": 0.0}})
    choice = planner.recommend(context(port="MXNLD", mode="land"))
    assert choice is not None
    assert choice.exam == "non_intrusive"
    assert choice.over_capacity
    assert "por encima de la capacidad del puerto" in choice.reason.message_es
    assert "over the port's capacity" in choice.reason.message_en
    assert "Every suitable exam is at capacity at MXNLD" in choice.reason.message_en


def test_green_decisions_count_in_the_window_and_old_exams_roll_out() -> None:
    planner = ExamPlanner({"MXZLO": {"physical_sampling": 0.1}}, window=10)  # 1 in 10
    npp = context(hits=(NPP_CAS,))
    assert (first := planner.recommend(npp)) is not None
    assert first.exam == "physical_sampling"
    for _ in range(9):
        assert planner.recommend(context(lane="green")) is None
    assert planner.usage("MXZLO") == (10, {"physical_sampling": 1})
    full = planner.recommend(npp)  # the first exam is still among the last 10 decisions
    assert full is not None
    assert full.exam == "non_intrusive"
    again = planner.recommend(npp)  # ... and has just rolled out of them
    assert again is not None
    assert again.exam == "physical_sampling"
    decisions, counts = planner.usage("MXZLO")
    assert decisions == 10
    assert counts["physical_sampling"] == 1
    assert counts["non_intrusive"] == 1


def test_a_ports_own_capacity_replaces_the_default() -> None:
    planner = ExamPlanner({"default": {"canine": 0.0}, "MXNLD": {"non_intrusive": 0.5}})
    parcel = planner.recommend(context(port="MXMEX", mode="postal"))
    assert parcel is not None
    assert parcel.exam == "non_intrusive"
    at_laredo = planner.recommend(context(port="MXNLD", mode="postal"))
    assert at_laredo is not None
    assert at_laredo.exam == "canine"


def test_unknown_ports_share_one_window() -> None:
    planner = ExamPlanner({"default": {"non_intrusive": 0.5}}, window=4)
    planner.recommend(context(port="USLRD", mode="land"))
    planner.recommend(context(port="GTPBR", mode="land"))
    assert planner.usage("USLRD") == planner.usage("GTPBR") == (2, {"non_intrusive": 2})
    assert planner.usage("MXZLO") == (0, {})


def test_capacity_holds_under_concurrent_calls() -> None:
    planner = ExamPlanner({"MXZLO": {"physical_sampling": 0.05}}, window=1000)  # 50 exams
    npp = context(hits=(NPP_CAS,))
    exams: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(100):
            choice = planner.recommend(npp)
            assert choice is not None
            with lock:
                exams.append(choice.exam)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exams.count("physical_sampling") == 50
    assert exams.count("non_intrusive") == 750
    assert planner.usage("MXZLO") == (800, {"physical_sampling": 50, "non_intrusive": 750})


# --------------------------------------------------------------------------- settings


def test_capacity_setting_from_a_file(tmp_path: Path) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text(
        "exam_capacity:\n"
        "  MXZLO: {physical_sampling: 0.01, non_intrusive: 0.04}\n"
        "  MXNLD: {canine: 0.02}\n"
    )
    settings = load_settings(config)
    assert settings.exam_capacity == {
        "MXZLO": {"physical_sampling": 0.01, "non_intrusive": 0.04},
        "MXNLD": {"canine": 0.02},
    }
    assert load_settings().exam_capacity == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"MXZLO": {"xray": 0.1}}, "MXZLO: unknown exam 'xray'"),
        ({"MXZLO": {"canin": 0.1}}, "did you mean 'canine'?"),
        ({"MXZLO": {"canine": 1.5}}, "MXZLO.canine: share must be between 0 and 1, got 1.5"),
        ({"MXZLO": {"canine": -0.1}}, "share must be between 0 and 1"),
        ({"mxzlo": {"canine": 0.1}}, "'mxzlo' is not a UN/LOCODE"),
        # The whole key must be a port: a trailing newline no longer slips past the check.
        ({"MXZLO\n": {"canine": 0.1}}, "'MXZLO\\n' is not a UN/LOCODE"),
    ],
)
def test_bad_capacity_settings_are_named(value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(exam_capacity=value)
    assert "exam_capacity" in caught.value.message
    assert expected in caught.value.message


# --------------------------------------------------------------------------- the wire


def test_exam_converts_to_the_proto_enum_and_back() -> None:
    names = {
        "physical_sampling": pb.EXAM_PHYSICAL_SAMPLING,
        "non_intrusive": pb.EXAM_NON_INTRUSIVE,
        "canine": pb.EXAM_CANINE,
        "documentary": pb.EXAM_DOCUMENTARY,
    }
    assert set(names) == set(EXAMS)
    for name, value in names.items():
        assert converters.exam_to_proto(name) == value
        assert converters.exam_from_proto(value) == name
    assert converters.exam_to_proto("") == pb.EXAM_UNSPECIFIED
    assert converters.exam_from_proto(pb.EXAM_UNSPECIFIED) == ""
    reason = Reason("EXAM_CANINE", "Revisión con binomio canino: x.", "Canine inspection: x.")
    decision = make_decision(
        "d" * 32,
        "S-1",
        risk_score=0.9,
        lane="red",
        model_version="v0001",
        exam="canine",
        exam_reason=reason,
    )
    msg = converters.decision_to_proto(decision)
    assert msg.exam == pb.EXAM_CANINE
    assert (msg.exam_reason.code, msg.exam_reason.message_es) == (reason.code, reason.message_es)
    green = converters.decision_to_proto(
        dataclasses.replace(
            decision,
            scored=dataclasses.replace(decision.scored, lane="green", exam="", exam_reason=None),
        )
    )
    assert green.exam == pb.EXAM_UNSPECIFIED
    assert not green.HasField("exam_reason")


def _metric(server: ServerThread, prefix: str) -> float:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def test_over_the_wire_red_npp_is_sampled_and_green_gets_no_exam(server: ServerThread) -> None:
    client = pb_grpc.RiskScoringStub(server.channel)
    counted = 'centinela_exams_recommended_total{exam="physical_sampling",port="MXZLO"}'
    before = _metric(server, counted)
    red = client.ScoreShipment(request_for(make_shipment("EXAM-NPP-1")), timeout=10)
    assert red.lane == pb.LANE_RED
    assert red.exam == pb.EXAM_PHYSICAL_SAMPLING
    assert red.HasField("exam_reason")
    assert red.exam_reason.code == "EXAM_PHYSICAL_SAMPLING"
    assert "laboratorio" in red.exam_reason.message_es
    assert "laboratory" in red.exam_reason.message_en
    assert _metric(server, counted) == before + 1

    benign_line = make_shipment().goods[1]
    decisions = [
        client.ScoreShipment(
            request_for(make_shipment(f"EXAM-PLAIN-{i}", goods=(benign_line,))), timeout=10
        )
        for i in range(20)
    ]
    greens = [d for d in decisions if d.lane == pb.LANE_GREEN]
    assert greens, "no GREEN decision among 20 plain shipments"
    for decision in greens:
        assert decision.exam == pb.EXAM_UNSPECIFIED
        assert not decision.HasField("exam_reason")
    for decision in decisions:
        if decision.lane != pb.LANE_GREEN:
            assert decision.exam != pb.EXAM_UNSPECIFIED
            assert decision.exam_reason.message_es
            assert decision.exam_reason.message_en
