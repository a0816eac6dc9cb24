"""Model catalogue: the published Mimi streaming variants and where a local copy is (no network)."""

from app.models.catalogue import (
    HUB_REPO,
    MODEL_FILES,
    VARIANTS,
    Variant,
    find_cached,
    is_model_folder,
    variant,
)

__all__ = ["HUB_REPO", "MODEL_FILES", "VARIANTS", "Variant", "find_cached", "is_model_folder", "variant"]
