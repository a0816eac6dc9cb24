"""Weight-only fp16: store float32 weights as float16 behind a Cast, keep fp32 inputs, outputs and compute.

This is how the published `-fp16` variants are laid out: the file halves, and onnxruntime folds the
Casts back to fp32 at load, so results equal the fp32 graph up to the rounding of the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Tiny tensors (scalars, shape constants) gain nothing from fp16 and only add Cast nodes.
MIN_ELEMENTS = 16


def convert_weights_to_fp16(source: Path, target: Path, keep_fp32: Callable[[str], bool] = lambda name: False) -> int:
    """Writes `target` with float16 weights, except those `keep_fp32` names; returns how many were converted."""
    model = onnx.load(str(source))
    graph = model.graph
    kept, casts, converted = [], [], 0
    for init in graph.initializer:
        small = int(np.prod(init.dims)) < MIN_ELEMENTS
        if init.data_type != onnx.TensorProto.FLOAT or small or keep_fp32(init.name):
            kept.append(init)
            continue
        weights = numpy_helper.to_array(init)
        half_name = f"{init.name}_fp16"
        kept.append(numpy_helper.from_array(weights.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], name=f"{init.name}_to_fp32",
                                      to=onnx.TensorProto.FLOAT))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return converted
