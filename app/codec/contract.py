"""Check a Mimi model folder against the streaming ONNX contract.

``load_contract`` compares the real inputs and outputs of the two
onnxruntime sessions with state_spec.txt: names, order, dtypes, ranks and
every static dimension it can check. Transformer KV sizes are read from the
graphs, never assumed. Anything off raises ModelContractError naming the file, the
tensor and what was expected.

Runs on whichever thread loads the codec. ``inspect_decoder`` parses the whole
decoder protobuf (holding the GIL for tens of ms at full size), so a loader that
shares the process with real-time threads runs it in ``prepare``'s child process
and hands ``load_contract`` the stored answer instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import onnx
import onnxruntime as ort

from app.config import DECODER_FILE, ENCODER_FILE, SPEC_FILE
from app.errors import one_line

from .codebooks import CodebookEditUnsupported, find_codebook_tables
from .errors import ModelContractError
from .spec import ConvStateSpec, StateSpec, parse_state_spec

__all__ = [
    "ModelContract",
    "DecoderInspection",
    "inspect_decoder",
    "model_files",
    "load_contract",
]


_FLOAT = "tensor(float)"
_INT64 = "tensor(int64)"
_KV_RE = re.compile(r"past_(key|value)_(\d+)\Z")


@dataclass(frozen=True)
class ModelContract:
    """What a validated model folder offers, read from its files."""

    folder: Path
    encoder_path: Path
    decoder_path: Path
    spec: StateSpec
    num_codebooks: int  # K
    codebook_size: int | None  # rows of the decoder's tables, None if not found
    kv_layers: int
    kv_heads: int
    kv_head_dim: int
    weights: str  # "fp32" or "fp16": how most of the decoder's weights are stored
    encoder_inputs: tuple[str, ...]
    encoder_outputs: tuple[str, ...]
    decoder_inputs: tuple[str, ...]
    decoder_outputs: tuple[str, ...]
    zero_row_problem: str | None = None  # why the zero-row edit cannot be done, if so


def model_files(folder: Path) -> tuple[Path, Path, Path]:
    """Return (encoder, decoder, state spec) paths, or raise ModelContractError if any is missing."""
    folder = Path(folder)
    names = (ENCODER_FILE, DECODER_FILE, SPEC_FILE)
    if not folder.is_dir():
        raise ModelContractError(f"{folder}: model folder not found (expected a folder holding {', '.join(names)})")
    for name in names:
        if not (folder / name).is_file():
            raise ModelContractError(f"{folder}: not a Mimi model folder: missing {name} (expected {', '.join(names)})")
    encoder, decoder, spec = (folder / name for name in names)
    return encoder, decoder, spec


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + "]"


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) else None


class _Checker:
    """Checks one session's tensor list against the expected layout."""

    def __init__(self, file: str, role: str, args: Sequence[Any]) -> None:
        self.file, self.role = file, role
        self.by_name = {a.name: a for a in args}
        self.names = tuple(a.name for a in args)

    def fail(self, message: str) -> ModelContractError:
        return ModelContractError(f"{self.file}: {message}")

    def check_names(self, expected: Sequence[str], why: dict[str, str]) -> None:
        missing = [n for n in expected if n not in self.by_name]
        if missing:
            raise self.fail(f"missing {self.role} '{missing[0]}' ({why.get(missing[0], 'required by the contract')})")
        extra = [n for n in self.names if n not in set(expected)]
        if extra:
            raise self.fail(f"unexpected {self.role} '{extra[0]}' (not in the contract or {SPEC_FILE})")
        for position, (got, want) in enumerate(zip(self.names, expected, strict=False)):
            if got != want:
                raise self.fail(
                    f"{self.role} #{position} is '{got}', expected '{want}' "
                    f"(order: {expected[0]}, conv states in {SPEC_FILE} order, then past/present KV)"
                )

    def check(self, name: str, dtype: str, dims: Sequence[int | None]) -> list[Any]:
        """Check dtype, rank and the static dims given (None = not checked)."""
        arg = self.by_name[name]
        if arg.type != dtype:
            raise self.fail(f"{self.role} '{name}' has type {arg.type}, expected {dtype}")
        shape = list(arg.shape or [])
        if len(shape) != len(dims):
            raise self.fail(
                f"{self.role} '{name}' has shape {_shape_text(shape)} (rank {len(shape)}), expected rank {len(dims)}"
            )
        for axis, (got, want) in enumerate(zip(shape, dims, strict=False)):
            if want is not None and _static(got) is not None and got != want:
                expected = [w if w is not None else "?" for w in dims]
                raise self.fail(
                    f"{self.role} '{name}' has shape {_shape_text(shape)}, expected "
                    f"{_shape_text(expected)} (dim {axis} should be {want})"
                )
        return shape


def _kv_layers(checker: _Checker) -> int:
    indices = {int(m.group(2)) for n in checker.names if (m := _KV_RE.match(n))}
    if not indices:
        raise checker.fail("no 'past_key_0' input: the transformer KV cache inputs are missing")
    return max(indices) + 1


def _kv_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def _check_kv(inputs: _Checker, outputs: _Checker, layers: int) -> tuple[int, int]:
    """Return (heads, head_dim) read from past_key_0; all KV tensors must agree."""
    first = inputs.check("past_key_0", _FLOAT, [None] * 4)
    heads, head_dim = _static(first[1]), _static(first[3])
    if heads is None or head_dim is None:
        raise inputs.fail(
            f"input 'past_key_0' has shape {_shape_text(first)}, expected static head count and head dim"
        )
    for checker, prefix in ((inputs, "past"), (outputs, "present")):
        for name in _kv_names(prefix, layers):
            shape = checker.check(name, _FLOAT, [None] * 4)
            for axis, want, what in ((1, heads, "head count"), (3, head_dim, "head dim")):
                if _static(shape[axis]) is not None and shape[axis] != want:
                    raise checker.fail(
                        f"{checker.role} '{name}' has shape {_shape_text(shape)}, "
                        f"expected {what} {want} like past_key_0"
                    )
    return heads, head_dim


