"""Accuracy and macro-F1 for `Trainer(compute_metrics=...)`, computed with scikit-learn.

scikit-learn rather than `evaluate.load("accuracy")`: that call downloads the metric's script from the Hub, and the
Hub's `accuracy` and `f1` scripts are themselves these two scikit-learn functions.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 of the arg-max of the logits, for `Trainer(compute_metrics=...)`.

    Example:

    >>> import numpy as np
    >>> compute_metrics(EvalPrediction(predictions=np.array([[2.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 0])))
    {'accuracy': 0.5, 'macro_f1': 0.3333333333333333}
    """
    logits = eval_pred.predictions
    if isinstance(logits, (tuple, list)):
        # Models asked for hidden states or attentions return them after the logits.
        logits = logits[0]
    if eval_pred.label_ids is None:
        raise ValueError("The evaluation set has no labels: give it a 'label' column to compute accuracy.")
    predictions = np.asarray(logits).argmax(axis=-1)
    references = np.asarray(eval_pred.label_ids).reshape(-1)
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "macro_f1": float(f1_score(references, predictions, average="macro")),
    }


def validation_loss(logits: np.ndarray, references: np.ndarray) -> float:
    """Mean cross-entropy (nats) of the logits' softmax against the class labels."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(references)), references].mean())


def compute_selection_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """[`compute_metrics`] plus `nll` (the mean cross-entropy) and `accuracy_then_nll`, a score for choosing the
    best epoch (`metric_for_best_model="accuracy_then_nll"`): higher accuracy wins, and among equal accuracies the
    lower `nll`.

    On N rows, two different accuracies differ by at least 1/N; the score subtracts `tanh(nll) / (2N)`, which is
    below 1/(2N) and rises with `nll`, so it orders epochs by accuracy first and by validation loss within a tie.
    Without it, the stock `Trainer` keeps the *first* of tied epochs: on a small validation set that is often a
    barely trained early epoch.

    Example:

    >>> metrics = compute_selection_metrics(EvalPrediction(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1])))
    >>> metrics["accuracy"], metrics["accuracy_then_nll"] < 1.0
    (1.0, True)
    """
    metrics = compute_metrics(eval_pred)
    logits = eval_pred.predictions
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    references = np.asarray(eval_pred.label_ids).reshape(-1)
    nll = validation_loss(logits, references)
    metrics["nll"] = nll
    metrics["accuracy_then_nll"] = metrics["accuracy"] - float(np.tanh(nll)) / (2 * len(references))
    return metrics
