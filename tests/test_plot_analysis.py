"""The numbers behind the plots (app/ui/plots/analysis.py): no Qt, no window."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np

from app.config import SAMPLE_RATE_HZ
from app.ui.plots.analysis import HistoryRing, StreamingSTFT, code_buckets, usage_entropy_bits


def test_usage_entropy_counts_the_bits_each_codebook_carries() -> None:
    codes = np.array([[0, 1, 2, 3] * 8, [5] * 32, [-1] * 32])
    np.testing.assert_allclose(usage_entropy_bits(codes, 2048), [2.0, 0.0, 0.0])


def test_history_ring_keeps_the_newest_rows_in_order() -> None:
    ring = HistoryRing(4, 1)
    for value in range(7):
        ring.append(value)
    assert ring.view()[:, 0].tolist() == [3, 4, 5, 6]
    assert ring.view().flags["C_CONTIGUOUS"]


def test_the_analysis_module_imports_no_qt() -> None:
    import app.ui.plots.analysis as analysis

    tree = ast.parse(Path(analysis.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "numpy"}


def test_uniform_usage_carries_all_the_bits_and_one_code_none() -> None:
    size = 16
    uniform = np.tile(np.arange(size), 4)[None, :]  # every code equally often
    one_hot = np.full((1, 64), 7)  # always the same code
    assert usage_entropy_bits(uniform, size)[0] == math.log2(size)
    assert usage_entropy_bits(one_hot, size)[0] == 0.0
    assert usage_entropy_bits(np.zeros((3, 0), int), size).tolist() == [0.0, 0.0, 0.0]


def test_a_pure_tone_peaks_in_its_bin_at_its_level() -> None:
    n_fft, hop = 512, 480
    stft = StreamingSTFT(n_fft, hop, floor_db=-100.0, top_db=0.0)
    bin_hz = SAMPLE_RATE_HZ / n_fft
    freq = 40 * bin_hz  # on a bin centre: no scalloping
    t = np.arange(SAMPLE_RATE_HZ // 2) / SAMPLE_RATE_HZ
    columns = stft.feed(np.sin(2 * np.pi * freq * t).astype(np.float32))
    assert columns.shape == (n_fft // 2 + 1, (len(t) - n_fft) // hop + 1)
    assert np.all(columns.argmax(axis=0) == 40)
    assert np.all(columns[40] >= 254)  # a full-scale sine reads 0 dB: the top of the scale


def test_the_stft_carries_samples_over_between_feeds() -> None:
    whole, parts = StreamingSTFT(512, 480, -100.0, -20.0), StreamingSTFT(512, 480, -100.0, -20.0)
    pcm = np.random.default_rng(0).standard_normal(4800).astype(np.float32) * 0.1
    at_once = whole.feed(pcm)
    in_pieces = np.concatenate([parts.feed(pcm[i:i + 700]) for i in range(0, len(pcm), 700)], axis=1)
    np.testing.assert_array_equal(at_once, in_pieces)
    assert parts.feed(np.zeros(10, np.float32)).shape == (257, 0)  # not a whole hop yet


def test_a_full_view_shows_the_unwritten_rows_first_as_fill() -> None:
    ring = HistoryRing(4, 2, np.int16, fill=-1)
    ring.extend(np.array([[1, 1], [2, 2]]))
    assert ring.view().tolist() == [[1, 1], [2, 2]]
    assert ring.view(full=True).tolist() == [[-1, -1], [-1, -1], [1, 1], [2, 2]]
    ring.extend(np.arange(10).reshape(5, 2))  # more than it holds: the newest stay
    assert ring.view(full=True)[:, 0].tolist() == [2, 4, 6, 8] and ring.count == 7
    ring.reset()
    assert ring.count == 0 and (ring.view(full=True) == -1).all()


def test_code_buckets_leave_bucket_zero_for_not_sent() -> None:
    buckets = code_buckets(np.array([0, 1023, 2047]), 2048)
    assert buckets.dtype == np.uint8 and buckets.min() >= 1
    assert buckets.tolist() == sorted(buckets.tolist())  # higher codes, later colours
