"""Benchmark ``ceiling``: how much of each illicit pattern the model's features can reveal at all.

Centinela learns from inspection outcomes, which exist only where the legacy policy inspected,
and only where the inspection found what was there. This bench builds ``centinela train``'s
features, split, boosting parameters and seed for a simulated world, trains three LightGBM
models on them and ranks the window ``centinela evaluate`` measures (every shipment declared
after the validation window) by each:

* ``normal``: labelled by observed inspection outcomes, trained by ``train``'s own steps;
* ``full``: labelled by ``truth.parquet``'s ``illicit`` for every shipment of the training
  window, early stopping on the validation window's truth. No selection bias and every load's
  truth known: what it finds is a ceiling for these features, not a model anyone could train;
* ``full+carrier``: ``full`` plus the history of two columns the world has and the model does
  not read, ``carrier`` and ``conveyance_id`` (truck plate, vessel, flight): their volume and
  outcome history from the same bulk kernels as the parties' (:func:`features.build.bulk_history`).

It prints recall against truth at 0.5, 1, 2 and 5% of the window, overall and per pattern, and
for northbound concealment a breakdown of the window's loads by the party signals the simulator
gives them, recovered from the data: a new US consignee, a new MX exporter (its RFC's founding
date), a complicit broker (the simulator's seeded roster, replayed from the manifest) and a less
popular trucking company (the bottom half of carriers by land shipments).

Each model ranks by its booster's raw score, ties broken by the hash of ``shipment_id`` as every
evaluation ranking is (:func:`training.evaluation_metrics.ranking`). The calibration ``train``
fits is monotone in the raw score with a tie-break on it, so ``normal``'s ranking is the one
``centinela evaluate`` measures.

    .venv/bin/python -m bench.ceiling --data W [--seed 7] [--json PATH]

Not part of ``make bench``: a 300,000-shipment world takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from features.build import FeatureReference, bulk_history, feature_matrix, keyed_outcomes
from features.errors import CentinelaError, DataError
from features.history import outcome_names, volume_names
from features.schema import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.tables import Tables, load_tables, table_path
from features.watchlist import Watchlist, load_watchlist
from scoring.lgbm import lgb
from training.evaluate import join_truth
from training.evaluation_baselines import tiebreak_keys
from training.evaluation_metrics import budget_size, ranking
from training.evaluation_record import BUDGETS
from training.simulate.chunk import shipment_ids
from training.simulate.world import SIMULATOR_VERSION, plan_world

# The steps of ``centinela train``, so the split, the parameters and the fit are train's own.
from training.train import (
    TrainSettings,
    boosting_params,
    fit_booster,
    labelled_features,
    split_windows,
)

SHOWN_BUDGETS: Final[tuple[float, ...]] = BUDGETS[:4]
"""0.5, 1, 2 and 5% of the window, as issue 15 and docs/simulated-world.md quote them."""
BREAKDOWN_BUDGET: Final[float] = 0.02
MODELS: Final[tuple[str, ...]] = ("normal", "full", "full+carrier")
ALL: Final[str] = "all"
CONCEALMENT: Final[str] = "northbound_concealment"

NEW_CONSIGNEE_DAYS: Final[float] = 92.0
"""A consignee first seen less than this many days before the load (or never) is new: the
simulator reuses a shell for up to two months."""
NEW_SHIPPER_DAYS: Final[float] = 183.0
"""A Mexican shipper whose RFC says it was founded less than this many days before the load is
new: the simulator founds a new exporter zero to four months before the month of its load."""
SIGNALS: Final[tuple[str, ...]] = (
    "new_consignee",
    "new_shipper",
    "complicit_broker",
    "small_carrier",
)
# The extra entities of ``full+carrier``: each borrows a party's key column, so the bulk
# kernels compute its volume and outcome history exactly as they compute that party's.
EXTRA_ENTITIES: Final[dict[str, tuple[str, str]]] = {
    "carrier": ("shipper", "carrier"),
    "conveyance": ("consignee", "conveyance_id"),
}


@dataclass(frozen=True)
class Fitted:
    """A model's raw scores of the window's shipments and what it was fitted on."""

    scores: np.ndarray
    rounds: int
    train_rows: int
    train_positives: int


@dataclass(frozen=True)
class Frames:
    """Every shipment's features in declared order (``train``'s frame, with ``truth``,
    ``pattern`` and the extra entities' history), and where the windows start and end."""

    frame: pl.DataFrame
    train: slice
    valid: slice
    window: slice  # the evaluated window: declared after the validation window


