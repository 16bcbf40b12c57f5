"""Soak: the worker's memory and state under a steady load for a long run, on the embedded broker.

    python bench/soak.py [--minutes 30] [--rate 500] [--sample-s 30] [--horizon 300]
                         [--lifetime 600] [--warmup 0.25] [--store rocksdb://] [--quick]
                         [--summarise JSON]
                         [--out bench/results/soak.json]

One worker process (own topics and group) joins; then organic simulator traffic (no attacks)
is produced at `--rate` events a second for `--minutes`, re-stamped with the wall clock (fresh
event ids, `ts` = the time it is sent). New actors keep arriving and old ones fall silent: every
account id of the simulator (author, target, reporter, reported) carries a generation suffix that
changes every `--lifetime` seconds, at a phase of its own, so about population / lifetime new
accounts a second appear and as many go idle.

The worker's state horizons are event time, hours by default (actors 6 h, per-account series
1 h, event ids 1 h, campaign and brigade rows 30 min). So that state can expire, and memory
level off, within the run, the soak sets each of them (and the alert cooldowns) to `--horizon`
seconds; `--horizon 0` keeps the worker's defaults, and then a 30-minute run shows state filling
up rather than a steady state.

Every `--sample-s` seconds: elapsed time, events produced and consumed
(`abusemon_events_consumed_total`), the worker's resident set (VmRSS of /proc/<pid>/status),
live series, actors tracked, coordination keys and rows, open groups, consumer lag (the worker's
gauge and produced minus consumed), and the expiry and eviction counters. Prints the curve and a
summary: the resident set after warm-up (the first sample at `--warmup` of the run) against the
end, its growth per hour after warm-up (least-squares slope over those samples) and over the
second half, the same slope for the state gauges, and their maxima; writes it all as JSON.
`--summarise JSON` prints a saved run again (with another `--warmup`, say) and rewrites `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from throughput import (
    WORKER,
    group_topics,
    metric_sum,
    stop_processes,
    wait_for_group,
    worker_env,
)

from detectors.events import format_rfc3339
from simulator import SimConfig, generate
from streams.broker import EmbeddedBroker, free_port
from streams.files import TOPIC_KEYS
from streams.settings import Settings

BENCH = Path(__file__).resolve().parent
ACCOUNT_FIELDS = ("actor_id", "target_id", "reporter_id", "target_actor_id")
# The worker's event-time horizons the soak shortens to `--horizon` (their defaults are hours).
HORIZONS = (
    "ABUSEMON_ACTOR_TTL_S",
    "ABUSEMON_ACCOUNT_SERIES_TTL_S",
    "ABUSEMON_DEDUP_HORIZON_S",
    "ABUSEMON_CAMPAIGN_WINDOW_S",
    "ABUSEMON_BRIGADE_WINDOW_S",
    "ABUSEMON_COOLDOWN_S",
    "ABUSEMON_ACTOR_COOLDOWN_S",
    "ABUSEMON_COORDINATION_COOLDOWN_S",
)
# Gauges and counters sampled: the key in a sample, the metric's name.
GAUGES = {
    "series": "abusemon_series_live",
    "actors": "abusemon_actors_tracked",
    "coordination_keys": "abusemon_coordination_keys",
    "coordination_rows": "abusemon_coordination_rows",
    "groups_open": "abusemon_coordinated_groups_open",
    "lag": "abusemon_consumer_lag_messages",
    "alerts_unlabelled": "abusemon_alerts_unlabelled",
    "actors_expired": "abusemon_actor_state_expired_total",
    "actors_evicted": "abusemon_actor_state_evicted_total",
    "series_expired": "abusemon_series_expired_total",
    "series_evicted": "abusemon_series_evicted_total",
    "coordination_evicted": "abusemon_coordination_keys_evicted_total",
    "duplicates": "abusemon_events_duplicate_total",
    "late": "abusemon_events_late_total",
    "alerts": "abusemon_alerts_total",
}
STATE = ("series", "actors", "coordination_keys", "coordination_rows")


@dataclass
class Sample:
    elapsed_s: float
    produced: int
    consumed: float
    rss_mb: float
    hwm_mb: float
    gauges: dict[str, float]


@dataclass
class Soak:
    rate: float
    produced: int = 0
    samples: list[Sample] = field(default_factory=list)


def traffic(seed: int, rate: float, actors: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Organic content and report events, no attacks, generated lazily without end."""
    for n in itertools.count():
        config = SimConfig(
            seed=seed + n,
            duration_s=2 * 86400.0,
            rate=rate,
            actors=actors,
            scenarios=(),
            actor_scenarios=(),
            group_scenarios=(),
        )
        yield from ((t, v) for t, v in generate(config) if t != "labels")


