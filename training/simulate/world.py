"""Generate the world chunk by chunk and write the four canonical tables and a manifest.

The skeleton, the roster and the illicit events are planned for the whole window first
(:func:`plan_world`); then each chunk of ``CHUNK_ROWS`` consecutive shipments is generated with
its own seeded generator (:func:`training.simulate.chunk.generate_chunk`), vectorised over numpy
arrays and polars gathers from small pools, and appended to one Parquet file per table. Chunk
boundaries depend only on the row count, so the files depend only on the parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import FieldViolation, InvalidInput
from features.tables import TABLES, table_path
from training.simulate import reference
from training.simulate.chunk import Chunk, generate_chunk
from training.simulate.entities import build_roster
from training.simulate.illicit import Event, TimeRules
from training.simulate.planner import plan_events
from training.simulate.skeleton import PORTS, Skeleton, build_skeleton
from training.simulate.static import Static

SIMULATOR_VERSION = "1.2.0"
CHUNK_ROWS = 100_000
# Past about 40x the sourced rates the illicit events no longer fit on the shipments of a month.
MAX_ILLICIT_SCALE = 40.0
WRITE_OPTIONS: Mapping[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_world` wrote."""

    out_dir: Path
    paths: Mapping[str, Path]
    rows: Mapping[str, int]
    illicit: int
    inspected: int
    manifest: Path


@dataclass(frozen=True)
class WorldPlan:
    """Everything decided for the whole window before the first chunk is generated."""

    skeleton: Skeleton
    static: Static
    rules: TimeRules
    events: list[Event]
    chunk_seeds: list[np.random.SeedSequence]


