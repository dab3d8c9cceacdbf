"""The worlds the benchmarks score: a simulated world with a model trained on it, real shipments
of it, and (for the servers compared) those shipments made live requests beside the feature rows
Centinela computes for them."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.canonical import canonical_shipment
from features.errors import CentinelaError
from features.live import shipments_from_frames
from features.records import Shipment
from features.tables import scan_table
from scoring.bundle import ModelBundle
from scoring.registry import Registry
from scoring.service import ScoringService
from scoring.settings import load_settings
from tests.support import request_for
from training.simulate import simulate_world
from training.train import train


def trained_world(root: Path, shipments: int, seed: int) -> tuple[Path, Path]:
    """A world of ``shipments`` simulated in ``root/world`` and a model trained on it in
    ``root/registry`` (promoted, the first there); both paths."""
    world, registry = root / "world", root / "registry"
    simulate_world(world, shipments=shipments, seed=seed, progress=False)
    train(world, registry, seed=seed)
    return world, registry


def shipments_from_world(data_dir: Path, n: int) -> list[Shipment]:
    """The world's ``n`` newest shipments with their goods, as the live path receives them."""
    ships = scan_table(data_dir, "shipments").tail(n).collect()
    goods = scan_table(data_dir, "goods").filter(
        pl.col("shipment_id").is_in(ships["shipment_id"].implode())
    )
    return shipments_from_frames(ships, goods.collect())


def reused_or_trained(workdir: Path, world_size: int, seed: int) -> tuple[Path, Path, ModelBundle]:
    """The world and model kept in ``workdir`` if its model loads, else a new one trained there:
    the world, the registry and the promoted bundle."""
    world, registry = workdir / "world", workdir / "registry"
    if world.exists() and registry.exists():
        try:
            bundle = Registry(registry).load()
            print(f"reusing the world and model {bundle.version} in {workdir}", flush=True)
            return world, registry, bundle
        except CentinelaError as error:
            print(f"training again: the model in {registry} does not load ({error})")
    shutil.rmtree(world, ignore_errors=True)
    shutil.rmtree(registry, ignore_errors=True)
    trained_world(workdir, world_size, seed)
    return world, registry, Registry(registry).load()


@dataclass
class Inputs:
    model: Path  # the promoted bundle's model.txt
    registry: Path
    world: Path
    requests: list[bytes]  # ScoreShipmentRequest, serialised
    rows: Path  # .npy: Centinela's feature rows of the same shipments, in the same order
    expected: np.ndarray  # the booster's raw scores of those rows


def live_inputs(workdir: Path, world_size: int, shipments: int) -> Inputs:
    """The world's newest ``shipments`` re-dated to the last hours (live scoring refuses a
    ``declaredAt`` older than 21 days) as requests, and the feature rows Centinela computes for
    them, so that every server compared scores the same inputs with the same booster."""
    world, registry, bundle = reused_or_trained(workdir, world_size, seed=5)
    now = datetime.now(UTC)
    picked = shipments_from_world(world, shipments)
    # Live scoring accepts a declaredAt of the last 21 days: the same shipments, in their order,
    # declared over the last hour or so.
    redated = [
        dataclasses.replace(s, declared_at=now - timedelta(seconds=len(picked) - i))
        for i, s in enumerate(picked)
    ]
    service = ScoringService(
        load_settings(registry_dir=registry, data_dir=world, ledger_enabled=False)
    )
    scorer = service.load()
    assert service.state is not None
    computed = scorer.features([canonical_shipment(s) for s in redated], service.state)
    matrix = computed.block.matrix
    rows = workdir / "rows.npy"
    np.save(rows, matrix)
    expected = np.asarray(bundle.booster.predict(matrix, num_threads=1), dtype=np.float64)
    return Inputs(
        model=bundle.path / "model.txt",
        registry=registry,
        world=world,
        requests=[request_for(s).SerializeToString() for s in redated],
        rows=rows,
        expected=expected,
    )
