"""Per-object mask IoU between a render and its image-tokenizer round trip (crisp small shapes).

An object's mask is the set of pixels, inside its box grown by one pixel, that are more than half
the object's colour against the background: ``alpha = <p - bg, c - bg> / |c - bg|^2 > 0.5``. The
IoU of that mask between the render and the reconstruction says whether a shape keeps its outline
(a round-tripped small star that turned into a blob scores low even when PSNR is high).

The threshold makes the measure sensitive where a render's own alpha sits at 0.5: diagonal edges through
pixel centres (diamonds) have many such pixels, so an invisible change can flip them. :class:`PixelNoise`
(a stand-in round trip that only adds noise) measures that sensitivity: what a tokenizer off by about
one grey level would score at best.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from lvg.images import images_to_tensor, tensor_to_arrays
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import object_box
from lvg.worlds.shapes.world import BACKGROUNDS, COLORS, SHAPES, SIZES, Scene, sample_scene

IOU_SEED = "lvg-object-iou"  # held-out scenes: a stream of their own, never used in training
GOOD_IOU = 0.9


class PixelNoise:
    """A stand-in "tokenizer" whose round trip adds Gaussian noise of ``sigma`` grey levels (then rounds to
    uint8): the mask IoU any reconstruction that close to the render can be sure of."""

    device = torch.device("cpu")

    def __init__(self, sigma: float = 1.0, seed: int = 0):
        self.sigma = sigma
        self.generator = torch.Generator().manual_seed(seed)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(codes.shape, generator=self.generator) * self.sigma
        return ((codes.float() + noise) / 255).clamp(0, 1)


def object_masks(image: np.ndarray, scene: Scene) -> list[np.ndarray]:
    """One bool mask [64, 64] per object of ``scene`` in ``image`` (uint8 [64, 64, 3])."""
    img = image.astype(np.float32)
    bg = np.array(BACKGROUNDS[scene.bg], np.float32)
    out = []
    for o in scene.objects:
        col = np.array(COLORS[o.color], np.float32)
        d = col - bg
        alpha = ((img - bg) @ d) / float(d @ d)  # [64, 64]
        x0, y0, x1, y1 = object_box(o)
        window = np.zeros(alpha.shape, bool)
        window[max(0, int(y0) - 1) : int(np.ceil(y1)) + 1, max(0, int(x0) - 1) : int(np.ceil(x1)) + 1] = True
        out.append((alpha > 0.5) & window)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@torch.inference_mode()
def object_iou(tokenizer: Any, num: int = 1000, seed: str = IOU_SEED, batch_size: int = 250) -> dict[str, Any]:
    """Round-trip ``num`` held-out scenes through ``tokenizer`` (``encode``/``decode``) and measure every object.

    Returns ``{"objects", "min_share_good", "per_kind": {"small star": {"n", "mean_iou", "share_good"}, ...}}``
    where ``share_good`` is the share of objects with IoU >= 0.9 and ``min_share_good`` the lowest over kinds.
    """
    scenes = [sample_scene(random.Random(f"{seed}:{i}")) for i in range(num)]
    per: dict[str, list[float]] = defaultdict(list)
    for s in range(0, num, batch_size):
        chunk = scenes[s : s + batch_size]
        imgs = np.stack([render(sc) for sc in chunk])
        x = images_to_tensor(imgs).to(tokenizer.device)
        rec = tensor_to_arrays(tokenizer.decode(tokenizer.encode(x)))
        for sc, a, b in zip(chunk, imgs, rec):
            for o, ma, mb in zip(sc.objects, object_masks(a, sc), object_masks(b, sc)):
                per[f"{o.size} {o.shape}"].append(iou(ma, mb))
    kinds = {f"{z} {s}": per.get(f"{z} {s}", []) for s in SHAPES for z in SIZES}
    table = {k: {"n": len(v), "mean_iou": float(np.mean(v)) if v else float("nan"),
                 "share_good": float(np.mean([x >= GOOD_IOU for x in v])) if v else float("nan")}
             for k, v in kinds.items()}  # fmt: skip
    return {"scenes": num, "objects": sum(len(v) for v in kinds.values()),
            "min_share_good": min(t["share_good"] for t in table.values() if t["n"]), "per_kind": table}  # fmt: skip
