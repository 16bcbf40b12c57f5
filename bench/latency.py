"""Event-to-alert latency of the worker at fixed offered loads, on the embedded broker.

    python bench/latency.py [--rates 1000 5000] [--window 60] [--lateness 30] [--quick]
                            [--processes 1] [--out bench-latency.json]

For each offered load: a fresh worker (own topics and group, `ABUSEMON_WINDOW_S` and
`ABUSEMON_LATENESS_S` as given; `worker --processes N` with `--processes`) joins; then a paced stream is produced at that many events a
second: organic simulator traffic re-stamped with the wall clock (fresh event ids, `ts` = the
time it is sent), and every few seconds a report brigade: 20 new accounts report one new
account for spam within a second, which the coordinator turns into one `report_brigade` alert
on that account. A reader on the alerts topic notes when each brigade's alert arrives.

Four views of the latency of each brigade's first alert, in seconds:

- from the last event: alert read on the alerts topic minus the time the broker acknowledged
  the brigade's last report (the last event needed for the alert);
- from the window's close: alert read minus the wall-clock time the window holding that
  report closes (its end plus the lateness). An alert cannot come before its window closes, so
  this is the worker's own share; the rest (up to window + lateness) is waiting by design;
- from the last watermark: alert read minus the moment the last input partition's watermark
  passed the window's close (the broker's acknowledgement of that partition's first event
  at or after the window's end plus the lateness). Until then the window cannot close: a
  partition with few events holds it. What remains is the worker's: its hops and its work;
- the worker's view, `abusemon_alert_latency_seconds`: the alert's emission (`emitted_at`)
  minus its event time (`ts`, the end of the window that raised it).

Beside them, from the worker's histograms: `abusemon_alert_latency_seconds` of the brigade
alerts, and `abusemon_internal_hop_seconds`, each hop of a window's close between the stages
(p50 / p99 interpolated in the buckets, over the whole run); and the mean time the event
loop waited for a stage-2 partition's checkpoint (`abusemon_checkpoint_pause_seconds`), the
mean time each took in all, to the broker's acknowledgement (`abusemon_checkpoint_seconds`),
and how many there were; and the garbage collector's pauses, young and full, how many and
their mean (`abusemon_gc_pause_seconds`).

Also: the offered and achieved rates, and whether the worker kept up: messages not yet
consumed when production stopped (lag), and how long it took to catch up. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from throughput import group_topics, metric_sum, stop_processes, wait_for_group, worker_env

from detectors.events import format_rfc3339, parse_rfc3339
from simulator import SimConfig, generate
from streams.broker import EmbeddedBroker, free_port
from streams.files import TOPIC_KEYS, partition_for
from streams.settings import Settings

REPORTERS = 20  # per brigade; the coordinator needs 15 distinct reporters
BURST_S = 1.0  # the brigade's reports are spread over this long


def organic_pool(n: int) -> list[tuple[str, dict[str, Any]]]:
    """Organic content and report events of the simulator (its first attack is an hour in)."""
    config = SimConfig(seed=11, duration_s=3000.0, rate=20.0, actors=20_000)
    events = ((t, v) for t, v in generate(config) if t != "labels")
    return list(itertools.islice(events, n))


@dataclass
class Brigade:
    target: str
    at: float  # seconds from the start of production
    sent: int = 0
    last_ts: float = 0.0  # event time of the last report
    last_acked: float = 0.0  # wall clock when the broker acknowledged it
    alert_read: float | None = None
    alert_latency: float | None = None  # emitted_at - ts, as the worker's histogram sees it


@dataclass
class Run:
    rate: float
    produced: int = 0
    elapsed: float = 0.0
    brigades: list[Brigade] = field(default_factory=list)
    # When each input partition's watermark passed each window's close: the broker's
    # acknowledgement of the partition's first event at or after the window's end plus the
    # lateness, by that moment's event time, then by (topic, partition).
    passed: dict[float, dict[tuple[str, int], float]] = field(default_factory=dict)
    input_partitions: int = 0  # of the two input topics together
    lag_at_end: float = 0.0
    caught_up_s: float | None = None
    histogram: dict[str, float] = field(default_factory=dict)
    checkpoints: dict[str, float] = field(default_factory=dict)  # stage 2's: count, mean_s
    collections: dict[str, dict[str, float]] = field(default_factory=dict)  # by generation
    hops: dict[str, float] = field(default_factory=dict)  # between the stages, the worker's


async def produce(
    settings: Settings,
    run: Run,
    pool: list[tuple[str, dict[str, Any]]],
    duration_s: float,
    prefix: str,
    window: float,
    lateness: float,
) -> None:
    names = {
        "content-events": settings.content_topic,
        "report-events": settings.report_topic,
    }
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1, linger_ms=2)
    await producer.start()
    next_close: dict[tuple[str, int], float] = {}  # each partition's next close to pass

    async def send(topic: str, value: dict[str, Any], ts: float) -> Any:
        value["ts"] = format_rfc3339(ts)
        key = value[TOPIC_KEYS[topic]].encode()
        future = await producer.send(names[topic], value=orjson.dumps(value), key=key)
        tp = (topic, partition_for(key, settings.input_partitions))
        event_ts = parse_rfc3339(value["ts"])
        close = next_close.get(tp)
        if close is None or event_ts >= close:
            if close is not None:  # this event moves the partition's watermark past `close`
                passed = run.passed.setdefault(close, {})
                future.add_done_callback(lambda _: passed.__setitem__(tp, time.time()))
            next_close[tp] = ((event_ts - lateness) // window + 1) * window + lateness
        return future

    started = time.time()
    seq = 0
    pending = list(run.brigades)
    try:
        while (now := time.time()) - started < duration_s:
            due = int((now - started) * run.rate) - run.produced
            for _ in range(due):
                topic, value = pool[seq % len(pool)]
                await send(topic, value | {"event_id": f"{prefix}-{seq}"}, time.time())
                seq += 1
                run.produced += 1
            for brigade in pending:
                while (
                    brigade.sent < REPORTERS
                    and now - started >= brigade.at + BURST_S * brigade.sent / REPORTERS
                ):
                    ts = time.time()
                    report = {
                        "event_id": f"{brigade.target}-{brigade.sent}",
                        "reporter_id": f"{brigade.target}-reporter-{brigade.sent}",
                        "target_actor_id": brigade.target,
                        "reason": "spam",
                    }
                    future = await send("report-events", report, ts)
                    brigade.sent += 1
                    run.produced += 1
                    if brigade.sent == REPORTERS:
                        brigade.last_ts = parse_rfc3339(format_rfc3339(ts))

                        def acked(_: Any, brigade: Brigade = brigade) -> None:
                            brigade.last_acked = time.time()

                        future.add_done_callback(acked)
            pending = [b for b in pending if b.sent < REPORTERS]
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()
        run.elapsed = time.time() - started


def read_alerts(bootstrap: str, topic: str, run: Run, stop: threading.Event) -> None:
    """In a thread of its own, so that producing does not delay reading."""
    by_target = {b.target: b for b in run.brigades}

    async def read() -> None:
        # A short fetch wait, as the worker's: the embedded broker answers a fetch of
        # several partitions late (bench/fetch_wait.py), which the alerts' arrival would
        # otherwise include.
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=Settings().fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for messages in batches.values():
                    for message in messages:
                        alert = orjson.loads(message.value)
                        brigade = by_target.get(alert["entity"]["id"])
                        if brigade is None or brigade.alert_read is not None:
                            continue
                        brigade.alert_read = now
                        brigade.alert_latency = parse_rfc3339(alert["emitted_at"]) - parse_rfc3339(
                            alert["ts"]
                        )
        finally:
            await consumer.stop()

    asyncio.run(read())


ALERT_BOUNDS = ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "120.0")
HOP_BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")


def histogram_quantiles(
    url: str,
    detector: str | None = None,
    name: str = "abusemon_alert_latency_seconds",
    bounds: tuple[str, ...] = ALERT_BOUNDS,
) -> dict[str, float]:
    """p50 and p99 of a histogram of the worker's (by default the alert latency of
    `detector`), interpolated in its buckets."""
    labels = {} if detector is None else {"detector": detector}
    buckets = []
    for bound in bounds:
        count = metric_sum(url, f"{name}_bucket", **labels, le=bound)
        buckets.append((float(bound), count or 0.0))
    total = metric_sum(url, f"{name}_count", **labels) or 0.0
    out = {"count": total}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        rank, lower, below = q * total, 0.0, 0.0
        out[name] = math.inf
        for bound, count in buckets:
            if count >= rank and total:
                share = (rank - below) / (count - below) if count > below else 1.0
                out[name] = lower + share * (bound - lower)
                break
            lower, below = bound, count
    return out


def checkpoint_mean(url: str, stage: str) -> dict[str, float]:
    """How many checkpoints of `stage` the worker took, their mean time, and the mean time
    the event loop waited for each."""
    out = {}
    for key, name in (("mean_s", "checkpoint_seconds"), ("pause_s", "checkpoint_pause_seconds")):
        count = metric_sum(url, f"abusemon_{name}_count", stage=stage) or 0.0
        total = metric_sum(url, f"abusemon_{name}_sum", stage=stage) or 0.0
        out[key] = total / count if count else math.nan
        out.setdefault("count", count)
    return out


def collections(url: str) -> dict[str, dict[str, float]]:
    """The garbage collector's pauses of the worker, by generation: how many, their mean and
    their total (`abusemon_gc_pause_seconds`)."""
    out = {}
    for generation in ("0", "2"):
        count = metric_sum(url, "abusemon_gc_pause_seconds_count", generation=generation) or 0
        total = metric_sum(url, "abusemon_gc_pause_seconds_sum", generation=generation) or 0.0
        mean = total / count if count else math.nan
        out[generation] = {"count": count, "mean_s": mean, "total_s": total}
    return out


def measure(
    broker: EmbeddedBroker,
    rate: float,
    window: float,
    lateness: float,
    bursts_s: float,
    burst_every: float,
    pool: list[tuple[str, dict[str, Any]]],
    processes: int = 1,
) -> Run:
    prefix = f"lat{int(rate)}w{int(window)}l{int(lateness)}p{processes}"
    settings, topics = group_topics(broker, prefix)
    port = free_port()
    env = worker_env(
        broker,
        prefix,
        port,
        ABUSEMON_WINDOW_S=str(window),
        ABUSEMON_LATENESS_S=str(lateness),
        **topics,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = Run(rate, input_partitions=2 * settings.input_partitions)
    run.brigades = [
        Brigade(f"{prefix}-victim-{i}", 3.0 + i * burst_every)
        for i in range(int(bursts_s // burst_every))
    ]
    # Produce until the last brigade's window has closed, and a little more.
    duration = run.brigades[-1].at + BURST_S + window + lateness + 10.0
    stop = threading.Event()
    reader = threading.Thread(
        target=read_alerts, args=(broker.bootstrap, settings.alerts_topic, run, stop)
    )
    try:
        wait_for_group([url], [settings.content_topic, settings.report_topic], 4)
        reader.start()
        asyncio.run(produce(settings, run, pool, duration, prefix, window, lateness))
        ended = time.time()
        run.lag_at_end = run.produced - (metric_sum(url, "abusemon_events_consumed_total") or 0)
        behind = run.lag_at_end > 5 * rate  # then its alerts come long after: wait less
        deadline = ended + (30.0 if behind else max(30.0, window + lateness))
        while time.time() < deadline:
            consumed = metric_sum(url, "abusemon_events_consumed_total") or 0
            if consumed >= run.produced and run.caught_up_s is None:
                run.caught_up_s = time.time() - ended
            if run.caught_up_s is not None and all(b.alert_read for b in run.brigades):
                break
            time.sleep(0.25)
        run.histogram = histogram_quantiles(url, "report_brigade")
        run.hops = histogram_quantiles(url, None, "abusemon_internal_hop_seconds", HOP_BOUNDS)
        run.checkpoints = checkpoint_mean(url, "signals")
        run.collections = collections(url)
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(timeout=10)
        stop_processes(worker)
    return run


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(run: Run, window: float, lateness: float) -> dict[str, Any]:
    got = [b for b in run.brigades if b.alert_read is not None]
    from_last = [b.alert_read - b.last_acked for b in got if b.alert_read]
    closes = [(b.last_ts // window + 1) * window + lateness for b in got]
    close = [b.alert_read - c for b, c in zip(got, closes, strict=True) if b.alert_read]
    # From the moment the last input partition's watermark passed the window's close; none
    # where a partition's watermark did not pass it (an idle partition closes by time).
    from_mark = [
        b.alert_read - max(run.passed[c].values())
        for b, c in zip(got, closes, strict=True)
        if b.alert_read and len(run.passed.get(c, {})) == run.input_partitions
    ]
    worker = [b.alert_latency for b in got if b.alert_latency is not None]
    return {
        "offered_per_s": run.rate,
        "achieved_per_s": round(run.produced / run.elapsed),
        "produced": run.produced,
        "window_s": window,
        "lateness_s": lateness,
        "brigades": len(run.brigades),
        "alerts": len(got),
        "from_last_event_s": {
            "p50": quantile(from_last, 0.5),
            "p99": quantile(from_last, 0.99),
        },
        "from_window_close_s": {"p50": quantile(close, 0.5), "p99": quantile(close, 0.99)},
        "from_last_watermark_s": {
            "p50": quantile(from_mark, 0.5),
            "p99": quantile(from_mark, 0.99),
            "windows": len(from_mark),
        },
        "worker_view_s": {"p50": quantile(worker, 0.5), "p99": quantile(worker, 0.99)},
        "worker_histogram_s": run.histogram,
        "hop_between_stages_s": run.hops,
        "stage2_checkpoints": run.checkpoints,
        "gc_pauses": run.collections,
        "lag_at_end": run.lag_at_end,
        "lag_at_end_s_of_input": round(run.lag_at_end / run.rate, 1),
        "caught_up_after_s": None if run.caught_up_s is None else round(run.caught_up_s, 1),
        "kept_up": run.lag_at_end <= run.rate,  # at most a second behind
    }


def cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 5000.0])
    parser.add_argument("--window", type=float, default=60.0, help="ABUSEMON_WINDOW_S")
    parser.add_argument("--lateness", type=float, default=30.0, help="ABUSEMON_LATENESS_S")
    parser.add_argument("--bursts", type=float, default=60.0, help="seconds with brigades")
    parser.add_argument("--burst-every", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="10 s windows, 2 s lateness")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes (`worker --processes`)"
    )
    parser.add_argument("--out", default="bench-latency.json")
    args = parser.parse_args()
    if args.quick:
        args.window, args.lateness, args.bursts, args.burst_every = 10.0, 2.0, 20.0, 2.0

    pool = organic_pool(60_000)
    results = []
    with EmbeddedBroker() as broker:
        for rate in args.rates:
            run = measure(
                broker,
                rate,
                args.window,
                args.lateness,
                args.bursts,
                args.burst_every,
                pool,
                args.processes,
            )
            results.append(summary(run, args.window, args.lateness))
    print(
        f"{args.processes} worker process(es); window {args.window:g} s, lateness "
        f"{args.lateness:g} s; latency in seconds "
        "(p50 / p99, nearest rank over the brigades)\n"
    )
    print(
        "| offered/s | achieved/s | alerts | from last event | from window close "
        "| from last watermark | worker view (emitted - ts) | histogram | hop between stages "
        "| stage-2 checkpoint: pause, all (means), n | collector: young, full (n × mean) "
        "| lag at end | caught up after |"
    )
    print("|---:|---:|---:|---|---|---|---|---|---|---|---|---:|---:|")
    for r in results:
        views = [
            r["from_last_event_s"],
            r["from_window_close_s"],
            r["from_last_watermark_s"],
            r["worker_view_s"],
        ]
        lat = " | ".join(f"{cell(v['p50'])} / {cell(v['p99'])}" for v in views)
        h, hop = r["worker_histogram_s"], r["hop_between_stages_s"]
        caught = "—" if r["caught_up_after_s"] is None else f"{r['caught_up_after_s']} s"
        saved = r["stage2_checkpoints"]
        young, full = r["gc_pauses"]["0"], r["gc_pauses"]["2"]
        print(
            f"| {r['offered_per_s']:.0f} | {r['achieved_per_s']} | {r['alerts']}/{r['brigades']} "
            f"| {lat} | {cell(h.get('p50'))} / {cell(h.get('p99'))} "
            f"| {cell(hop.get('p50'))} / {cell(hop.get('p99'))} "
            f"| {cell(saved.get('pause_s'))} s, {cell(saved.get('mean_s'))} s, "
            f"{saved.get('count', 0):.0f} "
            f"| {young['count']:.0f} × {cell(young['mean_s'])} s, "
            f"{full['count']:.0f} × {cell(full['mean_s'])} s "
            f"| {r['lag_at_end']:.0f} ({r['lag_at_end_s_of_input']} s) | {caught} |"
        )
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
