import pickle

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gpt3mix_hf import PromptTemplate, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.backends.local import machine, prefill
from gpt3mix_hf.backends.local.machine import cpu_has_bf16_matmul, resolve_dtype
from gpt3mix_hf.backends.local.transformers import line_break_table

TREC = TaskSpec.from_preset("trec6")
TREC_NAMES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
SAMPLING = SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=12)


def fp32_backend(folder, batch_size: int) -> TransformersBackend:
    """Exactness checks pin float32: "auto" is bfloat16 on machines with native bf16 (AMX, GPUs)."""
    return TransformersBackend.from_pretrained(str(folder), batch_size=batch_size, dtype="float32")


@pytest.fixture(scope="module")
def backend(tiny_lm_dir):
    return fp32_backend(tiny_lm_dir, batch_size=3)


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


def test_score_runs_each_prompt_once_and_equals_brute_force(backend, tiny_lm_dir):
    # Calibration's shape: every prompt with several content-free contexts, prompts repeated out of order and more
    # distinct prompts than the backend's 3 slots, so they are scored over two chunks.
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    contexts = [scoring_context(text) for text in ("N/A", "", "[MASK]")]
    pairs = [(prompt, context) for context in contexts for prompt in trec_prompts()]
    pairs = pairs[5:] + pairs[:5]
    forwards = []
    handle = backend.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        scores = backend.score([p for p, _ in pairs], [c for _, c in pairs], continuations)
    finally:
        handle.remove()
    for (prompt, context), found in zip(pairs, scores, strict=True):
        expected = [brute_force_logprobs(model, tokenizer, prompt, context, c) for c in continuations]
        assert found == pytest.approx(expected, abs=1e-4)
    # The shared header once, then per chunk of 3 prompts: their prefill, the contexts, the multi-token labels.
    assert len(forwards) == 1 + 2 * 3
    assert backend.score([], [], continuations) == []


def test_generation_depends_on_each_prompts_seed_not_its_batch(tiny_lm_dir):
    prompts, seeds = trec_prompts(), [11, 12, 13, 14, 15]
    one = fp32_backend(tiny_lm_dir, batch_size=1).generate(prompts, seeds, SAMPLING)
    many = fp32_backend(tiny_lm_dir, batch_size=4).generate(prompts, seeds, SAMPLING)
    assert [c.text for c in one] == [c.text for c in many]
    other_seeds = fp32_backend(tiny_lm_dir, batch_size=4).generate(prompts, [21, 22, 23, 24, 25], SAMPLING)
    assert [c.text for c in other_seeds] != [c.text for c in many]


def test_generation_stops_at_the_end_of_the_line(backend):
    completions = backend.generate(trec_prompts(), [1, 2, 3, 4, 5], SAMPLING)
    for completion in completions:
        assert "\n" not in completion.text
        assert 1 <= completion.num_tokens <= SAMPLING.max_new_tokens


def test_greedy_generation_is_the_models_argmax(backend):
    prompt = trec_prompts()[0]
    text = backend.generate([prompt], [0], SamplingConfig(temperature=0, max_new_tokens=1))[0]
    ids = backend.tokenizer(prompt, return_tensors="pt")["input_ids"].to(backend.device)
    with torch.no_grad():
        best = int(backend.model(ids).logits[0, -1].argmax())
    assert backend.tokenizer.decode([best]).split("\n")[0] == text.text


