"""Training a classifier on real + synthetic rows: arguments, the soft-label trainer, its losses and metrics."""

from .arguments import GPT3MixTrainingArguments
from .classification import evaluate_classifier, train_classifier
from .losses import kl_divergence, soft_cross_entropy
from .metrics import compute_metrics
from .pooling import PooledBertForSequenceClassification
from .trainer import GPT3MixTrainer

__all__ = [
    "GPT3MixTrainer",
    "GPT3MixTrainingArguments",
    "PooledBertForSequenceClassification",
    "compute_metrics",
    "evaluate_classifier",
    "kl_divergence",
    "soft_cross_entropy",
    "train_classifier",
]
