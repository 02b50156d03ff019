"""GPT3Mix text augmentation (Yoo et al., 2021) for the Hugging Face ecosystem."""

from .augmenter import AugmentationReport, GPT3MixAugmenter, concatenate_with_real
from .backends import Backend, Completion, SamplingConfig, TransformersBackend
from .prompt import GenerationParser, ParsedGeneration, PromptTemplate
from .selection import ExampleSelector
from .spec import PRESETS, TaskSpec

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AugmentationReport",
    "Backend",
    "Completion",
    "ExampleSelector",
    "GPT3MixAugmenter",
    "GenerationParser",
    "ParsedGeneration",
    "PromptTemplate",
    "SamplingConfig",
    "TaskSpec",
    "TransformersBackend",
    "__version__",
    "concatenate_with_real",
]
