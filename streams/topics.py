"""The topics the worker reads and writes: which it needs, with how many partitions, and
whether the cluster's agree.

Two groups of topics must have equal partition counts, because the worker keeps per-partition
state for one in a changelog co-partitioned with it:

- the input topics and the ingest-state changelog: `ABUSEMON_INPUT_PARTITIONS`;
- the signal-partials topic and the signal-state changelog: `ABUSEMON_PARTITIONS`.

The alerts and dead-letter topics may have any count. The worker checks all of this before it
joins its group (`prepare`): a Kafka client that subscribes to a missing topic lets the broker
create it with the broker's own partition count, and a mismatch found later ends the worker
with Faust's `PartitionsMismatch` at the first message. `abuse-monitor topics` reports the
same checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    IncompatibleBrokerVersion,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)

from streams.faust_kafka import log_end_offsets
from streams.records import DEAD_LETTER_MAX_BYTES
from streams.settings import Settings

log = logging.getLogger("abuse_monitor.topics")

# How often a worker waiting for its input topics or for the brokers says so.
WAIT_LOG_S = 60.0
WAIT_POLL_S = 2.0


class TopicMismatch(Exception):
    """A topic the worker cannot use as it is; the message is one line with the fix."""


@dataclass(frozen=True)
class Needed:
    """One topic of the worker: its role, the partitions it needs and the setting they come
    from (None: any count will do)."""

    name: str
    role: str  # input, changelog, internal, output
    partitions: int
    setting: str | None


def input_names(settings: Settings) -> list[str]:
    return [settings.content_topic, settings.report_topic, settings.labels_topic]


def dead_letter_names(settings: Settings) -> list[str]:
    return [f"{name}.dlq" for name in input_names(settings)]


def changelog(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def needed_topics(settings: Settings) -> list[Needed]:
    inputs, partitions = "ABUSEMON_INPUT_PARTITIONS", "ABUSEMON_PARTITIONS"
    return [
        *(
            Needed(name, "input", settings.input_partitions, inputs)
            for name in input_names(settings)
        ),
        Needed(changelog(settings, "ingest-state"), "changelog", settings.input_partitions, inputs),
        Needed(settings.signal_topic, "internal", settings.partitions, partitions),
        Needed(changelog(settings, "signal-state"), "changelog", settings.partitions, partitions),
        Needed(settings.alerts_topic, "output", settings.partitions, None),
        *(
            Needed(name, "output", settings.partitions, None)
            for name in dead_letter_names(settings)
        ),
    ]


def mismatches(settings: Settings, counts: dict[str, int]) -> list[str]:
    """One line per partition count found that the worker cannot work with, naming the
    topics that have it, the count wanted and the command that fixes it. `counts` is the
    cluster's topics and their partition counts."""
    problems = []
    groups: dict[str, list[Needed]] = {}
    for needed in needed_topics(settings):
        if needed.setting is not None:
            groups.setdefault(needed.setting, []).append(needed)
    for setting, members in groups.items():
        wanted = members[0].partitions
        by_count: dict[int, list[str]] = {}
        for member in members:
            if member.name in counts:
                by_count.setdefault(counts[member.name], []).append(member.name)
        if set(by_count) <= {wanted}:
            continue
        if len(by_count) == 1:  # they agree with each other: the setting is what differs
            ((count, names),) = by_count.items()
            fix = f"set {setting}={count}"
            if count < wanted and setting == "ABUSEMON_INPUT_PARTITIONS":
                fix += f", or add partitions: abuse-monitor topics grow --partitions {wanted}"
            problems.append(f"{_topics(names, count)} but {setting} is {wanted}; fix: {fix}")
            continue
        # They disagree with each other: the smaller ones must grow to the largest.
        target = max(by_count)
        reference = by_count[target][0]
        for count, names in sorted(by_count.items()):
            if count == target:
                continue
            if setting == "ABUSEMON_INPUT_PARTITIONS":
                fix = f"abuse-monitor topics grow --partitions {target}"
            else:
                fix = " and ".join(
                    f"kafka-topics.sh --bootstrap-server {settings.bootstrap_servers} --alter "
                    f"--topic {name} --partitions {target}"
                    for name in names
                )
            if target != wanted:
                fix += f", then set {setting}={target}"
            problems.append(
                f"{_topics(names, count)} but {reference} has {target} ({setting} is {wanted}); "
                f"fix: {fix}"
            )
    return problems


def _topics(names: list[str], count: int) -> str:
    if len(names) == 1:
        return f"topic {names[0]} has {count} partitions"
    return f"topics {', '.join(names)} have {count} partitions"


