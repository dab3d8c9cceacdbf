"""``centinela evaluate``: how much of what is hidden a model finds at a port's inspection budget.

A port can open a small share of what arrives, so the figure that matters is precision and
recall among the few shipments a selector would open: 0.5, 1, 2, 5 and 10% of the shipments of
the window, overall and per port (a port's budget is that share of *its* shipments). The model
is compared with three baselines an inspection service could run without it:

``random``
    Selection at random. Its figures are expected values computed exactly, not one draw:
    precision is the base rate, recall is the share selected, average precision is the
    expectation over all orderings.
``rules``
    A legacy rule score, one point each for: a goods line in HS chapter 28, 29 or 38 (the
    chemical chapters), an origin in a high-risk precursor country (:data:`RULE_ORIGINS`), and
    any transshipment. Scores run 0 to 3.
``watchlist``
    The watchlist matcher alone. Each goods line counts once, at its strongest match type;
    shipments rank by those counts compared in the order :data:`WATCHLIST_EVIDENCE` (one CAS
    line outranks any number of weaker lines). Shipments without hits rank last.

Every selector breaks ties by a hash of ``shipment_id`` (:func:`tiebreak_keys`), so rankings and
all figures are deterministic and a coarse score gains nothing from the order of the input.

Labels come from two sources. ``observed`` is what an inspection service knows: a positive
inspection outcome; shipments never inspected count as negative, which understates precision
for any selector that picks shipments the legacy policy never opened, so precision among the
inspected ones is reported beside it. ``truth`` (``illicit`` in ``truth.parquet``) exists only
for simulated worlds and is used only when that table is present.

Only shipments declared after the end of the model's validation window are evaluated: early
stopping saw the validation window, so anything earlier flatters the model.

The policy at capacity
    Beside the rankings, the whole decision policy runs as the server would
    (:meth:`scoring.scorer.Scorer.score_tables`: the model, the hard rules, each port's lane
    budget and exploration, from one fresh scorer over every shipment in declared order, so
    history features and any state of the lanes see the whole past). Per port and overall,
    :func:`policy_metrics` reports the RED budget, the realised RED share, where each RED came
    from (a RED hard rule fired, else a random exploration pick, else the model), precision and
    recall of the RED lane and of RED+YELLOW against each label source, and beside them the
    model alone opening the same number of each port's shipments (its top ``k`` by score, ``k``
    the policy's realised count) and opening exactly the port's capacity (``ceil(red × n)``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from features.errors import DataError
from features.tables import load_tables, scan_table, table_path
from features.watchlist import Watchlist, load_watchlist
from scoring.bulk import score_tables
from scoring.bundle import ModelBundle
from scoring.lanes import LANES as POLICY_LANES
from scoring.lanes import Budget
from scoring.rules import RuleSet, load_rules
from scoring.scorer import Scorer
from scoring.settings import Settings, load_settings
from training.simulate.reference import SCHEDULING_4_PIPERIDONE

Selector = Literal["model", "random", "rules", "watchlist"]
LabelSource = Literal["observed", "truth"]

BUDGETS: Final[tuple[float, ...]] = (0.005, 0.01, 0.02, 0.05, 0.1)
BUDGET_KEYS: Final[tuple[str, ...]] = tuple(str(b) for b in BUDGETS)
SELECTORS: Final[tuple[Selector, ...]] = ("model", "random", "rules", "watchlist")
BASELINES: Final[tuple[Selector, ...]] = ("random", "rules", "watchlist")
LABEL_SOURCES: Final[tuple[LabelSource, ...]] = ("observed", "truth")

RULE_CHAPTERS: Final[tuple[str, ...]] = ("28", "29", "38")
RULE_ORIGINS: Final[tuple[str, ...]] = ("CN", "IN", "HK")
WATCHLIST_EVIDENCE: Final[tuple[str, ...]] = (
    "cas",
    "hs_specific",
    "name_exact",
    "name_fuzzy",
    "hs_broad",
)
"""Match types from strongest to weakest evidence, as the ``watchlist`` baseline ranks them."""

CALIBRATION_BINS: Final[int] = 10
SHIFT_KEY: Final[str] = "tactic_shifts"
"""The manifest key listing the world's tactic shifts as ``{"name", "date"}`` objects, as
:func:`training.simulate.world.tactic_shifts` writes them."""

_EVIDENCE_COLUMNS: Final[tuple[str, ...]] = tuple(f"wl_{t}" for t in WATCHLIST_EVIDENCE)
_ROUND = 6

LANES: Final[tuple[str, ...]] = tuple(reversed(POLICY_LANES))  # strongest first, as reported
RED_SOURCES: Final[tuple[str, ...]] = ("rules", "exploration", "model")
"""Where a RED of the policy came from, checked in this order: a hard rule with lane RED fired,
else it was a random exploration pick, else the model's score sent it."""
POLICY_OVERALL: Final[str] = "overall"

