"""Generation loops: image tokens (with classifier-free guidance) and text (greedy, sampled, beam search).

Each loop is prefill + one :func:`decode_one_token` per new token, with the KV cache as the only
state; ``use_cache=False`` in :func:`generate_image_tokens` recomputes the whole sequence every step
(the reference the cached path is tested against). See :mod:`lvg.sampling.decode` for the padding
and position conventions.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch

from lvg.models.padding import left_pad
from lvg.sampling.config import check_value
from lvg.sampling.decode import (
    _model_vocab_size,
    check_prompt,
    decode_one_token,
    extend_mask,
    forward_last,
    prefill,
)
from lvg.sampling.sample import SamplingError, check_sampling_args, sample_unchecked

NEG_INF = float("-inf")


def left_pad_concat(
    ids_a: torch.Tensor, mask_a: torch.Tensor, ids_b: torch.Tensor, mask_b: torch.Tensor, pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack two left-padded batches [Ba, Ta] and [Bb, Tb] -> ids, mask [Ba + Bb, max(Ta, Tb)] (long)."""
    return left_pad([*ids_a, *ids_b], pad_id, max(ids_a.shape[1], ids_b.shape[1]), masks=[*mask_a, *mask_b])


def _as_int(x: Any) -> int | None:
    """``x`` as a Python int when it is an integer (int, numpy or 0-d torch integer), else None."""
    try:
        return operator.index(x)
    except TypeError:
        return None


def _check_generators(generators: list[torch.Generator] | None, batch: int) -> None:
    if generators is not None and len(generators) != batch:
        raise SamplingError(f"generators must hold one torch.Generator per prompt ({batch}), got {len(generators)}")


def _check_image_args(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    num_tokens: int,
    token_range: tuple[int, int],
    guidance_scale: float,
    uncond_input_ids: torch.Tensor | None,
    uncond_attention_mask: torch.Tensor | None,
    temperature: float,
    top_k: int,
    top_p: float,
    generators: list[torch.Generator] | None,
) -> None:
    check_prompt(input_ids, attention_mask)
    if not (isinstance(num_tokens, int) and num_tokens >= 1):
        raise SamplingError(f"num_tokens must be an integer >= 1, got {num_tokens}")
    check_value("guidance_scale", guidance_scale, SamplingError)
    check_sampling_args(temperature, top_k, top_p)
    if not (isinstance(token_range, tuple | list) and len(token_range) == 2):
        raise SamplingError(f"token_range must be a pair (lo, hi), got {token_range!r}")
    lo, hi = (_as_int(x) for x in token_range)
    vocab = _model_vocab_size(model)
    if not (lo is not None and hi is not None and 0 <= lo < hi and (vocab is None or hi <= vocab)):
        raise SamplingError(f"token_range must satisfy 0 <= lo < hi <= vocab size ({vocab}), got {token_range!r}")
    has_uncond = uncond_input_ids is not None or uncond_attention_mask is not None
    if guidance_scale != 1 and not has_uncond:
        raise SamplingError(
            f"guidance_scale={guidance_scale} needs uncond_input_ids and uncond_attention_mask "
            "(classifier-free guidance); pass guidance_scale=1 for plain conditional sampling"
        )
    if guidance_scale == 1 and has_uncond:
        raise SamplingError(
            "uncond_input_ids/uncond_attention_mask were given but guidance_scale=1 means no guidance; "
            "pass them only with guidance_scale != 1"
        )
    if has_uncond:
        if uncond_input_ids is None or uncond_attention_mask is None:
            raise SamplingError("uncond_input_ids and uncond_attention_mask must be given together")
        check_prompt(uncond_input_ids, uncond_attention_mask, name="uncond_input_ids")
        if uncond_input_ids.shape[0] != input_ids.shape[0]:
            raise SamplingError(
                f"uncond_input_ids must have one row per prompt ({input_ids.shape[0]}), got {uncond_input_ids.shape[0]}"
            )
    _check_generators(generators, input_ids.shape[0])


