"""Emoji World in one object: the checked cache, the concept table, the sprites and a seeded sample stream.

Item ``i`` of seed ``s`` is a pure function of ``(s, i)`` and the config: its own ``random.Random`` is seeded from
both, so streams reproduce exactly and resume from any index.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from lvg.data.layout import Layout

from .assets import EmojiAssets, ensure_assets
from .captions import (
    Caption,
    CaptionConfig,
    Spec,
    caption,
    caption_order,
    describe,
    describe_fully,
    parse_caption,
    spec_to_text,
)
from .concepts import DEFAULT_CATEGORIES, SPLIT_SEED, ConceptTable, build_concepts
from .scenes import DEFAULT_CANVAS, EmojiScene, SceneConfig, SpriteBank, layout_to_scene, render, sample_scene

HELD_OUT_SEED = 1_000_003  # training streams use small seeds (0, 1, ...); held-out checks draw this one


@dataclass(frozen=True)
class EmojiWorldConfig:
    """Which emoji (categories, split seed), which of them may appear (``pool``), the canvas and caption rates."""

    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    canvas: int = DEFAULT_CANVAS
    pool: str = "train"  # see SceneConfig: train | all | unseen | style-held-out
    split_seed: int = SPLIT_SEED
    group_prob: float = 0.3
    captions: CaptionConfig = field(default_factory=CaptionConfig)

    def scene_config(self) -> SceneConfig:
        return SceneConfig(canvas=self.canvas, pool=self.pool, group_prob=self.group_prob)


@dataclass
class EmojiSample:
    index: int
    scene: EmojiScene
    image: np.ndarray  # uint8 [canvas, canvas, 3]
    spec: Spec
    en: str
    zh: str
    order: list[int]  # the scene's emoji in the order the caption mentions them

    def full_spec(self, table: ConceptTable) -> Spec:
        """Everything about the scene (each emoji's style, size and cell, and the background): the captioning target."""
        return describe_fully(self.scene, table)

    def objects(self) -> list[dict]:
        """``[{"label", "box", "style"}]`` in caption order (label: the emoji's EN name)."""
        lay = self.scene.layout(self.order).to_dict()["objects"]
        return [{**o, "style": self.scene.objects[j].style} for o, j in zip(lay, self.order)]


class EmojiWorld:
    """The world: ``EmojiWorld.load()`` fetches what is missing (npm, once) and builds the concept table."""

    def __init__(self, assets: EmojiAssets, cfg: EmojiWorldConfig | None = None):
        self.cfg = cfg or EmojiWorldConfig()
        self.cfg.scene_config()  # validates canvas and pool
        self.assets = assets
        self.table: ConceptTable = build_concepts(assets, self.cfg.categories, self.cfg.split_seed)
        self.bank = SpriteBank(assets, self.table)

    @classmethod
    def load(cls, cfg: EmojiWorldConfig | None = None, home: str | os.PathLike | None = None) -> EmojiWorld:
        return cls(ensure_assets(home), cfg)

    def sample(self, index: int, seed: int = 0, pool: str | None = None) -> EmojiSample:
        """Item ``index`` of the stream of ``seed``: scene, image, spec and canonical EN/ZH captions (``pool``
        overrides the config's)."""
        rng = random.Random(f"lvg-emoji-world:{seed}:{index}")
        cfg = self.cfg.scene_config()
        if pool is not None:
            cfg = SceneConfig(canvas=cfg.canvas, pool=pool, group_prob=cfg.group_prob)
        scene = sample_scene(rng, self.table, cfg)
        spec = describe(scene, rng, self.table, self.cfg.captions)
        return EmojiSample(index, scene, self.render(scene), spec, self.text(spec, "en"), self.text(spec, "zh"),
                           caption_order(scene, spec))  # fmt: skip

    def render(self, scene: EmojiScene) -> np.ndarray:
        return render(scene, self.bank)

    def text(self, spec: Spec, lang: str = "en") -> str:
        return spec_to_text(spec, self.table, lang)

    def parse(self, text: str, lang: str | None = None) -> Spec:
        return parse_caption(text, self.table, lang)

    def caption(self, scene: EmojiScene, rng: random.Random) -> Caption:
        return caption(scene, rng, self.table, self.cfg.captions)

    def layout_to_scene(self, layout: Layout, styles: list[str] | None = None, tolerance: float = 1e-3) -> EmojiScene:
        return layout_to_scene(layout, self.table, styles, tolerance)

    def held_out_samples(self, num: int, seed: int = HELD_OUT_SEED, pool: str = "all") -> list[EmojiSample]:
        """Items ``0 .. num-1`` of the stream of ``seed`` (no training run uses it) drawing from ``pool``: ``all``,
        or ``unseen`` / ``style-held-out`` for the held-out emoji and styles."""
        if num < 1:
            raise ValueError(f"num must be at least 1, got {num}")
        return [self.sample(i, seed, pool) for i in range(num)]

    def caption_corpus(self, num: int, seed: int = 0) -> Iterator[str]:
        """``num`` scenes' canonical captions in both languages (the text tokenizer's corpus), any emoji and style."""
        rng = random.Random(f"lvg-emoji-text-corpus:{seed}")
        cfg = SceneConfig(canvas=self.cfg.canvas, pool="all", group_prob=self.cfg.group_prob)
        for _ in range(num):
            cap = self.caption(sample_scene(rng, self.table, cfg), rng)
            yield cap.en
            yield cap.zh
