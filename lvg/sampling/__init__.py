"""Sampling for the unified causal LM: logits -> tokens, KV-cached decoding, image and text generation.

gpt-fast / LlamaGen style: small pure functions that receive plain values; the :class:`transformers.DynamicCache`
is the only state. Prompts are left-padded; position ids are ``(attention_mask.cumsum(-1) - 1).clamp(min=0)``.
:class:`GenerationConfig` (``lvg.sampling.config``) holds the settings callers carry around.

The names below are imported lazily (as in ``lvg/__init__.py``), so ``lvg.sampling.config`` stays torch-free:
the command line builds its sampling flags from it before anything heavy is imported.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "GenerationConfig": "lvg.sampling.config",
    "GenerationConfigError": "lvg.sampling.config",
    "SamplingError": "lvg.sampling.sample",
    "decode_one_token": "lvg.sampling.decode",
    "extend_mask": "lvg.sampling.decode",
    "forward_last": "lvg.sampling.decode",
    "generate_image_tokens": "lvg.sampling.generate",
    "generate_text": "lvg.sampling.generate",
    "left_pad_concat": "lvg.sampling.generate",
    "logits_to_probs": "lvg.sampling.sample",
    "position_ids_from_mask": "lvg.sampling.decode",
    "prefill": "lvg.sampling.decode",
    "sample": "lvg.sampling.sample",
    "sample_from_probs": "lvg.sampling.sample",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lvg.sampling' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``lvg.sampling.sample`` names both a submodule and its function; the function wins (as it did when this
    package imported everything eagerly), even after the import system binds the submodule to the package."""

    def __getattribute__(self, name: str) -> Any:
        if name == "sample":
            return importlib.import_module("lvg.sampling.sample").sample
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # for type checkers and IDEs
    from lvg.sampling.config import GenerationConfig, GenerationConfigError  # noqa: F401
    from lvg.sampling.decode import (  # noqa: F401
        decode_one_token,
        extend_mask,
        forward_last,
        position_ids_from_mask,
        prefill,
    )
    from lvg.sampling.generate import generate_image_tokens, generate_text, left_pad_concat  # noqa: F401
    from lvg.sampling.sample import SamplingError, logits_to_probs, sample, sample_from_probs  # noqa: F401
