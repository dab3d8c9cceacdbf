"""Model bundles: a LightGBM model that describes itself.

A bundle is a directory holding ``model.txt`` (LightGBM's text format) and ``bundle.json``:
the frozen feature schema it was trained on, lane thresholds per port, the watchlist version,
training parameters, metrics, a fingerprint of the training data and the code version. Loading
checks the stored schema against :mod:`features.schema` and against the booster's own feature
names, so a model can never be fed features it was not trained on.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.build import FeatureReference
from features.errors import ModelError
from features.schema import FEATURE_NAMES, schema_document, schema_fingerprint, schema_mismatch

BUNDLE_FORMAT = 1
MODEL_FILE = "model.txt"
META_FILE = "bundle.json"


def platt(raw: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """Platt scaling: sigmoid(a * logit(raw) + b)."""
    a, b = calibration
    p = np.clip(raw, 1e-9, 1 - 1e-9)
    calibrated: np.ndarray = 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))
    return calibrated


@dataclass(frozen=True)
class BundleMeta:
    version: str
    trained_at: datetime
    code_version: str
    watchlist_version: str
    schema: list[dict[str, Any]]
    # Reference distribution of calibrated scores per port ("default" for any other port):
    # 1001 quantiles from the validation window, which lane budgets turn into thresholds.
    score_quantiles: dict[str, list[float]]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data_fingerprint: str = ""
    # Time windows of the split, name -> [first, last] declared_at (ISO 8601): evaluation uses
    # them to score only shipments the model never saw.
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Figures the features are measured against (prior rate, HS heading norms).
    reference: FeatureReference = field(default_factory=FeatureReference)
    # Platt scaling of the booster's raw probability, fitted on the validation window:
    # calibrated = sigmoid(a * logit(raw) + b). Identity when a=1, b=0.
    calibration: tuple[float, float] = (1.0, 0.0)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return platt(raw, self.calibration)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "version": self.version,
            "trained_at": self.trained_at.isoformat(),
            "code_version": self.code_version,
            "watchlist_version": self.watchlist_version,
            "schema": self.schema,
            "schema_fingerprint": schema_fingerprint(self.schema),
            "score_quantiles": self.score_quantiles,
            "params": self.params,
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
            "windows": {k: list(v) for k, v in self.windows.items()},
            "reference": self.reference.to_json(),
            "calibration": {"a": self.calibration[0], "b": self.calibration[1]},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BundleMeta:
        if doc.get("format") != BUNDLE_FORMAT:
            raise ModelError(f"bundle format {doc.get('format')!r} is not {BUNDLE_FORMAT}")
        quantiles = {str(p): [float(x) for x in q] for p, q in doc["score_quantiles"].items()}
        if "default" not in quantiles:
            raise ModelError("bundle has no default reference score distribution")
        return cls(
            version=str(doc["version"]),
            trained_at=datetime.fromisoformat(doc["trained_at"]),
            code_version=str(doc["code_version"]),
            watchlist_version=str(doc["watchlist_version"]),
            schema=list(doc["schema"]),
            score_quantiles=quantiles,
            params=dict(doc.get("params", {})),
            metrics={k: float(v) for k, v in doc.get("metrics", {}).items()},
            data_fingerprint=str(doc.get("data_fingerprint", "")),
            windows={k: (str(v[0]), str(v[1])) for k, v in doc.get("windows", {}).items()},
            reference=FeatureReference.from_json(doc.get("reference", {})),
            calibration=(
                float(doc.get("calibration", {}).get("a", 1.0)),
                float(doc.get("calibration", {}).get("b", 0.0)),
            ),
        )


@dataclass(frozen=True)
class ModelBundle:
    meta: BundleMeta
    booster: lgb.Booster
    path: Path

    @property
    def version(self) -> str:
        return self.meta.version

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated risk scores for a feature matrix (:func:`features.build.feature_matrix`)."""
        raw = np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)
        return self.meta.calibrate(raw)


def save_bundle(directory: Path, booster: lgb.Booster, meta: BundleMeta) -> Path:
    """Write a bundle directory atomically: it appears complete or not at all."""
    directory = Path(directory)
    if directory.exists():
        raise ModelError(f"bundle directory {directory} already exists")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    booster.save_model(str(staging / MODEL_FILE))
    (staging / META_FILE).write_text(json.dumps(meta.to_json(), indent=2), encoding="utf-8")
    os.replace(staging, directory)
    return directory


def load_bundle(directory: Path) -> ModelBundle:
    """Load and check a bundle; any problem is a :class:`ModelError` naming the file."""
    directory = Path(directory)
    meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
        meta = BundleMeta.from_json(doc)
    except FileNotFoundError as exc:
        raise ModelError(f"{meta_path}: bundle metadata missing") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta_path}: unreadable bundle metadata ({exc})") from exc
    problems = schema_mismatch(meta.schema)
    if problems:
        raise ModelError(
            f"bundle {meta.version} was trained on another feature schema: " + "; ".join(problems)
        )
    if not model_path.exists():
        raise ModelError(f"{model_path}: model file missing")
    try:
        booster = lgb.Booster(model_file=str(model_path))
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{model_path}: LightGBM cannot read the model ({exc})") from exc
    if tuple(booster.feature_name()) != FEATURE_NAMES:
        raise ModelError(
            f"{model_path}: the model's feature names {booster.feature_name()} "
            f"do not match the schema {list(FEATURE_NAMES)}"
        )
    return ModelBundle(meta=meta, booster=booster, path=directory)


def new_meta(**kwargs: Any) -> BundleMeta:
    """A :class:`BundleMeta` carrying the code's current feature schema."""
    return BundleMeta(schema=schema_document(), **kwargs)
