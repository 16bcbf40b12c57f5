"""The simulation: organic traffic with scheduled attacks, generated lazily a minute at a time.

Every source of randomness is its own `random.Random`, seeded from `SimConfig.seed` and a
name, so the same configuration always gives the same bytes, and the organic traffic does not
depend on which attacks are injected.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.events import format_rfc3339
from simulator.organic import CONTENT, OrganicTraffic, Population
from simulator.scenarios import KINDS, Attack, Context, plan_attacks, slots

DEFAULT_START = 1793491200.0  # 2026-11-01T00:00:00Z: a simulated month stays in the past
RECENT_CONTENT = 4096  # organic reports pick their content among this many recent pieces
DUPLICATE_DELAY = 50  # a retried event is re-sent within this many events of the original


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Times are event time, in seconds since the epoch or from `start`."""

    seed: int = 7
    start: float = DEFAULT_START
    duration_s: float = 86400.0
    rate: float = 5.0  # mean organic content events per second over the day
    actors: int = 20000  # organic population size
    report_ratio: float = 0.02  # organic reports per content event
    duplicate_ratio: float = 0.001  # share of events re-sent with the same event_id
    scenarios: tuple[str, ...] = (
        "spam_wave",
        "report_brigade",
        "surface_surge",
        "harassment_burst",
    )
    # Per-actor scenarios and decoys; listed apart so the volume scenarios keep their times.
    actor_scenarios: tuple[str, ...] = (
        "bot_ring",
        "compromised_account",
        "fake_engagement",
        "mass_messaging",
        "popular_account",
        "new_account",
    )
    # Coordinated groups and their decoys, a quarter of the spacing after the volume ones.
    group_scenarios: tuple[str, ...] = (
        "copy_paste_campaign",
        "link_campaign",
        "brigade_ring",
        "organic_meme",
        "viral_report_wave",
    )
    first_attack_s: float = 3600.0  # offset of the first attack from start
    # Spacing of attacks; None spreads the listed scenarios evenly over the rest of the run.
    attack_every_s: float | None = None
    attack_scale: float = 1.0  # multiplies attack volumes

    def __post_init__(self) -> None:
        listed = {*self.scenarios, *self.actor_scenarios, *self.group_scenarios}
        unknown = sorted(listed - set(KINDS))
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; known: {list(KINDS)}")
        if self.duration_s <= 0 or self.rate <= 0:
            raise ValueError("duration_s and rate must be positive")
        if self.actors < 100:
            raise ValueError("actors must be at least 100")
        if self.report_ratio < 0 or not 0 <= self.duplicate_ratio < 1:
            raise ValueError("report_ratio must be >= 0 and duplicate_ratio in [0, 1)")
        if self.attack_every_s is not None and self.attack_every_s <= 0:
            raise ValueError("attack_every_s must be positive")
        if self.first_attack_s < 0 or self.attack_scale < 0:
            raise ValueError("first_attack_s and attack_scale must not be negative")


