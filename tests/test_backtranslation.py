"""Back-translation through two tiny random MarianMT models built here (no translation model can be
downloaded): a real sentencepiece model trained on SST-2 text, a real MarianTokenizer, random weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from datasets import Value
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

from gpt3mix_hf.experiment.baselines.backtranslation import BackTranslationAugmenter


def build_tiny_marian(folder: Path, texts: list[str], seed: int) -> Path:
    """A 1-layer random MarianMT model with a sentencepiece vocabulary trained on `texts`, saved to `folder`."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "sp"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(prefix), vocab_size=200, model_type="unigram",
        character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1, minloglevel=2,
    )
    shutil.copy(f"{prefix}.model", folder / "source.spm")
    shutil.copy(f"{prefix}.model", folder / "target.spm")
    processor = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for piece in (processor.id_to_piece(i) for i in range(processor.get_piece_size())):
        vocab.setdefault(piece, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model_dir = folder / "model"
    MarianMTModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory, data_dir) -> tuple[str, str]:
    lines = (data_dir / "sst2" / "train.jsonl").read_text().splitlines()[:1500]
    texts = [json.loads(line)["text"] for line in lines]
    root = tmp_path_factory.mktemp("marian")
    return str(build_tiny_marian(root / "en-de", texts, 0)), str(build_tiny_marian(root / "de-en", texts, 1))


@pytest.fixture(scope="module")
def augmenter(marian_pair) -> BackTranslationAugmenter:
    return BackTranslationAugmenter.from_pretrained(*marian_pair, max_new_tokens=12, num_beams=2, device="cpu")


def test_round_trip_goes_through_both_models(augmenter, toy_sentiment, monkeypatch):
    calls = []
    translate = augmenter._translate

    def spy(model, tokenizer, texts, **kwargs):
        outputs = translate(model, tokenizer, texts, **kwargs)
        calls.append((model, list(texts), outputs))
        return outputs

    monkeypatch.setattr(augmenter, "_translate", spy)
    paraphrases = augmenter.paraphrase(toy_sentiment[0]["text"], row=0)
    assert len(paraphrases) == 1 and isinstance(paraphrases[0], str)
    (forward, source, pivots), (backward, pivot_inputs, back) = calls
    assert forward is augmenter.forward_model and backward is augmenter.backward_model
    assert source == [toy_sentiment[0]["text"]]
    # The backward model translates exactly what the forward model wrote.
    assert pivot_inputs == pivots and back == paraphrases


def test_augment_rows_labels_and_seeds(augmenter, toy_sentiment):
    synthetic = augmenter.augment(toy_sentiment, num_aug=2, seed=3)
    assert synthetic.column_names == ["text", "label", "soft_labels"]
    assert len(synthetic) == 2 * len(toy_sentiment)
    assert synthetic.features["label"].names == ["negative", "positive"]
    assert synthetic["label"] == [label for label in toy_sentiment["label"] for _ in range(2)]
    assert all(sum(soft) == 1.0 and soft[label] == 1.0
               for soft, label in zip(synthetic["soft_labels"], synthetic["label"], strict=True))
    again = augmenter.augment(toy_sentiment, num_aug=2, seed=3, batch_size=1)
    assert list(again["text"]) == list(synthetic["text"])  # seeded per row, whatever the batch


def test_forward_sampling_depends_on_the_seed(augmenter, monkeypatch):
    pivots = []
    translate = augmenter._translate

    def spy(model, tokenizer, texts, **kwargs):
        outputs = translate(model, tokenizer, texts, **kwargs)
        if model is augmenter.forward_model:
            pivots.append(outputs)
        return outputs

    monkeypatch.setattr(augmenter, "_translate", spy)
    augmenter.num_aug = 3
    for seed in (3, 3, 4):
        augmenter.seed = seed
        augmenter.paraphrase("a gripping , funny and moving film .", row=0)
    assert len(pivots[0]) == 3
    assert pivots[0] == pivots[1]
    assert pivots[0] != pivots[2]


def test_forward_samples_are_independent_whatever_the_models_beam_setting(augmenter, monkeypatch):
    # opus-mt-en-de's generation config has num_beams=4: sampling must not turn into beam sampling (which also
    # refuses more sequences than beams, i.e. ratio 5).
    monkeypatch.setattr(augmenter, "num_aug", 5)
    monkeypatch.setattr(augmenter.forward_model.generation_config, "num_beams", 1)
    independent = augmenter.paraphrase("a gripping , funny film .", row=0)
    monkeypatch.setattr(augmenter.forward_model.generation_config, "num_beams", 4)
    assert augmenter.paraphrase("a gripping , funny film .", row=0) == independent
    assert len(independent) == 5


def test_paraphrase_leaves_global_rng_alone(augmenter):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    augmenter.paraphrase("a fine film .", row=0)
    assert torch.equal(torch.rand(3), expected)


def test_bad_inputs(augmenter, marian_pair, toy_sentiment, tiny_lm_dir):
    with pytest.raises(ValueError, match="ClassLabel"):
        augmenter.augment(toy_sentiment.cast_column("label", Value("int64")))
    with pytest.raises(ValueError, match="num_aug"):
        augmenter.augment(toy_sentiment, num_aug=0)
    with pytest.raises(ValueError, match="sequence-to-sequence"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        causal = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
        BackTranslationAugmenter(causal, AutoTokenizer.from_pretrained(tiny_lm_dir), augmenter.backward_model,
                                 augmenter.backward_tokenizer)
    with pytest.raises(OSError):
        BackTranslationAugmenter.from_pretrained("/no/such/translation-model", marian_pair[1])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"temperature": float("nan")}, "temperature must be a finite number"),
    ({"temperature": float("inf")}, "temperature must be a finite number"),
    ({"temperature": 0}, "temperature must be a finite number"),
    ({"num_beams": 0}, "num_beams must be an integer >= 1"),
    ({"top_k": 1.5}, "top_k must be an integer >= 0"),
    ({"max_new_tokens": float("inf")}, "max_new_tokens must be an integer >= 1"),
])
def test_bad_numbers_are_refused(augmenter, kwargs, message):
    with pytest.raises(ValueError, match=f"{message}|BackTranslationAugmenter.{next(iter(kwargs))}="):
        BackTranslationAugmenter(augmenter.forward_model, augmenter.forward_tokenizer, augmenter.backward_model,
                                 augmenter.backward_tokenizer, **kwargs)
