"""Lock-free single-producer / single-consumer float32 mono ring (PortAudio callback + worker thread).

Thread contract (see RingBuffer): exactly one thread writes (`write`, `write_silence`) and exactly
one thread reads (`read`, `discard`, `clear`). Each side changes only its own counter, and only
after its copy is done, so the other side never sees a position that covers samples not yet
copied. Under CPython an int attribute store is atomic, so no lock is needed: that matters because
one side is a PortAudio callback, which must never wait on a lock held by the GUI or the worker.

write/read/discard/write_silence allocate no arrays: they copy with slice assignment into the
preallocated buffer (at most two copies, split at the wrap).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """SPSC ring of float32 samples with monotonic positions.

    `write_pos` and `read_pos` count samples since creation and only grow; the stored samples are
    buffer[read_pos % capacity ... write_pos % capacity). `readable() == write_pos - read_pos`
    and never exceeds `capacity`.

    Producer (one thread, e.g. the input callback): write(), write_silence(), writable().
    Consumer (one thread, e.g. the output callback): read(), discard(), clear(), readable().
    Both may call readable()/writable(): a stale answer is always on the safe side (the producer
    may see less free space, the consumer fewer samples, than there are now).
    """

    def __init__(self, capacity: int) -> None:
        capacity = int(capacity)
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self.capacity = 1 << (capacity - 1).bit_length()  # next power of two >= capacity
        self._mask = self.capacity - 1
        self._buffer = np.zeros(self.capacity, dtype=np.float32)
        # NB: write_pos is changed only by the producer, read_pos only by the consumer.
        self.write_pos = 0
        self.read_pos = 0

    def __repr__(self) -> str:
        return (f"RingBuffer(capacity={self.capacity}, readable={self.readable()}, "
                f"write_pos={self.write_pos}, read_pos={self.read_pos})")

    # -- either side ----------------------------------------------------------------------------

    def readable(self) -> int:
        """Samples stored and not yet read."""
        return self.write_pos - self.read_pos

    def writable(self) -> int:
        """Free room, in samples."""
        return self.capacity - (self.write_pos - self.read_pos)

    # -- producer -------------------------------------------------------------------------------

    def write(self, data: np.ndarray) -> int:
        """Copy as much of the 1-D `data` as fits; return how many samples were stored.

        Samples that do not fit are dropped (the caller counts them as an overrun).
        """
        write_pos = self.write_pos
        n = min(data.shape[0], self.capacity - (write_pos - self.read_pos))
        if n <= 0:
            return 0
        start = write_pos & self._mask
        first = min(n, self.capacity - start)
        self._buffer[start:start + first] = data[:first]
        if n > first:
            self._buffer[:n - first] = data[first:n]
        self.write_pos = write_pos + n  # publish only after the copy
        return n

    def write_silence(self, n: int) -> int:
        """Append up to n zeros (output pre-roll); return how many were stored."""
        write_pos = self.write_pos
        n = min(int(n), self.capacity - (write_pos - self.read_pos))
        if n <= 0:
            return 0
        start = write_pos & self._mask
        first = min(n, self.capacity - start)
        self._buffer[start:start + first] = 0.0
        if n > first:
            self._buffer[:n - first] = 0.0
        self.write_pos = write_pos + n
        return n

    # -- consumer -------------------------------------------------------------------------------

    def read(self, out: np.ndarray) -> int:
        """Move the oldest samples into out[:n], n = min(len(out), readable()); return n.

        out[n:] is left untouched (the output callback zero-fills it).
        """
        read_pos = self.read_pos
        n = min(out.shape[0], self.write_pos - read_pos)
        if n <= 0:
            return 0
        start = read_pos & self._mask
        first = min(n, self.capacity - start)
        out[:first] = self._buffer[start:start + first]
        if n > first:
            out[first:n] = self._buffer[:n - first]
        self.read_pos = read_pos + n  # free the room only after the copy
        return n

    def discard(self, n: int) -> int:
        """Drop up to n of the oldest samples (e.g. to cut latency); return how many."""
        read_pos = self.read_pos
        n = min(int(n), self.write_pos - read_pos)
        if n <= 0:
            return 0
        self.read_pos = read_pos + n
        return n

    def clear(self) -> int:
        """Drop everything readable now; return how many samples were dropped."""
        return self.discard(self.write_pos - self.read_pos)
