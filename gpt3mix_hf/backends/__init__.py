"""Language-model backends: a local transformers model, and served engines (see `openai.py`, `tgi.py`)."""

from .base import Backend, Completion, SamplingConfig
from .errors import (
    AuthenticationError,
    BadResponseError,
    RequestFailedError,
    ServedBackendError,
    ServerUnreachableError,
    UsageLimitError,
)
from .openai import OpenAIBackend
from .request_cache import RequestCache
from .served import ServedBackend
from .served_config import ServedConfig
from .tgi import TGIBackend
from .transformers import TransformersBackend
from .usage import UsageReport

__all__ = [
    "AuthenticationError",
    "Backend",
    "BadResponseError",
    "Completion",
    "OpenAIBackend",
    "RequestCache",
    "RequestFailedError",
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