FRAME_COLUMNS: Final[tuple[str, ...]] = (
    "shipment_id",
    "declared_at",
    "port_of_entry",
    "risk_score",
    "rule_score",
    *_EVIDENCE_COLUMNS,
    "tiebreak",
    "inspected",
    "observed",
    "lane",
    "random_selection",
    "red_by",
)
"""Columns of :attr:`Evaluation.frame`; ``truth`` follows when the data has a truth table.

``lane``, ``random_selection`` and ``red_by`` (one of :data:`RED_SOURCES` for a RED, else null)
are the decision policy's, from :func:`policy_decisions`."""


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True, slots=True)
class BudgetMetrics:
    """One selector at one budget against one label source.

    ``positives_found`` and, for ``random``, the other counts are expectations, hence floats.
    ``inspected_selected`` and ``precision_inspected`` exist for ``observed`` labels only:
    precision among the selected shipments that were actually inspected.
    """

    selected: int
    positives: int
    positives_found: float
    precision: float | None
    recall: float | None
    inspected_selected: float | None = None
    precision_inspected: float | None = None

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
        return doc


BudgetTable = dict[str, dict[Selector, dict[LabelSource, BudgetMetrics]]]
"""budget key -> selector -> label source -> metrics."""

PrAucTable = dict[Selector, dict[LabelSource, float | None]]


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "lower": _num(self.lower),
            "upper": _num(self.upper),
            "count": self.count,
            "meanPredicted": _num(self.mean_predicted),
            "observedRate": _num(self.observed_rate),
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    """The model's risk scores against observed outcomes, among inspected shipments only:
    the model learned from inspected shipments, so that is where its probabilities mean
    something."""

    brier: float | None
    inspected: int
    positives: int
    bins: tuple[CalibrationBin, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "brier": _num(self.brier),
            "inspected": self.inspected,
            "positives": self.positives,
            "bins": [b.to_json() for b in self.bins],
        }


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of the evaluated window, with its own budgets (shares of the segment's shipments)."""

    start: datetime | None
    end: datetime | None
    shipments: int
    positives: dict[LabelSource, int]
    budgets: BudgetTable

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "shipments": self.shipments,
            "positives": dict(self.positives),
            "budgets": _budgets_json(self.budgets),
        }