def test_missing_pad_token_pads_with_eos(tiny_lm_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.pad_token = None
    backend = TransformersBackend(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tokenizer)
    assert backend.tokenizer.pad_token_id == tokenizer.eos_token_id


def test_a_model_passed_as_an_object_is_known_by_its_weights(tiny_lm_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    first, same = (TransformersBackend(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tokenizer)
                   for _ in range(2))
    assert first.identity == same.identity
    other = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    with torch.no_grad():
        next(other.parameters()).neg_()  # the same config, other weights
    assert TransformersBackend(other, tokenizer).identity != first.identity
    # An augmenter on it keeps its cache fingerprint through a run (which caches token ids and settles the
    # forward's cache argument), and a copy pickled for a map worker generates as the original does.
    from datasets.fingerprint import Hasher

    before = Hasher.hash(first)
    sampling = SamplingConfig(max_new_tokens=3)
    made = first.generate(["Review: good (Sentiment: positive)\nReview:"], [7], sampling)
    assert Hasher.hash(first) == before
    copy = pickle.loads(pickle.dumps(first))
    assert copy.identity == first.identity
    # A subclass's own attributes travel and count too.
    first.note, same.note = "a", "b"
    assert Hasher.hash(first) != Hasher.hash(same) and pickle.loads(pickle.dumps(first)).note == "a"
    assert copy.generate(["Review: good (Sentiment: positive)\nReview:"], [7], sampling) == made
    from gpt3mix_hf.hub.cards.common import model_description

    sha256 = first.identity["weights"]["sha256"]
    assert model_description(first.identity) == (
        f"a model passed to the transformers backend as an object, its weights' sha256 `{sha256[:16]}…`")


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


def test_a_forked_worker_of_a_backend_on_cuda_says_why_it_cannot_load(tiny_lm_dir, monkeypatch):
    from gpt3mix_hf.backends.local import transformers as engine

    # Seen on an H100: each `map(num_proc=2)` worker died re-initialising CUDA. Simulated: a worker (another pid)
    # of a parent that had set up CUDA, the model's device left to the default.
    saved = pickle.dumps(TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32"))
    monkeypatch.setattr(engine, "_IMPORTED_IN_PID", -1)
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)  # a worker's; not this test process's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    with pytest.raises(RuntimeError, match="a forked process cannot use CUDA: map with num_proc=None on a GPU"):
        pickle.loads(saved)
    # Loaded on the CPU, it goes to worker processes.
    on_cpu = pickle.dumps(TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32", device="cpu"))
    assert pickle.loads(on_cpu).device.type == "cpu"


def test_one_seed_per_prompt(backend):
    with pytest.raises(ValueError, match="one seed per prompt"):
        backend.generate(["a", "b"], [1], SAMPLING)


def test_bad_generate_and_score_arguments_say_what_is_wrong(backend):
    assert backend.generate([], [], SAMPLING) == []
    with pytest.raises(ValueError, match="A prompt is empty"):
        backend.generate(["a", ""], [1, 2], SAMPLING)
    with pytest.raises(ValueError, match="2 prompts but 3 contexts"):
        backend.score(["a", "b"], ["x", "y", "z"], [" good"])
    # An empty context would read the label's log-probability at a padding position.
    with pytest.raises(ValueError, match="The context '' has no tokens"):
        backend.score(["a", "b"], [" x", ""], [" good"])
    with pytest.raises(ValueError, match="The label continuation '' has no tokens"):
        backend.score(["a"], [" x"], [" good", ""])


@pytest.mark.parametrize("kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"max_new_tokens": 0}])
def test_bad_sampling(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)


# -- continuous batching ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uneven_backend_parts(tiny_lm_dir):
    """The tiny model with a bias that gives the line break ~10 % per step: rows end anywhere from their first
    token to the budget, so slots free up at very different times."""
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tokenizer.convert_tokens_to_ids("Ċ")] = 8.5
    model.lm_head = head
    return model, tokenizer


def uneven_prompts():
    # Prompts of very different lengths too: 2 to ~200 tokens.
    return [("word " * n).strip() + "\nItem:" for n in (1, 150, 7, 60, 3, 190, 25, 12, 90, 2, 40)]


def test_slots_refill_as_rows_end_and_texts_do_not_depend_on_slot_count(uneven_backend_parts, monkeypatch):
    model, tokenizer = uneven_backend_parts
    prompts, seeds = uneven_prompts(), list(range(100, 111))
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=30)
    results = {}
    original = prefill.prefill
    for slots in (1, 3, 16):
        backend = TransformersBackend(model, tokenizer, batch_size=slots)
        entered = []

        def spy(runner, indices, prompt_ids, shared=None, *, entered=entered):
            entered.append(list(indices))
            return original(runner, indices, prompt_ids, shared)

        monkeypatch.setattr(prefill, "prefill", spy)
        completions = backend.generate(prompts, seeds, sampling)
        results[slots] = completions
        assert sorted(i for group in entered for i in group) == list(range(len(prompts)))
        assert max(len(group) for group in entered) <= slots
        if slots == 3:
            # Prompts entered one or two at a time as slots freed, not in fixed groups of three.
            assert len(entered) > len(prompts) // 3 + 1
    lengths = [c.num_tokens for c in results[1]]
    assert min(lengths) <= 3 and max(lengths) >= 15, lengths
    for slots in (3, 16):
        assert [c.text for c in results[slots]] == [c.text for c in results[1]]
        assert [c.num_tokens for c in results[slots]] == lengths


def test_next_attempt_sees_final_completions_and_retries_in_the_rows_place(uneven_backend_parts):
    model, tokenizer = uneven_backend_parts
    backend = TransformersBackend(model, tokenizer, batch_size=4)
    prompts = trec_prompts() * 2  # one header: its key/values are shared
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    retried = (0, 3, 6)
    # A retry's prompt need not share the header (attempt 1) or may (attempt 2).
    attempts = {i: [(prompts[i], i), ("word " * (5 + i) + "\nItem:", 1000 + i),
                    (trec_prompts()[(i + 1) % 5], 2000 + i)] for i in retried}
    reported = []

    def next_attempt(index, completion):
        # Final when reported: label scores are in for every generation that parses.
        assert completion.label_logprobs is not None
        reported.append(index)
        attempt = reported.count(index)
        return attempts[index][attempt] if index in retried and attempt < 3 else None

    seeds = list(range(len(prompts)))
    folded = backend.generate_and_score(prompts, seeds, SAMPLING, scoring_context, continuations, next_attempt)
    assert sorted(reported) == sorted(list(range(len(prompts))) + [*retried, *retried])
    # Each row ends as its last attempt, generated alone, would: the same text and label scores.
    last = [attempts[i][-1] if i in retried else (prompts[i], i) for i in range(len(prompts))]
    alone = TransformersBackend(model, tokenizer, batch_size=1).generate_and_score(
        [p for p, _ in last], [seed for _, seed in last], SAMPLING, scoring_context, continuations)
    assert [c.text for c in folded] == [c.text for c in alone]
    for a, b in zip(folded, alone, strict=True):
        assert a.label_logprobs == pytest.approx(b.label_logprobs, abs=1e-4)


def test_soft_labels_do_not_depend_on_slot_count(uneven_backend_parts):
    model, tokenizer = uneven_backend_parts
    prompts = uneven_prompts()
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    runs = [TransformersBackend(model, tokenizer, batch_size=slots).generate_and_score(
        prompts, list(range(len(prompts))), SAMPLING, scoring_context, continuations) for slots in (1, 5)]
    assert [c.text for c in runs[0]] == [c.text for c in runs[1]]
    for one, many in zip(*runs, strict=True):
        assert many.label_logprobs == pytest.approx(one.label_logprobs, abs=1e-4)


def one_token_words(tokenizer, count):
    """`count` continuations (" word") that the tokenizer keeps as one token each."""
    words = [f" {w}" for w in ("the", "and", "of", "to", "in", "is", "it", "that")]
    words = [w for w in words if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]
    assert len(words) >= count
    return words[:count]


@pytest.mark.parametrize("written", [True, False])
def test_one_token_labels_are_read_from_the_decoding_where_the_row_wrote_the_context(uneven_backend_parts, written):
    # Where a row's tokens spell the scoring context and go on, its label scores come from the decode step after
    # them; elsewhere, from a scoring pass. Both equal one plain forward pass over prompt + context + label.
    model, tokenizer = uneven_backend_parts
    backend = TransformersBackend(model, tokenizer, batch_size=4)
    continuations = one_token_words(tokenizer, 3)
    prompts = uneven_prompts()

    def context(text):
        if not text:
            return None
        return text if written else "Item: " + text

    scored_by_pass = []
    score_prompt_caches = backend.label_scorer.score_prompt_caches

    def spy(items, labels):
        scored_by_pass.extend(index for index, *_ in items)
        return score_prompt_caches(items, labels)

    backend.label_scorer.score_prompt_caches = spy
    completions = backend.generate_and_score(prompts, list(range(len(prompts))), SAMPLING, context, continuations)
    with_context = [i for i, c in enumerate(completions) if context(c.text) is not None]
    assert len(with_context) >= 4
    for i in with_context:
        expected = [brute_force_logprobs(model, tokenizer, prompts[i], context(completions[i].text), c)
                    for c in continuations]
        assert completions[i].label_logprobs == pytest.approx(expected, abs=1e-4)
    if written:
        # Rows that ended at a line break wrote their text and then one token more: no scoring pass for them.
        read = [i for i in with_context if completions[i].num_tokens > len(backend.tokenize(completions[i].text))]
        assert read and not set(read) & set(scored_by_pass)
    else:
        assert sorted(scored_by_pass) == with_context


def test_length_groups_bound_the_padding_and_keep_every_row():
    lengths = [3, 150, 7, 60, 3, 190, 25, 12, 90, 2, 40, 61, 59]
    rows = [100 + i for i in range(len(lengths))]
    groups = prefill.length_groups(rows, lengths, padding=0.1)
    assert sorted(row for group in groups for row in group) == rows
    length_of = dict(zip(rows, lengths, strict=True))
    for group in groups:
        tokens = sum(length_of[row] for row in group)
        assert len(group) * max(length_of[row] for row in group) <= 1.1 * tokens
    assert [100 + 11, 100 + 3, 100 + 12] in groups  # 61, 60, 59: one group
    assert prefill.length_groups(rows, lengths, padding=float("inf")) == [sorted(
        rows, key=lambda row: -length_of[row])]


# -- dtype --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx", "avx2", "fma"}, False), ({"avx512f", "avx512_vnni"}, False), ({"avx512f", "avx512_bf16"}, True),
     ({"amx_tile", "amx_bf16"}, True)],
)
def test_bf16_matrix_support_is_read_from_the_cpu_flags(flags, expected):
    assert cpu_has_bf16_matmul(flags) is expected


