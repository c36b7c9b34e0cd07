"""A real PostgreSQL server for tests and benchmarks, started here in a temporary folder on loopback.

It uses the server binaries of the machine (Debian's ``postgresql`` package: ``/usr/lib/postgresql/N/bin``,
or ``initdb``/``pg_ctl`` on PATH). PostgreSQL refuses to run as root, so as root the data folder belongs to
the ``postgres`` system user and the server runs as that user (``runuser``). Where no server can be
started, ``PostgresUnavailable`` says why, and the tests that need it skip with that reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres_server"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started on this machine (the reason is the message)."""


def _binaries() -> Path:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise PostgresUnavailable("no PostgreSQL server binaries (install the postgresql package)")
    return versions[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start a throw-away server; ``durable`` keeps fsync on (benchmarks), tests run without it."""
    try:
        import psycopg  # noqa: F401  (the driver must be installed too)
    except ImportError as exc:
        raise PostgresUnavailable("psycopg is not installed (pip install 'postqued-mcp[postgres]')") from exc
    bin_dir = _binaries()
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="postqued-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from exc
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "server.log"
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    steps = [
        [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"],
    ]
    try:
        for step in steps:
            done = subprocess.run(as_user + step, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise PostgresUnavailable(f"{Path(step[0]).name} failed: {' | '.join(tail)}")
        yield PostgresServer(port, folder)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