class _Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.population = Population(config.seed, config.actors, config.start, config.duration_s)
        self.context = Context(
            self.population,
            config.rate,
            config.report_ratio,
            config.attack_scale,
            self.population.first_free,
            config.start + config.duration_s,
        )
        planned = slots(
            config.scenarios, config.duration_s, config.first_attack_s, config.attack_every_s
        )
        # The per-actor scenarios run halfway between the volume ones, on the same spacing.
        every = config.attack_every_s or (config.duration_s - config.first_attack_s) / max(
            1, len(config.scenarios)
        )
        planned += slots(
            config.actor_scenarios,
            config.duration_s,
            config.first_attack_s + every / 2,
            config.attack_every_s,
        )
        planned += slots(
            config.group_scenarios,
            config.duration_s,
            config.first_attack_s + every / 4,
            config.attack_every_s,
        )
        attacks = plan_attacks(config.seed, config.start, planned, self.context)
        self.attacks = sorted(attacks, key=lambda attack: attack.start)

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        config = self.config
        organic = OrganicTraffic(self.population, config.seed, config.rate, config.report_ratio)
        retries = random.Random(f"{config.seed}:duplicates")
        resolve = random.Random(f"{config.seed}:resolve")
        seq = [0]
        upcoming = list(self.attacks)
        running: list[tuple[list[Any], list[int]]] = []  # (items, [next index])
        recent: list[tuple[str, str]] = [("", "")] * RECENT_CONTENT
        last_content: dict[str, str] = {}
        contents = reports = 0
        t0, end = config.start, config.start + config.duration_s
        while t0 < end:
            t1 = min(t0 + 60.0, end)
            items = organic.minute(t0, t1, seq)
            while upcoming and upcoming[0].start < t1:
                running.append((upcoming.pop(0).items(self.context, seq), [0]))
            for attack_items, position in running:
                i = position[0]
                while i < len(attack_items) and attack_items[i][0] < t1:
                    items.append(attack_items[i])
                    i += 1
                position[0] = i
            running = [r for r in running if r[1][0] < len(r[0])]
            items.sort(key=_order)

            out: list[tuple[str, dict[str, Any]]] = []
            for ts, _, kind, payload in items:
                if kind == CONTENT:
                    contents += 1
                    content_id = f"ct{contents:07d}"
                    payload["event_id"] = f"c{contents:07d}"
                    payload["content_id"] = content_id
                    recent[contents % RECENT_CONTENT] = (content_id, payload["actor_id"])
                    last_content[payload["actor_id"]] = content_id
                    out.append(("content-events", payload))
                    continue
                (reporter, reporter_created, *_), target, reason = payload
                reported: str | None = None
                if target is None:
                    target = reporter
                    for _ in range(3):  # nobody reports their own content
                        if not contents:
                            break
                        back = int(resolve.random() * min(contents, RECENT_CONTENT))
                        reported, target = recent[(contents - back) % RECENT_CONTENT]
                        if target != reporter:
                            break
                    if target == reporter:
                        reported = None
                        target = self.population.accounts[
                            int(resolve.random() * self.population.size)
                        ][0]
                else:
                    reported = last_content.get(target)
                reports += 1
                value: dict[str, Any] = {
                    "event_id": f"r{reports:07d}",
                    "ts": format_rfc3339(ts),
                    "reporter_id": reporter,
                    "target_actor_id": target,
                }
                if reported is not None:
                    value["target_content_id"] = reported
                value["reason"] = reason
                value["reporter_created_at"] = reporter_created
                out.append(("report-events", value))

            if config.duplicate_ratio:
                yield from _with_retries(out, retries, config.duplicate_ratio)
            else:
                yield from out
            t0 = t1


def _order(item: tuple[float, int, int, Any]) -> tuple[float, int]:
    return item[0], item[1]


def _with_retries(
    out: list[tuple[str, dict[str, Any]]], rng: random.Random, ratio: float
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`out`, with a share of the events sent again, verbatim, a few events later."""
    again: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    last = len(out) - 1
    rand = rng.random
    for i, (topic, value) in enumerate(out):
        if rand() < ratio:
            at = min(last, i + 1 + int(rand() * DUPLICATE_DELAY))
            again.setdefault(at, []).append((topic, dict(value)))
    if not again:
        yield from out
        return
    for i, event in enumerate(out):
        yield event
        yield from again.get(i, ())


def generate(config: SimConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """(topic, value) pairs in event-time order, lazily, a minute of event time at a time.

    A duplicate repeats an earlier event verbatim (same event_id) shortly after it.
    """
    yield from _Simulation(config).events()


def schedule(config: SimConfig) -> list[Attack]:
    """The attacks the simulation injects, planned (accounts, volumes, signals), in order."""
    return _Simulation(config).attacks


def truth(config: SimConfig) -> list[dict[str, Any]]:
    """The ground-truth records of the contract, one per injected attack."""
    return [attack.record() for attack in _Simulation(config).attacks]


def write_files(path: str | Path, config: SimConfig) -> tuple[int, int]:
    """Events to `path` as JSONL and ground truth to `path` + ".truth.jsonl".

    Returns (events written, scenarios written).
    """
    simulation = _Simulation(config)
    events = 0
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with open(path, "wb") as out:
        write = out.write
        for topic, value in simulation.events():
            write(dumps({"topic": topic, "value": value}, option=newline))
            events += 1
    records = [attack.record() for attack in simulation.attacks]
    with open(f"{path}.truth.jsonl", "wb") as out:
        for record in records:
            out.write(orjson.dumps(record, option=newline))
    return events, len(records)