def test_auto_dtype_follows_the_hardware(monkeypatch):
    monkeypatch.delenv(machine.AUTO_DTYPE_ENV, raising=False)
    monkeypatch.setattr(machine, "cpu_has_bf16_matmul", lambda flags=None: False)
    assert resolve_dtype("auto", "cpu") == torch.float32
    monkeypatch.setattr(machine, "cpu_has_bf16_matmul", lambda flags=None: True)
    assert resolve_dtype("auto", "cpu") == torch.bfloat16
    # A forced dtype wins over the hardware.
    assert resolve_dtype("float32", "cpu") == torch.float32
    assert resolve_dtype(torch.bfloat16, "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("fp8", "cpu")


def test_auto_dtype_can_be_forced_by_the_environment(monkeypatch):
    monkeypatch.setattr(machine, "cpu_has_bf16_matmul", lambda flags=None: False)
    monkeypatch.setenv(machine.AUTO_DTYPE_ENV, "bfloat16")
    assert resolve_dtype("auto", "cpu") == torch.bfloat16
    # Only "auto" follows it: a dtype the caller names stays what it is.
    assert resolve_dtype("float32", "cpu") == torch.float32
    monkeypatch.setenv(machine.AUTO_DTYPE_ENV, "bf16")
    with pytest.raises(ValueError, match="GPT3MIX_AUTO_DTYPE must be one of"):
        resolve_dtype("auto", "cpu")


def test_bfloat16_generation_scores_labels_in_float32(tiny_lm_dir):
    fp32 = fp32_backend(tiny_lm_dir, batch_size=4)
    bf16 = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="bfloat16", batch_size=4)
    assert bf16.model.dtype == torch.bfloat16 and bf16.identity["dtype"] == "bfloat16"
    assert bf16.identity["score_dtype"] == "float32" and "score_dtype" not in fp32.identity
    prompts = trec_prompts()
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    completions = bf16.generate_and_score(prompts, list(range(5)), SAMPLING, scoring_context, continuations)
    contexts = [scoring_context(c.text) for c in completions]
    # The float32 twin holds the float32 weights, not the bf16 ones cast back: the same scores as a float32
    # backend, to float32 round-off.
    reference = fp32.score(prompts, contexts, continuations)
    for completion, expected in zip(completions, reference, strict=True):
        assert completion.label_logprobs == pytest.approx(expected, abs=1e-5)
    for found, expected in zip(bf16.score(prompts, contexts, continuations), reference, strict=True):
        assert found == pytest.approx(expected, abs=1e-5)
    # Rebuilt from its identity (as regeneration does), it scores in float32 again.
    assert TransformersBackend.from_identity(bf16.identity).identity == bf16.identity