@torch.no_grad()
def generate_image_tokens(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    num_tokens: int,
    token_range: tuple[int, int],
    guidance_scale: float = 1.0,
    uncond_input_ids: torch.Tensor | None = None,
    uncond_attention_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generators: list[torch.Generator] | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Sample ``num_tokens`` image tokens after each left-padded prompt [B, T] -> LongTensor [B, num_tokens].

    Every id lies in ``token_range = (lo, hi)`` (half-open): logits outside it are never considered.
    ``guidance_scale != 1`` turns on classifier-free guidance: the prompts and the unconditional prompts
    (``uncond_input_ids`` / ``uncond_attention_mask`` [B, T_u], required then and only then) run as one
    batch of 2B, the guided logits over the range are ``uncond + g * (cond - uncond)``, and the sampled
    token is appended to both halves. ``guidance_scale == 1`` runs the conditional rows alone.
    ``temperature == 0`` is greedy; row i draws only from ``generators[i]`` (global RNG if None).
    ``use_cache=False`` recomputes the whole sequence at every step (slow reference path).
    """
    _check_image_args(
        model,
        input_ids,
        attention_mask,
        num_tokens,
        token_range,
        guidance_scale,
        uncond_input_ids,
        uncond_attention_mask,
        temperature,
        top_k,
        top_p,
        generators,
    )
    lo, hi = (operator.index(x) for x in token_range)
    guided = guidance_scale != 1
    if guided:
        ids, mask = left_pad_concat(input_ids, attention_mask, uncond_input_ids, uncond_attention_mask)  # [2B, T]
    else:
        ids, mask = input_ids, attention_mask.long()  # [B, T]

    def pick(logits: torch.Tensor) -> torch.Tensor:  # logits [B or 2B, V] -> token ids [B]
        if logits.shape[-1] < hi:
            raise SamplingError(f"token_range {token_range!r} exceeds the model's vocabulary ({logits.shape[-1]})")
        logits = logits[:, lo:hi]  # only the allowed range: everything outside it is -inf
        if guided:
            cond, uncond = logits.chunk(2)  # [B, hi - lo] each
            logits = uncond + guidance_scale * (cond - uncond)
        return sample_unchecked(logits, generators, temperature, top_k, top_p) + lo  # [B]

    tokens = []
    if use_cache:
        logits, cache, position = prefill(model, ids, mask)  # [n, V], cache, [n]
    else:
        logits = forward_last(model, ids, mask)
    for step in range(num_tokens):
        token = pick(logits)  # [B]
        tokens.append(token)
        if step == num_tokens - 1:
            break
        feed = torch.cat([token, token]) if guided else token  # [n]
        mask = extend_mask(mask)
        if use_cache:
            position = position + 1
            logits = decode_one_token(model, feed, position, mask, cache)
        else:
            ids = torch.cat([ids, feed[:, None]], dim=1)
            logits = forward_last(model, ids, mask)
    return torch.stack(tokens, dim=1)  # [B, num_tokens]


def _check_text_args(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    allowed_ids: torch.Tensor,
    eos_id: int,
    num_beams: int,
    temperature: float,
    generators: list[torch.Generator] | None,
    length_penalty: float,
) -> None:
    check_prompt(input_ids, attention_mask)
    if not (isinstance(max_new_tokens, int) and max_new_tokens >= 1):
        raise SamplingError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens}")
    if not (isinstance(allowed_ids, torch.Tensor) and allowed_ids.dtype == torch.bool and allowed_ids.ndim == 1):
        raise SamplingError(f"allowed_ids must be a BoolTensor [V], got {getattr(allowed_ids, 'dtype', allowed_ids)}")
    vocab = _model_vocab_size(model)
    if vocab is not None and allowed_ids.shape[0] != vocab:
        raise SamplingError(f"allowed_ids must have one entry per vocabulary id ({vocab}), got {allowed_ids.shape[0]}")
    if not (isinstance(eos_id, int) and 0 <= eos_id < allowed_ids.shape[0]):
        raise SamplingError(f"eos_id must be a token id in [0, {allowed_ids.shape[0]}), got {eos_id}")
    if not bool(allowed_ids[eos_id]):
        raise SamplingError(f"eos_id {eos_id} must be allowed by allowed_ids")
    if not (isinstance(num_beams, int) and num_beams >= 1):
        raise SamplingError(f"num_beams must be an integer >= 1, got {num_beams}")
    check_sampling_args(temperature, 0, 1.0)
    if num_beams > 1 and temperature != 0:
        raise SamplingError(
            f"beam search is deterministic: temperature must be 0 with num_beams > 1, got {temperature}"
        )
    if not math.isfinite(length_penalty):
        raise SamplingError(f"length_penalty must be finite, got {length_penalty}")
    _check_generators(generators, input_ids.shape[0])


def _strip_eos(rows: list[list[int]], eos_id: int) -> list[list[int]]:
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


def _mask_disallowed(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Logits [n, V] with -inf wherever ``allowed`` [V'] is False (V' may be < V: the rest is disallowed)."""
    if allowed.shape[0] != logits.shape[-1]:
        raise SamplingError(
            f"allowed_ids has {allowed.shape[0]} entries but the model's vocabulary is {logits.shape[-1]}"
        )
    return logits.masked_fill(~allowed.to(logits.device), NEG_INF)


@torch.no_grad()
def _greedy_or_sample(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    allowed_ids: torch.Tensor,
    eos_id: int,
    temperature: float,
    generators: list[torch.Generator] | None,
) -> list[list[int]]:
    logits, cache, position = prefill(model, input_ids, attention_mask)  # [B, V], cache, [B]
    mask = attention_mask.long()
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=logits.device)  # [B]
    tokens = []
    for step in range(max_new_tokens):
        token = sample_unchecked(_mask_disallowed(logits, allowed_ids), generators, temperature, 0, 1.0)  # [B]
        token = token.masked_fill(finished, eos_id)
        tokens.append(token)
        finished |= token == eos_id
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        mask = extend_mask(mask)
        position = position + 1
        logits = decode_one_token(model, token, position, mask, cache)
    return _strip_eos(torch.stack(tokens, dim=1).tolist(), eos_id)


