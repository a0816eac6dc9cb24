"""`mimi-live models` and `mimi-live download`: the published variants in the Hugging Face cache
(main thread)."""

from __future__ import annotations

import argparse
import sys
import time

from app.cli.output import PROG, print_json

__all__ = ["add_download", "add_models", "cmd_download", "cmd_models"]


def add_models(p: argparse.ArgumentParser) -> None:
    p.description = ("List the published variants of BMekiker/mimi-onnx-streaming: codebooks, "
                     "weights, size, and whether (and where) each is in the Hugging Face cache. "
                     "Reads only the cache: works offline.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from app.models.download import list_models

    rows = list_models()
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    for r in rows:
        size = f"{r.size_bytes / 1e6:.0f} MB" if r.cached else f"~{r.size_bytes / 1e6:.0f} MB"
        where = str(r.folder) if r.cached else f"not downloaded (mimi-live download {r.name})"
        print(f"{r.name:20s} {r.codebooks:2d} codebooks  {r.weights}  {size:>8s}  {where}")
    return 0


def add_download(p: argparse.ArgumentParser) -> None:
    from app.models.catalogue import VARIANTS  # the names only: no hub client yet

    p.description = ("Download a published variant into the Hugging Face cache (HF_HOME; "
                     "HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured), check every file's "
                     "size and sha256 against the hub, and print where it is. Running it again "
                     "fetches only what is missing or damaged.")
    p.add_argument("variant", metavar="VARIANT", help=", ".join(v.name for v in VARIANTS))
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    p.set_defaults(handler=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.models.download import download_variant

    bar = None

    def progress(p) -> None:  # an app.models.download.DownloadProgress
        nonlocal bar
        if bar is None:
            bar = tqdm(total=p.total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                       desc=p.variant, disable=args.json or not sys.stderr.isatty(), leave=False)
        bar.update(p.done_bytes - bar.n)  # tqdm shows bytes, rate and time left

    t0 = time.monotonic()
    try:
        folder = download_variant(args.variant, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    summary = {"variant": args.variant, "folder": str(folder),
               "size_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
               "verified": True, "seconds": round(time.monotonic() - t0, 3)}
    if args.json:
        print_json(summary)
    else:
        print(f"{args.variant}: {summary['size_bytes'] / 1e6:.1f} MB, sizes and sha256 match the hub, in {folder}")
        print(f"use it with: {PROG} gui --model {args.variant}  or  {PROG} run --model {args.variant}")
    return 0
