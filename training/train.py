"""``centinela train``: a time-split LightGBM model over the canonical tables, into the registry.

Labels are observed outcomes only (inspected shipments), as a real customs service has them;
ground truth is never read here. The time split keeps the newest window for testing so the
reported figures describe a model meeting the future, not its own past.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from features.build import build_features, feature_matrix
from features.errors import DataError
from features.schema import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.tables import scan_table, table_path
from features.watchlist import load_watchlist
from scoring.bundle import LaneThresholds, new_meta, save_bundle
from scoring.registry import Registry

DEFAULT_RED_SHARE = 0.02
DEFAULT_YELLOW_SHARE = 0.08
TRAIN_SHARE, VALID_SHARE = 0.70, 0.15


@dataclass(frozen=True, slots=True)
class TrainResult:
    version: str
    path: Path
    promoted: bool
    metrics: dict[str, float]
    rounds: int


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


def labelled_features(data_dir: Path) -> pl.DataFrame:
    """Features of every shipment plus ``label`` (null when never inspected)."""
    shipments = scan_table(data_dir, "shipments")
    goods = scan_table(data_dir, "goods")
    inspections = scan_table(data_dir, "inspections").select("shipment_id", "positive")
    features = build_features(shipments, goods)
    labels = inspections.collect()
    frame = features.join(labels, on="shipment_id", how="left", maintain_order="left")
    return frame.rename({"positive": "label"}).sort("declared_at", "shipment_id")


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve (step-wise, as scikit-learn computes it)."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-p, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def lane_thresholds(
    ports: np.ndarray, scores: np.ndarray, red_share: float, yellow_share: float
) -> dict[str, LaneThresholds]:
    """Per-port score cut-offs so that about ``red_share`` of shipments go RED, and so on."""

    def cut(s: np.ndarray) -> LaneThresholds:
        red = float(np.quantile(s, 1 - red_share))
        yellow = float(np.quantile(s, 1 - red_share - yellow_share))
        return LaneThresholds(red=red, yellow=min(yellow, red))

    lanes = {"default": cut(scores)}
    for port in np.unique(ports):
        mask = ports == port
        if mask.sum() >= 200:
            lanes[str(port)] = cut(scores[mask])
    return lanes


def train(
    data_dir: Path,
    registry_dir: Path,
    *,
    seed: int = 7,
    promote: bool | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train, evaluate on the newest window, write a bundle; promote if asked or if first."""
    frame = labelled_features(data_dir)
    n = frame.height
    if n < 100:
        raise DataError(f"{data_dir}: {n} shipments are too few to train on (need 100+)")
    cut_train, cut_valid = int(n * TRAIN_SHARE), int(n * (TRAIN_SHARE + VALID_SHARE))
    parts = {
        "train": frame.slice(0, cut_train),
        "valid": frame.slice(cut_train, cut_valid - cut_train),
        "test": frame.slice(cut_valid),
    }
    labelled = {k: v.filter(pl.col("label").is_not_null()) for k, v in parts.items()}
    if int(labelled["train"]["label"].sum()) == 0:
        raise DataError(
            f"{data_dir}: no positive inspection outcomes in the training window "
            f"(the oldest {TRAIN_SHARE:.0%} of shipments); more data or a longer period is needed"
        )

    def dataset(part: pl.DataFrame, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            feature_matrix(part),
            label=part["label"].cast(pl.Int32).to_numpy(),
            feature_name=list(FEATURE_NAMES),
            categorical_feature=list(CATEGORICAL_FEATURES),
            reference=reference,
            free_raw_data=False,
        )

    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
    max_rounds = 1000
    train_set = dataset(labelled["train"])
    valid_set = dataset(labelled["valid"], reference=train_set)
    callbacks: list[Callable[..., None]] = [lgb.early_stopping(50, verbose=False)]
    if on_round is not None:

        def report(env: lgb.callback.CallbackEnv) -> None:
            on_round(env.iteration + 1, max_rounds)

        callbacks.append(report)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        callbacks=callbacks,
    )
    test = labelled["test"]
    y_test = test["label"].cast(pl.Int32).to_numpy()
    p_test = np.asarray(booster.predict(feature_matrix(test)), dtype=np.float64)
    eps = 1e-12
    metrics = {
        "test_pr_auc": average_precision(y_test, p_test),
        "test_log_loss": float(
            -np.mean(y_test * np.log(p_test + eps) + (1 - y_test) * np.log(1 - p_test + eps))
        ),
        "test_positives": float(y_test.sum()),
        "test_labelled": float(len(y_test)),
        "best_iteration": float(booster.best_iteration),
    }
    reference = parts["valid"]
    ref_scores = np.asarray(booster.predict(feature_matrix(reference)), dtype=np.float64)
    lanes = lane_thresholds(
        reference["port_of_entry"].to_numpy(), ref_scores, DEFAULT_RED_SHARE, DEFAULT_YELLOW_SHARE
    )
    registry = Registry(registry_dir)
    version = registry.next_version()
    meta = new_meta(
        version=version,
        trained_at=datetime.now(UTC),
        code_version=code_version(),
        watchlist_version=load_watchlist(None).version,
        lanes=lanes,
        params={**params, "max_rounds": max_rounds, "train_rows": labelled["train"].height},
        metrics=metrics,
        data_fingerprint=data_fingerprint(data_dir),
    )
    path = save_bundle(registry.root / version, booster, meta)
    should_promote = promote if promote is not None else registry.promoted() is None
    if should_promote:
        registry.promote(version)
    return TrainResult(version, path, should_promote, metrics, booster.best_iteration)
