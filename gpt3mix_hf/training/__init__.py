"""Training a classifier on real + synthetic rows: arguments, the soft-label trainer, its losses and metrics."""