def churn(value: dict[str, Any], elapsed: float, lifetime: float) -> None:
    """Give each account id its generation at `elapsed`: a new account every `lifetime` s."""
    for name in ACCOUNT_FIELDS:
        account = value.get(name)
        if account:
            phase = zlib.crc32(account.encode()) % int(lifetime)
            value[name] = f"{account}g{int((elapsed + phase) // lifetime)}"


def read_status(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of `pid`, MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss, hwm = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    return rss, hwm


def sample(soak: Soak, url: str, pid: int, started: float) -> Sample:
    rss, hwm = read_status(pid)
    gauges = {key: metric_sum(url, name) or 0.0 for key, name in GAUGES.items()}
    s = Sample(
        elapsed_s=round(time.time() - started, 1),
        produced=soak.produced,
        consumed=metric_sum(url, "abusemon_events_consumed_total") or 0.0,
        rss_mb=round(rss, 1),
        hwm_mb=round(hwm, 1),
        gauges=gauges,
    )
    soak.samples.append(s)
    g = s.gauges
    print(
        f"{s.elapsed_s:7.0f} s  produced {s.produced:>9}  consumed {s.consumed:>9.0f}  "
        f"rss {s.rss_mb:7.1f} MB  series {g['series']:>6.0f}  actors {g['actors']:>7.0f}  "
        f"coord {g['coordination_keys']:>6.0f}/{g['coordination_rows']:>7.0f}  "
        f"lag {g['lag']:>6.0f}",
        flush=True,
    )
    return s


async def produce(
    settings: Settings,
    soak: Soak,
    duration_s: float,
    sample_s: float,
    lifetime: float,
    prefix: str,
    url: str,
    pid: int,
) -> None:
    names = {"content-events": settings.content_topic, "report-events": settings.report_topic}
    events = traffic(11, soak.rate, 20_000)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1, linger_ms=5)
    await producer.start()
    started = time.time()
    await asyncio.to_thread(sample, soak, url, pid, started)
    next_sample = started + sample_s
    sampling: asyncio.Future[Sample] | None = None
    try:
        while (now := time.time()) - started < duration_s:
            due = int((now - started) * soak.rate) - soak.produced
            for _ in range(due):
                topic, value = next(events)
                value = value | {"event_id": f"{prefix}-{soak.produced}"}
                churn(value, now - started, lifetime)
                value["ts"] = format_rfc3339(time.time())
                key = value[TOPIC_KEYS[topic]].encode()
                await producer.send(names[topic], value=orjson.dumps(value), key=key)
                soak.produced += 1
            if now >= next_sample:  # in a thread, so that the pace holds while it scrapes
                sampling = asyncio.ensure_future(asyncio.to_thread(sample, soak, url, pid, started))
                next_sample += sample_s
            await asyncio.sleep(0.01)
        await producer.flush()
        if sampling is not None:
            await sampling
        await asyncio.to_thread(sample, soak, url, pid, started)
    finally:
        await producer.stop()


def run(
    broker: EmbeddedBroker,
    rate: float,
    minutes: float,
    sample_s: float,
    horizon: float,
    lifetime: float,
    store: str = "rocksdb://",
) -> Soak:
    prefix = f"soak{int(rate)}"
    settings, topics = group_topics(broker, prefix)
    port = free_port()
    extra = topics | {"ABUSEMON_STORE": store}
    if horizon > 0:
        extra.update(dict.fromkeys(HORIZONS, str(horizon)))
    env = worker_env(broker, prefix, port, **extra)
    url = f"http://127.0.0.1:{port}/metrics"
    worker = subprocess.Popen(
        WORKER, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH.parent
    )
    soak = Soak(rate)
    try:
        wait_for_group([url], [settings.content_topic, settings.report_topic], 4)
        asyncio.run(
            produce(settings, soak, minutes * 60, sample_s, lifetime, prefix, url, worker.pid)
        )
    finally:
        stop_processes(worker)
    return soak


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour; None with fewer than two."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx * 3600


