"""A throw-away PostgreSQL server for the tests of the alert store, the worker's writes to it
and the console: `PostgresServer`, and the fixtures `postgres_server` (one per session) and
`postgres_url` (a fresh database per test), which tests/conftest.py makes available."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postgres_bin() -> Path:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
            "install the Debian package `postgresql` (check.sh does when run as root)"
        )
    newest = max(found, key=lambda path: int(Path(path).parts[-3].split(".")[0]))
    return Path(newest).parent


class PostgresServer:
    """A throw-away PostgreSQL server on a free loopback port, trust auth, that can be stopped
    and started again on the same port and data.

    PostgreSQL will not run as root, so as root the server runs as the `postgres` user.
    """

    def __init__(self) -> None:
        self.bin_dir = _postgres_bin()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="abusemon-pg-"))
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.data, self.log, self.port = self.root / "data", self.root / "server.log", _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        try:
            self._run(
                "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "-N"
            )
        except subprocess.CalledProcessError as exc:
            self.remove()
            pytest.fail(f"PostgreSQL initdb failed: {exc.stderr.decode()}")

    def _run(self, command: str, *args: str | Path) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin_dir / command), *map(str, args)],
            check=True,
            capture_output=True,
        )

    def start(self) -> PostgresServer:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -F"
        try:
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.log, "-o", options
            )
        except subprocess.CalledProcessError as exc:
            server_log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {exc.stderr.decode()}{server_log}")
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "stop", "-w", "-D", self.data, "-m", "fast")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session; yields its base URL."""
    server = PostgresServer()
    try:
        yield server.start().url
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test."""
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
