"""Rewrite Mimi's big convolutions as one MatMul each (an exact graph edit).

SEANet's down- and up-sampling layers are 1-D ``Conv`` / ``ConvTranspose`` with
``kernel == 2 * stride``, and its widest layers are stride-1 convs (1024 <-> 512
channels, kernel 3 or 7). In a streaming step they see only a few output steps,
so their cost is reading the weights (the largest are 512x1024x16: 33 MB fp32).
ONNX Runtime's Conv goes through im2col and its ConvTranspose through col2im
with an unpacked weight; the same arithmetic as a ``MatMul`` on a constant
weight gets the prepacked GEMM (and can be quantized to int8 like the
transformer's matmuls):

- Conv, ``kernel == 2 * stride``: the input splits into blocks of ``stride``
  samples; output step t reads blocks t and t+1, so ``[block t | block t+1]``
  rows times ``W.T`` is the conv.
- Conv, stride 1: column j of output step t is input sample t + j: ``kernel``
  shifted slices side by side, times ``W.T``.
- ConvTranspose, ``kernel == 2 * stride``: each input step times ``W`` gives
  ``2 * stride`` samples; the first half lands in output block t, the second in
  block t+1 (overlap-add).

Only layers with at least ``min_weights`` weights, group 1, no padding,
dilation 1 and constant weights are rewritten; everything else stays as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..config import FRAME_SIZE
from .derived import derived_dir, file_problem, record_and_prune, save_atomically

__all__ = ["MIN_WEIGHTS", "fold_fp16_weights", "rewrite_strided_convs", "optimized_model_path"]

log = logging.getLogger(__name__)

MIN_WEIGHTS = 1 << 20  # ~4 MB fp32: smaller layers are cheap enough as they are


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fp16_weight_casts(graph: onnx.GraphProto, weights: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """The Casts of fp16 initializers to float: how the fp16 variants store their weights."""
    return [
        node for node in graph.node
        if node.op_type == "Cast" and node.input[0] in weights and weights[node.input[0]].dtype == np.float16
        and helper.get_attribute_value(node.attribute[0]) == onnx.TensorProto.FLOAT
    ]


def _constant_weights(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Tensor name -> value for initializers, and for Casts of fp16 initializers to float;
    the values keep their stored dtype."""
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in _fp16_weight_casts(graph, weights):
        weights[node.output[0]] = weights[node.input[0]]
    return weights


def fold_fp16_weights(model: onnx.ModelProto) -> None:
    """Stores fp16 weights that are cast to float as float initializers instead (in place), so
    tools that look for constant weights (ONNX Runtime's quantizer) see them."""
    graph = model.graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in _fp16_weight_casts(graph, weights):
        graph.initializer.append(numpy_helper.from_array(weights[node.input[0]].astype(np.float32), node.output[0]))
        graph.node.remove(node)
    _drop_unread(graph)


def _rewritable(node: onnx.NodeProto, weights: dict[str, np.ndarray], min_weights: int) -> bool:
    if node.op_type not in ("Conv", "ConvTranspose") or node.domain not in ("", "ai.onnx"):
        return False
    if len(node.input) < 2 or node.input[1] not in weights:
        return False
    w = weights[node.input[1]]
    attrs = _attributes(node)
    kernel = attrs.get("kernel_shape", list(w.shape[2:]))
    strides = attrs.get("strides", [1])
    # kernel == 2 * stride (the resampling layers), or a plain stride-1 conv (Conv only)
    shape_ok = len(strides) == 1 and w.ndim == 3 and (
        w.shape[2] == 2 * strides[0] > 2 or (node.op_type == "Conv" and strides[0] == 1 and w.shape[2] > 1))
    return (
        shape_ok and w.dtype in (np.float32, np.float16) and w.size >= min_weights
        and list(kernel) == [w.shape[2]]
        and attrs.get("group", 1) == 1
        and all(d == 1 for d in attrs.get("dilations", [1]))
        and all(p == 0 for p in attrs.get("pads", [0, 0]))
        and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        and not any(attrs.get("output_padding", [])) and "output_shape" not in attrs
    )


