"""Bulk risk scores for canonical tables with one bundle (what ``evaluate`` ranks by), and the
first pass of a streamed bulk run.

:func:`risk_scores` runs exactly the feature code and model the live path runs (see
:mod:`features.build`), over whole tables at once. Decisions (rules, lanes, exploration,
reasons) are not made here: they come from :meth:`scoring.scorer.Scorer.decide`, for tables
through ``Scorer.score_tables``, for a stream chunk by chunk through ``Scorer.decide_stream``
after :func:`first_pass`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl

from features.build import Declarations, build_features, feature_matrix, stage_one
from features.history import Keyed
from features.kept import save_stage_one
from features.tables import TableStream
from features.watchlist import Watchlist
from scoring.bundle import ModelBundle

T = TypeVar("T")


def risk_scores(
    bundle: ModelBundle,
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """One row per shipment: ``shipment_id``, ``declared_at``, ``port_of_entry`` and the
    calibrated ``risk_score``, in the order of ``shipments``.

    ``inspections`` are the outcomes known so far; each shipment's features use only those
    reported before it was declared.
    """
    features = build_features(shipments, goods, inspections, watchlist, bundle.meta.reference)
    scores = bundle.predict(feature_matrix(features))
    return features.select("shipment_id", "declared_at", "port_of_entry").with_columns(
        risk_score=pl.Series(scores, dtype=pl.Float64)
    )


@dataclass(frozen=True)
class FirstPass:
    """The first pass over a stream (:func:`first_pass`): what history needs of every shipment,
    in stream order, and the files that keep each chunk's declarations and stage one, in chunk
    order (none when they were not kept)."""

    keyed: Keyed
    kept: list[Path]


def first_pass(stream: TableStream, watchlist: Watchlist, keep: Path | None = None) -> FirstPass:
    """Stage one of every chunk of ``stream`` with ``watchlist``, which needs no model: the
    first pass of :meth:`~scoring.scorer.Scorer.stream_features`. With ``keep`` (a directory of
    the run's own, created if missing) each chunk's declarations and stage one are written
    there, one file a chunk, and the second pass reads them back instead of computing them
    again."""
    keyed: list[Keyed] = []
    kept: list[Path] = []
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    for index, chunk in enumerate(read_ahead(stream.chunks())):
        declarations = Declarations.from_tables(chunk.shipments, chunk.goods, watchlist)
        basics = stage_one(declarations, watchlist)
        keyed.append(basics.keyed)
        if keep is not None:
            kept.append(keep / f"stage-one-{index:06d}.kept")
            save_stage_one(kept[-1], declarations, basics)
    return FirstPass(Keyed.concat(keyed), kept)


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items`` in order, the next one made in a thread while the caller works on this one:
    reading Parquet, filtering goods and LightGBM's predictions run outside the GIL, on the
    other core."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item
