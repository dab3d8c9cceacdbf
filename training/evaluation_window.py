"""Which shipments an evaluation takes, and where it splits them before and after a shift.

Only shipments declared after the end of the model's validation window are evaluated
(:func:`validation_end`): early stopping saw the validation window, so anything earlier
flatters the model. The evaluated window is split at a real tactic shift inside it
(:func:`shift_date`), each part measured on its own budgets (:func:`segment`), and the recall
lost across it given with its bootstrap interval (:func:`window_shift`). When no shift falls
inside the window there is no split: halves of an unshifted window would compare nothing.
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
from training.evaluation_intervals import difference_interval
from training.evaluation_metrics import budget_metrics, positive_counts
from training.evaluation_record import (
    BUDGET_KEYS,
    SELECTORS,
    LabelSource,
    LossTable,
    RecallLoss,
    Segment,
    Shift,
)
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


def known_shifts(data_dir: Path) -> list[tuple[str, datetime]]:
    """The dated tactic shifts the data names, oldest first.

    ``manifest.json``'s :data:`SHIFT_KEY` when it has one (a simulated world lists every shift
    of its own window there); else the one real-world shift known, the 4-piperidone scheduling.
    """
    listed = _manifest_shifts(Path(data_dir) / "manifest.json")
    if listed is not None:
        return listed
    scheduled = datetime.combine(SCHEDULING_4_PIPERIDONE, time(), tzinfo=UTC)
    return [(f"4-piperidone scheduling (reference §1a), {SCHEDULING_4_PIPERIDONE}", scheduled)]


def shift_date(data_dir: Path, start: datetime, end: datetime) -> tuple[datetime, str] | None:
    """The first known shift (:func:`known_shifts`) inside the window ``(start, end]`` and
    where it is named; None when none falls inside."""
    for name, when in known_shifts(data_dir):
        if start < when <= end:
            return when, name if name.startswith("4-piperidone") else f"manifest: {name}"
    return None


def window_shift(
    data_dir: Path, frame: pl.DataFrame, label_sources: Sequence[LabelSource]
) -> Shift:
    """``frame`` (the evaluated window) split at the first shift inside it, each side measured
    on its own budgets, with the recall lost across it; an empty :class:`Shift` saying why
    when no shift falls inside."""
    start, end = frame["declared_at"].min(), frame["declared_at"].max()
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise DataError(f"{data_dir}: the evaluated shipments have no declared_at values")
    shifts = known_shifts(data_dir)
    listed = tuple(
        {"name": name, "date": when.isoformat(), "inWindow": start < when <= end}
        for name, when in shifts
    )
    found = shift_date(data_dir, start, end)
    if found is None:
        return Shift(None, _no_shift(shifts, start, end), listed, None, None, None)
    at, source = found
    before = segment(frame.filter(pl.col("declared_at") < at), label_sources)
    after = segment(frame.filter(pl.col("declared_at") >= at), label_sources)
    return Shift(at, source, listed, before, after, recall_loss(before, after, label_sources))


def recall_loss(before: Segment, after: Segment, label_sources: Sequence[LabelSource]) -> LossTable:
    """Recall before minus recall after, at every budget, for every ranked selector."""
    table: LossTable = {}
    for key in BUDGET_KEYS:
        table[key] = {}
        for selector in SELECTORS:
            if selector == "random":  # its recall is the budget on both sides: nothing to lose
                continue
            table[key][selector] = {}
            for src in label_sources:
                b, a = before.budgets[key][selector][src], after.budgets[key][selector][src]
                table[key][selector][src] = RecallLoss(
                    before=b.recall,
                    after=a.recall,
                    loss=None if b.recall is None or a.recall is None else b.recall - a.recall,
                    interval=difference_interval(
                        (b.positives_found, b.positives), (a.positives_found, a.positives)
                    ),
                )
    return table


def _no_shift(shifts: list[tuple[str, datetime]], start: datetime, end: datetime) -> str:
    window = f"{start.date().isoformat()} to {end.date().isoformat()}"
    if not shifts:
        return f"the data names no tactic shift; none to compare in {window}"
    dates = ", ".join(when.date().isoformat() for _, when in shifts)
    return f"none of the known tactic shifts ({dates}) falls inside the window {window}"


def _manifest_shifts(path: Path) -> list[tuple[str, datetime]] | None:
    """The manifest's shifts, oldest first; None without a manifest or without the key."""
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get(SHIFT_KEY), list):
        return None
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