class _Builder:
    """Adds nodes and constants with names unique to one rewritten layer."""

    def __init__(self, graph: onnx.GraphProto, prefix: str) -> None:
        self.graph, self.prefix, self.count = graph, prefix, 0
        self.nodes: list[onnx.NodeProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        full = f"{self.prefix}/{name}"
        self.graph.initializer.append(numpy_helper.from_array(value, full))
        return full

    def weight(self, value: np.ndarray) -> str:
        """A weight kept in its stored dtype; fp16 is cast to float in the graph, as the source did."""
        name = self.const("weight", np.ascontiguousarray(value))
        return self.op("Cast", [name], to=onnx.TensorProto.FLOAT) if value.dtype == np.float16 else name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        self.count += 1
        out = output or f"{self.prefix}/{op_type}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{self.prefix}/{op_type}_{self.count}",
                                           **attrs))
        return out


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _matmul_conv_tail(b: _Builder, pairs: str, w: np.ndarray, bias: str | None, y: str) -> None:
    """[N, C_in, steps, kernel] input columns -> the conv's [N, C_out, steps] output."""
    out_ch, in_ch, kernel = w.shape
    rows = b.op("Transpose", [pairs], perm=[0, 2, 1, 3])
    rows = b.op("Reshape", [rows, b.const("rows_shape", _i64(0, 0, in_ch * kernel))])
    product = b.op("MatMul", [rows, b.weight(w.reshape(out_ch, -1).T)])
    if bias:
        product = b.op("Add", [product, bias])
    b.op("Transpose", [product], output=y, perm=[0, 2, 1])


def _stride1_conv_nodes(b: _Builder, x: str, w: np.ndarray, bias: str | None, y: str) -> None:
    """Stride 1: column j of output step t is input sample t + j, a slice with a fixed end offset."""
    kernel = w.shape[2]
    samples = b.op("Unsqueeze", [x, b.const("last_axis", _i64(3))])  # [N, C_in, L, 1]
    axis = b.const("time_axis", _i64(2))
    columns = [
        b.op("Slice", [samples, b.const(f"from{j}", _i64(j)),
                       b.const(f"to{j}", _i64(j - kernel + 1 if j < kernel - 1 else np.iinfo(np.int64).max)), axis])
        for j in range(kernel)
    ]
    _matmul_conv_tail(b, b.op("Concat", columns, axis=3), w, bias, y)


def _conv_nodes(b: _Builder, x: str, w: np.ndarray, bias: str | None, y: str) -> None:
    out_ch, in_ch, kernel = w.shape
    stride = kernel // 2
    if kernel != 2 * stride:
        _stride1_conv_nodes(b, x, w, bias, y)
        return
    # Whole blocks only: L // stride blocks give L // stride - 1 output steps, as the conv does.
    length = b.op("Gather", [b.op("Shape", [x]), b.const("axis2", _i64(2))])
    used = b.op("Mul", [b.op("Div", [length, b.const("stride", _i64(stride))]), b.const("stride_again", _i64(stride))])
    cut = b.op("Slice", [x, b.const("zero", _i64(0)), used, b.const("axis", _i64(2))])
    blocks = b.op("Reshape", [cut, b.const("blocks_shape", _i64(0, in_ch, -1, stride))])
    axis = b.const("block_axis", _i64(2))
    first = b.op("Slice", [blocks, b.const("from0", _i64(0)), b.const("to_last", _i64(-1)), axis])
    second = b.op("Slice", [blocks, b.const("from1", _i64(1)), b.const("to_end", _i64(np.iinfo(np.int64).max)), axis])
    _matmul_conv_tail(b, b.op("Concat", [first, second], axis=3), w, bias, y)  # [N, C_in, steps, kernel]


