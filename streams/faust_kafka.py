"""Faust's Kafka transport, with two corrections that keep table state across a crash.

A Faust table is rebuilt after a restart by reading its changelog topic up to the end offset
the broker reports, then the worker resumes its input from the committed offsets. An update
is lost when the rebuilt table lacks a changelog record written for an input offset that was
already committed. Two paths lead there; see docs/state.md.

- The end offset. Recovery asks the broker for it with ListOffsets. The embedded broker
  (Tansu 0.6) answers with the base offset of the partition's last record batch plus one,
  not the offset after its last record: every record of the last batch but its first is
  left out of the rebuilt table. `LogEndConsumer` checks that answer against the high
  watermark of a fetch, which that broker reports right, and takes the larger. On Apache
  Kafka the two agree and the check costs one fetch per changelog partition at recovery.
- The commit. Faust flushes the producer before committing, but its buffer's flush returns
  after 0.1 s without progress and misses the message its sender task holds; a commit can
  then cover an event whose changelog record the broker has not acknowledged.
  `FlushingProducer.flush` also waits for every message handed to `send_soon` (the table
  changelog path) before it returns, and raises if one failed, so that the commit does not
  happen.

`LogEndConsumer.commit_offsets` commits offsets as given, for the topics whose offsets the
worker commits itself. `App` is `faust.App` with this transport for `kafka://` and
`aiokafka://` brokers, and hands the records of the topics it reads in batches to a
handler, a partition's fetch at a time. Its group consumer's fetches wait at the broker for
`App.fetch_max_wait_ms` (Faust fixes it at 1.5 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import aiokafka
import faust
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.transports import TransportT
from faust.types.tuples import FutureMessage, Message

log = logging.getLogger("abuse_monitor")

# How long recovery waits for the fetch that checks the end offsets before it keeps the
# ListOffsets answer.
END_OFFSET_CHECK_S = 10.0


async def log_end_offsets(
    consumer: aiokafka.AIOKafkaConsumer,
    listed: Mapping[Any, int],
    timeout_s: float = END_OFFSET_CHECK_S,
) -> dict[Any, int]:
    """The end offset of each partition: the larger of ListOffsets' answer (`listed`) and the
    high watermark of a fetch from just before it. `consumer` is a started consumer without a
    group; its assignment is replaced."""
    ends = dict(listed)
    check = [tp for tp, end in ends.items() if end]
    if not check:
        return ends
    consumer.assign(check)
    for tp in check:
        consumer.seek(tp, ends[tp] - 1)
    deadline = time.monotonic() + timeout_s
    missing = set(check)
    while missing and time.monotonic() < deadline:
        await consumer.getmany(*missing, timeout_ms=500)
        for tp in list(missing):
            highwater = consumer.highwater(tp)
            if highwater is not None:
                ends[tp] = max(ends[tp], highwater)
                missing.discard(tp)
    if missing:
        log.warning("end offsets not checked, ListOffsets' kept: %s", sorted(map(str, missing)))
    return ends


class Fetched(dict[Any, list[Any]]):
    """The records of one fetch by partition, with the number of each partition's last seek
    done before they were taken from the client (`sought`)."""

    sought: dict[TP, int]


class LogEndConsumerThread(driver.AIOKafkaConsumerThread):
    """The thread that runs the aiokafka consumer. Every seek is done here, between two of
    its steps: aiokafka's consumer is not thread-safe, and a seek from another thread while
    this one takes the fetched records of the partition made it raise (`KeyError` in
    `Fetcher.fetched_records`), which stopped the worker."""

    sought: dict[TP, int]  # a partition's last numbered seek done

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sought = {}

    async def seek_numbered(self, offsets: Mapping[TP, int], number: int | None) -> None:
        """Seek the partitions (run in this thread), and record the seek's number."""
        consumer = self._ensure_consumer()
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
            if number is not None:
                self.sought[tp] = number

    async def _fetch_records(
        self, consumer: aiokafka.AIOKafkaConsumer, *args: Any, **kwargs: Any
    ) -> Fetched:
        records = Fetched(await super()._fetch_records(consumer, *args, **kwargs))
        # No seek can run between the records' taking and this line: both are this thread's.
        records.sought = {tp: self.sought.get(tp, 0) for tp in records}
        return records

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        # Faust asks for a fetch wait of 1.5 s whatever its settings; the app's is used
        # instead, before the consumer starts and builds its fetcher with it.
        consumer = super()._create_worker_consumer(transport)
        app = self.app
        if isinstance(app, App):
            consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = await super()._highwaters(partitions)
        if self.consumer.in_transaction or not any(listed.values()):
            return listed
        client = self._create_client_consumer(self.transport)  # type: ignore[arg-type]
        await client.start()
        try:
            return await log_end_offsets(client, listed)
        finally:
            await _stop(client)


