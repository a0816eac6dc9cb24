"""The zero-row decoder edit: pattern finding, exactness, on-disk cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import app.codec.codebooks as codebooks
from app.codec.codebooks import CodebookEditUnsupported, decoder_with_zero_rows, find_codebook_tables
from app.codec.derived import MADE_FROM_FILE
from app.codec.errors import InputError, ModelError
from app.codec.streaming import StreamingCodec
from conftest import model_dir


def tables_of(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name.startswith("codebook_")}


@pytest.mark.parametrize(
    "variant, k, fp16",
    [("tiny-8cb", 8, False), ("tiny-16cb", 16, False), ("tiny-8cb-fp16", 8, True), ("tiny-16cb-fp16", 16, True)],
)
def test_finds_one_table_per_codebook(variant: str, k: int, fp16: bool) -> None:
    model = onnx.load(str(model_dir(variant) / "decoder_model.onnx"), load_external_data=False)
    tables = find_codebook_tables(model, k)
    assert len(tables) == k and len({t.tensor for t in tables}) == k
    assert {(t.rows, t.dim) for t in tables} == {(64, 16)}
    assert {t.elem_type for t in tables} == {TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT}
    assert all((t.cast is not None) == fp16 for t in tables)
    with pytest.raises(CodebookEditUnsupported, match=f"found {k} code-indexed tables, expected {k + 1}"):
        find_codebook_tables(model, k + 1)


@pytest.mark.parametrize("variant", ["tiny-8cb", "tiny-16cb-fp16"])
def test_edit_appends_a_zero_row_and_keeps_dtype(tmp_path: Path, variant: str) -> None:
    source = model_dir(variant) / "decoder_model.onnx"
    before = source.read_bytes()
    edited = decoder_with_zero_rows(source, cache_dir=tmp_path)
    assert source.read_bytes() == before  # the published file is never touched
    assert edited.parent.parent == tmp_path and edited.name == "decoder_model.onnx"
    old, new = tables_of(source), tables_of(edited)
    assert old.keys() == new.keys() and len(old) in (8, 16)
    for name, table in old.items():
        assert new[name].dtype == table.dtype
        assert new[name].shape == (table.shape[0] + 1, table.shape[1])
        np.testing.assert_array_equal(new[name][:-1], table)
        assert not new[name][-1].any()
        assert table.any()  # the fixture tables are filled, so the check above means something


def test_edited_decoder_is_cached_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = model_dir("tiny-8cb") / "decoder_model.onnx"
    first = decoder_with_zero_rows(source, cache_dir=tmp_path)
    stamp = first.stat().st_mtime_ns
    os.utime(first, ns=(stamp - 10**9, stamp - 10**9))  # so a rewrite could not hide in the same tick

    def no_save(*args, **kwargs):
        raise AssertionError("cached decoder was rewritten")

    monkeypatch.setattr(codebooks.onnx, "save_model", no_save)
    second = decoder_with_zero_rows(source, cache_dir=tmp_path)
    assert second == first and second.stat().st_mtime_ns == stamp - 10**9


def test_cache_key_follows_source_mtime(tmp_path: Path) -> None:
    source = tmp_path / "model" / "decoder_model.onnx"
    source.parent.mkdir()
    shutil.copy(model_dir("tiny-8cb") / "decoder_model.onnx", source)
    shutil.copy(model_dir("tiny-8cb") / "state_spec.txt", source.parent)
    first = decoder_with_zero_rows(source, cache_dir=tmp_path / "cache")
    stamp = source.stat().st_mtime_ns
    os.utime(source, ns=(stamp + 10**9, stamp + 10**9))
    second = decoder_with_zero_rows(source, cache_dir=tmp_path / "cache")
    assert second != first and second.is_file()
    assert not first.parent.exists()  # the edit of the old file is removed, not left to pile up


def test_default_cache_dir_uses_data_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMI_LIVE_DATA_DIR", str(tmp_path / "data"))
    edited = decoder_with_zero_rows(model_dir("tiny-8cb") / "decoder_model.onnx")
    assert edited.parent.parent == tmp_path / "data" / "decoders"


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = onnx.save_model

    def half_save(model, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(codebooks.onnx, "save_model", half_save)
    source = model_dir("tiny-8cb") / "decoder_model.onnx"
    with pytest.raises(OSError, match="disk full"):
        decoder_with_zero_rows(source, cache_dir=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    monkeypatch.setattr(codebooks.onnx, "save_model", real_save)
    edited = decoder_with_zero_rows(source, cache_dir=tmp_path)
    assert onnx.load(str(edited)).graph.input[0].name == "audio_codes"
    assert sorted(p.name for p in edited.parent.iterdir()) == ["decoder_model.onnx", MADE_FROM_FILE]


def _codes_graph(table_source: str) -> onnx.ModelProto:
    """audio_codes [1, 2, T] looked up in two tables; table_source picks a breaking variant."""
    tables = [numpy_helper.from_array(np.ones((4, 3), np.float32), f"table_{i}") for i in range(2)]
    nodes, inits = [], list(tables)
    for i in range(2):
        nodes.append(helper.make_node("Gather", ["audio_codes", f"idx_{i}"], [f"codes_{i}"], axis=1))
        inits.append(numpy_helper.from_array(np.array(i, np.int64), f"idx_{i}"))
        data = f"table_{i}"
        if table_source == "computed" and i == 1:
            nodes.append(helper.make_node("Mul", [data, data], ["squared"]))
            data = "squared"
        if table_source == "shared":
            data = "table_0"
        nodes.append(helper.make_node("Gather", [data, f"codes_{i}"], [f"emb_{i}"]))
    nodes.append(helper.make_node("Add", ["emb_0", "emb_1"], ["out"]))
    if table_source == "reused":
        nodes.append(helper.make_node("ReduceSum", ["table_1"], ["extra"]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]
    if table_source == "reused":
        outputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, "codes", [helper.make_tensor_value_info("audio_codes", TensorProto.INT64, [1, 2, "T"])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shared_table_is_fine() -> None:
    tables = find_codebook_tables(_codes_graph("shared"), 2)
    assert [t.tensor for t in tables] == ["table_0", "table_0"]


@pytest.mark.parametrize(
    "variant, reason",
    [("computed", "reads its table from Mul"), ("reused", "table 'table_1' is also read by ReduceSum")],
)
def test_unsupported_patterns_say_why(variant: str, reason: str) -> None:
    with pytest.raises(CodebookEditUnsupported) as info:
        find_codebook_tables(_codes_graph(variant), 2)
    assert isinstance(info.value, ModelError)
    assert str(info.value).startswith("decoder_model.onnx: cannot add zero codebook rows: ")
    assert reason in str(info.value)


def test_codec_without_the_pattern_offers_only_k(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-8cb"), folder)
    model = onnx.load(str(folder / "decoder_model.onnx"))
    # Route one table through an Identity: the graph still works, the edit no longer applies.
    gather = next(n for n in model.graph.node if n.op_type == "Gather" and n.input[0] == "codebook_3")
    gather.input[0] = "codebook_3_copy"
    model.graph.node.insert(0, helper.make_node("Identity", ["codebook_3"], ["codebook_3_copy"]))
    onnx.save_model(model, folder / "decoder_model.onnx")

    codec = StreamingCodec(folder)
    assert codec.codebook_choices == (8,)
    assert "reads its table from Identity" in (codec.codebook_note or "")
    assert codec.decode(np.zeros((8, 2), np.int64)).shape == (2 * 1920,)
    with pytest.raises(InputError, match="reads its table from Identity"):
        StreamingCodec(folder, codebooks=4)
    with pytest.raises(ModelError):
        decoder_with_zero_rows(folder / "decoder_model.onnx", cache_dir=tmp_path / "cache")


def test_gather_before_cast_order(tmp_path: Path, rng: np.random.Generator) -> None:
    """fp16 tables looked up first and cast afterwards are edited as well, with the same result."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny-16cb-fp16"), folder)
    model = onnx.load(str(folder / "decoder_model.onnx"))
    graph = model.graph
    casts = {n.output[0]: n for n in graph.node if n.op_type == "Cast" and n.input[0].startswith("codebook_")}
    gathers = [n for n in graph.node if n.op_type == "Gather" and n.input[0] in casts]
    assert len(gathers) == 16
    for gather in gathers:
        cast = casts[gather.input[0]]
        half_rows, out = f"{gather.output[0]}_fp16", gather.output[0]
        gather.input[0], gather.output[0] = cast.input[0], half_rows
        position = list(graph.node).index(gather)
        graph.node.insert(position + 1, helper.make_node("Cast", [half_rows], [out], to=TensorProto.FLOAT))
        graph.node.remove(cast)
    onnx.save_model(model, folder / "decoder_model.onnx")

    tables = find_codebook_tables(onnx.load(str(folder / "decoder_model.onnx")), 16)
    assert all(t.cast is None and t.elem_type == TensorProto.FLOAT16 for t in tables)
    codes = rng.integers(0, 64, size=(5, 6))
    expected = StreamingCodec(model_dir("tiny-16cb-fp16"), codebooks=5).decode(codes)
    got = StreamingCodec(folder, codebooks=5).decode(codes)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("variant", ["tiny-16cb", "tiny-16cb-fp16"])