@dataclass(frozen=True, slots=True)
class Shift:
    """The evaluated window split at the world's tactic shift: before is ``declared_at < at``."""

    at: datetime
    source: str
    before: Segment
    after: Segment

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "source": self.source,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
        }


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
        return _ratio(self.lanes["red"], self.shipments)

    @property
    def selected_share(self) -> float | None:
        return _ratio(self.lanes["red"] + self.lanes["yellow"], self.shipments)

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
            "red": _by_source_json(self.red),
            "selected": _by_source_json(self.selected),
            "modelAlone": {
                "red": _by_source_json(self.model_red),
                "selected": _by_source_json(self.model_selected),
                "capacity": _by_source_json(self.model_capacity),
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
            "perPort": {port: m.to_json() for port, m in self.per_port.items()},
        }


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one evaluation. :meth:`to_json` is the ``evaluate --json`` contract.

    ``frame`` holds one row per evaluated shipment with each selector's score and the labels
    (:data:`FRAME_COLUMNS`), for plots and for analysts who want to dig further.
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
    frame: pl.DataFrame = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "window": dict(self.window),
            "budgets": _budgets_json(self.budgets),
            "perPort": {port: _budgets_json(t) for port, t in self.per_port.items()},
            "policy": self.policy.to_json(),
            "prAuc": {
                sel: {src: _num(v) for src, v in by_src.items()}
                for sel, by_src in self.pr_auc.items()
            },
            "calibration": self.calibration.to_json(),
            "shift": self.shift.to_json(),
        }


# --------------------------------------------------------------------------- entry point


