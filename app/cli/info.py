"""`mimi-live info`: a model folder's contract, bitrates and how this machine runs it (main thread)."""

from __future__ import annotations

import argparse
from pathlib import Path

import app.cli.codec_loader as codec_loader
from app.cli.args import MODEL_HELP
from app.cli.output import format_bps, print_json
from app.config import FRAME_MS, FRAME_RATE_HZ

__all__ = ["add_info", "cmd_info", "info_summary"]


def add_info(p: argparse.ArgumentParser) -> None:
    p.description = ("Load a streaming Mimi ONNX folder (encoder_model.onnx, decoder_model.onnx, "
                     "state_spec.txt), check it against the contract and summarise it.")
    p.add_argument("--model", type=Path, required=True, metavar="DIR|VARIANT", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_info)


def info_summary(codec) -> dict:  # a StreamingCodec (onnxruntime stays out of this module)
    """What `info --json` prints: the contract's numbers and the codec's run settings."""
    contract = codec.contract
    k_max = int(contract.num_codebooks)
    size = contract.codebook_size  # None if the decoder's tables were not found
    choices = [int(k) for k in (getattr(codec, "codebook_choices", None) or (k_max,))]
    # The codec knows its bitrate at the k it was opened with (all K here; None if the codebook
    # size is unknown); bitrate is linear in k.
    bitrate = codec.bitrate_bps
    per_codebook = None if bitrate is None else float(bitrate) / int(codec.num_codebooks)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    spec = contract.spec
    return {
        "folder": str(contract.folder),
        "codebooks": k_max,
        "codebook_size": int(size) if size is not None else None,
        "bits_per_codebook": rounded(None if per_codebook is None else per_codebook / FRAME_RATE_HZ),
        "bitrate_bps": rounded(None if per_codebook is None else per_codebook * k_max),
        "codebook_choices": choices,
        "bitrate_by_codebooks": {
            str(k): rounded(None if per_codebook is None else per_codebook * k) for k in choices
        },
        "fewer_codebooks": len(choices) > 1 or min(choices) < k_max,
        "codebook_note": getattr(codec, "codebook_note", None) or "",
        "weights": contract.weights,
        "encoder_mb": round(Path(contract.encoder_path).stat().st_size / 1e6, 3),
        "decoder_mb": round(Path(contract.decoder_path).stat().st_size / 1e6, 3),
        "kv_layers": int(contract.kv_layers),
        "kv_heads": int(contract.kv_heads),
        "kv_head_dim": int(contract.kv_head_dim),
        "conv_states": {"encoder": len(spec.encoder), "decoder": len(spec.decoder)},
        "sample_rate_hz": int(codec.sample_rate),
        "frame_size": int(codec.frame_size),
        "runs_with": {"threads": codec.threads,
                      "convs_as_matmul": dict(zip(("encoder", "decoder"), codec.rewritten, strict=False))},
    }


def cmd_info(args: argparse.Namespace) -> int:
    codec = codec_loader.open_codec(args.model)  # looked up at call time: tests replace it
    s = info_summary(codec)
    if args.json:
        print_json(s)
        return 0
    choices = s["codebook_choices"]
    bits = "unknown" if s["bits_per_codebook"] is None else f"{s['bits_per_codebook']:g}"
    print(f"model folder:   {s['folder']}")
    print(f"codebooks:      K={s['codebooks']} of size {s['codebook_size'] or 'unknown'} "
          f"({bits} bits each)")
    if s["bitrate_bps"] is None:
        print("bitrate:        unknown (codebook size not found in the decoder)")
    else:
        print(f"bitrate:        {s['bitrate_bps']:g} bps at k={s['codebooks']} "
              f"({format_bps(s['bitrate_bps'])})")
    if s["fewer_codebooks"]:
        per = s["bitrate_by_codebooks"][str(choices[0])]
        per_text = "" if per is None else f", {per / choices[0]:g} bps per codebook"
        print(f"fewer codebooks: yes, k = {choices[0]}..{choices[-1]}{per_text}")
    else:
        print(f"fewer codebooks: no, only k={s['codebooks']}")
    if s["codebook_note"]:
        print(f"                {s['codebook_note']}")
    print(f"weights:        {s['weights']}")
    print(f"files:          encoder {s['encoder_mb']:.3f} MB, decoder {s['decoder_mb']:.3f} MB")
    print(f"transformer KV: {s['kv_layers']} layers x {s['kv_heads']} heads x head dim "
          f"{s['kv_head_dim']}")
    print(f"conv states:    encoder {s['conv_states']['encoder']}, "
          f"decoder {s['conv_states']['decoder']}")
    print(f"audio:          {s['sample_rate_hz']} Hz mono, {s['frame_size']} samples per frame "
          f"({FRAME_MS} ms)")
    runs = s["runs_with"]
    rewritten = [side for side, done in runs["convs_as_matmul"].items() if done]
    print(f"runs with:      {runs['threads']} thread(s) per session; big convs as MatMuls: "
          f"{' and '.join(rewritten) if rewritten else 'none (no layer big enough)'}")
    return 0
