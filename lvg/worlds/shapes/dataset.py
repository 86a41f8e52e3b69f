"""Infinite, seeded Shapes World training stream.

Item ``i`` of seed ``s`` is a pure function of ``(s, i)``: its own ``random.Random`` is seeded
from both, so streams reproduce exactly, resume from any index, and split into disjoint
interleaved slices across DataLoader workers and distributed ranks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lvg.images import images_to_tensor

from .captions import CaptionConfig, caption, describe_fully, spec_to_text
from .render import render
from .world import Scene, sample_scene


@dataclass
class ShapesWorldConfig:
    """What the stream draws: caption languages, paraphrase rate and caption omission rates."""

    seed: int = 0
    langs: tuple[str, ...] = ("en", "zh")
    paraphrase_prob: float = 0.0  # chance that ``text`` is a paraphrase instead of canonical
    captions: CaptionConfig = field(default_factory=CaptionConfig)


@dataclass
class ShapesWorldSample:
    index: int
    scene: Scene
    image: np.ndarray  # uint8 [64, 64, 3]
    spec: dict
    en: str
    zh: str
    lang: str
    text: str  # the caption to train on: ``en`` or ``zh``, or a paraphrase of it

    @property
    def full_text(self) -> str:
        """The complete canonical description of the scene in ``lang`` (the captioning target)."""
        return spec_to_text(describe_fully(self.scene), self.lang)


def make_sample(index: int, cfg: ShapesWorldConfig | None = None) -> ShapesWorldSample:
    """Deterministically build item ``index`` of the stream configured by ``cfg``."""
    cfg = cfg or ShapesWorldConfig()
    rng = random.Random(f"lvg-shapes-world:{cfg.seed}:{index}")
    scene = sample_scene(rng)
    cap = caption(scene, rng, cfg.captions)
    lang = rng.choice(cfg.langs)
    text = cap.en if lang == "en" else cap.zh
    if cfg.paraphrase_prob and rng.random() < cfg.paraphrase_prob:
        text = spec_to_text(cap.spec, lang, rng)
    return ShapesWorldSample(index, scene, render(scene), cap.spec, cap.en, cap.zh, lang, text)


def _shard() -> tuple[int, int]:
    """(position, count) of this process's slice over distributed ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + wid, world * nw


class ShapesWorldDataset(IterableDataset):
    """Endless stream of rendered Shapes World scenes with captions.

    Yields dicts: ``image`` uint8 tensor [3, 64, 64], ``text``, ``lang``, ``text_en``,
    ``text_zh``, ``spec`` (JSON string, so default collation works) and ``index``.
    ``start`` skips the first items (for resuming); ``limit`` makes the stream finite.
    """

    def __init__(self, cfg: ShapesWorldConfig | None = None, start: int = 0, limit: int | None = None):
        super().__init__()
        self.cfg = cfg or ShapesWorldConfig()
        self.start = start
        self.limit = limit

    def __iter__(self) -> Iterator[dict]:
        pos, count = _shard()
        index = self.start + pos
        end = None if self.limit is None else self.start + self.limit
        while end is None or index < end:
            s = make_sample(index, self.cfg)
            yield {
                "image": images_to_tensor([s.image])[0],
                "text": s.text,
                "lang": s.lang,
                "text_en": s.en,
                "text_zh": s.zh,
                "spec": json.dumps(s.spec, ensure_ascii=False),
                "index": s.index,
            }
            index += count


class ShapesWorldBatches(IterableDataset):
    """Endless stream of whole batches: batch ``b`` holds items ``b*B .. b*B+B-1``.

    Because batches (not items) are what workers and ranks split, the sequence of batches a
    trainer sees is the same for any number of DataLoader workers, and resuming at step ``s``
    is ``start_batch=s``. Use with ``DataLoader(batch_size=None)``. Yields ``image`` uint8
    [B, 3, 64, 64] plus ``text`` / ``lang`` / ``full_text`` / ``spec`` lists when ``captions`` is true.
    """

    def __init__(
        self, batch_size: int, cfg: ShapesWorldConfig | None = None, start_batch: int = 0, captions: bool = True
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size, self.cfg, self.start_batch, self.captions = (
            batch_size,
            cfg or ShapesWorldConfig(),
            start_batch,
            captions,
        )

    def __iter__(self) -> Iterator[dict]:
        pos, count = _shard()
        b = self.start_batch + pos
        while True:
            items = [make_sample(b * self.batch_size + j, self.cfg) for j in range(self.batch_size)]
            batch: dict = {"image": images_to_tensor([s.image for s in items])}
            if self.captions:
                batch.update(
                    text=[s.text for s in items],
                    lang=[s.lang for s in items],
                    full_text=[s.full_text for s in items],
                    spec=[json.dumps(s.spec, ensure_ascii=False) for s in items],
                )
            batch["batch_index"] = b
            yield batch
            b += count
