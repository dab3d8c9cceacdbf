"""The log off-policy evaluation reads (:mod:`training.offpolicy`), checked.

``inspected`` must be the event ``propensity`` is the probability of. The lanes
(:mod:`scoring.lanes`) record the probability that a shipment leaves GREEN (RED or YELLOW), so
a log read from the ledger marks ``inspected`` for both; marking RED alone would weigh RED rows
by a YELLOW-inclusive chance. Every check names the field and the first bad row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.errors import DataError


@dataclass(frozen=True, slots=True)
class Logged:
    """One row per logged shipment (numpy arrays of one length); checked and converted on
    construction, a :class:`~features.errors.DataError` naming the field otherwise.

    ``positive`` counts only where ``inspected``. ``predicted`` (optional) is DR's ``m``: a
    probability per shipment fixed before its outcome, such as the champion's calibrated score.
    """

    port: np.ndarray
    inspected: np.ndarray
    positive: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray
    predicted: np.ndarray | None = None
    port_names: tuple[str, ...] = field(init=False)
    """The ports, sorted; :attr:`port_index` gives each row's position in it."""
    port_index: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        port = check_ports("port", self.port)
        n = len(port)
        if n == 0:
            raise DataError("port: the log has no rows")
        propensity = check_probabilities("propensity", self.propensity, n)
        inspected = check_flags("inspected", self.inspected, n)
        explored = check_flags("explored", self.explored, n)
        forbid(inspected & (propensity == 0), "propensity", "inspected with propensity 0")
        forbid(explored & ~inspected, "explored", "explored but not inspected")
        names, index = np.unique(port, return_inverse=True)
        predicted = self.predicted
        if predicted is not None:
            predicted = check_probabilities("predicted", predicted, n)
        values = {
            "port": port,
            "inspected": inspected,
            "positive": check_flags("positive", self.positive, n) & inspected,
            "propensity": propensity,
            "explored": explored,
            "predicted": predicted,
            "port_names": tuple(str(p) for p in names),
            "port_index": index.astype(np.intp),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def n(self) -> int:
        return len(self.port)


def _array(name: str, values: object, n: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name}: expected one value per shipment, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise DataError(f"{name}: {len(array)} rows, expected {n} (one per shipment)")
    return array


def forbid(bad: np.ndarray, name: str, what: str) -> None:
    """A :class:`DataError` when any row is ``bad``: ``name: N rows <what> (first at row i)``."""
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} rows {what} (first at row {_first(bad)})")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_ports(name: str, values: object, n: int | None = None) -> np.ndarray:
    """Non-empty port codes as a numpy string array."""
    array = _array(name, values, n)
    if array.dtype.kind == "O":
        strings = np.fromiter((isinstance(v, str) for v in array), bool, len(array))
        forbid(~strings, name, "are not strings")
        array = array.astype(str)
    elif array.dtype.kind != "U":
        raise DataError(f"{name}: expected port codes (strings), got {array.dtype}")
    forbid(array == "", name, "are empty")
    return array


def check_floats(name: str, values: object, n: int | None) -> np.ndarray:
    """Finite numbers as float64."""
    array = _array(name, values, n)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name}: expected numbers, got {array.dtype}")
    array = array.astype(np.float64)
    forbid(np.isnan(array), name, "are NaN")
    forbid(np.isinf(array), name, "are infinite")
    return array


def check_probabilities(name: str, values: object, n: int) -> np.ndarray:
    """Numbers in [0, 1] as float64."""
    array = check_floats(name, values, n)
    forbid((array < 0) | (array > 1), name, "are outside [0, 1]")
    return array


def check_flags(name: str, values: object, n: int) -> np.ndarray:
    """Booleans, or numbers that are all 0 or 1, as a boolean array."""
    array = _array(name, values, n)
    if array.dtype == np.bool_:
        return array
    array = check_floats(name, array, n)
    forbid((array != 0) & (array != 1), name, "are neither true nor false (0 or 1)")
    flags: np.ndarray = array == 1
    return flags
