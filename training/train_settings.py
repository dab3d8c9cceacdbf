"""What an analyst can steer in ``centinela train``: the boosting settings and the time split.

:class:`TrainSettings` is the training settings file (``train --params FILE.yaml``): learning
rate, leaves, the round limit and early stopping, and a few regularisers. Every key is checked
(a misspelt one is an error naming it) and the defaults are the values ``train`` has always used,
so a run without the file is the run it was.

:class:`DateSplit` fixes the windows by date (``--train-until DATE --valid-until DATE``): the
training window takes every shipment declared up to and including ``train_until``, the
validation window (early stopping and calibration) the days after it up to ``valid_until``, and
the test window the rest. Without dates the split is by share of shipments in declared order
(:data:`TRAIN_SHARE`, :data:`VALID_SHARE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from features.errors import ConfigError, DataError, pydantic_violations, suggest
from features.yamlfiles import read_yaml_file
from training.periods import day_end

TRAIN_SHARE: Final[float] = 0.70
VALID_SHARE: Final[float] = 0.15


class TrainSettings(BaseModel):
    """Boosting settings of ``centinela train`` (``--params FILE.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    learning_rate: float = Field(0.05, gt=0, le=1)
    """Shrinkage of each tree."""
    num_leaves: int = Field(15, ge=2, le=4096)
    """Leaves per tree at most."""
    min_data_in_leaf: int = Field(20, ge=1)
    """Labelled shipments per leaf at least."""
    feature_fraction: float = Field(0.8, gt=0, le=1)
    """Features tried per tree."""
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    """Rows drawn per tree."""
    lambda_l2: float = Field(1.0, ge=0)
    """L2 penalty on leaf values."""
    # 5000: early stopping ends boosting long before on the simulated world (about 60 rounds),
    # while the customs declarations needed 1,200-2,000 (500 left every seed under-fitted).
    max_rounds: int = Field(5000, ge=1, le=100_000)
    """Boosting rounds at most; a run that reaches it says so (hit_round_limit)."""
    early_stopping_rounds: int = Field(50, ge=1)
    """Stop when the validation window's loss has not improved for this many rounds; the model keeps
    its best round."""

    def lightgbm_params(self) -> dict[str, Any]:
        """The settings LightGBM takes as parameters (the round limits are ``train``'s)."""
        return self.model_dump(exclude={"max_rounds", "early_stopping_rounds"})


def load_train_settings(path: Path | None) -> TrainSettings:
    """The training settings of ``path`` (YAML or JSON); the defaults without a file.

    A file that cannot be read or parsed, is not a mapping, or holds an unknown key or a bad
    value is a :class:`ConfigError` naming the file and every bad key."""
    if path is None:
        return TrainSettings()
    loaded = read_yaml_file(path, "training settings file")
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"training settings file {path} must be a mapping of setting: value")
    try:
        return TrainSettings.model_validate(loaded)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid training settings file {path}", pydantic_violations(exc, _describe)
        ) from None


def _describe(error: ErrorDetails) -> str:
    """An unknown key names the known ones (and the likeliest); other errors as pydantic says."""
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][-1])
        known = ", ".join(TrainSettings.model_fields)
        return f"unknown setting{suggest(key, TrainSettings.model_fields)} (known: {known})"
    return str(error["msg"])


@dataclass(frozen=True, slots=True)
class DateSplit:
    """Windows fixed by date: training up to and including ``train_until``, validation the days
    after it up to and including ``valid_until``, test after that."""

    train_until: date
    valid_until: date

    def __post_init__(self) -> None:
        if self.valid_until <= self.train_until:
            raise ConfigError(
                f"--valid-until {self.valid_until.isoformat()} must be after --train-until "
                f"{self.train_until.isoformat()}"
            )

    @classmethod
    def from_options(cls, train_until: date | None, valid_until: date | None) -> DateSplit | None:
        """The split of ``--train-until`` and ``--valid-until``: both or neither."""
        if train_until is None and valid_until is None:
            return None
        if train_until is None or valid_until is None:
            given = "--train-until" if train_until is not None else "--valid-until"
            raise ConfigError(
                f"{given} needs its partner: give both --train-until and --valid-until"
            )
        return cls(train_until, valid_until)

    def to_json(self) -> dict[str, str]:
        return {
            "train_until": self.train_until.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }


def split_json(split: DateSplit | None) -> dict[str, Any]:
    """How the windows were cut, for the bundle's parameters."""
    if split is None:
        return {"train_share": TRAIN_SHARE, "valid_share": VALID_SHARE}
    return split.to_json()


def cut_points(declared_at: pl.Series, split: DateSplit | None, where: str) -> tuple[int, int]:
    """Where the training and validation windows end in ``declared_at`` (sorted ascending):
    by share without ``split``, else by its dates. A date that leaves the training or the
    validation window empty is a :class:`DataError` naming the option and the data's span."""
    n = declared_at.len()
    if split is None:
        return int(n * TRAIN_SHARE), int(n * (TRAIN_SHARE + VALID_SHARE))
    instants = declared_at.to_numpy()
    cut_train, cut_valid = (
        int(np.searchsorted(instants, np.datetime64(_naive(day_end(day))), side="left"))
        for day in (split.train_until, split.valid_until)
    )
    span = f"the data runs {_day(declared_at[0])} to {_day(declared_at[n - 1])}"
    if cut_train == 0:
        raise DataError(
            f"{where}: --train-until {split.train_until} leaves the training window empty "
            f"(nothing declared on or before it; {span})"
        )
    if cut_valid == cut_train:
        raise DataError(
            f"{where}: --train-until {split.train_until} and --valid-until {split.valid_until} "
            f"leave the validation window empty (nothing declared after the first and on or "
            f"before the second; {span})"
        )
    return cut_train, cut_valid


def _naive(value: datetime) -> datetime:
    """``value`` (UTC) without its zone, as numpy compares polars' UTC datetimes."""
    return value.replace(tzinfo=None)


def _day(value: object) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)
