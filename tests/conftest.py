"""Shared fixtures: a small simulated world, a tiny model trained on it, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring.settings import Settings, load_settings
from tests.support import ServerThread

WORLD_SHIPMENTS = 6_000


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.simulate import simulate_world

    out = tmp_path_factory.mktemp("world")
    simulate_world(out, shipments=WORLD_SHIPMENTS, months=24, seed=11, progress=False)
    return out


@pytest.fixture(scope="session")
def registry(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import train

    root = tmp_path_factory.mktemp("registry")
    train(world, root, seed=1)
    return root


def server_settings(registry_dir: Path, **changes: object) -> Settings:
    return load_settings(
        grpc_port=0, metrics_port=0, registry_dir=registry_dir, grace_period_s=1.0, **changes
    )


@pytest.fixture(scope="module")
def server(registry: Path) -> Iterator[ServerThread]:
    running = ServerThread(server_settings(registry))
    assert running.load()
    yield running
    running.stop()