def test_bfloat16_scores_at_the_models_dtype_agree_with_float32_to_round_off(tiny_lm_dir):
    fp32 = fp32_backend(tiny_lm_dir, batch_size=4)
    bf16 = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="bfloat16", batch_size=4, score_dtype=None)
    assert "score_dtype" not in bf16.identity
    prompts = trec_prompts()
    continuations = PromptTemplate().scoring_parts(TREC, TREC_NAMES, "")[1]
    completions = bf16.generate_and_score(prompts, list(range(5)), SAMPLING, scoring_context, continuations)
    contexts = [scoring_context(c.text) for c in completions]
    reference = fp32.score(prompts, contexts, continuations)
    for completion, expected in zip(completions, reference, strict=True):
        soft = torch.softmax(torch.tensor(completion.label_logprobs), -1)
        assert torch.allclose(soft, torch.softmax(torch.tensor(expected), -1), atol=0.02)
        assert completion.label_logprobs != pytest.approx(expected, abs=1e-7)  # really computed in bf16
    with pytest.raises(ValueError, match="score_dtype must be"):
        TransformersBackend(bf16.model, bf16.tokenizer, score_dtype="bfloat16")


def test_line_break_table_is_built_once_per_tokenizer(tiny_lm_dir):
    first = TransformersBackend.from_pretrained(str(tiny_lm_dir))
    second = TransformersBackend.from_pretrained(str(tiny_lm_dir))
    assert line_break_table(first.tokenizer) is line_break_table(second.tokenizer)
    table = first.line_break_tokens
    assert table[first.tokenizer.convert_tokens_to_ids("Ċ")] and table[first.tokenizer.eos_token_id]
    assert not table[first.tokenizer.convert_tokens_to_ids("Hello")]
    assert len(table) >= first.model.config.vocab_size


