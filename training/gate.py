"""The promotion gate: whether a challenger may replace the champion, check by check.

``centinela models compare`` measures (:mod:`training.compare`) and this module judges. Every
check names what it measured and the bar, and the verdict (:class:`scoring.verdict.GateVerdict`)
is kept beside the challenger, where ``models promote`` reads it. The checks:

- **evidence**: enough positives to judge. At least :data:`MIN_INSPECTED_POSITIVES` positives
  found by inspections in the judged traffic, and :data:`MIN_EXPLORED_POSITIVES` among the
  explored (random) inspections: the positives outside the champion's picks, which decide
  recall, are estimated from those alone.
- **outcomes**: at most :data:`MAX_PENDING_SHARE` of the judged RED and YELLOW decisions still
  wait for an outcome (the estimators read a pending one as not inspected).
- **better at capacity**: the paired difference in recall at each port's RED capacity,
  challenger minus champion, has its interval above 0 by the primary estimator
  (:data:`PRIMARY`: doubly robust, which the champion's logged scores make available; else
  self-normalised): better beyond what the random draws explain, not merely on the point.
- **Table I cases**: every red-team case of a UN 1988 Table I precursor that the champion's
  decisions send RED, the challenger's do too (:mod:`training.red_team`).
- **calibration**: the challenger's scores summed over the judged traffic (the positives it
  expects) within a factor :data:`CALIBRATION_FACTOR` of the positives the primary estimator
  finds there: lane thresholds and reasons read the score as a probability.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from scoring.verdict import GateCheck, GateVerdict
from training.compare import INSPECTED_LANES, Judgement
from training.red_team import TableIRecall

MIN_INSPECTED_POSITIVES: Final[int] = 30
MIN_EXPLORED_POSITIVES: Final[int] = 5
MAX_PENDING_SHARE: Final[float] = 0.05
CALIBRATION_FACTOR: Final[float] = 2.0
PRIMARY: Final[tuple[str, ...]] = ("dr", "snips")


def primary_estimator(judgement: Judgement) -> str:
    """The first of :data:`PRIMARY` the comparison has."""
    have = {c.estimator for c in judgement.comparisons.comparisons}
    return next(e for e in PRIMARY if e in have)


def evidence_check(judgement: Judgement) -> GateCheck:
    frame = judgement.traffic.frame
    positives = int(frame["positive"].sum())
    explored = int((frame["explored"] & frame["positive"]).sum())
    passed = positives >= MIN_INSPECTED_POSITIVES and explored >= MIN_EXPLORED_POSITIVES
    return GateCheck(
        "evidence",
        passed,
        f"{positives} inspected positives (need {MIN_INSPECTED_POSITIVES}) and {explored} "
        f"explored positives (need {MIN_EXPLORED_POSITIVES}) in {frame.height:,} judged "
        "shipments",
    )


def outcomes_check(judgement: Judgement) -> GateCheck:
    frame = judgement.traffic.frame
    opened = int(frame["lane"].is_in(INSPECTED_LANES).sum())
    pending = judgement.traffic.pending
    share = pending / opened if opened else 0.0
    return GateCheck(
        "outcomes",
        share <= MAX_PENDING_SHARE,
        f"{pending} of {opened} RED and YELLOW decisions have no outcome yet ({share:.1%}; "
        f"at most {MAX_PENDING_SHARE:.0%})",
    )


def capacity_check(judgement: Judgement) -> GateCheck:
    estimator = primary_estimator(judgement)
    comparison = judgement.comparisons[estimator]
    gap = comparison.overall.recall
    passed = gap.lower is not None and gap.lower > 0
    return GateCheck(
        "better at capacity",
        passed,
        f"recall at capacity ({estimator}): challenger "
        f"{comparison.challenger.overall.recall.text(percent=True)}, champion "
        f"{comparison.champion.overall.recall.text(percent=True)}; difference "
        f"{gap.text(percent=True, sign=True)} (its interval must lie above 0)",
    )


def table_i_check(challenger: TableIRecall, champion: TableIRecall) -> GateCheck:
    missed = {(m.entry_id, m.field, m.trick) for m in champion.misses}
    lost = sorted({(m.entry_id, m.field, m.trick) for m in challenger.misses} - missed)
    shown = ", ".join(f"{e} ({field}: {trick})" for e, field, trick in lost[:5])
    more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
    return GateCheck(
        "Table I cases",
        not lost,
        f"challenger RED on {challenger.red} of {challenger.cases} red-team cases, champion on "
        f"{champion.red}"
        + (f"; lost: {shown}{more}" if lost else "; none the champion caught is lost"),
    )


def calibration_check(judgement: Judgement) -> GateCheck:
    estimator = primary_estimator(judgement)
    found = judgement.comparisons[estimator].challenger.overall.positives.value
    expected = float(judgement.traffic.frame["challenger_score"].sum())
    ratio = expected / found if found else float("inf")
    passed = 1 / CALIBRATION_FACTOR <= ratio <= CALIBRATION_FACTOR
    return GateCheck(
        "calibration",
        passed,
        f"the challenger's scores expect {expected:.1f} positives in the judged traffic, "
        f"{estimator} estimates {found if found is None else round(found, 1)} "
        f"(ratio {ratio:.2f}; within {1 / CALIBRATION_FACTOR:g}-{CALIBRATION_FACTOR:g})",
    )


def verdict(
    challenger: str,
    champion: str,
    judgement: Judgement,
    table_i: tuple[TableIRecall, TableIRecall],
    *,
    evidence: str,
) -> GateVerdict:
    """The gate's verdict on ``challenger`` against ``champion`` from what was measured."""
    checks = (
        evidence_check(judgement),
        outcomes_check(judgement),
        capacity_check(judgement),
        table_i_check(*table_i),
        calibration_check(judgement),
    )
    return GateVerdict.judge(
        challenger,
        champion,
        checks,
        decided_at=datetime.now(UTC),
        evidence=evidence,
        figures={
            **judgement.to_json(),
            "primary_estimator": primary_estimator(judgement),
            "table_i": {"challenger": table_i[0].to_json(), "champion": table_i[1].to_json()},
        },
    )
