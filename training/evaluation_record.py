"""The evaluation's vocabulary and its record: every figure of one run, and its JSON form.

:class:`Evaluation` is what :func:`training.evaluate.evaluate` returns and what the report
(:mod:`training.evaluation_report`) reads; :meth:`Evaluation.to_json` is the ``evaluate --json``
contract and the content of ``evaluation.json``. Nothing here computes a figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final, Literal

import polars as pl

from scoring.lanes import LANES as POLICY_LANES
from training.evaluation_baselines import EVIDENCE_COLUMNS
from training.evaluation_intervals import Interval

Selector = Literal["model", "random", "rules", "watchlist"]
LabelSource = Literal["observed", "truth"]

BUDGETS: Final[tuple[float, ...]] = (0.005, 0.01, 0.02, 0.05, 0.1)
BUDGET_KEYS: Final[tuple[str, ...]] = tuple(str(b) for b in BUDGETS)
SELECTORS: Final[tuple[Selector, ...]] = ("model", "random", "rules", "watchlist")
BASELINES: Final[tuple[Selector, ...]] = ("random", "rules", "watchlist")
LABEL_SOURCES: Final[tuple[LabelSource, ...]] = ("observed", "truth")

LANES: Final[tuple[str, ...]] = tuple(reversed(POLICY_LANES))  # strongest first, as reported
RED_SOURCES: Final[tuple[str, ...]] = ("rules", "exploration", "model")
"""Where a RED of the policy came from, checked in this order: a hard rule with lane RED fired,
else it was a random exploration pick, else the model's score sent it."""
POLICY_OVERALL: Final[str] = "overall"

MIN_POSITIVES: Final[int] = 20
"""Fewer positives than this in the evaluated window (per label source) and the figures against
that source rest on a handful of shipments: the report warns, gives no "N× random" ratio, and
marks PR-AUC unreliable; ``evaluation.json`` flags it (``window.fewPositives``)."""

NO_POSITIVES: Final[str] = "no positives"
NOTHING_SELECTED: Final[str] = "nothing selected"

FRAME_COLUMNS: Final[tuple[str, ...]] = (
    "shipment_id",
    "declared_at",
    "port_of_entry",
    "risk_score",
    "rule_score",
    *EVIDENCE_COLUMNS,
    "tiebreak",
    "inspected",
    "observed",
    "lane",
    "random_selection",
    "red_by",
)
"""Columns of :attr:`Evaluation.frame`; ``truth`` follows when the data has a truth table, and
``pattern`` (the illicit pattern of a true positive, else null) when that table names them.

``lane``, ``random_selection`` and ``red_by`` (one of :data:`RED_SOURCES` for a RED, else null)
are the decision policy's, from :func:`training.evaluation_policy.policy_decisions`."""

_ROUND = 6


