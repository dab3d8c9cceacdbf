"""A bulk run's lane windows in a child process (scoring.lane_process) decide exactly what the
policy decides in process, chunk after chunk; the policy takes the child's windows at the end,
the child's log records reach the parent's loggers, and a failure in the child is an error in
the parent, never a hang."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from features.errors import Unavailable
from scoring.lane_process import LaneColumns, LaneProcess, LaneRequest
from scoring.lanes import Budget, LanePolicy, score_quantiles

REFERENCE = {"default": score_quantiles(np.random.default_rng(1).beta(0.5, 30, size=5_000))}
PORTS = ["MXZLO", "MXVER", "MXLZC", "XXNOPE"]  # the last shares the "other" window


def policy() -> LanePolicy:
    # Rules send more RED than a 2% budget holds: the windows go over capacity and log it.
    budgets = {"default": Budget(red=0.02, yellow=0.05, window=200), "MXVER": Budget(red=0.1)}
    return LanePolicy(REFERENCE, budgets, seed=7)


def chunks(n: int, size: int) -> list[LaneRequest]:
    rng = np.random.default_rng(2)
    out = []
    for c in range(n):
        scores = rng.beta(0.5, 30, size=size)
        scores[::97] = scores[0]  # ties at a threshold: the tie draw
        rules = rng.choice(["green", "yellow", "red"], size=size, p=[0.93, 0.02, 0.05])
        out.append(
            (
                [PORTS[i] for i in rng.integers(0, len(PORTS), size=size)],
                scores.tolist(),
                [f"S{c}-{i}" for i in range(size)],
                rules.tolist(),
                (1.8e9 + 60.0 * (c * size + np.arange(size))).tolist(),
            )
        )
    return out


def test_the_child_decides_what_the_policy_decides(caplog: pytest.LogCaptureFixture) -> None:
    requests = chunks(4, 1_500)
    here = policy()
    expected = [here.decide_at(*request) for request in requests]
    caplog.clear()
    remote = policy()
    with caplog.at_level(logging.INFO, logger="scoring.lanes"), LaneProcess(remote) as lanes:
        pending = [lanes.decide_at(request) for request in requests]  # all sent before reading
        got = [future.result() for future in pending]
    for columns, decisions in zip(got, expected, strict=True):
        assert isinstance(columns, LaneColumns)
        assert list(columns) == decisions  # every field, exactly
    assert {d.lane for part in expected for d in part} == {"green", "yellow", "red"}
    assert any(d.random_selection for part in expected for d in part)
    # The policy took the child's windows: it goes on as the in-process one does.
    assert remote.shares() == here.shares()
    more = chunks(5, 300)[-1]
    assert remote.decide_at(*more) == here.decide_at(*more)
    # The child's warnings were handled by this process's loggers, with their fields.
    warnings = [r for r in caplog.records if "over RED capacity" in r.getMessage()]
    assert warnings, "the child's log records did not reach the parent"
    assert {w.port for w in warnings} <= {"MXZLO", "MXLZC", "other"}  # type: ignore[attr-defined]


def test_an_error_in_the_child_is_raised_here_and_the_policy_keeps_its_windows() -> None:
    remote = policy()
    ports, scores, ids, rules, seconds = chunks(1, 100)[0]
    bad: LaneRequest = (ports, scores[:-1], ids, rules, seconds)  # one score short
    with pytest.raises(Exception) as in_process:  # noqa: PT011
        policy().decide_at(*bad)
    with pytest.raises(in_process.type), LaneProcess(remote) as lanes:  # noqa: PT012
        assert len(lanes.decide_at((ports, scores, ids, rules, seconds)).result()) == 100
        lanes.decide_at(bad).result()
    assert remote.shares() == []  # nothing taken from a child that failed


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    lost = pytest.raises(Unavailable, match="lost the lane windows' process")
    with lost, LaneProcess(policy()) as lanes:
        lanes._child.kill()
        lanes.decide_at(chunks(1, 10)[0]).result()


def test_lane_columns_read_back_every_decision_exactly() -> None:
    decisions = policy().decide_at(*chunks(1, 500)[0])
    columns = LaneColumns.of(decisions)
    assert len(columns) == 500
    assert list(columns) == decisions
    assert columns[3:6] == decisions[3:6]
    assert len(LaneColumns.of([])) == 0
