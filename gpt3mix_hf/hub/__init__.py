"""Publishing: push augmented datasets and classifiers to the Hub, with their cards."""

from .push import push_augmented_dataset, push_classifier

__all__ = ["push_augmented_dataset", "push_classifier"]