class _Hypotheses:
    """The best ``num_beams`` finished hypotheses of one prompt, scored sum log-prob / length ** penalty."""

    def __init__(self, num_beams: int, length_penalty: float) -> None:
        self.num_beams, self.length_penalty = num_beams, length_penalty
        self.items: list[tuple[float, list[int]]] = []  # (normalised score, tokens without eos)

    def score(self, logprob: float, length: int) -> float:
        return logprob / length**self.length_penalty

    def add(self, tokens: list[int], logprob: float, length: int) -> None:
        self.items.append((self.score(logprob, length), tokens))
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.num_beams :]

    def done(self, best_running: float, cur_len: int, max_len: int) -> bool:
        """True once no running beam (sum log-prob ``best_running`` at length ``cur_len``) can still get in."""
        if len(self.items) < self.num_beams:
            return best_running == NEG_INF and len(self.items) > 0
        # log-probs are <= 0, so the sum only falls; the normalised score is best at the longest length
        # when the penalty is positive and at the next length otherwise
        best_len = max_len if self.length_penalty > 0 else min(cur_len + 1, max_len)
        return self.items[-1][0] >= self.score(best_running, best_len)


@torch.no_grad()
def _beam_search(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    allowed_ids: torch.Tensor,
    eos_id: int,
    num_beams: int,
    length_penalty: float,
) -> list[list[int]]:
    """Beam search per prompt; returns the best finished hypothesis per row (tokens without the eos).

    A hypothesis' length counts its eos; hypotheses still running after ``max_new_tokens`` are finished
    as they are. Log-probs are renormalised over ``allowed_ids``.
    """
    batch, k = input_ids.shape[0], num_beams
    ids = input_ids.repeat_interleave(k, dim=0)  # [B*K, T]
    mask = attention_mask.long().repeat_interleave(k, dim=0)
    logits, cache, position = prefill(model, ids, mask)  # [B*K, V], cache, [B*K]
    vocab = logits.shape[-1]
    device = logits.device
    scores = torch.full((batch, k), NEG_INF, device=device)  # [B, K] running sum log-probs
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    seqs = torch.zeros(batch * k, 0, dtype=torch.long, device=device)  # [B*K, t] generated so far
    hyps = [_Hypotheses(k, length_penalty) for _ in range(batch)]
    done = [False] * batch
    for step in range(max_new_tokens):
        logp = torch.log_softmax(_mask_disallowed(logits, allowed_ids), dim=-1)  # [B*K, V]
        cand = (scores.view(-1, 1) + logp).view(batch, k * vocab)  # [B, K*V]
        top_scores, top_idx = cand.topk(min(2 * k, k * vocab), dim=-1)  # [B, 2K]
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        seq_rows = seqs.tolist()
        beam_idx, next_tok, next_scores = [], [], []
        for b in range(batch):
            running: list[tuple[float, int, int]] = []  # (score, source beam, token)
            if not done[b]:
                for rank, (s, flat) in enumerate(zip(top_scores[b], top_idx[b])):
                    if s == NEG_INF or len(running) == k:
                        break
                    src, tok = divmod(flat, vocab)
                    if tok == eos_id:
                        if rank < k:  # an eos outside the top K would never have been kept by a beam
                            hyps[b].add(seq_rows[b * k + src], s, step + 1)
                    else:
                        running.append((s, src, tok))
            running += [(NEG_INF, 0, eos_id)] * (k - len(running))
            done[b] = done[b] or hyps[b].done(running[0][0], step + 1, max_new_tokens)
            for s, src, tok in running:
                beam_idx.append(b * k + src)
                next_tok.append(tok)
                next_scores.append(s)
        beam = torch.tensor(beam_idx, device=device)  # [B*K]
        token = torch.tensor(next_tok, device=device)  # [B*K]
        scores = torch.tensor(next_scores, device=device).view(batch, k)
        seqs = torch.cat([seqs[beam], token[:, None]], dim=1)
        if all(done) or step == max_new_tokens - 1:
            break
        cache.reorder_cache(beam)
        mask = extend_mask(mask[beam])
        position = position[beam] + 1
        logits = decode_one_token(model, token, position, mask, cache)
    seq_rows, score_rows = seqs.tolist(), scores.tolist()
    best = []
    for b in range(batch):
        if not done[b]:  # reached max_new_tokens: the running beams finish as they are
            for j, s in enumerate(score_rows[b]):
                if s != NEG_INF:
                    hyps[b].add(seq_rows[b * k + j], s, max_new_tokens)
        best.append(hyps[b].items[0][1])
    return best


