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
import dataclasses
import functools
import itertools
import json
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MLSERVER_VENV = ROOT / "var" / "bench-peers" / "venv"
NOT_SET_UP = "not set up (make bench-peers)"

SCORE = "/centinela.v1.RiskScoring/ScoreShipment"
STREAM = "/centinela.v1.RiskScoring/ScoreShipments"
INFER = "/inference.GRPCInferenceService/ModelInfer"
SERVER_READY = "/inference.GRPCInferenceService/ServerReady"
READY_TRUE = b"\x08\x01"  # ServerReadyResponse{ready: true}, serialised
MODEL_NAME = "centinela"
BATCH_ROWS = 1000  # rows of one MLServer manifest call
STREAM_BATCH = 64  # the bare server scores a stream in batches, as Centinela does by default
START_TIMEOUT_S = 180.0

CENTINELA = "Centinela"
MLSERVER = "Seldon MLServer"
BARE = "bare grpc.aio + lightgbm"
EMPTY = "empty RPC"
COLUMNS = (CENTINELA, MLSERVER, BARE, EMPTY)


# --- the load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    items: int  # shipments (or rows) answered
    elapsed: float
    latencies: tuple[float, ...] = ()  # per call, seconds

    @property
    def per_s(self) -> float:
        return self.items / self.elapsed

    def ms(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies), q) * 1000)


def channel_for(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ],
    )


async def unary_load(
    target: str,
    method: str,
    payloads: Sequence[bytes],
    *,
    in_flight: int,
    calls: int,
    items_per_call: int = 1,
) -> Run:
    """``calls`` calls of ``method`` (payloads in turn), at most ``in_flight`` at a time."""
    async with channel_for(target) as channel:
        call = channel.unary_unary(method, None, None)  # bytes in, bytes out
        for payload in payloads[: max(4, in_flight)]:  # connect and warm
            await call(payload, timeout=60)
        latencies: list[float] = []
        indexes = iter(range(calls))

        async def worker() -> None:
            for i in indexes:  # shared: each call takes the next index
                t0 = time.perf_counter()
                await call(payloads[i % len(payloads)], timeout=60)
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - t0
    return Run(calls * items_per_call, elapsed, tuple(latencies))


async def stream_load(
    target: str, method: str, payloads: Sequence[bytes], check: Callable[[bytes], None]
) -> Run:
    """One stream of every payload; ``check`` sees each answer after the clock stops."""
    async with channel_for(target) as channel:
        call = channel.stream_stream(method, None, None)
        async for answer in call(iter(payloads[:10]), timeout=60):  # connect and warm
            check(answer)
        answers: list[bytes] = []
        t0 = time.perf_counter()
        async for answer in call(iter(payloads), timeout=600):
            answers.append(answer)
        elapsed = time.perf_counter() - t0
    if len(answers) != len(payloads):
        raise RuntimeError(f"{method}: {len(answers)} answers to {len(payloads)} requests")
    for answer in answers:
        check(answer)
    return Run(len(answers), elapsed)


# --- the servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A server in a subprocess, its output in ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    target: str = ""

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def spawn(name: str, argv: list[str], log: Path, cwd: Path | None = None) -> Served:
    # Neither server may pick up settings from the environment of whoever runs the benchmark.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CENTINELA_", "MLSERVER_"))}
    out = log.open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    out.close()
    return Served(name, proc, log)


