"""A throwaway PostgreSQL server for the ledger's tests and benchmarks: initdb in a temporary
directory, ``pg_ctl start`` on a free port of 127.0.0.1 (and a Unix socket in the same
directory), a fresh database per test, everything removed at :meth:`PostgresServer.stop`.

The binaries are found on ``PATH``, else in ``pg_config --bindir``, else in Debian's
``/usr/lib/postgresql/<version>/bin`` (``.ci/run`` installs Debian's ``postgresql`` package).
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user the
package creates (``runuser``, or ``su``), its directory handed to that user; as anyone else it
runs as them. Used by ``tests/ledger_fixtures.py`` (the ``postgres_server`` fixture) and by
``python -m bench.ledger``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVER_USER = "postgres"
"""Who runs the server when the tests run as root (Debian's package creates this user)."""
_TOOLS = ("initdb", "pg_ctl")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (what is missing, and how to get it)."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def find_bindir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``; :class:`PostgresUnavailable` if none."""
    found = [shutil.which(tool) for tool in _TOOLS]
    if all(found):
        initdb = Path(str(found[0])).resolve()
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    candidates = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
        )
        candidates.append(Path(out.stdout.strip()))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(d) for d in debian]
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in _TOOLS):
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL's initdb and pg_ctl are not installed (not on PATH, not in pg_config "
        "--bindir, not in /usr/lib/postgresql/*/bin): install Debian's postgresql package "
        "(apt-get install postgresql), as .ci/run does"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server of its own in a temporary directory (:meth:`start`, :meth:`stop`)."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: str | None) -> None:
        self.bindir, self.root, self.port, self.as_user = bindir, root, port, as_user
        self.data = root / "data"
        self._databases = 0

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user is not None:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self.as_user, "--", *command]
            else:
                command = ["su", self.as_user, "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    @classmethod
    def start(cls, *, fsync: bool = True) -> PostgresServer:
        """initdb and start a server on a free port of 127.0.0.1. ``fsync`` False: a faster
        server that is not crash-safe (never for figures of durable commits)."""
        bindir = find_bindir()
        as_user = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and PostgreSQL refuses to: no {SERVER_USER!r} user to run "
                    "it as (Debian's postgresql package creates it)"
                ) from None
            as_user = SERVER_USER
        root = Path(tempfile.mkdtemp(prefix="centinela-pg-"))
        if as_user is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        server = cls(bindir, root, _free_port(), as_user)
        try:
            server._init_and_start(fsync)
        except BaseException:
            server.stop()
            raise
        return server

    def _init_and_start(self, fsync: bool) -> None:
        self._run(
            "initdb", "-D", str(self.data), "--auth=trust", f"--username={SERVER_USER}",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=200",
            *([] if fsync else ["-c fsync=off"]),
        ]
        for attempt in range(3):  # the free port may be taken before the server binds it
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                    "-t", "60", "-o", " ".join(options), "start",
                )  # fmt: skip
                return
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                self.port = _free_port()
                options[0] = f"-p {self.port}"
                time.sleep(0.2)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "ledger") -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, closing any connection left to it."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (if it started) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
