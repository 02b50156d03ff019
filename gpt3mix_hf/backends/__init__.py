"""Language-model backends: a local transformers model, and served engines (see `openai.py`, `tgi.py`)."""

from .base import Backend, Completion, SamplingConfig
from .transformers import TransformersBackend

__all__ = ["Backend", "Completion", "SamplingConfig", "TransformersBackend"]
