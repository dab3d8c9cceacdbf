"""Centinela beside real peers in the same run, each serving on 127.0.0.1 in its own process.

- **Centinela**: ``centinela serve`` in a subprocess with default settings (ledger on, batching
  across calls): the whole pipeline (validation, watchlist, live entity history, rules, lanes,
  exams, ledger).
- **Seldon MLServer** 1.7.1 serving the same ``model.txt`` with its LightGBM runtime over the V2
  gRPC protocol, from the virtualenv ``make bench-peers`` creates; the column says
  ``not set up`` when it is absent, and the rest still runs.
- **bare grpc.aio + lightgbm**: a minimal grpc.aio server on Centinela's own proto whose
  ``ScoreShipment`` turns a precomputed feature vector into an array and calls
  ``booster.predict`` on it: a model server with none of Centinela's pipeline (the floor).
- **empty RPC**: the same server answering an empty ``Decision`` (the ceiling of this
  transport, client and machine).

The model is trained on a simulated world (as ``bench.scoring`` does). The shipments are the
world's newest, re-dated to the last hours (live scoring refuses a ``declaredAt`` older than 21
days). MLServer and the bare server are fed the feature rows Centinela computes for those same
shipments, so every server scores the same inputs with the same booster.

One client drives them all: this process, grpc.aio, one channel per measurement, requests
serialised beforehand and sent as bytes, a fixed number of calls with a fixed number in flight.
Measurements are interleaved (each repetition measures every server in turn) and each cell is
the median over repetitions. Centinela, the bare and the empty server stream a manifest
through ``ScoreShipments``; MLServer has no such stream, so it gets 1000-row ``ModelInfer``
calls, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import mlserver
from bench.bare import serve_peer
from bench.load import SCORE, STREAM, Run, check_decision, ignore, stream_load, unary_load
from bench.peers_report import report_ratios, table
from bench.servers import BARE, CENTINELA, EMPTY, MLSERVER, Served, start_centinela, start_peer

if TYPE_CHECKING:
    from bench.world import Inputs

NOT_SET_UP = "not set up (make bench-peers)"


@dataclass
class Peer:
    name: str
    served: Served
    single: Sequence[bytes]  # one shipment (or row) a call
    manifest: Callable[[], Awaitable[Run]]  # one manifest measurement
    runs: dict[str, list[Run]] = field(default_factory=dict)


async def measure(peers: list[Peer], reps: int, calls: int, calls_one: int) -> None:
    for rep in range(reps):
        for key, in_flight, n in (("8", 8, calls), ("1", 1, calls_one)):
            for peer in peers:
                method = mlserver.INFER if peer.name == MLSERVER else SCORE
                run = await unary_load(
                    peer.served.target, method, peer.single, in_flight=in_flight, calls=n
                )
                peer.runs.setdefault(key, []).append(run)
                print(
                    f"  rep {rep + 1} {peer.name:<26} {in_flight} in flight: "
                    f"{run.per_s:8,.0f}/s  p50 {run.ms(50):6.2f} ms  p99 {run.ms(99):7.2f} ms",
                    flush=True,
                )
        for peer in peers:
            run = await peer.manifest()
            peer.runs.setdefault("manifest", []).append(run)
            print(f"  rep {rep + 1} {peer.name:<26} manifest: {run.per_s:8,.0f}/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls at 8 in flight, per rep")
    parser.add_argument("--calls-one", type=int, default=1000, help="calls at 1 in flight")
    parser.add_argument("--manifest", type=int, default=5000, help="shipments of a manifest")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--world", type=int, default=20_000, help="shipments to simulate")
    parser.add_argument("--mlserver-venv", type=Path, default=mlserver.MLSERVER_VENV)
    parser.add_argument(
        "--mlserver-workers", type=int, default=1, help="MLServer parallel_workers (its default)"
    )
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the world and model here")
    parser.add_argument("--serve", choices=("bare", "empty"), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_peer(args.serve, args.model, args.rows))
        return
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        run(args, workdir)


def run(args: argparse.Namespace, workdir: Path) -> None:
    from bench.world import live_inputs  # the --serve children need none of the pipeline

    inputs = live_inputs(workdir, args.world, max(args.manifest, mlserver.BATCH_ROWS))
    runs_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    manifest = inputs.requests[: args.manifest]
    missing: dict[str, str] = {}
    peers: list[Peer] = []
    try:
        centinela = start_centinela(inputs.registry, inputs.world, runs_dir / "centinela")
        peers.append(
            Peer(
                CENTINELA,
                centinela,
                inputs.requests,
                lambda: stream_load(centinela.target, STREAM, manifest, check_decision),
            )
        )
        if (args.mlserver_venv / "bin" / "mlserver").exists():
            peers.append(mlserver_peer(args, inputs, runs_dir / "mlserver"))
        else:
            missing[MLSERVER] = NOT_SET_UP
        for kind, name in (("bare", BARE), ("empty", EMPTY)):
            served = start_peer(kind, inputs.model, inputs.rows, runs_dir / kind)
            peers.append(
                Peer(
                    name,
                    served,
                    inputs.requests,
                    functools.partial(stream_load, served.target, STREAM, manifest, ignore),
                )
            )
        print(
            f"{len(inputs.requests)} real shipments of a simulated world of {args.world}, "
            f"re-dated to now; {args.reps} interleaved reps of {args.calls} calls at 8 in flight, "
            f"{args.calls_one} at 1, and a {len(manifest)}-shipment manifest; 127.0.0.1, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        before = os.getloadavg()[0]
        asyncio.run(measure(peers, args.reps, args.calls, args.calls_one))
        # The benchmark itself keeps about 2 CPUs busy; more says something else ran too.
        print(f"load average (1 min): {before:.2f} before, {os.getloadavg()[0]:.2f} after")
    finally:
        for peer in peers:
            peer.served.stop()
    runs = {p.name: p.runs for p in peers}
    print()
    print("\n".join(table(runs, missing)))
    print()
    report_ratios(runs)


def mlserver_peer(args: argparse.Namespace, inputs: Inputs, workdir: Path) -> Peer:
    """MLServer started, its requests encoded, and its answers checked against the booster."""
    served, requests = mlserver.start_checked(
        args.mlserver_venv,
        inputs.model,
        inputs.rows,
        inputs.expected,
        workdir,
        args.mlserver_workers,
    )
    batches, calls = requests["batch"], max(1, args.manifest // mlserver.BATCH_ROWS)
    return Peer(
        MLSERVER,
        served,
        requests["single"],
        lambda: unary_load(
            served.target,
            mlserver.INFER,
            batches,
            in_flight=1,
            calls=calls,
            items_per_call=mlserver.BATCH_ROWS,
        ),
    )


if __name__ == "__main__":
    main()
