"""``centinela train``: a time-split LightGBM model over the canonical tables, into the registry.

Labels are observed outcomes only (inspected shipments), as a real customs service has them;
ground truth is never read here. The time split keeps the newest window for testing so the
reported figures describe a model meeting the future, not its own past.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.build import (
    FeatureReference,
    bulk_history,
    feature_matrix,
    finalize,
    heading_norms,
    keyed_outcomes,
    shipment_basics,
)
from features.errors import DataError
from features.schema import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.tables import Folded, Tables, load_tables, table_path
from features.watchlist import Watchlist, load_watchlist
from scoring.bundle import REFERENCE_ROWS, BundleMeta, new_meta, save_bundle
from scoring.calibration import Calibration
from scoring.drift import build_reference, top_features
from scoring.lanes import score_quantiles
from scoring.lgbm import lgb
from scoring.registry import Registry
from training.calibrate import Fitted, fit_calibration, fit_platt
from training.card_figures import CARD_DATA_FILE, card_figures
from training.entity_rates import entity_metrics, tune_smoothing, with_strength
from training.evaluation_metrics import average_precision, brier_score
from training.model_card import carded_registry, write_card
from training.train_dask import DaskTarget, fit_on_cluster
from training.train_settings import (
    TRAIN_SHARE,
    VALID_SHARE,
    DateSplit,
    TrainSettings,
    cut_points,
    split_json,
)

__all__ = [
    "TRAIN_SHARE",
    "VALID_SHARE",
    "DateSplit",
    "TrainResult",
    "TrainSettings",
    "code_version",
    "data_fingerprint",
    "fit_platt",
    "labelled_features",
    "reference_quantiles",
    "reference_rows",
    "train",
]

FIRST_MODEL_REASON = "first model of an empty registry: nothing to compare against"


@dataclass(frozen=True, slots=True)
class TrainResult:
    version: str
    path: Path
    promoted: bool
    metrics: dict[str, float]
    rounds: int
    folded: Folded = field(default_factory=Folded)  # repeated shipment ids left out
    # Boosting ran to ``max_rounds`` without early stopping: more rounds (or a higher learning
    # rate) might have fitted better. Also in the bundle's metrics as ``hit_round_limit``.
    hit_round_limit: bool = False
    settings: TrainSettings = field(default_factory=TrainSettings)
    split: DateSplit | None = None
    test_shipments: int = 0  # shipments in the test window (0: every one was fitted on)
    calibration: str = ""  # the calibration fitted, for people (Calibration.describe)


def code_version() -> str:
    try:
        return importlib.metadata.version("centinela")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def data_fingerprint(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for table in ("shipments", "goods", "inspections"):
        with table_path(data_dir, table).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def labelled_features(
    tables: Tables, watchlist: Watchlist
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(stage-1 rows, keyed outcomes, labels) of every shipment, sorted by declared time.

    ``tables`` hold one shipment per shipment id (:func:`features.tables.load_tables`), so no
    shipment is labelled, or counted in its parties' history, twice. Labels are observed
    outcomes only: ``label`` is null for shipments never inspected, and
    ``selection_probability`` is the propensity of the policy that chose to inspect.
    """
    shipments = tables.shipments.sort("declared_at", "shipment_id")
    inspections = tables.inspections
    basics = shipment_basics(shipments, tables.goods, watchlist)
    outcomes = keyed_outcomes(basics, inspections)
    labels = basics.select("shipment_id").join(
        inspections.select(
            "shipment_id", pl.col("positive").alias("label"), "selection_probability"
        ),
        on="shipment_id",
        how="left",
        maintain_order="left",
    )
    return basics, outcomes, labels


