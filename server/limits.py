"""Limits on what callers may ask of one server, and the checks that one server owns its port.

Overload is shed, not queued without end: :class:`Gate` admits at most ``max_in_flight`` calls
at once and holds at most ``max_queued`` more, first come first served; a call beyond both is
refused at once with RESOURCE_EXHAUSTED, so what is admitted finishes in a bounded time. A
queued call whose deadline passes leaves the queue without being scored.

Each caller also has a :class:`TokenBucket` (:class:`CallerBuckets`): ``rate`` calls, or
stream messages, per second with bursts of ``burst``. A unary call over its rate is refused;
a stream over its rate is slowed down (its messages wait for tokens). Callers are told apart
by :func:`caller_key`: the authenticated caller's name, or with authentication off the peer's
address without its port (:func:`peer_key`).

Both are driven from the event loop thread only (the interceptor in
:mod:`server.interceptors`), so they need no locks.

:func:`check_port_free` and :func:`port_holder` make a taken port a clear start error that
names who holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.errors import FailedPrecondition, ResourceExhausted
from scoring.caller import Caller

Clock = Callable[[], float]


class Overloaded(ResourceExhausted):
    """Every slot in flight and every place in the queue is taken."""


class RateLimited(ResourceExhausted):
    """The caller is over its rate."""


class StreamTooLong(ResourceExhausted):
    """A request stream sent more messages than ``max_stream_messages``."""


@dataclass
class Gate:
    """At most ``max_in_flight`` holders and ``max_queued`` waiters, served in order.

    :meth:`acquire` takes a slot or waits in the queue for one, or raises :class:`Overloaded`
    when the queue is full; every successful :meth:`acquire` must be paired with one
    :meth:`release`. A released slot passes straight to the first live waiter, so a call
    arriving later never overtakes the queue."""

    max_in_flight: int
    max_queued: int
    in_flight: int = 0
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque)

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        if self.in_flight < self.max_in_flight and not self.queued:
            self.in_flight += 1
            return
        if self.queued >= self.max_queued:
            raise Overloaded(
                f"server overloaded: {self.in_flight} calls in flight and {self.queued} "
                f"queued, the most it takes (max_in_flight {self.max_in_flight}, max_queued "
                f"{self.max_queued}); retry with backoff"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as the call went away: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; in_flight stays
                return
        self.in_flight -= 1


@dataclass
class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; starts full."""

    rate: float
    burst: float
    clock: Clock = time.monotonic
    tokens: float = -1.0
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> float:
        """Take one token if there is one and return 0; else take nothing and return the
        seconds until one is due."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def reserve(self) -> float:
        """Take one token now, going into debt if need be; return the seconds to wait before
        using it (0 when there was one)."""
        self._refill()
        self.tokens -= 1
        return max(0.0, -self.tokens / self.rate)

    @property
    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


class CallerBuckets:
    """One :class:`TokenBucket` per caller key, for at most ``max_callers`` keys: the least
    recently seen bucket is forgotten first, so many addresses cannot exhaust memory (a
    forgotten caller starts again with a full bucket)."""

    def __init__(
        self, rate: float, burst: float, clock: Clock = time.monotonic, max_callers: int = 10_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.clock)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def check(self, key: str) -> None:
        """Take a token for one call of ``key``, or raise :class:`RateLimited`."""
        wait = self.bucket(key).take()
        if wait > 0:
            raise RateLimited(
                f"rate limit: caller {key} is over {self.rate:g} calls a second (bursts of "
                f"{self.burst:g}); retry in {wait:.2f} s"
            )

    async def pace(self, key: str) -> None:
        """Take a token for one stream message of ``key``, waiting for it if need be."""
        wait = self.bucket(key).reserve()
        if wait > 0:
            await asyncio.sleep(wait)


def peer_key(context: Any) -> str:
    """The caller's address without its port: ``ipv4:10.0.0.7:53122`` → ``10.0.0.7``,
    ``ipv6:[::1]:53122`` → ``::1``; other forms (``unix:...``) whole."""
    peer = str(context.peer() or "unknown")
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0] or rest
        return host.strip("[]")
    return peer


def caller_key(caller: Caller | None, context: Any) -> str:
    """Whose rate a call spends: the authenticated caller's name; with authentication off
    (every call is the same anonymous caller) the peer's address, :func:`peer_key`."""
    if caller is not None and caller.method != "none":
        return caller.name
    return peer_key(context)


def deadline_of(context: Any) -> float | None:
    """The call's deadline on the :func:`time.monotonic` clock, or None when it has none."""
    if context is None:
        return None
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + max(0.0, remaining)


# --------------------------------------------------------------------------- one server per port


def port_holder(port: int) -> str | None:
    """``pid N (command)`` of the process listening on TCP ``port``, when this host's /proc
    tells (Linux, and a process this user may inspect); None otherwise."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            # local address HEX:PORT, state 0A is LISTEN, inode in column 9
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                continue
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        command = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
        return f"pid {pid} ({command[:120]})" if command else f"pid {pid}"
    return None


def port_taken(what: str, host: str, port: int) -> FailedPrecondition:
    """The start error for ``host:port`` in use, naming the holder when it can be found."""
    holder = port_holder(port)
    held = f"; held by {holder}" if holder else ""
    return FailedPrecondition(
        f"cannot serve {what} on {host}:{port}: the address is already in use{held}"
    )


def check_port_free(what: str, host: str, port: int) -> None:
    """Raise :func:`port_taken` if something already listens on ``host:port`` (port 0 always
    passes). Checked before gRPC binds, whose own failure is a multi-line log with no
    holder; gRPC's bind stays the real guard (``grpc.so_reuseport`` is off)."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return  # gRPC reports an unresolvable host itself
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as probe:
                # As gRPC binds: a port left in TIME_WAIT by a previous server is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise port_taken(what, host, port) from None