def evaluate(
    data_dir: Path,
    bundle: ModelBundle,
    *,
    report_dir: Path | None = None,
    watchlist: Watchlist | None = None,
    settings: Settings | None = None,
    rules: RuleSet | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate ``bundle`` on the shipments of ``data_dir`` it never saw; write a report if asked.

    ``watchlist`` feeds the model's watchlist features and the ``watchlist`` baseline (default:
    the packaged one). Every shipment is scored, so history features see the whole past, and
    only the unseen window is kept.
    ``settings`` give the decision policy its lane budgets and exploration seed (default:
    :func:`~scoring.settings.load_settings` without a file); ``rules`` are its hard rules
    (default: ``settings.rules_file``, checked against ``watchlist``).
    ``on_stage(message)`` is told what is being done, for a status line.
    """
    stage = on_stage or (lambda _message: None)
    data_dir = Path(data_dir)
    after = _test_window_start(bundle)

    stage("scoring shipments")
    wl = watchlist or load_watchlist(None)
    # One shipment per shipment id, as train reads them: a repeated id is neither scored,
    # labelled nor counted in its parties' history twice.
    tables = load_tables(data_dir)
    shipments, goods, inspections = tables.shipments, tables.goods, tables.inspections
    scores = score_tables(bundle, shipments, goods, inspections, wl).filter(
        pl.col("declared_at") > after
    )
    if scores.height == 0:
        last = shipments["declared_at"].max()
        raise DataError(
            f"{data_dir}: no shipments declared after {after.isoformat()}, the end of model "
            f"{bundle.version}'s validation window (the data ends {_iso(last)}); evaluate on data "
            "newer than the model's training window"
        )
    ids = scores.select("shipment_id")
    window_ships = shipments.join(ids, on="shipment_id", how="semi")
    window_goods = goods.join(ids, on="shipment_id", how="semi")

    stage("deciding lanes with the full policy")
    settings = settings if settings is not None else load_settings(None)
    rule_set = rules if rules is not None else load_rules(settings.rules_file, wl)
    scorer = Scorer.create(bundle, wl, rule_set, settings)
    decisions = policy_decisions(scorer, rule_set, shipments, goods, inspections)

    stage("applying baselines")
    frame = (
        scores.select("shipment_id", "declared_at", "port_of_entry", "risk_score")
        .join(rule_scores(window_ships, window_goods), on="shipment_id", how="left")
        .join(watchlist_evidence(wl.match_goods(window_goods)), on="shipment_id", how="left")
        .with_columns(
            pl.col("rule_score").fill_null(0), *(pl.col(c).fill_null(0) for c in _EVIDENCE_COLUMNS)
        )
    )
    frame = frame.with_columns(tiebreak=tiebreak_keys(frame["shipment_id"]))
    frame = frame.join(_observed_labels(inspections), on="shipment_id", how="left").with_columns(
        pl.col("inspected").fill_null(False), pl.col("observed").fill_null(False)
    )
    frame = frame.join(decisions, on="shipment_id", how="left")
    undecided = frame["lane"].null_count()
    if undecided:
        raise DataError(f"{data_dir}: the policy decided no lane for {undecided} shipments")
    label_sources: tuple[LabelSource, ...] = ("observed",)
    if table_path(data_dir, "truth").exists():
        frame = _join_truth(frame, data_dir)
        label_sources = ("observed", "truth")
    frame = frame.sort("declared_at", "shipment_id").select(
        *FRAME_COLUMNS, *(["truth"] if "truth" in label_sources else [])
    )

    stage("computing metrics")
    start, end = frame["declared_at"].min(), frame["declared_at"].max()
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise DataError(f"{data_dir}: the evaluated shipments have no declared_at values")
    shift_at, shift_source = shift_date(data_dir, start, end)
    before = frame.filter(pl.col("declared_at") < shift_at)
    later = frame.filter(pl.col("declared_at") >= shift_at)
    ports = sorted(frame["port_of_entry"].unique().to_list())
    evaluation = Evaluation(
        model={
            "version": bundle.version,
            "trainedAt": bundle.meta.trained_at.isoformat(),
            "watchlistVersion": bundle.meta.watchlist_version,
            "evaluatedWithWatchlist": wl.version,
            "windows": {k: list(v) for k, v in bundle.meta.windows.items()},
        },
        window={
            "after": after.isoformat(),
            "start": _iso(start),
            "end": _iso(end),
            "shipments": frame.height,
            "inspected": int(frame["inspected"].sum()),
            "positives": _positives(frame, label_sources),
            "labelSources": list(label_sources),
            "ports": {p: int((frame["port_of_entry"] == p).sum()) for p in ports},
            "folded": tables.folded.to_json(),
        },
        label_sources=label_sources,
        budgets=budget_metrics(frame, label_sources),
        per_port={
            p: budget_metrics(frame.filter(pl.col("port_of_entry") == p), label_sources)
            for p in ports
        },
        policy=PolicyEvaluation(
            rules_version=rule_set.version,
            watchlist_version=str(wl.version),
            exploration_seed=settings.exploration_seed,
            overall=policy_metrics(frame, label_sources, settings.lane_budgets),
            per_port={
                p: policy_metrics(
                    frame.filter(pl.col("port_of_entry") == p), label_sources, settings.lane_budgets
                )
                for p in ports
            },
        ),
        pr_auc=pr_auc(frame, label_sources),
        calibration=calibration(frame),
        shift=Shift(
            at=shift_at,
            source=shift_source,
            before=_segment(before, label_sources),
            after=_segment(later, label_sources),
        ),
        frame=frame,
    )
    if report_dir is not None:
        stage("writing report")
        from training.evaluation_report import write_report

        write_report(evaluation, Path(report_dir))
    return evaluation


# --------------------------------------------------------------------------- baselines


def rule_scores(shipments: pl.DataFrame, goods: pl.DataFrame) -> pl.DataFrame:
    """``shipment_id``, ``rule_score`` (0 to 3): the legacy rule described in the module doc."""
    chemical = (
        goods.filter(pl.col("hs_code").str.slice(0, 2).is_in(RULE_CHAPTERS))
        .select("shipment_id")
        .unique()
        .with_columns(chem=pl.lit(1, dtype=pl.Int32))
    )
    return (
        shipments.select("shipment_id", "origin_country", "transshipment_ports")
        .join(chemical, on="shipment_id", how="left")
        .select(
            "shipment_id",
            rule_score=(
                pl.col("chem").fill_null(0)
                + pl.col("origin_country").is_in(RULE_ORIGINS).fill_null(False).cast(pl.Int32)
                + (pl.col("transshipment_ports").list.len().fill_null(0) > 0).cast(pl.Int32)
            ).cast(pl.Int32),
        )
    )


def watchlist_evidence(hits: pl.DataFrame) -> pl.DataFrame:
    """``shipment_id`` and, per match type, how many goods lines have it as strongest evidence.

    ``hits`` is :meth:`Watchlist.match_goods` output. Unknown match types count for nothing.
    """
    rank = {t: i for i, t in enumerate(WATCHLIST_EVIDENCE)}
    per_line = (
        hits.select(
            "shipment_id",
            "line_no",
            level=pl.col("match_type").replace_strict(rank, default=None, return_dtype=pl.Int32),
        )
        .drop_nulls("level")
        .group_by("shipment_id", "line_no")
        .agg(pl.col("level").min())
    )
    return per_line.group_by("shipment_id").agg(
        (pl.col("level") == i).sum().cast(pl.Int32).alias(c)
        for i, c in enumerate(_EVIDENCE_COLUMNS)
    )


def tiebreak_keys(shipment_ids: pl.Series | Iterable[str]) -> pl.Series:
    """A stable 64-bit hash of each shipment id: the tie-break of every ranking.

    Not polars' own hash, which may change between versions; figures must not.
    """
    values = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")
        for s in (shipment_ids.to_list() if isinstance(shipment_ids, pl.Series) else shipment_ids)
    ]
    return pl.Series("tiebreak", values, dtype=pl.UInt64)


# --------------------------------------------------------------------------- metrics


def budget_size(share: float, shipments: int) -> int:
    """How many of ``shipments`` a budget of ``share`` opens: rounded up, so a small port with
    any budget opens at least one."""
    return math.ceil(round(share * shipments, 9)) if shipments else 0


def ranking(frame: pl.DataFrame, selector: Selector) -> np.ndarray:
    """Row indices of ``frame`` from first to last pick of ``selector`` (not ``random``)."""
    tie = frame["tiebreak"].to_numpy()
    keys: list[np.ndarray]
    if selector == "model":
        keys = [-frame["risk_score"].to_numpy().astype(np.float64)]
    elif selector == "rules":
        keys = [-frame["rule_score"].to_numpy().astype(np.int64)]
    elif selector == "watchlist":
        keys = [-frame[c].to_numpy().astype(np.int64) for c in _EVIDENCE_COLUMNS]
    else:
        raise ValueError(f"{selector!r} has no ranking; its figures are expectations")
    return np.lexsort([tie, *reversed(keys)])


def _labels(frame: pl.DataFrame, source: LabelSource) -> np.ndarray:
    return frame[source].to_numpy().astype(np.int64)


def budget_metrics(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> BudgetTable:
    """Every selector at every budget of ``frame``'s shipments, against each label source."""
    n = frame.height
    inspected = frame["inspected"].to_numpy().astype(np.int64)
    orders = {s: ranking(frame, s) for s in SELECTORS if s != "random"}
    table: BudgetTable = {key: {} for key in BUDGET_KEYS}
    for share, key in zip(BUDGETS, BUDGET_KEYS, strict=True):
        k = budget_size(share, n)
        for selector in SELECTORS:
            table[key][selector] = {
                src: (
                    _random_metrics(_labels(frame, src), inspected, k, src)
                    if selector == "random"
                    else _ranked_metrics(_labels(frame, src), inspected, orders[selector], k, src)
                )
                for src in label_sources
            }
    return table


