"""`mimi-live compare`: a file through Mimi at several codebook counts and through Codec2 and Opus,
every output as a WAV, and a report (JSON, an HTML page, a PNG figure) with measured bitrates and
quality figures (main thread)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import app.cli.args as cli_args
import app.cli.codec_loader as codec_loader
from app.cli.args import MODEL_HELP
from app.cli.output import PROG, format_bps, print_json
from app.cli.user_errors import UserError
from app.config import FRAME_SIZE, SAMPLE_RATE_HZ

__all__ = ["add_compare", "cmd_compare"]

CLASSIC_DEFAULT = "codec2-1200,codec2-3200,opus-6k,opus-12k"


def _codebook_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of codebook counts, e.g. 1,2,4,8") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: codebook counts are whole numbers from 1 up")
    return sorted(set(values))


def _classic_list(text: str) -> list[str]:
    from app.classic.paths import CLASSIC_PATHS

    if text.strip().lower() == "none":
        return []
    keys = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [k for k in keys if k not in CLASSIC_PATHS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(CLASSIC_PATHS)}, or none")
    return list(dict.fromkeys(keys))


def add_compare(p: argparse.ArgumentParser) -> None:
    p.description = ("Run an audio file through Mimi at each codebook count and through the classic codecs "
                     "(Codec2 1200/3200, Opus 6/12 kbps, voip mode), write every output as a 24 kHz WAV "
                     "aligned with the input, and a report: report.html (open it: a table, the figure and a "
                     "player per path), report.json and figure.png.")
    p.add_argument("input", type=Path, metavar="IN", help="input audio file (converted to 24 kHz mono)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the WAVs and the report")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--codebooks", type=_codebook_list, default=None, metavar="K,K,...",
                   help="Mimi's codebook counts (default: 1, 2, 4, ... up to all the model has)")
    p.add_argument("--classic", type=_classic_list, default=CLASSIC_DEFAULT, metavar="PATHS",
                   help=f"classic codecs, comma-separated, or none (default {CLASSIC_DEFAULT})")
    p.add_argument("--visqol", action="store_true",
                   help="add ViSQOL (speech mode) per path: needs the quality extra; ~0.5 s per second of audio "
                   "per path here")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="ONNX Runtime threads (default: tuned)")
    p.add_argument("--play", action="store_true",
                   help="then play the first seconds of every path one after another, each announced")
    p.add_argument("--play-seconds", type=cli_args.bounded_float(0.0, 600.0, "seconds"), default=10.0, metavar="S",
                   help="how much of each path --play plays (default 10)")
    p.add_argument("--device", type=cli_args.device, default=None, metavar="ID|NAME",
                   help="output device for --play (default: the system's)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=cmd_compare)


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, disable=not sys.stderr.isatty(), desc=PROG, leave=False)


def cmd_compare(args: argparse.Namespace) -> int:
    from app.audio.files import AtomicWavWriter, read_audio_24k_mono, same_file
    from app.codec.standin import stand_in_note
    from app.compare.report import build_report, write_report
    from app.compare.runner import original, run_classic, run_mimi
    from app.compare.spectra import log_spectrogram

    if args.play:  # an output that cannot play is said before minutes of work, not after
        from app.audio.devices import resolve_device

        resolve_device(args.device, "output")
    pcm = read_audio_24k_mono(args.input)
    codec = codec_loader.open_codec(args.model, threads=args.threads)
    counts = args.codebooks or [k for k in (1, 2, 4, 8, 16, 32) if k < codec.max_codebooks] + [codec.max_codebooks]
    bad = [k for k in counts if k not in codec.codebook_choices]
    if bad:
        raise UserError(f"--codebooks {','.join(map(str, bad))}: this model decodes with "
                        f"{codec.codebook_choices[0]}..{codec.codebook_choices[-1]} codebooks")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot create the output folder ({exc.strerror or exc})") from exc
    wavs = [args.out / f"{key}.wav" for key in ["original", *(f"mimi-{k}" for k in counts), *args.classic]]
    if any(same_file(args.input, wav) for wav in wavs):
        raise UserError(f"{args.input}: is one of the files compare writes into {args.out}; choose another --out")

    frames = -(-len(pcm) // FRAME_SIZE)
    with _bar(frames * (1 + len(counts) + len(args.classic))) as bar:
        results = [original(pcm), *run_mimi(codec, pcm, counts, bar.update),
                   *run_classic(args.classic, pcm, bar.update)]
    for result in results:
        with AtomicWavWriter(args.out / f"{result.key}.wav", SAMPLE_RATE_HZ, "PCM_16") as out:
            out.write(result.audio)
    report = build_report(args.input, pcm, results, str(args.model), stand_in_note(args.model), args.visqol)
    figure = _figure(report, {r.key: log_spectrogram(r.audio) for r in results})
    write_report(args.out, report, figure)
    if args.json:
        print_json(report)
    else:
        _print_summary(args, report, len(results))
    if args.play:
        _play(results, args.play_seconds, args.device)
    return 0


def _play(results: list, seconds: float, device: int | str | None) -> None:
    from app.audio.playback import play_in_turn

    keep = int(seconds * SAMPLE_RATE_HZ)

    def announce(index: int, label: str) -> None:
        print(f"{PROG}: playing {index + 1}/{len(results)}: {label}", file=sys.stderr, flush=True)

    play_in_turn([(r.label, r.audio[:keep]) for r in results], device, announce)


def _print_summary(args: argparse.Namespace, report: dict, paths: int) -> None:
    print(f"{args.input} -> {args.out}/report.html ({report['duration_s']} s, {paths} paths)")
    for note in report["notes"]:
        print(f"  note: {note}")
    for path in report["paths"]:
        rate = "" if path["bitrate_bps"] is None else format_bps(path["bitrate_bps"])
        scores = ", ".join(f"{name} {path[key]:.3f}" for key, name in
                           (("stoi", "STOI"), ("estoi", "ESTOI"), ("visqol_moslqo", "ViSQOL"))
                           if path.get(key) is not None)
        print(f"  {path['label']:<20} {rate:>12}  {scores}")


def _figure(report: dict, spectrograms: dict) -> bytes | None:
    """figure.png, or None (with one line) where Qt cannot draw here."""
    try:
        from app.ui.report_figure import render_figure

        return render_figure(report, spectrograms)
    except ImportError as exc:
        print(f"{PROG}: no figure: {exc}", file=sys.stderr)
        return None
