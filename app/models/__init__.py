"""Model catalogue: the published Mimi streaming variants and where a local copy is (no network;
download in app.models.download)."""

from app.config import HUB_REPO, INT8_PARTS, MODEL_FILES  # re-exported: the CLI and the GUI tests take them here
from app.models.catalogue import (
    VARIANTS,
    Variant,
    cached_variant,
    check_cached_model,
    find_cached,
    is_model_folder,
    local_int8_models,
    lowest_latency_model,
    make_int8_copy,
    resolve_model,
    variant,
    verify_cached,
)

__all__ = ["HUB_REPO", "INT8_PARTS", "MODEL_FILES", "VARIANTS", "Variant", "cached_variant", "check_cached_model",
           "find_cached", "is_model_folder", "local_int8_models", "lowest_latency_model",
           "make_int8_copy", "resolve_model", "variant",
           "verify_cached"]