def _ranked_metrics(
    y: np.ndarray, inspected: np.ndarray, order: np.ndarray, k: int, source: LabelSource
) -> BudgetMetrics:
    return _chosen_metrics(y, inspected, order[:k], source)


def _chosen_metrics(
    y: np.ndarray, inspected: np.ndarray, chosen: np.ndarray, source: LabelSource
) -> BudgetMetrics:
    """Metrics of opening the rows ``chosen`` (indices, or a boolean mask)."""
    if chosen.dtype == np.bool_:
        chosen = np.flatnonzero(chosen)
    k = len(chosen)
    positives = int(y.sum())
    found = int(y[chosen].sum())
    extra: dict[str, float | None] = {}
    if source == "observed":
        opened = int(inspected[chosen].sum())
        extra = {"inspected_selected": float(opened), "precision_inspected": _ratio(found, opened)}
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=float(found),
        precision=_ratio(found, k),
        recall=_ratio(found, positives),
        **extra,
    )


def _random_metrics(
    y: np.ndarray, inspected: np.ndarray, k: int, source: LabelSource
) -> BudgetMetrics:
    n, positives = len(y), int(y.sum())
    found = k * positives / n if n else 0.0
    extra: dict[str, float | None] = {}
    if source == "observed":
        opened = k * int(inspected.sum()) / n if n else 0.0
        extra = {
            "inspected_selected": opened,
            "precision_inspected": _ratio(positives, int(inspected.sum())),
        }
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=found,
        precision=_ratio(positives, n) if k else None,
        recall=_ratio(k, n) if positives else None,
        **extra,
    )