def reference_quantiles(ports: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """Per-port reference score distributions (ports with 200+ shipments) and a default."""
    out = {"default": score_quantiles(scores)}
    for port in np.unique(ports):
        mask = ports == port
        if mask.sum() >= 200:
            out[str(port)] = score_quantiles(scores[mask])
    return out


def reference_rows(matrix: np.ndarray, scores: np.ndarray, n: int = REFERENCE_ROWS) -> np.ndarray:
    """``n`` rows of ``matrix`` spread evenly over the range of ``scores`` (lowest to highest),
    so the bundle's reference inputs reach many leaves of the model."""
    order = np.argsort(scores, kind="stable")
    spread = np.linspace(0, len(order) - 1, num=min(n, len(order))).round().astype(np.int64)
    return matrix[order[np.unique(spread)]]


@dataclass(frozen=True, slots=True)
class _Windows:
    """The time split: every shipment of each window (``parts``) and its labelled ones."""

    parts: dict[str, pl.DataFrame]
    labelled: dict[str, pl.DataFrame]


def train(
    data_dir: Path,
    registry_dir: Path,
    *,
    seed: int = 7,
    promote: bool | None = None,
    watchlist: Watchlist | None = None,
    propensity_weights: bool = False,
    balance: bool = False,
    on_round: Callable[[int, int], None] | None = None,
    settings: TrainSettings | None = None,
    split: DateSplit | None = None,
    dask: DaskTarget | None = None,
    promoted_by: str = "centinela train",
    promotion_reason: str | None = None,
) -> TrainResult:
    """Train, evaluate on the newest window, write a bundle and its model card; promote if asked
    or if first (logged as forced, by ``promoted_by`` for ``promotion_reason``: no gate judged it).

    A shipment id repeated in the tables is one shipment (the last row wins: ``fold_tables``).

    The split is by declared time: the oldest 70% trains, the next 15% stops boosting early and
    fits the calibration, the newest 15% measures; ``split`` fixes the windows by date instead
    (the test window may then be empty). ``settings`` are the boosting settings (default: the
    defaults of :class:`~training.train_settings.TrainSettings`). With ``propensity_weights``
    each labelled shipment is weighted by 1/selection probability, so what the old policy
    rarely inspected counts for what it stands for. ``dask``: boost on that Dask cluster.
    """
    settings = settings or TrainSettings()
    watchlist = watchlist or load_watchlist(None)
    tables = load_tables(data_dir)
    basics, outcomes, labels = labelled_features(tables, watchlist)
    reference, windows = split_windows(data_dir, basics, outcomes, labels, split)
    labelled = windows.labelled
    params = boosting_params(labelled["train"], seed=seed, balance=balance, settings=settings)
    booster, cluster = fit_booster(labelled, params, propensity_weights, on_round, settings, dask)
    fitted = _calibrate(booster, labelled["valid"])
    metrics = {
        **_test_metrics(booster, fitted.calibration, labelled["test"]),
        **fitted.metrics,
        "hit_round_limit": float(_hit_round_limit(booster, settings)),
        **entity_metrics(booster, reference.smoothing_strength),
    }
    registry = carded_registry(registry_dir)
    version = registry.next_version()
    meta, rows = _bundle_meta(
        version,
        booster,
        windows,
        reference=reference,
        calibration=fitted.calibration,
        watchlist=watchlist,
        params={
            **params,
            "max_rounds": settings.max_rounds,
            "early_stopping_rounds": settings.early_stopping_rounds,
            "split": split_json(split),
            "train_rows": labelled["train"].height,
            "propensity_weights": propensity_weights,
            "balance": balance,
            **cluster,
        },
        metrics=metrics,
        data_fingerprint=data_fingerprint(data_dir),
    )
    path = _save(registry, (booster, meta, rows), fitted.calibration, windows.parts["test"])
    should_promote = _promote_new(registry, version, promote, promoted_by, promotion_reason)
    return TrainResult(
        version,
        path,
        should_promote,
        metrics,
        booster.best_iteration,
        folded=tables.folded,
        hit_round_limit=bool(metrics["hit_round_limit"]),
        settings=settings,
        split=split,
        test_shipments=windows.parts["test"].height,
        calibration=fitted.calibration.describe(),
    )


def _save(
    registry: Registry,
    bundle: tuple[lgb.Booster, BundleMeta, np.ndarray],
    calibration: Calibration,
    test: pl.DataFrame,
) -> Path:
    """Save the bundle (booster, metadata, reference rows) and, beside it, the per-port figures
    of its test window for its model card (``card.json``, :mod:`training.card_figures`)."""
    booster, meta, rows = bundle
    path = save_bundle(registry.root / meta.version, booster, meta, rows)
    scores = calibration.apply(_raw_scores(booster, test)) if test.height else np.empty(0)
    figures = json.dumps(card_figures(test, scores), indent=2)
    registry.write_file(meta.version, CARD_DATA_FILE, figures)
    return path


def _promote_new(
    registry: Registry, version: str, promote: bool | None, by: str, reason: str | None
) -> bool:
    """Promote the new bundle if asked (``promote``) or if nothing is promoted (None), and
    write its model card; whether it was promoted. No gate judged it, so the promotion is
    logged as forced, by ``by``, for ``reason`` or one saying why training promoted it."""
    first = registry.promoted() is None
    if not (promote if promote is not None else first):
        write_card(registry, version)
        return False
    if reason is None and not first:
        reason = "promoted on training (--promote), without a gate verdict"
    elif reason is None:
        reason = (
            FIRST_MODEL_REASON
            if registry.versions() == [version]
            else "no model was promoted in the registry: nothing to compare against"
        )
    registry.promote(version, by=by, reason=reason, forced=True)  # writes the card
    return True


# --------------------------------------------------------------------------- steps


def split_windows(
    data_dir: Path,
    basics: pl.DataFrame,
    outcomes: pl.DataFrame,
    labels: pl.DataFrame,
    split: DateSplit | None,
) -> tuple[FeatureReference, _Windows]:
    """The feature reference of the training window and the features of every window.

    History features are computed over all shipments at once, each seeing only its own past;
    the reference (prior positive rate, heading norms) comes from the training window alone.
    """
    n = basics.height
    if n < 100:
        raise DataError(f"{data_dir}: {n} shipments are too few to train on (need 100+)")
    cut_train, cut_valid = cut_points(basics["declared_at"], split, str(data_dir))
    train_rows = basics.slice(0, cut_train)
    train_end = train_rows["declared_at"].max()
    train_outcomes = outcomes.filter(pl.col("reported_at") < train_end)
    prior = train_outcomes["positive"].cast(pl.Float64).mean() if train_outcomes.height else 0.01
    prior = float(prior) if isinstance(prior, float) else 0.01
    reference = FeatureReference(
        prior_rate=prior if prior > 0 else 0.01, heading_log_value_per_kg=heading_norms(train_rows)
    )
    history = bulk_history(basics, outcomes, reference)
    # The entity rates' smoothing, tuned on the validation window's labelled shipments.
    valid_labels = labels.slice(cut_train, cut_valid - cut_train)["label"]
    strength = tune_smoothing(
        history.slice(cut_train, cut_valid - cut_train).filter(valid_labels.is_not_null()),
        valid_labels.drop_nulls().cast(pl.Int8).to_numpy(),
        reference.prior_rate,
    )
    reference = replace(reference, smoothing_strength=strength)
    frame = pl.concat(
        [
            finalize(basics, with_strength(history, reference.prior_rate, strength), reference),
            labels.drop("shipment_id"),
        ],
        how="horizontal",
    )
    parts = {
        "train": frame.slice(0, cut_train),
        "valid": frame.slice(cut_train, cut_valid - cut_train),
        "test": frame.slice(cut_valid),
    }
    labelled = {k: v.filter(pl.col("label").is_not_null()) for k, v in parts.items()}
    _check_windows(data_dir, labelled, split)
    return reference, _Windows(parts, labelled)


def _check_windows(
    data_dir: Path, labelled: dict[str, pl.DataFrame], split: DateSplit | None
) -> None:
    """Refuse windows boosting cannot use: no positive outcome to learn from, or no inspected
    shipment to stop early on."""
    train_window = (
        f"the oldest {TRAIN_SHARE:.0%} of shipments"
        if split is None
        else f"declared on or before --train-until {split.train_until}"
    )
    if int(labelled["train"]["label"].sum()) == 0:
        raise DataError(
            f"{data_dir}: no positive inspection outcomes in the training window "
            f"({train_window}); more data or a longer period is needed"
        )
    if labelled["valid"].height == 0:
        valid_window = (
            f"the next {VALID_SHARE:.0%} of shipments"
            if split is None
            else f"declared after --train-until {split.train_until} and on or before "
            f"--valid-until {split.valid_until}"
        )
        raise DataError(
            f"{data_dir}: no inspected shipments in the validation window ({valid_window}), "
            "so boosting cannot stop early nor be calibrated"
        )


def boosting_params(
    train: pl.DataFrame, *, seed: int, balance: bool, settings: TrainSettings
) -> dict[str, Any]:
    """LightGBM's parameters for the labelled training window, with ``settings``' values."""
    y_train = train["label"].cast(pl.Int32)
    positives, negatives = int(y_train.sum()), int(y_train.len() - y_train.sum())
    return {
        "objective": "binary",
        # With ``balance`` positives (a few per thousand inspections) weigh the square root of
        # the imbalance; the calibration fitted on the validation window restores honest
        # probabilities either way. Off by default: on the simulated world it cost PR-AUC.
        "scale_pos_weight": (
            float(np.sqrt(max(negatives, 1) / max(positives, 1))) if balance else 1.0
        ),
        **settings.lightgbm_params(),
        "bagging_freq": 1,
        "cat_smooth": 10.0,
        "min_data_per_group": 20,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }


def fit_booster(
    labelled: dict[str, pl.DataFrame],
    params: dict[str, Any],
    propensity_weights: bool,
    on_round: Callable[[int, int], None] | None,
    settings: TrainSettings,
    dask: DaskTarget | None = None,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Boost on the training window, stopping early on the validation window, for at most
    ``settings.max_rounds`` rounds; with ``dask`` on that cluster (:func:`fit_on_cluster`, which
    stops early afterwards). Also what the bundle's parameters record of the cluster."""
    train_set = _dataset(labelled["train"], propensity_weights)
    valid_set = _dataset(labelled["valid"], propensity_weights, reference_set=train_set)
    if dask is not None:
        fit = fit_on_cluster(dask, train_set, valid_set, params, settings)
        return fit.booster, {"dask": {"workers": fit.workers}}
    callbacks: list[Callable[..., None]] = [
        lgb.early_stopping(settings.early_stopping_rounds, verbose=False)
    ]
    if on_round is not None:

        def report(env: lgb.callback.CallbackEnv) -> None:
            on_round(env.iteration + 1, settings.max_rounds)

        callbacks.append(report)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_rounds,
        valid_sets=[valid_set],
        callbacks=callbacks,
    )
    return booster, {}


def _hit_round_limit(booster: lgb.Booster, settings: TrainSettings) -> bool:
    """Early stopping ends boosting ``early_stopping_rounds`` after the best round; if that lies
    past the limit, the limit ended it while the validation loss was still improving."""
    return booster.best_iteration + settings.early_stopping_rounds > settings.max_rounds


def _dataset(
    part: pl.DataFrame, propensity_weights: bool, reference_set: lgb.Dataset | None = None
) -> lgb.Dataset:
    """A LightGBM dataset of labelled shipments, weighted by 1/propensity if asked."""
    weight = (
        (1.0 / part["selection_probability"].clip(lower_bound=1e-3)).to_numpy()
        if propensity_weights
        else None
    )
    return lgb.Dataset(
        feature_matrix(part),
        label=part["label"].cast(pl.Int32).to_numpy(),
        weight=weight,
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL_FEATURES),
        reference=reference_set,
        free_raw_data=False,
        params={"verbose": -1},
    )


