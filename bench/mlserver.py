"""Seldon MLServer as a peer: ``mlserver start`` with its LightGBM runtime on the same
``model.txt``, from the virtualenv ``make bench-peers`` creates (its pins clash with ours). Its
requests are encoded, and one answer checked against the booster, by that virtualenv's own
interpreter, so this process needs nothing of MLServer."""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import textwrap
import time
from pathlib import Path

import grpc
import numpy as np

from bench.servers import MLSERVER, ROOT, START_TIMEOUT_S, Served, free_port, spawn

MLSERVER_VENV = ROOT / "var" / "bench-peers" / "venv"
INFER = "/inference.GRPCInferenceService/ModelInfer"
SERVER_READY = "/inference.GRPCInferenceService/ServerReady"
READY_TRUE = b"\x08\x01"  # ServerReadyResponse{ready: true}, serialised
MODEL_NAME = "centinela"
BATCH_ROWS = 1000  # rows of one MLServer manifest call


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


def start_checked(
    venv: Path, model: Path, rows: Path, expected: np.ndarray, workdir: Path, workers: int
) -> tuple[Served, dict[str, list[bytes]]]:
    """MLServer started, its requests encoded (``single``: one row a call, ``batch``:
    ``BATCH_ROWS`` a call), and its scores of ``rows`` checked against the booster's
    ``expected``."""
    served = start_mlserver(venv, model, workdir, workers)
    try:
        encoded = workdir / "requests.pickle"
        mlserver_client(venv, workdir, "encode", rows, encoded, str(BATCH_ROWS))
        with encoded.open("rb") as f:
            requests: dict[str, list[bytes]] = pickle.load(f)
        answer = workdir / "scores.json"
        mlserver_client(venv, workdir, "predict", rows, answer, served.target)
        theirs = np.array(json.loads(answer.read_text()))
        gap = float(np.max(np.abs(theirs - expected)))
        print(
            f"MLServer (parallel_workers={workers}, debug off) scored the "
            f"{len(theirs)} rows; largest gap to the booster: {gap:.1e}"
        )
        if gap > 1e-9:
            raise RuntimeError(f"MLServer's scores differ from the booster's by up to {gap}")
    except BaseException:
        served.stop()
        raise
    return served, requests
