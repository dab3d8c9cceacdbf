"""The results of off-policy evaluation (:mod:`training.offpolicy`): figures with intervals,
per port and overall, readable as text (``str``) and as plain JSON-ready dicts (``to_json``).

A figure that has no value (a recall without positives, a precision without selected
shipments, a self-normalised estimate at a port where nothing selected was inspected) is None,
in text ``-``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Final, Generic, Literal, TypedDict, TypeVar

from features.errors import DataError

ESTIMATORS: Final[tuple[str, ...]] = ("ips", "snips", "dr")
OVERALL: Final[str] = "overall"
"""The name of the row that sums every port."""

Verdict = Literal["better", "worse", "unclear"]


def plain(value: object) -> Any:
    """``value`` as JSON-ready data: a dataclass as a dict of its fields and of the properties
    its class names in ``derived``, a tuple as a list."""
    if is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in fields(value)] + list(getattr(value, "derived", ()))
        return {name: plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


class _Json:
    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """Plain dicts, lists, strings, numbers and None (:func:`plain`)."""
        data: dict[str, Any] = plain(self)
        return data


class BootstrapOptions(TypedDict, total=False):
    """The keyword arguments of the estimating functions: :class:`Bootstrap`'s fields."""

    replicates: int
    level: float
    seed: int


@dataclass(frozen=True, slots=True)
class Bootstrap(_Json):
    """How intervals are made: ``replicates`` bootstrap replicates drawn from ``seed``, each
    interval the central ``level`` percentile interval."""

    replicates: int = 1_000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        r = self.replicates
        if isinstance(r, bool) or not isinstance(r, Integral) or r < 1:
            raise DataError(f"replicates: must be a whole number of at least 1, got {r!r}")
        if not (isinstance(self.level, Real) and 0 < self.level < 1):
            raise DataError(f"level: must be a number between 0 and 1, got {self.level!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral):
            raise DataError(f"seed: must be a whole number, got {self.seed!r}")


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Figure(_Json):
    """An estimate and its bootstrap percentile interval."""

    value: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, value: float, lower: float, upper: float) -> Figure:
        """From numbers, NaN or infinite as None."""
        return cls(_number(value), _number(lower), _number(upper))

    def text(self, percent: bool = False, sign: bool = False) -> str:
        """``41.2% [35.0, 48.1]`` (``percent``) or ``123.4 [100.2, 150.3]``."""
        scale, unit = (100.0, "%") if percent else (1.0, "")
        plus = "+" if sign else ""

        def show(v: float | None) -> str:
            return "-" if v is None else f"{v * scale:{plus}.1f}"

        if self.value is None:
            return "-"
        return f"{show(self.value)}{unit} [{show(self.lower)}, {show(self.upper)}]"

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True, slots=True)
class Catch(_Json):
    """What a selection caught at one port (or :data:`OVERALL`) by one estimator: ``selected``
    shipments, ``caught`` positives among them, the log's ``positives``, ``recall`` (caught
    over positives) and ``precision`` (caught over selected)."""

    port: str
    selected: int
    caught: Figure
    positives: Figure
    recall: Figure
    precision: Figure

    def line(self) -> str:
        return (
            f"{self.port:<10} {self.selected:>9}  caught {self.caught}  of {self.positives}  "
            f"recall {self.recall.text(percent=True)}  "
            f"precision {self.precision.text(percent=True)}"
        )


@dataclass(frozen=True, slots=True)
class Estimate(_Json):
    """One estimator's figures for one selection: overall and per port (sorted)."""

    estimator: str
    overall: Catch
    ports: tuple[Catch, ...]

    def __str__(self) -> str:
        lines = [f"{self.estimator}:", f"  {self.overall.line()}"]
        return "\n".join(lines + [f"  {c.line()}" for c in self.ports])


@dataclass(frozen=True, slots=True)
class Difference(_Json):
    """Challenger minus champion at one port (or :data:`OVERALL`): caught and recall."""

    port: str
    caught: Figure
    recall: Figure

    def line(self) -> str:
        return (
            f"{self.port:<10} caught {self.caught.text(sign=True)}  "
            f"recall {self.recall.text(percent=True, sign=True)}"
        )


@dataclass(frozen=True, slots=True)
class Comparison(_Json):
    """One estimator's challenger and champion figures and their paired difference, overall
    and per port (``overall`` and ``ports`` are differences)."""

    estimator: str
    challenger: Estimate
    champion: Estimate
    overall: Difference
    ports: tuple[Difference, ...]
    derived: ClassVar[tuple[str, ...]] = ("verdict",)

    @property
    def verdict(self) -> Verdict:
        """``better`` when the overall recall difference's interval lies above 0, ``worse``
        below 0, ``unclear`` otherwise."""
        recall = self.overall.recall
        if recall.lower is not None and recall.lower > 0:
            return "better"
        if recall.upper is not None and recall.upper < 0:
            return "worse"
        return "unclear"

    def __str__(self) -> str:
        recall = (self.challenger.overall.recall, self.champion.overall.recall)
        head = (
            f"{self.estimator}: challenger recall {recall[0].text(percent=True)}, champion "
            f"{recall[1].text(percent=True)}; challenger {self.verdict}"
        )
        lines = [head, f"  {self.overall.line()}"] + [f"  {d.line()}" for d in self.ports]
        return "\n".join(lines)


E = TypeVar("E", Estimate, Comparison)


class _ByEstimator(_Json, Generic[E]):
    """Results by estimator: ``results["dr"]`` picks one; ``str`` prints each, then the
    warnings."""

    __slots__ = ()
    warnings: tuple[str, ...]

    def _results(self) -> tuple[E, ...]:
        raise NotImplementedError

    def __getitem__(self, estimator: str) -> E:
        named = {r.estimator: r for r in self._results()}
        if estimator not in named:
            raise KeyError(f"no estimate {estimator!r}; there are {', '.join(named)}")
        return named[estimator]

    def __str__(self) -> str:
        blocks = [str(r) for r in self._results()]
        return "\n".join(blocks + [f"warning: {w}" for w in self.warnings])


@dataclass(frozen=True, slots=True)
class Estimates(_ByEstimator[Estimate]):
    """Every estimator's :class:`Estimate` of one selection, the warnings for it
    (:func:`training.offpolicy.overlap`) and the bootstrap that made the intervals."""

    estimates: tuple[Estimate, ...]
    warnings: tuple[str, ...]
    bootstrap: Bootstrap

    def _results(self) -> tuple[Estimate, ...]:
        return self.estimates


@dataclass(frozen=True, slots=True)
class Comparisons(_ByEstimator[Comparison]):
    """Every estimator's :class:`Comparison` of two selections, the warnings for either and
    the bootstrap that made the intervals."""

    comparisons: tuple[Comparison, ...]
    warnings: tuple[str, ...]
    bootstrap: Bootstrap

    def _results(self) -> tuple[Comparison, ...]:
        return self.comparisons