def generate_text(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    allowed_ids: torch.Tensor,
    eos_id: int,
    num_beams: int = 1,
    temperature: float = 0.0,
    generators: list[torch.Generator] | None = None,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Continue each left-padded prompt [B, T] with text -> per row the generated ids, without the eos.

    Only ids with ``allowed_ids[id]`` (BoolTensor [V]) are ever produced; ``eos_id`` must be allowed and
    ends a row. ``num_beams == 1``: greedy when ``temperature == 0``, otherwise sampling (row i draws from
    ``generators[i]``). ``num_beams > 1``: beam search (temperature must be 0) returning each row's best
    hypothesis by sum log-prob / length ** ``length_penalty`` (length counts the eos; log-probs are
    renormalised over the allowed ids).
    """
    _check_text_args(
        model,
        input_ids,
        attention_mask,
        max_new_tokens,
        allowed_ids,
        eos_id,
        num_beams,
        temperature,
        generators,
        length_penalty,
    )
    if num_beams == 1:
        return _greedy_or_sample(
            model, input_ids, attention_mask, max_new_tokens, allowed_ids, eos_id, temperature, generators
        )
    return _beam_search(
        model, input_ids, attention_mask, max_new_tokens, allowed_ids, eos_id, num_beams, length_penalty
    )
