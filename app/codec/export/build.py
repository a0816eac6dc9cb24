"""Builds encoder/decoder ONNX pairs in the published streaming contract (needs the `export` extra).

The pair is written to a temporary folder beside the target and moved into place only after the
ONNX outputs have been checked against our own torch streaming step and, for the decoder, against
transformers' batch `MimiModel.decode`; a failed export leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from transformers import MimiConfig, MimiModel

from app.codec.export.fp16 import convert_weights_to_fp16
from app.codec.export.streaming_torch import StreamingDecoder, StreamingEncoder, initial_state
from app.codec.spec import ConvStateSpec, StateSpec, format_state_spec
from app.codec.standin import EXPORT_MARK_FILE, write_export_mark
from app.config import DECODER_FILE, ENCODER_FILE, FRAME_SIZE, SPEC_FILE
from app.errors import AppError

# Kilobyte-size Mimi: same layer structure and state names, few channels, short codebooks.
TINY_CONFIG = dict(
    hidden_size=32,
    num_filters=4,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=16,
    num_hidden_layers=2,
    intermediate_size=64,
    codebook_size=64,
    codebook_dim=16,
    vector_quantization_hidden_dimension=16,
    num_quantizers=16,
    upsample_groups=32,
)
CODEBOOK_INIT_STD = 0.05  # random-init tables are all zeros: every code would be 0
CHECK_CHUNK_FRAMES = (4, 1, 2)  # chunk sizes the check streams through, in frames
OPSET = 17


class ExportError(AppError, RuntimeError):
    """The export could not be made or did not match its reference."""


def build_model(weights: Path | None, seed: int, tiny: bool) -> MimiModel:
    """A MimiModel from a local kyutai/mimi snapshot, or with seeded random weights."""
    if weights is not None:
        if not Path(weights).is_dir():
            raise ExportError(f"{weights}: not a folder (expected a local kyutai/mimi snapshot)")
        model = MimiModel.from_pretrained(str(weights))
    else:
        torch.manual_seed(seed)
        model = MimiModel(MimiConfig(**TINY_CONFIG) if tiny else MimiConfig())
        generator = torch.Generator().manual_seed(seed)
        quantizer = model.quantizer
        for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
            for layer in rvq.layers:
                book = layer.codebook
                book.embed_sum.copy_(torch.randn(book.embed_sum.shape, generator=generator) * CODEBOOK_INIT_STD)
                book.cluster_usage.fill_(1.0)
                book._embed = None
    return model.eval().requires_grad_(False)


def state_spec(encoder: StreamingEncoder, decoder: StreamingDecoder, codebooks: int) -> StateSpec:
    def side(slots):
        return tuple(ConvStateSpec(s.kind, s.name, s.channels, s.temporal) for s in slots)

    return StateSpec(num_codebooks=codebooks, encoder=side(encoder.slots), decoder=side(decoder.slots))


def _io_names(wrapper, first_in: str, first_out: str) -> tuple[list[str], list[str]]:
    kv = [f"{kind}_{i}" for i in range(wrapper.num_layers) for kind in ("key", "value")]
    inputs = [first_in] + [f"past_conv_{s.name}_state" for s in wrapper.slots] + [f"past_{n}" for n in kv]
    outputs = [first_out] + [f"present_conv_{s.name}_state" for s in wrapper.slots] + [f"present_{n}" for n in kv]
    return inputs, outputs


def _export(wrapper, first_input: torch.Tensor, first_in: str, first_out: str, path: Path) -> None:
    inputs, outputs = _io_names(wrapper, first_in, first_out)
    dynamic = {first_in: {0: "batch_size", 2: "sequence_length" if first_in == "input_values" else "codes_length"},
               first_out: {0: "batch_size", 2: "sequence_length" if first_out == "audio_values" else "codes_length"}}
    for name in inputs + outputs:
        if name.startswith(("past_key", "past_value")):
            dynamic[name] = {0: "batch_size", 2: "past_sequence_length"}
        elif name.startswith(("present_key", "present_value")):
            dynamic[name] = {0: "batch_size", 2: "present_sequence_length"}
    # A non-empty example cache keeps the past length symbolic in the traced graph.
    state = initial_state(wrapper, past_len=3)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (first_input, *state), str(path), dynamo=False, opset_version=OPSET,
            input_names=inputs, output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True,
        )


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.abs(expected).max()), 1e-12)
    return float(np.abs(actual - expected).max()) / scale


def check_pair(folder: Path, encoder: StreamingEncoder, decoder: StreamingDecoder, model: MimiModel, seed: int) -> dict:
    """Streams noise through ONNX and torch side by side; raises ExportError on any mismatch."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = {name: ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
                for name in (ENCODER_FILE, DECODER_FILE)}
    rng = np.random.default_rng(seed)
    total = sum(CHECK_CHUNK_FRAMES) * FRAME_SIZE
    audio = (0.3 * rng.standard_normal(total)).astype(np.float32)
    torch_state = {"enc": initial_state(encoder), "dec": initial_state(decoder)}
    onnx_state = {key: [t.numpy() for t in value] for key, value in torch_state.items()}
    codes_all, audio_onnx = [], []
    worst_audio, start = 0.0, 0
    with torch.no_grad():
        for frames in CHECK_CHUNK_FRAMES:
            chunk = audio[start : start + frames * FRAME_SIZE][None, None]
            start += frames * FRAME_SIZE
            t_out = encoder(torch.from_numpy(chunk), *torch_state["enc"])
            torch_state["enc"] = list(t_out[1:])
            o_out = _run(sessions[ENCODER_FILE], [chunk] + onnx_state["enc"])
            onnx_state["enc"] = o_out[1:]
            torch_codes = t_out[0].numpy()
            if not np.array_equal(o_out[0], torch_codes):
                mismatched = float(np.mean(o_out[0] != torch_codes))
                raise ExportError(f"encoder: ONNX codes differ from the torch step ({mismatched:.1%} of codes)")
            codes_all.append(torch_codes)
            t_dec = decoder(torch.from_numpy(torch_codes), *torch_state["dec"])
            torch_state["dec"] = list(t_dec[1:])
            o_dec = _run(sessions[DECODER_FILE], [torch_codes] + onnx_state["dec"])
            onnx_state["dec"] = o_dec[1:]
            worst_audio = max(worst_audio, _relative_error(o_dec[0], t_dec[0].numpy()))
            audio_onnx.append(o_dec[0])
        # Transformers' own batch decode is causal too, so it must equal our chunked stream.
        codes = np.concatenate(codes_all, axis=2)
        reference = model.decode(torch.from_numpy(codes)).audio_values.numpy()
    streamed = np.concatenate(audio_onnx, axis=2)
    vs_transformers = _relative_error(streamed, reference[..., : streamed.shape[2]])
    if worst_audio > 1e-4 or vs_transformers > 1e-3:
        raise ExportError(f"decoder: ONNX audio differs (vs torch step {worst_audio:.2e}, "
                          f"vs transformers {vs_transformers:.2e})")
    return {"check_frames": int(codes.shape[2]), "decoder_rel_err_vs_torch": worst_audio,
            "decoder_rel_err_vs_transformers": vs_transformers}