# --------------------------------------------------------------------------- the measurement


def ceiling(data_dir: Path, *, seed: int = 7, watchlist: Watchlist | None = None) -> dict[str, Any]:
    """Train the three models on ``data_dir`` with ``train``'s ``seed`` and measure their
    recall against truth in the evaluated window; the result as JSON-ready data."""
    data_dir = Path(data_dir)
    if not table_path(data_dir, "truth").exists():
        raise DataError(
            f"{table_path(data_dir, 'truth')}: no ground truth; the ceiling needs a simulated "
            "world's truth table"
        )
    wl = watchlist or load_watchlist(None)
    tables = load_tables(data_dir)
    settings = TrainSettings()
    basics, outcomes, labels = labelled_features(tables, wl)
    reference, windows = split_windows(data_dir, basics, outcomes, labels, None)
    normal_params = boosting_params(
        windows.labelled["train"], seed=seed, balance=False, settings=settings
    )
    booster, _ = fit_booster(windows.labelled, normal_params, False, None, settings)
    extra = _extra_history(basics, tables, reference)
    frames = _frames(data_dir, windows.parts, extra)
    window = frames.frame[frames.window]
    if window.height == 0:
        raise DataError(f"{data_dir}: no shipments declared after the validation window")
    normal = Fitted(
        np.asarray(booster.predict(feature_matrix(window)), dtype=np.float64),
        booster.best_iteration,
        windows.labelled["train"].height,
        int(windows.labelled["train"]["label"].sum()),
    )
    # ``boosting_params`` reads the labels only to balance the classes, off as in ``train``'s
    # default, so the truth-labelled models take the same parameters.
    fitted = {
        "normal": normal,
        "full": _fit_truth(frames, FEATURE_NAMES, normal_params, settings),
        "full+carrier": _fit_truth(
            frames, (*FEATURE_NAMES, *extra.columns), normal_params, settings
        ),
    }
    scores = {name: f.scores for name, f in fitted.items()}
    orders = _orders(window, scores)
    return {
        "data": str(data_dir),
        "seed": seed,
        "window": _window_record(window),
        "models": {
            name: {
                "rounds": f.rounds,
                "trainRows": f.train_rows,
                "trainPositives": f.train_positives,
            }
            for name, f in fitted.items()
        },
        "extraFeatures": list(extra.columns),
        "recall": _recall(window, orders),
        "concealment": _concealment(data_dir, tables, window, orders),
    }


def _extra_history(
    basics: pl.DataFrame, tables: Tables, reference: FeatureReference
) -> pl.DataFrame:
    """Volume and outcome history of each :data:`EXTRA_ENTITIES` entity, one row per row of
    ``basics``: the party kernels run with the entity's column in the party's key column."""
    columns = tables.shipments.select(
        "shipment_id", *(column for _, column in EXTRA_ENTITIES.values())
    )
    keyed = basics.join(columns, on="shipment_id", how="left", maintain_order="left")
    keyed = keyed.with_columns(
        pl.col(column).alias(f"{party}_id") for party, column in EXTRA_ENTITIES.values()
    )
    history = bulk_history(keyed, keyed_outcomes(keyed, tables.inspections), reference)
    renamed = {
        name: name.replace(party, entity, 1)
        for entity, (party, _) in EXTRA_ENTITIES.items()
        for name in (*volume_names(party), *outcome_names(party))
    }
    return history.select(list(renamed)).rename(renamed)


