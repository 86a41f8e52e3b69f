"""Sampling layer: cached == uncached decoding, padding, seeds, CFG, top-k/top-p, text and beam search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lvg.sampling import (
    SamplingError,
    decode_one_token,
    extend_mask,
    generate_image_tokens,
    generate_text,
    logits_to_probs,
    prefill,
    sample,
)
from lvg.sampling.generate import _beam_search, _Hypotheses

VOCAB = 64
RANGE = (20, 60)  # image-token ids of the toy vocabulary
EOS = 3


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.2,  # peakier next-token distributions than the default 0.02: clear argmax margins
    )
    return LlamaForCausalLM(config).eval()


PROMPTS = [[1, 5, 9, 13, 17, 2], [1, 7, 2], [1, 11, 12, 2, 4], [1, 30]]


def batch(prompts: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists -> ids, mask [B, T]."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def image(model, prompts, num_tokens=12, **kw) -> torch.Tensor:
    ids, mask = batch(prompts)
    return generate_image_tokens(model, ids, mask, num_tokens, RANGE, **kw)


# --- logits -> probabilities -> tokens ---------------------------------------------------------


def test_top_p_keeps_smallest_set_reaching_p():
    logits = torch.tensor([[0.5, 0.25, 0.15, 0.1]]).log()
    probs = logits_to_probs(logits, top_p=0.7)  # 0.5 < 0.7 <= 0.5 + 0.25: keep two tokens
    torch.testing.assert_close(probs, torch.tensor([[2 / 3, 1 / 3, 0.0, 0.0]]))
    probs = logits_to_probs(logits, top_p=0.3)  # the top token alone reaches 0.3
    torch.testing.assert_close(probs, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    probs = logits_to_probs(logits, top_p=0.95)
    torch.testing.assert_close(probs, torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    # order in the vocabulary does not matter, rows are independent, every row sums to 1
    shuffled = torch.tensor([[0.1, 0.15, 0.5, 0.25], [0.25, 0.25, 0.25, 0.25]]).log()
    probs = logits_to_probs(shuffled, top_p=0.7)
    torch.testing.assert_close(probs[0], torch.tensor([0.0, 0.0, 2 / 3, 1 / 3]))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))


def test_top_k_and_temperature():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0]])
    probs = logits_to_probs(logits, top_k=2)
    expected = torch.softmax(torch.tensor([2.0, 1.0]), -1)
    torch.testing.assert_close(probs, torch.tensor([[expected[0], 0.0, expected[1], 0.0]]))
    torch.testing.assert_close(logits_to_probs(logits, temperature=2.0), torch.softmax(logits / 2, -1))
    torch.testing.assert_close(logits_to_probs(logits, top_k=100), torch.softmax(logits, -1))  # k >= V: off
    masked = torch.tensor([[0.0, float("-inf"), 0.0, float("-inf")]])
    torch.testing.assert_close(logits_to_probs(masked, top_p=0.9), torch.tensor([[0.5, 0.0, 0.5, 0.0]]))


def test_sample_greedy_and_per_row_generators():
    torch.manual_seed(1)
    logits = torch.randn(3, 10)
    assert sample(logits, None, temperature=0.0).tolist() == logits.argmax(-1).tolist()
    assert sample(logits, gens(0, 1, 2), top_k=1).tolist() == logits.argmax(-1).tolist()
    # row 1's draw only depends on row 1's logits and generator
    full = sample(logits, gens(5, 6, 7), temperature=1.5)
    alone = sample(logits[1:2], gens(6), temperature=1.5)
    assert full[1] == alone[0]
    assert sample(logits, gens(5, 6, 7), temperature=1.5).tolist() == full.tolist()


def test_sample_frequencies_and_zero_probability():
    probs = torch.tensor([0.5, 0.0, 0.3, 0.2])
    logits = probs.log().expand(20000, 4)  # one row per draw, global RNG
    torch.manual_seed(0)
    counts = torch.bincount(sample(logits, None), minlength=4).float() / 20000
    assert counts[1] == 0
    torch.testing.assert_close(counts, probs, atol=0.02, rtol=0)


# --- image tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [dict(temperature=0.0), dict(temperature=1.0), dict(temperature=0.8, top_k=10, top_p=0.9)],
    ids=["greedy", "sampled", "top-k-top-p"],
)
def test_cached_equals_uncached(model, kw):
    cached = image(model, PROMPTS, generators=gens(0, 1, 2, 3), **kw)
    uncached = image(model, PROMPTS, generators=gens(0, 1, 2, 3), use_cache=False, **kw)
    assert cached.shape == (4, 12)
    assert cached.tolist() == uncached.tolist()


def test_cached_equals_uncached_with_guidance(model):
    uncond = [[1, 2], [1, 2], [1, 2], [1, 2]]
    ids_u, mask_u = batch(uncond)
    kw = dict(guidance_scale=3.0, uncond_input_ids=ids_u, uncond_attention_mask=mask_u, temperature=1.0)
    cached = image(model, PROMPTS, generators=gens(0, 1, 2, 3), **kw)
    uncached = image(model, PROMPTS, generators=gens(0, 1, 2, 3), use_cache=False, **kw)
    assert cached.tolist() == uncached.tolist()


def test_prefill_positions_follow_the_mask(model):
    ids, mask = batch(PROMPTS)
    logits, cache, pos = prefill(model, ids, mask)
    assert logits.shape == (4, VOCAB) and logits.dtype == torch.float32
    assert pos.tolist() == [len(p) - 1 for p in PROMPTS]  # padding does not count
    assert cache.get_seq_length() == ids.shape[1]
    with torch.no_grad():  # last-token logits of each prompt run alone, unpadded
        alone = torch.stack([model(input_ids=torch.tensor([p])).logits[0, -1] for p in PROMPTS])
    torch.testing.assert_close(logits, alone, atol=1e-5, rtol=0)


def test_guidance_one_is_plain_conditional_sampling(model):
    """guidance_scale=1 equals a hand-written prefill/decode/sample loop over the conditional prompts."""
    ids, mask = batch(PROMPTS)
    got = generate_image_tokens(model, ids, mask, 8, RANGE, guidance_scale=1.0, top_k=20, generators=gens(0, 1, 2, 3))
    generators = gens(0, 1, 2, 3)
    logits, cache, pos = prefill(model, ids, mask)
    tokens = []
    for _ in range(8):
        tok = sample(logits[:, RANGE[0] : RANGE[1]], generators, top_k=20) + RANGE[0]
        tokens.append(tok)
        mask, pos = extend_mask(mask), pos + 1
        logits = decode_one_token(model, tok, pos, mask, cache)
    assert got.tolist() == torch.stack(tokens, 1).tolist()


def test_same_seeds_reproduce(model):
    a = image(model, PROMPTS, temperature=1.0, generators=gens(0, 1, 2, 3))
    b = image(model, PROMPTS, temperature=1.0, generators=gens(0, 1, 2, 3))
    c = image(model, PROMPTS, temperature=1.0, generators=gens(10, 11, 12, 13))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_row_independent_of_batch_and_padding(model, temperature):
    """A prompt alone (no padding) and inside a left-padded batch with other prompts gives the same tokens."""
    batched = image(model, PROMPTS, temperature=temperature, generators=gens(0, 1, 2, 3))
    for i, prompt in enumerate(PROMPTS):
        alone = image(model, [prompt], temperature=temperature, generators=gens(i))
        assert alone[0].tolist() == batched[i].tolist(), f"row {i}"
    # the same prompt twice, in different company and padding, with the same seed
    other = image(
        model, [[1, 40, 41, 42, 43, 44, 45, 46, 2], PROMPTS[1]], temperature=temperature, generators=gens(9, 1)
    )
    assert other[1].tolist() == batched[1].tolist()


def test_guidance_row_independent(model):
    uncond = [[1, 2]] * 4
    ids_u, mask_u = batch(uncond)
    kw = dict(guidance_scale=2.5, temperature=1.0)
    batched = image(
        model, PROMPTS, uncond_input_ids=ids_u, uncond_attention_mask=mask_u, generators=gens(0, 1, 2, 3), **kw
    )
    ids_u1, mask_u1 = batch(uncond[:1])
    alone = image(model, PROMPTS[2:3], uncond_input_ids=ids_u1, uncond_attention_mask=mask_u1, generators=gens(2), **kw)
    assert alone[0].tolist() == batched[2].tolist()


def test_guidance_zero_samples_from_uncond(model):
    uncond = [[1, 2], [1, 8, 2], [1, 2], [1, 9, 10, 11, 12, 13, 14, 2]]  # longer than some prompts, too
    ids_u, mask_u = batch(uncond)
    kw = dict(temperature=1.0, top_k=30)
    guided = image(
        model,
        PROMPTS,
        guidance_scale=0.0,
        uncond_input_ids=ids_u,
        uncond_attention_mask=mask_u,
        generators=gens(0, 1, 2, 3),
        **kw,
    )
    plain = image(model, uncond, generators=gens(0, 1, 2, 3), **kw)
    assert guided.tolist() == plain.tolist()


def test_ids_within_range(model):
    ids_u, mask_u = batch([[1, 2]] * 4)
    for kw in [
        dict(temperature=5.0),
        dict(temperature=0.0),
        dict(temperature=5.0, guidance_scale=4.0, uncond_input_ids=ids_u, uncond_attention_mask=mask_u),
    ]:
        torch.manual_seed(0)
        out = image(model, PROMPTS, num_tokens=40, **kw)
        assert out.dtype == torch.long and out.shape == (4, 40)
        assert int(out.min()) >= RANGE[0] and int(out.max()) < RANGE[1]
    narrow = generate_image_tokens(model, *batch(PROMPTS), 5, (7, 8), temperature=1.0)
    assert narrow.unique().tolist() == [7]


def test_top_k_one_is_greedy(model):
    greedy = image(model, PROMPTS, temperature=0.0)
    assert image(model, PROMPTS, temperature=1.3, top_k=1, generators=gens(0, 1, 2, 3)).tolist() == greedy.tolist()


def test_image_argument_errors(model):
    ids, mask = batch(PROMPTS)
    ids_u, mask_u = batch([[1, 2]] * 4)
    cases = {
        "guidance_scale": dict(guidance_scale=-1.0, uncond_input_ids=ids_u, uncond_attention_mask=mask_u),
        "top_p": dict(top_p=0.0),
        "top_k": dict(top_k=-1),
        "temperature": dict(temperature=-0.5),
        "num_tokens": dict(num_tokens=0),
        "token_range": dict(token_range=(10, VOCAB + 1)),
        "uncond_input_ids": dict(guidance_scale=2.0),  # guidance without an unconditional prompt
        "generators": dict(generators=gens(0)),
    }
    for name, bad in cases.items():
        kw = dict(num_tokens=4, token_range=RANGE) | bad
        with pytest.raises(ValueError, match=name):
            generate_image_tokens(model, ids, mask, **kw)
    for bad_range in [(30, 30), (-1, 10), (50, 40)]:
        with pytest.raises(ValueError, match="token_range"):
            generate_image_tokens(model, ids, mask, 4, bad_range)
    with pytest.raises(ValueError, match="guidance_scale=1"):  # an unconditional prompt without guidance
        generate_image_tokens(model, ids, mask, 4, RANGE, uncond_input_ids=ids_u, uncond_attention_mask=mask_u)
    right_padded = mask.flip(-1)
    with pytest.raises(ValueError, match="left-padded"):
        generate_image_tokens(model, ids, right_padded, 4, RANGE)
    with pytest.raises(SamplingError):
        logits_to_probs(torch.zeros(1, 4), temperature=0.0)


# --- text ----------------------------------------------------------------------------------------


def all_allowed() -> torch.Tensor:
    return torch.ones(VOCAB, dtype=torch.bool)


def text(model, prompts, max_new_tokens=10, allowed=None, eos_id=EOS, **kw) -> list[list[int]]:
    ids, mask = batch(prompts)
    allowed = all_allowed() if allowed is None else allowed
    return generate_text(model, ids, mask, max_new_tokens, allowed, eos_id, **kw)


def seq_logprob(model, prompt: list[int], out: list[int], max_new_tokens: int, allowed: torch.Tensor) -> float:
    """Sum log-prob of ``out`` (+ the eos if it stopped early), renormalised over ``allowed``, by one full forward."""
    cont = out + [EOS] if len(out) < max_new_tokens else out
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
    logp = torch.log_softmax(logits.masked_fill(~allowed, float("-inf")), -1)
    return float(logp[torch.arange(len(cont)), torch.tensor(cont)].sum())


def test_text_respects_allowed_ids_and_eos(model):
    allowed = torch.zeros(VOCAB, dtype=torch.bool)
    allowed[[EOS, 4, 9, 17, 33, 50]] = True
    for kw in [dict(), dict(temperature=2.0, generators=gens(0, 1, 2, 3)), dict(num_beams=3)]:
        for row in text(model, PROMPTS, max_new_tokens=15, allowed=allowed, **kw):
            assert len(row) <= 15 and EOS not in row
            assert all(allowed[t] for t in row)
    # stop at eos: make the third greedy token of a prompt the eos and the output ends before it
    free = text(model, PROMPTS, max_new_tokens=8, eos_id=0)
    checked = 0
    for prompt, row in zip(PROMPTS, free):
        eos = row[2]
        if eos in row[:2]:
            continue
        assert text(model, [prompt], max_new_tokens=8, eos_id=eos) == [row[:2]]
        checked += 1
    assert checked >= 2


def test_text_greedy_left_padding_and_sampling_seeds(model):
    batched = text(model, PROMPTS)
    for i, prompt in enumerate(PROMPTS):
        assert text(model, [prompt]) == [batched[i]]
    a = text(model, PROMPTS, temperature=1.0, generators=gens(0, 1, 2, 3))
    assert a == text(model, PROMPTS, temperature=1.0, generators=gens(0, 1, 2, 3))
    assert text(model, PROMPTS[3:], temperature=1.0, generators=gens(3)) == a[3:]


def test_beam_one_equals_greedy(model):
    allowed = all_allowed()
    ids, mask = batch(PROMPTS)
    greedy = text(model, PROMPTS, max_new_tokens=12)
    assert text(model, PROMPTS, max_new_tokens=12, num_beams=1) == greedy
    # the beam-search code path itself, with one beam and no length normalisation, is greedy too
    assert _beam_search(model, ids, mask, 12, allowed, EOS, num_beams=1, length_penalty=0.0) == greedy
    eos = greedy[0][1]  # make it stop early
    assert _beam_search(model, ids[:1], mask[:1], 12, allowed, eos, 1, 0.0) == text(model, PROMPTS[:1], 12, eos_id=eos)


def test_beam_search_beats_greedy(model):
    allowed = torch.zeros(VOCAB, dtype=torch.bool)
    allowed[EOS] = True
    allowed[20:40] = True
    n = 8
    greedy = text(model, PROMPTS, max_new_tokens=n, allowed=allowed)
    beams = text(model, PROMPTS, max_new_tokens=n, allowed=allowed, num_beams=4, length_penalty=0.0)
    for prompt, g, b in zip(PROMPTS, greedy, beams):
        assert seq_logprob(model, prompt, b, n, allowed) >= seq_logprob(model, prompt, g, n, allowed) - 1e-4
    # rows do not interact: each prompt alone gives the same best hypothesis
    for i, prompt in enumerate(PROMPTS):
        assert text(model, [prompt], max_new_tokens=n, allowed=allowed, num_beams=4, length_penalty=0.0) == [beams[i]]


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, -0.5])
def test_wide_beam_search_is_exhaustive(model, length_penalty):
    """With more beams than hypotheses, beam search returns the exhaustive optimum of the scoring rule."""
    allowed = torch.zeros(VOCAB, dtype=torch.bool)
    allowed[[EOS, 21, 22, 23]] = True
    n, prompt = 3, PROMPTS[0]
    best, best_score = None, -math.inf
    for length in range(n + 1):
        for body in itertools.product([21, 22, 23], repeat=length):
            if length == n:
                cont, full = list(body), n
            else:
                cont, full = list(body), length + 1  # ends with eos
            s = seq_logprob(model, prompt, cont, n, allowed) / full**length_penalty
            if s > best_score:
                best, best_score = cont, s
    got = text(model, [prompt], max_new_tokens=n, allowed=allowed, num_beams=40, length_penalty=length_penalty)
    assert got == [best]  # 40 = every hypothesis (27 without eos, 13 with): nothing is ever pruned


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0, -0.5])
def test_beam_early_stopping_changes_nothing(model, monkeypatch, length_penalty):
    """Stopping a prompt once no running beam can enter its finished list gives what running on would."""
    allowed = torch.zeros(VOCAB, dtype=torch.bool)
    allowed[[EOS, 21, 22, 23, 24]] = True
    stops = []
    done = _Hypotheses.done

    def spy(self, *args):
        stops.append(done(self, *args))
        return stops[-1]

    for eos in (21, 22):  # tokens this toy model likes, so hypotheses finish and prompts stop early
        kw = dict(max_new_tokens=10, allowed=allowed, eos_id=eos, num_beams=3, length_penalty=length_penalty)
        monkeypatch.setattr(_Hypotheses, "done", spy)
        early = text(model, PROMPTS, **kw)
        monkeypatch.setattr(_Hypotheses, "done", lambda self, *args: False)
        assert text(model, PROMPTS, **kw) == early
    assert any(stops)  # the early stop did happen


def test_text_argument_errors(model):
    ids, mask = batch(PROMPTS)
    allowed = all_allowed()
    no_eos = allowed.clone()
    no_eos[EOS] = False
    cases = {
        "max_new_tokens": dict(max_new_tokens=0),
        "allowed_ids": dict(allowed_ids=allowed[:10]),
        "eos_id": dict(allowed_ids=no_eos),
        "num_beams": dict(num_beams=0),
        "temperature": dict(num_beams=2, temperature=1.0),
    }
    for name, bad in cases.items():
        kw = dict(max_new_tokens=5, allowed_ids=allowed, eos_id=EOS) | bad
        with pytest.raises(ValueError, match=name):
            generate_text(model, ids, mask, **kw)