def test_generation_ends_at_every_end_id_of_the_generation_config(tiny_lm_dir):
    # Llama 3 ends a turn with <|eot_id|>, which is not its tokenizer's EOS: generate() and servers stop there.
    sampling = SamplingConfig(max_new_tokens=8)
    plain = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32")
    (completion,) = plain.generate(["Review: a film"], [3], sampling)
    first = plain.tokenizer(completion.text, add_special_tokens=False)["input_ids"][0]
    assert completion.num_tokens > 1 and not plain.line_break_tokens[first]
    ending = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32")
    ending.model.generation_config.eos_token_id = [ending.tokenizer.eos_token_id, first]
    (stopped,) = ending.generate(["Review: a film"], [3], sampling)
    assert stopped.num_tokens == 1 and ending.line_break_tokens[first]
    assert not line_break_table(ending.tokenizer)[first]  # the tokenizer's shared table is left as it was


def test_shared_header_is_run_once_and_gives_the_same_cache_and_logits(backend):
    prompts = trec_prompts()
    ids = backend.tokenizer(prompts)["input_ids"]
    shared = prefill.shared_prefix(backend.runner, ids)
    assert shared is not None and len(shared[0]) >= 8
    assert all(row[: len(shared[0])] == shared[0] for row in ids)
    with torch.inference_mode():
        plain = prefill.prefill(backend.runner, list(range(5)), ids)
        reused = prefill.prefill(backend.runner, list(range(5)), ids, shared)
    assert torch.equal(plain.mask, reused.mask)
    torch.testing.assert_close(reused.logits, plain.logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(plain.cache.layers, reused.cache.layers, strict=True):
        real = plain.mask.bool()[:, None, :, None].expand_as(a.keys)
        torch.testing.assert_close(b.keys[real], a.keys[real], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b.values[real], a.values[real], atol=1e-5, rtol=1e-5)
    # Prompts with nothing in common, or a single prompt, run whole.
    assert prefill.shared_prefix(backend.runner, ids[:1]) is None
    assert prefill.shared_prefix(backend.runner, [[1, 2, 3] * 5, [4, 5, 6] * 5]) is None
