"""The load generator the server benchmarks share: one client process driving a server over
grpc.aio, requests serialised beforehand and sent as bytes, a fixed number of calls with a fixed
number in flight (``unary_load``), or one stream of every request (``stream_load``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from server.pb import risk_scoring_pb2 as pb

SCORE = "/centinela.v1.RiskScoring/ScoreShipment"
STREAM = "/centinela.v1.RiskScoring/ScoreShipments"


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


def check_decision(answer: bytes) -> None:
    """Centinela's answer is a decision, not an error."""
    decision = pb.Decision.FromString(answer)
    if decision.HasField("error"):
        raise RuntimeError(f"Centinela answered an error: {decision.error}")


def ignore(answer: bytes) -> None:
    """For servers whose answers are not checked."""
