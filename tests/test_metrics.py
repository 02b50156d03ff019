"""The default compute_metrics against scikit-learn, on the inputs the stock Trainer hands it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction

from gpt3mix_hf.training.metrics import compute_metrics


def test_compute_metrics_is_scikit_learns_accuracy_and_macro_f1():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 3))
    labels = rng.integers(0, 3, size=40)
    predictions = logits.argmax(-1)
    metrics = compute_metrics(EvalPrediction(predictions=(logits, np.zeros((40, 4))), label_ids=labels))
    assert metrics == {"accuracy": pytest.approx(accuracy_score(labels, predictions)),
                       "macro_f1": pytest.approx(f1_score(labels, predictions, average="macro"))}
    assert compute_metrics(EvalPrediction(predictions=np.array([[2.0, 0.0], [0.0, 2.0]]),
                                          label_ids=np.array([0, 0])))["accuracy"] == 0.5
    with pytest.raises(ValueError, match="no labels"):
        compute_metrics(EvalPrediction(predictions=logits, label_ids=None))


def test_compute_metrics_by_hand():
    # Predictions 0, 1, 1, 2 for labels 0, 1, 0, 2: class 0 has F1 2/3 (precision 1, recall 1/2), class 1 has 2/3
    # (precision 1/2, recall 1), class 2 has 1.
    logits = np.eye(3)[[0, 1, 1, 2]]
    metrics = compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 0, 2])))
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_the_metrics_are_local_evaluate_modules_and_take_any_evaluate_module():
    import evaluate

    from gpt3mix_hf.training.metrics import METRICS, default_metrics, load_metric, make_compute_metrics, metric_path

    for name in METRICS:
        assert isinstance(evaluate.load(metric_path(name)), evaluate.Metric)
    assert isinstance(default_metrics(), evaluate.CombinedEvaluations)
    # A user's own combination (here the accuracy module alone) through the same helper.
    compute = make_compute_metrics(evaluate.combine([load_metric("accuracy")]))
    logits = np.eye(3)[[0, 1, 1, 2]]
    assert compute(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 0, 2]))) == {"accuracy": 0.75}
    with pytest.raises(TypeError, match="evaluate module"):
        make_compute_metrics(lambda prediction: {})
    # Row weights reach both, as they reach the Hub's accuracy and f1 (scikit-learn's).
    predictions, references, weights = [0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 5, 1]
    weighted = default_metrics().compute(predictions=predictions, references=references, sample_weight=weights)
    assert weighted["accuracy"] == pytest.approx(accuracy_score(references, predictions, sample_weight=weights))
    assert weighted["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro",
                                                          sample_weight=weights))


def test_the_harness_and_the_trainer_share_compute_metrics():
    from gpt3mix_hf.training import classification, trainer
    from gpt3mix_hf.training.metrics import compute_metrics as shared

    assert classification.compute_metrics is shared and trainer.default_compute_metrics is shared


def test_selection_score_orders_by_accuracy_then_loss():
    from gpt3mix_hf.training.metrics import compute_selection_metrics, validation_loss

    labels = np.array([0, 1, 1, 0])

    def score(logits):
        return compute_selection_metrics(EvalPrediction(predictions=np.array(logits), label_ids=labels))

    unsure = score([[0.1, 0.0], [0.0, 0.1], [0.0, 0.1], [0.0, 0.1]])  # 3 of 4 right, barely
    sure = score([[5.0, 0.0], [0.0, 5.0], [0.0, 5.0], [0.0, 0.1]])  # 3 of 4 right, confidently
    better = score([[0.1, 0.0], [0.0, 0.1], [0.0, 0.1], [20.0, -20.0]])  # 4 of 4, whatever the loss
    worse_but_sure = score([[9.0, 0.0], [0.0, 9.0], [9.0, 0.0], [0.0, 9.0]])  # 2 of 4
    assert unsure["accuracy"] == sure["accuracy"] == 0.75
    # A tie in accuracy goes to the lower validation loss; a higher accuracy always wins.
    assert sure["nll"] < unsure["nll"] and sure["accuracy_then_nll"] > unsure["accuracy_then_nll"]
    assert better["accuracy_then_nll"] > sure["accuracy_then_nll"] > worse_but_sure["accuracy_then_nll"]
    assert abs(sure["accuracy_then_nll"] - sure["accuracy"]) < 1 / (2 * len(labels))
    log_softmax = np.log(np.exp([0.1, 0.0]) / np.exp([0.1, 0.0]).sum())
    assert validation_loss(np.array([[0.1, 0.0]]), np.array([0])) == pytest.approx(-log_softmax[0])
