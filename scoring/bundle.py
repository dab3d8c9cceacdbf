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

from features.errors import ModelError
from features.schema import FEATURE_NAMES, schema_document, schema_fingerprint, schema_mismatch

BUNDLE_FORMAT = 1
MODEL_FILE = "model.txt"
META_FILE = "bundle.json"


@dataclass(frozen=True, slots=True)
class LaneThresholds:
    """Scores at or above ``red`` go RED, at or above ``yellow`` go YELLOW."""

    red: float
    yellow: float


@dataclass(frozen=True)
class BundleMeta:
    version: str
    trained_at: datetime
    code_version: str
    watchlist_version: str
    schema: list[dict[str, Any]]
    lanes: dict[str, LaneThresholds]  # per port; key "default" for any other port
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data_fingerprint: str = ""

    def thresholds(self, port: str) -> LaneThresholds:
        return self.lanes.get(port) or self.lanes["default"]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "version": self.version,
            "trained_at": self.trained_at.isoformat(),
            "code_version": self.code_version,
            "watchlist_version": self.watchlist_version,
            "schema": self.schema,
            "schema_fingerprint": schema_fingerprint(self.schema),
            "lanes": {p: {"red": t.red, "yellow": t.yellow} for p, t in self.lanes.items()},
            "params": self.params,
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BundleMeta:
        if doc.get("format") != BUNDLE_FORMAT:
            raise ModelError(f"bundle format {doc.get('format')!r} is not {BUNDLE_FORMAT}")
        lanes = {
            port: LaneThresholds(float(t["red"]), float(t["yellow"]))
            for port, t in doc["lanes"].items()
        }
        if "default" not in lanes:
            raise ModelError("bundle has no default lane thresholds")
        return cls(
            version=str(doc["version"]),
            trained_at=datetime.fromisoformat(doc["trained_at"]),
            code_version=str(doc["code_version"]),
            watchlist_version=str(doc["watchlist_version"]),
            schema=list(doc["schema"]),
            lanes=lanes,
            params=dict(doc.get("params", {})),
            metrics={k: float(v) for k, v in doc.get("metrics", {}).items()},
            data_fingerprint=str(doc.get("data_fingerprint", "")),
        )


@dataclass(frozen=True)
class ModelBundle:
    meta: BundleMeta
    booster: lgb.Booster
    path: Path

    @property
    def version(self) -> str:
        return self.meta.version


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
