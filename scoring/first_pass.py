"""The first pass of a bulk run: stage one of every chunk of a stream, which needs no model.

Stage one of a chunk takes the main thread alone (the Parquet read-ahead beside it is light), so
with two processes every other chunk is done in a child process (:mod:`scoring.first_pass_child`,
started as ``python -m``, not by :mod:`multiprocessing`, which would import the ``centinela``
script again). The child reads the stream's files itself, writes its chunks' kept files and
their keys, and holds one chunk at a time; the parent does the other chunks meanwhile and then
reads the child's keys back, so the result is what one process gives.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import polars as pl

from features.build import Declarations, stage_one
from features.errors import CentinelaError, ConfigError, FailedPrecondition
from features.history import Keyed
from features.kept import save_stage_one
from features.tables import INSPECTIONS_SCHEMA, TableStream
from features.watchlist import Watchlist

T = TypeVar("T")

REQUEST_FILE = "request.pickle"
ERROR_FILE = "error.pickle"
STDERR_FILE = "stderr.txt"


@dataclass(frozen=True)
class FirstPass:
    """The first pass over a stream (:func:`first_pass`): what history needs of every shipment,
    in stream order, and the files that keep each chunk's declarations and stage one, in chunk
    order (none when they were not kept)."""

    keyed: Keyed
    kept: list[Path]


def first_pass(
    stream: TableStream, watchlist: Watchlist, keep: Path | None = None, *, processes: int = 1
) -> FirstPass:
    """Stage one of every chunk of ``stream`` with ``watchlist``, which needs no model: the
    first pass of :meth:`scoring.scorer.Scorer.stream_features`. With ``keep`` (a directory of
    the run's own, created if missing) each chunk's declarations and stage one are written
    there, one file a chunk, and the second pass reads them back instead of computing them
    again. ``processes=2`` (``keep`` required) does every other chunk in a child process."""
    if processes not in (1, 2) or (processes == 2 and keep is None):
        raise ConfigError(
            f"first pass: processes must be 1, or 2 with a directory to keep chunks in; "
            f"not {processes}{'' if keep else ' without one'}"
        )
    if keep is None:
        return FirstPass(Keyed.concat([k for _, k in chunk_keys(stream, watchlist, None)]), [])
    keep.mkdir(parents=True, exist_ok=True)
    if processes == 2:
        keyed = _two_processes(stream, watchlist, keep)
    else:
        keyed = Keyed.concat([k for _, k in chunk_keys(stream, watchlist, keep)])
    return FirstPass(keyed, [kept_file(keep, index) for index in range(_chunk_count(stream))])


def kept_file(keep: Path, index: int) -> Path:
    """Where chunk ``index``'s declarations and stage one are kept."""
    return keep / f"stage-one-{index:06d}.kept"


def keyed_file(keep: Path, index: int) -> Path:
    """Where the child process leaves chunk ``index``'s keys for the parent."""
    return keep / f"keyed-{index:06d}.pickle"


def _chunk_count(stream: TableStream) -> int:
    """How many chunks :meth:`TableStream.chunks` yields: Parquet batches of ``chunk_rows``
    rows, the last one shorter."""
    return -(-stream.total // stream.chunk_rows)


def chunk_keys(
    stream: TableStream, watchlist: Watchlist, keep: Path | None, step: int = 1, first: int = 0
) -> Iterator[tuple[int, Keyed]]:
    """Stage one of chunks ``first``, ``first + step``, ... of ``stream``: each one's index and
    keys, its declarations and stage one kept in ``keep`` if given (:func:`kept_file`)."""
    for index, chunk in enumerate(read_ahead(stream.chunks())):
        if index % step != first:
            continue
        declarations = Declarations.from_tables(chunk.shipments, chunk.goods, watchlist)
        basics = stage_one(declarations, watchlist)
        if keep is not None:
            save_stage_one(kept_file(keep, index), declarations, basics)
        yield index, basics.keyed


def _two_processes(stream: TableStream, watchlist: Watchlist, keep: Path) -> Keyed:
    """Even chunks here, odd ones in the child; the child's keys read back in chunk order."""
    request = {
        "stream": replace(stream, inspections=pl.DataFrame(schema=INSPECTIONS_SCHEMA)),
        "watchlist": watchlist,
    }
    with (keep / REQUEST_FILE).open("wb") as out:
        pickle.dump(request, out, protocol=pickle.HIGHEST_PROTOCOL)
    with (keep / STDERR_FILE).open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "scoring.first_pass_child", str(keep)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=_child_env(),
        )
    try:
        mine: dict[int, Keyed] = {}
        for index, keyed in chunk_keys(stream, watchlist, keep, step=2):
            mine[index] = keyed
            _check(child, keep)
        child.wait()
        _check(child, keep)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    parts: list[Keyed] = []
    for index in range(_chunk_count(stream)):
        if index in mine:
            parts.append(mine.pop(index))
            continue
        try:
            with keyed_file(keep, index).open("rb") as saved:
                parts.append(pickle.load(saved))
        except FileNotFoundError:
            raise FailedPrecondition(
                f"the first pass's child process left no keys of chunk {index}"
            ) from None
    return Keyed.concat(parts)


def _child_env() -> dict[str, str]:
    project = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _check(child: subprocess.Popen[bytes], keep: Path) -> None:
    """Raise the child's error if it has failed: its own when it raised one of Centinela's,
    else its exit status and the last line of its stderr."""
    status = child.poll()
    if status is None or status == 0:
        return
    if (keep / ERROR_FILE).exists():
        with (keep / ERROR_FILE).open("rb") as saved:
            error = pickle.load(saved)
        if isinstance(error, CentinelaError):
            raise error
    lines = (keep / STDERR_FILE).read_text("utf-8", "replace").strip().splitlines()
    raise FailedPrecondition(
        f"the first pass's child process failed (exit status {status})"
        + (f": {lines[-1][:300]}" if lines else "")
    )


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items`` in order, the next one made in a thread while the caller works on this one:
    reading Parquet, filtering goods and LightGBM's predictions run outside the GIL, on the
    other core."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item
