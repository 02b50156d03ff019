"""The local engine: a transformers model with continuous batching and label scoring on its prompt cache."""

from .transformers import TransformersBackend

__all__ = ["TransformersBackend"]
