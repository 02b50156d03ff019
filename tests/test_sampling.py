import numpy as np
import pytest
import torch
from scipy import stats

from gpt3mix_hf.backends.local.sampling import counter_uniforms, nucleus_candidates, race_noise, sample_tokens


def full_sort_nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The nucleus as a full sort defines it (the sampler this project had before): probabilities with the
    tokens outside it set to 0."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    drop = sorted_probs.double().cumsum(-1) - sorted_probs.double() >= top_p
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))


def test_uniforms_depend_on_seed_and_step_only():
    seeds, steps = [3, 2**63 - 1, 3, 0, 12345], [0, 5, 1, 0, 7]
    together = counter_uniforms(seeds, steps)
    alone = torch.cat([counter_uniforms([s], [t]) for s, t in zip(seeds, steps, strict=True)])
    assert torch.equal(together, alone)
    assert torch.equal(counter_uniforms(seeds[::-1], steps[::-1]), together.flip(0))
    assert len(set(together.tolist())) == len(seeds)
    assert together.dtype == torch.float64 and bool(((together >= 0) & (together < 1)).all())


def test_uniforms_are_uniform_across_seeds_and_steps():
    # Neighbouring seeds and steps, where a weak mixer would show structure.
    seeds = np.repeat(np.arange(2000), 10)
    steps = np.tile(np.arange(10), 2000)
    values = counter_uniforms(seeds.tolist(), steps.tolist()).numpy()
    assert stats.kstest(values, "uniform").pvalue > 1e-3
    # Consecutive steps of one seed are not correlated.
    grid = values.reshape(2000, 10)
    assert abs(np.corrcoef(grid[:, 0], grid[:, 1])[0, 1]) < 0.1


def test_one_step_per_seed():
    with pytest.raises(ValueError, match="one step per seed"):
        counter_uniforms([1, 2], [0])


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("sharpness", [0.1, 1.0, 4.0])
def test_nucleus_without_full_sort_equals_the_full_sort(top_p, sharpness):
    generator = torch.Generator().manual_seed(int(top_p * 1000) + int(sharpness * 10))
    # 5,000 tokens: a flat distribution needs the candidate set to grow several times.
    probs = torch.softmax(sharpness * torch.randn(6, 5000, generator=generator), dim=-1)
    candidate_probs, candidate_ids = nucleus_candidates(probs, top_p)
    # Rows that needed fewer candidates are padded with probability 0: adding them in changes nothing.
    rebuilt = torch.zeros_like(probs).scatter_add(-1, candidate_ids, candidate_probs)
    assert torch.equal(rebuilt, full_sort_nucleus(probs, top_p))


@pytest.mark.parametrize("top_p", [0.9, 0.95])
def test_rows_grow_their_candidates_on_their_own(top_p):
    # Peaked and flat rows in one batch: each row's nucleus is still the full sort's, and the peaked rows' own
    # candidates are padded rather than grown to the flat rows' size.
    generator = torch.Generator().manual_seed(7)
    sharpness = torch.tensor([8.0, 0.1, 4.0, 1.0, 16.0, 0.5])[:, None]
    probs = torch.softmax(sharpness * torch.randn(6, 5000, generator=generator), dim=-1)
    candidate_probs, candidate_ids = nucleus_candidates(probs, top_p)
    rebuilt = torch.zeros_like(probs).scatter_add(-1, candidate_ids, candidate_probs)
    assert torch.equal(rebuilt, full_sort_nucleus(probs, top_p))
    assert candidate_probs.shape[1] == 5000  # the flattest row needed a full sort
    assert int((candidate_ids[4] != 0).sum()) <= 64  # the most peaked row stopped at the first candidate set


def draws_with_counter_sampler(logits, temperature, top_p, rows, step=0):
    return sample_tokens(logits.expand(rows, -1), list(range(rows)), [step] * rows, temperature, top_p)


def homogeneity_pvalue(first: torch.Tensor, second: torch.Tensor, vocab: int) -> float:
    """Chi-square test that two samples of tokens come from one distribution (cells with no draws dropped)."""
    table = np.stack([np.bincount(first.numpy(), minlength=vocab), np.bincount(second.numpy(), minlength=vocab)])
    return stats.chi2_contingency(table[:, table.sum(0) > 0]).pvalue