@dataclass
class Counts:
    """Rows written per table, and the illicit, inspected and positive shipments among them."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    illicit: int = 0
    inspected: int = 0
    positives: int = 0

    def add(self, chunk: Chunk) -> None:
        """Count one more chunk."""
        for table in TABLES:
            self.rows[table] += getattr(chunk, table).height
        self.illicit += int(chunk.truth["illicit"].sum())
        self.inspected += chunk.inspections.height
        self.positives += int(chunk.inspections["positive"].sum())


def validate_parameters(shipments: int, months: int, illicit_scale: float = 1.0) -> None:
    """Raise :class:`InvalidInput` naming each parameter below 1 (``illicit_scale``: outside
    (0, :data:`MAX_ILLICIT_SCALE`])."""
    violations = []
    if not 0 < illicit_scale <= MAX_ILLICIT_SCALE:  # also False for NaN
        violations.append(
            FieldViolation(
                "illicit_scale",
                f"must be above 0 and at most {MAX_ILLICIT_SCALE:g}, got {illicit_scale}",
            )
        )
    if shipments < 1:
        violations.append(FieldViolation("shipments", f"must be at least 1, got {shipments}"))
    if months < 1:
        violations.append(FieldViolation("months", f"must be at least 1, got {months}"))
    if violations:
        raise InvalidInput("invalid simulation parameters", violations)


def tactic_shifts(rules: TimeRules) -> list[dict[str, str]]:
    """The dated changes of tactics inside the window, for evaluation before and after them.

    Each is dated by the first day the world's behaviour changes: the scheduling by the first
    month starting on or after it took force (the planner's unit), the others by their month."""
    first, end = rules.month_starts[0], rules.month_starts[-1]
    scheduled = [m for m in range(rules.months) if rules.scheduled(m)]
    candidates = [
        (
            f"4-piperidone scheduled in Table I (in force {reference.SCHEDULING_4_PIPERIDONE}); "
            "designer substitutes rise",
            rules.month_starts[scheduled[0]] if scheduled else end,
        ),
        ("Manzanillo inspections intensify", rules.month_starts[rules.enforcement_month]),
        (
            "illicit sea traffic displaced to Lazaro Cardenas",
            rules.month_starts[rules.displacement_month],
        ),
    ]
    return [
        {"name": name, "date": when.isoformat()}
        for name, when in sorted(candidates, key=lambda c: c[1])
        if first < when < end
    ]


def plan_world(
    shipments: int, months: int, start: date, seed: int, illicit_scale: float = 1.0
) -> WorldPlan:
    """The skeleton, the parties and the illicit events, each from its own child of ``seed``."""
    seeds = np.random.SeedSequence(seed)
    plan_seed, roster_seed, static_seed, chunk_seed = seeds.spawn(4)
    skeleton = build_skeleton(np.random.default_rng(plan_seed), shipments, months, start)
    roster = build_roster(np.random.default_rng(roster_seed), shipments, months, PORTS, start)
    static = Static(np.random.default_rng(static_seed), roster)
    rules = TimeRules.for_window(skeleton.month_starts)
    events = plan_events(
        np.random.default_rng(plan_seed.spawn(1)[0]), skeleton, roster, rules, illicit_scale
    )
    static.freeze()
    chunk_seeds = chunk_seed.spawn((shipments + CHUNK_ROWS - 1) // CHUNK_ROWS)
    return WorldPlan(skeleton, static, rules, events, chunk_seeds)


def simulate_world(
    out_dir: Path,
    *,
    shipments: int = 20_000,
    months: int = 24,
    start: date = date(2024, 1, 1),
    seed: int = 7,
    progress: bool = True,
    on_chunk: Progress | None = None,
    illicit_scale: float = 1.0,
) -> SimulationSummary:
    """Simulate ``months`` months of inbound cargo from ``start`` and write the four tables.

    The same arguments always give byte-identical files. ``on_chunk(done, total)`` is called
    after each chunk (shipments done so far); with ``progress`` and no callback a rich progress
    bar is shown on stderr instead. ``illicit_scale`` multiplies the rate of every smuggling
    pattern (1: the sourced rates of docs/simulated-world.md); a denser world gives a test or
    an experiment enough positives from few shipments, and is marked so in its manifest.
    """
    validate_parameters(shipments, months, illicit_scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_world(shipments, months, start, seed, illicit_scale)
    paths = {table: table_path(out_dir, table) for table in TABLES}
    bar = None
    if on_chunk is None and progress:
        from training.simulate.progress import chunk_progress

        bar = chunk_progress(shipments)
        on_chunk = bar.update
    try:
        counts = write_chunks(plan, paths, on_chunk)
    finally:
        if bar is not None:
            bar.close()
    parameters = {
        "shipments": shipments,
        "months": months,
        "start": start.isoformat(),
        "seed": seed,
        "chunk_rows": CHUNK_ROWS,
        "enforcement_month": plan.rules.enforcement_month,
        "displacement_month": plan.rules.displacement_month,
    }
    if illicit_scale != 1.0:  # worlds at the sourced rates keep the manifest they always had
        parameters["illicit_scale"] = illicit_scale
    manifest = write_manifest(out_dir, parameters, tactic_shifts(plan.rules), counts, paths)
    return SimulationSummary(
        out_dir=out_dir,
        paths=paths,
        rows=counts.rows,
        illicit=counts.illicit,
        inspected=counts.inspected,
        manifest=manifest,
    )


def write_chunks(plan: WorldPlan, paths: Mapping[str, Path], on_chunk: Progress | None) -> Counts:
    """Generate every chunk in row order and append its tables to the Parquet files."""
    shipments = plan.skeleton.size
    event_rows = np.array([e.row for e in plan.events], dtype=np.int64)
    writers = {
        table: pq.ParquetWriter(paths[table], _arrow_schema(table), **WRITE_OPTIONS)
        for table in TABLES
    }
    counts = Counts()
    try:
        for index, lo in enumerate(range(0, shipments, CHUNK_ROWS)):
            hi = min(shipments, lo + CHUNK_ROWS)
            a, b = np.searchsorted(event_rows, [lo, hi])
            chunk = generate_chunk(
                np.random.default_rng(plan.chunk_seeds[index]),
                plan.static,
                plan.skeleton,
                plan.rules,
                lo,
                hi,
                plan.events[int(a) : int(b)],
            )
            for table in TABLES:
                frame: pl.DataFrame = getattr(chunk, table)
                if frame.height:
                    writers[table].write_table(
                        frame.to_arrow().cast(_arrow_schema(table)), row_group_size=CHUNK_ROWS * 8
                    )
            counts.add(chunk)
            if on_chunk is not None:
                on_chunk(hi, shipments)
    finally:
        for writer in writers.values():
            writer.close()
    return counts


def write_manifest(
    out_dir: Path,
    parameters: Mapping[str, object],
    shifts: list[dict[str, str]],
    counts: Counts,
    paths: Mapping[str, Path],
) -> Path:
    """``manifest.json``: the parameters, tactic shifts, counts and each file's SHA-256."""
    manifest = out_dir / "manifest.json"
    document = {
        "simulator_version": SIMULATOR_VERSION,
        "parameters": parameters,
        "tactic_shifts": shifts,
        "rows": counts.rows,
        "illicit": counts.illicit,
        "inspected": counts.inspected,
        "positive_inspections": counts.positives,
        "files": {t: {"name": p.name, "sha256": _sha256(p)} for t, p in paths.items()},
    }
    manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _arrow_schema(table: str) -> pa.Schema:
    return pl.DataFrame(schema=TABLES[table]).to_arrow().schema


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
