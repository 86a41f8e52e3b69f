"""The two fine-tuning methods peft has no form of that lvg can use, as small modules on a trained causal LM.

- :class:`Bottleneck` adapters (Houlsby et al. 2019, in the placement of Pfeiffer et al. 2020): after each chosen
  decoder layer's MLP, ``h + up(act(down(h)))`` with ``up`` zero-initialised, so training starts from the base's
  function. peft has no bottleneck adapter (its "adapters" are reparameterisations of weights: LoRA, IA3, ...).
- :class:`PrefixTuned` (Li & Liang 2021): a learned key/value prefix at every layer. The prefix *is* a KV cache, so
  it is written into the cache before the prompt, and the sampler's prefill / decode run unchanged. peft's
  ``PrefixTuningConfig`` re-injects its prefix on every forward call, which breaks lvg's cached decoding, so the
  prefix is lvg's; it starts from the base's own keys and values of a few of its tokens (a common initialisation
  that trains stably without peft's reparameterisation MLP).

- :class:`LowRankRows`: the new tokens' rows of both vocabulary matrices move by a rank-``r`` delta ``u @ v``
  (a ``torch.nn.utils.parametrize`` parametrization) instead of training whole: 493 new labels' rows of a 192-wide
  LM are 189k weights whole, 22k at rank 32. It folds into plain rows (:func:`fold_low_rank_rows`).

The first two do not fold into the LM's weights: a model with them is saved as its base plus the adapter folder
(:mod:`lvg.models.adapters`), never as a plain LM folder. Their weights are a flat name -> tensor map
(:func:`module_state` / :func:`load_module_state`), kept in ``lvg_modules.safetensors``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from transformers import DynamicCache

BOTTLENECK = "lvg_bottleneck"  # the attribute name of a layer's adapter (and the prefix of its weights' names)


class Bottleneck(nn.Module):
    """``h -> h + up(silu(down(h)))``, ``up`` zero-initialised (an identity at the start)."""

    def __init__(self, hidden: int, rank: int):
        super().__init__()
        self.down = nn.Linear(hidden, rank)
        self.up = nn.Linear(rank, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h [B, T, hidden]
        return h + self.up(nn.functional.silu(self.down(h)))


class AdaptedMLP(nn.Module):
    """A decoder layer's MLP followed by its bottleneck adapter."""

    def __init__(self, mlp: nn.Module, hidden: int, rank: int):
        super().__init__()
        self.mlp = mlp
        setattr(self, BOTTLENECK, Bottleneck(hidden, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, BOTTLENECK)(self.mlp(x))


def decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Llama causal LM, inside any peft wrapper."""
    inner = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    return inner.model.layers


def add_bottlenecks(lm: nn.Module, layers: list[int], rank: int) -> None:
    """Put a fresh (identity) bottleneck adapter after the MLP of each of ``layers``, in place; they train."""
    hidden = lm.config.hidden_size
    blocks = decoder_layers(lm)
    device = next(lm.parameters()).device
    for i in layers:
        if isinstance(blocks[i].mlp, AdaptedMLP):
            raise ValueError(f"decoder layer {i} already has a bottleneck adapter")
        blocks[i].mlp = AdaptedMLP(blocks[i].mlp, hidden, rank).to(device)


def has_bottlenecks(lm: nn.Module) -> bool:
    return any(isinstance(m, AdaptedMLP) for m in lm.modules())


class PrefixTuned(nn.Module):
    """``lm`` with ``num_tokens`` learned key/value pairs at every layer, seen by every position (prefix tuning).

    Called like the LM (``input_ids``, ``attention_mask``, ``position_ids``, ``cache``, ...). When the cache it is
    given (or makes) is empty, the prefix is written into it first; the attention mask gets the prefix's columns in
    front on every call. Positions are the prompt's own (``cumsum(mask) - 1``, as without a prefix): the prefix keys
    carry no rotary position. Parameters ``keys`` / ``values``: [layers, kv_heads, num_tokens, head_dim]."""

    def __init__(self, lm: nn.Module, num_tokens: int, init_ids: torch.Tensor | None = None):
        super().__init__()
        self.lm = lm
        cfg = lm.config
        heads = cfg.num_key_value_heads or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        shape = (cfg.num_hidden_layers, heads, num_tokens, head_dim)
        self.keys = nn.Parameter(torch.zeros(shape))
        self.values = nn.Parameter(torch.zeros(shape))
        if init_ids is not None:  # the base's own keys and values of these tokens
            with torch.no_grad():
                cache = DynamicCache(config=cfg)
                ids = init_ids.reshape(1, num_tokens).to(self.keys.device)
                lm(input_ids=ids, attention_mask=torch.ones_like(ids), cache=cache, use_cache=True)
                for i, layer in enumerate(cache.layers):
                    self.keys[i].copy_(layer.keys[0])
                    self.values[i].copy_(layer.values[0])

    @property
    def config(self) -> Any:
        return self.lm.config

    @property
    def num_tokens(self) -> int:
        return self.keys.shape[2]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: DynamicCache | None = None,
                use_cache: bool | None = None, **kwargs: Any) -> Any:  # fmt: skip
        b, t = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(b, t, dtype=torch.long, device=input_ids.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -t:]
        if cache is None:
            cache = DynamicCache(config=self.config)
        if cache.get_seq_length() == 0:
            for i in range(self.keys.shape[0]):
                cache.update(self.keys[i].expand(b, -1, -1, -1), self.values[i].expand(b, -1, -1, -1), i)
        prefix = torch.ones(b, self.num_tokens, dtype=attention_mask.dtype, device=attention_mask.device)
        return self.lm(input_ids=input_ids, attention_mask=torch.cat([prefix, attention_mask], dim=1),
                       position_ids=position_ids, cache=cache, use_cache=True, **kwargs)  # fmt: skip


class LowRankRows(nn.Module):
    """Parametrizes a vocabulary matrix ``weight`` [vocab, hidden] as ``weight`` with ``u @ v`` added to ``rows``:
    ``u`` [len(rows), rank] starts at zero (the base's rows at the start), ``v`` [rank, hidden] at seeded noise.

    ``twins`` ({id: twin id}) ties rows: each ``id``'s row is its twin's (after the delta) plus one shared
    ``shift`` [hidden] that starts at zero, so a rare form of a word ("crab" starting an answer) knows what its
    frequent twin (" crab") learns, and the shift tells the two apart."""

    def __init__(self, rows: list[int], rank: int, hidden: int, twins: dict[int, int] | None = None):
        super().__init__()
        twins = dict(twins or {})
        if set(twins) & set(rows):
            raise ValueError("a tied row takes its twin's: it cannot have a low-rank delta of its own")
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long), persistent=False)
        self.register_buffer("tied", torch.tensor(list(twins), dtype=torch.long), persistent=False)
        self.register_buffer("twin", torch.tensor(list(twins.values()), dtype=torch.long), persistent=False)
        self.u = nn.Parameter(torch.zeros(len(rows), rank))
        self.v = nn.Parameter(torch.randn(rank, hidden, generator=torch.Generator().manual_seed(0)) / rank**0.5)
        self.shift = nn.Parameter(torch.zeros(hidden)) if twins else None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        w = weight.index_add(0, self.rows.to(weight.device), (self.u @ self.v).to(weight.dtype))
        if self.shift is None:
            return w
        return w.index_copy(0, self.tied.to(w.device), w[self.twin.to(w.device)] + self.shift.to(w.dtype))


VOCAB_GETTERS = {"embed_tokens": "get_input_embeddings", "lm_head": "get_output_embeddings"}


def _causal_lm(model: nn.Module) -> nn.Module:
    """The causal LM inside a prefix and any peft wrapper."""
    inner = model.lm if isinstance(model, PrefixTuned) else model
    return inner.get_base_model() if hasattr(inner, "get_base_model") else inner


def _vocab_matrices(model: nn.Module) -> dict[str, nn.Module]:
    inner = _causal_lm(model)
    return {name: getattr(inner, getter)() for name, getter in VOCAB_GETTERS.items()}


def add_low_rank_rows(lm: nn.Module, rows: dict[str, tuple[list[int], int]],
                      twins: dict[str, dict[int, int]] | None = None) -> None:  # fmt: skip
    """Let the rows of ``lm``'s vocabulary matrices that ``rows`` names (``{"embed_tokens" | "lm_head": (row ids,
    rank)}``) move by a trainable low-rank delta, and tie the rows ``twins`` names per matrix (``{id: twin id}``,
    :class:`LowRankRows`), in place; a matrix with neither stays."""
    twins = twins or {}
    matrices = _vocab_matrices(lm)
    if unknown := set(rows) - set(matrices):
        raise ValueError(f"low-rank rows for unknown vocabulary matrices {sorted(unknown)} (known: {sorted(matrices)})")
    for name, (ids, rank) in rows.items():
        m = matrices[name]
        if parametrize.is_parametrized(m, "weight"):
            raise ValueError("the vocabulary matrices already have low-rank rows")
        if ids or twins.get(name):
            rows_of = LowRankRows(list(ids), rank, m.weight.shape[1], twins.get(name)).to(m.weight.device)
            parametrize.register_parametrization(m, "weight", rows_of)


def low_rank_rows(model: nn.Module) -> dict[str, LowRankRows]:
    """The :class:`LowRankRows` of ``model``'s vocabulary matrices, by matrix name (empty when it has none)."""
    return {name: m.parametrizations.weight[0] for name, m in _vocab_matrices(model).items()
            if parametrize.is_parametrized(m, "weight")}  # fmt: skip


