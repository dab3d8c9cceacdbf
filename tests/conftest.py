"""Shared fixtures: a small simulated world, a tiny model trained on it, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.settings import Settings, load_settings
from tests.support import ServerThread

WORLD_SHIPMENTS = 6_000


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.simulate import simulate_world

    out = tmp_path_factory.mktemp("world")
    simulate_world(out, shipments=WORLD_SHIPMENTS, months=24, seed=11, progress=False)
    return out


@pytest.fixture(scope="session")
def dense_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world with ten times the smuggling: enough observed positives in each of the
    training, validation and test windows (11, 5 and 6 on seed 11) for a test whose figures
    need positives there; the small world itself may have none in a window."""
    from training.simulate import simulate_world

    out = tmp_path_factory.mktemp("dense-world")
    simulate_world(
        out, shipments=WORLD_SHIPMENTS, months=24, seed=11, progress=False, illicit_scale=10
    )
    return out


@pytest.fixture(scope="session")
def registry(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import train

    root = tmp_path_factory.mktemp("registry")
    train(world, root, seed=1)
    return root


@pytest.fixture(scope="module")
def two_models(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry of two bundles trained on the world, for the gate's and the cards' tests."""
    from tests import model_registry

    return model_registry.build(world, tmp_path_factory.mktemp("two-models"))


@pytest.fixture
def gated(two_models: Path, tmp_path: Path) -> Path:
    """A copy of ``two_models`` this test may change."""
    from tests.model_registry import copy_of

    return copy_of(two_models, tmp_path)


def server_settings(registry_dir: Path, workdir: Path, **changes: object) -> Settings:
    """Settings for a test server: free ports, and every file it writes under ``workdir``."""
    values: dict[str, object] = {
        "grpc_port": 0,
        "metrics_port": 0,
        "registry_dir": registry_dir,
        "data_dir": workdir / "data",
        "ledger_path": workdir / "ledger.sqlite",
        "grace_period_s": 1.0,
        # The test world is simulated over 2024-2025; its shipments are scored live as of then.
        # Tests of the live declaredAt window set these back to the defaults.
        "declared_at_max_age_days": 36_500.0,
        **changes,
    }
    return load_settings(**values)


@pytest.fixture(scope="module")
def server(
    registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    workdir = tmp_path_factory.mktemp("server")
    running = ServerThread(server_settings(registry, workdir, data_dir=world))
    assert running.load()
    yield running
    running.stop()
