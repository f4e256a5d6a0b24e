"""Splitting a polled batch into lanes that never share a partition, hence never a customer."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from cartera_common.consumer import split_lanes


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="events", partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=b"k", value=b"v", checksum=None, serialized_key_size=1, serialized_value_size=1, headers=(),
    )  # fmt: skip


def batches(*sizes: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    return {TopicPartition("events", p): [record(p, o) for o in range(n)] for p, n in enumerate(sizes)}


def test_each_partition_goes_whole_to_one_lane_in_its_order() -> None:
    lanes = split_lanes(batches(3, 0, 2, 4), 2)
    assert len(lanes) == 2
    seen = [[(r.partition, r.offset) for r in lane] for lane in lanes]
    assert sorted(p for lane in seen for p, _ in lane) == [0, 0, 0, 2, 2, 3, 3, 3, 3]
    for lane in seen:
        for partition in {p for p, _ in lane}:
            offsets = [o for p, o in lane if p == partition]
            assert offsets == sorted(offsets)
    partitions = [{p for p, _ in lane} for lane in seen]
    assert not partitions[0] & partitions[1]


def test_one_lane_is_the_whole_batch_and_empty_lanes_are_dropped() -> None:
    assert [len(lane) for lane in split_lanes(batches(3, 2), 1)] == [5]
    assert [len(lane) for lane in split_lanes(batches(3), 2)] == [3]
    assert split_lanes(batches(0, 0), 2) == []
