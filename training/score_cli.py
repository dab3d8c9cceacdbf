"""``centinela score``: decisions for a whole table of shipments, offline.

The same decision code as the server (model, hard rules, lane budgets, exploration, reasons);
each shipment's entity history is what the input tables hold before it was declared. The
tables are read, scored and written a chunk at a time (``--chunk``), so memory does not grow
with the table; a progress bar shows shipments per second as it goes.
"""

from __future__ import annotations

import gc
import tempfile
import time
from operator import attrgetter
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow.parquet as pq
import typer

from features.errors import DataError
from features.tables import stream_tables
from features.watchlist import load_watchlist
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scored, Scorer
from training.cli_common import REGISTRY_OPTION, console, progress_bar, read_settings, run

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
    """The output table of ``scored``, a column at a time: the first three reasons in each
    language, a watchlist entry once however many lines it was identified on."""
    heads = [s.reasons[:3] for s in scored]
    n = len(scored)
    return pl.DataFrame(
        {
            "shipment_id": list(map(attrgetter("shipment_id"), scored)),
            "port_of_entry": list(map(attrgetter("port_of_entry"), scored)),
            "risk_score": list(map(attrgetter("risk_score"), scored)),
            "lane": [s.lane.upper() for s in scored],
            "random_selection": list(map(attrgetter("random_selection"), scored)),
            "propensity": list(map(attrgetter("propensity"), scored)),
            "rules_fired": list(map(";".join, map(attrgetter("rules_fired"), scored))),
            "watchlist_entries": [
                ";".join(dict.fromkeys(h.entry_id for h in s.watchlist_hits))
                if s.watchlist_hits
                else ""
                for s in scored
            ],
            "reasons_es": [" | ".join([r.message_es for r in head]) for head in heads],
            "reasons_en": [" | ".join([r.message_en for r in head]) for head in heads],
            "model_version": [scorer.model_version] * n,
            "watchlist_version": [scorer.watchlist_version] * n,
            "rules_version": [scorer.rules_version] * n,
        },
        schema=OUTPUT_SCHEMA,
    )


GC_THRESHOLDS = (100_000, 50, 100)
"""Bulk scoring allocates millions of short-lived records over a large long-lived heap (the
table's keys and history): with Python's default thresholds (700, 10, 10) the cyclic
collector ran so often that it took a fifth of the run (200,000 shipments: 11,358/s with the
defaults, 14,919/s with these, the same with collection off)."""


def _collect_less_often() -> None:
    """This process only scores: what is loaded stays, and collections come less often."""
    gc.collect()
    gc.freeze()  # the model, watchlist and rules: never garbage, never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


class _Output:
    """Decisions written as they come, chunk by chunk: Parquet row groups, CSV or JSON lines."""

    def __init__(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.rows = 0
        self.lanes: dict[str, int] = {}
        self._parquet: pq.ParquetWriter | None = None
        self._file: IO[bytes] | None = None

    def write(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        for lane, n in frame["lane"].value_counts().iter_rows():
            self.lanes[lane] = self.lanes.get(lane, 0) + n
        if self.out.suffix == ".parquet":
            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.out, table.schema)
            self._parquet.write_table(table)
            return
        if self._file is None:
            self._file = self.out.open("wb")
            if self.out.suffix == ".csv":
                frame.write_csv(self._file)
                return
        if self.out.suffix == ".csv":
            frame.write_csv(self._file, include_header=False)
        else:
            frame.write_ndjson(self._file)

    def close(self) -> None:
        if self.rows == 0:  # an empty input still gives a file with the columns
            self.write(pl.DataFrame(schema=OUTPUT_SCHEMA))
        if self._parquet is not None:
            self._parquet.close()
        if self._file is not None:
            self._file.close()


def score(
    in_path: Path = typer.Option(
        ..., "--in", help="Directory of canonical tables, or its shipments.parquet."
    ),
    out: Path = typer.Option(..., "--out", help="Output file: .parquet, .csv or .jsonl."),
    model: str | None = typer.Option(None, "--model", help="Bundle version (default: promoted)."),
    registry: Path = REGISTRY_OPTION,
    config: Path | None = typer.Option(
        None, "--config", help="Settings file for lane budgets, rules and watchlist files."
    ),
    chunk: int = typer.Option(
        50_000, "--chunk", min=1, help="Shipments read, scored and written at a time."
    ),
) -> None:
    """Decide a lane for every shipment of a table, as the server would."""

    def body() -> None:
        if out.suffix not in (".parquet", ".csv", ".jsonl"):
            raise DataError(f"--out {out}: the file must end in .parquet, .csv or .jsonl")
        settings = read_settings(config)
        data = _input_dir(in_path)
        bundle = Registry(registry).load(model)
        watchlist = load_watchlist(settings.watchlist_file)
        scorer = Scorer.create(
            bundle, watchlist, load_rules(settings.rules_file, watchlist), settings
        )
        started = time.perf_counter()
        _collect_less_often()
        with tempfile.TemporaryDirectory(prefix="centinela-score-") as work:
            stream = stream_tables(data, Path(work), chunk_rows=chunk)
            if stream.folded.total:
                console.print(stream.folded.summary(), style="yellow")
            output = _Output(out)
            try:
                with progress_bar("scoring", "{task.fields[rate]}") as progress:
                    task = progress.add_task("score", total=stream.total, rate="")
                    for scored in scorer.score_stream(stream):
                        output.write(_rows(scored, scorer))
                        rate = output.rows / (time.perf_counter() - started)
                        progress.update(task, completed=output.rows, rate=f"{rate:,.0f}/s")
            finally:
                output.close()
        elapsed = time.perf_counter() - started
        summary = ", ".join(f"{lane} {n:,}" for lane, n in sorted(output.lanes.items()))
        console.print(
            f"{output.rows:,} decisions by model {bundle.version} → {out} ({summary}) "
            f"in {elapsed:.1f} s: {output.rows / max(elapsed, 1e-9):,.0f} shipments/s"
        )

    run(body)
