"""The timing controller on its own, against a simulated live path and simulated disturbances.

`PathSim` is the live path in numbers, on a 1 ms clock: the microphone delivers device blocks,
the worker takes whole chunks, computes for as long as the scenario says, asks the controller,
and writes to a speaker queue that the device drains block by block. It measures the TRUE delay
of every chunk independently of the controller: when the chunk's first sample was captured
against when it starts to play. Disturbances: slow compute (other programs on the CPU), a frozen
process (nothing of the app runs; the audio server keeps the input and plays silence), a speaker
that stops pulling, clock drift, a one-off stall.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.audio.splice import crossfade_into, resample_to, splice
from app.audio.timing import TimingController, TimingPolicy
from app.config import FRAME_S, FRAME_SIZE, SAMPLE_RATE_HZ

RATE = SAMPLE_RATE_HZ
PER_MS = RATE // 1000


class PathSim:
    def __init__(self, compute_s=lambda t: 0.025, chunk: int = FRAME_SIZE, block_in: int = 240,
                 block_out: int = 240, mic_ppm: float = 0.0, policy: TimingPolicy | None = None) -> None:
        self.compute_s = compute_s
        self.chunk, self.block_in, self.block_out = chunk, block_in, block_out
        self.mic_ppm = mic_ppm
        self.timing = TimingController(chunk, initial_cover_s=0.060, policy=policy)
        self.timing.set_output_block(block_out)
        self.timing.set_input_block(block_in)
        self.t_ms = 0
        self.captured = 0.0  # samples the microphone has captured (device clock)
        self.delivered = 0  # samples handed to the app's input ring
        self.read = 0  # input samples the worker has taken or dropped
        self.level = self.timing.target + chunk  # speaker queue, primed with silence
        self.underrun_samples = 0
        self.busy_until_ms: int | None = None
        self.job: tuple[int, float, int] | None = None
        self.delays_ms: list[tuple[float, float]] = []  # (time s, true delay of the chunk's first sample)
        self.frozen_until_ms = -1
        self.speaker_stalled_until_ms = -1
        self.chunks = 0
        self._out_phase = 0
        self._in_phase = 0.0

    @property
    def t(self) -> float:
        return self.t_ms / 1000

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds * 1000)):
            self._tick()

    def freeze(self, seconds: float) -> None:
        self.frozen_until_ms = self.t_ms + int(seconds * 1000)

    def stall_speaker(self, seconds: float) -> None:
        self.speaker_stalled_until_ms = self.t_ms + int(seconds * 1000)

    def _tick(self) -> None:
        self.t_ms += 1
        frozen = self.t_ms < self.frozen_until_ms
        self.captured += PER_MS * (1 + self.mic_ppm / 1e6)
        if not frozen:  # the input callback: whole blocks, or everything the server kept during a freeze
            while self.captured - self.delivered >= self.block_in:
                self.delivered += self.block_in
        self._out_phase += PER_MS
        if self._out_phase >= self.block_out:
            self._out_phase -= self.block_out
            if not frozen and self.t_ms >= self.speaker_stalled_until_ms:
                if self.level < self.block_out:
                    self.underrun_samples += self.block_out - self.level
                    self.level = 0
                else:
                    self.level -= self.block_out
        if not frozen:
            self._worker()

    def _worker(self) -> None:
        timing = self.timing
        if self.job is not None:
            if self.busy_until_ms is not None and self.t_ms < self.busy_until_ms:  # set with the job
                return
            start_index, compute_s, backlog = self.job
            self.job = None
            if self._seen_underruns < self.underrun_samples:
                timing.note_underrun(self.t, self.underrun_samples - self._seen_underruns, "test")
                self._seen_underruns = self.underrun_samples
            correction = timing.correct(self.t, self.level, backlog, compute_s)
            # The chunk's first sample plays once the queue ahead of it has drained.
            captured_at = start_index / (RATE * (1 + self.mic_ppm / 1e6))
            self.delays_ms.append((self.t, (self.t - captured_at + self.level / RATE) * 1000))
            self.level += self.chunk + correction.samples
            self.chunks += 1
        backlog = self.delivered - self.read
        if backlog < self.chunk:
            return
        drop = timing.frames_to_drop(self.level, backlog)
        if drop:
            self.read += drop * FRAME_SIZE
            timing.note_dropped(drop)
        start_index = self.read
        self.read += self.chunk
        compute = self.compute_s(self.t)
        self.job = (start_index, compute, self.delivered - self.read)
        self.busy_until_ms = self.t_ms + math.ceil(compute * 1000)

    _seen_underruns = 0

    def delay_ms(self, start: float, end: float) -> float:
        """Median true delay of the chunks written between `start` and `end` seconds."""
        return float(np.median([d for t, d in self.delays_ms if start <= t < end]))


def jittery(seed: int = 0, base: float = 0.025, spread: float = 0.008):
    rng = np.random.default_rng(seed)
    return lambda t: base + spread * rng.random()


def test_steady_state_holds_its_delay_and_never_runs_dry() -> None:
    sim = PathSim(jittery())
    sim.run(120)
    early, late = sim.delay_ms(20, 30), sim.delay_ms(110, 120)
    assert sim.underrun_samples == 0
    assert abs(late - early) < 3
    # The chunk (80 ms) + in flight: the longest wait (~33 ms compute + up to a 10 ms input block),
    # an output block and the margin.
    assert late < 80 + 33 + 10 + 10 + 4 + 5


def test_a_start_target_that_was_too_generous_is_let_go_once_waits_are_measured() -> None:
    sim = PathSim(jittery())
    sim.run(30)
    assert sim.delay_ms(1, 3) > sim.delay_ms(25, 30) + 10  # the warm-up guess was generous...
    assert sim.timing.spliced_out > 0 and sim.underrun_samples == 0  # ...and spliced away, no gaps


def test_other_programs_taking_the_cpu_raise_the_delay_only_while_they_do() -> None:
    base = jittery(1)
    sim = PathSim(lambda t: 3 * base(t) if 40 <= t < 55 else base(t))  # 15 s of a loaded machine
    sim.run(70)
    steady = sim.delay_ms(30, 40)
    during = sim.delay_ms(45, 55)
    after = sim.delay_ms(63, 65)  # within 10 s of the end of the load
    assert during > steady + 20  # the target rose to cover the slow chunks...
    assert abs(after - steady) < 25  # ...and came back down once they stopped
    assert sim.timing.episodes >= 1
    assert sim.delay_ms(66, 70) == pytest.approx(steady, abs=8)


@pytest.mark.parametrize("block", [240, 960])  # 10 ms blocks, and the 40 ms a server may hand over at once
def test_a_frozen_process_costs_a_gap_not_a_lasting_delay(block: int) -> None:
    sim = PathSim(jittery(2), block_in=block, block_out=block)
    sim.run(60)
    steady = sim.delay_ms(50, 60)
    sim.freeze(1.5)  # SIGSTOP / SIGCONT
    sim.run(15)
    assert sim.timing.dropped_frames >= 15  # the 1.5 s the server kept for us is dropped...
    # ...what is left over is spliced away (not resampled away over tens of seconds), and the
    # chunks that waited for the freeze do not raise the cover: the delay is back 2 s later.
    assert abs(sim.delay_ms(63.5, 66) - steady) < 6
    assert abs(sim.delay_ms(66, 75) - steady) < 6


def test_a_speaker_that_stops_pulling_is_won_back_by_splicing() -> None:
    sim = PathSim(jittery(3))
    sim.run(30)
    steady = sim.delay_ms(20, 30)
    sim.stall_speaker(0.5)
    sim.run(10)
    assert sim.timing.spliced_out >= 0.45 * RATE
    assert abs(sim.delay_ms(35, 40) - steady) < 10


def test_a_one_off_stall_is_not_covered_for_minutes() -> None:
    base = jittery(4)
    sim = PathSim(lambda t: 0.300 if 30 <= t < 30.001 + FRAME_S else base(t))
    sim.run(50)
    steady = sim.delay_ms(20, 30)
    assert abs(sim.delay_ms(40, 50) - steady) < 10  # a 300 ms stall is not jitter to cover


def test_rare_spikes_of_jitter_are_remembered_so_they_do_not_underrun_again() -> None:
    base = jittery(5)
    spikes = {20 + 7 * k for k in range(10)}  # every 7 s a 55 ms chunk (jitter, not a stall)
    sim = PathSim(lambda t: 0.055 if int(t) in spikes and t % 1 < FRAME_S else base(t))
    sim.run(95)
    assert sim.underrun_samples < 0.030 * RATE  # at most the first spike ran dry, briefly


def test_a_single_hiccup_is_covered_for_seconds_not_minutes() -> None:
    base = jittery(8)
    sim = PathSim(lambda t: 0.070 if 40 <= t < 40 + FRAME_S else base(t))  # one 70 ms chunk, as a load ends
    sim.run(90)
    steady = sim.delay_ms(30, 40)
    assert sim.delay_ms(42, 50) > steady + 20  # covered for a while, in case it comes back...
    assert abs(sim.delay_ms(70, 90) - steady) < 4  # ...and let go once it did not


def test_clock_drift_is_absorbed_without_splices() -> None:
    sim = PathSim(jittery(6), mic_ppm=-700)  # the microphone runs slow
    sim.run(150)
    assert abs(sim.delay_ms(140, 150) - sim.delay_ms(20, 30)) < 8
    assert sim.timing.drift_ppm == pytest.approx(700, rel=0.25)
    assert sim.underrun_samples == 0


def test_underruns_and_recovery_are_announced_once_each() -> None:
    base = jittery(7)
    sim = PathSim(lambda t: 3 * base(t) if 30 <= t < 35 else base(t))
    sim.run(50)
    kinds = [kind for kind, _ in sim.timing.events]
    assert kinds[0] == "behind" and kinds[-1] == "recovered" and kinds.count("recovered") == 1


# -- the audio side of a correction ---------------------------------------------------------


def test_splices_change_the_length_exactly_and_keep_the_ends() -> None:
    rng = np.random.default_rng(0)
    chunk = rng.standard_normal(FRAME_SIZE).astype(np.float32)
    for change in (-480, -1, 1, 240):
        out = splice(chunk, change, 120)
        assert len(out) == FRAME_SIZE + change
        assert out[0] == chunk[0] and out[-1] == chunk[-1]
    with pytest.raises(ValueError):
        splice(chunk, -(FRAME_SIZE - 100), 120)


def test_a_splice_in_a_tone_has_no_click() -> None:
    t = np.arange(FRAME_SIZE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    out = splice(tone, -480, 120)
    steps = np.abs(np.diff(out))
    assert steps.max() < 2.5 * np.abs(np.diff(tone)).max()  # no step larger than the tone's own slope


def test_resampling_a_few_samples_and_crossfading_over_a_gap() -> None:
    ramp = np.linspace(0, 1, FRAME_SIZE, dtype=np.float32)
    assert len(resample_to(ramp, FRAME_SIZE + 2)) == FRAME_SIZE + 2
    kept = np.ones(120, np.float32)
    crossfade_into(np.zeros(120, np.float32), kept)
    assert kept[0] == 0 and kept[-1] == pytest.approx(1) and np.all(np.diff(kept) >= 0)
