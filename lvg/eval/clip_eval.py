"""Held-out checks of a CLIP: zero-shot caption choice and text -> image retrieval.

Both use items ``0 .. n-1`` of the Shapes World stream with :data:`lvg.worlds.shapes.heldout.HELD_OUT_SEED` (never trained on)
and each scene's full canonical caption (``ShapesWorldSample.full_text``, in the item's language).
"""

from __future__ import annotations

import random
from typing import Any

import torch

from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_pairs

__all__ = ["held_out_pairs", "retrieval_top1", "zero_shot_accuracy"]


@torch.no_grad()
def _embed(
    clip: Any, images: torch.Tensor, texts: list[str], batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    was_training = clip.training
    clip.eval()
    try:
        img = torch.cat([clip.encode_image(images[i : i + batch_size]).cpu() for i in range(0, len(texts), batch_size)])
        txt = torch.cat([clip.encode_text(texts[i : i + batch_size]).cpu() for i in range(0, len(texts), batch_size)])
    finally:
        clip.train(was_training)
    return img, txt


def zero_shot_accuracy(clip: Any, n: int = 500, seed: int = HELD_OUT_SEED, num_candidates: int = 10) -> dict:
    """For each held-out render, pick its full caption among ``num_candidates`` (itself plus captions of
    other held-out scenes with different text, drawn with a fixed RNG); top-1 accuracy (ties count wrong)."""
    if not 2 <= num_candidates <= n:
        raise ValueError(f"num_candidates must be in [2, n={n}], got {num_candidates}")
    images, texts = held_out_pairs(n, seed)
    img, txt = _embed(clip, images, list(texts))
    sims = img @ txt.T  # [n, n]
    rng = random.Random(f"lvg-clip-zero-shot:{seed}:{n}:{num_candidates}")
    correct = 0
    for i in range(n):
        others = [j for j in range(n) if texts[j] != texts[i]]
        negs = rng.sample(others, min(num_candidates - 1, len(others)))
        correct += bool(sims[i, i] > sims[i, negs].max()) if negs else 1
    return {"accuracy": correct / n, "chance": 1 / num_candidates, "n": n, "num_candidates": num_candidates}


def retrieval_top1(clip: Any, n: int = 500, seed: int = HELD_OUT_SEED) -> dict:
    """Text -> image: for each held-out full caption, is the best of the ``n`` renders its own
    (or one whose full caption is the same text)?"""
    images, texts = held_out_pairs(n, seed)
    img, txt = _embed(clip, images, list(texts))
    best = (txt @ img.T).argmax(1).tolist()  # [n]
    correct = sum(texts[b] == texts[i] for i, b in enumerate(best))
    return {"top1": correct / n, "chance": 1 / n, "n": n}
