"""The cover: how long a wait the timing controller's target must cover, from the waits it saw.

Part of the timing controller (timing.py), apart because it has one job: remember the chunks'
waits and tell jitter the machine has from disturbances that pass. Pure arithmetic, owned by the
worker thread through its TimingController.

The cover is measured, not guessed:
- calm chunks (not part of a disturbance, see below) are remembered for `calm_memory_s`: the
  cover is the longest wait among them, so the jitter the machine really has is covered (a wait
  seen only once, for `single_memory_s`);
- any chunk, calm or not, is covered for `recent_memory_s`: during a disturbance (other
  programs taking the CPU, a model switch) the target rises as far as needed, and falls back a
  few seconds after the cause is gone (hysteresis, not a ratchet);
- a chunk that waited longer than two chunks (`stall_chunks`) is a stall, not jitter: it is
  covered only briefly, so a one-off freeze does not keep the delay up for minutes;
- several elevated chunks close together (`episode_*`) are a disturbance: none of them is
  remembered as calm;
- the chunks that waited for a pile-up (input the worker could not read while it was stalled,
  then dropped) neither raise the cover nor count as calm.
Until `trust_s` of calm history exists, the cover is at least the estimate from the warm-up.
"""

from __future__ import annotations

import collections
import math

from app.audio.timing_policy import TimingPolicy


class CoverMemory:
    """The waits of the last minutes, and the longest wait they say to cover (seconds)."""

    def __init__(self, chunk_samples: int, initial_cover_s: float, policy: TimingPolicy, rate: int) -> None:
        self.policy = policy
        self.rate = rate
        self.chunk_samples = chunk_samples
        self.initial_cover_s = initial_cover_s  # the warm-up's estimate, until calm history is trusted
        self.episodes = 0  # disturbances seen, cumulative since start
        self._calm_blocks: collections.deque[list[float]] = collections.deque()  # [start, max wait]
        self._calm_since: float | None = None
        self._calm_waits: collections.deque[float] = collections.deque(maxlen=policy.median_chunks)
        self._usual_s: float | None = None
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (time, wait)
        self._pending: collections.deque[list] = collections.deque()  # [time, wait, tainted]
        self._elevated: collections.deque[bool] = collections.deque(maxlen=policy.episode_window)
        self._disturbed_until = -math.inf
        self._held = False
        self._taint_next = 0  # chunks after a pile-up that are not remembered as calm

    @property
    def cover_s(self) -> float:
        """The longest wait to cover now: the calm one, or a recent one while that is longer."""
        return max(self._calm_cover_s(), self._recent_cover_s())

    def settled(self, now: float) -> bool:
        """The disturbance has passed and the cover is down to what calm chunks need."""
        return now >= self._disturbed_until and self._recent_cover_s() <= self._calm_cover_s()

    def observe(self, now: float, wait_s: float, catching_up: bool = False) -> bool:
        """Records one chunk's wait; True if it makes a disturbance (several elevated together)."""
        p = self.policy
        after_pile_up = self._taint_next > 0
        self._taint_next = max(0, self._taint_next - 1)
        if not after_pile_up:  # the pile-up was dropped: covering its waits would only add delay
            self._recent.append((now, wait_s))
        while self._recent and now - self._recent[0][0] > p.recent_memory_s:
            self._recent.popleft()
        self._elevated.append(wait_s > self._elevated_above())
        disturbance = sum(self._elevated) >= p.episode_elevated
        if disturbance:
            if now >= self._disturbed_until:
                self.episodes += 1
            self._disturbed_until = now + p.recent_memory_s
            self._taint_pending()
        stall = wait_s > p.stall_chunks * self.chunk_samples / self.rate
        tainted = now < self._disturbed_until or self._held or stall or catching_up or after_pile_up
        self._pending.append([now, wait_s, tainted])
        if len(self._pending) > p.episode_window:
            when, wait, tainted = self._pending.popleft()
            if not tainted:
                self._remember_calm(when, wait)
        if self._usual_s is None and len(self._pending) == p.episode_window:
            self._usual_s = sorted(w for _, w, _ in self._pending)[p.episode_window // 2]
        return disturbance

    def note_pile_up(self) -> None:
        """Input piled up: the worker was stalled. The chunks around it, and the next few while
        what is left of the pile-up drains, wait for the stall, not for jitter the machine has:
        none of them may set the cover for the next two minutes."""
        self._taint_next = self.policy.episode_window
        self._taint_pending()

    def hold(self, held: bool, now: float) -> None:
        """While held (a known disturbance under way), and `recent_memory_s` after, no chunk is calm."""
        if self._held and not held:
            self._disturbed_until = max(self._disturbed_until, now + self.policy.recent_memory_s)
        self._held = held

    # -- inside -------------------------------------------------------------------------------

    def _calm_cover_s(self) -> float:
        # A wait seen in two blocks of the calm memory is the machine's: covered for the whole
        # memory. One seen once (a hiccup as a load ends) is covered for `single_memory_s`.
        p = self.policy
        waits = sorted((block[1] for block in self._calm_blocks), reverse=True)
        newest = self._calm_blocks[-1][0] if self._calm_blocks else 0.0
        fresh = max((b[1] for b in self._calm_blocks if newest - b[0] <= p.single_memory_s), default=0.0)
        calm = max(fresh, waits[1] if len(waits) > 1 else 0.0)
        trusted = self._calm_since is not None and self._calm_blocks and \
            self._calm_blocks[-1][0] - self._calm_since >= p.trust_s
        if not trusted:
            calm = max(calm, self.initial_cover_s)
        return max(p.min_cover_s, calm)

    def _recent_cover_s(self) -> float:
        recent = max((wait for _, wait in self._recent), default=0.0)
        return min(recent, self.policy.cover_cap_chunks * self.chunk_samples / self.rate)

    def _elevated_above(self) -> float:
        p, usual = self.policy, self._usual_s
        return math.inf if usual is None else usual * (1 + p.elevated_ratio) + p.elevated_min_s

    def _taint_pending(self) -> None:
        # The chunks still in the episode window are part of what just happened: none is calm.
        for entry in self._pending:
            entry[2] = True

    def _remember_calm(self, when: float, wait: float) -> None:
        p = self.policy
        if self._calm_since is None:
            self._calm_since = when
        if not self._calm_blocks or when - self._calm_blocks[-1][0] >= p.calm_block_s:
            self._calm_blocks.append([when, wait])
        else:
            self._calm_blocks[-1][1] = max(self._calm_blocks[-1][1], wait)
        while self._calm_blocks and when - self._calm_blocks[0][0] > p.calm_memory_s:
            self._calm_blocks.popleft()
        self._calm_waits.append(wait)
        if len(self._calm_waits) % 25 == 0 or len(self._calm_waits) < 25:
            ordered = sorted(self._calm_waits)
            self._usual_s = ordered[len(ordered) // 2]
