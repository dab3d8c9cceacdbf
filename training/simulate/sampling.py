"""Categorical draws shared by the simulator's stages.

The chunk generator draws one category per row from a table of cumulative distributions
(:func:`cdf`, :func:`draw`); the illicit planner draws one key at a time from a small table of
weights (:func:`pick`). Each draw consumes the generator in a fixed order, which is what keeps a
world byte-identical for a given seed.
"""

from __future__ import annotations

import numpy as np

from training.simulate.types import FloatArray, IntArray


def cdf(probs: FloatArray) -> FloatArray:
    """Cumulative distributions along the last axis, normalised so each row ends at 1."""
    cumulative = np.cumsum(probs, axis=-1)
    return cumulative / cumulative[..., -1:]


def draw(rng: np.random.Generator, table: FloatArray, keys: IntArray) -> IntArray:
    """One categorical draw per row from row ``keys[i]`` of a table of cumulative distributions.

    Loops over the distinct keys (a handful) rather than materialising one distribution per row,
    which keeps memory linear in the chunk.
    """
    u = rng.random(len(keys))
    drawn = np.zeros(len(keys), dtype=np.int64)
    last = table.shape[1] - 1
    for key in np.unique(keys):
        mask = keys == key
        drawn[mask] = np.minimum(np.searchsorted(table[int(key)], u[mask], side="right"), last)
    return drawn


def pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """One key of ``weights``, drawn in proportion to its weight."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]
