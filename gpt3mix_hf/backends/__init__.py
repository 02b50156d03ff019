"""Language-model backends: a local transformers model, and served engines (see `openai.py`, `tgi.py`)."""

from .base import Backend, Completion, SamplingConfig
from .local.transformers import TransformersBackend
from .served.backend import ServedBackend
from .served.config import ServedConfig
from .served.errors import (
    AuthenticationError,
    BadResponseError,
    RequestFailedError,
    RequestRefusedError,
    RetriesExhaustedError,
    ServedBackendError,
    ServerUnreachableError,
    UsageLimitError,
)
from .served.openai import OpenAIBackend
from .served.request_cache import RequestCache
from .served.tgi import TGIBackend
from .served.usage import UsageReport

__all__ = [
    "AuthenticationError",
    "Backend",
    "BadResponseError",
    "Completion",
    "OpenAIBackend",
    "RequestCache",
    "RequestFailedError",
    "RequestRefusedError",
    "RetriesExhaustedError",
    "SamplingConfig",
    "ServedBackend",
    "ServedBackendError",
    "ServedConfig",
    "ServerUnreachableError",
    "TGIBackend",
    "TransformersBackend",
    "UsageLimitError",
    "UsageReport",
]