class JsonRecord:
    """A dataclass record whose JSON form is :func:`record_json`'s: each field under its
    camelCase name."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class BudgetMetrics:
    """One selector at one budget against one label source.

    ``positives_found`` and, for ``random``, the other counts are expectations, hence floats.
    ``inspected_selected`` and ``precision_inspected`` exist for ``observed`` labels only:
    precision among the selected shipments that were actually inspected. Precision is None
    when there are no positives to find (it would read as a selector's failure) or nothing was
    selected; :attr:`reason` says which. Each ``*_interval`` is the figure's bootstrap interval
    (:mod:`training.evaluation_intervals`).
    """

    selected: int
    positives: int
    positives_found: float
    precision: float | None
    recall: float | None
    inspected_selected: float | None = None
    precision_inspected: float | None = None
    precision_interval: Interval | None = None
    recall_interval: Interval | None = None
    precision_inspected_interval: Interval | None = None

    @property
    def reason(self) -> str | None:
        """Why precision is missing: :data:`NO_POSITIVES` or :data:`NOTHING_SELECTED`."""
        if self.positives == 0:
            return NO_POSITIVES
        return NOTHING_SELECTED if self.selected == 0 else None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "precision": _num(self.precision),
            "recall": _num(self.recall),
            "selected": self.selected,
            "positivesFound": _num(self.positives_found),
            "positives": self.positives,
        }
        if self.inspected_selected is not None:
            doc["inspectedSelected"] = _num(self.inspected_selected)
            doc["precisionInspected"] = _num(self.precision_inspected)
        doc["precisionInterval"] = json_value(self.precision_interval)
        doc["recallInterval"] = json_value(self.recall_interval)
        if self.inspected_selected is not None:
            doc["precisionInspectedInterval"] = json_value(self.precision_inspected_interval)
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc


BySelector = dict[Selector, dict[LabelSource, BudgetMetrics]]
"""selector -> label source -> metrics: every selector at one budget."""

BudgetTable = dict[str, BySelector]
"""budget key -> selector -> label source -> metrics."""

PrAucTable = dict[Selector, dict[LabelSource, float | None]]


@dataclass(frozen=True, slots=True)
class CalibrationBin(JsonRecord):
    """One quantile bin of the reliability table: ``count`` inspected shipments whose scores run
    from ``lower`` to ``upper``, ``positives`` of them positive."""

    lower: float
    upper: float
    count: int
    positives: int
    mean_predicted: float | None
    observed_rate: float | None
    observed_interval: Interval | None


@dataclass(frozen=True, slots=True)
class Calibration(JsonRecord):
    """The model's risk scores against observed outcomes, among inspected shipments only:
    the model learned from inspected shipments, so that is where its probabilities mean
    something.

    ``bins`` are quantile bins (``binning``): equal numbers of shipments, so the reliability
    table has as much evidence in each row and the crowd of tiny scores spreads over several
    rows. ``brier_base`` is the Brier score of the base-rate predictor (every shipment scored
    at the observed positive rate) and ``brier_skill`` is ``1 - brier / brier_base``: above
    zero the scores beat the base rate, at or below zero they add nothing.
    ``brier_skill_interval`` is its 95% bootstrap interval over the inspected shipments: with
    a handful of positives the skill moves a lot from one sample to the next.
    """

    brier: float | None
    brier_base: float | None
    brier_skill: float | None
    brier_skill_interval: Interval | None
    inspected: int
    positives: int
    binning: str
    bins: tuple[CalibrationBin, ...]


@dataclass(frozen=True, slots=True)
class Segment(JsonRecord):
    """Part of the evaluated window, with its own budgets (shares of the segment's shipments)."""

    start: datetime | None
    end: datetime | None
    shipments: int
    positives: dict[LabelSource, int]
    budgets: BudgetTable


@dataclass(frozen=True, slots=True)
class RecallLoss(JsonRecord):
    """Recall before a shift minus recall after it, with the bootstrap interval of the
    difference (the two sides are disjoint shipments, resampled independently)."""

    before: float | None
    after: float | None
    loss: float | None
    interval: Interval | None


LossTable = dict[str, dict[Selector, dict[LabelSource, RecallLoss]]]
"""budget key -> selector (not ``random``) -> label source -> recall loss across the shift."""


@dataclass(frozen=True, slots=True)
class Shift:
    """The evaluated window split at a tactic shift inside it: before is ``declared_at < at``.

    ``shifts`` lists every dated shift the data names (``{"name", "date", "inWindow"}``). When
    none falls inside the window, ``at``, ``before``, ``after`` and ``recall_loss`` are empty and
    ``source`` says why: there is nothing to compare.
    """

    at: datetime | None
    source: str
    shifts: tuple[dict[str, Any], ...]
    before: Segment | None
    after: Segment | None
    recall_loss: LossTable | None

    @property
    def in_window(self) -> bool:
        return self.at is not None

    def to_json(self) -> dict[str, Any]:
        return {"inWindow": self.in_window, **record_json(self)}


@dataclass(frozen=True, slots=True)
class PatternRecall(JsonRecord):
    """One selector's recall of one illicit pattern at one budget, against ground truth."""

    positives: int
    found: float
    recall: float | None
    interval: Interval | None


PatternTable = dict[str, dict[str, dict[Selector, PatternRecall]]]
"""pattern -> budget key -> selector -> recall of that pattern's true positives."""


@dataclass(frozen=True, slots=True)
class PolicyMetrics:
    """The decision policy over one port's evaluated shipments, or over all of them.

    ``red_budget`` and ``yellow_budget`` are the shares of the settings (overall: weighted by
    each port's shipments); ``capacity`` is how many REDs the budget allows (per port
    ``ceil(red × shipments)``, overall their sum). ``red`` and ``selected`` score the policy's
    RED lane and its RED+YELLOW lanes; the ``model_*`` figures are the model alone at each port:
    its top ``lanes["red"]``, top ``lanes["red"] + lanes["yellow"]`` and top ``capacity``
    shipments by score (overall: the union of the ports' selections).
    """

    shipments: int
    budget: dict[str, Any] | None
    red_budget: float
    yellow_budget: float
    capacity: int
    lanes: dict[str, int]
    red_by: dict[str, int]
    red: dict[LabelSource, BudgetMetrics]
    selected: dict[LabelSource, BudgetMetrics]
    model_red: dict[LabelSource, BudgetMetrics]
    model_selected: dict[LabelSource, BudgetMetrics]
    model_capacity: dict[LabelSource, BudgetMetrics]

    @property
    def red_share(self) -> float | None:
        return ratio(self.lanes["red"], self.shipments)

    @property
    def selected_share(self) -> float | None:
        return ratio(self.lanes["red"] + self.lanes["yellow"], self.shipments)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "shipments": self.shipments,
            "redBudget": _num(self.red_budget),
            "yellowBudget": _num(self.yellow_budget),
            "capacity": self.capacity,
            "lanes": dict(self.lanes),
            "redShare": _num(self.red_share),
            "selectedShare": _num(self.selected_share),
            "redBy": dict(self.red_by),
            "red": json_value(self.red),
            "selected": json_value(self.selected),
            "modelAlone": {
                "red": json_value(self.model_red),
                "selected": json_value(self.model_selected),
                "capacity": json_value(self.model_capacity),
            },
        }
        if self.budget is not None:
            doc["budget"] = dict(self.budget)
        return doc


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    """:class:`PolicyMetrics` overall and per port, and what decided: the ``policy`` key of
    ``evaluation.json``."""

    rules_version: str
    watchlist_version: str
    exploration_seed: int
    overall: PolicyMetrics
    per_port: dict[str, PolicyMetrics]

    def to_json(self) -> dict[str, Any]:
        return {
            "rulesVersion": self.rules_version,
            "watchlistVersion": self.watchlist_version,
            "explorationSeed": self.exploration_seed,
            "redSources": list(RED_SOURCES),
            "overall": self.overall.to_json(),
            "perPort": json_value(self.per_port),
        }


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one evaluation. :meth:`to_json` is the ``evaluate --json`` contract.

    ``patterns`` is recall by illicit pattern against ground truth, when the data names the
    patterns (a simulated world does); else None. ``frame`` holds one row per evaluated
    shipment with each selector's score and the labels (:data:`FRAME_COLUMNS`), for plots and
    for analysts who want to dig further.
    """

    model: dict[str, Any]
    window: dict[str, Any]
    label_sources: tuple[LabelSource, ...]
    budgets: BudgetTable
    per_port: dict[str, BudgetTable]
    policy: PolicyEvaluation
    pr_auc: PrAucTable
    calibration: Calibration
    shift: Shift
    patterns: PatternTable | None
    frame: pl.DataFrame = field(repr=False, compare=False)

    def positives(self, source: LabelSource) -> int:
        """Positives of ``source`` in the evaluated window."""
        return int(self.window["positives"][source])

    def few_positives(self, source: LabelSource) -> bool:
        """Fewer than :data:`MIN_POSITIVES` positives of ``source``: figures against it rest on
        too few shipments for ratios or a PR-AUC to mean anything."""
        return self.positives(source) < MIN_POSITIVES

    @property
    def warnings(self) -> list[str]:
        """What a reader must know before trusting the figures, one sentence each."""
        found = [
            f"only {self.positives(src):,} {src} positives in the evaluated window (fewer than "
            f"{MIN_POSITIVES}): precision, recall and PR-AUC against {src} labels rest on too "
            "few shipments; no ratio to random or the baselines is given"
            for src in self.label_sources
            if self.few_positives(src)
        ]
        if not self.shift.in_window:
            found.append(f"no tactic shift inside the evaluated window ({self.shift.source})")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "window": dict(self.window),
            "budgets": json_value(self.budgets),
            "perPort": json_value(self.per_port),
            "policy": self.policy.to_json(),
            "prAuc": json_value(self.pr_auc),
            "calibration": self.calibration.to_json(),
            "shift": self.shift.to_json(),
            "patterns": json_value(self.patterns),
            "warnings": self.warnings,
        }


# --------------------------------------------------------------------------- JSON form


def record_json(record: Any) -> dict[str, Any]:
    """A dataclass record as JSON: each field in declaration order, under its camelCase name."""
    return {_camel(f.name): json_value(getattr(record, f.name)) for f in fields(record)}


def json_value(value: Any) -> Any:
    """The JSON form of one figure: numbers rounded (:func:`_num`), times in ISO 8601, records by
    their ``to_json``, mappings and sequences item by item; anything else as it is."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Mapping):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; None when the denominator is zero."""
    return numerator / denominator if denominator else None


def iso(value: object) -> str | None:
    """A time in ISO 8601; None for anything else (a missing bound of an empty window)."""
    return value.isoformat() if isinstance(value, datetime) else None


def _num(value: float | None) -> float | None:
    """A JSON-safe number: None for missing, NaN or infinite values."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), _ROUND)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
