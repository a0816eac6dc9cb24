"""Regenerates the tiny stand-in models in tests/fixtures (needs the `export` extra).

    python -m tests.make_fixtures

tiny-8cb and tiny-16cb share one set of random weights (same seed), so the first 8 codebooks of
the 16-codebook pair are the 8-codebook pair; the -fp16 pairs are the same weights stored as fp16.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.codec.export import export_pair

FIXTURES = Path(__file__).parent / "fixtures"
SEED = 0


def main() -> None:
    for codebooks in (8, 16):
        for fp16 in (False, True):
            folder = FIXTURES / f"tiny-{codebooks}cb{'-fp16' if fp16 else ''}"
            shutil.rmtree(folder, ignore_errors=True)
            summary = export_pair(folder, codebooks=codebooks, seed=SEED, tiny=True, fp16_weights=fp16)
            print(f"{folder.name}: encoder {summary['encoder_bytes']:,} B, decoder {summary['decoder_bytes']:,} B")


if __name__ == "__main__":
    main()
