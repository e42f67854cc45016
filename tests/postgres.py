"""
A private PostgreSQL cluster the test may stop and start, modelled on ``RedisServer``
in ``tests/servers.py``: ``initdb`` into a temp dir, a loopback port, no fsync.

    with PostgresServer() as pg:
        migrate(pg.url)                 # manage.py migrate, in a subprocess
        with ServerProcess(kind="serve", db_url=pg.url) as server:
            ...
            pg.stop()                   # pg_ctl stop -m immediate: a crash, connections cut
            pg.start()                  # the same port and data again, after recovery

PostgreSQL refuses to run as root: when the tests are root (CI containers), every
``initdb``/``pg_ctl`` runs as the ``postgres`` user (``runuser -u postgres --``), as in
``scripts/test``. ``PG_BIN`` is None when no server binaries are installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .servers import Service, free_port

__all__ = ["PG_BIN", "PostgresServer"]


def _pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` (Debian's layout)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda p: [int(part) if part.isdigit() else 0 for part in p.parent.name.split(".")])
    return found[-1] if found else None


#: The directory of ``initdb``, ``pg_ctl``, ``createdb``, or None when not installed.
PG_BIN = _pg_bin()

_USER = "paintbrush"


class PostgresServer(Service):
    """A throwaway cluster with one database, ``paintbrush``, trust auth on loopback.

    ``stop()`` is an immediate shutdown (every backend is cut off mid-statement, as in
    a crash; recovery runs at the next start); ``start()`` starts it again on the same
    port with the same data."""

    def __init__(self, port: int | None = None) -> None:
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)")
        self.bin = PG_BIN
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pbfault-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.running = False
        self.starts = 0
        try:
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres")
            self._run("initdb", "-D", str(self.data), "-U", _USER, "--auth=trust", "--no-sync")
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgres://{_USER}@127.0.0.1:{self.port}/paintbrush"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{self.log_tail()}")

    def start(self) -> None:
        """Start, and return once it accepts connections (``pg_ctl -w`` waits)."""
        assert not self.running, "already running"
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        self.running = True
        if self.starts == 0:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER, "paintbrush")
        self.starts += 1

    def stop(self) -> None:
        """Immediate shutdown, and wait until the postmaster is gone."""
        if not self.running:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.running = False

    def log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- last {len(tail)} lines of {self.log} ---\n" + "\n".join(tail)