def _run(session: ort.InferenceSession, values: list[np.ndarray]) -> list[np.ndarray]:
    feeds = {meta.name: value for meta, value in zip(session.get_inputs(), values, strict=False)}
    return session.run(None, feeds)


def export_pair(out_dir: Path, codebooks: int = 8, weights: Path | None = None, seed: int = 0,
                tiny: bool = False, fp16_weights: bool = False, check: bool = True) -> dict:
    """Exports encoder_model.onnx, decoder_model.onnx and state_spec.txt into `out_dir`."""
    started = time.perf_counter()
    model = build_model(weights, seed, tiny)
    available = model.config.num_quantizers
    if not 1 <= codebooks <= available:
        raise ExportError(f"--codebooks {codebooks}: this Mimi has {available} codebooks (choose 1..{available})")
    encoder, decoder = StreamingEncoder(model, codebooks).eval(), StreamingDecoder(model, codebooks).eval()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _export(encoder, torch.zeros(1, 1, 4 * FRAME_SIZE), "input_values", "audio_codes", work / ENCODER_FILE)
        codes = torch.zeros(1, codebooks, 4, dtype=torch.int64)
        _export(decoder, codes, "audio_codes", "audio_values", work / DECODER_FILE)
        (work / SPEC_FILE).write_text(format_state_spec(state_spec(encoder, decoder, codebooks)))
        summary = {"folder": str(out_dir), "codebooks": codebooks, "tiny": tiny, "seed": seed,
                   "weights": str(weights) if weights else "random", "fp16_weights": fp16_weights}
        if check:  # the fp32 graphs are the ones that must equal the torch step exactly
            summary.update(check_pair(work, encoder, decoder, model, seed))
        if fp16_weights:
            # The encoder's nearest-centroid search stays fp32 so both variants pick the same codes;
            # the decoder's tables go fp16 behind a Cast, like the published -fp16 decoders.
            convert_weights_to_fp16(work / ENCODER_FILE, work / ENCODER_FILE,
                                    keep_fp32=lambda n: n.startswith("codebook"))
            convert_weights_to_fp16(work / DECODER_FILE, work / DECODER_FILE)
        write_export_mark(work, str(weights) if weights else "random", seed, tiny)
        out_dir.mkdir(exist_ok=True)
        for name in (ENCODER_FILE, DECODER_FILE, SPEC_FILE, EXPORT_MARK_FILE):
            shutil.move(str(work / name), str(out_dir / name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["encoder_bytes"] = (out_dir / ENCODER_FILE).stat().st_size
    summary["decoder_bytes"] = (out_dir / DECODER_FILE).stat().st_size
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary
