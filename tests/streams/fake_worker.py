"""A stand-in for `abuse-monitor worker` in the supervisor's tests, run as a script.

`fake_worker.py` is one worker process: it serves the worker's probes and metrics (the real
`Metrics`, in the supervisor's multiprocess directory) on `ABUSEMON_METRICS_PORT`, writes its
pid to `FAKE_PIDS/<pid>` and, when a signal stops it, the signal's number to
`FAKE_PIDS/<pid>.stopped`. Its slot number `i` (the end of `ABUSEMON_DATA_DIR`, `process-i`)
sets its metrics: 7 content events consumed, `i + 1` partitions assigned, a watermark of
`100 (i + 1)`. `FAKE_MODE`: `serve` (default), `crash` (exit status 3 at once), `stubborn`
(ignores SIGTERM and SIGINT); `FAKE_NOT_READY=i` / `FAKE_STUCK=i`: slot i never ready /
reports a stuck loop.

`fake_worker.py supervise PORT N` is a supervisor of N of them, serving on PORT, stopped by
SIGTERM or SIGINT like `abuse-monitor worker --processes N` (a stop timeout of 2 s).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streams.http import Liveness, serve
from streams.metrics import Metrics


def child() -> int:
    mode = os.environ.get("FAKE_MODE", "serve")
    if mode == "crash":
        return 3
    slot = int(os.environ["ABUSEMON_DATA_DIR"].rsplit("-", 1)[1])
    pids = Path(os.environ["FAKE_PIDS"])
    stopped: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopped.append(signum)

    handler = signal.SIG_IGN if mode == "stubborn" else stop
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.consumed.labels("content-events").inc(7)
    metrics.assigned.labels("content-events").set(slot + 1)
    metrics.watermark.labels("content").set(100 * (slot + 1))
    liveness = Liveness()
    liveness.assigned = os.environ.get("FAKE_NOT_READY") != str(slot)
    if os.environ.get("FAKE_STUCK") == str(slot):
        liveness.ticked -= 2 * liveness.stale_s
    serve(registry, liveness, "127.0.0.1", int(os.environ["ABUSEMON_METRICS_PORT"]))
    (pids / str(os.getpid())).write_text(str(slot))
    while not stopped:
        time.sleep(0.05)
    (pids / f"{os.getpid()}.stopped").write_text(str(stopped[0]))
    return 0


def supervise(port: int, processes: int) -> int:
    from streams.supervisor import Supervisor, signals_stop

    with tempfile.TemporaryDirectory() as metrics_dir:
        supervisor = Supervisor(
            [sys.executable, __file__],
            processes,
            dict(os.environ),
            metrics_dir,
            data_dir=metrics_dir,
            stop_timeout_s=2.0,
        )
        serve(supervisor.registry, supervisor, "127.0.0.1", port)
        with signals_stop(supervisor):
            supervisor.run()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["supervise"]:
        sys.exit(supervise(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit(child())
