"""Throughput of the worker against the ceiling of a raw Kafka consumer, on the embedded broker.

    python bench/throughput.py [--hours 1] [--rate 20] [--repeat 3] [--quick]
                               [--profile DIR] [--out bench-throughput.json]

One run, one machine, one embedded broker, the same pre-produced simulator events:

(a) the ceiling: a raw aiokafka consumer reading and JSON-decoding them (`--repeat` times);
(b) `abuse-monitor worker` with every detector on, from its first message consumed until
    it is done with its last (its stages idle: CPU under IDLE_CPU, polled every half second);
(c) a no-op Faust worker (`bench/noop_faust.py`: the worker's `faust.App`, one agent per
    input topic iterating `stream.events()` and nothing else), the framework's own cost;
(f) `abuse-monitor evaluate` offline over the same file (the function, the collector tuned as
    the command tunes it);
(g) one worker process against two in one consumer group, over the same events produced
    to topics of the group's own before the processes start together; throughput as in (b),
    over both, and each process's CPU seconds per second
    (`cpu_share`: 1.0 is a process that never waited);
(q) the peer: a Quix Streams application counting events per key, in RocksDB-backed state
    and in a dict (bench/quix_peer.py), run with a Python of its own where Quix Streams is
    installed (`--quix-python`; by default a venv made once under ~/.cache);
(g0) what the machine gives two processes that share nothing: `evaluate` in two processes at
    once against one alone (their events per second summed), the ceiling of (g) here;
(b0), (f0) with `--baseline DIR`: (b) and (f) of another checkout (say, the commit before a
    change), run in turn with this one's on the same events and broker, and (g) of it;
(d) the close-to-alert latency at a fixed offered rate (`--latency-rate`, 20k events/s): the
    alert's arrival on the alerts topic minus the moment the last input partition's
    watermark passed its window's end plus the lateness (bench/latency.py's "from last
    watermark"; events are stamped with the wall clock), with 10 s windows and 2 s of
    lateness; "from window close" (the wall-clock end plus the lateness) beside it.

Every consumer has its own group, so each reads every message. `--profile DIR` also runs the
worker once more under `py-spy record` (not timed) and writes DIR/worker.raw (collapsed
stacks) and DIR/worker.svg; `bench/profile_summary.py DIR/worker.raw` summarises it.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from simulator import SimConfig, write_files
from streams.broker import EmbeddedBroker, free_port
from streams.evaluate import evaluate
from streams.kafka import ensure_input_topics, replay
from streams.runtime import gc_tuned
from streams.settings import Settings

BENCH = Path(__file__).resolve().parent
WORKER = [sys.executable, "-m", "streams.cli", "worker"]
NOOP = [sys.executable, str(BENCH / "noop_faust.py")]
QUIX_VERSION = "3.28.1"
QUIX_VENV = Path.home() / ".cache" / "abuse-monitor" / f"bench-quixstreams-{QUIX_VERSION}"


def baseline_env(checkout: Path) -> dict[str, str]:
    """The environment that runs another checkout's code (say, the commit before a change)."""
    return {"PYTHONPATH": str(checkout.resolve())}


def evaluate_elsewhere(checkout: Path, events: Path, processes: int = 1) -> list[float]:
    """Seconds `evaluate` of a checkout takes over the events, timed inside its process as
    this checkout's is: in each of `processes` processes started together."""
    code = "\n".join(
        [
            "import contextlib, sys, time",
            "from streams.evaluate import evaluate",
            "from streams.settings import Settings",
            "try:",
            "    from streams.runtime import gc_tuned",
            "except ImportError:  # a checkout from before the command tuned the collector",
            "    gc_tuned = contextlib.nullcontext",
            "t = time.perf_counter()",
            "with gc_tuned():",
            "    evaluate(sys.argv[1], Settings(input_partitions=4))",
            "print(time.perf_counter() - t)",
        ]
    )
    env = os.environ | baseline_env(checkout)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(events)],
            env=env,
            cwd=checkout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    seconds = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"evaluate of {checkout} failed: {err.strip()[-500:]}")
        seconds.append(float(out.split()[-1]))
    return seconds