def summary(soak: Soak, warmup: float, duration_s: float) -> dict[str, Any]:
    samples = soak.samples
    warm = [s for s in samples if s.elapsed_s >= warmup * duration_s] or samples[-1:]
    first, last = warm[0], samples[-1]
    rss_slope = slope_per_hour([(s.elapsed_s, s.rss_mb) for s in warm])
    half = [s for s in samples if s.elapsed_s >= duration_s / 2]
    late_slope = slope_per_hour([(s.elapsed_s, s.rss_mb) for s in half])
    elapsed = last.elapsed_s or 1.0
    return {
        "offered_per_s": soak.rate,
        "achieved_per_s": round(soak.produced / elapsed),
        "produced": soak.produced,
        "consumed": last.consumed,
        "warm_at_s": first.elapsed_s,
        "rss_mb_warm": first.rss_mb,
        "rss_mb_end": last.rss_mb,
        "rss_mb_max": max(s.rss_mb for s in samples),
        "rss_growth_mb_after_warmup": round(last.rss_mb - first.rss_mb, 1),
        "rss_slope_mb_per_h": None if rss_slope is None else round(rss_slope, 1),
        "rss_slope_mb_per_h_second_half": None if late_slope is None else round(late_slope, 1),
        "state_slope_per_h": {
            key: round(v, 1)
            for key in STATE
            if (v := slope_per_hour([(s.elapsed_s, s.gauges[key]) for s in warm])) is not None
        },
        "state_warm": {key: first.gauges[key] for key in STATE},
        "state_end": {key: last.gauges[key] for key in STATE},
        "state_max": {key: max(s.gauges[key] for s in samples) for key in STATE},
        "lag_max": max(s.gauges["lag"] for s in samples),
        "behind_at_end": soak.produced - last.consumed,
    }


def report(args: argparse.Namespace, soak: Soak) -> None:
    """Print the curve and the summary, and write them with the samples to `args.out`."""
    result = summary(soak, args.warmup, args.minutes * 60)
    print(
        f"\n{args.rate:g} events/s offered for {args.minutes:g} min; horizons "
        f"{f'{args.horizon:g} s' if args.horizon else 'as configured'}, account life "
        f"{args.lifetime:g} s\n"
    )
    print(
        "| elapsed | produced | consumed | RSS MB | series | actors | coord keys | coord rows "
        "| lag | actors expired |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in soak.samples:
        g = s.gauges
        print(
            f"| {s.elapsed_s / 60:.1f} min | {s.produced} | {s.consumed:.0f} | {s.rss_mb:.1f} "
            f"| {g['series']:.0f} | {g['actors']:.0f} | {g['coordination_keys']:.0f} "
            f"| {g['coordination_rows']:.0f} | {g['lag']:.0f} | {g['actors_expired']:.0f} |"
        )
    r = result
    print(
        f"\nRSS {r['rss_mb_warm']} MB at {r['warm_at_s'] / 60:.1f} min (warm), "
        f"{r['rss_mb_end']} MB at the end (max {r['rss_mb_max']}): "
        f"{r['rss_growth_mb_after_warmup']:+} MB; slope {r['rss_slope_mb_per_h']} MB/h after "
        f"warm-up, {r['rss_slope_mb_per_h_second_half']} MB/h over the second half\n"
        f"max series {r['state_max']['series']:.0f}, actors "
        f"{r['state_max']['actors']:.0f}, coordination keys "
        f"{r['state_max']['coordination_keys']:.0f} / rows "
        f"{r['state_max']['coordination_rows']:.0f}; slopes per hour after warm-up "
        f"{r['state_slope_per_h']}; lag at most {r['lag_max']:.0f}"
    )
    out = {
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "summarise")},
        "summary": result,
        "samples": [asdict(s) for s in soak.samples],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=500.0, help="offered events/s")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument(
        "--horizon", type=float, default=300.0, help="the worker's state horizons, s (0: defaults)"
    )
    parser.add_argument("--lifetime", type=float, default=600.0, help="an account id's life, s")
    parser.add_argument("--warmup", type=float, default=0.25, help="share of the run before warm")
    parser.add_argument(
        "--quick", action="store_true", help="3 minutes, 30 s samples, 60 s horizons, 120 s lives"
    )
    parser.add_argument(
        "--store", default="rocksdb://", help="the worker's table store (rocksdb://, production's)"
    )
    parser.add_argument("--out", default=str(BENCH / "results" / "soak.json"))
    parser.add_argument(
        "--summarise", type=Path, help="no run: summarise the samples of this JSON again"
    )
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.sample_s, args.horizon, args.lifetime = 3.0, 30.0, 60.0, 120.0

    if args.summarise:
        saved = orjson.loads(args.summarise.read_bytes())
        args.minutes, args.rate = saved["args"]["minutes"], saved["args"]["rate"]
        args.horizon, args.lifetime = saved["args"]["horizon"], saved["args"]["lifetime"]
        args.sample_s = saved["args"]["sample_s"]
        soak = Soak(args.rate, saved["summary"]["produced"])
        soak.samples = [Sample(**s) for s in saved["samples"]]
    else:
        with EmbeddedBroker() as broker:
            soak = run(
                broker,
                args.rate,
                args.minutes,
                args.sample_s,
                args.horizon,
                args.lifetime,
                args.store,
            )
    report(args, soak)


if __name__ == "__main__":
    main()
