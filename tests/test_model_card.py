"""Model cards: ``centinela models card`` for every bundle, and the ``card.md`` the registry
keeps current beside each one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scoring.registry import Registry
from tests.model_registry import EVIDENCE, PASSING, verdict
from tests.support import centinela
from training.card_figures import average_precision_interval
from training.evaluation_metrics import average_precision
from training.model_card import carded_registry


def card(version: str, gated: Path) -> str:
    result = centinela("models", "card", version, "--registry", str(gated))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_bundle_has_a_card_saying_what_made_it(gated: Path) -> None:
    meta = Registry(gated).meta("v0001")
    first = card("v0001", gated)
    assert first.startswith("# Model card: v0001\n")
    assert f"| data fingerprint | `{meta.data_fingerprint}` |" in first
    assert f"| test | {meta.windows['test'][0]} | {meta.windows['test'][1]} |" in first
    assert "### Watchlist evidence (9)" in first
    assert "- `consignee_age_days`: days since consignee first seen; when null:" in first
    assert "| max_rounds | 20 |" in first
    assert f"{meta.calibration.describe()}, fitted on the `valid` window." in first
    assert "## Gate verdict\n\nNot judged." in first
    assert (
        "| promoted v0001 | centinela train | first model of an empty registry: nothing to "
        "compare against | yes | no verdict |"
    ) in first
    second = card("v0002", gated)
    assert "## Promotions\n\nNever promoted." in second
    # train wrote each card into its bundle as well.
    assert (gated / "v0002" / "card.md").read_text() == second


def test_the_card_has_per_port_figures_and_the_blind_spots(gated: Path) -> None:
    figures = json.loads((gated / "v0001" / "card.json").read_text())
    text = card("v0001", gated)
    overall = figures["overall"]
    assert overall["shipments"] == sum(p["shipments"] for p in figures["ports"].values())
    assert f"| **all ports** | {overall['shipments']:,} | {overall['inspected']:,} |" in text
    for port, m in figures["ports"].items():
        assert f"| {port} | {m['shipments']:,} |" in text
    quiet = [p for p, m in figures["ports"].items() if m["positives"] == 0]
    assert quiet, "the test world leaves some port without a positive in the test window"
    assert (
        f"no positives in the test window (nothing there says how the model does): `{quiet[0]}`"
        in text
    )
    assert "source: docs/simulated-world.md" in text
    assert "`northbound_concealment`: nothing in the goods" in text


def test_a_verdict_and_a_promotion_rewrite_the_card(gated: Path) -> None:
    registry = carded_registry(gated)
    registry.save_verdict("v0002", verdict("v0002", "v0001", *PASSING))
    kept = (gated / "v0002" / "card.md").read_text()
    assert "**Passed** against v0001, decided 2025-06-02T09:30:00+00:00 on " + EVIDENCE in kept
    assert "| recall at 2% | yes | challenger 41.0% [36.2, 45.9] against champion" in kept

    why = "beats v0001 at 2% on May's ledger"
    result = centinela(
        "models", "promote", "v0002", "--registry", str(gated), "--by", "ana", "--reason", why
    )
    assert result.returncode == 0, result.stderr
    kept = (gated / "v0002" / "card.md").read_text()
    assert f"| promoted v0002 (replacing v0001) | ana | {why} | no | passed vs v0001 |" in kept
    assert "| promoted now | yes |" in kept
    replaced = (gated / "v0001" / "card.md").read_text()
    assert f"| replaced by v0002 | ana | {why} |" in replaced
    assert "| promoted now | no |" in replaced
    assert card("v0002", gated) == kept  # rendered fresh, the same


def test_a_bundle_from_before_cards_still_gets_one(gated: Path, tmp_path: Path) -> None:
    for name in ("card.json", "card.md"):
        (gated / "v0001" / name).unlink()
    out = tmp_path / "cards" / "v0001.md"
    out.parent.mkdir()
    result = centinela("models", "card", "v0001", "--registry", str(gated), "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "Not available: no card.json in the bundle" in text
    assert "Ports with no positives in the test window: unknown (no card.json" in text
    assert "first model of an empty registry" in text  # the rest is all there
    assert "## Calibration" in text
    assert f"card of v0001 written to {out}" in result.stderr


def test_a_card_for_a_missing_version_names_what_there_is(gated: Path) -> None:
    result = centinela("models", "card", "v0042", "--registry", str(gated))
    assert result.returncode == 4
    assert "model version 'v0042' not in registry" in result.stderr
    assert "(have: v0001, v0002)" in result.stderr


def test_the_pr_auc_interval_holds_the_figure_and_is_repeatable() -> None:
    rng = np.random.default_rng(3)
    hits = (rng.random(400) < np.linspace(0.3, 0.0, 400)).astype(np.int64)
    lower, upper = average_precision_interval(hits)  # type: ignore[misc]
    figure = average_precision(hits)
    assert figure is not None
    assert lower < figure < upper
    assert upper - lower < 0.5
    assert average_precision_interval(hits) == (lower, upper)
    assert average_precision_interval(np.zeros(10)) is None
