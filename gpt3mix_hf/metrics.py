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
