"""`abuse-monitor worker --processes N`: N worker processes in one consumer group, under one
supervisor, to use every core of a machine with one command.

- Each worker process is exactly `abuse-monitor worker`, with its HTTP endpoint on a free
  loopback port, its own data directory (`ABUSEMON_DATA_DIR/process-<i>`) and its metrics
  written to a directory the supervisor shares with them (prometheus-client's multiprocess
  mode, `PROMETHEUS_MULTIPROC_DIR`).
- The supervisor serves `ABUSEMON_METRICS_HOST:ABUSEMON_METRICS_PORT`: `/metrics` sums the
  processes (each gauge combines as its `multiprocess_mode` says, streams/metrics.py),
  `/healthz` is 200 while no process reports a stuck loop, `/readyz` 200 when every process
  is ready. It reads its processes' probes every second.
- A process that exits is started again after a back-off (`ABUSEMON_PROCESS_RESTART_BACKOFF_S`,
  doubled for each crash in a row before the process was ready, up to 30 s). A process that
  crashes before it is ready `ABUSEMON_PROCESS_START_FAILURES` times in a row stops them all:
  `GaveUp`, one line, exit status 1.
- SIGTERM or SIGINT is forwarded to every process; the supervisor waits for them to stop
  (`ABUSEMON_PROCESS_STOP_TIMEOUT_S`), then kills those still running.

Why one endpoint rather than a port per process: docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector

from streams.broker import free_port
from streams.http import serve
from streams.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 30.0
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 1.0


class GaveUp(Exception):
    """A worker process crashed before it was ready too many times in a row."""


@dataclass
class Child:
    """One worker process slot: the process running in it now, and what its probes said."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    live: bool = True  # False once its /healthz said 503 (a stuck loop)
    ready: bool = False  # its /readyz said 200 last time
    was_ready: bool = False  # its /readyz said 200 since it started
    failures: int = 0  # exits in a row before it was ready
    restart_at: float | None = None  # monotonic time of its next start