def _conv_transpose_nodes(b: _Builder, x: str, w: np.ndarray, bias: str | None, y: str) -> None:
    in_ch, out_ch, kernel = w.shape
    stride = kernel // 2
    steps = b.op("Transpose", [x], perm=[0, 2, 1])  # [N, L, C_in]
    product = b.op("MatMul", [steps, b.weight(w.reshape(in_ch, -1))])
    halves = b.op("Reshape", [product, b.const("halves_shape", _i64(0, 0, out_ch, 2, stride))])
    axis = b.const("half_axis", _i64(3))
    here = b.op("Squeeze", [b.op("Slice", [halves, b.const("h0", _i64(0)), b.const("h1", _i64(1)), axis]), axis])
    later = b.op("Squeeze", [b.op("Slice", [halves, b.const("h1b", _i64(1)), b.const("h2", _i64(2)), axis]), axis])
    # Block t gets the first half of step t and the second half of step t - 1: L + 1 blocks.
    here = b.op("Pad", [here, b.const("pad_end", _i64(0, 0, 0, 0, 0, 1, 0, 0))])
    later = b.op("Pad", [later, b.const("pad_start", _i64(0, 1, 0, 0, 0, 0, 0, 0))])
    blocks = b.op("Transpose", [b.op("Add", [here, later])], perm=[0, 2, 1, 3])  # [N, C_out, L + 1, stride]
    if bias:
        out = b.op("Reshape", [blocks, b.const("out_shape", _i64(0, out_ch, -1))])
        b.op("Add", [out, b.op("Unsqueeze", [bias, b.const("bias_axis", _i64(1))])], output=y)
    else:
        b.op("Reshape", [blocks, b.const("out_shape", _i64(0, out_ch, -1))], output=y)


def rewrite_strided_convs(model: onnx.ModelProto, min_weights: int | None = None) -> int:
    """Rewrites every eligible layer of `model` in place; returns how many were rewritten.

    Needs ONNX opset 13 or newer (Squeeze/Unsqueeze with axes inputs); older graphs are left alone.
    """
    min_weights = MIN_WEIGHTS if min_weights is None else min_weights
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        return 0
    graph = model.graph
    weights = _constant_weights(graph)
    rewritten = 0
    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        if not _rewritable(node, weights, min_weights):
            nodes.append(node)
            continue
        b = _Builder(graph, f"{node.name or node.op_type}_as_matmul_{index}")
        w = weights[node.input[1]]
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        build = _conv_nodes if node.op_type == "Conv" else _conv_transpose_nodes
        build(b, node.input[0], w, bias, node.output[0])
        nodes.extend(b.nodes)
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        _drop_unread(graph)
    return rewritten


