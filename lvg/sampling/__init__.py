"""Sampling for the unified causal LM: logits -> tokens, KV-cached decoding, image and text generation.

gpt-fast / LlamaGen style: small pure functions that receive plain values; the :class:`transformers.DynamicCache`
is the only state. Prompts are left-padded; position ids are ``(attention_mask.cumsum(-1) - 1).clamp(min=0)``.
:class:`GenerationConfig` (``lvg.sampling.config``) holds the settings callers carry around.
"""

from lvg.sampling.config import GenerationConfig, GenerationConfigError
from lvg.sampling.decode import decode_one_token, extend_mask, forward_last, position_ids_from_mask, prefill
from lvg.sampling.generate import generate_image_tokens, generate_text, left_pad_concat
from lvg.sampling.sample import SamplingError, logits_to_probs, sample, sample_from_probs

__all__ = [
    "GenerationConfig",
    "GenerationConfigError",
    "SamplingError",
    "decode_one_token",
    "extend_mask",
    "forward_last",
    "generate_image_tokens",
    "generate_text",
    "left_pad_concat",
    "logits_to_probs",
    "position_ids_from_mask",
    "prefill",
    "sample",
    "sample_from_probs",
]
