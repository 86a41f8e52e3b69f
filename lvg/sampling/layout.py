"""Grammar-constrained layout sampling: prefill, then one cached step per layout token.

Same conventions as :mod:`lvg.sampling.generate`: left-padded prompts, position ids from the
attention mask, the KV cache as the only state, classifier-free guidance by doubling the batch, and
one seeded generator per row (a row's layout never depends on who shares its batch). At every step
the logits are restricted to the layout vocabulary and to what :class:`LayoutGrammar` allows, so
each finished row decodes to a valid layout whatever the model predicts.
"""

from __future__ import annotations

import torch

from lvg.sampling.decode import decode_one_token, extend_mask, prefill
from lvg.sampling.generate import left_pad_concat
from lvg.sampling.sample import SamplingError, sample, sample_by_row
from lvg.tokenizers.layout import END, LayoutGrammar

NEG_INF = float("-inf")


def grammar_mask(grammar: LayoutGrammar, prefixes: list[list[int]]) -> torch.Tensor:
    """BoolTensor [B, V_layout]: the tokens each row may take next."""
    return torch.stack([grammar.allowed(p) for p in prefixes])


def constrain(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Logits [B, V_layout] with -inf where ``allowed`` [B, V_layout] is False."""
    return logits.masked_fill(~allowed.to(logits.device), NEG_INF)


@torch.no_grad()
def generate_layout_tokens(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    grammar: LayoutGrammar,
    offset: int,
    guidance_scale: float = 1.0,
    uncond_input_ids: torch.Tensor | None = None,
    uncond_attention_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generators: list[torch.Generator] | None = None,
    pad_id: int = 0,
    label_temperature: float | None = None,
) -> list[list[int]]:
    """Sample one layout per left-padded prompt ``<bos> text <layout>`` [B, T].

    Layout token ``k`` is model id ``offset + k``. Returns the local ids generated after ``<layout>``
    (up to and including ``</layout>``), one list per row. ``label_temperature`` (None: ``temperature``): the
    temperature of a step whose allowed tokens hold a label (which object comes next, or the end).
    """
    B = input_ids.shape[0]
    vocab = grammar.tok.vocab_size
    guided = guidance_scale != 1
    if guided:
        if uncond_input_ids is None or uncond_attention_mask is None:
            raise SamplingError("guidance_scale != 1 needs the unconditional prompts")
        ids, mask = left_pad_concat(input_ids, attention_mask, uncond_input_ids, uncond_attention_mask, pad_id)
    else:
        ids, mask = input_ids, attention_mask.long()
    logits, cache, position = prefill(model, ids, mask)  # [n, V]
    out: list[list[int]] = [[] for _ in range(B)]
    for _ in range(grammar.tok.max_length - 1):
        if logits.shape[-1] < offset + vocab:
            raise SamplingError(f"the model's vocabulary ({logits.shape[-1]}) lacks the layout tokens")
        lg = logits[:, offset : offset + vocab]  # [n, V_layout]
        if guided:
            cond, uncond = lg.chunk(2)
            lg = uncond + guidance_scale * (cond - uncond)
        allowed = grammar_mask(grammar, out)  # [B, V_layout] bool
        lg = constrain(lg, allowed)
        if label_temperature is None or label_temperature == temperature:
            token = sample(lg, generators, temperature, top_k, top_p)  # [B] local ids
        else:  # a row about to name its next object (or end) draws at the label temperature, the others at temperature
            token = sample_by_row(lg, generators, allowed[:, grammar.tok.label_offset : grammar.tok.loc_offset].any(1),
                                  label_temperature, temperature, top_k, top_p)  # fmt: skip
        for row, t in zip(out, token.tolist()):
            if not row or row[-1] != END:
                row.append(t)
        if all(row and row[-1] == END for row in out):
            break
        feed = token + offset
        feed = torch.cat([feed, feed]) if guided else feed
        mask = extend_mask(mask)
        position = position + 1
        logits = decode_one_token(model, feed, position, mask, cache)
    return out


@torch.no_grad()
def layout_logprobs(
    model: torch.nn.Module,
    prompts: list[list[int]],
    rows: list[list[int]],
    grammar: LayoutGrammar,
    offset: int,
    pad_id: int = 0,
) -> list[float]:
    """The log-probability of each layout ``rows[i]`` (local ids after ``<layout>``, up to ``</layout>``, as
    :func:`generate_layout_tokens` returns them) given ``prompts[i]`` (model ids ``<bos> text <layout>``, unpadded),
    under the distribution that function samples from at temperature 1: the logits cut to the layout vocabulary and to
    what the grammar allows at each step. One forward pass over the right-padded rows [B, T]."""
    seqs = [[*p, *(offset + t for t in r)] for p, r in zip(prompts, rows, strict=True)]
    T = max(map(len, seqs))
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs])  # [B, T]
    mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s in seqs])
    dev = next(model.parameters()).device
    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float()  # [B, T, V]
    vocab = grammar.tok.vocab_size
    out = []
    for b, (p, r) in enumerate(zip(prompts, rows, strict=True)):
        lg = logits[b, len(p) - 1 : len(p) - 1 + len(r), offset : offset + vocab]  # [len(r), V_layout]
        lg = constrain(lg, grammar_mask(grammar, [r[:j] for j in range(len(r))]))
        out.append(float(lg.log_softmax(-1).gather(1, torch.tensor(r, device=lg.device)[:, None]).sum()))
    return out