def wait_for_line(served: Served, match: Callable[[dict[str, Any]], str | None]) -> str:
    """The first JSON log line for which ``match`` returns a value, and that value."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in served.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (found := match(record)):
                    return found
        if served.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{served.name} did not start:\n{served.tail()}")


def start_centinela(registry: Path, world: Path, workdir: Path) -> Served:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "centinela.yaml"
    config.write_text(
        f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {registry}\n"
        f"data_dir: {world}\nledger_path: {workdir / 'ledger.sqlite'}\n"
    )
    centinela = Path(sys.executable).parent / "centinela"
    served = spawn(CENTINELA, [str(centinela), "serve", "--config", str(config)], workdir / "log")
    try:
        port = wait_for_line(
            served,
            lambda r: r["grpc"].rsplit(":", 1)[1] if r.get("message") == "listening" else None,
        )
        served.target = f"127.0.0.1:{port}"
        wait_serving(served)
    except BaseException:
        served.stop()
        raise
    return served


def wait_serving(served: Served) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(served.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if served.proc.poll() is not None:
                break
            with contextlib.suppress(grpc.RpcError):
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{served.name} never reported SERVING:\n{served.tail()}")


def start_peer(kind: str, model: Path, rows: Path, workdir: Path) -> Served:
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "bench.peers", "--serve", kind, "--model", str(model)]
    served = spawn(
        BARE if kind == "bare" else EMPTY, [*argv, "--rows", str(rows)], workdir / "log", ROOT
    )
    try:
        port = wait_for_line(served, lambda r: str(r.get("listening", "")))
    except BaseException:
        served.stop()
        raise
    served.target = f"127.0.0.1:{port}"
    return served


def start_mlserver(venv: Path, model: Path, workdir: Path, workers: int) -> Served:
    """MLServer with its LightGBM runtime: ``mlserver start`` on a folder holding the server's
    ``settings.json`` and the model's ``model-settings.json`` beside a copy of ``model.txt``."""
    models = workdir / MODEL_NAME
    models.mkdir(parents=True, exist_ok=True)
    (models / "model.txt").write_bytes(model.read_bytes())
    (models / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "mlserver_lightgbm.LightGBMModel",
                "parameters": {"uri": "./model.txt", "version": "v1"},
            }
        )
    )
    grpc_port = free_port()
    settings = {
        "host": "127.0.0.1",
        "grpc_port": grpc_port,
        "http_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": workers,
        # debug (the default) logs every request; Centinela logs none.
        "debug": False,
    }
    (workdir / "settings.json").write_text(json.dumps(settings))
    served = spawn(
        MLSERVER, [str(venv / "bin" / "mlserver"), "start", "."], workdir / "log", workdir
    )
    served.target = f"127.0.0.1:{grpc_port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(served.target) as channel:
        ready = channel.unary_unary(SERVER_READY, None, None)
        while time.monotonic() < deadline and served.proc.poll() is None:
            with contextlib.suppress(grpc.RpcError):
                if ready(b"", timeout=5) == READY_TRUE:
                    return served
            time.sleep(0.2)
    served.stop()
    raise RuntimeError(f"MLServer never became ready:\n{served.tail()}")


# Run with the MLServer virtualenv's interpreter: its codecs and stubs encode the requests (and
# decode one answer to check it), so this process needs nothing of MLServer.
MLSERVER_CLIENT = textwrap.dedent(
    """
    import json, pickle, sys
    import grpc, numpy as np
    from mlserver.codecs import NumpyCodec
    from mlserver.grpc import dataplane_pb2 as pb, dataplane_pb2_grpc
    from mlserver.grpc.converters import ModelInferResponseConverter

    mode, model, rows_file, out_file, arg = sys.argv[1:6]
    rows = np.load(rows_file)
    def encode(x):
        # By hand: MLServer's NumpyRequestCodec turns NaN (LightGBM's missing value) into None,
        # which its gRPC converter cannot encode. One FP64 tensor, rows x features, as
        # NumpyRequestCodec would name and shape it.
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="input-0", datatype="FP64", shape=list(x.shape),
            contents=pb.InferTensorContents(fp64_contents=x.reshape(-1).tolist()))
        return pb.ModelInferRequest(model_name=model, inputs=[tensor])
    if mode == "encode":  # arg: rows of a batch call
        batch = int(arg)
        single = [encode(rows[i : i + 1]).SerializeToString() for i in range(len(rows))]
        batches = [encode(rows[i : i + batch]).SerializeToString()
                   for i in range(0, len(rows) - batch + 1, batch)]
        with open(out_file, "wb") as f:
            pickle.dump({"single": single, "batch": batches}, f)
    else:  # predict, arg: the server; one call with every row, through MLServer's own stubs
        with grpc.insecure_channel(arg) as channel:
            stub = dataplane_pb2_grpc.GRPCInferenceServiceStub(channel)
            answer = ModelInferResponseConverter.to_types(stub.ModelInfer(encode(rows), timeout=60))
        scores = NumpyCodec.decode_output(answer.outputs[0]).reshape(-1)
        with open(out_file, "w") as f:
            json.dump([float(s) for s in scores], f)
    """
)


