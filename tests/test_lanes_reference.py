"""The lane policy's per-port routine decides exactly what a straightforward one-at-a-time
policy (:mod:`tests.lanes_reference`) decides, bit for bit, however the stream is cut."""

from __future__ import annotations

from datetime import UTC, datetime

from scoring.lanes import Budget, LanePolicy
from tests.lanes_reference import ReferencePolicy
from tests.test_lanes import REFERENCE, _exact, _traffic

BUDGETS = {
    "default": Budget(red=0.03, yellow=0.05, exploration=0.2, window=60),
    # 100 reference priors give way to the first 100 decisions, then 6 hours are held
    "MXNLD": Budget(red=0.02, yellow=0.04, exploration=0.1, window=100, window_hours=6.0),
}


def _policy() -> LanePolicy:
    return LanePolicy(REFERENCE, BUDGETS, seed=5)


def _reference() -> ReferencePolicy:
    return ReferencePolicy(REFERENCE, BUDGETS, seed=5)


def _stream(
    seed: int, size: int
) -> tuple[list[str], list[float], list[str], list[str], list[float]]:
    ports, scores, ids, rules, ats = _traffic(seed, size)
    return ports, scores, ids, rules, [at.timestamp() for at in ats]


def test_chunks_grouped_by_port_decide_what_the_reference_decides() -> None:
    """Five port codes (two share a window), count windows that wrap many times, an hours
    window, rule REDs over capacity and YELLOWs, ties and exploration, cut in uneven chunks."""
    ports, scores, ids, rules, seconds = _stream(21, 5_000)
    reference = _reference()
    expected = [
        reference.decide(*row) for row in zip(ports, scores, ids, rules, seconds, strict=True)
    ]
    policy = _policy()
    got = []
    for start, stop in [(0, 1), (1, 700), (700, 2_900), (2_900, 5_000)]:
        cut = slice(start, stop)
        got += policy.decide_at(ports[cut], scores[cut], ids[cut], rules[cut], seconds[cut])
    assert _exact(got) == [
        (lane, r, p.hex(), red.hex(), yel.hex()) for lane, r, p, red, yel in expected
    ]
    lanes = {d.lane for d in got}
    assert lanes == {"green", "yellow", "red"}
    assert any(d.random_selection for d in got)
    assert any(0 < d.propensity < 1 and not d.random_selection for d in got)  # ties
    # the hours window let go of its old decisions, the count windows wrapped
    assert reference.windows["MXNLD"].live() < ports.count("MXNLD") / 4
    assert reference.windows["MXTIJ"].live() == 60 < ports.count("MXTIJ") / 4


def test_one_at_a_time_and_beside_a_shadow_decide_what_the_reference_decides() -> None:
    """The live path (one shipment per call, and with a shadow score beside it) runs the same
    routine: the reference's decisions, and the shadow's answer changes nothing."""
    ports, scores, ids, rules, seconds = _stream(22, 1_500)
    reference = _reference()
    expected = [
        reference.decide(*row) for row in zip(ports, scores, ids, rules, seconds, strict=True)
    ]
    policy: LanePolicy = _policy()
    got = []
    for row, (port, score, sid, rule) in enumerate(zip(ports, scores, ids, rules, strict=True)):
        if row % 2:
            got.append(policy.decide_at([port], [score], [sid], [rule], [seconds[row]])[0])
        else:
            got.append(
                policy.decide_beside(
                    port, score, 1.0 - score, sid, rule, datetime.fromtimestamp(seconds[row], UTC)
                )[0]
            )
    assert _exact(got) == [
        (lane, r, p.hex(), red.hex(), yel.hex()) for lane, r, p, red, yel in expected
    ]
