"""Language-model backends: a local transformers model, and served engines (see `openai.py`, `tgi.py`)."""

from .base import Backend, Completion, SamplingConfig
from .http import (
    AuthenticationError,
    BadResponseError,
    RequestFailedError,
    ServedBackendError,
    ServedConfig,
    ServerUnreachableError,
    UsageLimitError,
    UsageReport,
)
from .openai import OpenAIBackend
from .request_cache import RequestCache
from .tgi import TGIBackend
from .transformers import TransformersBackend

__all__ = [
    "AuthenticationError",
    "Backend",
    "BadResponseError",
    "Completion",
    "OpenAIBackend",
    "RequestCache",
    "RequestFailedError",
    "SamplingConfig",
    "ServedBackendError",
    "ServedConfig",
    "ServerUnreachableError",
    "TGIBackend",
    "TransformersBackend",
    "UsageLimitError",
    "UsageReport",
]
