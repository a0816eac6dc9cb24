"""Prepare a model's derived files in a child process, so a load never starves the audio threads.

Parsing a full-size ONNX protobuf holds the GIL for tens to hundreds of ms at a time; the
graph rewrite (graphopt), the zero-row decoder (codebooks) and the decoder inspection
(contract) all do it. ``prepare_model`` runs that work in a "spawn" child process and returns
a small picklable ``PreparedModel``: which graphs to run, the zero-row decoder and what the
decoder inspection found. ``StreamingCodec(folder, prepared=...)`` then only opens sessions.
Everything the child makes is cached in the data folder (the inspection too, as JSON keyed like
``derived``), so once a model is prepared a later call answers from the disk with no child. The
parent trusts a cached file only while its stat matches the checksum record made with it (no
hashing, no parsing); anything else (a file to hash, a damaged one to make again, an int8 copy to
repair) is left to the child, which does what the first prepare did.

Threads: ``prepare_model`` runs on a loader thread (never the audio worker or the GUI thread:
it waits for the child); ``_child_main`` runs in the child process. A PyInstaller bundle needs
``multiprocessing.freeze_support()`` at the start of its entry point for the child to start.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.errors import one_line

from ..config import DATA_DIR_ENV, SPEC_FILE, data_dir, write_atomically
from . import codebooks as _codebooks
from . import graphopt as _graphopt
from . import quantize as _quantize
from .contract import DecoderInspection, inspect_decoder, model_files
from .derived import derived_dir, file_problem, is_intact, record_and_prune, source_key
from .errors import InputError, ModelContractError
from .spec import parse_state_spec

__all__ = ["DEFAULT_TIMEOUT_S", "PreparedModel", "PrepareError", "prepare_model", "prepared_on_disk"]

log = logging.getLogger(__name__)

# A first prepare of a full-size fp32 model takes ~10 s on two cores; a slow disk or machine
# may take many times that, but a child that has not answered by then is stuck.
DEFAULT_TIMEOUT_S = 300.0
_INSPECT_VERSION = 1  # bump when DecoderInspection's meaning changes
_INSPECTION_FILE = "decoder.json"
_PROCESS_NAME = "mimi-live-prepare"
_EXIT_WAIT_S = 5.0  # a child that answered but does not exit is killed after this


class PrepareError(ModelContractError):
    """The child process preparing a model died, timed out or could not be started."""


@dataclass(frozen=True)
class PreparedModel:
    """What ``StreamingCodec`` needs to open a model without parsing any graph itself."""

    folder: Path  # the model folder, resolved
    key: str  # identity (path, size, mtime) of the folder's three files when prepared
    optimize: bool  # whether encoder_path/decoder_path are graphopt's rewritten copies when they exist
    encoder_path: Path  # the encoder graph to run
    decoder_path: Path  # the decoder graph to run with all K codebooks
    num_codebooks: int | None  # K from state_spec.txt (None: the spec did not parse; the load will say why)
    decoder_inspection: DecoderInspection | None = None
    inspection_error: str | None = None  # the ModelContractError inspect_decoder raised, raised again at load
    zero_row_decoder: Path | None = None  # decoder_path with zero rows, when asked for or already made

    @property
    def rewritten(self) -> tuple[bool, bool]:
        """Whether (encoder, decoder) run graphopt's rewritten copy."""
        encoder, decoder, _ = model_files(self.folder)
        return self.encoder_path != encoder.resolve(), self.decoder_path != decoder.resolve()

    def inspection(self, decoder_path: Path, num_codebooks: int) -> DecoderInspection:
        """``load_contract``'s ``inspect``: the stored answer, or the stored error raised now."""
        if self.inspection_error is not None:
            raise ModelContractError(self.inspection_error)
        if self.decoder_inspection is None or num_codebooks != self.num_codebooks:
            raise ModelContractError(f"{Path(decoder_path).name}: the model changed since it was prepared "
                             f"({SPEC_FILE} now says {num_codebooks} codebooks); load it again")
        return self.decoder_inspection

    def is_current(self) -> bool:
        """False if any of the folder's files changed (or went) since this was prepared."""
        try:
            return _sources_key(self.folder) == self.key
        except (OSError, ModelContractError):
            return False


def _sources_key(folder: Path) -> str:
    return source_key(list(model_files(folder)), "prepared")


def _wants_zero_rows(codebooks: Any, k: int) -> bool:
    return isinstance(codebooks, int) and not isinstance(codebooks, bool) and 1 <= codebooks < k


