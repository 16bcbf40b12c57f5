"""The supervisor of `worker --processes N`, over stand-in worker processes (fake_worker.py):
restarts, giving up, stopping on a signal, one metrics endpoint and probes for all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port
from streams.cli import main
from streams.http import serve
from streams.supervisor import GaveUp, Supervisor

FAKE = Path(__file__).with_name("fake_worker.py")
ROOT = Path(__file__).parents[2]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def fake_env(pids: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_PIDS": str(pids), **extra}


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of this process that exited stays a zombie until reaped: not running.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


class Running:
    """A supervisor running in a thread of the test, serving on a port of its own."""

    def __init__(self, tmp_path: Path, processes: int = 2, **env: str) -> None:
        self.pids_dir = tmp_path / "pids"
        self.pids_dir.mkdir()
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        self.supervisor = Supervisor(
            [sys.executable, str(FAKE)],
            processes,
            fake_env(self.pids_dir, **env),
            str(metrics_dir),
            data_dir=str(tmp_path / "data"),
            backoff_s=0.05,
            start_failures=3,
            stop_timeout_s=5.0,
        )
        self.port = free_port()
        self.server = serve(self.supervisor.registry, self.supervisor, "127.0.0.1", self.port)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.supervisor.run()
        except BaseException as exc:
            self.error = exc

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics(self) -> str:
        text: str = urllib.request.urlopen(self.url("/metrics"), timeout=5).read().decode()
        return text

    def stop(self) -> None:
        self.supervisor.request_stop()
        self.thread.join()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**options: str) -> Running:
        started.append(Running(tmp_path, **options))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def test_metrics_of_the_processes_are_combined_at_one_endpoint(
    running: Callable[..., Running],
) -> None:
    sup = running()
    wait_for(lambda: status(sup.url("/readyz")) == 200, "both processes ready")
    text = sup.metrics()
    # Counters are summed; each gauge as its mode says: partitions summed, watermark the max.
    assert sample(text, "abusemon_events_consumed_total", topic="content-events") == 14
    assert sample(text, "abusemon_assigned_partitions", topic="content-events") == 1 + 2
    assert sample(text, "abusemon_event_time_watermark_seconds", group="content") == 200
    assert sample(text, "abusemon_worker_processes") == 2
    assert sample(text, "process_resident_memory_bytes") is not None
    assert status(sup.url("/healthz")) == 200


def test_a_crashed_process_is_started_again_and_its_gauges_dropped(
    running: Callable[..., Running],
) -> None:
    sup = running()
    wait_for(lambda: status(sup.url("/readyz")) == 200, "both processes ready")
    first = {int(p.name): p.read_text() for p in sup.pids_dir.iterdir()}
    victim = next(pid for pid, slot in first.items() if slot == "1")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(list(sup.pids_dir.iterdir())) == 3, "the slot started again")
    wait_for(lambda: status(sup.url("/readyz")) == 200, "ready again")
    now = sup.supervisor.pids()
    assert victim not in now and set(first) - {victim} < set(now)
    text = sup.metrics()
    assert sample(text, "abusemon_worker_restarts_total") == 1
    # The dead process's counts stay in the total; its gauges are gone, not counted twice.
    assert sample(text, "abusemon_events_consumed_total", topic="content-events") == 21
    assert sample(text, "abusemon_assigned_partitions", topic="content-events") == 3


def test_a_process_that_crashes_at_start_up_stops_the_supervisor(
    running: Callable[..., Running],
) -> None:
    sup = running(FAKE_MODE="crash")
    sup.thread.join(timeout=60)
    assert not sup.thread.is_alive(), "the supervisor kept starting the process"
    assert isinstance(sup.error, GaveUp)
    message = str(sup.error)
    assert "\n" not in message
    assert "exited with status 3 before it was ready, 3 times in a row" in message
    assert sup.supervisor.pids() == []


def test_the_probes_wait_for_every_process(running: Callable[..., Running]) -> None:
    sup = running(FAKE_NOT_READY="1")
    wait_for(lambda: sup.supervisor.children[0].ready, "process 0 ready")
    assert status(sup.url("/readyz")) == 503
    assert status(sup.url("/healthz")) == 200


def test_a_stuck_process_fails_the_liveness_probe(running: Callable[..., Running]) -> None:
    sup = running(FAKE_STUCK="0")
    wait_for(lambda: not sup.supervisor.children[0].live, "process 0 seen stuck")
    assert status(sup.url("/healthz")) == 503


@pytest.mark.parametrize(
    ("signum", "mode"),
    [(signal.SIGTERM, "serve"), (signal.SIGINT, "serve"), (signal.SIGTERM, "stubborn")],
    ids=["SIGTERM", "SIGINT", "SIGTERM-ignored"],
)
def test_a_signal_stops_every_process(tmp_path: Path, signum: int, mode: str) -> None:
    port = free_port()
    supervisor = subprocess.Popen(
        [sys.executable, str(FAKE), "supervise", str(port), "2"],
        env=fake_env(tmp_path, FAKE_MODE=mode),
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: status_or_none(port) == 200, "both processes ready")
        pids = [int(p.name) for p in tmp_path.iterdir()]
        assert len(pids) == 2
        supervisor.send_signal(signum)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()
    assert not any(alive(pid) for pid in pids)
    if mode == "serve":  # each process got the signal and stopped by itself
        got = [(tmp_path / f"{pid}.stopped").read_text() for pid in pids]
        assert got == [str(int(signum))] * 2
    else:  # they ignored it, and were killed after the stop timeout
        assert not any((tmp_path / f"{pid}.stopped").exists() for pid in pids)


def status_or_none(port: int) -> int | None:
    try:
        return status(f"http://127.0.0.1:{port}/readyz")
    except OSError:
        return None


def test_the_cli_takes_a_count_or_auto_and_reports_giving_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import streams.supervisor

    asked: list[int] = []
    message = "worker process 0 exited with status 3 before it was ready, 5 times in a row"

    def gives_up(settings: object, processes: int) -> None:
        asked.append(processes)
        raise GaveUp(message)

    monkeypatch.setattr(streams.supervisor, "run_supervisor", gives_up)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert main(["worker", "--processes", "auto"]) == 1
    assert asked == [3]
    err = capsys.readouterr().err
    assert err == f"abuse-monitor: error: {message}\n"
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exit_:
            main(["worker", "--processes", bad])
        assert exit_.value.code == 2
        assert "a positive whole number or auto" in capsys.readouterr().err