def mlserver_client(venv: Path, workdir: Path, mode: str, rows: Path, out: Path, arg: str) -> None:
    script = workdir / "client.py"
    script.write_text(MLSERVER_CLIENT)
    argv = [str(venv / "bin" / "python"), str(script), mode, MODEL_NAME, str(rows), str(out), arg]
    subprocess.run(argv, check=True, cwd=workdir)


# --- the bare and empty servers (``python -m bench.peers --serve bare|empty``) ----------------


async def serve_peer(kind: str, model: Path, rows_file: Path) -> None:
    import lightgbm as lgb

    from server.pb import risk_scoring_pb2 as pb
    from server.pb import risk_scoring_pb2_grpc as pb_grpc

    Context = grpc.aio.ServicerContext[Any, Any]
    rows: list[list[float]] = np.load(rows_file).tolist()
    booster = lgb.Booster(model_file=str(model))
    turn = itertools.count()

    def score(n: int) -> list[float]:
        """The next ``n`` feature rows, made an array as a request would be, and scored."""
        matrix = np.array([rows[next(turn) % len(rows)] for _ in range(n)], dtype=np.float64)
        return [float(s) for s in booster.predict(matrix, num_threads=1)]

    async def batches(
        requests: AsyncIterator[pb.ScoreShipmentRequest],
    ) -> AsyncIterator[list[pb.ScoreShipmentRequest]]:
        """A stream in batches of STREAM_BATCH, as both servers answer it: answering each
        message as it comes costs the empty server more than the bare one's batches."""
        pending: list[pb.ScoreShipmentRequest] = []
        async for request in requests:
            pending.append(request)
            if len(pending) == STREAM_BATCH:
                yield pending
                pending = []
        if pending:
            yield pending

    class Unscored(pb_grpc.RiskScoringServicer):
        async def RecordOutcome(
            self, request: pb.RecordOutcomeRequest, context: Context
        ) -> pb.RecordOutcomeResponse:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "a benchmark peer")

        async def GetModelInfo(
            self, request: pb.GetModelInfoRequest, context: Context
        ) -> pb.ModelInfo:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "a benchmark peer")

    class Bare(Unscored):
        async def ScoreShipment(
            self, request: pb.ScoreShipmentRequest, context: Context
        ) -> pb.Decision:
            (risk,) = score(1)
            return pb.Decision(shipment_id=request.shipment.shipment_id, risk_score=risk)

        async def ScoreShipments(
            self, request_iterator: AsyncIterator[pb.ScoreShipmentRequest], context: Context
        ) -> AsyncIterator[pb.Decision]:
            async for batch in batches(request_iterator):
                for r, risk in zip(batch, score(len(batch)), strict=True):
                    yield pb.Decision(shipment_id=r.shipment.shipment_id, risk_score=risk)

    class Empty(Unscored):
        async def ScoreShipment(
            self, request: pb.ScoreShipmentRequest, context: Context
        ) -> pb.Decision:
            return pb.Decision()

        async def ScoreShipments(
            self, request_iterator: AsyncIterator[pb.ScoreShipmentRequest], context: Context
        ) -> AsyncIterator[pb.Decision]:
            async for batch in batches(request_iterator):
                for _ in batch:
                    yield pb.Decision()

    server = grpc.aio.server()
    pb_grpc.add_RiskScoringServicer_to_server(Bare() if kind == "bare" else Empty(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"listening": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(1)


# --- the world, the model and the inputs ------------------------------------------------------


@dataclass
class Inputs:
    model: Path  # the promoted bundle's model.txt
    registry: Path
    world: Path
    requests: list[bytes]  # ScoreShipmentRequest, serialised
    rows: Path  # .npy: Centinela's feature rows of the same shipments, in the same order
    expected: np.ndarray  # the booster's raw scores of those rows


def prepare(workdir: Path, world_size: int, shipments: int) -> Inputs:
    from bench.scoring import shipments_from_world
    from features.canonical import canonical_shipment
    from features.errors import CentinelaError
    from scoring.registry import Registry
    from scoring.service import ScoringService
    from scoring.settings import load_settings
    from tests.support import request_for
    from training.simulate import simulate_world
    from training.train import train

    world, registry = workdir / "world", workdir / "registry"
    bundle = None
    if world.exists() and registry.exists():
        try:
            bundle = Registry(registry).load()
            print(f"reusing the world and model {bundle.version} in {workdir}", flush=True)
        except CentinelaError as error:
            print(f"training again: the model in {registry} does not load ({error})")
    if bundle is None:
        shutil.rmtree(world, ignore_errors=True)
        shutil.rmtree(registry, ignore_errors=True)
        simulate_world(world, shipments=world_size, seed=5, progress=False)
        train(world, registry, seed=5)
        bundle = Registry(registry).load()
    now = datetime.now(UTC)
    picked = shipments_from_world(world, shipments)
    # Live scoring accepts a declaredAt of the last 21 days: the same shipments, in their order,
    # declared over the last hour or so.
    redated = [
        dataclasses.replace(s, declared_at=now - timedelta(seconds=len(picked) - i))
        for i, s in enumerate(picked)
    ]
    service = ScoringService(
        load_settings(registry_dir=registry, data_dir=world, ledger_enabled=False)
    )
    scorer = service.load()
    assert service.state is not None
    computed = scorer.features([canonical_shipment(s) for s in redated], service.state)
    matrix = computed.block.matrix
    rows = workdir / "rows.npy"
    np.save(rows, matrix)
    expected = np.asarray(bundle.booster.predict(matrix, num_threads=1), dtype=np.float64)
    return Inputs(
        model=bundle.path / "model.txt",
        registry=registry,
        world=world,
        requests=[request_for(s).SerializeToString() for s in redated],
        rows=rows,
        expected=expected,
    )


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class Peer:
    name: str
    served: Served
    single: Sequence[bytes]  # one shipment (or row) a call
    manifest: Callable[[], Awaitable[Run]]  # one manifest measurement
    runs: dict[str, list[Run]] = field(default_factory=dict)


def check_decision(answer: bytes) -> None:
    from server.pb import risk_scoring_pb2 as pb

    decision = pb.Decision.FromString(answer)
    if decision.HasField("error"):
        raise RuntimeError(f"Centinela answered an error: {decision.error}")


def ignore(answer: bytes) -> None:
    pass


def median(runs: Iterable[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


ROWS: tuple[tuple[str, str, str, Callable[[Run], float], str], ...] = (
    # label, measurement, unit, figure, format
    ("1 shipment a call, 8 in flight", "8", "/s", lambda r: r.per_s, "{:,.0f}"),
    ("", "8", "p99 ms", lambda r: r.ms(99), "{:.2f}"),
    ("1 in flight", "1", "/s", lambda r: r.per_s, "{:,.0f}"),
    ("", "1", "p50 ms", lambda r: r.ms(50), "{:.2f}"),
    ("manifests (stream / 1000-row calls)", "manifest", "/s", lambda r: r.per_s, "{:,.0f}"),
)


def table(peers: dict[str, Peer], missing: dict[str, str]) -> list[str]:
    label_w = max(len(label) for label, *_ in ROWS) + 8
    cells: list[list[str]] = []
    for label, key, unit, figure, fmt in ROWS:
        line = [f"{label:<{label_w - 8}}{unit:>8}"]
        ours = median(peers[CENTINELA].runs[key], figure) if CENTINELA in peers else None
        for name in COLUMNS:
            if name in missing:
                line.append("" if cells else missing[name])
            elif name in peers:
                value = median(peers[name].runs[key], figure)
                text = fmt.format(value)
                if name != CENTINELA and ours is not None and value > 0:
                    text += f" ({ours / value:.2f}x)"
                line.append(text)
            else:
                line.append("-")
        cells.append(line)
    head = [" " * label_w, *COLUMNS]
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(len(head))]
    out = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [head, *cells]
    ]
    return out


async def measure(peers: list[Peer], reps: int, calls: int, calls_one: int) -> None:
    for rep in range(reps):
        for key, in_flight, n in (("8", 8, calls), ("1", 1, calls_one)):
            for peer in peers:
                method = INFER if peer.name == MLSERVER else SCORE
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
    parser.add_argument("--mlserver-venv", type=Path, default=MLSERVER_VENV)
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
    inputs = prepare(workdir, args.world, max(args.manifest, BATCH_ROWS))
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
    by_name = {p.name: p for p in peers}
    print()
    print("\n".join(table(by_name, missing)))
    print()
    report_ratios(by_name)


def mlserver_peer(args: argparse.Namespace, inputs: Inputs, workdir: Path) -> Peer:
    """MLServer started, its requests encoded, and its answers checked against the booster."""
    venv = args.mlserver_venv
    served = start_mlserver(venv, inputs.model, workdir, args.mlserver_workers)
    try:
        encoded = workdir / "requests.pickle"
        mlserver_client(venv, workdir, "encode", inputs.rows, encoded, str(BATCH_ROWS))
        with encoded.open("rb") as f:
            requests: dict[str, list[bytes]] = pickle.load(f)
        answer = workdir / "scores.json"
        mlserver_client(venv, workdir, "predict", inputs.rows, answer, served.target)
        theirs = np.array(json.loads(answer.read_text()))
        gap = float(np.max(np.abs(theirs - inputs.expected)))
        print(
            f"MLServer (parallel_workers={args.mlserver_workers}, debug off) scored the "
            f"{len(theirs)} rows; largest gap to the booster: {gap:.1e}"
        )
        if gap > 1e-9:
            raise RuntimeError(f"MLServer's scores differ from the booster's by up to {gap}")
    except BaseException:
        served.stop()
        raise
    batches, calls = requests["batch"], max(1, args.manifest // BATCH_ROWS)
    return Peer(
        MLSERVER,
        served,
        requests["single"],
        lambda: unary_load(
            served.target, INFER, batches, in_flight=1, calls=calls, items_per_call=BATCH_ROWS
        ),
    )


def report_ratios(peers: dict[str, Peer]) -> None:
    ours = peers[CENTINELA]
    if MLSERVER in peers:
        theirs = peers[MLSERVER]
        for text, key, figure in (
            ("throughput at 8 in flight", "8", lambda r: r.per_s),
            ("p99 at 8 in flight", "8", lambda r: r.ms(99)),
            ("throughput at 1 in flight", "1", lambda r: r.per_s),
            ("p50 at 1 in flight", "1", lambda r: r.ms(50)),
            ("manifest throughput (stream / 1000-row calls)", "manifest", lambda r: r.per_s),
        ):
            ratio = median(ours.runs[key], figure) / median(theirs.runs[key], figure)
            print(f"Centinela / MLServer {text}: {ratio:.2f}x")
    for name in (BARE, EMPTY):
        for text, key in (
            ("at 8 in flight", "8"),
            ("at 1 in flight", "1"),
            ("manifest", "manifest"),
        ):
            share = median(ours.runs[key], lambda r: r.per_s) / median(
                peers[name].runs[key], lambda r: r.per_s
            )
            print(f"Centinela / {name} throughput {text}: {share:.0%}")


if __name__ == "__main__":
    main()