class Supervisor:
    """Runs `processes` copies of `command`, each with `env` and its own port, and keeps them
    running until `request_stop`. `run` returns once they have stopped."""

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        env: Mapping[str, str],
        metrics_dir: str,
        data_dir: str | None = None,
        backoff_s: float = 1.0,
        start_failures: int = 5,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.metrics_dir = metrics_dir
        self.data_dir = data_dir
        self.backoff_s = backoff_s
        self.start_failures = start_failures
        self.stop_timeout_s = stop_timeout_s
        self.children = [Child(index) for index in range(processes)]
        self.stop_signal: int | None = None
        self.wake = threading.Event()
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        self.registry.register(_ProcessTotals(self.pids))
        self.restarts = Counter(
            "abusemon_worker_restarts",
            "Worker processes the supervisor started again after they exited.",
            registry=self.registry,
        )
        self.running = Gauge(
            "abusemon_worker_processes",
            "Worker processes running under the supervisor.",
            registry=self.registry,
        )
        self.running.set_function(lambda: len(self.pids()))

    # What the supervisor's probes answer.

    def live(self) -> bool:
        return all(child.live for child in self.children)

    def ready(self) -> bool:
        return all(child.ready for child in self.children)

    def pids(self) -> list[int]:
        return [
            child.process.pid
            for child in self.children
            if child.process is not None and child.process.poll() is None
        ]

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop every process with `signum` (from a signal handler or another thread)."""
        self.stop_signal = signum
        self.wake.set()

    def run(self) -> None:
        """Start the processes, restart those that exit, and stop them all on `request_stop`.
        Raises `GaveUp`, with every process stopped, when one cannot start."""
        for child in self.children:
            self._start(child)
        prober = threading.Thread(target=self._probe_loop, daemon=True, name="probes")
        prober.start()
        try:
            while self.stop_signal is None:
                now = time.monotonic()
                for child in self.children:
                    if child.process is not None and child.process.poll() is not None:
                        self._exited(child, now)
                    if child.restart_at is not None and now >= child.restart_at:
                        self.restarts.inc()
                        self._start(child)
                self.wake.wait(0.1)
        finally:
            self._stop_all(self.stop_signal or signal.SIGTERM)

    def _start(self, child: Child) -> None:
        child.port = free_port()
        env = self.env | {
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "ABUSEMON_METRICS_HOST": "127.0.0.1",
            "ABUSEMON_METRICS_PORT": str(child.port),
        }
        if self.data_dir is not None:
            env["ABUSEMON_DATA_DIR"] = os.path.join(self.data_dir, f"process-{child.index}")
            os.makedirs(self.data_dir, exist_ok=True)
        child.live, child.ready, child.was_ready, child.restart_at = True, False, False, None
        child.process = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL)
        log.info(
            "worker process %d started: pid %d, its probes and metrics on 127.0.0.1:%d",
            child.index,
            child.process.pid,
            child.port,
        )

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        process, code = child.process, child.process.returncode
        mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        child.process = None
        child.failures = 0 if child.was_ready else child.failures + 1
        child.live, child.ready = True, False
        if child.failures >= self.start_failures:
            raise GaveUp(
                f"worker process {child.index} exited with status {code} before it was "
                f"ready, {child.failures} times in a row; stopped every worker process"
            )
        delay = min(BACKOFF_MAX_S, self.backoff_s * 2 ** max(0, child.failures - 1))
        child.restart_at = now + delay
        log.warning(
            "worker process %d (pid %d) exited with status %s; starting it again in %.0f s",
            child.index,
            process.pid,
            code,
            delay,
        )

    def _stop_all(self, signum: int) -> None:
        running = [c.process for c in self.children if c.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        deadline = time.monotonic() + self.stop_timeout_s
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process pid %d did not stop: killed", process.pid)
                process.kill()
                process.wait()
            mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        for child in self.children:
            child.process, child.ready, child.restart_at = None, False, None

    def _probe_loop(self) -> None:
        while self.stop_signal is None:
            for child in self.children:
                process = child.process
                if process is None:
                    continue
                live = _probe(child.port, "/healthz")
                ready = _probe(child.port, "/readyz")
                if child.process is process:  # not restarted meanwhile
                    child.live = live is not False
                    child.ready = ready is True
                    child.was_ready = child.was_ready or child.ready
            self.wake.wait(PROBE_EVERY_S)


def _probe(port: int, path: str) -> bool | None:
    """True on 200, False on another status, None when nothing answered (starting up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=PROBE_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return False
    except OSError:
        return None


class _ProcessTotals:
    """The `process_*` metrics of the supervisor and its worker processes together: memory,
    CPU time and open files summed (the pod's or machine's use), the latest start time."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        totals: dict[str, float] = {}
        for pid in [os.getpid(), *self.pids()]:
            collector = ProcessCollector(registry=None, pid=functools.partial(int, pid))
            for family in collector.collect():  # nothing for a process gone meanwhile
                families.setdefault(family.name, family)
                for sample in family.samples:
                    before = totals.get(sample.name)
                    if before is None:
                        totals[sample.name] = sample.value
                    elif sample.name in ("process_start_time_seconds", "process_max_fds"):
                        totals[sample.name] = max(before, sample.value)
                    else:
                        totals[sample.name] = before + sample.value
        for family in families.values():
            total = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                total.add_sample(sample.name, {}, totals[sample.name])
            yield total


@contextlib.contextmanager
def signals_stop(supervisor: Supervisor) -> Iterator[None]:
    """SIGTERM and SIGINT stop the supervisor, which forwards the signal to its processes."""

    def handler(signum: int, frame: FrameType | None) -> None:
        # Only the flag: the main loop looks at it every 0.1 s. (Setting an Event here could
        # deadlock on its lock, which the interrupted main thread may hold.)
        supervisor.stop_signal = signum

    previous = {
        signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def worker_environment(settings: Settings) -> dict[str, str]:
    """The worker processes' environment: this one's, with one labeller pseudonym key for all
    of them (a random one when none is set, so that they name a labeller alike)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if not settings.labeler_pseudonym_key.get_secret_value():
        env["ABUSEMON_LABELER_PSEUDONYM_KEY"] = secrets.token_hex(32)
    return env


def run_supervisor(settings: Settings, processes: int) -> None:
    """`abuse-monitor worker --processes N` with N > 1. Raises `GaveUp` (and, before any
    process starts, `streams.topics.TopicMismatch`)."""
    from streams.topics import prepare_before_start

    # Once, before the processes start: one line for a topic problem, and no N-way race
    # to create missing topics.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] supervisor: %(message)s")
    )
    log.addHandler(handler)
    log.setLevel(settings.log_level.upper())
    log.propagate = False
    prepare_before_start(settings)
    with tempfile.TemporaryDirectory(prefix="abuse-monitor-metrics-") as metrics_dir:
        supervisor = Supervisor(
            [sys.executable, "-m", "streams.cli", "worker"],
            processes,
            worker_environment(settings),
            metrics_dir,
            data_dir=settings.data_dir,
            backoff_s=settings.process_restart_backoff_s,
            start_failures=settings.process_start_failures,
            stop_timeout_s=settings.process_stop_timeout_s,
        )
        server = serve(
            supervisor.registry, supervisor, settings.metrics_host, settings.metrics_port
        )
        try:
            with signals_stop(supervisor):
                supervisor.run()
        finally:
            server.shutdown()
            server.server_close()
