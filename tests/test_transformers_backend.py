import pickle

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gpt3mix_hf import PromptTemplate, SamplingConfig, TaskSpec, TransformersBackend

TREC = TaskSpec.from_preset("trec6")
TREC_NAMES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
SAMPLING = SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=12)


@pytest.fixture(scope="module")
def backend(tiny_lm_dir):
    return TransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=3)


def trec_prompts():
    template = PromptTemplate()
    questions = [("What is NASA ?", 0), ("Who wrote Hamlet ?", 3), ("How far is the moon from the earth ?", 5),
                 ("Where is Lake Titicaca ?", 4), ("What does a phrenologist study ?", 1)]
    return [template.build(TREC, TREC_NAMES, questions[i:i + 2]) for i in range(4)] + [
        template.build(TREC, TREC_NAMES, questions[:1])
    ]


def brute_force_logprobs(model, tokenizer, prompt, context, continuation):
    """log p(continuation | prompt + context): one plain forward pass over the whole sequence, no cache."""
    prefix = tokenizer(prompt)["input_ids"] + tokenizer(context, add_special_tokens=False)["input_ids"]
    target = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prefix + target])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return sum(float(logprobs[len(prefix) + j - 1, token]) for j, token in enumerate(target))


def scoring_context(text):
    # A random model never writes the item format: score every generation, as if it had parsed.
    return PromptTemplate().scoring_parts(TREC, TREC_NAMES, text.strip() or "empty")[0]


def test_soft_labels_equal_brute_force_including_multi_token_labels(backend, tiny_lm_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    assert max(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations) > 1

    prompts = trec_prompts()
    completions = backend.generate_and_score(prompts, list(range(len(prompts))), SAMPLING, scoring_context,
                                             continuations)
    for prompt, completion in zip(prompts, completions, strict=True):
        expected = [brute_force_logprobs(model, tokenizer, prompt, scoring_context(completion.text), c)
                    for c in continuations]
        assert completion.label_logprobs == pytest.approx(expected, abs=1e-4)
        assert backend.score([prompt], [scoring_context(completion.text)], continuations)[0] == pytest.approx(
            expected, abs=1e-4
        )


def test_generation_depends_on_each_prompts_seed_not_its_batch(tiny_lm_dir):
    prompts, seeds = trec_prompts(), [11, 12, 13, 14, 15]
    one = TransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1).generate(prompts, seeds, SAMPLING)
    many = TransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=4).generate(prompts, seeds, SAMPLING)
    assert [c.text for c in one] == [c.text for c in many]
    other_seeds = TransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=4).generate(
        prompts, [21, 22, 23, 24, 25], SAMPLING
    )
    assert [c.text for c in other_seeds] != [c.text for c in many]


def test_generation_stops_at_the_end_of_the_line(backend):
    completions = backend.generate(trec_prompts(), [1, 2, 3, 4, 5], SAMPLING)
    for completion in completions:
        assert "\n" not in completion.text
        assert 1 <= completion.num_tokens <= SAMPLING.max_new_tokens


def test_greedy_generation_is_the_models_argmax(backend):
    prompt = trec_prompts()[0]
    text = backend.generate([prompt], [0], SamplingConfig(temperature=0, max_new_tokens=1))[0]
    ids = backend.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        best = int(backend.model(ids).logits[0, -1].argmax())
    assert backend.tokenizer.decode([best]).split("\n")[0] == text.text


def test_missing_pad_token_pads_with_eos(tiny_lm_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.pad_token = None
    backend = TransformersBackend(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tokenizer)
    assert backend.tokenizer.pad_token_id == tokenizer.eos_token_id


def test_tokenizer_without_pad_or_eos_is_refused(tiny_lm_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.pad_token = None
    tokenizer.eos_token = None
    with pytest.raises(ValueError, match="pad"):
        TransformersBackend(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tokenizer)


def test_pickles_as_its_source_not_its_weights(backend):
    payload = pickle.dumps(backend)
    assert len(payload) < 10_000
    restored = pickle.loads(payload)
    prompts = trec_prompts()[:2]
    assert [c.text for c in restored.generate(prompts, [5, 6], SAMPLING)] == [
        c.text for c in backend.generate(prompts, [5, 6], SAMPLING)
    ]


def test_one_seed_per_prompt(backend):
    with pytest.raises(ValueError, match="one seed per prompt"):
        backend.generate(["a", "b"], [1], SAMPLING)


@pytest.mark.parametrize("kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"max_new_tokens": 0}])
def test_bad_sampling(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)
