"""Model families, each registered by name in MODELS (heavy libraries are imported inside the builders)."""
from salsa.models import bert, gpt2, resnet, small, text, vit  # noqa: F401  (they register themselves)
from salsa.models.registry import MODELS, ModelEntry

__all__ = ["MODELS", "ModelEntry"]
