"""The stand-in exporter (skipped without the `export` extra: the suite never needs torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the exporter needs the export extra (torch, transformers)")
pytest.importorskip("transformers", reason="the exporter needs the export extra (torch, transformers)")

from app.codec.export import ExportError, export_pair  # noqa: E402 - after the importorskip above
from app.codec.export.build import build_model, state_spec  # noqa: E402 - after the importorskip above
from app.codec.export.streaming_torch import StreamingDecoder, StreamingEncoder  # noqa: E402 - after the importorskip above
from app.codec.spec import parse_state_spec  # noqa: E402 - after the importorskip above
from app.codec.standin import EXPORT_MARK_FILE, stand_in_note  # noqa: E402 - after the importorskip above

FIXTURES = Path(__file__).parent / "fixtures"

# The published state shapes (MIMI_CONTRACT.md), in file order.
PUBLISHED_ENCODER = [("conv", "enc_0", 1, 6), ("conv", "enc_1_b1", 64, 2), ("conv", "enc_3", 64, 4),
                     ("conv", "enc_4_b1", 128, 2), ("conv", "enc_6", 128, 5), ("conv", "enc_7_b1", 256, 2),
                     ("conv", "enc_9", 256, 6), ("conv", "enc_10_b1", 512, 2), ("conv", "enc_12", 512, 8),
                     ("conv", "enc_14", 1024, 2), ("conv", "ds", 512, 2)]
PUBLISHED_DECODER = [("conv_tr", "us", 512, 2), ("conv", "dec_0", 512, 6), ("conv_tr", "dec_2", 512, 8),
                     ("conv", "dec_3_b1", 512, 2), ("conv_tr", "dec_5", 256, 6), ("conv", "dec_6_b1", 256, 2),
                     ("conv_tr", "dec_8", 128, 5), ("conv", "dec_9_b1", 128, 2), ("conv_tr", "dec_11", 64, 4),
                     ("conv", "dec_12_b1", 64, 2), ("conv", "dec_14", 64, 2)]


def _rows(side):
    return [(s.kind, s.name, s.channels, s.temporal) for s in side]


def test_full_size_state_shapes_equal_the_published_ones():
    model = build_model(None, seed=0, tiny=False)
    spec = state_spec(StreamingEncoder(model, 8), StreamingDecoder(model, 8), 8)
    assert _rows(spec.encoder) == PUBLISHED_ENCODER
    assert _rows(spec.decoder) == PUBLISHED_DECODER


def test_tiny_export_reproduces_the_committed_fixture(tmp_path):
    import onnxruntime as ort

    summary = export_pair(tmp_path / "tiny", codebooks=8, seed=0, tiny=True)
    assert summary["decoder_rel_err_vs_transformers"] < 1e-4
    assert (parse_state_spec(tmp_path / "tiny" / "state_spec.txt")
            == parse_state_spec(FIXTURES / "tiny-8cb" / "state_spec.txt"))
    # Same seed, same weights: both decoders turn the same codes into the same audio.
    codes = np.random.default_rng(3).integers(0, 64, size=(1, 8, 2), dtype=np.int64)
    outputs = []
    for folder in (tmp_path / "tiny", FIXTURES / "tiny-8cb"):
        session = ort.InferenceSession(str(folder / "decoder_model.onnx"), providers=["CPUExecutionProvider"])
        feeds = {}
        for meta in session.get_inputs():
            shape = [1 if d == "batch_size" else 0 if isinstance(d, str) else d for d in meta.shape]
            feeds[meta.name] = codes if meta.name == "audio_codes" else np.zeros(shape, np.float32)
        outputs.append(session.run(["audio_values"], feeds)[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not list(tmp_path.glob(".tiny.*")), "the temporary export folder was left behind"
    # The folder says what it is: reports made with it must not pass noise off as Mimi.
    assert (tmp_path / "tiny" / EXPORT_MARK_FILE).read_text() == (FIXTURES / "tiny-8cb" / EXPORT_MARK_FILE).read_text()
    assert "stand-in" in (stand_in_note(tmp_path / "tiny") or "")


def test_too_many_codebooks_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match="codebooks"):
        export_pair(tmp_path / "bad", codebooks=99, tiny=True)
    assert list(tmp_path.iterdir()) == []