async def _stop(consumer: aiokafka.AIOKafkaConsumer) -> None:
    """`consumer.stop()`. aiokafka 0.14 re-raises the cancellation of a consumer's
    no-group coordinator task if it had not started yet; that one is not ours."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _committed_offsets(thread: driver.AIOKafkaConsumerThread) -> dict[TP, int | None]:
    """The group's committed offset of each assigned partition (run in the consumer's
    thread)."""
    consumer = thread._ensure_consumer()
    return {
        TP(tp.topic, tp.partition): await consumer.committed(tp) for tp in consumer.assignment()
    }


class LogEndConsumer(driver.Consumer):
    """Faust's Kafka consumer, with the end-offset check, commits as given, seeks in the
    consumer's thread, and no message read before a seek delivered after it.

    Faust resumes a partition before it seeks it to the committed offset, and its fetch
    loop drops any message below the last offset it delivered for the partition. A message
    from a batch fetched before the seek, delivered after it, moved that mark past the
    messages fetched again from the new position, which were dropped: a resumed partition
    could skip the message at its committed offset. So each seek is numbered when asked
    for, the consumer's thread tells with each fetch which seeks it had done when it took
    the records, and the records of a partition taken before its last seek are dropped; the
    first one taken after it is delivered whatever the mark. A partition whose batch was
    fetched and then not handed over is sought back to it."""

    _seeks: int  # seeks asked for so far
    _sought: dict[TP, int]  # a partition's last seek asked for, by number
    _taken_after: dict[TP, int]  # of the fetch being delivered: each partition's seeks done
    _resync: set[TP]  # partitions sought and not delivered a message since

    def __post_init__(self) -> None:
        super().__post_init__()
        self._seeks = 0
        self._sought, self._taken_after, self._resync = {}, {}, set()

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return LogEndConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _seek_in_thread(self, offsets: Mapping[TP, int], marked: bool) -> None:
        """Seek the partitions in the consumer's thread. A marked seek is numbered first, so
        that a batch taken before the thread does it is known as one from before it."""
        number = None
        if marked:
            self._seeks += 1
            number = self._seeks
            for tp in offsets:
                self._sought[tp] = number
                self._resync.add(tp)
        thread = cast(LogEndConsumerThread, self._thread)
        await thread.call_thread(thread.seek_numbered, offsets, number)

    async def _seek(self, partition: TP, offset: int) -> None:
        await self._seek_in_thread({partition: offset}, marked=True)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        # aiokafka's own seeks each partition as soon as its committed offset arrives and
        # then asks for the next one: a batch fetched from a partition's new position in the
        # meantime was taken for one from before the seek, and dropped. So the offsets come
        # first, then the partitions are sought in one step.
        thread = self._thread
        committed: dict[TP, int | None] = await thread.call_thread(_committed_offsets, thread)
        offsets = {tp: offset for tp, offset in committed.items() if offset and offset > 0}
        if offsets:
            await self._seek_in_thread(offsets, marked=True)
        return cast(dict[TP, int], committed)  # Faust's type; None where there is none

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        taken_after = self._taken_after = getattr(records, "sought", {})
        app = self.app
        if records and isinstance(app, App) and app.on_batch is not None:
            # Records of the topics read in batches leave here, one batch per partition,
            # before Faust turns each into a message and awaits its delivery. Each is
            # marked with its partition's seeks before it was taken: handing one over may
            # wait, and a seek may come meanwhile.
            batches = [tp for tp in records if tp.topic in app.batch_topics]
            batches.sort(key=lambda tp: tp.topic not in app.batch_first)
            for tp in batches:
                batch = cast(dict[TP, list[Any]], records).pop(tp)
                seeks = taken_after.get(tp, 0)
                if self.flow_active and (active is None or tp in active):
                    await app.on_batch(Batch(TP(tp.topic, tp.partition), batch, seeks))
                else:
                    await self._read_again(TP(tp.topic, tp.partition), batch[0].offset, seeks)
        return records, active

    async def _read_again(self, tp: TP, offset: int, seeks: int) -> None:
        """A batch not handed over (flow stopped, or its partition paused, since the fetch):
        its partition is sought back to it, unless a seek since then has moved it already or
        the partition has gone to another worker."""
        if self._sought.get(tp, 0) > seeks or tp not in self.assignment():
            return
        log.info("batch of %s from offset %d not handed over: read again", tp, offset)
        # Not marked as a seek: the batches of the partition handed over before this one
        # come before it, and stay to be processed. This runs in the fetch loop, so no
        # other fetch is taken before the seek is done.
        await self._seek_in_thread({tp: offset}, marked=False)
        self._read_offset[tp] = offset or None  # as Faust's seek does

    def stale(self, batch: Batch) -> bool:
        """Whether the batch was taken before its partition's last seek: the records are
        fetched again from the new position."""
        return self._sought.get(batch.tp, 0) > batch.seeks

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        async for tp, message in super().getmany(timeout):
            if self._sought.get(tp, 0) > self._taken_after.get(tp, 0):
                continue  # taken before the partition's last seek: it is read again
            if tp in self._resync:
                self._resync.discard(tp)
                self._read_offset[tp] = message.offset  # so that the fetch loop keeps it
            yield tp, message

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit these offsets as given, for topics whose acknowledgements are off (the
        worker commits those from its checkpoints). Partitions no longer assigned are left
        out; False if the group has rebalanced since."""
        return await self._commit(offsets)