# -- answers from the disk, or the work itself (in the child) ------------------------------------

def _optimized(path: Path, make: bool) -> Path | None:
    """graphopt.optimized_model_path(path), or None if that would have to load the graph (or hash
    the copy) and `make` is False. Mirrors its cache layout (same key, same copy and note names)
    and its check of the copy against its record."""
    path = path.resolve()
    folder = derived_dir("optimized", [path], f"{_graphopt._REWRITE_VERSION}.{_graphopt.MIN_WEIGHTS}")
    if make:
        return _graphopt.optimized_model_path(path)
    if (folder / path.name).is_file():
        return folder / path.name if is_intact(folder / path.name) else None
    if (folder / f"{path.name}.unchanged").is_file():
        return path
    return None


def _zero_rows(decoder: Path, make: bool) -> Path | None:
    """codebooks.decoder_with_zero_rows(decoder) if it exists as recorded (or `make`), else None."""
    target = derived_dir("decoders", [decoder.resolve()], _codebooks._EDIT_VERSION) / "decoder_model.onnx"
    if target.is_file() and is_intact(target):
        return target
    return _codebooks.decoder_with_zero_rows(decoder) if make else None


def _inspection_path(decoder: Path, spec: Path) -> Path:
    # The spec is a source too: the inspection depends on its K.
    return derived_dir("inspected", [decoder.resolve(), spec.resolve()], _INSPECT_VERSION) / _INSPECTION_FILE


