"""Bottleneck adapters and prefix tuning (lvg.models.adapter_layers) under the KV-cached sampler."""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from lvg.models.adapter_layers import PrefixTuned, add_bottlenecks, load_module_state, module_state
from lvg.models.unified import CausalLM
from lvg.sampling.decode import decode_one_token, extend_mask, prefill


def tiny_lm() -> CausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    return CausalLM(cfg).eval()


def test_a_fresh_bottleneck_adapter_is_the_identity_and_its_weights_round_trip():
    lm = tiny_lm()
    ids = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        before = lm(input_ids=ids).logits
        add_bottlenecks(lm, [1], rank=3)
        torch.testing.assert_close(lm(input_ids=ids).logits, before)  # up is zero-initialised
        state = module_state(lm)
        assert sorted(state) == ["layers.1.lvg_bottleneck.down.bias", "layers.1.lvg_bottleneck.down.weight",
                                 "layers.1.lvg_bottleneck.up.bias", "layers.1.lvg_bottleneck.up.weight"]  # fmt: skip
        state = {k: torch.randn_like(v) for k, v in state.items()}
        load_module_state(lm, state, "x")
        assert not torch.allclose(lm(input_ids=ids).logits, before)
        assert all(torch.equal(v, state[k]) for k, v in module_state(lm).items())


def test_prefix_tuned_cached_decoding_matches_the_uncached_forward_with_left_padding():
    """The prefix lives in the KV cache: prefill + one cached step on a left-padded batch give the logits of the
    full uncached forward of each row alone (positions are the prompt's own, the prefix sees every token)."""
    lm = tiny_lm()
    model = PrefixTuned(lm, 4, torch.arange(4)).eval()
    with torch.no_grad():
        model.keys.add_(torch.randn_like(model.keys))  # a trained-looking prefix, not the base's own
        rows = [[5, 6, 7, 8, 9], [11, 12, 13]]
        ids = torch.tensor([rows[0], [0, 0, *rows[1]]])
        mask = torch.tensor([[1] * 5, [0, 0, 1, 1, 1]])
        logits, cache, pos = prefill(model, ids, mask)
        nxt = torch.tensor([20, 21])
        mask = extend_mask(mask)
        step = decode_one_token(model, nxt, pos + 1, mask, cache)
        for b, row in enumerate(rows):
            full = model(input_ids=torch.tensor([[*row, int(nxt[b])]])).logits[0]
            torch.testing.assert_close(logits[b], full[-2], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(step[b], full[-1], atol=1e-5, rtol=1e-4)
        plain = lm(input_ids=torch.tensor([rows[0]])).logits[0, -1]
        assert not torch.allclose(logits[0], plain, atol=1e-3)  # the prefix changes what the LM says