def _names_read(nodes) -> set[str]:
    """Every tensor name the nodes read, including from inside their subgraphs (If, Loop, Scan)."""
    read = set()
    for node in nodes:
        read.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                read |= _names_read(sub.node) | {o.name for o in sub.output}
    return read


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Remove the replaced layers' weights (and the Casts that only fed them)."""
    outputs = {o.name for o in graph.output}
    while True:
        read = _names_read(graph.node) | outputs
        dead = [n for n in graph.node if n.op_type == "Cast" and not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


# -- the cached, checked copy the codec loads -----------------------------------------------------

_REWRITE_VERSION = 2
_PROBE_TOLERANCE = 1e-4


def _probe_feeds(session, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Two frames of input with zero conv states and empty caches, from the session's own input list."""
    feeds = {}
    for index, meta in enumerate(session.get_inputs()):
        shape = [1 if axis == 0 else (d if isinstance(d, int) else 0) for axis, d in enumerate(meta.shape)]
        if index == 0 and meta.type == "tensor(int64)":  # codes [1, K, frames]
            feeds[meta.name] = rng.integers(0, 2, size=(1, shape[1], 2), dtype=np.int64)
        elif index == 0:  # audio [1, 1, samples]
            feeds[meta.name] = (0.1 * rng.standard_normal((1, 1, 2 * FRAME_SIZE))).astype(np.float32)
        else:
            feeds[meta.name] = np.zeros(shape, np.float32)
    return feeds


def _same_outputs(original: Path, rewritten: Path) -> str | None:
    """None if both graphs agree on a probe input, else what differed."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (original, rewritten)]
    feeds = _probe_feeds(sessions[0], np.random.default_rng(0))
    names = [o.name for o in sessions[0].get_outputs()]
    for name, a, b in zip(names, *(s.run(names, feeds) for s in sessions), strict=False):
        if a.shape != b.shape:
            return f"{name} shape {list(b.shape)} instead of {list(a.shape)}"
        if np.issubdtype(a.dtype, np.integer):
            if not np.array_equal(a, b):
                return f"{name} differs"
        elif np.abs(a - b).max(initial=0.0) > _PROBE_TOLERANCE * max(float(np.abs(a).max(initial=0.0)), 1e-6):
            return f"{name} differs by {float(np.abs(a - b).max()):.3g}"
    return None


def _checked_copy(target: Path, source: Path) -> bool:
    """Whether the rewritten copy `target` exists and is as made; a damaged one is removed (and
    made again by the caller, as on first use) with a log line."""
    if not target.is_file():
        return False
    problem = file_problem(target)
    if problem is None:
        return True
    log.warning("rewritten graph %s is damaged (%s): making it again from %s", target, problem, source)
    target.unlink(missing_ok=True)  # an OSError here: the caller runs the original graph
    return False


def optimized_model_path(path: Path, cache_dir: Path | None = None, min_weights: int | None = None) -> Path:
    """The rewritten copy of the ONNX file `path` (made and checked once), or `path` if nothing applies.

    The copy lives under ``<data dir>/optimized/<key>/`` with its checksum; a copy that no longer
    matches it is made again. When nothing could be rewritten, or the rewritten graph did not
    reproduce the original's outputs on a probe input, a note saying so is kept there instead, so
    later loads go straight to the original (the note needs no checksum: whatever it holds, it only
    ever sends a load to the original graph). `path` may itself be a derived file (an int8 copy):
    the caller checks that copy first (quantize.repair_int8_copy), as the key trusts its size and mtime.
    """
    min_weights = MIN_WEIGHTS if min_weights is None else min_weights
    path = Path(path).resolve()
    folder = derived_dir("optimized", [path], f"{_REWRITE_VERSION}.{min_weights}", cache_dir)
    target, note = folder / path.name, folder / f"{path.name}.unchanged"
    try:
        if _checked_copy(target, path):
            return target
    except OSError as exc:
        log.warning("graph rewrite not used for %s: cannot remove the damaged %s (%s); delete the folder %s",
                    path, target, exc, folder)
        return path
    if note.is_file():
        return path
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - the normal load reports an unreadable file
        log.info("graph rewrite skipped for %s: %s", path, exc)
        return path
    rewritten = rewrite_strided_convs(model, min_weights)
    try:
        problem = "no layer to rewrite" if rewritten == 0 else None
        if problem is None:
            save_atomically(model, target)
            problem = _same_outputs(path, target)
            if problem is not None:
                target.unlink()
        if problem is not None:
            log.log(logging.INFO if rewritten == 0 else logging.WARNING, "graph rewrite not used for %s: %s",
                    path, problem)
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(problem + "\n", encoding="utf-8")
        # A copy whose checksum cannot be recorded would count as damaged next time: made again.
        record_and_prune(folder, [path], tag=f"min_weights={min_weights}", files=[] if problem else [target.name])
        if problem is not None:
            return path
    except OSError as exc:  # a full or read-only data dir: run the original graph
        log.warning("graph rewrite not used for %s: cannot write %s (%s)", path, folder, exc)
        return path
    return target
