"""Test helpers: a real Centinela server on port 0 in a background event loop, and shipments."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc

from features.records import GoodsLine, Party, Shipment
from scoring.decisions import Decision
from scoring.scorer import Scored
from server import converters
from server.app import CentinelaServer
from server.pb import risk_scoring_pb2 as pb
from server.settings import Settings

CENTINELA = str(Path(sys.executable).parent / "centinela")
"""The ``centinela`` command this environment installed."""


def centinela(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``centinela ARGS`` as an analyst types it; its output and status, never raising."""
    return subprocess.run(
        [CENTINELA, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


T = TypeVar("T")


class ServerThread:
    """Runs :class:`CentinelaServer` in its own event loop so tests can use a blocking client."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = CentinelaServer(settings)
        self.port = self.call(self.app.start)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def call(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(factory(), self.loop)
        return future.result(timeout=60)

    def load(self) -> bool:
        return self.call(self.app.load)

    @property
    def metrics_port(self) -> int:
        assert self.app.endpoint is not None
        return self.app.endpoint.port

    def stop(self) -> None:
        self.channel.close()
        self.call(lambda: self.app.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def make_shipment(shipment_id: str = "SHP-1", **changes: Any) -> Shipment:
    """A valid sea shipment to Manzanillo; ``changes`` replace fields."""
    base = Shipment(
        shipment_id=shipment_id,
        declared_at=datetime(2025, 6, 2, 14, 30, tzinfo=UTC),
        port_of_entry="MXZLO",
        mode="sea",
        origin_country="CN",
        export_country="CN",
        transshipment_ports=("KRPUS",),
        carrier="Pacific Orient Lines",
        conveyance_id="IMO9811000",
        container_id="MSCU1234565",
        shipper=Party("SHP-CN-0001", "Shanghai Jinhua Trading Co.", "CN", ""),
        consignee=Party("CNE-000123", "Distribuidora Química del Pacífico", "MX", "DQP190101AB1"),
        broker_id="BRK-0042",
        goods=(
            GoodsLine(
                hs_code="293337",
                description="1-phenethyl-4-piperidone 99% 25 kg drums",
                cas_numbers=("39742-60-4",),
                quantity=20,
                unit="DRUM",
                gross_weight_kg=520.0,
                declared_value_usd=18_000.0,
            ),
            GoodsLine(
                hs_code="392690",
                description="plastic household articles",
                quantity=400,
                unit="PCS",
                gross_weight_kg=900.0,
                declared_value_usd=2_400.0,
            ),
        ),
    )
    return dataclasses.replace(base, **changes)


def request_for(shipment: Shipment) -> pb.ScoreShipmentRequest:
    return pb.ScoreShipmentRequest(shipment=converters.shipment_to_proto(shipment))


def make_decision(
    decision_id: str,
    shipment_id: str,
    *,
    port_of_entry: str = "MXZLO",
    risk_score: float = 0.1,
    lane: str = "green",
    model_version: str = "v",
    watchlist_version: str = "w",
    rules_version: str = "",
    **scored: Any,
) -> Decision:
    """A decision as the service returns it, for tests of what reads one; ``scored`` sets
    other fields of its :class:`~scoring.scorer.Scored` (reasons, hits, exam...)."""
    fields: dict[str, Any] = {
        "random_selection": False,
        "propensity": 1.0,
        "reasons": (),
        "watchlist_hits": (),
        "features": {},
        **scored,
    }
    return Decision(
        decision_id,
        Scored(shipment_id, port_of_entry, risk_score, lane, **fields),
        model_version,
        watchlist_version,
        rules_version,
    )
