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

from lvg.images import boxes_mask, images_to_tensor, tensor_to_arrays
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


def object_alphas(image: np.ndarray, scene: Scene) -> list[np.ndarray]:
    """One float map [64, 64] per object of ``scene`` in ``image`` (uint8 [64, 64, 3]): each pixel's fraction of the
    object's colour against the background, ``<p - bg, c - bg> / |c - bg|^2`` clipped to [0, 1], inside the object's
    box grown by one pixel (zero elsewhere)."""
    img = image.astype(np.float32)
    bg = np.array(BACKGROUNDS[scene.bg], np.float32)
    out = []
    for o in scene.objects:
        col = np.array(COLORS[o.color], np.float32)
        d = col - bg
        alpha = np.clip(((img - bg) @ d) / float(d @ d), 0.0, 1.0)  # [64, 64]
        window = boxes_mask([object_box(o)], alpha.shape[0], pad=1)
        out.append(np.where(window, alpha, 0.0))
    return out


def object_masks(image: np.ndarray, scene: Scene) -> list[np.ndarray]:
    """One bool mask [64, 64] per object of ``scene`` in ``image`` (uint8 [64, 64, 3]): its alpha above 0.5."""
    return [a > 0.5 for a in object_alphas(image, scene)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Soft IoU of coverage: ``sum(min(a, b)) / sum(max(a, b))`` of two alpha maps (1 when both are empty)."""
    union = np.maximum(a, b).sum()
    return float(np.minimum(a, b).sum() / union) if union else 1.0


@torch.inference_mode()
def object_iou(tokenizer: Any, num: int = 1000, seed: str = IOU_SEED, batch_size: int = 250,
               soft: bool = False) -> dict[str, Any]:  # fmt: skip
    """Round-trip ``num`` held-out scenes through ``tokenizer`` (``encode``/``decode``) and measure every object.

    Returns ``{"objects", "min_share_good", "per_kind": {"small star": {"n", "mean_iou", "share_good"}, ...}}``
    where ``share_good`` is the share of objects with IoU >= 0.9 and ``min_share_good`` the lowest over kinds.
    ``soft``: the soft IoU of coverage (:func:`soft_iou` of :func:`object_alphas`) instead of the 0.5-mask IoU.
    """

    def round_trip(start: int, chunk: list, imgs: np.ndarray) -> np.ndarray:
        x = images_to_tensor(imgs).to(tokenizer.device)
        return tensor_to_arrays(tokenizer.decode(tokenizer.encode(x)))

    return measure(round_trip, num, seed, batch_size, soft)


@torch.inference_mode()
def painted_object_iou(paint: Any, num: int = 1000, seed: str = IOU_SEED, batch_size: int = 250,
                       soft: bool = True) -> dict[str, Any]:  # fmt: skip
    """:func:`object_iou` of a painter: ``paint(layouts, seeds)`` -> uint8 images ``[B, H, W, 3]``; each held-out
    scene's layout is painted (scene ``i`` with seed ``i``) and compared with its render, object by object."""
    from lvg.worlds.shapes.scene_layout import layout_from_scene

    def painted(start: int, chunk: list, imgs: np.ndarray) -> np.ndarray:
        return np.asarray(paint([layout_from_scene(sc) for sc in chunk], list(range(start, start + len(chunk)))))

    return measure(painted, num, seed, batch_size, soft)


def measure(images_of: Any, num: int, seed: str, batch_size: int, soft: bool) -> dict[str, Any]:
    """Per-kind IoU of every object of ``num`` held-out scenes between its render and ``images_of(start, scenes,
    renders)`` (``start``: the index of the chunk's first scene)."""
    scenes = [sample_scene(random.Random(f"{seed}:{i}")) for i in range(num)]
    per: dict[str, list[float]] = defaultdict(list)
    maps, score = (object_alphas, soft_iou) if soft else (object_masks, iou)
    for s in range(0, num, batch_size):
        chunk = scenes[s : s + batch_size]
        imgs = np.stack([render(sc) for sc in chunk])
        rec = images_of(s, chunk, imgs)
        for sc, a, b in zip(chunk, imgs, rec):
            for o, ma, mb in zip(sc.objects, maps(a, sc), maps(b, sc)):
                per[f"{o.size} {o.shape}"].append(score(ma, mb))
    kinds = {f"{z} {s}": per.get(f"{z} {s}", []) for s in SHAPES for z in SIZES}
    table = {k: {"n": len(v), "mean_iou": float(np.mean(v)) if v else float("nan"),
                 "share_good": float(np.mean([x >= GOOD_IOU for x in v])) if v else float("nan")}
             for k, v in kinds.items()}  # fmt: skip
    return {"scenes": num, "objects": sum(len(v) for v in kinds.values()),
            "min_share_good": min(t["share_good"] for t in table.values() if t["n"]), "per_kind": table}  # fmt: skip