def average_precision(hits_in_order: np.ndarray) -> float | None:
    """Average precision of a ranking, given its labels from first pick to last.

    Equal to scikit-learn's ``average_precision_score`` when no scores tie; ties are already
    broken by the ranking. None when there are no positives.
    """
    hits = np.asarray(hits_in_order, dtype=np.float64)
    total = hits.sum()
    if total == 0:
        return None
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / total)


def expected_random_average_precision(n: int, positives: int) -> float | None:
    """Average precision of a uniformly random ordering, in expectation, exactly.

    With ``y`` a random permutation, ``E[y_k · Σ_{j≤k} y_j] = P/n + (k-1)·P(P-1)/(n(n-1))``;
    dividing by ``k`` and summing gives ``H_n/n + (P-1)(n-H_n)/(n(n-1))``. It tends to the base
    rate ``P/n`` for large ``n``.
    """
    if positives == 0 or n == 0:
        return None
    if n == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return harmonic / n + (positives - 1) * (n - harmonic) / (n * (n - 1))


def pr_auc(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> PrAucTable:
    """Average precision of each selector's full ranking against each label source."""
    out: PrAucTable = {}
    for selector in SELECTORS:
        out[selector] = {}
        for src in label_sources:
            y = _labels(frame, src)
            out[selector][src] = (
                expected_random_average_precision(len(y), int(y.sum()))
                if selector == "random"
                else average_precision(y[ranking(frame, selector)])
            )
    return out


def precision_recall_curve(hits_in_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each positive of a ranking, the corners of its PR curve.

    Drawn as steps (precision ``p_i`` over recall ``(r_{i-1}, r_i]``) the area is exactly
    :func:`average_precision`; a million-shipment ranking gives as many points as positives.
    Empty arrays without positives.
    """
    hits = np.asarray(hits_in_order, dtype=np.float64)
    total = hits.sum()
    if total == 0:
        return np.empty(0), np.empty(0)
    at = np.flatnonzero(hits)
    found = np.arange(1, len(at) + 1, dtype=np.float64)
    return found / (at + 1), found / total


def calibration(frame: pl.DataFrame, bins: int = CALIBRATION_BINS) -> Calibration:
    """Brier score and an equal-width reliability table of the model on inspected shipments."""
    inspected = frame.filter(pl.col("inspected"))
    p = inspected["risk_score"].to_numpy().astype(np.float64)
    y = inspected["observed"].to_numpy().astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        table.append(
            CalibrationBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_predicted=float(p[mask].mean()) if count else None,
                observed_rate=float(y[mask].mean()) if count else None,
            )
        )
    return Calibration(
        brier=float(np.mean((p - y) ** 2)) if len(p) else None,
        inspected=len(p),
        positives=int(y.sum()),
        bins=tuple(table),
    )


# --------------------------------------------------------------------------- policy at capacity


def policy_decisions(
    scorer: Scorer,
    rules: RuleSet,
    shipments: pl.DataFrame,
    goods: pl.DataFrame,
    inspections: pl.DataFrame,
) -> pl.DataFrame:
    """``shipment_id``, ``lane``, ``random_selection`` and ``red_by`` for every shipment, decided
    by ``scorer`` as the server would, in declared order (``declared_at``, then ``shipment_id``,
    as ``centinela score`` runs). ``rules`` are the scorer's hard rules: a RED whose fired rules
    include one with lane RED counts for ``rules`` (see :data:`RED_SOURCES`)."""
    red_rules = {rule.id for rule in rules.rules if rule.lane == "red"}
    scored = scorer.score_tables(shipments.sort("declared_at", "shipment_id"), goods, inspections)
    lanes = [s.lane.lower() for s in scored]
    return pl.DataFrame(
        {
            "shipment_id": [s.shipment_id for s in scored],
            "lane": lanes,
            "random_selection": [s.random_selection for s in scored],
            "red_by": [
                red_source(lane, s.random_selection, s.rules_fired, red_rules)
                for lane, s in zip(lanes, scored, strict=True)
            ],
        },
        schema={
            "shipment_id": pl.String(),
            "lane": pl.String(),
            "random_selection": pl.Boolean(),
            "red_by": pl.String(),
        },
    )


def red_source(
    lane: str, random_selection: bool, rules_fired: Iterable[str], red_rules: set[str]
) -> str | None:
    """Where a RED came from (:data:`RED_SOURCES`); None for any other lane."""
    if lane != "red":
        return None
    if any(rule in red_rules for rule in rules_fired):
        return "rules"
    return "exploration" if random_selection else "model"


def port_budget(budgets: Mapping[str, Budget], port: str) -> Budget:
    """The lane budget of ``port`` in the settings' ``lane_budgets``: its own, else ``default``."""
    return budgets.get(port) or budgets.get("default") or Budget()


def policy_metrics(
    frame: pl.DataFrame, label_sources: Sequence[LabelSource], budgets: Mapping[str, Budget]
) -> PolicyMetrics:
    """The policy's lanes in ``frame`` (columns ``lane`` and ``red_by``) against each label
    source, beside the model alone at each port's realised counts and at its capacity.

    ``frame`` may hold one port or several; the model alone always selects within each port
    (its top ``k`` of the port's shipments), as capacity is a port's.
    """
    n = frame.height
    lanes = frame["lane"].to_numpy()
    red, yellow = lanes == "red", lanes == "yellow"
    model_red, model_selected, model_capacity = (np.zeros(n, dtype=np.bool_) for _ in range(3))
    capacity, red_weight, yellow_weight = 0, 0.0, 0.0
    port_of = frame["port_of_entry"].to_numpy()
    ports = sorted(set(port_of.tolist()))
    for port in ports:
        rows = np.flatnonzero(port_of == port)
        budget = port_budget(budgets, port)
        order = rows[ranking(frame[rows], "model")]
        reds = int(red[rows].sum())
        model_red[order[:reds]] = True
        model_selected[order[: reds + int(yellow[rows].sum())]] = True
        k = budget_size(budget.red, len(rows))
        model_capacity[order[:k]] = True
        capacity += k
        red_weight += budget.red * len(rows)
        yellow_weight += budget.yellow * len(rows)
    inspected = frame["inspected"].to_numpy().astype(np.int64)

    def metrics(chosen: np.ndarray) -> dict[LabelSource, BudgetMetrics]:
        return {
            src: _chosen_metrics(_labels(frame, src), inspected, chosen, src)
            for src in label_sources
        }

    red_by = frame["red_by"].to_list()
    return PolicyMetrics(
        shipments=n,
        budget=(
            port_budget(budgets, ports[0]).model_dump(mode="json") if len(ports) == 1 else None
        ),
        red_budget=red_weight / n if n else 0.0,
        yellow_budget=yellow_weight / n if n else 0.0,
        capacity=capacity,
        lanes={lane: int((lanes == lane).sum()) for lane in LANES},
        red_by={source: red_by.count(source) for source in RED_SOURCES},
        red=metrics(red),
        selected=metrics(red | yellow),
        model_red=metrics(model_red),
        model_selected=metrics(model_selected),
        model_capacity=metrics(model_capacity),
    )


# --------------------------------------------------------------------------- window and shift


def _test_window_start(bundle: ModelBundle) -> datetime:
    """The end of the validation window: evaluation takes what was declared after it."""
    valid = bundle.meta.windows.get("valid")
    if not valid:
        raise DataError(
            f"model {bundle.version} records no validation window, so the shipments it never "
            "saw cannot be told apart; retrain it with this version of centinela"
        )
    return _as_utc(datetime.fromisoformat(valid[1]))


def shift_date(data_dir: Path, start: datetime, end: datetime) -> tuple[datetime, str]:
    """Where to split the window ``[start, end]`` into before and after the tactic shift.

    The first shift date named in ``manifest.json`` (:data:`SHIFT_KEY`) inside the window;
    else the 4-piperidone scheduling date if inside; else the window's midpoint. The second
    value says which was used.
    """
    for name, when in _manifest_shifts(Path(data_dir) / "manifest.json"):
        if start < when <= end:
            return when, f"manifest: {name}"
    scheduled = datetime.combine(SCHEDULING_4_PIPERIDONE, time(), tzinfo=UTC)
    if start < scheduled <= end:
        return scheduled, f"4-piperidone scheduling (reference §1a), {SCHEDULING_4_PIPERIDONE}"
    return start + (end - start) / 2, "midpoint of the evaluated window"


def _manifest_shifts(path: Path) -> list[tuple[str, datetime]]:
    if not path.exists():
        return []
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get(SHIFT_KEY), list):
        return []
    found: list[tuple[str, datetime]] = []
    for shift in manifest[SHIFT_KEY]:
        if not isinstance(shift, Mapping):
            continue
        try:
            when = _as_utc(datetime.fromisoformat(str(shift.get("date"))))
        except ValueError:
            continue
        found.append((str(shift.get("name", SHIFT_KEY)), when))
    return sorted(found, key=lambda item: item[1])


def _segment(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> Segment:
    start = frame["declared_at"].min() if frame.height else None
    end = frame["declared_at"].max() if frame.height else None
    return Segment(
        start=start if isinstance(start, datetime) else None,
        end=end if isinstance(end, datetime) else None,
        shipments=frame.height,
        positives=_positives(frame, label_sources),
        budgets=budget_metrics(frame, label_sources),
    )


# --------------------------------------------------------------------------- labels


def _observed_labels(inspections: pl.DataFrame) -> pl.DataFrame:
    """``inspected`` and ``observed`` (positive) per shipment id, from the folded inspections."""
    return inspections.select(
        "shipment_id",
        pl.lit(True).alias("inspected"),
        pl.col("positive").fill_null(False).alias("observed"),
    )


def _join_truth(frame: pl.DataFrame, data_dir: Path) -> pl.DataFrame:
    truth = (
        scan_table(data_dir, "truth")
        .group_by("shipment_id")
        .agg(pl.col("illicit").fill_null(False).any().alias("truth"))
        .collect()
    )
    joined = frame.join(truth, on="shipment_id", how="left")
    missing = joined["truth"].null_count()
    if missing:
        raise DataError(
            f"{table_path(data_dir, 'truth')}: no ground truth for {missing} of the "
            f"{frame.height} evaluated shipments"
        )
    return joined


def _positives(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> dict[LabelSource, int]:
    return {src: int(frame[src].sum()) for src in label_sources}


# --------------------------------------------------------------------------- JSON helpers


def _budgets_json(table: BudgetTable) -> dict[str, Any]:
    return {
        key: {
            sel: {src: m.to_json() for src, m in by_src.items()} for sel, by_src in by_sel.items()
        }
        for key, by_sel in table.items()
    }


def _by_source_json(by_source: Mapping[LabelSource, BudgetMetrics]) -> dict[str, Any]:
    return {src: m.to_json() for src, m in by_source.items()}


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _num(value: float | None) -> float | None:
    """A JSON-safe number: None for missing, NaN or infinite values."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), _ROUND)


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
