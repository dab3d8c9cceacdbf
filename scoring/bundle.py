"""Model bundles: a LightGBM model that describes itself, and proves it is intact.

A bundle is a directory holding ``model.txt`` (LightGBM's text format), ``reference.json`` and
``bundle.json``: the frozen feature schema it was trained on, lane thresholds per port, the
watchlist version, training parameters, metrics, a fingerprint of the training data and the code
version. ``reference.json`` holds a few feature rows of the validation window with the calibrated
scores the model gave them when it was written.

``bundle.json`` ends in an integrity manifest: the SHA-256 of every other file of the bundle and
of its own contents. :func:`load_bundle` trusts nothing it has not checked, in this order:

1. the manifest: ``bundle.json``'s own digest, then each file's (a mismatch names the file);
2. the stored schema against :mod:`features.schema`, and every leaf value of ``model.txt``
   finite;
3. the model loaded and run on the reference rows in a child process first
   (:mod:`scoring.bundle_check`), because LightGBM can abort or crash on a damaged file instead of
   raising: a crash there costs the child, never the server;
4. the model loaded in-process from the same verified bytes, its feature names against the
   schema, and its scores of the reference rows finite and equal to the recorded ones.

Any failure is a :class:`~features.errors.ModelError` naming the file and the problem; the server
maps it to ``FAILED_PRECONDITION`` and keeps serving what it had. Bundles of format 1 (written
before the manifest existed) cannot be checked and are refused with a message saying how to train
a new one.

The hashes find damage (a truncated copy, a flipped bit, a hand edit); they are not a signature
and do not stop someone who can write the registry and recompute them. The reference scores and
the child process still stand between such a bundle and the server.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from features.build import FeatureReference
from features.errors import ModelError
from features.schema import FEATURE_NAMES, schema_document, schema_fingerprint, schema_mismatch
from scoring.calibration import Calibration
from scoring.lgbm import lgb

BUNDLE_FORMAT = 2  # 2: integrity manifest and reference scores
MODEL_FILE = "model.txt"
META_FILE = "bundle.json"
REFERENCE_FILE = "reference.json"
INTEGRITY_KEY = "integrity"
HASHED_FILES = (MODEL_FILE, REFERENCE_FILE)
# Reference rows stored per bundle, and how closely a load must reproduce their scores: the same
# bytes on the same LightGBM give the same doubles, so this only absorbs a change of library.
REFERENCE_ROWS = 32
SCORE_RTOL, SCORE_ATOL = 1e-9, 1e-12
# How long the child process may take to load the model and score the reference rows.
CHILD_TIMEOUT_S = 60.0


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
    # The map from the booster's raw probability to a calibrated one, fitted on the validation
    # window (scoring.calibration: an isotonic table, or Platt scaling). The default, and what a
    # bundle without one reads as: Platt with a=1, b=0 and no floor.
    calibration: Calibration = field(default_factory=Calibration)
    # Drift reference (scoring.drift.DriftReference as JSON): bins and shares of the score and
    # the most important features in the training window, per port. Empty in bundles trained
    # before it existed, which load as before and get no drift figures.
    drift: dict[str, Any] = field(default_factory=dict)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return self.calibration.apply(raw)

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
            "calibration": self.calibration.to_json(),
            **({"drift": self.drift} if self.drift else {}),
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
            calibration=Calibration.from_json(doc.get("calibration", {})),
            drift=drift if isinstance(drift := doc.get("drift"), dict) else {},
        )


@dataclass(frozen=True)
class ModelBundle:
    meta: BundleMeta
    booster: lgb.Booster
    path: Path

    @property
    def version(self) -> str:
        return self.meta.version

    def predict(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """Calibrated risk scores for a feature matrix (:func:`features.build.feature_matrix`),
        on ``threads`` threads (0: LightGBM's default, every core)."""
        raw = np.asarray(self.booster.predict(matrix, num_threads=threads), dtype=np.float64)
        return self.meta.calibrate(raw)

    def contributions(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """Each feature's SHAP contribution to the raw score of each row, in schema order
        (LightGBM's bias column dropped)."""
        if not len(matrix):
            return np.zeros((0, matrix.shape[1]), dtype=np.float64)
        contrib = self.booster.predict(matrix, pred_contrib=True, num_threads=threads)
        return np.asarray(contrib, dtype=np.float64)[:, :-1]


@dataclass(frozen=True)
class ReferenceSet:
    """Feature rows and the calibrated scores the model gave them when the bundle was written."""

    rows: np.ndarray  # (n, len(FEATURE_NAMES)) float64, NaN for a missing value
    scores: np.ndarray  # (n,) float64

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURE_NAMES),
            "rows": [[None if math.isnan(v) else v for v in row] for row in self.rows.tolist()],
            "scores": self.scores.tolist(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> ReferenceSet:
        """Parse ``reference.json``; raises ValueError (or TypeError) on any problem."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("features") != list(FEATURE_NAMES):
            raise ValueError("its feature names are not the schema's")
        rows = [[math.nan if v is None else float(v) for v in row] for row in doc["rows"]]
        scores = [float(v) for v in doc["scores"]]
        if not rows or len(rows) != len(scores):
            raise ValueError(f"{len(rows)} rows and {len(scores)} scores")
        if any(len(row) != len(FEATURE_NAMES) for row in rows):
            raise ValueError(f"a row does not have {len(FEATURE_NAMES)} values")
        return cls(np.array(rows, dtype=np.float64), np.array(scores, dtype=np.float64))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def meta_digest(doc: dict[str, Any]) -> str:
    """SHA-256 of ``bundle.json``'s contents without its manifest, in a canonical JSON form
    (sorted keys, no white space) that survives any reformatting of the file."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256_hex(canonical.encode("ascii"))


def seal(doc: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """``doc`` with its integrity manifest: the SHA-256 of each of ``files`` and of ``doc``."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY_KEY}
    return {
        **body,
        INTEGRITY_KEY: {
            "algorithm": "sha256",
            "files": {name: sha256_hex(data) for name, data in sorted(files.items())},
            "meta": meta_digest(body),
        },
    }


_MODEL_NUMBERS = re.compile(rb"^(leaf_value|threshold|leaf_const|leaf_coeff)=(.*)$", re.MULTILINE)


def model_text_problem(text: bytes) -> str | None:
    """What makes ``model.txt`` unfit to score with, read without LightGBM: a leaf value that
    is not a finite number (a NaN leaf scores NaN), or a split threshold that is NaN."""
    bad: dict[str, int] = {}
    for match in _MODEL_NUMBERS.finditer(text):
        key = match.group(1).decode("ascii")
        for token in match.group(2).split():
            try:
                value = float(token)
            except ValueError:
                bad[key] = bad.get(key, 0) + 1
                continue
            if math.isnan(value) or (key != "threshold" and math.isinf(value)):
                bad[key] = bad.get(key, 0) + 1
    if not bad:
        return None
    counts = ", ".join(f"{n} {key}" for key, n in sorted(bad.items()))
    return f"values that are not finite numbers ({counts}); the model would score NaN"


def _score_rows(booster: lgb.Booster, rows: np.ndarray, meta: BundleMeta) -> np.ndarray:
    raw = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
    return meta.calibrate(raw)


def save_bundle(
    directory: Path, booster: lgb.Booster, meta: BundleMeta, reference_rows: np.ndarray
) -> Path:
    """Write a bundle directory atomically: it appears complete or not at all.

    ``reference_rows`` (a feature matrix, :data:`REFERENCE_ROWS` rows or so) are scored by the
    model as written to disk, and those scores stored beside them; every file is hashed into
    the manifest. A model that scores them NaN or infinity is not written.
    """
    directory = Path(directory)
    if directory.exists():
        raise ModelError(f"bundle directory {directory} already exists")
    rows = np.asarray(reference_rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != len(FEATURE_NAMES):
        raise ModelError(f"reference rows must be a non-empty (n, {len(FEATURE_NAMES)}) matrix")
    model_text = booster.model_to_string().encode("utf-8")
    problem = model_text_problem(model_text)
    if problem:
        raise ModelError(f"the trained model has {problem}; not writing bundle {meta.version}")
    # Score with the model as it will be read back, so a load reproduces the scores exactly.
    written = lgb.Booster(model_str=model_text.decode("utf-8"))
    scores = _score_rows(written, rows, meta)
    if not np.isfinite(scores).all():
        raise ModelError(
            f"the trained model scores reference rows NaN or infinity; not writing {meta.version}"
        )
    reference_text = json.dumps(ReferenceSet(rows, scores).to_json()).encode("utf-8")
    doc = seal(meta.to_json(), {MODEL_FILE: model_text, REFERENCE_FILE: reference_text})
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    (staging / MODEL_FILE).write_bytes(model_text)
    (staging / REFERENCE_FILE).write_bytes(reference_text)
    (staging / META_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(staging, directory)
    return directory


# Manifests (bundle.json digest and file digests) whose model already passed the child check in
# this process: the same bytes cannot crash LightGBM the second time either.
_VERIFIED: set[str] = set()


def _read_meta(meta_path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(meta_path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{meta_path}: bundle metadata missing") from exc
    except OSError as exc:
        raise ModelError(f"{meta_path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:  # invalid UTF-8 or JSON
        raise ModelError(f"{meta_path}: unreadable bundle metadata ({exc})") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"{meta_path}: unreadable bundle metadata (not a JSON object)")
    return doc


def _manifest(doc: dict[str, Any], meta_path: Path) -> dict[str, str]:
    """The checked file digests of ``doc``'s manifest (after checking ``doc``'s own digest)."""
    directory = meta_path.parent
    if doc.get("format") == 1 or INTEGRITY_KEY not in doc:
        raise ModelError(
            f"{meta_path}: bundle {doc.get('version', directory.name)} has no integrity manifest "
            "(format 1, written by an older Centinela), so its files cannot be checked and it "
            "is not loaded; train a new bundle: centinela train --data DIR --registry "
            f"{directory.parent} --promote"
        )
    integrity = doc[INTEGRITY_KEY]
    files = integrity.get("files") if isinstance(integrity, dict) else None
    digest = integrity.get("meta") if isinstance(integrity, dict) else None
    if (
        not isinstance(files, dict)
        or not isinstance(digest, str)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
        or any(name not in files for name in HASHED_FILES)
        or any(Path(name).name != name or name in ("", ".", "..") for name in files)
    ):
        raise ModelError(
            f"{meta_path}: the integrity manifest is malformed (it must give the SHA-256 of "
            f"{', '.join(HASHED_FILES)} and of bundle.json)"
        )
    if meta_digest(doc) != digest:
        raise ModelError(
            f"{meta_path}: contents do not match the SHA-256 recorded in its manifest "
            "(the file is damaged or was edited after training)"
        )
    return dict(files)


def _read_checked(directory: Path, name: str, expected: str) -> bytes:
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: file missing from the bundle") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    actual = sha256_hex(data)
    if actual != expected:
        raise ModelError(
            f"{path}: SHA-256 {actual[:12]}… does not match {expected[:12]}… recorded in "
            f"{META_FILE} (the file is damaged or was replaced)"
        )
    return data


def _child_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "scoring.bundle_check", str(out)]


def _diagnostic(stdout: bytes, stderr: bytes) -> str:
    """The most telling line a failed child printed: LightGBM's own, else the last one."""
    lines = [
        " ".join(line.split())
        for line in (stdout + b"\n" + stderr).decode("utf-8", "replace").splitlines()
        if line.strip()
    ]
    lightgbm = [line for line in lines if line.startswith("[LightGBM]")]
    last = stderr.decode("utf-8", "replace").strip().splitlines()
    chosen = lightgbm[-1] if lightgbm else (last[-1] if last else (lines[-1] if lines else ""))
    return chosen[:200]


def _run_child(model_path: Path, model_text: str, rows: np.ndarray) -> list[float]:
    """Load ``model_text`` and score ``rows`` in a child process; its raw predictions."""
    request = json.dumps(
        {
            "model": model_text,
            "rows": [[None if math.isnan(v) else v for v in row] for row in rows.tolist()],
        }
    ).encode("utf-8")
    project = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    with tempfile.TemporaryDirectory(prefix="centinela-bundle-check-") as tmp:
        out = Path(tmp) / "result.json"
        try:
            done = subprocess.run(
                _child_command(out),
                input=request,
                capture_output=True,
                timeout=CHILD_TIMEOUT_S,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ModelError(
                f"{model_path}: loading the model in a child process did not finish within "
                f"{CHILD_TIMEOUT_S:g} s; not loaded"
            ) from None
        except OSError as exc:
            raise ModelError(
                f"{model_path}: could not start the process that checks the model ({exc})"
            ) from None
        detail = _diagnostic(done.stdout, done.stderr)
        if done.returncode < 0:
            try:
                name = signal.Signals(-done.returncode).name
            except ValueError:
                name = f"signal {-done.returncode}"
            raise ModelError(
                f"{model_path}: LightGBM crashed ({name}) loading the model in a child process"
                f"{f' ({detail})' if detail else ''}; the file is damaged; not loaded"
            )
        if done.returncode != 0:
            raise ModelError(
                f"{model_path}: LightGBM cannot read the model"
                f"{f' ({detail})' if detail else f' (exit status {done.returncode})'}"
            )
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
            names = [str(n) for n in result["features"]]
            raw = [float(v) for v in result["raw"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"{model_path}: the model check gave no readable result ({exc})"
            ) from None
    _check_names(model_path, names)
    return raw


def _check_names(model_path: Path, names: list[str]) -> None:
    """The booster's feature names must be the schema's, in order; the error says where not."""
    if tuple(names) == FEATURE_NAMES:
        return
    if len(names) != len(FEATURE_NAMES):
        detail = f"it has {len(names)} features, the schema {len(FEATURE_NAMES)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES, strict=True)) if a != b)
        detail = f"feature {i} is {names[i]!r}, the schema's is {FEATURE_NAMES[i]!r}"
    raise ModelError(
        f"{model_path}: the model's feature names do not match the schema ({detail}); not loaded"
    )


def _check_scores(
    model_path: Path, scores: np.ndarray, reference: ReferenceSet, where: str
) -> None:
    n = len(reference.scores)
    finite = np.isfinite(scores)
    if not finite.all():
        raise ModelError(
            f"{model_path}: the model scores {int((~finite).sum())} of {n} reference inputs "
            f"NaN or infinity ({where}); not loaded"
        )
    if not np.allclose(scores, reference.scores, rtol=SCORE_RTOL, atol=SCORE_ATOL):
        worst = float(np.max(np.abs(scores - reference.scores)))
        raise ModelError(
            f"{model_path}: the model's scores of the {n} reference inputs differ from those "
            f"recorded when it was trained (by up to {worst:.3g}, {where}); the model or its "
            "calibration is not the one trained; not loaded"
        )


def load_bundle(directory: Path) -> ModelBundle:
    """Load and check a bundle; any problem is a :class:`ModelError` naming the file.

    See the module documentation for the checks, in order. Nothing of the bundle reaches
    LightGBM in this process before a child process has loaded the same bytes and scored the
    reference rows with them.
    """
    directory = Path(directory)
    meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
    reference_path = directory / REFERENCE_FILE
    doc = _read_meta(meta_path)
    files = _manifest(doc, meta_path)
    try:
        meta = BundleMeta.from_json(doc)
    except ModelError as exc:
        raise ModelError(f"{meta_path}: {exc}") from exc
    except Exception as exc:  # any shape problem of a hand-made document
        raise ModelError(f"{meta_path}: unreadable bundle metadata ({exc!r})") from exc
    try:
        problems = schema_mismatch(meta.schema)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: unreadable feature schema ({exc})") from exc
    if problems:
        raise ModelError(
            f"{meta_path}: bundle {meta.version} was trained on another feature schema: "
            + "; ".join(problems)
        )
    contents = {name: _read_checked(directory, name, files[name]) for name in sorted(files)}
    model_bytes, reference_bytes = contents[MODEL_FILE], contents[REFERENCE_FILE]
    try:
        reference = ReferenceSet.from_json(json.loads(reference_bytes.decode("utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{reference_path}: unreadable reference inputs ({exc})") from exc
    problem = model_text_problem(model_bytes)
    if problem:
        raise ModelError(f"{model_path}: {problem}; not loaded")
    try:
        model_text = model_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(
            f"{model_path}: invalid UTF-8 at byte offset {exc.start}; a LightGBM model is "
            "text, so the file is damaged; not loaded"
        ) from exc
    key = json.dumps(doc[INTEGRITY_KEY], sort_keys=True)
    if key not in _VERIFIED:
        raw = np.asarray(_run_child(model_path, model_text, reference.rows), dtype=np.float64)
        if raw.shape != reference.scores.shape:
            raise ModelError(
                f"{model_path}: the model check scored {raw.size} of "
                f"{reference.scores.size} reference rows; not loaded"
            )
        _check_scores(model_path, meta.calibrate(raw), reference, "in the child process")
        _VERIFIED.add(key)
    try:
        booster = lgb.Booster(model_str=model_text)
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{model_path}: LightGBM cannot read the model ({exc})") from exc
    _check_names(model_path, list(booster.feature_name()))
    _check_scores(model_path, _score_rows(booster, reference.rows, meta), reference, "in process")
    return ModelBundle(meta=meta, booster=booster, path=directory)


def new_meta(**kwargs: Any) -> BundleMeta:
    """A :class:`BundleMeta` carrying the code's current feature schema."""
    return BundleMeta(schema=schema_document(), **kwargs)