def missing_inputs(settings: Settings, counts: dict[str, int]) -> list[str]:
    return [name for name in input_names(settings) if name not in counts]


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_client_options()
    )


async def partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Every topic of the cluster and its partition count. All topics are asked for, never
    named ones: asking for a missing topic by name may make the broker create it."""
    return {
        topic["topic"]: len(topic["partitions"])
        for topic in await admin.describe_topics()
        if topic["error_code"] == 0
    }


async def create_inputs(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> None:
    topics = [
        NewTopic(name, settings.input_partitions, settings.replication_factor) for name in names
    ]
    with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile: checked next
        await admin.create_topics(topics)


class _Throttled:
    """Logs a waiting message at most once a `WAIT_LOG_S`."""

    def __init__(self) -> None:
        self.last = -WAIT_LOG_S

    def say(self, message: str, *args: object) -> None:
        if time.monotonic() - self.last >= WAIT_LOG_S:
            self.last = time.monotonic()
            log.warning(message, *args)


async def inputs_ready(admin: AIOKafkaAdminClient, settings: Settings, waiting: _Throttled) -> bool:
    """Whether the input topics exist, creating them when `ABUSEMON_CREATE_TOPICS` allows;
    raises `TopicMismatch` on a partition count the worker cannot work with."""
    counts = await partition_counts(admin)
    problems = mismatches(settings, counts)
    if problems:
        more = f" ({len(problems) - 1} more: abuse-monitor topics check)" if problems[1:] else ""
        raise TopicMismatch(problems[0] + more)
    missing = missing_inputs(settings, counts)
    if not missing:
        await create_outputs(admin, settings, counts)
        return True
    if settings.create_topics:
        await create_inputs(admin, settings, missing)
        log.warning(
            "created input topics %s with %d partitions (ABUSEMON_INPUT_PARTITIONS)",
            ", ".join(missing),
            settings.input_partitions,
        )
        return False  # checked again: another client may have made them meanwhile
    waiting.say(
        "waiting for input topics %s (ABUSEMON_CREATE_TOPICS is false): create them with "
        "%d partitions (ABUSEMON_INPUT_PARTITIONS)",
        ", ".join(missing),
        settings.input_partitions,
    )
    return False


async def create_outputs(
    admin: AIOKafkaAdminClient, settings: Settings, counts: dict[str, int]
) -> None:
    """The alerts and dead-letter topics, with `ABUSEMON_PARTITIONS`, before anything is sent
    to them: a first send would let the broker create them with its own settings. (Faust
    creates the signal-partials topic and the changelogs, with the counts of `needed_topics`.)"""
    big = {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES + 64 * 1024)}
    topics = [
        NewTopic(
            needed.name,
            needed.partitions,
            settings.replication_factor,
            topic_configs=big if needed.name.endswith(".dlq") else {},
        )
        for needed in needed_topics(settings)
        if needed.role == "output" and needed.name not in counts
    ]
    if topics:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(topics)


async def _start(admin: AIOKafkaAdminClient, settings: Settings) -> None:
    try:
        await admin.start()
    except KafkaError:
        raise
    except Exception as exc:  # aiokafka fails so on some authentication errors
        raise KafkaError(
            f"cannot connect to {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
        ) from exc


async def prepare(settings: Settings, tick: Callable[[], None] = lambda: None) -> None:
    """Before the worker joins its group: the input topics exist (created when
    `ABUSEMON_CREATE_TOPICS` allows, else waited for) and every topic's partition count fits.
    Raises `TopicMismatch` otherwise. The internal topics missing are then created by the
    worker (Faust) with the counts of `needed_topics`. `tick` is called while it waits."""
    waiting = _Throttled()
    while True:
        admin = admin_client(settings)
        try:
            await _start(admin, settings)
            while not await inputs_ready(admin, settings, waiting):
                tick()
                await asyncio.sleep(WAIT_POLL_S)
            return
        except KafkaConnectionError as exc:
            waiting.say("waiting for the brokers at %s: %s", settings.bootstrap_servers, exc)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        tick()
        await asyncio.sleep(WAIT_POLL_S)


def prepare_before_start(settings: Settings, tick: Callable[[], None] = lambda: None) -> None:
    """`prepare` on a loop of its own, closed after, so that the worker starts on a new one.
    Until the worker sets up its logging, records at `ABUSEMON_LOG_LEVEL` go to stderr."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    )
    level = root.level
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(prepare(settings, tick))
    finally:
        loop.close()
        root.removeHandler(handler)
        root.setLevel(level)