def _raw_scores(booster: lgb.Booster, part: pl.DataFrame) -> np.ndarray:
    """The booster's uncalibrated scores of ``part``'s shipments."""
    return np.asarray(booster.predict(feature_matrix(part)), dtype=np.float64)


def _calibrate(booster: lgb.Booster, valid: pl.DataFrame) -> Fitted:
    """The calibration of the booster's raw scores, fitted on the validation window's labelled
    shipments (:func:`training.calibrate.fit_calibration`), and the figures of its choice."""
    return fit_calibration(_raw_scores(booster, valid), valid["label"].cast(pl.Int32).to_numpy())


def _test_metrics(
    booster: lgb.Booster, calibration: Calibration, test: pl.DataFrame
) -> dict[str, float]:
    """The calibrated model on the labelled test window: PR-AUC, Brier score and its skill over
    the window's base rate, log loss (not a number when windows fixed by date leave no test
    window, or, for the skill, when it holds one class only)."""
    y_test = test["label"].cast(pl.Int32).to_numpy()
    if len(y_test) == 0:
        nan = float("nan")
        return {
            "test_pr_auc": nan,
            "test_brier": nan,
            "test_brier_skill": nan,
            "test_log_loss": nan,
            "test_positives": 0.0,
            "test_labelled": 0.0,
            "best_iteration": float(booster.best_iteration),
        }
    p_test = calibration.apply(_raw_scores(booster, test))
    eps = 1e-12
    test_ap = average_precision(y_test[np.argsort(-p_test, kind="stable")])
    test_brier = brier_score(p_test, y_test)
    base = float(y_test.mean())
    return {
        "test_pr_auc": float("nan") if test_ap is None else test_ap,
        "test_brier": float("nan") if test_brier is None else test_brier,
        "test_brier_skill": (
            1 - test_brier / (base * (1 - base))
            if test_brier is not None and 0 < base < 1
            else float("nan")
        ),
        "test_log_loss": float(
            -np.mean(y_test * np.log(p_test + eps) + (1 - y_test) * np.log(1 - p_test + eps))
        ),
        "test_positives": float(y_test.sum()),
        "test_labelled": float(len(y_test)),
        "best_iteration": float(booster.best_iteration),
    }


