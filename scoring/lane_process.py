"""A bulk run's lane windows in a child process, and lane decisions column-wise.

The lane windows decide in a pure Python loop (:meth:`scoring.lanes._Port.decide`), one
shipment after another: in one process that loop and everything else a bulk run does in Python
take turns on one core. :class:`LaneProcess` gives the loop a process of its own (``python -m
scoring.lane_process``, which imports little more than :mod:`scoring.lanes`): it holds a copy
of the run's :class:`~scoring.lanes.LanePolicy` and decides each chunk sent to it while the
parent works on the chunk before. The copy decides exactly what the policy would, in the same
order, with the same windows and draws; its log records (a port over RED capacity) are sent
back and handled by the parent's loggers, and when it ends the policy takes its windows.

Protocol, pickles on the child's stdin and stdout: the parent sends the policy and its loggers'
level, then one request per chunk (``decide_at``'s five lists) and ``None`` at the end; the
child answers each request with ``(ok, LaneColumns or the exception, log records)`` and ``None``
with the policy as it left it. The child's stdout carries nothing else (``print`` there goes to
stderr).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, overload

import numpy as np

from features.errors import Unavailable
from scoring.heap import settle_heap
from scoring.lanes import LANE_ORDER, LANES, LaneDecision, LanePolicy

LaneRequest = tuple[list[str], list[float], list[str], list[str], list[float]]
"""The arguments of :meth:`LanePolicy.decide_at` for a chunk: ports, scores, shipment ids, rule
lanes and declared times in seconds."""

_LOGGER = "scoring.lanes"  # the logger of the lane windows (scoring.lanes.log)


@dataclass(frozen=True)
class LaneColumns(Sequence[LaneDecision]):
    """Lane decisions column-wise, in decision order: what a sequence of
    :class:`~scoring.lanes.LaneDecision` holds, without a tuple per decision (each is made when
    read by index)."""

    lane: np.ndarray  # int8: each lane's rank in LANES (0 green, 1 yellow, 2 red)
    random_selection: np.ndarray  # bool
    propensity: np.ndarray  # float64
    red_threshold: np.ndarray  # float64
    yellow_threshold: np.ndarray  # float64

    @classmethod
    def of(cls, decisions: Sequence[LaneDecision]) -> LaneColumns:
        """The columns of ``decisions``; every value reads back exactly."""
        if not decisions:
            return cls(np.zeros(0, np.int8), np.zeros(0, bool), *(np.zeros(0) for _ in range(3)))
        lane, random, propensity, red, yellow = zip(*decisions, strict=True)
        order = LANE_ORDER
        return cls(
            np.array([order[x] for x in lane], dtype=np.int8),
            np.array(random, dtype=bool),
            np.array(propensity, dtype=np.float64),
            np.array(red, dtype=np.float64),
            np.array(yellow, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.lane)

    @overload
    def __getitem__(self, row: int) -> LaneDecision: ...
    @overload
    def __getitem__(self, row: slice) -> Sequence[LaneDecision]: ...
    def __getitem__(self, row: int | slice) -> LaneDecision | Sequence[LaneDecision]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        return LaneDecision(
            LANES[self.lane[row]],
            bool(self.random_selection[row]),
            float(self.propensity[row]),
            float(self.red_threshold[row]),
            float(self.yellow_threshold[row]),
        )


class LaneProcess:
    """A copy of ``policy`` deciding in a child process (see the module's docstring). Use it as
    a context manager: :meth:`decide_at` for each chunk in arrival order, and on a normal exit
    ``policy`` takes the windows the copy left; on an error the child is stopped and
    ``policy`` keeps the windows it had."""

    def __init__(self, policy: LanePolicy) -> None:
        self.policy = policy
        project = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        }
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise Unavailable(f"could not start the lane windows' process ({exc})") from None
        # One thread talks to the child: it sends a request only after reading the answer
        # before it, so neither side waits on a full pipe while the other does too.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lanes")
        level = logging.getLogger(_LOGGER).getEffectiveLevel()
        self._pool.submit(self._send, (policy, level))

    def __enter__(self) -> LaneProcess:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.close()
        else:
            self._stop()

    def decide_at(self, request: LaneRequest) -> Future[LaneColumns]:
        """:meth:`LanePolicy.decide_at` of ``request``'s arguments in the child, after every
        request sent before."""
        return self._pool.submit(self._decided, request)

    def close(self) -> None:
        """Wait for every decision, end the child and give ``policy`` its windows."""
        try:
            self.policy.adopt(self._pool.submit(self._ended).result())
            self._child.wait()
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._child.wait()
        for pipe in (self._child.stdin, self._child.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # unflushed bytes to a child that is gone
                    pipe.close()

    def _send(self, message: object) -> None:
        pipe = self._child.stdin
        assert pipe is not None
        try:
            pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()
        except OSError as exc:
            raise self._lost(exc) from None

    def _decided(self, request: object) -> LaneColumns:
        answer = self._ask(request)
        assert isinstance(answer, LaneColumns)
        return answer

    def _ended(self) -> LanePolicy:
        answer = self._ask(None)
        assert isinstance(answer, LanePolicy)
        return answer

    def _ask(self, request: object) -> object:
        self._send(request)
        assert self._child.stdout is not None
        try:
            ok, answer, records = pickle.load(self._child.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise self._lost(exc) from None
        for record in records:
            logging.getLogger(record.name).handle(record)
        if not ok:
            raise answer
        return answer

    def _lost(self, exc: Exception) -> Unavailable:
        """The error of a broken conversation with the child (which is stopped if alive)."""
        if self._child.poll() is None:
            self._child.kill()
        code = self._child.wait()
        return Unavailable(
            f"lost the lane windows' process ({type(exc).__name__}: {exc}; exit status {code})"
        )


class _Kept(logging.Handler):
    """Keeps the child's log records to send back with its next answer."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop (see the module's docstring)."""
    policy, level = pickle.load(requests)
    settle_heap()  # the windows are long-lived; a chunk's lists and decisions are not
    kept = _Kept()
    logger = logging.getLogger(_LOGGER)
    logger.handlers[:] = [kept]
    logger.propagate = False
    logger.setLevel(level)
    while True:
        request = pickle.load(requests)
        answer: object
        try:
            answer = policy if request is None else LaneColumns.of(policy.decide_at(*request))
            ok = True
        except Exception as exc:  # sent to the parent, which raises it
            answer, ok = exc, False
        pickle.dump((ok, answer, kept.records), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()
        kept.records.clear()
        if request is None or not ok:
            return


def main() -> None:
    # Buffered files of their own: with PYTHONUNBUFFERED, sys.stdout.buffer is a raw file whose
    # write may take part of a pickle (a signal in the middle), which pickle.dump does not retry.
    requests = open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
    answers = open(sys.stdout.fileno(), "wb", closefd=False)  # noqa: SIM115
    sys.stdout = sys.stderr  # the protocol owns stdout
    serve(requests, answers)


if __name__ == "__main__":  # the module's own classes, not __main__'s, cross the pipe
    from scoring.lane_process import main as serve_main

    serve_main()