def _frames(data_dir: Path, parts: Mapping[str, pl.DataFrame], extra: pl.DataFrame) -> Frames:
    """``train``'s windows as one frame in declared order, with truth and the extra history."""
    frame = pl.concat([parts["train"], parts["valid"], parts["test"]], how="vertical")
    frame = join_truth(frame, data_dir).hstack(extra)
    n_train, n_valid = parts["train"].height, parts["valid"].height
    # As evaluate takes it (training.evaluation_window.validation_end): declared after the
    # validation window's last shipment; the frame is in declared order.
    seen = int((parts["test"]["declared_at"] <= parts["valid"]["declared_at"].max()).sum())
    start = n_train + n_valid + seen
    return Frames(
        frame, slice(0, n_train), slice(n_train, n_train + n_valid), slice(start, frame.height)
    )


def _fit_truth(
    frames: Frames, names: Sequence[str], params: dict[str, Any], settings: TrainSettings
) -> Fitted:
    """A booster labelled by truth for every shipment of the training window, stopping early on
    the validation window's truth, with ``train``'s parameters and round rules."""
    frame = frames.frame

    def dataset(rows: slice, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            _matrix(frame[rows], names),
            label=frame[rows]["truth"].cast(pl.Int32).to_numpy(),
            feature_name=list(names),
            categorical_feature=list(CATEGORICAL_FEATURES),
            reference=reference,
            free_raw_data=False,
            params={"verbose": -1},
        )

    train_set = dataset(frames.train)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.max_rounds,
        valid_sets=[dataset(frames.valid, train_set)],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    window = frame[frames.window]
    return Fitted(
        np.asarray(booster.predict(_matrix(window, names)), dtype=np.float64),
        booster.best_iteration,
        frame[frames.train].height,
        int(frame[frames.train]["truth"].sum()),
    )


def _matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """``names`` of ``frame`` as float64, nulls as NaN (:func:`feature_matrix` for any names)."""
    return frame.select(names).to_numpy().astype(np.float64, copy=False)


