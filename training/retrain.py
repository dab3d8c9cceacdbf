"""Retraining from the ledger: the historical tables plus what the service decided and what
inspectors found since, as one training set (issue 17's feedback loop).

:func:`ledger_tables` writes the canonical tables of ``DATA`` followed by the ledger's export
(:func:`scoring.ledger.export`: one shipment per shipment id, each outcome at its latest
version, the propensity of the decision it was reported against as the inspection's selection
probability). A shipment id in both is one shipment, the ledger's row winning
(:func:`features.tables.fold_tables` keeps the last). Shipments nobody inspected carry no label
and count in the parties' history only, as in any training set. :func:`retrain` trains on them
and registers the bundle unpromoted: a challenger waits for ``centinela models compare``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.tables import scan_table, table_path
from features.watchlist import Watchlist
from scoring.ledger import ExportResult, export, open_store
from scoring.ledger.contents import LedgerContents, read_contents
from training.model_card import PROVENANCE_FILE, carded_registry, write_card
from training.train import TrainResult, train
from training.train_settings import DateSplit, TrainSettings

EXPORT_DIR = "ledger-export"
"""Where :func:`ledger_tables` puts the ledger's own export, inside its ``out_dir``."""
CANONICAL = ("shipments", "goods", "inspections")
"""The tables a training set is made of (never ``truth``)."""


@dataclass(frozen=True, slots=True)
class LedgerTables:
    """What :func:`ledger_tables` wrote: the historical rows and the ledger's, per table."""

    out_dir: Path
    history: dict[str, int]
    ledger: ExportResult
    contents: LedgerContents  # the ledger as read, for a caller that needs more of it

    def to_json(self) -> dict[str, object]:
        return {
            "history": self.history,
            "ledger": {
                "shipments": self.ledger.shipments,
                "goods": self.ledger.goods,
                "inspections": self.ledger.inspections,
                "folded": self.ledger.folded,
            },
        }


@dataclass(frozen=True, slots=True)
class RetrainResult:
    trained: TrainResult
    tables: LedgerTables


def ledger_tables(data_dir: Path, ledger: str | Path, out_dir: Path) -> LedgerTables:
    """The canonical tables of ``data_dir`` followed by the ledger's, written to ``out_dir``.

    A data directory or ledger that cannot be read is the error its reader raises (a
    :class:`~features.errors.DataError` naming the file, a ledger error naming the location).
    """
    out_dir = Path(out_dir)
    exported_dir = out_dir / EXPORT_DIR
    contents = read_contents(ledger)
    exported = export(ledger, exported_dir, contents)
    history: dict[str, int] = {}
    for table in CANONICAL:
        old = scan_table(data_dir, table).collect()
        new = scan_table(exported_dir, table).collect()
        history[table] = old.height
        pl.concat([old, new], how="vertical").write_parquet(table_path(out_dir, table))
    return LedgerTables(out_dir, history, exported, contents)


def retrain(
    data_dir: Path,
    ledger: str | Path,
    registry_dir: Path,
    *,
    seed: int = 7,
    watchlist: Watchlist | None = None,
    propensity_weights: bool = False,
    settings: TrainSettings | None = None,
    split: DateSplit | None = None,
    on_round: Callable[[int, int], None] | None = None,
    workdir: Path | None = None,
) -> RetrainResult:
    """Train a challenger on ``data_dir`` plus the ledger and register it, never promoted.

    The merged tables are written under ``workdir`` (kept, for inspection) or a temporary
    directory removed afterwards; the bundle records their fingerprint like any other, and
    :data:`PROVENANCE_FILE` says where they came from (the ledger named without a password)."""
    with tempfile.TemporaryDirectory(prefix="centinela-retrain-") as scratch:
        tables = ledger_tables(data_dir, ledger, Path(workdir or scratch))
        trained = train(
            tables.out_dir,
            registry_dir,
            seed=seed,
            promote=False,
            watchlist=watchlist,
            propensity_weights=propensity_weights,
            settings=settings,
            split=split,
            on_round=on_round,
        )
    provenance = {
        "source": "centinela retrain",
        "data": str(Path(data_dir).resolve()),
        "ledger_location": open_store(ledger).location,
        **tables.to_json(),
    }
    registry = carded_registry(registry_dir)
    registry.write_file(trained.version, PROVENANCE_FILE, json.dumps(provenance, indent=2))
    write_card(registry, trained.version)  # the card written at training had no provenance
    return RetrainResult(trained, tables)
