"""``centinela train --dask`` (issue 14), run as an analyst types it: a local cluster of two
worker processes boosts a model as good on the validation window as a single-process run on the
same data, into the same kind of bundle and registry entry; and a clear error without the dask
extra or with a malformed address."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.tables import load_tables
from features.watchlist import load_watchlist
from scoring.bulk import risk_scores
from scoring.registry import Registry
from tests.support import CENTINELA, centinela
from training.evaluation_metrics import average_precision

pytest.importorskip("distributed", reason="the dask extra (pip install 'centinela[dask]')")


def _validation_scores(world: Path, registry: Path, version: str) -> pl.DataFrame:
    """``version``'s calibrated scores over its own validation window (the dates in its bundle),
    scored through the registry as ``centinela score`` would: the same for every bundle."""
    bundle = Registry(registry).load(version)
    tables = load_tables(world)
    scores = risk_scores(
        bundle,
        tables.shipments.sort("declared_at", "shipment_id"),
        tables.goods,
        tables.inspections,
        load_watchlist(None),
    )
    first, last = (datetime.fromisoformat(day) for day in bundle.meta.windows["valid"])
    return scores.filter(pl.col("declared_at").is_between(first, last))


def _pr_auc(scores: pl.DataFrame, labels: pl.DataFrame) -> float:
    """PR-AUC of ``scores`` against ``labels`` (``shipment_id``, ``positive``) where known."""
    known = scores.join(labels, on="shipment_id")
    y = known["positive"].cast(pl.Int8).to_numpy()
    ap = average_precision(y[np.argsort(-known["risk_score"].to_numpy(), kind="stable")])
    assert ap is not None, "no positives in the validation window"
    return ap


def test_a_local_cluster_of_two_workers_trains_as_well_as_one_process(
    dense_world: Path, tmp_path: Path
) -> None:
    world = dense_world
    args = ("--data", str(world), "--seed", "1", "--json")
    local = centinela("train", *args, "--registry", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    dask = centinela("train", *args, "--registry", str(tmp_path / "dask"), "--dask", "local:2")
    assert dask.returncode == 0, dask.stderr
    # stdout is the answer alone: the workers' LightGBM chatter went to stderr.
    one, two = json.loads(local.stdout), json.loads(dask.stdout)
    assert (one["version"], one["promoted"]) == (two["version"], two["promoted"]) == ("v0001", True)
    assert one["split"] == two["split"]
    assert one["params"] == two["params"]
    assert set(one["metrics"]) == set(two["metrics"])

    alone = Registry(tmp_path / "local").load(one["version"]).meta
    spread = Registry(tmp_path / "dask").load(two["version"]).meta
    assert spread.params["dask"] == {"workers": 2}
    assert "dask" not in alone.params
    assert {k: v for k, v in spread.params.items() if k != "dask"} == alone.params
    assert spread.windows == alone.windows
    assert spread.metrics["best_iteration"] == two["rounds"] <= spread.params["max_rounds"]

    scores = {
        name: _validation_scores(world, tmp_path / name, "v0001") for name in ("local", "dask")
    }
    observed = pl.read_parquet(world / "inspections.parquet").select("shipment_id", "positive")
    pr_auc = {name: _pr_auc(part, observed) for name, part in scores.items()}
    known = scores["local"].join(observed, on="shipment_id")
    base_rate = float(known["positive"].mean() or 0.0)
    # Both rank the validation window's 5 observed positives far above their share of its
    # inspections (a model that learnt nothing scores about the base rate). Their PR-AUCs are
    # not compared: cluster boosting is not deterministic (which worker answers first changes
    # the trees a little), and on 5 positives the cluster model's PR-AUC moved from 0.60 to
    # 0.72 between runs against the local 0.76.
    assert min(pr_auc.values()) > 4 * base_rate, (pr_auc, base_rate)  # 0.106 here
    # A cluster model that learnt less, or something else, shows in how differently it ranks
    # the whole window.
    local_scores, dask_scores = (scores[n].sort("shipment_id")["risk_score"] for n in scores)
    agreement = _rank_correlation(local_scores.to_numpy(), dask_scores.to_numpy())
    print(
        f"validation PR-AUC {pr_auc} (base rate {base_rate:.3f}); "
        f"rank correlation local ~ dask {agreement:.3f}"
    )
    assert agreement >= 0.8, agreement  # 0.91-0.94 seen; a one-round model: 0.30


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two score vectors (ties ranked in order)."""
    ranks_a = np.argsort(np.argsort(a, kind="stable"), kind="stable")
    ranks_b = np.argsort(np.argsort(b, kind="stable"), kind="stable")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def test_dask_options_fail_clearly(world: Path, tmp_path: Path) -> None:
    args = ("train", "--data", str(world), "--registry", str(tmp_path / "registry"))
    for bad in ("local:0", "local", "somewhere"):
        refused = centinela(*args, "--dask", bad)
        assert refused.returncode != 0
        assert f"--dask {bad}" in refused.stderr, refused.stderr
    assert not (tmp_path / "registry").exists()

    # Without the dask extra: a package named ``distributed`` that cannot be imported.
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('distributed is not installed')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    missing = subprocess.run(
        [CENTINELA, *args, "--dask", "local:2"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert missing.returncode != 0
    assert "pip install 'centinela[dask]'" in missing.stderr, missing.stderr
    assert not list((tmp_path / "registry").glob("v*"))
