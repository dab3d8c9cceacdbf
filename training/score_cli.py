"""``centinela score``: decisions for a whole table of shipments, offline.

The same decision code as the server (model, hard rules, lane budgets, exploration, reasons);
each shipment's entity history is what the input tables hold before it was declared.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from features.errors import DataError
from features.tables import load_tables
from features.watchlist import load_watchlist
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scored, Scorer
from scoring.settings import load_settings
from training.cli_common import console, run

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "port_of_entry": pl.String(),
    "risk_score": pl.Float64(),
    "lane": pl.String(),
    "random_selection": pl.Boolean(),
    "propensity": pl.Float64(),
    "rules_fired": pl.String(),
    "watchlist_entries": pl.String(),
    "reasons_es": pl.String(),
    "reasons_en": pl.String(),
    "model_version": pl.String(),
    "watchlist_version": pl.String(),
    "rules_version": pl.String(),
}


def _input_dir(path: Path) -> Path:
    """A directory of canonical tables, or a shipments Parquet file inside one."""
    if path.is_dir():
        return path
    if path.name == "shipments.parquet" and path.exists():
        return path.parent
    raise DataError(
        f"{path}: expected a directory of canonical tables or its shipments.parquet "
        "(goods.parquet beside it; inspections.parquet optional)"
    )


def _rows(scored: list[Scored], scorer: Scorer) -> pl.DataFrame:
    def joined(texts: list[str]) -> str:
        return " | ".join(texts[:3])

    return pl.DataFrame(
        {
            "shipment_id": [s.shipment_id for s in scored],
            "port_of_entry": [s.port_of_entry for s in scored],
            "risk_score": [s.risk_score for s in scored],
            "lane": [s.lane.upper() for s in scored],
            "random_selection": [s.random_selection for s in scored],
            "propensity": [s.propensity for s in scored],
            "rules_fired": [";".join(s.rules_fired) for s in scored],
            "watchlist_entries": [
                ";".join(dict.fromkeys(h.entry_id for h in s.watchlist_hits)) for s in scored
            ],
            "reasons_es": [joined([r.message_es for r in s.reasons]) for s in scored],
            "reasons_en": [joined([r.message_en for r in s.reasons]) for s in scored],
            "model_version": [scorer.model_version] * len(scored),
            "watchlist_version": [scorer.watchlist_version] * len(scored),
            "rules_version": [scorer.rules_version] * len(scored),
        },
        schema=OUTPUT_SCHEMA,
    )


def score(
    in_path: Path = typer.Option(
        ..., "--in", help="Directory of canonical tables, or its shipments.parquet."
    ),
    out: Path = typer.Option(..., "--out", help="Output file: .parquet, .csv or .jsonl."),
    model: str | None = typer.Option(None, "--model", help="Bundle version (default: promoted)."),
    registry: Path = typer.Option(
        Path("var/registry"), "--registry", help="Model registry directory."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Settings file for lane budgets, rules and watchlist files."
    ),
) -> None:
    """Decide a lane for every shipment of a table, as the server would."""

    def body() -> None:
        if out.suffix not in (".parquet", ".csv", ".jsonl"):
            raise DataError(f"--out {out}: the file must end in .parquet, .csv or .jsonl")
        settings = load_settings(config)
        data = _input_dir(in_path)
        bundle = Registry(registry).load(model)
        watchlist = load_watchlist(settings.watchlist_file)
        scorer = Scorer.create(
            bundle, watchlist, load_rules(settings.rules_file, watchlist), settings
        )
        tables = load_tables(data, need_inspections=False)
        if tables.folded.total:
            console.print(
                f"folded {tables.folded.shipments:,} repeated shipment rows (last kept)",
                style="yellow",
            )
        shipments = tables.shipments.sort("declared_at", "shipment_id")
        goods, inspections = tables.goods, tables.inspections
        with console.status(f"scoring {shipments.height:,} shipments"):
            frame = _rows(scorer.score_tables(shipments, goods, inspections), scorer)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".parquet":
            frame.write_parquet(out)
        elif out.suffix == ".csv":
            frame.write_csv(out)
        else:
            frame.write_ndjson(out)
        lanes = frame["lane"].value_counts().sort("lane")
        summary = ", ".join(f"{lane} {n:,}" for lane, n in lanes.iter_rows())
        console.print(f"{frame.height:,} decisions by model {bundle.version} → {out} ({summary})")

    run(body)
