"""Helpers every pipeline shares: prompts as a list, one seed per image, reranking candidates, decoding codes.

Per-row reproducibility lives here: image ``j`` of a call draws only from its own seed (:func:`resolve_seeds`),
reranking candidate ``c`` of it from :func:`candidate_seed`, and codes are decoded one image at a time
(:func:`decode_images`), so an image's bytes depend on its seed alone, however the work is batched.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from lvg.files import TextError, check_text
from lvg.images import images_to_tensor, tensor_to_images
from lvg.sampling.config import check_seed_span, check_seeds

__all__ = ["RERANK_SEED_STRIDE", "best_by_clip", "candidate_seed", "decode_images", "prompt_list", "resolve_seeds"]

RERANK_SEED_STRIDE = 0x9E3779B97F4A7C15  # odd 64-bit constant spreading candidate seeds apart


def candidate_seed(seed: int, c: int) -> int:
    """Seed of reranking candidate ``c`` of the image whose seed is ``seed``.

    Candidate 0 is the image itself (``seed``), so reranking only ever adds candidates to what
    ``rerank=1`` would return; candidate ``c > 0`` uses ``(seed + c * RERANK_SEED_STRIDE) mod 2**63``.
    """
    return seed if c == 0 else (seed + c * RERANK_SEED_STRIDE) % 2**63


def prompt_list(prompt: str | list[str], batch_size: int = 32) -> list[str]:
    """``prompt`` as a non-empty list of non-blank strings (and ``batch_size`` checked), else a ValueError."""
    if not isinstance(prompt, str | list | tuple):  # pipe(5)
        raise TextError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("prompt must be a non-empty string or a list of them")
    for p in prompts:
        check_text(p, "prompt")  # a lone surrogate (a non-UTF-8 byte on the command line) never reaches a tokenizer
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return prompts


def resolve_seeds(num_jobs: int, seed: int | None = None, seeds: list[int] | None = None,
                  generator: torch.Generator | None = None) -> list[int]:  # fmt: skip
    """One seed per image: ``seeds`` as given (checked), else ``seed + j`` (``seed`` drawn from ``generator``
    when None)."""
    if seeds is not None:
        seeds = check_seeds(seeds)  # integers in [0, MAX_SEED]: seeds[i] named
        if len(seeds) != num_jobs:
            raise ValueError(f"seeds must give one seed per image ({num_jobs}), got {len(seeds)}")
        return seeds
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    check_seed_span(seed, num_jobs)  # image j (over all prompts) uses seed + j <= MAX_SEED
    return [seed + j for j in range(num_jobs)]


def decode_images(codes: torch.Tensor, image_tokenizer: Any) -> list[Image.Image]:
    """Image codes [N, h, w] -> N RGB images, decoded one at a time: a conv decoder's float rounding depends on
    the batch it runs in, and an image's pixels must depend on its codes alone (same seed -> same bytes,
    whoever shared the call)."""
    dev = image_tokenizer.device
    pixels = torch.cat([image_tokenizer.decode(c[None].to(dev)) for c in codes])  # [N, 3, H, W] in [0, 1]
    return tensor_to_images(pixels)


def best_by_clip(clip: Any, images: list[Image.Image], prompts: list[str], k: int) -> tuple[list[int], list[float]]:
    """CLIP reranking: ``images`` come in runs of ``k`` candidates per job; return, per job, the index of the
    candidate whose CLIP score against its prompt is highest (the first on ties) and that score."""
    pix = images_to_tensor(images)
    scores = torch.cat([torch.as_tensor(clip.score(pix[s : s + 256], prompts[s : s + 256])).float().cpu()
                        for s in range(0, len(prompts), 256)]).view(-1, k)  # fmt: skip
    best = scores.argmax(1).tolist()  # first maximum on ties
    return [j * k + b for j, b in enumerate(best)], [scores[j, b].item() for j, b in enumerate(best)]