def _orders(window: pl.DataFrame, scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each model's ranking of the window, first pick first, ties broken as evaluate does."""
    tie = tiebreak_keys(window["shipment_id"])
    return {
        name: ranking(pl.DataFrame({"risk_score": s, "tiebreak": tie}), "model")
        for name, s in scores.items()
    }


def _window_record(window: pl.DataFrame) -> dict[str, Any]:
    return {
        "start": str(window["declared_at"].min()),
        "end": str(window["declared_at"].max()),
        "shipments": window.height,
        "illicit": int(window["truth"].sum()),
    }


def _recall(window: pl.DataFrame, orders: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Found and recall of every model at every shown budget, for all illicit shipments and for
    each pattern: ``{group: {"positives", "budgets": {budget: {model: {found, recall}}}}}``."""
    truth = window["truth"].to_numpy().astype(np.bool_)
    pattern = window["pattern"].fill_null("").to_numpy()
    groups = {ALL: truth}
    groups |= {str(p): truth & (pattern == p) for p in sorted(set(pattern[truth]) - {""})}
    out: dict[str, Any] = {}
    for group, members in groups.items():
        positives = int(members.sum())
        budgets: dict[str, Any] = {}
        for share in SHOWN_BUDGETS:
            k = budget_size(share, window.height)
            budgets[str(share)] = {
                model: _found(int(members[order[:k]].sum()), positives)
                for model, order in orders.items()
            }
        out[group] = {"positives": positives, "budgets": budgets}
    return out


def _found(found: int, positives: int) -> dict[str, Any]:
    return {"found": found, "recall": found / positives if positives else None}


# --------------------------------------------------------------------------- concealment


def _concealment(
    data_dir: Path, tables: Tables, window: pl.DataFrame, orders: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The window's concealment loads with their party signals and each model's rank, and how
    many of each group every model finds at :data:`BREAKDOWN_BUDGET`."""
    k = budget_size(BREAKDOWN_BUDGET, window.height)
    rank = {model: np.empty(window.height, dtype=np.int64) for model in orders}
    for model, order in orders.items():
        rank[model][order] = np.arange(1, window.height + 1)
    complicit, drawn, note = _simulator_view(data_dir)
    small = _small_carriers(tables.shipments)
    parties = window.join(
        tables.shipments.select("shipment_id", "broker_id", "carrier"),
        on="shipment_id",
        how="left",
        maintain_order="left",
    )
    rows = np.flatnonzero((parties["pattern"] == CONCEALMENT).fill_null(False).to_numpy())
    loads = []
    for i in rows:
        row = parties.row(int(i), named=True)
        signals = _signals(row, complicit, small)
        loads.append(
            {
                "shipmentId": row["shipment_id"],
                "signals": signals,
                "drawn": drawn.get(row["shipment_id"]) if drawn is not None else None,
                "rank": {model: int(rank[model][i]) for model in orders},
                "found": {model: bool(rank[model][i] <= k) for model in orders},
            }
        )
    return {
        "budget": BREAKDOWN_BUDGET,
        "selected": k,
        "loads": loads,
        "groups": _groups(loads, list(orders)),
        "agreement": _agreement(loads) if drawn is not None else None,
        "note": note,
    }


def _signals(
    row: Mapping[str, Any], complicit: frozenset[str] | None, small: frozenset[str]
) -> dict[str, bool | None]:
    """A load's party signals, from what the data holds about it."""
    age = row["consignee_age_days"]
    founded = row["shipper_rfc_days_since_founding"]
    return {
        "new_consignee": age is None or bool(np.isnan(age)) or age < NEW_CONSIGNEE_DAYS,
        "new_shipper": founded is not None
        and not bool(np.isnan(founded))
        and founded < NEW_SHIPPER_DAYS,
        "complicit_broker": None if complicit is None else row["broker_id"] in complicit,
        "small_carrier": row["carrier"] in small,
    }


def _small_carriers(shipments: pl.DataFrame) -> frozenset[str]:
    """The less popular half of the trucking companies: carriers of land shipments ranked by how
    many they carry (ties by name), the bottom half of the ranking."""
    counts = (
        shipments.filter(pl.col("mode") == "land")
        .group_by("carrier")
        .len()
        .sort(["len", "carrier"], descending=[True, False])
    )
    return frozenset(counts["carrier"].slice(counts.height // 2).drop_nulls().to_list())


def _simulator_view(
    data_dir: Path,
) -> tuple[frozenset[str] | None, dict[str, dict[str, bool]] | None, str]:
    """The complicit brokers' ids and each concealment load's draws (shell consignee, new
    exporter, less popular carrier, complicit broker), from the simulator's plan replayed with
    the manifest's parameters; ``None`` and why when the world cannot be replayed."""
    manifest_path = data_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        params = manifest["parameters"]
        version = manifest["simulator_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, None, f"{manifest_path}: no simulator parameters to replay ({exc})"
    if version != SIMULATOR_VERSION:
        return (
            None,
            None,
            (
                f"{manifest_path}: simulator {version}, this code is {SIMULATOR_VERSION}; "
                "the roster cannot be replayed"
            ),
        )
    plan = plan_world(
        int(params["shipments"]),
        int(params["months"]),
        date.fromisoformat(str(params["start"])),
        int(params["seed"]),
        float(params.get("illicit_scale", 1.0)),
    )
    roster = plan.static.roster
    complicit = frozenset(roster.broker_ids[int(i)] for i in roster.complicit_brokers)
    events = [e for e in plan.events if e.pattern == CONCEALMENT]
    rows = pl.DataFrame({"row": [e.row for e in events]}, schema={"row": pl.Int64})
    ids = rows.select(shipment_ids(pl.col("row"))).to_series()
    drawn = {
        str(sid): {
            "new_consignee": e.consignee is not None,
            "new_shipper": e.shipper is not None,
            "complicit_broker": e.broker is not None,
            "small_carrier": e.truck_carrier is not None,
        }
        for sid, e in zip(ids.to_list(), events, strict=True)
    }
    return complicit, drawn, f"roster and draws replayed from {manifest_path}"


def _groups(loads: Sequence[Mapping[str, Any]], models: Sequence[str]) -> list[dict[str, Any]]:
    """The loads grouped by each signal (with, without) and by how many signals they carry; per
    group how many there are and how many each model finds."""
    groups: list[tuple[str, list[Mapping[str, Any]]]] = [("all", list(loads))]
    for signal in SIGNALS:
        for value, word in ((True, "with"), (False, "without")):
            members = [load for load in loads if load["signals"][signal] is value]
            groups.append((f"{word} {signal}", members))
    for count in range(len(SIGNALS) + 1):
        members = [
            load for load in loads if sum(bool(v) for v in load["signals"].values()) == count
        ]
        groups.append((f"{count} signal{'' if count == 1 else 's'}", members))
    return [
        {
            "group": name,
            "loads": len(members),
            "found": {m: sum(load["found"][m] for load in members) for m in models},
        }
        for name, members in groups
    ]


def _agreement(loads: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per signal, how many loads the data and the simulator's draws both flag, and how many
    only one of them does (a load can carry a signal it was not drawn for: an established
    buyer that happens to be new, a licit broker that happens to be complicit)."""
    out = {}
    for signal in SIGNALS:
        pairs = [(load["signals"][signal], (load["drawn"] or {}).get(signal)) for load in loads]
        out[signal] = {
            "both": sum(1 for s, d in pairs if s and d),
            "dataOnly": sum(1 for s, d in pairs if s and not d),
            "drawnOnly": sum(1 for s, d in pairs if d and not s),
        }
    return out


# --------------------------------------------------------------------------- report


def report(result: Mapping[str, Any]) -> str:
    """The result as plain-text tables."""
    window = result["window"]
    lines = [
        f"{result['data']}, training seed {result['seed']}: {window['shipments']:,} shipments "
        f"declared {window['start'][:10]} to {window['end'][:10]}, {window['illicit']} illicit",
        "models: "
        + "; ".join(
            f"{name} {m['rounds']} rounds on {m['trainRows']:,} rows "
            f"({m['trainPositives']} positive)"
            for name, m in result["models"].items()
        ),
    ]
    recall = result["recall"]
    for share in SHOWN_BUDGETS:
        lines += ["", f"recall against truth at {share:.1%} of the window"]
        lines.append(
            f"{'pattern':<26}{'illicit':>8}{'normal':>14}{'full':>14}{'full/normal':>13}"
            f"{'full+carrier':>14}"
        )
        for group, table in recall.items():
            cells = table["budgets"][str(share)]
            lines.append(
                f"{group:<26}{table['positives']:>8}"
                + _cell(cells["normal"])
                + _cell(cells["full"])
                + f"{_ratio(cells['full']['found'], cells['normal']['found']):>13}"
                + _cell(cells["full+carrier"])
            )
    lines += _concealment_lines(result["concealment"])
    return "\n".join(lines)


def _concealment_lines(concealment: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        f"{CONCEALMENT}: found at {concealment['budget']:.0%} "
        f"({concealment['selected']:,} picks), by party signal",
        f"{'group':<28}{'loads':>6}{'normal':>8}{'full':>8}{'full+carrier':>14}",
    ]
    for group in concealment["groups"]:
        found = group["found"]
        lines.append(
            f"{group['group']:<28}{group['loads']:>6}{found['normal']:>8}{found['full']:>8}"
            f"{found['full+carrier']:>14}"
        )
    agreement = concealment["agreement"]
    if agreement is not None:
        lines.append(
            "data vs simulator draws (both / data only / drawn only): "
            + "; ".join(
                f"{s} {a['both']}/{a['dataOnly']}/{a['drawnOnly']}" for s, a in agreement.items()
            )
        )
    lines.append(concealment["note"])
    return lines


def _cell(cell: Mapping[str, Any]) -> str:
    recall = cell["recall"]
    text = f"{cell['found']} ({recall:.1%})" if recall is not None else "-"
    return f"{text:>14}"


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}x" if b else ("-" if a == 0 else "inf")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a simulated world's directory")
    parser.add_argument("--seed", type=int, default=7, help="LightGBM seed (train's default: 7)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    try:
        result = ceiling(args.data, seed=args.seed)
    except CentinelaError as exc:
        sys.exit(f"error: {exc}")
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