async def create_input_topics(settings: Settings) -> None:
    """The input topics, 4 partitions each, with their retention set: the embedded broker
    reports only the topic settings given at creation, and Quix Streams reads this one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        week = {"retention.ms": str(7 * 86400 * 1000)}
        names = [settings.content_topic, settings.report_topic, settings.labels_topic]
        await admin.create_topics([NewTopic(n, 4, 1, topic_configs=week) for n in names])
    finally:
        await admin.close()


def quix_python(given: str | None) -> str:
    """A Python that has Quix Streams: the one given, or a venv made once for the bench."""
    if given:
        return given
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", f"quixstreams=={QUIX_VERSION}"]
        subprocess.run(pip, check=True)
    return str(python)


def quix_peer(
    python: str, broker: EmbeddedBroker, topics: list[str], total: int, state: bool
) -> float:
    """Events per second of the Quix Streams peer over the pre-produced events."""
    cmd = [python, str(BENCH / "quix_peer.py"), "--broker", broker.bootstrap, "--total", str(total)]
    cmd += ["--topics", *topics] + (["--state"] if state else [])
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=1800, cwd=BENCH).stdout
    return float(orjson.loads(out.splitlines()[-1])["per_s"])


def metric_sum(url: str, name: str, **labels: str) -> float | None:
    """The sum of a metric's samples on a /metrics page, None if the page does not answer."""
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def consumed(urls: list[str]) -> float:
    return sum(metric_sum(u, "abusemon_events_consumed_total") or 0.0 for u in urls)


async def raw_consume(bootstrap: str, topics: list[str], total: int) -> float:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batches:
                started = time.perf_counter()
            for messages in batches.values():
                for message in messages:
                    orjson.loads(message.value)
                seen += len(messages)
    finally:
        await consumer.stop()
    assert started is not None
    return seen / (time.perf_counter() - started)


def worker_env(broker: EmbeddedBroker, app_id: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEMON_")}
    env.update(
        PYTHONPATH=str(BENCH.parent),  # this checkout's code; `baseline_env` another's
        ABUSEMON_BROKER=broker.url,
        ABUSEMON_APP_ID=app_id,
        ABUSEMON_INPUT_PARTITIONS="4",
        ABUSEMON_PARTITIONS="4",
        ABUSEMON_METRICS_HOST="127.0.0.1",
        ABUSEMON_METRICS_PORT=str(port),
        ABUSEMON_LOG_LEVEL="warning",
        ABUSEMON_SESSION_TIMEOUT_S="6",
        ABUSEMON_HEARTBEAT_INTERVAL_S="1",
        ABUSEMON_REBALANCE_TIMEOUT_S="4",
        ABUSEMON_DATA_DIR=tempfile.mkdtemp(prefix=f"abusemon-{app_id}-"),
    )
    return env | extra  # `extra` wins


def cpu_seconds(urls: list[str]) -> float:
    return sum(metric_sum(u, "process_cpu_seconds_total") or 0.0 for u in urls)


# CPU seconds per second of each run of processes, by the name of the run: how far a run was
# bound by its CPU (1.0 per process when it never waited).
CPU_SHARE: dict[str, list[float]] = {}
# Events consumed by each process of a run of several, by the name of the run.
SPLIT: dict[str, list[int]] = {}


# CPU seconds per second of a worker process with nothing left to do (timers, scrapes).
IDLE_CPU = 0.1


def time_consumption(
    urls: list[str], total: int, timeout_s: float = 1800.0, name: str = ""
) -> float:
    """Events per second from the first event consumed (over all `urls`) until the processes
    are done with the `total`th: for workers, until their stages are idle, since stage 2
    may still be closing windows when the last event is consumed (with two workers, most of
    it was). The processes' CPU seconds per second and per process over that span go to
    CPU_SHARE."""
    deadline = time.monotonic() + timeout_s
    while consumed(urls) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("nothing consumed")
        time.sleep(0.05)
    started, cpu = time.perf_counter(), cpu_seconds(urls)
    while consumed(urls) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumed {consumed(urls)} of {total}")
        time.sleep(0.5)  # each scrape costs the worker a few ms: not too often
    finished = time.perf_counter()
    if cpu:  # the no-op worker has no process metrics, and no stages
        finished, spent = until_idle(urls, finished)
        share = (spent - cpu) / (finished - started) / len(urls)
        CPU_SHARE.setdefault(name, []).append(round(share, 2))
    return total / (finished - started)


def until_idle(urls: list[str], consumed_at: float) -> tuple[float, float]:
    """When the processes were last busy (over IDLE_CPU each, polled every half second; the
    moment the last event was consumed if never after it), and their CPU seconds then."""
    last_busy, spent = consumed_at, cpu_seconds(urls)
    before, polled, quiet = spent, consumed_at, 0
    while quiet < 2:
        time.sleep(0.5)
        now, cpu = time.perf_counter(), cpu_seconds(urls)
        if (cpu - before) / (now - polled) > IDLE_CPU * len(urls):
            last_busy, spent, quiet = now, cpu, 0
        else:
            quiet += 1
        before, polled = cpu, now
    return last_busy, spent


def run_processes(
    commands: list[list[str]],
    envs: list[dict[str, str]],
    total: int,
    after: Callable[[list[str]], None] | None = None,
    name: str = "",
) -> float:
    """Start the processes, time their consumption, call `after` (say, to check that every
    one took part), stop them."""
    procs = [
        subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=env.get("PYTHONPATH") or BENCH.parent,  # `-m` imports from the folder it runs in
        )
        for cmd, env in zip(commands, envs, strict=True)
    ]
    urls = [f"http://127.0.0.1:{env['ABUSEMON_METRICS_PORT']}/metrics" for env in envs]
    try:
        per_s = time_consumption(urls, total, name=name)
        if after is not None:
            after(urls)
        return per_s
    finally:
        stop_processes(*procs)


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each, then wait; SIGKILL to any still running after 30 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_group(urls: list[str], topics: list[str], partitions: int) -> None:
    """Until every process has joined and every partition of `topics` is assigned, stably."""
    deadline, stable = time.monotonic() + 120, 0
    while stable < 10:  # a second without change
        if time.monotonic() > deadline:
            raise TimeoutError("the consumer group did not settle")
        time.sleep(0.1)
        counts = [
            [metric_sum(u, "abusemon_assigned_partitions", topic=t) or 0.0 for t in topics]
            for u in urls
        ]
        settled = all(sum(c) > 0 for c in counts) and all(
            sum(c[i] for c in counts) == partitions for i in range(len(topics))
        )
        stable = stable + 1 if settled else 0


