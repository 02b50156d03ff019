"""GPT3Mix text augmentation (Yoo et al., 2021) for the Hugging Face ecosystem.

The public API: what a user and the scripts need. The pipeline's modules, bottom to top, are listed in the
README's Layout section.
"""

from .augment_run import AugmentationReport, number_duplicates
from .augmenter import GPT3MixAugmenter
from .backends import Backend, OpenAIBackend, SamplingConfig, ServedConfig, TGIBackend, TransformersBackend
from .config import AugmenterConfig
from .data import class_balanced_sample, concatenate_with_real, load_benchmark
from .hub.cards import GPT3MixDatasetCardData, GPT3MixModelCardData, build_dataset_card, model_card_from_trainer
from .hub.push import push_augmented_dataset, push_classifier
from .labeller import relabel
from .prompt import PromptTemplate
from .provenance import GPT3MixConfig
from .quality import quality_report
from .regeneration import make_augmenter, regenerate
from .spec import PRESETS, TaskSpec
from .training.arguments import GPT3MixTrainingArguments
from .training.classification import evaluate_classifier, train_classifier
from .training.losses import kl_divergence, soft_cross_entropy
from .training.metrics import compute_metrics
from .training.pooling import PooledBertForSequenceClassification
from .training.trainer import GPT3MixTrainer

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AugmentationReport",
    "AugmenterConfig",
    "Backend",
    "GPT3MixAugmenter",
    "GPT3MixConfig",
    "GPT3MixDatasetCardData",
    "GPT3MixModelCardData",
    "GPT3MixTrainer",
    "GPT3MixTrainingArguments",
    "OpenAIBackend",
    "PooledBertForSequenceClassification",
    "PromptTemplate",
    "SamplingConfig",
    "ServedConfig",
    "TGIBackend",
    "TaskSpec",
    "TransformersBackend",
    "__version__",
    "build_dataset_card",
    "class_balanced_sample",
    "compute_metrics",
    "concatenate_with_real",
    "evaluate_classifier",
    "kl_divergence",
    "load_benchmark",
    "make_augmenter",
    "model_card_from_trainer",
    "number_duplicates",
    "push_augmented_dataset",
    "push_classifier",
    "quality_report",
    "regenerate",
    "relabel",
    "soft_cross_entropy",
    "train_classifier",
]
