"""Logits -> probabilities -> tokens: temperature, top-k, top-p and per-row seeded draws.

Pure functions on ``[B, V]`` logits, no model here. A row's draw uses only that row's generator
(inverse-CDF sampling with one uniform number per row), so a row's token never depends on which
other rows share the batch, and a CPU generator works for logits on any device.
"""

from __future__ import annotations

import torch

from lvg.sampling.config import check_value


class SamplingError(ValueError):
    """An argument handed to a sampling or generation function is out of range or has the wrong shape."""


def check_sampling_args(temperature: float, top_k: int, top_p: float) -> None:
    """Raise :class:`SamplingError` unless temperature >= 0, top_k >= 0 and 0 < top_p <= 1 (the rules of
    :class:`~lvg.sampling.config.GenerationConfig`, applied to plain values)."""
    for name, value in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p)):
        check_value(name, value, SamplingError)


def logits_to_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits [B, V] -> probabilities [B, V] (float32, rows sum to 1) after temperature, top-k and top-p.

    ``top_k=0`` and ``top_p=1.0`` switch the filters off. Top-k keeps the k largest logits (ties at the
    k-th value are all kept); top-p then keeps the smallest set of most likely tokens whose mass reaches
    ``top_p``. Entries that are ``-inf`` on input (masked tokens) get probability 0.
    """
    if not temperature > 0:
        raise SamplingError(f"temperature must be > 0 in logits_to_probs (use sample() for greedy), got {temperature}")
    check_sampling_args(temperature, top_k, top_p)
    if logits.ndim != 2:
        raise SamplingError(f"logits must be [B, V], got shape {tuple(logits.shape)}")
    return _logits_to_probs(logits, temperature, top_k, top_p)


def _logits_to_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """:func:`logits_to_probs` without the argument checks (for loops whose arguments were checked once)."""
    logits = logits.float() / temperature  # [B, V]
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # [B, V]
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = sorted_probs.cumsum(-1) - sorted_probs  # [B, V] mass of strictly more likely tokens
        drop_sorted = mass_before >= top_p
        drop_sorted[:, 0] = False  # the most likely token always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.softmax(logits, dim=-1)


def _uniforms(batch: int, generators: list[torch.Generator] | None, device: torch.device) -> torch.Tensor:
    """One uniform number in [0, 1) per row [B] (float64 on ``device``), row i from ``generators[i]``."""
    if generators is None:
        return torch.rand(batch, device=device, dtype=torch.float64)
    if len(generators) != batch:
        raise SamplingError(f"generators must hold one torch.Generator per row ({batch}), got {len(generators)}")
    devices = {g.device for g in generators}
    if len(devices) == 1:  # the usual case: draw where the generators live, then move once
        draws = [torch.rand(1, generator=g, device=g.device, dtype=torch.float64) for g in generators]
        return torch.cat(draws).to(device)
    draws = [torch.rand(1, generator=g, device=g.device, dtype=torch.float64).to(device) for g in generators]
    return torch.cat(draws)


def sample_from_probs(probs: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """Draw one token per row from probabilities [B, V] -> LongTensor [B] (inverse CDF, per-row generators)."""
    cdf = probs.double().cumsum(-1)  # [B, V]
    u = _uniforms(probs.shape[0], generators, probs.device) * cdf[:, -1]  # [B]
    # first index whose cdf exceeds u: a token with probability 0 can never be hit
    idx = torch.searchsorted(cdf, u[:, None], right=True).squeeze(-1)  # [B]
    return idx.clamp(max=probs.shape[-1] - 1)


def sample(
    logits: torch.Tensor,
    generators: list[torch.Generator] | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """Pick one token per row from logits [B, V] -> LongTensor [B].

    ``temperature == 0`` is greedy (argmax, no randomness used). Otherwise row i draws from
    ``logits_to_probs(...)[i]`` with one uniform number from ``generators[i]`` (any device), or from
    the global RNG when ``generators`` is None.
    """
    check_sampling_args(temperature, top_k, top_p)
    if logits.ndim != 2:
        raise SamplingError(f"logits must be [B, V], got shape {tuple(logits.shape)}")
    return sample_unchecked(logits, generators, temperature, top_k, top_p)


def sample_unchecked(logits: torch.Tensor, generators: list[torch.Generator] | None, temperature: float, top_k: int,
                     top_p: float) -> torch.Tensor:  # fmt: skip
    """:func:`sample` without the argument checks: the per-token step of generation loops that checked their
    arguments once, at entry."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    return sample_from_probs(_logits_to_probs(logits, temperature, top_k, top_p), generators)


def sample_by_row(logits: torch.Tensor, generators: list[torch.Generator] | None, which: torch.Tensor,
                  if_true: float, if_false: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Tokens [B] from ``logits`` [B, V]: row i at temperature ``if_true`` where ``which[i]`` (bool [B]), else
    ``if_false``; each row draws from its own generator, as :func:`sample` does."""
    token = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    flags = which.tolist()
    for flag, temperature in ((True, if_true), (False, if_false)):
        rows = [i for i, x in enumerate(flags) if x == flag]
        if rows:
            token[rows] = sample(logits[rows], None if generators is None else [generators[i] for i in rows],
                                 temperature, top_k, top_p)  # fmt: skip
    return token
