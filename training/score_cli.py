"""``centinela score``: decisions for a whole table of shipments, offline.

The same decision code as the server (model, hard rules, lane budgets, exploration, reasons);
each shipment's entity history is what the input tables hold before it was declared. The
tables are read, scored and written a chunk at a time (``--chunk``), so memory does not grow
with the table; a progress bar shows shipments per second as it goes.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import typer

from features.errors import DataError
from features.tables import stream_tables
from features.watchlist import load_watchlist
from scoring.bulk import first_pass
from scoring.heap import settle_heap
from scoring.lane_process import LaneColumns
from scoring.lanes import LANES, LaneDecision
from scoring.reasons import Reason
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scored, Scorer
from scoring.verdicts import LOW_RISK_ONLY, Decided
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


_LANE_NAMES = np.array([lane.upper() for lane in LANES], dtype=object)  # by LaneColumns.lane


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
    """The output table of decision records (:meth:`Scorer.score_tables`), as :func:`_frame`."""
    return _frame(
        Decided(
            shipment_id=[s.shipment_id for s in scored],
            port_of_entry=[s.port_of_entry for s in scored],
            risk_score=np.array([s.risk_score for s in scored], dtype=np.float64),
            decisions=LaneColumns.of(
                [
                    LaneDecision(s.lane, s.random_selection, s.propensity, *s.thresholds)
                    for s in scored
                ]
            ),
            rules_fired={row: s.rules_fired for row, s in enumerate(scored) if s.rules_fired},
            watchlist_hits={
                row: s.watchlist_hits for row, s in enumerate(scored) if s.watchlist_hits
            },
            reasons={row: s.reasons for row, s in enumerate(scored)},
        ),
        scorer,
    )


def _frame(decided: Decided, scorer: Scorer) -> pl.DataFrame:
    """The output table of a batch's decisions, a column at a time: the first three reasons in
    each language, a watchlist entry once however many lines it was identified on. Rows without
    a rule fired, a hit or other reasons than the low-risk one take the shared values."""
    n = len(decided)
    lanes = decided.decisions
    rules = [""] * n
    for row, fired in decided.rules_fired.items():
        rules[row] = ";".join(fired)
    entries = [""] * n
    for row, hits in decided.watchlist_hits.items():
        entries[row] = ";".join(dict.fromkeys(h.entry_id for h in hits))
    low_es, low_en = _messages(LOW_RISK_ONLY)
    reasons_es, reasons_en = [low_es] * n, [low_en] * n
    for row, reasons in decided.reasons.items():
        reasons_es[row], reasons_en[row] = _messages(reasons)
    return pl.DataFrame(
        {
            "shipment_id": decided.shipment_id,
            "port_of_entry": decided.port_of_entry,
            "risk_score": decided.risk_score,
            "lane": _LANE_NAMES[lanes.lane],
            "random_selection": lanes.random_selection,
            "propensity": lanes.propensity,
            "rules_fired": rules,
            "watchlist_entries": entries,
            "reasons_es": reasons_es,
            "reasons_en": reasons_en,
            "model_version": [scorer.model_version] * n,
            "watchlist_version": [scorer.watchlist_version] * n,
            "rules_version": [scorer.rules_version] * n,
        },
        schema=OUTPUT_SCHEMA,
    )


def _messages(reasons: tuple[Reason, ...]) -> tuple[str, str]:
    """The first three reasons, joined, in Spanish and in English."""
    head = reasons[:3]
    return " | ".join([r.message_es for r in head]), " | ".join([r.message_en for r in head])


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


def _write(
    decisions: Iterator[Decided], scorer: Scorer, output: _Output, pool: ThreadPoolExecutor
) -> Iterator[int]:
    """Write each batch of ``decisions`` in ``pool``'s thread while the next one is decided
    (Arrow and Parquet work outside the GIL); yields the rows decided so far. Every write has
    ended when this returns or raises."""
    rows = 0
    writing: Future[None] | None = None
    try:
        for decided in decisions:
            frame = _frame(decided, scorer)
            if writing is not None:
                writing.result()
            writing = pool.submit(output.write, frame)
            rows += frame.height
            yield rows
    finally:
        if writing is not None:
            writing.result()


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
        watchlist = load_watchlist(settings.watchlist_file)
        rules = load_rules(settings.rules_file, watchlist)
        started = time.perf_counter()
        settle_heap()
        with (
            tempfile.TemporaryDirectory(prefix="centinela-score-") as work,
            ThreadPoolExecutor(1) as pool,
        ):
            # The bundle is loaded (and its reference rows scored in a child process) while the
            # first pass, which needs no model, reads the tables.
            loading = pool.submit(Registry(registry).load, model)
            stream = stream_tables(data, Path(work), chunk_rows=chunk)
            if stream.folded.total:
                console.print(stream.folded.summary(), style="yellow")
            first = first_pass(stream, watchlist, keep=Path(work) / "first-pass")
            bundle = loading.result()
            scorer = Scorer.create(bundle, watchlist, rules, settings)
            settle_heap()
            decisions = scorer.decide_stream(stream, first)
            del first  # decide_stream frees the keys after computing history
            output = _Output(out)
            try:
                with progress_bar("scoring", "{task.fields[rate]}") as progress:
                    task = progress.add_task("score", total=stream.total, rate="")
                    for rows in _write(decisions, scorer, output, pool):
                        rate = rows / (time.perf_counter() - started)
                        progress.update(task, completed=rows, rate=f"{rate:,.0f}/s")
            finally:
                output.close()
        elapsed = time.perf_counter() - started
        summary = ", ".join(f"{lane} {n:,}" for lane, n in sorted(output.lanes.items()))
        console.print(
            f"{output.rows:,} decisions by model {bundle.version} → {out} ({summary}) "
            f"in {elapsed:.1f} s: {output.rows / max(elapsed, 1e-9):,.0f} shipments/s"
        )

    run(body)