def _bundle_meta(
    version: str,
    booster: lgb.Booster,
    windows: _Windows,
    *,
    reference: FeatureReference,
    calibration: Calibration,
    watchlist: Watchlist,
    params: dict[str, Any],
    metrics: dict[str, float],
    data_fingerprint: str,
) -> tuple[BundleMeta, np.ndarray]:
    """The bundle's metadata and reference rows, from the whole validation window.

    Lane thresholds start from each port's score distribution there
    (:func:`reference_quantiles`), and live drift is measured against the same window, the
    newest the model was fitted on.
    """
    valid_all = windows.parts["valid"]
    valid_matrix = feature_matrix(valid_all)
    ref_scores = calibration.apply(np.asarray(booster.predict(valid_matrix), dtype=np.float64))
    valid_ports = valid_all["port_of_entry"].to_numpy()
    drift = build_reference(
        valid_matrix,
        ref_scores,
        valid_ports,
        top_features(booster.feature_importance(importance_type="gain").tolist()),
    )
    meta = new_meta(
        version=version,
        trained_at=datetime.now(UTC),
        code_version=code_version(),
        watchlist_version=watchlist.version,
        score_quantiles=reference_quantiles(valid_ports, ref_scores),
        params=params,
        metrics=metrics,
        data_fingerprint=data_fingerprint,
        windows={
            name: (
                str(part["declared_at"].min().isoformat()),  # type: ignore[union-attr]
                str(part["declared_at"].max().isoformat()),  # type: ignore[union-attr]
            )
            for name, part in windows.parts.items()
            if part.height
        },
        reference=reference,
        calibration=calibration,
        drift=drift.to_json(),
    )
    return meta, reference_rows(valid_matrix, ref_scores)
