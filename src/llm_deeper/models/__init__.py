"""Model registry, embedded default model, loaders and tiny test models.

Import the submodules you need; this package import stays free of torch.
"""

from .registry import DEFAULT_MODEL, REGISTRY, ModelRef, ModelSpec, resolve

__all__ = ["DEFAULT_MODEL", "REGISTRY", "ModelRef", "ModelSpec", "resolve"]