def _read_inspection(path: Path) -> DecoderInspection | None:
    # A few hundred bytes: hashed whenever its stamp changed, in the parent too. A swapped or
    # damaged answer is inspected again, never believed.
    if not path.is_file() or file_problem(path) is not None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        inspection = DecoderInspection(data["codebook_size"], data["zero_row_problem"], data["weights"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    size_ok = inspection.codebook_size is None or isinstance(inspection.codebook_size, int)
    problem_ok = inspection.zero_row_problem is None or isinstance(inspection.zero_row_problem, str)
    return inspection if size_ok and problem_ok and inspection.weights in ("fp32", "fp16") else None


def _write_inspection(path: Path, inspection: DecoderInspection, sources: list[Path]) -> None:
    try:
        text = json.dumps(inspection._asdict(), indent=1)
        write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        record_and_prune(path.parent, sources, files=[path.name])
    except OSError as exc:  # a read-only data folder: the next load inspects again
        log.info("decoder inspection not cached in %s: %s", path.parent, exc)


def _resolve(folder: Path, codebooks: int | None, optimize: bool, make: bool) -> PreparedModel | None:
    """The PreparedModel for `folder`; with `make` False, None as soon as a graph would have to be
    read (the parent's check), with `make` True doing that work (the child)."""
    folder = Path(folder).resolve()
    encoder, decoder, spec_path = model_files(folder)
    # An int8 copy is itself derived: checked (and made again if damaged) before its key is taken.
    if make:
        _quantize.repair_int8_copy(folder)
    elif not _quantize.int8_copy_is_intact(folder):
        return None
    key = _sources_key(folder)
    if optimize:
        encoder_run, decoder_run = _optimized(encoder, make), _optimized(decoder, make)
        if encoder_run is None or decoder_run is None:
            return None
    else:
        encoder_run, decoder_run = encoder.resolve(), decoder.resolve()
    try:
        k: int | None = parse_state_spec(spec_path).num_codebooks
    except ModelContractError:
        k = None  # load_contract parses the spec again and raises this at its usual place
    prepared = PreparedModel(folder, key, optimize, encoder_run, decoder_run, k)
    if k is None:
        return prepared
    cache = _inspection_path(decoder, spec_path)
    inspection = _read_inspection(cache)
    if inspection is None:
        if not make:
            return None
        try:
            inspection = inspect_decoder(decoder, k)
        except ModelContractError as exc:
            # Not raised here: an unprepared load reports the session's error first, if any.
            return replace(prepared, inspection_error=str(exc))
        _write_inspection(cache, inspection, [decoder, spec_path])
    prepared = replace(prepared, decoder_inspection=inspection)
    if inspection.zero_row_problem is not None or inspection.codebook_size is None:
        return prepared
    wanted = _wants_zero_rows(codebooks, k)
    zero = _zero_rows(decoder_run, make=make and wanted)
    if zero is None and wanted:
        return None
    return replace(prepared, zero_row_decoder=zero)


# -- the child process --------------------------------------------------------------------------

class _Collect(logging.Handler):
    """Keeps the child's log records to hand them to the parent's logging."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _lower_priority() -> None:
    # The child competes for the cores with the live audio worker; the worker must win.
    try:
        if hasattr(os, "nice"):
            os.nice(10)
        else:
            import psutil

            psutil.Process().nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
    except Exception:  # noqa: BLE001 - a normal priority only costs the audio some headroom
        pass


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling as the same type and message, else a ModelContractError saying what it was."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if type(copy) is type(exc) and str(copy) == str(exc):
            return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        pass
    return ModelContractError(f"preparing the model failed: {type(exc).__name__}: {one_line(exc)}")


def _parent_settings() -> dict[str, Any]:
    # What the child must share with the parent for both to find the same cached files.
    return {"data_dir": str(data_dir()), "min_weights": _graphopt.MIN_WEIGHTS}


def _child_main(conn: Any, folder: str, codebooks: int | None, optimize: bool, settings: dict[str, Any]) -> None:
    """Child process: does the graph work and sends ("ok", PreparedModel) or ("error", exception)."""
    os.environ[DATA_DIR_ENV] = settings["data_dir"]
    _graphopt.MIN_WEIGHTS = settings["min_weights"]
    _lower_priority()
    collect = _Collect()
    app_log = logging.getLogger("app")
    app_log.setLevel(logging.INFO)
    app_log.addHandler(collect)
    app_log.propagate = False  # the parent logs them where its handlers say
    try:
        answer: tuple[str, Any] = ("ok", _resolve(Path(folder), codebooks, optimize, make=True))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        answer = ("error", _portable(exc))
    conn.send((answer, collect.records))
    conn.close()


def _run_child(folder: Path, codebooks: int | None, optimize: bool, timeout_s: float) -> PreparedModel:
    """Runs _child_main in a spawned process and waits at most `timeout_s` for its answer."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # fork would copy the audio threads' locks
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, name=_PROCESS_NAME, daemon=True,
                              args=(sender, str(folder), codebooks, optimize, _parent_settings()))
    try:
        process.start()
    except Exception as exc:  # no child: say so in one line
        receiver.close()
        raise PrepareError(f"{folder}: cannot start the process that prepares the model ({one_line(exc)})") from exc
    sender.close()  # so the pipe reports EOF if the child dies before it answers
    message = None
    try:
        if wait([receiver], timeout=timeout_s):
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                message = None  # died before answering
        elif process.is_alive():
            raise PrepareError(f"{folder}: preparing the model took more than {timeout_s:g} s; stopped its "
                               "helper process (a slow disk, or too little free memory?)")
        process.join(_EXIT_WAIT_S)  # it has answered (or died): only its exit is left
    finally:
        if process.is_alive():
            process.kill()
            process.join(_EXIT_WAIT_S)
        receiver.close()
    if message is None:
        code = process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise PrepareError(f"{folder}: the helper process preparing the model ended without an answer ({how}); "
                           "try again, or check free memory")
    (status, value), records = message
    for name, level, text in records:
        logging.getLogger(name).log(level, "%s", text)
    if status == "error":
        raise value
    return value


# -- the entry point ----------------------------------------------------------------------------

def prepared_on_disk(folder: Path | str, codebooks: int | None = None, optimize: bool = True) -> PreparedModel | None:
    """The PreparedModel if everything it needs is already made (file checks only, no graph read), else None."""
    return _resolve(Path(folder), codebooks, optimize, make=False)


def prepare_model(
    folder: Path | str, codebooks: int | None = None, optimize: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PreparedModel:
    """Makes (once) and returns what StreamingCodec needs to open `folder` without reading a graph.

    `codebooks` below the model's K also makes the zero-row decoder; `optimize` as StreamingCodec's.
    Work that needs a graph runs in a child process (at most `timeout_s`, then PrepareError); its
    errors are raised here as the same types with the same messages. A missing file raises
    ModelContractError at once, as StreamingCodec would.
    """
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or not timeout_s > 0:
        raise InputError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    folder = Path(folder)
    model_files(folder)  # the usual one-line error for a missing folder or file, without a child
    done = prepared_on_disk(folder, codebooks, optimize)
    if done is not None:
        return done
    return _run_child(folder.resolve(), codebooks, optimize, float(timeout_s))
