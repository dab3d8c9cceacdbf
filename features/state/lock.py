"""The entity state's readers-writer lock: many readers at once, or one writer.

A writer waiting holds off new readers, so appends are not starved by a stream of reads. Reads
take it on every live query, so entering and leaving it is kept cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Reading:
    """``with lock.reading():`` — a plain context manager rather than a generator one, which
    costs a few times more to enter and leave, on every read."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, *_: object) -> None:
        self._lock.release_read()


class ReadWriteLock:
    """Many readers at once or one writer; a waiting writer holds off readers that come after it.
    Not reentrant: a thread must not take it again while it holds it."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._reading = _Reading(self)  # holds no state of its own: shared by every reader

    def reading(self) -> _Reading:
        return self._reading

    def acquire_read(self) -> None:
        with self._changed:
            while self._writing or self._writers_waiting:
                self._changed.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._changed:
            self._readers -= 1
            if not self._readers:
                self._changed.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._changed:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._changed.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
