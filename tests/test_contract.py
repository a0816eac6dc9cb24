"""Contract checks: real fixtures pass, graphs that break the contract fail clearly.

Most broken models are small hand-built graphs whose declared inputs and
outputs are exactly what a test wants onnxruntime to report; one test edits a
copy of a real fixture instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from app.codec.contract import load_contract, model_files
from app.codec.errors import ModelError
from app.codec.spec import ConvStateSpec, StateSpec, format_state_spec
from conftest import model_dir

F, I64 = TensorProto.FLOAT, TensorProto.INT64
SPEC = StateSpec(
    num_codebooks=4,
    encoder=(
        ConvStateSpec("conv", "enc_0", 1, 6),
        ConvStateSpec("conv", "enc_1", 8, 2),
        ConvStateSpec("conv", "ds", 16, 2),
    ),
    decoder=(ConvStateSpec("conv_tr", "us", 16, 2), ConvStateSpec("conv", "dec_0", 8, 3)),
)

Tensor = list  # [name, elem_type, shape], mutable so tests can break one field


def layout(spec: StateSpec = SPEC, layers: int = 3, heads: int = 4, head_dim: int = 8) -> dict[str, list[Tensor]]:
    """The contract's I/O lists for ``spec``, with a KV cache of the given size."""

    def kv(prefix: str) -> list[Tensor]:
        seq = f"{prefix}_seq"
        names = [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
        return [[name, F, ["batch", heads, seq, head_dim]] for name in names]

    def convs(entries: tuple[ConvStateSpec, ...], attr: str) -> list[Tensor]:
        return [[getattr(c, attr), F, [1, c.channels, c.temporal]] for c in entries]

    k = spec.num_codebooks
    return {
        "enc_in": [["input_values", F, ["batch", 1, "samples"]], *convs(spec.encoder, "input_name"), *kv("past")],
        "enc_out": [["audio_codes", I64, ["batch", k, "frames"]], *convs(spec.encoder, "output_name"), *kv("present")],
        "dec_in": [["audio_codes", I64, ["batch", k, "frames"]], *convs(spec.decoder, "input_name"), *kv("past")],
        "dec_out": [["audio_values", F, ["batch", 1, "samples"]], *convs(spec.decoder, "output_name"), *kv("present")],
    }


def fake_model(inputs: list[Tensor], outputs: list[Tensor]) -> onnx.ModelProto:
    """A loadable graph with exactly these declared inputs and outputs.

    Each output is a reshape of the first input to a shape onnx cannot infer,
    so onnxruntime reports the declared output shapes unchanged. Never run.
    """
    anchor = inputs[0][0]
    nodes = [
        helper.make_node("Shape", [anchor], ["anchor_shape"]),
        helper.make_node("ReduceMax", ["anchor_shape"], ["anchor_max"], keepdims=1),
    ]
    for name, elem_type, shape in outputs:
        nodes += [
            helper.make_node("Concat", ["anchor_max"] * len(shape), [f"{name}__shape"], axis=0),
            helper.make_node("Cast", [anchor], [f"{name}__cast"], to=elem_type),
            helper.make_node("Reshape", [f"{name}__cast", f"{name}__shape"], [name]),
        ]
    graph = helper.make_graph(
        nodes,
        "fake",
        [helper.make_tensor_value_info(*t) for t in inputs],
        [helper.make_tensor_value_info(*t) for t in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def build(folder: Path, io: dict[str, list[Tensor]], spec: StateSpec = SPEC) -> tuple[ort.InferenceSession, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "state_spec.txt").write_text(format_state_spec(spec), encoding="utf-8")
    sessions = []
    pairs = (("encoder_model.onnx", ("enc_in", "enc_out")), ("decoder_model.onnx", ("dec_in", "dec_out")))
    for file, (ins, outs) in pairs:
        model = fake_model(io[ins], io[outs])
        onnx.save_model(model, folder / file)
        sessions.append(ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"]))
    return tuple(sessions)


def find(tensors: list[Tensor], name: str) -> Tensor:
    return next(t for t in tensors if t[0] == name)


def test_fake_model_passes_and_kv_sizes_come_from_the_graph(tmp_path: Path) -> None:
    enc, dec = build(tmp_path, layout(layers=3, heads=4, head_dim=8))
    contract = load_contract(tmp_path, enc, dec)
    assert (contract.kv_layers, contract.kv_heads, contract.kv_head_dim) == (3, 4, 8)
    assert contract.num_codebooks == 4 and contract.spec == SPEC
    assert contract.encoder_inputs[:4] == (
        "input_values", "past_conv_enc_0_state", "past_conv_enc_1_state", "past_conv_ds_state"
    )
    assert contract.decoder_outputs[-2:] == ("present_key_2", "present_value_2")
    # No codebook tables in a fake graph: the edit is reported as unavailable, not fatal.
    assert contract.codebook_size is None and "code-indexed tables" in (contract.zero_row_problem or "")


@pytest.mark.parametrize(
    "variant, k, weights",
    [("tiny-8cb", 8, "fp32"), ("tiny-16cb", 16, "fp32"), ("tiny-8cb-fp16", 8, "fp16"), ("tiny-16cb-fp16", 16, "fp16")],
)
def test_fixture_contracts(variant: str, k: int, weights: str) -> None:
    folder = model_dir(variant)
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in model_files(folder)[:2]]
    contract = load_contract(folder, *sessions)
    assert contract.num_codebooks == k
    assert (contract.kv_layers, contract.kv_heads, contract.kv_head_dim) == (2, 2, 16)
    assert contract.codebook_size == 64 and contract.zero_row_problem is None
    assert contract.weights == weights
    assert len(contract.encoder_inputs) == 1 + 11 + 4 and len(contract.decoder_outputs) == 1 + 11 + 4


def _rename(io: dict, key: str, old: str, new: str) -> None:
    find(io[key], old)[0] = new


def _swap(io: dict, key: str, a: int, b: int) -> None:
    io[key][a], io[key][b] = io[key][b], io[key][a]


def _set(io: dict, key: str, name: str, field: int, value) -> None:
    find(io[key], name)[field] = value


BROKEN = {
    "wrong_name": (
        lambda io: _rename(io, "enc_in", "past_conv_enc_1_state", "past_conv_enc1_state"),
        "encoder_model.onnx: missing input 'past_conv_enc_1_state' (listed in state_spec.txt [encoder])",
    ),
    "extra_input": (
        lambda io: io["dec_in"].insert(1, ["past_conv_extra_state", F, [1, 2, 2]]),
        "decoder_model.onnx: unexpected input 'past_conv_extra_state'",
    ),
    "wrong_order_conv": (
        lambda io: _swap(io, "enc_in", 1, 2),
        "encoder_model.onnx: input #1 is 'past_conv_enc_1_state', expected 'past_conv_enc_0_state'",
    ),
    "wrong_order_kv": (
        lambda io: _swap(io, "dec_out", -1, -2),
        "decoder_model.onnx: output #7 is 'present_value_2', expected 'present_key_2'",
    ),
    "wrong_dtype_codes": (
        lambda io: _set(io, "dec_in", "audio_codes", 1, TensorProto.INT32),
        "decoder_model.onnx: input 'audio_codes' has type tensor(int32), expected tensor(int64)",
    ),
    "wrong_dtype_kv": (
        lambda io: _set(io, "enc_in", "past_value_1", 1, TensorProto.FLOAT16),
        "encoder_model.onnx: input 'past_value_1' has type tensor(float16), expected tensor(float)",
    ),
    "wrong_rank": (
        lambda io: _set(io, "enc_in", "input_values", 2, ["batch", "samples"]),
        "encoder_model.onnx: input 'input_values' has shape [?, ?] (rank 2), expected rank 3",
    ),
    "wrong_channels": (
        lambda io: _set(io, "dec_in", "past_conv_dec_0_state", 2, [1, 9, 3]),
        "decoder_model.onnx: input 'past_conv_dec_0_state' has shape [1, 9, 3], expected [?, 8, 3] (dim 1 should be 8)",
    ),
    "wrong_temporal_output": (
        lambda io: _set(io, "enc_out", "present_conv_ds_state", 2, [1, 16, 3]),
        "encoder_model.onnx: output 'present_conv_ds_state' has shape [1, 16, 3], expected [?, 16, 2]",
    ),
    "wrong_codebooks": (
        lambda io: _set(io, "enc_out", "audio_codes", 2, ["batch", 8, "frames"]),
        "encoder_model.onnx: output 'audio_codes' has shape [?, 8, ?], expected [?, 4, ?] (dim 1 should be 4)",
    ),
    "kv_head_mismatch": (
        lambda io: _set(io, "dec_in", "past_key_2", 2, [1, 2, "past_seq", 8]),
        "decoder_model.onnx: input 'past_key_2' has shape [1, 2, ?, 8], expected head count 4 like past_key_0",
    ),
    "kv_head_dim_mismatch_output": (
        lambda io: _set(io, "enc_out", "present_value_0", 2, ["batch", 4, "present_seq", 16]),
        "encoder_model.onnx: output 'present_value_0' has shape [?, 4, ?, 16], expected head dim 8 like past_key_0",
    ),
    "kv_heads_symbolic": (
        lambda io: _set(io, "enc_in", "past_key_0", 2, ["batch", "heads", "past_seq", 8]),
        "encoder_model.onnx: input 'past_key_0' has shape [?, ?, ?, 8], expected static head count and head dim",
    ),
    "missing_present_output": (
        lambda io: io["dec_out"].remove(find(io["dec_out"], "present_value_1")),
        "decoder_model.onnx: missing output 'present_value_1' (the output that carries past_value_1 to the next call)",
    ),
    "missing_present_conv": (
        lambda io: io["enc_out"].remove(find(io["enc_out"], "present_conv_enc_0_state")),
        "encoder_model.onnx: missing output 'present_conv_enc_0_state'",
    ),
    "missing_past_value": (
        lambda io: io["enc_in"].remove(find(io["enc_in"], "past_value_2")),
        "encoder_model.onnx: missing input 'past_value_2'",
    ),
    "no_kv_cache": (
        lambda io: io.update(enc_in=[t for t in io["enc_in"] if "_key_" not in t[0] and "_value_" not in t[0]]),
        "encoder_model.onnx: no 'past_key_0' input",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_graph_names_file_and_tensor(tmp_path: Path, case: str) -> None:
    io = layout()
    breaker, expected = BROKEN[case]
    breaker(io)
    sessions = build(tmp_path, io)
    with pytest.raises(ModelError) as info:
        load_contract(tmp_path, *sessions)
    assert expected in str(info.value)


def test_encoder_and_decoder_kv_sizes_must_agree(tmp_path: Path) -> None:
    io = layout(layers=3)
    io_dec = layout(layers=2)
    io["dec_in"], io["dec_out"] = io_dec["dec_in"], io_dec["dec_out"]
    with pytest.raises(ModelError, match="decoder_model.onnx: KV cache is 2 layers"):
        load_contract(tmp_path, *build(tmp_path, io))


def test_edited_fixture_with_renamed_input_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    model = onnx.load(str(folder / "decoder_model.onnx"))
    old, new = "past_conv_dec_3_b1_state", "past_conv_dec_3_state"
    for value in model.graph.input:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    onnx.save_model(model, folder / "decoder_model.onnx")
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in model_files(folder)[:2]]
    with pytest.raises(ModelError, match=r"decoder_model\.onnx: missing input 'past_conv_dec_3_b1_state'"):
        load_contract(folder, *sessions)


def test_model_files_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model folder not found"):
        model_files(tmp_path / "nowhere")
    (tmp_path / "encoder_model.onnx").write_bytes(b"")
    (tmp_path / "state_spec.txt").write_text("")
    with pytest.raises(ModelError) as info:
        model_files(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: not a Mimi model folder: missing decoder_model.onnx "
        "(expected encoder_model.onnx, decoder_model.onnx, state_spec.txt)"
    )
    (tmp_path / "decoder_model.onnx").write_bytes(b"")
    names = ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt")
    assert model_files(tmp_path) == tuple(tmp_path / n for n in names)
