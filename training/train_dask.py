"""``centinela train --dask``: boosting through LightGBM's Dask interface (:mod:`lightgbm.dask`).

Only the boosting moves to the cluster. The features are built point-in-time on this machine by
the same code as a local run (:func:`training.train.split_windows`); the labelled training
window's matrix is then cut into one row block per worker, each block placed on its worker
(:func:`_partitions`), and ``DaskLGBMClassifier`` boosts with ``tree_learner="data"`` (every
worker histograms its own rows; LightGBM picks a free port on each worker for its network).
Calibration, metrics, the bundle and the registry entry are then the local run's, from the
booster that comes back.

Early stopping: the Dask interface does not support it (LightGBM issues #3712, #4189; with
``early_stopping_rounds`` on a cluster, workers stop at different rounds and training hangs or
fails with socket errors, #6197, #6351). So the cluster boosts ``max_rounds`` rounds, and this
machine applies the rule :func:`lightgbm.early_stopping` applies, afterwards: the validation
window's binary log loss (weighted as the local run weights it) after every round, the best
round the first one that no later round improves on within ``early_stopping_rounds`` rounds,
and the model cut there (:func:`best_rounds`). The trees up to that round are the ones boosting
would have built had it stopped; the price is the rounds past it, at most ``max_rounds``.

Needs the ``dask`` extra (``pip install 'centinela[dask]'``: ``dask[distributed,dataframe]``
and scikit-learn, which :mod:`lightgbm.dask` requires).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.errors import ConfigError, FailedPrecondition, Unavailable
from scoring.lgbm import full_lightgbm, lgb

if TYPE_CHECKING:
    from distributed import Client

    from training.train_settings import TrainSettings

__all__ = ["ClusterFit", "DaskTarget", "best_rounds", "fit_on_cluster", "validation_losses"]

_LOCAL = re.compile(r"local:(\d+)")
_INSTALL_HINT = "install the dask extra: pip install 'centinela[dask]'"
# Seconds to reach a scheduler given by address, and to wait for a local cluster's workers.
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class DaskTarget:
    """Where to boost: a running scheduler (``address``, ``tcp://host:port``) or a local cluster
    of ``local_workers`` single-threaded worker processes on 127.0.0.1, started and closed by
    the run."""

    address: str | None = None
    local_workers: int = 0

    @classmethod
    def parse(cls, text: str) -> DaskTarget:
        """``local:N`` (N ≥ 1) or a scheduler address; anything else is a :class:`ConfigError`."""
        if (local := _LOCAL.fullmatch(text.strip())) is not None:
            workers = int(local.group(1))
            if workers < 1:
                raise ConfigError(f"--dask {text}: a local cluster needs at least one worker")
            return cls(local_workers=workers)
        if text.startswith("local"):
            raise ConfigError(f"--dask {text}: write local:N, N the number of workers")
        if "://" not in text and not re.fullmatch(r"[\w.\-\[\]:]+:\d+", text):
            raise ConfigError(
                f"--dask {text}: expected a scheduler address (tcp://host:port) or local:N"
            )
        return cls(address=text)

    def check_installed(self) -> DaskTarget:
        """This target, once the dask extra is known to import (before any work is done):
        else a :class:`FailedPrecondition` saying what to install."""
        _dask_modules()
        return self

    def describe(self) -> str:
        return f"local:{self.local_workers}" if self.address is None else self.address


@dataclass(frozen=True, slots=True)
class ClusterFit:
    """The booster cut at its best round, and the workers that boosted it."""

    booster: lgb.Booster
    workers: int


def fit_on_cluster(
    target: DaskTarget,
    train_set: lgb.Dataset,
    valid_set: lgb.Dataset,
    params: dict[str, Any],
    settings: TrainSettings,
) -> ClusterFit:
    """Boost ``params`` on ``train_set``'s rows over the cluster, for ``settings.max_rounds``
    rounds, and keep the best round by the validation window's loss (:func:`best_rounds`).

    The datasets are the local run's (built with ``free_raw_data=False``): their matrices,
    labels, weights, feature names and categorical features are what the cluster gets."""
    with dask_client(target) as client:
        booster, workers = _boost(client, train_set, params, settings.max_rounds)
    losses = validation_losses(booster, valid_set)
    best = best_rounds(losses, settings.early_stopping_rounds)
    cut = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    cut.best_iteration = best
    return ClusterFit(cut, workers)


@contextmanager
def dask_client(target: DaskTarget) -> Iterator[Client]:
    """A client of ``target``'s scheduler; a local cluster is started for it and closed after.

    Without the dask extra this is a :class:`FailedPrecondition` saying what to install; a
    scheduler that cannot be reached is :class:`Unavailable`."""
    _dask_modules()
    from distributed import Client, LocalCluster

    if target.address is not None:
        try:
            client = Client(target.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise Unavailable(
                f"--dask {target.address}: cannot reach the Dask scheduler ({exc})"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=target.local_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(target.local_workers, timeout=CONNECT_TIMEOUT_S)
        client.run(_prepare_worker)
        yield client


def _dask_modules() -> None:
    """Import what ``--dask`` needs, or say what to install."""
    try:
        import distributed  # noqa: F401

        full_lightgbm()  # the rest of Centinela imports LightGBM without them (scoring.lgbm)
        import lightgbm.dask  # noqa: F401  (fails without scikit-learn or pandas)
    except ImportError as exc:
        raise FailedPrecondition(
            f"train --dask needs dask.distributed and scikit-learn ({exc}); {_INSTALL_HINT}"
        ) from None


def _prepare_worker() -> None:
    """On a local worker (a process this run started, sharing its stdout): LightGBM whole, as
    ``lightgbm.dask`` needs it (unpickling this function imported this module, and with it the
    lean LightGBM of :mod:`scoring.lgbm`); and standard output to standard error, where
    LightGBM's native code then prints its network's progress, so ``--json`` keeps stdout for
    its answer."""
    full_lightgbm()
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _boost(
    client: Client, train_set: lgb.Dataset, params: dict[str, Any], rounds: int
) -> tuple[lgb.Booster, int]:
    """``rounds`` rounds of ``DaskLGBMClassifier`` on the training matrix, one row block per
    worker; the booster (every round) and how many workers held rows."""
    from lightgbm.dask import DaskLGBMClassifier

    matrix = np.asarray(train_set.data, dtype=np.float64)
    label = np.asarray(train_set.label)
    weight = None if train_set.weight is None else np.asarray(train_set.weight)
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise Unavailable("the Dask cluster has no workers")
    blocks = _partitions(client, workers, matrix, label, weight)
    # LightGBM's Dask interface sets each worker's threads (its Dask threads) and the machines.
    cluster_params = {k: v for k, v in params.items() if k not in ("num_threads", "objective")}
    model = DaskLGBMClassifier(
        objective=params["objective"],
        n_estimators=rounds,
        tree_learner="data",
        client=client,
        **cluster_params,
    )
    # LightGBM prints its progress on stdout, which ``--json`` keeps for its answer; and its
    # Dask interface warns of every ``n_jobs``, which it replaces by each worker's threads.
    with redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(
            blocks["data"],
            blocks["label"],
            sample_weight=blocks.get("weight"),
            feature_name=list(train_set.feature_name),
            categorical_feature=list(train_set.categorical_feature),
        )
    return model.booster_, min(len(workers), len(label))


def _partitions(
    client: Client,
    workers: list[str],
    matrix: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray | None,
) -> dict[str, Any]:
    """Dask arrays of the matrix, labels and weights in one row block per worker (in declared
    order, the ``i``-th block on the ``i``-th worker by address), so each block's rows, labels
    and weights sit on the same worker and every worker boosts on a share."""
    import dask.array as da

    bounds = np.linspace(0, len(label), num=min(len(workers), len(label)) + 1).round()
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    columns: dict[str, np.ndarray] = {"data": matrix, "label": label}
    if weight is not None:
        columns["weight"] = weight
    out: dict[str, Any] = {}
    for name, values in columns.items():
        parts = []
        for (start, end), worker in zip(spans, workers, strict=False):
            block = values[start:end]
            future = client.scatter(block, workers=[worker], broadcast=False)
            parts.append(da.from_delayed(future, shape=block.shape, dtype=block.dtype))
        out[name] = da.concatenate(parts, axis=0)
    return out


def validation_losses(booster: lgb.Booster, valid_set: lgb.Dataset) -> np.ndarray:
    """The validation window's binary log loss after each round, as LightGBM's ``binary_logloss``
    computes it (weighted mean, probabilities kept off 0 and 1)."""
    matrix = np.asarray(valid_set.data, dtype=np.float64)
    y = np.asarray(valid_set.label, dtype=np.float64)
    w = np.ones_like(y) if valid_set.weight is None else np.asarray(valid_set.weight, np.float64)
    raw = np.zeros(len(y))
    losses = np.empty(booster.num_trees())
    eps = 1e-15
    for i in range(len(losses)):
        raw += booster.predict(matrix, start_iteration=i, num_iteration=1, raw_score=True)
        p = np.clip(0.5 * (1.0 + np.tanh(0.5 * raw)), eps, 1.0 - eps)  # the sigmoid
        losses[i] = np.sum(w * -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))) / np.sum(w)
    return losses


def best_rounds(losses: np.ndarray, patience: int) -> int:
    """The rounds :func:`lightgbm.early_stopping` keeps given each round's validation loss:
    the best (lowest, the first on a tie) before ``patience`` rounds pass without a lower one."""
    best, best_loss = 0, float("inf")
    for i, loss in enumerate(losses.tolist()):
        if loss < best_loss:
            best, best_loss = i, loss
        elif i - best >= patience:
            break
    return best + 1
