"""Held-out Shapes World data: a stream seed that no training run uses, and the renders it gives.

Training streams use small seeds (0, 1, ...); every held-out check (tokenizer PSNR/SSIM, CLIP zero-shot,
captioning exact match, FID sanity figures) draws items ``0 .. n-1`` of the stream with :data:`HELD_OUT_SEED`.
"""

from __future__ import annotations

import functools

import torch

from lvg.images import images_to_tensor
from lvg.worlds.shapes.dataset import ShapesWorldConfig, ShapesWorldSample, make_sample

HELD_OUT_SEED = 1_000_003  # training streams use small seeds (0, 1, ...)


def held_out_samples(num: int, seed: int = HELD_OUT_SEED) -> list[ShapesWorldSample]:
    """Items ``0 .. num-1`` of the Shapes World stream with ``seed`` (image, captions, scene)."""
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    cfg = ShapesWorldConfig(seed=seed)
    return [make_sample(i, cfg) for i in range(num)]


images_tensor = images_to_tensor  # HWC uint8 arrays -> uint8 tensor [N, 3, H, W] (the old name, kept)


def held_out_images(num: int = 1000, seed: int = HELD_OUT_SEED) -> torch.Tensor:
    """Renders of :func:`held_out_samples` as uint8 [N, 3, 64, 64]."""
    return images_tensor([s.image for s in held_out_samples(num, seed)])


@functools.lru_cache(maxsize=4)
def held_out_pairs(n: int, seed: int = HELD_OUT_SEED) -> tuple[torch.Tensor, tuple[str, ...]]:
    """(renders uint8 [n, 3, 64, 64], full canonical captions) of held-out items ``0 .. n-1``."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    samples = held_out_samples(n, seed)
    return images_tensor([s.image for s in samples]), tuple(s.full_text for s in samples)
