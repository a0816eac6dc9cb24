"""The four published variants of BMekiker/mimi-onnx-streaming and their local cache (any thread).

Looks only at the Hugging Face cache on disk (`huggingface_hub.try_to_load_from_cache`): nothing
here touches the network. Downloading arrives with the models issue; user-added local folders are
remembered by the UI (QSettings), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HUB_REPO = "BMekiker/mimi-onnx-streaming"
MODEL_FILES = ("encoder_model.onnx", "decoder_model.onnx", "state_spec.txt")


@dataclass(frozen=True)
class Variant:
    name: str  # folder in the hub repository
    codebooks: int
    weights: str  # "fp32" | "fp16"
    size_mb: int  # encoder + decoder, approximate

    @property
    def label(self) -> str:
        return f"{self.name}  ({self.codebooks} codebooks, {self.weights}, ~{self.size_mb} MB)"


VARIANTS: tuple[Variant, ...] = (
    Variant("streaming-8cb", 8, "fp32", 364),
    Variant("streaming-16cb", 16, "fp32", 428),
    Variant("streaming-8cb-fp16", 8, "fp16", 222),
    Variant("streaming-16cb-fp16", 16, "fp16", 276),
)


def variant(name: str) -> Variant | None:
    """The published variant called `name`, or None."""
    return next((v for v in VARIANTS if v.name == name), None)


def is_model_folder(folder: Path | str) -> bool:
    """Whether `folder` holds the three files of the streaming contract (not whether they are valid)."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in MODEL_FILES)


def find_cached(name: str | Variant, cache_dir: Path | str | None = None) -> Path | None:
    """The local folder of a published variant if all three files are in the HF cache, else None.

    Never touches the network. All three files must resolve into one snapshot folder.
    """
    from huggingface_hub import try_to_load_from_cache

    name = name.name if isinstance(name, Variant) else str(name)
    folders = set()
    for filename in MODEL_FILES:
        try:
            found = try_to_load_from_cache(HUB_REPO, f"{name}/{filename}", cache_dir=cache_dir)
        except Exception:  # noqa: BLE001 - a broken cache is "not cached", never a crash
            return None
        if not isinstance(found, str) or not Path(found).is_file():
            return None  # None (unknown) or the "known not to exist" sentinel
        folders.add(Path(found).parent)
    return folders.pop() if len(folders) == 1 else None
