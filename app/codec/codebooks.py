"""The zero-row decoder edit: run a K-codebook Mimi decoder with k < K codebooks.

The decoder looks each code up in a per-codebook table (``Gather`` on an
initializer of shape ``[codebook_size, dim]``, fp16 variants adding a ``Cast``
before or after it; some exporters stack the tables into one
``[groups, codebook_size, dim]`` initializer and select one per codebook) and
sums the rows. The first k codes of a K-codebook
encoding are exactly the k-codebook encoding, so giving every table one extra
all-zero row (index ``codebook_size``) and feeding that index to the dropped
codebooks decodes with k codebooks exactly.

The edited decoder is written once per source file under
``<data dir>/decoders/<key>/decoder_model.onnx`` with its checksum (see
``derived``) and reused while it still matches it; a damaged one is made again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from app.errors import one_line

from ..config import DATA_DIR_ENV, data_dir
from .derived import derived_dir, file_problem, record_and_prune, save_atomically
from .errors import DerivedFileError, ModelContractError

__all__ = [
    "CODES_INPUT",
    "DATA_DIR_ENV",
    "CodebookEditUnsupported",
    "CodebookTable",
    "data_dir",
    "find_codebook_tables",
    "add_zero_rows",
    "decoder_with_zero_rows",
]

log = logging.getLogger(__name__)

CODES_INPUT = "audio_codes"
# Bump when the edit changes, so stale cached decoders are not reused.
_EDIT_VERSION = 1
# Ops whose outputs depend on the shape of the codes, not on their values.
_SHAPE_OPS = {"Shape", "Size"}


class CodebookEditUnsupported(ModelContractError):
    """The decoder graph does not have the codebook-table pattern the edit needs."""


@dataclass(frozen=True)
class CodebookTable:
    """One codebook lookup found in the decoder graph."""

    gather: str  # output name of the Gather node that reads the codes
    tensor: str  # name of the initializer (or Constant output) holding the table
    rows: int  # codebook_size
    dim: int
    elem_type: int  # onnx.TensorProto data type of the stored table
    cast: str | None  # output of the Cast between table and Gather, if any
    row_axis: int = 0  # 1 when `tensor` stacks several tables as [groups, rows, dim]
    via: tuple[str, ...] = ()  # intermediate values between `tensor` and the lookup (select, casts)


def _constant_tensors(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    tensors = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    tensors[node.output[0]] = attr.t
    return tensors


def find_codebook_tables(
    model: onnx.ModelProto, num_codebooks: int, file_label: str = "decoder_model.onnx"
) -> tuple[CodebookTable, ...]:
    """Find the ``num_codebooks`` code-indexed tables, or raise CodebookEditUnsupported.

    Works on a model loaded with or without external data (only dims and
    types are read).
    """
    graph = model.graph
    constants = _constant_tensors(graph)
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def unsupported(reason: str) -> CodebookEditUnsupported:
        return CodebookEditUnsupported(f"{file_label}: cannot add zero codebook rows: {reason}")

    if CODES_INPUT not in {i.name for i in graph.input}:
        raise unsupported(f"no '{CODES_INPUT}' input")

    # Follow the values of the codes forward (nodes are topologically sorted)
    # until they become indices of a Gather on a constant table.
    derived = {CODES_INPUT}
    tables: list[CodebookTable] = []
    for node in graph.node:
        if node.op_type in _SHAPE_OPS or not any(name in derived for name in node.input):
            continue
        is_lookup = (
            node.op_type == "Gather" and len(node.input) == 2
            and node.input[1] in derived and node.input[0] not in derived
        )
        if not is_lookup:
            derived.update(node.output)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        table = _resolve_table(node, axis, constants, producers, unsupported)
        tables.append(table)

    if len(tables) != num_codebooks:
        raise unsupported(f"found {len(tables)} code-indexed tables, expected {num_codebooks} (one per codebook)")
    shapes = {(t.rows, t.dim) for t in tables}
    if len(shapes) != 1:
        raise unsupported(f"codebook tables differ in shape: {sorted(shapes)}")
    # A table also read by something else would change that reader too.
    allowed = {t.gather for t in tables} | {name for t in tables for name in t.via}
    for table in tables:
        for name in (table.tensor, *table.via):
            for reader in consumers.get(name, []):
                if reader.output[0] not in allowed:
                    raise unsupported(f"table '{table.tensor}' is also read by {reader.op_type} '{reader.output[0]}'")
    return tuple(tables)


def _resolve_table(node, axis, constants, producers, unsupported) -> CodebookTable:
    """Walks back from a code lookup to the stored table it reads (through Casts and a stack select)."""

    def through_cast(name: str, via: list[str]) -> str:
        if name not in constants and name in producers and producers[name].op_type == "Cast":
            via.append(name)
            return producers[name].input[0]
        return name

    via: list[str] = []
    data = through_cast(node.input[0], via)
    cast = via[0] if via else None
    row_axis = 0
    select = producers.get(data) if data not in constants else None
    if select is not None and select.op_type == "Gather":
        # A stacked [groups, rows, dim] table, one group picked by a constant scalar index.
        select_axis = next((a.i for a in select.attribute if a.name == "axis"), 0)
        index = constants.get(select.input[1])
        if select_axis == 0 and index is not None and len(index.dims) == 0:
            via.append(data)
            data = through_cast(select.input[0], via)
            row_axis = 1
    if data not in constants:
        source = producers[data].op_type if data in producers else "a graph input"
        raise unsupported(f"Gather '{node.output[0]}' reads its table from {source}, not a stored table")
    dims = list(constants[data].dims)
    if len(dims) != 2 + row_axis or axis != 0:
        expected = "[groups, codebook_size, dim]" if row_axis else "[codebook_size, dim]"
        raise unsupported(f"table '{data}' has shape {dims} (Gather axis {axis}), expected {expected} on axis 0")
    return CodebookTable(node.output[0], data, dims[row_axis], dims[row_axis + 1], constants[data].data_type,
                         cast, row_axis, tuple(via))


def _drop_stale_shapes(graph: onnx.GraphProto, tables: tuple[CodebookTable, ...]) -> None:
    # Declared shapes of the tables and of what is derived from them would contradict the edit;
    # onnxruntime infers them again.
    names = {t.tensor for t in tables} | {name for t in tables for name in t.via}
    for container in (graph.input, graph.value_info):
        for info in [i for i in container if i.name in names]:
            container.remove(info)


def add_zero_rows(model: onnx.ModelProto, tables: tuple[CodebookTable, ...]) -> None:
    """Append one all-zero row to each table, in place, keeping its dtype.

    The model must have been loaded with its external data.
    """
    graph = model.graph
    replacements: dict[str, onnx.TensorProto] = {}
    for name, row_axis in {(t.tensor, t.row_axis) for t in tables}:
        old = _constant_tensors(graph)[name]
        array = numpy_helper.to_array(old)
        zero_shape = list(array.shape)
        zero_shape[row_axis] = 1
        grown = np.concatenate([array, np.zeros(zero_shape, dtype=array.dtype)], axis=row_axis)
        replacements[name] = numpy_helper.from_array(grown, name=old.name)
    for tensor in graph.initializer:
        if tensor.name in replacements:
            tensor.CopyFrom(replacements[tensor.name])
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in replacements:
            for attr in node.attribute:
                if attr.name == "value":
                    new = replacements[node.output[0]]
                    new.name = attr.t.name
                    attr.t.CopyFrom(new)
    _drop_stale_shapes(graph, tables)


def _codebook_count(model: onnx.ModelProto, decoder_path: Path) -> int:
    for info in model.graph.input:
        if info.name == CODES_INPUT:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 3 and dims[1].HasField("dim_value"):
                return dims[1].dim_value
    # Fall back to the spec that ships with the decoder.
    from .spec import parse_state_spec

    return parse_state_spec(decoder_path.parent / "state_spec.txt").num_codebooks


def decoder_with_zero_rows(decoder_path: Path, cache_dir: Path | None = None) -> Path:
    """Return the path of ``decoder_path`` edited with zero rows, creating it once.

    ``cache_dir`` holds one ``<key>/decoder_model.onnx`` per source decoder
    (default ``data_dir() / "decoders"``); the key changes when the source
    file's path, size or mtime does. A cached copy that no longer matches the
    checksum recorded when it was made is made again (atomically, with a log
    line); DerivedFileError if that fails. Raises CodebookEditUnsupported if the
    graph lacks the pattern, ModelContractError if the file cannot be read.
    """
    decoder_path = Path(decoder_path).resolve()
    if not decoder_path.is_file():
        raise ModelContractError(f"{decoder_path}: decoder file not found")
    target = derived_dir("decoders", [decoder_path], _EDIT_VERSION, cache_dir) / "decoder_model.onnx"
    damage = file_problem(target) if target.is_file() else None
    if target.is_file() and damage is None:
        return target
    if damage is not None:
        log.warning("zero-row decoder %s is damaged (%s): making it again from %s", target, damage, decoder_path)

    try:
        model = onnx.load(str(decoder_path))
    except Exception as exc:  # protobuf and onnx raise many kinds
        raise ModelContractError(f"{decoder_path.name}: cannot read ONNX model: {one_line(exc)}") from exc
    tables = find_codebook_tables(model, _codebook_count(model, decoder_path), decoder_path.name)
    add_zero_rows(model, tables)

    try:
        save_atomically(model, target)  # replaces a damaged copy in one rename
    except OSError as exc:
        if damage is not None:
            raise DerivedFileError.damaged(target, damage, exc) from exc
        raise
    # Without its checksum the copy would count as damaged next time, and be made again.
    record_and_prune(target.parent, [decoder_path], files=[target.name])
    return target
