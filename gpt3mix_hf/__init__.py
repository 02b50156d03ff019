"""GPT3Mix text augmentation (Yoo et al., 2021) for the Hugging Face ecosystem."""

from .augmenter import AugmentationReport, GPT3MixAugmenter, concatenate_with_real
from .backends import Backend, Completion, OpenAIBackend, SamplingConfig, ServedConfig, TGIBackend, TransformersBackend
from .data import check_columns, training_features
from .hub.cards import GPT3MixDatasetCardData, GPT3MixModelCardData, build_dataset_card, model_card_from_trainer
from .hub.push import push_augmented_dataset, push_classifier
from .prompt import GenerationParser, ParsedGeneration, PromptTemplate
from .provenance import GPT3MixConfig, augmenter_from_config, build_config, load_config, regenerate, save_config
from .quality import quality_report
from .selection import ExampleSelector
from .spec import PRESETS, TaskSpec
from .training.arguments import GPT3MixTrainingArguments
from .training.classification import evaluate_classifier, train_classifier
from .training.losses import kl_divergence, soft_cross_entropy
from .training.metrics import compute_metrics, make_compute_metrics
from .training.pooling import PooledBertConfig, PooledBertForSequenceClassification, checkpoint_pooling
from .training.trainer import GPT3MixTrainer

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AugmentationReport",
    "Backend",
    "Completion",
    "ExampleSelector",
    "GPT3MixAugmenter",
    "GPT3MixConfig",
    "GPT3MixDatasetCardData",
    "GPT3MixModelCardData",
    "GPT3MixTrainer",
    "GPT3MixTrainingArguments",
    "GenerationParser",
    "OpenAIBackend",
    "ParsedGeneration",
    "PooledBertConfig",
    "PooledBertForSequenceClassification",
    "PromptTemplate",
    "SamplingConfig",
    "ServedConfig",
    "TGIBackend",
    "TaskSpec",
    "TransformersBackend",
    "__version__",
    "augmenter_from_config",
    "build_config",
    "build_dataset_card",
    "checkpoint_pooling",
    "check_columns",
    "compute_metrics",
    "concatenate_with_real",
    "evaluate_classifier",
    "kl_divergence",
    "load_config",
    "make_compute_metrics",
    "model_card_from_trainer",
    "push_augmented_dataset",
    "push_classifier",
    "quality_report",
    "regenerate",
    "save_config",
    "soft_cross_entropy",
    "train_classifier",
    "training_features",
]
