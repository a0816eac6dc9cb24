"""A local int8 copy of a model pair, and how far its audio is from the original's.

ONNX Runtime's dynamic quantization turns every MatMul with a constant weight into an
int8 one (weights quantized per output channel once, activations per call). In Mimi
those are the transformers' projections and, after ``graphopt``'s rewrite, the big
strided convs: most of the bytes each frame has to read. Convs stay float (ORT's
ConvInteger is slower than its float conv here). ORT's blockwise ``MatMulNBits`` kept
a little more of the audio at the same speed (36.8 vs 32.6 dB on the same codes, on a
full-size stand-in) but its quantizer needs onnx_ir and sympy at run time; 4-bit
weights were faster (16.7 vs 18 ms per frame) but changed a third of the codes.

The copy is made once under ``<data dir>/int8/<key>/`` next to a ``quality.json`` with
the signal-to-noise ratio of its audio against the original's (on the same codes,
and end to end on the same input) and both speeds, measured on this machine. The app
offers an int8 model only together with those numbers.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx

from app.errors import one_line

from ..config import (
    DECODER_FILE,
    ENCODER_FILE,
    FRAME_RATE_HZ,
    FRAME_SIZE,
    INT8_PARTS,
    SAMPLE_RATE_HZ,
    SPEC_FILE,
    data_dir,
)
from .contract import model_files
from .derived import (
    MADE_FROM_FILE,
    derived_dir,
    file_problem,
    prune_siblings,
    read_record,
    save_atomically,
    sha256_of,
    write_record,
)
from .errors import DerivedFileError, ModelContractError
from .graphopt import fold_fp16_weights, optimized_model_path

__all__ = ["Int8Quality", "QUALITY_FILE", "make_copy", "read_quality", "int8_models", "int8_copy_is_intact",
           "repair_int8_copy", "copy_folder", "copy_problem"]

QUALITY_FILE = "quality.json"
_VERSION = 1
QUALITY_FRAMES = int(20 * FRAME_RATE_HZ)  # 20 s of test signal


@dataclass(frozen=True)
class Int8Quality:
    """How the int8 copy compares with the model it was made from (measured on this machine)."""

    source: str  # the original model folder
    parts: str  # what runs in int8: "encoder+decoder" or "decoder"
    snr_same_codes_db: float  # decoder alone: int8 vs original audio from identical codes
    snr_end_to_end_db: float  # encoder + decoder: int8 vs original audio from identical input
    codes_agreement: float  # share of codes the int8 encoder picks exactly as the original
    ms_per_frame: float  # int8 encode + decode, p50
    original_ms_per_frame: float  # the original (rewritten float graphs), p50, same run
    frames: int

    @property
    def speedup(self) -> float:
        return self.original_ms_per_frame / self.ms_per_frame

    @property
    def kind(self) -> str:
        """What the labels call it: "int8", or "int8 decoder" when the encoder stayed float."""
        return "int8" if self.parts == "encoder+decoder" else "int8 decoder"

    def label(self) -> str:
        return (f"{self.kind} · SNR {self.snr_end_to_end_db:.1f} dB vs float · "
                f"{self.ms_per_frame:.0f} vs {self.original_ms_per_frame:.0f} ms/frame")


class _QuietQuantizer(logging.Filter):
    """Drops onnxruntime.quantization's advice to pre-process (it logs it on the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    fold_fp16_weights(model)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        folded, quantized = Path(scratch) / "folded.onnx", Path(scratch) / "int8.onnx"
        onnx.save_model(model, str(folded))
        quiet = _QuietQuantizer()
        logging.getLogger().addFilter(quiet)
        try:
            quantize_dynamic(str(folded), str(quantized), op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
        finally:
            logging.getLogger().removeFilter(quiet)
        save_atomically(onnx.load(str(quantized)), target)


def read_quality(folder: Path) -> Int8Quality | None:
    """The quality record of an int8 folder, or None if it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / QUALITY_FILE).read_text(encoding="utf-8"))
        return Int8Quality(**data)
    except (OSError, ValueError, TypeError):
        return None


_KIND = "int8"  # the kind its record names: how a folder is known as an int8 copy
_COPY_FILES = (ENCODER_FILE, DECODER_FILE, SPEC_FILE, QUALITY_FILE)

log = logging.getLogger(__name__)


def copy_folder(folder: Path, parts: str, cache_dir: Path | None = None) -> Path:
    """Where the int8 copy of the model in `folder` with `parts` in int8 lives (made or not)."""
    encoder, decoder, _ = model_files(Path(folder))
    return derived_dir("int8", [encoder, decoder], f"{_VERSION}.{parts}", cache_dir)


def copy_problem(folder: Path, thorough: bool = True) -> tuple[Path, str] | None:
    """None if every file of the int8 copy in `folder` is as its record says (see derived), else
    the first file that is not and what is wrong with it."""
    for name in _COPY_FILES:
        problem = file_problem(folder / name, thorough)
        if problem is not None:
            return folder / name, problem
    return None


Measure = Callable[[Path, Path, str, int], Int8Quality]  # (original, copy, parts, frames): int8_copy.measure_quality


def make_copy(
    folder: Path, parts: str, target: Path, frames: int, say: Callable[[str], None],
    damaged: tuple[Path, str] | None, measure: Measure | None,
) -> tuple[Path, Int8Quality]:
    """Makes the copy of `folder` at `target` (replacing what is there). A damaged copy's quality
    record is kept when the files made again are byte for byte the ones it was measured on (ONNX
    Runtime's quantization is deterministic): no 30 s measurement for a repair. Without `measure`
    (a repair while a model loads) a copy whose numbers cannot be kept is not made again here."""
    encoder, decoder, spec = model_files(Path(folder))
    before = read_record(target) if damaged is not None else None
    # A copy from before the checksums (no files in its record) was made by this same code from the
    # same source (the key says so): its numbers still hold for the files made again.
    legacy = before is not None and not before.files
    quality_ok = before is not None and (legacy or file_problem(target / QUALITY_FILE) is None)
    old_quality = read_quality(target) if quality_ok else None
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        for name, source in (("encoder", encoder), ("decoder", decoder)):
            if name not in parts:
                shutil.copyfile(optimized_model_path(source), partial / source.name)
                continue
            say(f"quantizing the {name}…")
            started = time.perf_counter()
            _quantize(optimized_model_path(source), partial / source.name)
            say(f"quantized the {name} in {time.perf_counter() - started:.1f} s")
        shutil.copyfile(spec, partial / spec.name)
        same = legacy or before is not None and all(
            before.files.get(n, {}).get("sha256") == sha256_of(partial / n) for n in _COPY_FILES[:3])
        if old_quality is not None and same and old_quality.parts == parts:
            quality = old_quality
        elif measure is None:  # a load is no place for a 30 s measurement: the user makes it again
            raise ModelContractError(f"its quality record cannot be kept; make the copy again with "
                                     f"`mimi-live quantize --model {folder}`")
        else:
            say(f"measuring quality and speed on {frames * FRAME_SIZE / SAMPLE_RATE_HZ:.0f} s of test signal…")
            quality = measure(Path(folder), partial, parts, frames)
        (partial / QUALITY_FILE).write_text(json.dumps(asdict(quality), indent=1) + "\n", encoding="utf-8")
        # Recorded before the rename: a copy is complete with its checksums, or absent.
        write_record(partial, [encoder, decoder], tag=parts, files=_COPY_FILES, kind=_KIND)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        prune_siblings(target)
    except ModelContractError as exc:
        if damaged is not None and measure is None:
            raise DerivedFileError.damaged(*damaged, exc) from exc
        raise
    except Exception as exc:  # onnx, onnxruntime and the file system raise many kinds
        if damaged is not None:
            raise DerivedFileError.damaged(*damaged, exc) from exc
        raise ModelContractError(f"cannot make an int8 copy of {folder}: {one_line(exc)}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if damaged is not None:
        log.warning("int8 copy %s was damaged (%s: %s): made it again from %s", target, damaged[0].name, damaged[1],
                    folder)
    return target, quality


def _is_copy(folder: Path) -> bool:
    """Whether `folder` is an int8 copy the app made (cheap: no file is read for a model folder)."""
    if (folder / QUALITY_FILE).is_file():
        return True
    record = read_record(folder) if (folder / MADE_FROM_FILE).is_file() else None
    return record is not None and record.kind == _KIND


def int8_copy_is_intact(folder: Path) -> bool:
    """False if `folder` is an int8 copy that must be checked (hashed) or made again before use;
    a stat per file, no hashing (prepare's parent process asks this)."""
    folder = Path(folder)
    return not _is_copy(folder) or copy_problem(folder, thorough=False) is None


def repair_int8_copy(folder: Path) -> None:
    """If `folder` is an int8 copy whose files fail their checks, makes it again in place from the
    model it was made from, with a log line; DerivedFileError (naming the folder to delete) if that
    cannot be done. Anything else is left alone."""
    folder = Path(folder).resolve()
    if not _is_copy(folder):
        return
    damaged = copy_problem(folder)
    if damaged is None:
        return
    record, quality = read_record(folder), read_quality(folder)
    parts = record.tag if record is not None and record.tag in INT8_PARTS else quality.parts if quality else None
    source = Path(quality.source) if quality is not None else (
        Path(record.sources[0]).parent if record is not None and record.sources else None)
    try:
        if parts not in INT8_PARTS or source is None:
            raise ModelContractError("no record of the model it was made from")
        if copy_folder(source, parts, folder.parent) != folder:
            raise ModelContractError(f"{source} changed since the copy was made")
    except ModelContractError as exc:
        raise DerivedFileError.damaged(*damaged, exc) from exc
    make_copy(source, parts, folder, quality.frames if quality is not None else QUALITY_FRAMES, log.info, damaged,
              measure=None)


def int8_models(cache_dir: Path | None = None) -> list[tuple[Path, Int8Quality]]:
    """Every complete, undamaged int8 copy made on this machine whose source model still exists."""
    root = Path(cache_dir) if cache_dir is not None else data_dir() / "int8"
    found = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        quality = read_quality(folder)
        if quality is not None and Path(quality.source).is_dir() and copy_problem(folder) is None:
            found.append((folder, quality))
    return found