@pytest.mark.parametrize("case", range(6))
def test_sampler_matches_torch_multinomial_in_distribution(case):
    generator = torch.Generator().manual_seed(case)
    vocab, rows = 40, 20_000
    logits = 2.0 * torch.randn(1, vocab, generator=generator)
    temperature, top_p = [(1.0, 1.0), (1.0, 0.9), (0.7, 0.95), (1.3, 0.8), (1.0, 0.5), (2.0, 1.0)][case]
    ours = draws_with_counter_sampler(logits, temperature, top_p, rows, step=case)
    reference_probs = full_sort_nucleus(torch.softmax(logits / temperature, dim=-1), top_p)[0]
    theirs = torch.multinomial(reference_probs, rows, replacement=True, generator=generator)
    assert set(ours.tolist()) <= set(torch.nonzero(reference_probs).flatten().tolist())
    assert homogeneity_pvalue(ours, theirs, vocab) > 1e-4
    # The test has power: the same comparison against a wrong temperature fails clearly.
    wrong = draws_with_counter_sampler(logits, temperature * 1.5, top_p, rows, step=case)
    assert homogeneity_pvalue(wrong, theirs, vocab) < 1e-6


def test_each_row_draws_from_its_own_logits():
    logits = torch.full((3, 10), -1e4)
    logits[0, 2] = logits[1, 7] = logits[2, 4] = 0.0
    tokens = sample_tokens(logits, [1, 2, 3], [0, 0, 0], 1.0, 0.9)
    assert tokens.tolist() == [2, 7, 4]


def test_greedy_is_argmax_and_bf16_logits_are_accepted():
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    seeds, steps = [0, 1, 2, 3], [0, 0, 0, 0]
    assert torch.equal(sample_tokens(logits, seeds, steps, temperature=0), logits.argmax(-1))
    # Logits a bf16 model can hold exactly (small integers) draw the same tokens as in float32.
    exact = torch.randint(-8, 8, (4, 100), generator=torch.Generator().manual_seed(1)).float()
    assert torch.equal(sample_tokens(exact.bfloat16(), seeds, steps, 1.0, 0.9),
                       sample_tokens(exact, seeds, steps, 1.0, 0.9))


@pytest.mark.parametrize("kwargs", [{"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.2}])
def test_bad_sampling_settings(kwargs):
    with pytest.raises(ValueError):
        sample_tokens(torch.zeros(2, 5), [0, 1], [0, 0], **kwargs)


def test_one_seed_and_step_per_row():
    with pytest.raises(ValueError, match="one seed and one step per row"):
        sample_tokens(torch.zeros(2, 5), [0, 1, 2], [0, 0, 0])


def test_race_noise_of_a_token_does_not_depend_on_the_other_candidates():
    ids = torch.tensor([[5, 9, 2], [9, 5, 7]])
    noise = race_noise([1, 1], [4, 4], ids)
    assert noise[0, 0] == noise[1, 1] and noise[0, 1] == noise[1, 0]
    assert race_noise([1], [5], ids[:1])[0, 0] != noise[0, 0]
    many = race_noise(list(range(20_000)), [0] * 20_000, torch.zeros(20_000, 1, dtype=torch.long))
    assert stats.kstest(many.flatten().numpy(), "expon").pvalue > 1e-3


@pytest.mark.parametrize("top_p", [1.0, 0.95])
def test_round_off_in_the_logits_rarely_moves_a_draw(top_p):
    # A nearly flat distribution over 5,000 tokens: the nucleus boundary and the order of the tokens are at
    # the mercy of round-off, as with a random model. Draws must still follow the seeds, not the round-off.
    generator = torch.Generator().manual_seed(1)
    logits = 0.01 * torch.randn(2000, 5000, generator=generator)
    nudged = logits + 1e-6 * torch.randn(logits.shape, generator=generator)
    seeds, steps = list(range(2000)), [3] * 2000
    moved = (sample_tokens(logits, seeds, steps, 1.0, top_p) != sample_tokens(nudged, seeds, steps, 1.0, top_p))
    assert float(moved.float().mean()) < 0.005