class _ModelIO(NamedTuple):
    layers: int
    heads: int
    head_dim: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _check_model(
    file: str, session: ort.InferenceSession, first_in: str, first_out: str, convs: Sequence[ConvStateSpec],
    num_codebooks: int,
) -> _ModelIO:
    inputs = _Checker(file, "input", session.get_inputs())
    outputs = _Checker(file, "output", session.get_outputs())
    layers = _kv_layers(inputs)
    section = "[encoder]" if first_in == "input_values" else "[decoder]"
    why = {c.input_name: f"listed in {SPEC_FILE} {section}" for c in convs}
    why.update({c.output_name: f"the output that carries {c.input_name} to the next call" for c in convs})
    why.update({f"present{n[4:]}": f"the output that carries {n} to the next call" for n in _kv_names("past", layers)})
    inputs.check_names([first_in, *(c.input_name for c in convs), *_kv_names("past", layers)], why)
    outputs.check_names([first_out, *(c.output_name for c in convs), *_kv_names("present", layers)], why)

    if first_in == "input_values":
        inputs.check(first_in, _FLOAT, [None, 1, None])
        outputs.check(first_out, _INT64, [None, num_codebooks, None])
    else:
        inputs.check(first_in, _INT64, [None, num_codebooks, None])
        outputs.check(first_out, _FLOAT, [None, 1, None])
    for conv in convs:
        dims = [None, conv.channels, conv.temporal]
        shape = inputs.check(conv.input_name, _FLOAT, dims)
        # The initial state is built as zeros of the spec shape; the batch dim must allow 1.
        if _static(shape[0]) not in (None, 1):
            raise inputs.fail(f"input '{conv.input_name}' has shape {_shape_text(shape)}, expected batch 1")
        outputs.check(conv.output_name, _FLOAT, dims)
    heads, head_dim = _check_kv(inputs, outputs, layers)
    return _ModelIO(layers, heads, head_dim, inputs.names, outputs.names)


class DecoderInspection(NamedTuple):
    """What load_contract reads from the decoder graph itself (not from the session)."""

    codebook_size: int | None  # rows of the codebook tables, None if not found
    zero_row_problem: str | None  # why the zero-row edit cannot be done, if so
    weights: str  # "fp32" or "fp16"


def inspect_decoder(path: Path, num_codebooks: int) -> DecoderInspection:
    """Return (codebook_size, zero-row problem, weights) from the decoder graph (a full protobuf parse)."""
    try:
        # The weights are not needed here, only dims and types.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several kinds
        raise ModelContractError(f"{path.name}: cannot read ONNX model: {one_line(exc)}") from exc
    sizes = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.FLOAT16: 0}
    for tensor in model.graph.initializer:
        if tensor.data_type in sizes:
            count = 1
            for dim in tensor.dims:
                count *= dim
            sizes[tensor.data_type] += count
    weights = "fp16" if sizes[onnx.TensorProto.FLOAT16] > sizes[onnx.TensorProto.FLOAT] else "fp32"
    try:
        tables = find_codebook_tables(model, num_codebooks, path.name)
    except CodebookEditUnsupported as exc:
        return DecoderInspection(None, str(exc), weights)
    return DecoderInspection(tables[0].rows, None, weights)


_inspect_decoder = inspect_decoder  # the name it had before it was shared with prepare


def load_contract(
    folder: Path, encoder: ort.InferenceSession, decoder: ort.InferenceSession,
    inspect: Callable[[Path, int], DecoderInspection] = inspect_decoder,
) -> ModelContract:
    """Validate ``folder`` and its two loaded sessions; return what they offer.

    ``inspect(decoder_path, K)`` reads the decoder graph; a prepared model passes its stored
    answer (``PreparedModel.inspection``) so no protobuf is parsed here.
    """
    folder = Path(folder)
    encoder_path, decoder_path, spec_path = model_files(folder)
    spec = parse_state_spec(spec_path)
    k = spec.num_codebooks
    enc = _check_model(ENCODER_FILE, encoder, "input_values", "audio_codes", spec.encoder, k)
    dec = _check_model(DECODER_FILE, decoder, "audio_codes", "audio_values", spec.decoder, k)
    # Mimi's two transformers share one config; the contract fields hold one size.
    if enc[:3] != dec[:3]:
        raise ModelContractError(
            f"{DECODER_FILE}: KV cache is {dec.layers} layers x {dec.heads} heads x {dec.head_dim} dims but "
            f"{ENCODER_FILE} has {enc.layers} x {enc.heads} x {enc.head_dim}; expected the same transformer size"
        )
    codebook_size, problem, weights = inspect(decoder_path, k)
    return ModelContract(
        folder=folder,
        encoder_path=encoder_path,
        decoder_path=decoder_path,
        spec=spec,
        num_codebooks=k,
        codebook_size=codebook_size,
        kv_layers=enc.layers,
        kv_heads=enc.heads,
        kv_head_dim=enc.head_dim,
        weights=weights,
        encoder_inputs=enc.inputs,
        encoder_outputs=enc.outputs,
        decoder_inputs=dec.inputs,
        decoder_outputs=dec.outputs,
        zero_row_problem=problem,
    )
