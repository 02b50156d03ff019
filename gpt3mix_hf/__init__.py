"""GPT3Mix text augmentation (Yoo et al., 2021) for the Hugging Face ecosystem."""

from .augmenter import AugmentationReport, GPT3MixAugmenter, concatenate_with_real
from .backends import Backend, Completion, SamplingConfig, TransformersBackend
from .classification import evaluate_classifier, train_classifier
from .losses import kl_divergence, soft_cross_entropy
from .prompt import GenerationParser, ParsedGeneration, PromptTemplate
from .selection import ExampleSelector
from .spec import PRESETS, TaskSpec
from .trainer import GPT3MixTrainer
from .training_args import GPT3MixTrainingArguments

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AugmentationReport",
    "Backend",
    "Completion",
    "ExampleSelector",
    "GPT3MixAugmenter",
    "GPT3MixTrainer",
    "GPT3MixTrainingArguments",
    "GenerationParser",
    "ParsedGeneration",
    "PromptTemplate",
    "SamplingConfig",
    "TaskSpec",
    "TransformersBackend",
    "__version__",
    "concatenate_with_real",
    "evaluate_classifier",
    "kl_divergence",
    "soft_cross_entropy",
    "train_classifier",
]
