"""Publishing: push augmented datasets and classifiers to the Hub, with their cards."""
