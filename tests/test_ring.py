"""RingBuffer against a deque model: same data, right counts, bounded, wraps correctly."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio.ring import RingBuffer


@pytest.mark.parametrize(("asked", "capacity"), [(1, 1), (2, 2), (3, 4), (1000, 1024),
                                                 (1024, 1024), (1025, 2048), (96000, 131072)])
def test_capacity_rounds_up_to_power_of_two(asked: int, capacity: int) -> None:
    ring = RingBuffer(asked)
    assert ring.capacity == capacity
    assert ring.readable() == 0 and ring.writable() == capacity


@pytest.mark.parametrize("bad", [0, -5])
def test_capacity_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        RingBuffer(bad)


# An operation is ("write", n) | ("read", n) | ("discard", n) | ("silence", n).
operations = st.lists(
    st.tuples(st.sampled_from(["write", "read", "discard", "silence"]),
              st.integers(min_value=0, max_value=40)),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(min_value=1, max_value=33), ops=operations)
def test_matches_deque_model(capacity: int, ops: list[tuple[str, int]]) -> None:
    ring = RingBuffer(capacity)
    model: deque[float] = deque()
    counter = 0.0  # distinct sample values, so misplaced data shows
    for op, n in ops:
        if op == "write":
            data = np.arange(counter, counter + n, dtype=np.float32)
            counter += n
            stored = ring.write(data)
            assert stored == min(n, ring.capacity - len(model))
            model.extend(data[:stored].tolist())
        elif op == "silence":
            stored = ring.write_silence(n)
            assert stored == min(n, ring.capacity - len(model))
            model.extend([0.0] * stored)
        elif op == "read":
            out = np.full(n + 3, -1.0, dtype=np.float32)
            got = ring.read(out[:n])
            assert got == min(n, len(model))
            expected = [model.popleft() for _ in range(got)]
            np.testing.assert_array_equal(out[:got], np.array(expected, dtype=np.float32))
            assert np.all(out[got:] == -1.0)  # nothing written past n
        else:
            dropped = ring.discard(n)
            assert dropped == min(n, len(model))
            for _ in range(dropped):
                model.popleft()
        assert ring.readable() == len(model)
        assert 0 <= ring.readable() <= ring.capacity
        assert ring.writable() == ring.capacity - len(model)
        assert ring.write_pos - ring.read_pos == len(model)
    # Drain: everything left comes out in order.
    out = np.empty(ring.capacity, dtype=np.float32)
    got = ring.read(out)
    np.testing.assert_array_equal(out[:got], np.array(list(model), dtype=np.float32))


def test_wraparound_many_times() -> None:
    ring = RingBuffer(8)
    out = np.empty(5, dtype=np.float32)
    value = 0
    for _ in range(100):  # 5-sample blocks through an 8-sample ring: every offset of the wrap
        block = np.arange(value, value + 5, dtype=np.float32)
        assert ring.write(block) == 5
        assert ring.read(out) == 5
        np.testing.assert_array_equal(out, block)
        value += 5
    assert ring.write_pos == ring.read_pos == 500


def test_write_when_full_stores_what_fits() -> None:
    ring = RingBuffer(4)
    assert ring.write(np.ones(3, dtype=np.float32)) == 3
    assert ring.write(np.full(5, 2.0, dtype=np.float32)) == 1
    assert ring.write(np.full(5, 3.0, dtype=np.float32)) == 0
    out = np.empty(8, dtype=np.float32)
    assert ring.read(out) == 4
    np.testing.assert_array_equal(out[:4], [1, 1, 1, 2])
    assert ring.read(out) == 0


def test_write_accepts_float64_and_strided_views() -> None:
    ring = RingBuffer(16)
    stereo = np.arange(20, dtype=np.float64).reshape(10, 2)
    assert ring.write(stereo[:, 0]) == 10  # a strided column, as the input callback passes
    out = np.empty(10, dtype=np.float32)
    ring.read(out)
    np.testing.assert_array_equal(out, np.arange(0, 20, 2))


def test_discard_and_clear() -> None:
    ring = RingBuffer(8)
    ring.write(np.arange(6, dtype=np.float32))
    assert ring.discard(2) == 2
    assert ring.discard(-1) == 0
    out = np.empty(2, dtype=np.float32)
    ring.read(out)
    np.testing.assert_array_equal(out, [2, 3])
    assert ring.discard(100) == 2
    assert ring.readable() == 0
    ring.write(np.ones(5, dtype=np.float32))
    assert ring.clear() == 5
    assert ring.readable() == 0 and ring.writable() == 8


def test_write_silence_preroll_then_data() -> None:
    ring = RingBuffer(8)
    ring.write(np.full(8, 9.0, dtype=np.float32))  # dirty the buffer first
    ring.clear()
    assert ring.write_silence(3) == 3
    assert ring.write(np.ones(3, dtype=np.float32)) == 3
    assert ring.write_silence(10) == 2
    out = np.empty(8, dtype=np.float32)
    assert ring.read(out) == 8
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1, 1, 0, 0])


def test_read_and_write_do_not_allocate_arrays() -> None:
    # tracemalloc sees numpy's data buffers: a copy would show up as at least one block's bytes.
    import tracemalloc

    ring = RingBuffer(4096)
    block = np.ones(1000, dtype=np.float32)
    out = np.empty(1000, dtype=np.float32)
    for _ in range(5):  # warm up caches
        ring.write(block)
        ring.read(out)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(50):
            ring.write(block)
            ring.write_silence(200)
            ring.read(out)
            ring.discard(200)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename") if stat.size_diff > 0)
    assert grown < block.nbytes


def test_two_threads_keep_order() -> None:
    """One producer thread and one consumer thread: every sample arrives once, in order."""
    ring = RingBuffer(256)
    total = 30_000
    received = np.empty(total, dtype=np.float32)

    def produce() -> None:
        sent = 0
        while sent < total:
            n = min(97, total - sent)
            stored = ring.write(np.arange(sent, sent + n, dtype=np.float32))
            sent += stored
            if stored == 0:
                time.sleep(0)  # let the consumer run

    def consume() -> None:
        got = 0
        while got < total:
            n = ring.read(received[got:got + 61])
            got += n
            if n == 0:
                time.sleep(0)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    np.testing.assert_array_equal(received, np.arange(total, dtype=np.float32))
