"""Which shipments an evaluation takes, and where it splits them before and after the shift.

Only shipments declared after the end of the model's validation window are evaluated
(:func:`validation_end`): early stopping saw the validation window, so anything earlier
flatters the model. The evaluated window is split at the world's tactic shift
(:func:`shift_date`) and each part measured on its own budgets (:func:`segment`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Final

import polars as pl

from features.errors import DataError
from scoring.bundle import ModelBundle
from training.evaluation_metrics import budget_metrics, positive_counts
from training.evaluation_record import LabelSource, Segment
from training.simulate.reference import SCHEDULING_4_PIPERIDONE

SHIFT_KEY: Final[str] = "tactic_shifts"
"""The manifest key listing the world's tactic shifts as ``{"name", "date"}`` objects, as
:func:`training.simulate.world.tactic_shifts` writes them."""


def validation_end(bundle: ModelBundle) -> datetime:
    """The end of the validation window: evaluation takes what was declared after it."""
    valid = bundle.meta.windows.get("valid")
    if not valid:
        raise DataError(
            f"model {bundle.version} records no validation window, so the shipments it never "
            "saw cannot be told apart; retrain it with this version of centinela"
        )
    return as_utc(datetime.fromisoformat(valid[1]))


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
            when = as_utc(datetime.fromisoformat(str(shift.get("date"))))
        except ValueError:
            continue
        found.append((str(shift.get("name", SHIFT_KEY)), when))
    return sorted(found, key=lambda item: item[1])


def segment(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> Segment:
    """``frame``'s shipments as a :class:`Segment`, every budget a share of them."""
    start = frame["declared_at"].min() if frame.height else None
    end = frame["declared_at"].max() if frame.height else None
    return Segment(
        start=start if isinstance(start, datetime) else None,
        end=end if isinstance(end, datetime) else None,
        shipments=frame.height,
        positives=positive_counts(frame, label_sources),
        budgets=budget_metrics(frame, label_sources),
    )


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
