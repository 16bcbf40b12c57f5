"""Event files: a line's Kafka partition is the one a producer would choose."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.files import murmur2, partition_for


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=80))
def test_murmur2_is_kafkas(data: bytes) -> None:
    """Every length (whole words and one to three bytes over) and every byte value."""
    assert murmur2(data) == reference_murmur2(data)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_a_key_is_in_the_partition_the_producer_chooses(key: str, partitions: int) -> None:
    every = list(range(partitions))
    chosen = DefaultPartitioner()(key.encode(), every, every)
    assert partition_for(key.encode(), partitions) == chosen