def test_stacked_tables_are_edited_too(tmp_path: Path, rng: np.random.Generator, variant: str) -> None:
    """Exporters that stack the tables into one [groups, rows, dim] tensor and select one per codebook
    (torch's dynamo exporter does) get the same exact k-of-K decoding."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir(variant), folder)
    model = onnx.load(str(folder / "decoder_model.onnx"))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    names = [f"codebook_{i}" + ("_fp16" if variant.endswith("fp16") else "") for i in range(16)]
    stacked = np.stack([numpy_helper.to_array(inits[name]) for name in names])
    for name in names:
        graph.initializer.remove(inits[name])
    graph.initializer.append(numpy_helper.from_array(stacked, "stacked_tables"))
    selects = []
    for i, name in enumerate(names):
        graph.initializer.append(numpy_helper.from_array(np.array(i, np.int64), f"group_{i}"))
        selects.append(helper.make_node("Gather", ["stacked_tables", f"group_{i}"], [name], axis=0))
    for node in reversed(selects):
        graph.node.insert(0, node)
    onnx.save_model(model, folder / "decoder_model.onnx")

    tables = find_codebook_tables(onnx.load(str(folder / "decoder_model.onnx")), 16)
    assert {(t.tensor, t.row_axis, t.rows) for t in tables} == {("stacked_tables", 1, 64)}
    codes = rng.integers(0, 64, size=(5, 6))
    expected = StreamingCodec(model_dir(variant), codebooks=5).decode(codes)
    got = StreamingCodec(folder, codebooks=5).decode(codes)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
