"""Splitting a polled batch into lane shares that never share a partition, hence never a customer."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from cartera_common.consumer import Batches, split_lanes


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="events", partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=b"k", value=b"v", checksum=None, serialized_key_size=1, serialized_value_size=1, headers=(),
    )  # fmt: skip


def batches(*sizes: int) -> Batches:
    return {TopicPartition("events", p): [record(p, o) for o in range(n)] for p, n in enumerate(sizes)}


def test_a_partition_always_goes_whole_to_the_same_lane_in_its_order() -> None:
    """Lanes run independently, so a partition that changed lanes between polls could overtake itself."""
    first, later = split_lanes(batches(3, 0, 2, 4), 2), split_lanes(batches(1, 5, 1, 0), 2)
    for shares in (first, later):
        assert len(shares) == 2
        for lane, share in enumerate(shares):
            for tp, records in share.items():
                assert tp.partition % 2 == lane
                assert [r.offset for r in records] == sorted(r.offset for r in records)
                assert {r.partition for r in records} == {tp.partition}
    assert sorted(tp.partition for share in first for tp in share) == [0, 2, 3]  # empty partitions left out


def test_one_lane_takes_the_whole_batch() -> None:
    [share] = split_lanes(batches(3, 2), 1)
    assert sum(len(records) for records in share.values()) == 5
    assert split_lanes(batches(0, 0), 2) == [{}, {}]
