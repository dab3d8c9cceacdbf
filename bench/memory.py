"""The server's memory: resident set after bootstrap, then after ``--decisions`` live decisions
of distinct shipments (manifest streams), beside the bootstrap figure of the same run.

The issue 11 bar: under 300 MB after bootstrap and 100,000 live decisions.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.load import STREAM, ignore, stream_load
from bench.servers import start_centinela
from bench.world import live_inputs
from server.pb import risk_scoring_pb2 as pb


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--world", type=int, default=20_000, help="shipments of history")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the world and model here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        inputs = live_inputs(work, args.world, 5000)
        served = start_centinela(inputs.registry, inputs.world, Path(tmp) / "served")
        try:
            boot = rss_mb(served.proc.pid)
            print(f"after bootstrap ({args.world:,} shipments of history): {boot:,.0f} MB")
            done, round_ = 0, 0
            while done < args.decisions:
                requests = []
                for raw in inputs.requests[: args.decisions - done]:
                    request = pb.ScoreShipmentRequest.FromString(raw)
                    request.shipment.shipment_id += f"-R{round_}"  # a new shipment each time
                    requests.append(request.SerializeToString())
                run = asyncio.run(stream_load(served.target, STREAM, requests, ignore))
                done += run.items
                round_ += 1
            after = rss_mb(served.proc.pid)
        finally:
            served.stop()
    print(
        f"after {done:,} live decisions: {after:,.0f} MB ({after / boot:.2f}x bootstrap); "
        "bar (issue 11): under 300 MB"
    )


if __name__ == "__main__":
    main()