class FlushingProducer(driver.Producer):
    """`flush()` returns once every message given to `send_soon` before it is acknowledged."""

    _unacknowledged: set[FutureMessage]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unacknowledged = set()

    def send_soon(self, fut: FutureMessage) -> None:
        if not self.app.conf.producer_threaded:  # its futures belong to another loop
            self._unacknowledged.add(fut)
            fut.add_done_callback(self._unacknowledged.discard)
        super().send_soon(fut)

    async def flush(self) -> None:
        waiting = list(self._unacknowledged)
        await super().flush()
        if not waiting:
            return
        _, pending = await asyncio.wait(waiting, timeout=self.app.conf.producer_request_timeout)
        if pending:
            raise ProducerSendError(f"{len(pending)} messages not acknowledged in time")
        failed = [fut for fut in waiting if not fut.cancelled() and fut.exception()]
        if failed:
            raise ProducerSendError(
                f"{len(failed)} messages not sent: {failed[0].exception()!r}"
            ) from failed[0].exception()


@dataclass
class Batch:
    """The records of one partition from one fetch, in offset order (aiokafka's
    `ConsumerRecord`s: `offset`, `key`, `value`, `timestamp`)."""

    tp: TP
    records: list[Any]
    seeks: int  # the number of its partition's last seek done before it was taken


class Transport(driver.Transport):
    Consumer: ClassVar[type[LogEndConsumer]] = LogEndConsumer
    Producer: ClassVar[type[FlushingProducer]] = FlushingProducer


class App(faust.App):
    """`faust.App` with `Transport` for Kafka brokers, and topics read in batches.

    The records of `batch_topics` go to `on_batch` a partition's fetch at a time, instead of
    one message at a time through Faust's streams: Faust's per-message path (a message
    object, a delivery awaited with a task or two, an event, the stream's bookkeeping)
    costs about 150 µs a message, a third of the worker's time when it read so. The topics
    are subscribed as any other (`app.topics.add`), so the group's assignment, rebalances and
    flow control are Faust's."""

    batch_topics: frozenset[str] = frozenset()
    batch_first: frozenset[str] = frozenset()  # of those, handed over first from a fetch
    fetch_max_wait_ms = 1500  # the group consumer's, Faust's own unless set
    on_batch: Callable[[Batch], Awaitable[None]] | None = None

    def _new_transport(self) -> TransportT:
        url = self.conf.broker_consumer[0]
        if url.scheme in ("kafka", "aiokafka"):
            return Transport(self.conf.broker_consumer, self)
        return super()._new_transport()
