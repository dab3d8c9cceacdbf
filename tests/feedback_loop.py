"""The feedback loop as a port lives it, for tests: a simulated world's history given to a real
server, then its later months sent through gRPC month by month, with every RED decision's
inspection reported back through ``RecordOutcome`` (what the simulator's ground truth says the
inspectors found) before the next month arrives. YELLOW decisions (documentary review or a
scan) are reported too: the propensity a decision records is the probability of RED or YELLOW,
so an estimate from the log needs the outcome of both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from features.live import shipments_from_frames
from features.tables import table_path
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import ServerThread, request_for

STREAM_CHUNK = 500  # shipments per ScoreShipments stream


@dataclass(frozen=True, slots=True)
class Logged:
    """What the port saw of one month: each decision, and the outcomes it reported."""

    decisions: pl.DataFrame  # shipment_id, decision_id, port, lane, propensity, random_selection
    reported: int  # outcomes reported (every RED and YELLOW decision)


def history_before(world: Path, cutoff: datetime, out_dir: Path) -> Path:
    """The world's shipments declared before ``cutoff``, their goods and the inspections
    reported before it: the history a server starts from (never the truth table)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shipments = pl.read_parquet(table_path(world, "shipments")).filter(
        pl.col("declared_at") < cutoff
    )
    ids = shipments["shipment_id"].implode()
    goods = pl.read_parquet(table_path(world, "goods")).filter(pl.col("shipment_id").is_in(ids))
    inspections = pl.read_parquet(table_path(world, "inspections")).filter(
        pl.col("shipment_id").is_in(ids) & (pl.col("reported_at") < cutoff)
    )
    for name, frame in (("shipments", shipments), ("goods", goods), ("inspections", inspections)):
        frame.write_parquet(table_path(out_dir, name))
    return out_dir


def drive_month(server: ServerThread, world: Path, start: datetime, end: datetime) -> Logged:
    """Send the world's shipments declared in [start, end) in declared order, then report the
    outcome of every RED and YELLOW decision as the ground truth has it."""
    shipments = (
        pl.read_parquet(table_path(world, "shipments"))
        .filter((pl.col("declared_at") >= start) & (pl.col("declared_at") < end))
        .sort("declared_at", "shipment_id")
    )
    goods = pl.read_parquet(table_path(world, "goods")).filter(
        pl.col("shipment_id").is_in(shipments["shipment_id"].implode())
    )
    records = shipments_from_frames(shipments, goods)
    stub = pb_grpc.RiskScoringStub(server.channel)
    rows = []
    for chunk in _chunks(records, STREAM_CHUNK):
        for request, decision in zip(
            chunk, stub.ScoreShipments(iter(chunk), timeout=120), strict=True
        ):
            assert not decision.error.message, decision.error.message
            rows.append(
                {
                    "shipment_id": decision.shipment_id,
                    "decision_id": decision.decision_id,
                    "port": request.shipment.port_of_entry,
                    "lane": pb.Lane.Name(decision.lane),
                    "propensity": decision.propensity,
                    "random_selection": decision.random_selection,
                }
            )
    decisions = pl.DataFrame(rows)
    truth = pl.read_parquet(table_path(world, "truth")).select("shipment_id", "illicit")
    opened = decisions.filter(pl.col("lane").is_in(["LANE_RED", "LANE_YELLOW"])).join(
        truth, on="shipment_id"
    )
    for decision_id, illicit in opened.select("decision_id", "illicit").iter_rows():
        stub.RecordOutcome(
            pb.RecordOutcomeRequest(
                decision_id=decision_id,
                inspected=True,
                result="positive" if illicit else "negative",
            ),
            timeout=60,
        )
    return Logged(decisions, opened.height)


def _chunks(records: list, size: int) -> Iterator[list[pb.ScoreShipmentRequest]]:
    for lo in range(0, len(records), size):
        yield [request_for(s) for s in records[lo : lo + size]]
