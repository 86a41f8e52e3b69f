"""Model calls for autoregressive decoding: prefill, one cached step, and the uncached reference.

Works with any Hugging Face causal LM called as ``model(input_ids=, attention_mask=, position_ids=,
cache=, use_cache=)`` that returns ``.logits`` (transformers 5 names the cache ``cache``; a model that
still takes ``past_key_values`` gets that name instead, see :func:`_cache_kwarg`). Sequences are LEFT-padded
(the last column of every attention mask is 1); position ids are ``(attention_mask.cumsum(-1) - 1).clamp(min=0)``,
so a row's real tokens sit at 0, 1, 2, ... whatever its padding. The :class:`transformers.DynamicCache`
is the only state carried between steps; the caller extends the attention mask by a column of ones
for every decoded token. Put the model in eval mode first (dropout would break reproducibility).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from transformers import DynamicCache

from lvg.sampling.sample import SamplingError


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention mask [B, T] (1 = token, 0 = left padding) -> position ids LongTensor [B, T]."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def check_prompt(input_ids: torch.Tensor, attention_mask: torch.Tensor, name: str = "input_ids") -> None:
    """Raise :class:`SamplingError` unless ``input_ids`` [B, T] and its mask are a left-padded batch."""
    mask_name = name.replace("input_ids", "attention_mask")
    if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2 or input_ids.numel() == 0:
        raise SamplingError(
            f"{name} must be a non-empty LongTensor [B, T], got {getattr(input_ids, 'shape', input_ids)}"
        )
    if input_ids.is_floating_point() or input_ids.is_complex():
        raise SamplingError(f"{name} must hold integer token ids, got dtype {input_ids.dtype}")
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
        raise SamplingError(
            f"{mask_name} must have the shape of {name} {tuple(input_ids.shape)}, "
            f"got {tuple(getattr(attention_mask, 'shape', ()))}"
        )
    if not bool((attention_mask[:, -1] != 0).all()):
        raise SamplingError(f"{mask_name} must be left-padded: its last column must be all ones")


def _model_vocab_size(model: Any) -> int | None:
    """The LM head's vocabulary size from ``model.config.vocab_size``, or None when the model has none."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(vocab) if isinstance(vocab, int) else None


def _last_logits_only(model: Any) -> dict[str, int]:
    """``{"logits_to_keep": 1}`` when the model's forward takes it (recent transformers LMs), else ``{}``.

    Only the last position's logits are used; skipping the rest saves a [B, T, V] tensor at prefill.
    """
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def _cache_kwarg(model: Any) -> str:
    """The forward argument that carries the KV cache: ``cache`` (transformers 5, where ``past_key_values`` is
    deprecated) or, for a model whose forward does not take ``cache``, ``past_key_values``."""
    return _cache_kwarg_of(type(model))


@functools.cache
def _cache_kwarg_of(cls: type) -> str:
    try:
        params = inspect.signature(cls.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return "cache"
    return "cache" if "cache" in params else "past_key_values"


def _new_cache(model: Any) -> DynamicCache:
    config = getattr(model, "config", None)
    return DynamicCache(config=config) if config is not None else DynamicCache()


@torch.no_grad()
def prefill(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, DynamicCache, torch.Tensor]:
    """Run the left-padded prompt [B, T] through the model with a fresh cache.

    Returns (logits of the last token float [B, V], the filled cache, the last token's position LongTensor [B]).
    """
    check_prompt(input_ids, attention_mask)
    attention_mask = attention_mask.long()
    position_ids = position_ids_from_mask(attention_mask)  # [B, T]
    cache = _new_cache(model)
    name = _cache_kwarg(model)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        **{name: cache},
        **_last_logits_only(model),
    )
    # the model fills `cache` in place; take what it hands back in case it made its own
    returned = getattr(out, name, None)
    cache = returned if returned is not None else cache
    return out.logits[:, -1].float(), cache, position_ids[:, -1]


@torch.no_grad()
def decode_one_token(
    model: Any, token: torch.Tensor, position: torch.Tensor, attention_mask: torch.Tensor, cache: DynamicCache
) -> torch.Tensor:
    """Feed one new token per row through the cached model -> logits float [B, V].

    token, position: LongTensor [B] (position = previous last position + 1); attention_mask [B, T']
    already includes the new token's column (T' = cached length + 1). ``cache`` grows in place.
    """
    out = model(
        input_ids=token[:, None],  # [B, 1]
        attention_mask=attention_mask.long(),
        position_ids=position[:, None],  # [B, 1]
        use_cache=True,
        **{_cache_kwarg(model): cache},
    )
    return out.logits[:, -1].float()


@torch.no_grad()
def forward_last(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Uncached reference: run the whole left-padded sequence [B, T] -> last-token logits float [B, V]."""
    attention_mask = attention_mask.long()
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
        **_last_logits_only(model),
    )
    return out.logits[:, -1].float()


def extend_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention mask [B, T] -> [B, T + 1] with a column of ones for the next token."""
    return torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=-1)