def fold_low_rank_rows(model: nn.Module) -> None:
    """Make ``model``'s low-rank rows plain rows (the delta added in), in place: each parametrized vocabulary matrix
    is replaced by a plain module holding its current weight. (Not ``parametrize.remove_parametrizations``: it
    deletes the property from the parametrized class, which a deep copy shares with its original.)"""
    inner = _causal_lm(model)
    for name, m in _vocab_matrices(model).items():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        with torch.no_grad():
            w = m.weight.detach().clone()
        if isinstance(m, nn.Embedding):
            plain: nn.Module = nn.Embedding(w.shape[0], w.shape[1], padding_idx=m.padding_idx)
        else:
            plain = nn.Linear(w.shape[1], w.shape[0], bias=m.bias is not None)
            if m.bias is not None:
                plain.bias = m.bias
        plain.weight = nn.Parameter(w, requires_grad=m.parametrizations.weight.original.requires_grad)
        getattr(inner, "set_" + VOCAB_GETTERS[name].removeprefix("get_"))(plain.train(m.training))


def _live_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bottleneck adapters', the prefix's and the low-rank rows' tensors in ``model`` (sharing their storage), by stable names."""
    state = {f"rows.{name}.{k}": getattr(p, k).detach() for name, p in low_rank_rows(model).items()
             for k in ("u", "v", "shift") if getattr(p, k) is not None}  # fmt: skip
    if isinstance(model, PrefixTuned):
        state |= {"prefix.keys": model.keys.detach(), "prefix.values": model.values.detach()}
        model = model.lm
    for i, block in enumerate(decoder_layers(model)):
        if isinstance(block.mlp, AdaptedMLP):
            for k, v in getattr(block.mlp, BOTTLENECK).state_dict().items():
                state[f"layers.{i}.{BOTTLENECK}.{k}"] = v.detach()
    return state


def module_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights of the bottleneck adapters and the prefix in ``model``, by stable names."""
    return {k: v.clone().contiguous() for k, v in _live_tensors(model).items()}


def load_module_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load :func:`module_state` weights into ``model`` (which has the same modules); any missing, unexpected or
    wrongly shaped tensor is a ValueError naming ``source``."""
    want = _live_tensors(model)
    missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or unexpected:
        raise ValueError(f"{source} does not fit its adapter settings: "
                         + "; ".join(x for x in (f"missing {', '.join(missing[:5])}" if missing else "",
                                                 f"unexpected {', '.join(unexpected[:5])}" if unexpected else "") if x))  # fmt: skip
    for k, v in state.items():
        if v.shape != want[k].shape:
            raise ValueError(
                f"{source}: {k} has shape {tuple(v.shape)}, the adapter settings give {tuple(want[k].shape)}"
            )
    with torch.no_grad():
        for k, v in want.items():
            v.copy_(state[k].to(v.dtype))