def group_topics(broker: EmbeddedBroker, app_id: str) -> tuple[Settings, dict[str, str]]:
    """Settings of a worker group with topics of its own, 4 partitions each, created; and the
    same topics as `ABUSEMON_*` variables for its processes."""
    topics = {
        "content_topic": f"{app_id}-content-events",
        "report_topic": f"{app_id}-report-events",
        "labels_topic": f"{app_id}-labels",
        "alerts_topic": f"{app_id}-alerts",
    }
    settings = Settings(
        broker=broker.url, app_id=app_id, input_partitions=4, partitions=4, **topics
    )
    asyncio.run(ensure_input_topics(settings))
    return settings, {f"ABUSEMON_{k.upper()}": v for k, v in topics.items()}


def scaling(
    broker: EmbeddedBroker,
    events: Path,
    total: int,
    processes: int,
    code: dict[str, str] | None = None,
    prefix: str = "",
) -> float:
    """Events per second of `processes` workers in one group over the same pre-produced events
    (`code`: the environment that runs another checkout's, as `baseline_env` makes it).

    The processes start together on a full input, so the group's first join (which the
    broker holds a few seconds for late members) takes them all: none waits for a producer,
    which on a machine of two cores would share them and bound the run (it did, before)."""
    name = prefix + {1: "one_worker", 2: "two_workers"}.get(processes, f"{processes}_workers")
    app_id = f"bench-scale-{name.replace('_', '-')}"
    settings, topics = group_topics(broker, app_id)
    asyncio.run(replay(events, settings))
    # A longer session: the broker holds a group's first join for about half of it.
    extra = topics | {"ABUSEMON_SESSION_TIMEOUT_S": "20", "ABUSEMON_REBALANCE_TIMEOUT_S": "15"}
    envs = [
        worker_env(broker, app_id, free_port(), **extra) | (code or {}) for _ in range(processes)
    ]

    def shares(urls: list[str]) -> None:
        split = [metric_sum(u, "abusemon_events_consumed_total") or 0.0 for u in urls]
        SPLIT[name] = [round(n) for n in split]
        if not all(split):
            raise RuntimeError(f"a worker of {processes} consumed nothing: {split}")

    return run_processes([WORKER] * processes, envs, total, after=shares, name=name)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def profile(broker: EmbeddedBroker, total: int, out: Path) -> None:
    """Run the worker under py-spy over the pre-produced events and write its stacks."""
    out.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    port = free_port()
    env = worker_env(broker, "bench-profile", port)
    for fmt, path in (("raw", out / "worker.raw"), ("flamegraph", out / "worker.svg")):
        env["ABUSEMON_APP_ID"] = f"bench-profile-{fmt}"
        cmd = [spy, "record", "--rate", "100", "--format", fmt, "-o", str(path), "--", *WORKER]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH.parent
        )
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            time_consumption([url], total, name="profiled_worker")
        finally:
            # py-spy writes its output when the worker (its child) exits.
            for child in children(proc.pid):
                os.kill(child, signal.SIGTERM)
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours of events")
    parser.add_argument("--rate", type=float, default=20.0, help="organic content events/s")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the cheap measurements")
    parser.add_argument("--quick", action="store_true", help="a short run: 0.2 h, 1 repeat")
    parser.add_argument("--skip-scaling", action="store_true", help="leave out (g)")
    parser.add_argument("--profile", type=Path, help="also profile the worker into this folder")
    parser.add_argument("--skip-quix", action="store_true", help="leave out (q)")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose worker and evaluate run in turn"
    )
    parser.add_argument("--quix-python", help="a Python with quixstreams installed")
    parser.add_argument("--latency-rate", type=float, default=20_000.0, help="(d), events/s")
    parser.add_argument("--skip-latency", action="store_true", help="leave out (d)")
    parser.add_argument("--out", default="bench-throughput.json")
    args = parser.parse_args()
    if args.quick:
        args.hours, args.repeat = 0.2, 1

    work = Path(tempfile.mkdtemp())
    events = work / "events.jsonl"
    total, _ = write_files(events, SimConfig(duration_s=args.hours * 3600, rate=args.rate))
    runs: dict[str, list[float]] = {}
    with EmbeddedBroker() as broker:
        settings = Settings(broker=broker.url, app_id="bench", input_partitions=4, partitions=4)
        asyncio.run(create_input_topics(settings))
        asyncio.run(replay(events, settings))
        inputs = [settings.content_topic, settings.report_topic]
        for i in range(args.repeat):
            runs.setdefault("raw", []).append(
                asyncio.run(raw_consume(broker.bootstrap, inputs, total))
            )
            workers = [("noop_faust", NOOP, {}), ("worker", WORKER, {})]
            if args.baseline:  # the other checkout's worker, in turn with this one's
                workers.append(("baseline_worker", WORKER, baseline_env(args.baseline)))
            for name, cmd, extra in workers:
                if name.endswith("worker") and i > 0 and args.hours >= 1:
                    continue  # the worker's run is long: once is enough at full size
                env = worker_env(broker, f"bench-{name}-{i}", free_port()) | extra
                runs.setdefault(name, []).append(run_processes([cmd], [env], total, name=name))
        if not args.skip_quix:
            python = quix_python(args.quix_python)
            for _ in range(args.repeat):
                for name, state in (("quix_state", True), ("quix_no_state", False)):
                    runs.setdefault(name, []).append(
                        quix_peer(python, broker, inputs, total, state)
                    )
        if not args.skip_scaling:
            # (g0) what the machine gives two processes that share nothing: two `evaluate`s
            # at once against one alone, their events per second summed.
            runs["machine_one"] = [total / evaluate_elsewhere(BENCH.parent, events)[0]]
            runs["machine_two"] = [
                sum(total / t for t in evaluate_elsewhere(BENCH.parent, events, 2))
            ]
            runs["one_worker"] = [scaling(broker, events, total, 1)]
            runs["two_workers"] = [scaling(broker, events, total, 2)]
            if args.baseline:
                code = baseline_env(args.baseline)
                for n, key in ((1, "baseline_one_worker"), (2, "baseline_two_workers")):
                    runs[key] = [scaling(broker, events, total, n, code, "baseline_")]
        if not args.skip_latency:
            import latency

            pool = latency.organic_pool(60_000)
            run = latency.measure(broker, args.latency_rate, 10.0, 2.0, 30.0, 2.0, pool)
            close_to_alert = latency.summary(run, 10.0, 2.0)
        if args.profile:
            profile(broker, total, args.profile)

    for _ in range(1 if args.hours >= 1 else args.repeat):
        started = time.perf_counter()
        with gc_tuned():  # as the command runs it
            evaluate(events, Settings(input_partitions=4))
        runs.setdefault("evaluate", []).append(total / (time.perf_counter() - started))
        if args.baseline:
            runs.setdefault("baseline_evaluate", []).append(
                total / evaluate_elsewhere(args.baseline, events)[0]
            )

    rate = {name: statistics.median(values) for name, values in runs.items()}
    results: dict[str, object] = {
        "events": total,
        "worker_per_s": round(rate["worker"]),
        "raw_per_s": round(rate["raw"]),
        "quix_per_s": round(rate["quix_state"]) if "quix_state" in rate else None,
        "evaluate_per_s": round(rate["evaluate"]),
        "worker_vs_raw": round(rate["worker"] / rate["raw"], 4),
        "worker_vs_quix": round(rate["worker"] / rate["quix_state"], 3)
        if "quix_state" in rate
        else None,
        "two_vs_one_worker": round(rate["two_workers"] / rate["one_worker"], 3)
        if "two_workers" in rate
        else None,
        "machine_two_vs_one": round(rate["machine_two"] / rate["machine_one"], 3)
        if "machine_two" in rate
        else None,
        "baseline_two_vs_one_worker": round(
            rate["baseline_two_workers"] / rate["baseline_one_worker"], 3
        )
        if "baseline_two_workers" in rate
        else None,
        "close_to_alert_p99_s": None,
        "runs": {name: [round(v) for v in values] for name, values in runs.items()},
        "median_per_s": {name: round(v) for name, v in rate.items()},
        "cpu_share": CPU_SHARE,
        "consumed_per_process": SPLIT,
        "noop_faust_vs_raw": round(rate["noop_faust"] / rate["raw"], 4),
        "worker_vs_noop_faust": round(rate["worker"] / rate["noop_faust"], 4),
    }
    if not args.skip_latency:
        results["close_to_alert"] = close_to_alert
        results["close_to_alert_p99_s"] = close_to_alert["from_last_watermark_s"]["p99"]

    def ratio(key: str, over: str) -> str:
        return f"{rate[key] / rate[over]:.2f}x" if key in rate else ""

    rows = [
        ("(a) raw consume + decode", "raw", ""),
        ("(c) no-op Faust agent", "noop_faust", f"c/a = {rate['noop_faust'] / rate['raw']:.3f}"),
        ("(b) worker, all detectors", "worker", f"b/a = {rate['worker'] / rate['raw']:.4f}"),
        ("", "", f"b/c = {rate['worker'] / rate['noop_faust']:.3f}"),
        ("(b0) baseline worker", "baseline_worker", ""),
        ("(f) evaluate, offline", "evaluate", ""),
        ("(f0) baseline evaluate", "baseline_evaluate", ""),
        (
            "(q) Quix Streams, count per key",
            "quix_state",
            "b/q = "
            + (f"{rate['worker'] / rate['quix_state']:.2f}" if "quix_state" in rate else ""),
        ),
        ("(q) the same without state", "quix_no_state", ""),
        ("(g0) one `evaluate` process", "machine_one", ""),
        ("(g0) two at once, summed", "machine_two", ratio("machine_two", "machine_one")),
        ("(g) one worker", "one_worker", ""),
        ("(g) two workers, one group", "two_workers", ratio("two_workers", "one_worker")),
        ("(g) baseline, one worker", "baseline_one_worker", ""),
        (
            "(g) baseline, two workers",
            "baseline_two_workers",
            ratio("baseline_two_workers", "baseline_one_worker"),
        ),
    ]
    print(f"{total} events, 4 input partitions; medians of runs, events/s\n")
    print(f"| {'measure':<32} | {'events/s':>9} | {'runs':<26} | ratio |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 28}|-------|")
    for label, key, ratio in rows:
        if key and key not in rate:
            continue
        median = f"{rate[key]:.0f}" if key else ""
        values = ", ".join(f"{v:.0f}" for v in runs.get(key, []))
        print(f"| {label:<32} | {median:>9} | {values:<26} | {ratio} |")
    print(f"CPU seconds per second, per process, of each run: {CPU_SHARE}")
    print(f"events consumed by each process: {SPLIT}")
    if not args.skip_latency:
        mark, close = close_to_alert["from_last_watermark_s"], close_to_alert["from_window_close_s"]
        print(
            f"(d) close to alert at {close_to_alert['offered_per_s']:.0f} events/s offered "
            f"({close_to_alert['achieved_per_s']} produced): from the last watermark p50 "
            f"{mark['p50']} s, p99 {mark['p99']} s; from the window's close p50 {close['p50']} "
            f"s, p99 {close['p99']} s; {close_to_alert['alerts']}/{close_to_alert['brigades']} "
            f"alerts; kept up: {close_to_alert['kept_up']} "
            f"(lag at the end {close_to_alert['lag_at_end_s_of_input']} s of input)"
        )
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
