"""The local int8 copy: made once, loads and streams like any model, and carries honest numbers."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from app.codec import StreamingCodec, int8_copy
from app.codec.derived import MADE_FROM_FILE
from app.codec.errors import ModelError
from app.codec.int8_copy import make_int8
from app.codec.quantize import QUALITY_FILE, int8_models, read_quality
from conftest import chirp_noise, model_dir

FRAMES = 30  # quality measured on 2.4 s: enough for the tiny models


def ops(path: Path) -> collections.Counter:
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-8cb-fp16"])
def test_int8_copy_streams_and_reports_its_quality(variant: str, tmp_path: Path, rng: np.random.Generator) -> None:
    folder, quality = make_int8(model_dir(variant), cache_dir=tmp_path, frames=FRAMES)
    assert folder.parent == tmp_path and {p.name for p in folder.iterdir()} == {
        "encoder_model.onnx", "decoder_model.onnx", "state_spec.txt", QUALITY_FILE, MADE_FROM_FILE}
    for name in ("encoder_model.onnx", "decoder_model.onnx"):
        counts = ops(folder / name)
        # (fp16 weights behind a Cast are quantized too: folded to float first)
        assert counts["DynamicQuantizeMatMul"] + counts["MatMulInteger"] > 0, name
    assert quality == read_quality(folder)
    assert quality.source == str(model_dir(variant).resolve()) and quality.parts == "encoder+decoder"
    assert quality.frames == FRAMES and quality.ms_per_frame > 0 and quality.original_ms_per_frame > 0
    # Measured on the tiny models: ~100 dB on the same codes, ~20 dB end to end, ~99% identical codes.
    assert quality.snr_same_codes_db > 40 and 5 < quality.snr_end_to_end_db < quality.snr_same_codes_db
    assert 0.9 < quality.codes_agreement < 1.0
    assert f"SNR {quality.snr_end_to_end_db:.1f} dB vs float" in quality.label()

    codec = StreamingCodec(folder)
    pcm = chirp_noise(rng, 4)
    codes = codec.encode(pcm)
    assert codes.shape == (8, 4) and np.isfinite(codec.decode(codes)).all()
    codec.set_codebooks(3)  # the zero-row edit works on the int8 decoder too
    assert np.isfinite(codec.decode(codes[:3])).all()


def test_decoder_only_keeps_the_codes(tmp_path: Path) -> None:
    folder, quality = make_int8(model_dir("tiny-8cb"), parts="decoder", cache_dir=tmp_path, frames=FRAMES)
    assert quality.parts == "decoder" and quality.codes_agreement == 1.0
    assert quality.snr_end_to_end_db == quality.snr_same_codes_db
    assert "int8 decoder" in quality.label()
    counts = ops(folder / "encoder_model.onnx")
    assert counts["MatMulInteger"] == counts["DynamicQuantizeMatMul"] == 0
    with pytest.raises(ValueError, match="parts"):
        make_int8(model_dir("tiny-8cb"), parts="encoder", cache_dir=tmp_path)


def test_made_once_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, quality = make_int8(model_dir("tiny-8cb"), cache_dir=tmp_path, frames=FRAMES)
    stamp = (first / "encoder_model.onnx").stat().st_mtime_ns
    monkeypatch.setattr(int8_copy, "measure_quality", lambda *a, **k: pytest.fail("measured again"))
    assert make_int8(model_dir("tiny-8cb"), cache_dir=tmp_path, frames=FRAMES) == (first, quality)
    assert (first / "encoder_model.onnx").stat().st_mtime_ns == stamp
    assert int8_models(tmp_path) == [(first, quality)]
    # A copy whose source is gone, or whose record is unreadable, is not offered.
    (first / QUALITY_FILE).write_text(json.dumps({**json.loads((first / QUALITY_FILE).read_text()), "source": "/nope"}))
    assert int8_models(tmp_path) == []
    (first / QUALITY_FILE).write_text("{broken")
    assert read_quality(first) is None and int8_models(tmp_path) == []


def test_a_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("measurement exploded")

    monkeypatch.setattr(int8_copy, "measure_quality", broken)
    with pytest.raises(ModelError, match="cannot make an int8 copy of .*tiny-8cb: measurement exploded"):
        make_int8(model_dir("tiny-8cb"), cache_dir=tmp_path, frames=FRAMES)
    assert list(tmp_path.iterdir()) == []