@dataclass
class TopicState:
    needed: Needed
    partitions: int | None  # None: missing
    end_offsets: int = 0  # summed over partitions
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> summed lag


@dataclass
class Report:
    topics: list[TopicState]
    problems: list[str]


def problems_of(settings: Settings, counts: dict[str, int]) -> list[str]:
    """What `topics check` fails on: the mismatches, and input topics missing that the
    worker will not create."""
    problems = mismatches(settings, counts)
    if not settings.create_topics:
        problems += [
            f"topic {name} does not exist and ABUSEMON_CREATE_TOPICS is false; fix: create it "
            f"with {settings.input_partitions} partitions (ABUSEMON_INPUT_PARTITIONS)"
            for name in missing_inputs(settings, counts)
        ]
    return problems


async def report(settings: Settings, max_groups: int = 50) -> Report:
    """The project's topics: partitions, end offsets, and the lag of every consumer group
    that has committed offsets on them (up to `max_groups` groups asked)."""
    admin = admin_client(settings)
    await _start(admin, settings)
    try:
        counts = await partition_counts(admin)
        groups = sorted(group for group, *_ in await admin.list_consumer_groups())
    finally:
        await admin.close()
    states = [TopicState(n, counts.get(n.name)) for n in needed_topics(settings)]
    partitions = [
        TopicPartition(s.needed.name, p) for s in states for p in range(s.partitions or 0)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        ends = await log_end_offsets(consumer, await consumer.end_offsets(partitions))
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    by_name = {s.needed.name: s for s in states}
    for tp in partitions:
        by_name[tp.topic].end_offsets += ends[tp]
    for group in groups[:max_groups]:
        committed = await _committed(settings, group, partitions)
        for state in states:
            own = [tp for tp in partitions if tp.topic == state.needed.name]
            if all(committed[tp] is None for tp in own):
                continue  # the group does not read it
            # Partitions the group has not committed on count from their first offset.
            state.lag[group] = sum(max(0, ends[tp] - _or(committed[tp], starts[tp])) for tp in own)
    return Report(states, problems_of(settings, counts))


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


async def _committed(
    settings: Settings, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        offsets = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
    finally:
        await consumer.stop()
    return dict(zip(partitions, offsets, strict=True))


def format_report(report: Report) -> str:
    """The report as a table, then its problems."""
    rows = [("topic", "role", "partitions", "wanted", "end offsets", "lag by consumer group")]
    for state in report.topics:
        needed = state.needed
        rows.append(
            (
                needed.name,
                needed.role,
                "missing" if state.partitions is None else str(state.partitions),
                str(needed.partitions) if needed.setting else "any",
                "-" if state.partitions is None else str(state.end_offsets),
                ", ".join(f"{group} {lag}" for group, lag in sorted(state.lag.items())) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    lines += [f"problem: {problem}" for problem in report.problems]
    return "\n".join(line.rstrip() for line in lines)


class GrowError(Exception):
    """Partitions that cannot be added as asked; the message is one line."""


def grow_plan(settings: Settings, counts: dict[str, int], partitions: int) -> list[str]:
    """The input topics and the ingest-state changelog that have fewer than `partitions`
    partitions: they grow together, as the worker keeps one unit of state per partition."""
    names = [n.name for n in needed_topics(settings) if n.setting == "ABUSEMON_INPUT_PARTITIONS"]
    for name in missing_inputs(settings, counts):
        raise GrowError(f"topic {name} does not exist")
    for name in names:
        if counts.get(name, 0) > partitions:
            raise GrowError(
                f"topic {name} has {counts[name]} partitions, more than {partitions}: "
                "partitions cannot be removed"
            )
    return [name for name in names if name in counts and counts[name] < partitions]


async def grow(settings: Settings, partitions: int) -> list[str]:
    """Add partitions to the input topics and the ingest-state changelog, up to
    `partitions` each; returns the topics grown."""
    admin = admin_client(settings)
    await _start(admin, settings)
    try:
        plan = grow_plan(settings, await partition_counts(admin), partitions)
        if plan:
            try:
                await admin.create_partitions({name: NewPartitions(partitions) for name in plan})
            except IncompatibleBrokerVersion:
                raise GrowError(
                    f"the brokers at {settings.bootstrap_servers} cannot add partitions "
                    "(no CreatePartitions request); add them with the cluster's own tools"
                ) from None
    finally:
        await admin.close()
    return plan
