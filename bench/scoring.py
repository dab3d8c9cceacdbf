"""Scoring latency and throughput through the real gRPC server, beside an in-process baseline.

Simulates a small world, trains a model in a temporary registry, starts the server on port 0,
then times unary ``ScoreShipment`` calls and one ``ScoreShipments`` stream over real shipments
of the world. The baseline is the same scoring called in-process with no gRPC, so the ratio is
what the transport and the server add.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import percentiles
from bench.world import shipments_from_world, trained_world
from scoring.service import ScoringService
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import ServerThread, request_for


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--world", type=int, default=20_000, help="shipments to simulate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, registry = trained_world(Path(tmp), args.world, seed=5)
        shipments = shipments_from_world(data, args.requests)
        requests = [request_for(s) for s in shipments]

        service = ScoringService(server_settings(registry, Path(tmp) / "in-process"))
        service.load()
        base: list[float] = []
        for s in shipments:
            t0 = time.perf_counter()
            service.score([s])
            base.append(time.perf_counter() - t0)

        running = ServerThread(server_settings(registry, Path(tmp) / "served"))
        try:
            assert running.load()
            stub = pb_grpc.RiskScoringStub(running.channel)
            stub.ScoreShipment(requests[0], timeout=10)  # warm the channel
            unary: list[float] = []
            for req in requests:
                t0 = time.perf_counter()
                stub.ScoreShipment(req, timeout=10)
                unary.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            streamed = sum(1 for _ in stub.ScoreShipments(iter(requests), timeout=600))
            stream_s = time.perf_counter() - t0
        finally:
            running.stop()

    n = len(shipments)
    print(f"shipments: {n} real shipments of a simulated world")
    print(f"baseline in-process score([one]): {percentiles(base)}  {n / sum(base):,.0f}/s")
    print(f"gRPC ScoreShipment (unary):       {percentiles(unary)}  {n / sum(unary):,.0f}/s")
    print(f"gRPC ScoreShipments (one stream): {streamed / stream_s:,.0f} shipments/s")
    print(
        f"ratio unary p50 / baseline p50: {np.percentile(unary, 50) / np.percentile(base, 50):.2f}x"
    )


if __name__ == "__main__":
    main()
