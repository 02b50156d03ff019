"""GPT3MixTrainer on two processes (`accelerate launch --num_processes 2`, CPU, gloo) gives the loss and the weights
of one process on the same data.

The test runs this file as a script twice: once as a plain single process, once under `accelerate launch`. Each
step of the run covers all 8 rows (one process: batch 8; two processes: 4 rows each), so the order in which the
sampler hands rows out does not matter, and the soft-label loss (summed over rows, divided by the rows of all
processes) must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = 8
STEPS = 3


def run(output: Path) -> None:
    import torch
    import torch.distributed
    from datasets import ClassLabel, Dataset, Features, Sequence, Value
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from gpt3mix_hf.models import resolve_classifier
    from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
    from gpt3mix_hf.training.classification import tokenize_dataset
    from gpt3mix_hf.training.trainer import GPT3MixTrainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier("minilm"))
    texts = [f"review number {index} : {'great fun' if index % 2 else 'a dull mess'} , {'!' * index}"
             for index in range(ROWS)]
    soft = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.0, 1.0], [1.0, 0.0], [0.35, 0.65], [0.7, 0.3], [0.1, 0.9]]
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"]),
                         "soft_labels": Sequence(Value("float32")), "is_synthetic": Value("bool")})
    dataset = Dataset.from_dict(
        {"text": texts, "label": [int(row[1] > 0.5) for row in soft], "soft_labels": soft,
         "is_synthetic": [index % 3 == 0 for index in range(ROWS)]},
        features=features,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=2, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    ))
    args = GPT3MixTrainingArguments(
        output_dir=str(output.parent / f"run-{world}"), report_to="none", disable_tqdm=True, use_cpu=True,
        per_device_train_batch_size=ROWS // world, max_steps=STEPS, logging_steps=1, learning_rate=1e-2,
        warmup_steps=0, eval_strategy="no", save_strategy="no", early_stopping_patience=None,
        synthetic_weight=0.5, loss_type="kl", temperature=2.0, seed=0,
    )
    initial = [parameter.detach().double().clone() for parameter in model.parameters()]
    trainer = GPT3MixTrainer(model, args, train_dataset=tokenize_dataset(dataset, tokenizer),
                             processing_class=tokenizer)
    trainer.train()
    if trainer.is_world_process_zero():
        result = {
            "world_size": trainer.accelerator.num_processes,
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "losses": [log["loss"] for log in trainer.state.log_history if "loss" in log],
            "parameters": [parameter.detach().double().sum().item() for parameter in model.parameters()],
            "magnitudes": [parameter.detach().double().abs().sum().item() for parameter in model.parameters()],
            "moved": [(parameter.detach().double() - start).abs().sum().item()
                      for parameter, start in zip(model.parameters(), initial, strict=True)],
        }
        output.write_text(json.dumps(result))


def launch(command: list[str], output: Path) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1",
                   "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    completed = subprocess.run([*command, __file__, str(output)], env=environment, capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(output.read_text())


@pytest.mark.slow
def test_two_processes_give_the_loss_of_one(tmp_path):
    one = launch([sys.executable], tmp_path / "one.json")
    # `--multi_gpu` is accelerate's torchrun launcher; on a machine without GPUs (and use_cpu=True) it runs CPU
    # processes over gloo. `--cpu` with several processes would need mpirun and a hostfile.
    two = launch([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", "29533"], tmp_path / "two.json")
    assert (one["world_size"], two["world_size"], two["backend"]) == (1, 2, "gloo")
    assert len(one["losses"]) == STEPS
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    # Each trained tensor's sum within 1e-4 of the tensor's magnitude (a sum that cancels to ~0 must not shrink the
    # tolerance). A tensor whose gradient is at round-off level (a bias that moved ~1e-5 in all, where Adam's
    # steps are ~1e-2) moves by the round-off of the processes' all-reduce, differently run to run: it is left out.
    trained = [i for i, moved in enumerate(one["moved"]) if moved > 1e-3]
    assert len(trained) >= 0.9 * len(one["moved"])
    for i in trained:
        found, expected, magnitude = two["parameters"][i], one["parameters"][i], one["magnitudes"][i]
        assert abs(found - expected) <= 1e-4 * magnitude + 1e-7, (i, found, expected, magnitude)
    # The weights moved: the comparison is of trained models, not of two untouched initialisations.
    assert len(set(one["losses"])) > 1


if __name__ == "__main__":
    run(Path(sys.argv[1]))
