"""A small registry for the tests of model governance: two bundles trained quickly on the test
world (v0001 promoted as the first model, v0002 not), and gate verdicts to judge them with."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from scoring.verdict import GateCheck, GateVerdict
from training.train import train
from training.train_settings import TrainSettings

# Few rounds: these tests are about what the registry keeps, not about the models' quality.
QUICK = TrainSettings(max_rounds=20, early_stopping_rounds=10)
EVIDENCE = "ledger var/ledger.sqlite, 2025-05-01 to 2025-05-31 (4,210 decisions)"


def build(world: Path, root: Path) -> Path:
    """``root`` holding v0001 (promoted, as any first model is) and v0002 (not promoted)."""
    train(world, root, seed=1, settings=QUICK)
    train(world, root, seed=2, settings=QUICK)
    return root


def copy_of(registry: Path, tmp_path: Path) -> Path:
    """A copy of ``registry`` a test may change."""
    return Path(shutil.copytree(registry, tmp_path / "registry"))


def verdict(challenger: str, champion: str | None, *checks: tuple[str, bool, str]) -> GateVerdict:
    """A verdict on ``challenger`` against ``champion`` made of ``checks`` (name, passed,
    detail), as ``centinela models compare`` would save it."""
    return GateVerdict.judge(
        challenger,
        champion,
        tuple(GateCheck(*check) for check in checks),
        decided_at=datetime(2025, 6, 2, 9, 30, tzinfo=UTC),
        evidence=EVIDENCE,
        figures={"recall_at_2pct": {"challenger": 0.41, "champion": 0.37}},
    )


PASSING = (
    ("recall at 2%", True, "challenger 41.0% [36.2, 45.9] against champion 37.0% [32.1, 41.8]"),
    ("red share", True, "RED share 2.1% within the 2.5% budget"),
)
FAILING = (
    ("recall at 2%", False, "challenger 30.5% [25.9, 35.3] below champion 37.0% [32.1, 41.8]"),
    ("red share", True, "RED share 2.1% within the 2.5% budget"),
    ("calibration", False, "Brier 0.0131 above the champion's 0.0102"),
)
