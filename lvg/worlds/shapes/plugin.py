"""Shapes World as a :class:`lvg.worlds.World` (``get_world("shapes")``); the contract is docs/shapes-world.md."""

from __future__ import annotations

import os

from lvg.data.layout import READ_TOLERANCE, Layout
from lvg.resources import benchmark_prompts_file
from lvg.worlds import World

from .benchmark import load_prompts
from .captions import caption, caption_corpus, describe_fully, spec_to_text
from .dataset import make_sample
from .export import write_imagefolder
from .heldout import held_out_samples
from .judge import judge
from .parse import parse_caption
from .reading import caption_entails
from .render import render
from .scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS, layout_from_scene, layout_to_scene
from .world import CANVAS, sample_scene


def describe(layout: Layout, lang: str = "en") -> str | None:
    """The complete canonical caption of the scene a read ``layout`` shows (boxes within ``READ_TOLERANCE`` px of a
    cell's), or None when it is no Shapes World scene."""
    try:
        return spec_to_text(describe_fully(layout_to_scene(layout, tolerance=READ_TOLERANCE)), lang)
    except ValueError:  # (LayoutError is one)
        return None


def benchmark_prompts(path: str | os.PathLike | None = None) -> list[dict]:
    """The shipped public benchmark (``benchmarks/shapes_prompts.jsonl``, 450 rows), or the prompt file ``path``."""
    return load_prompts(path or benchmark_prompts_file())


WORLD = World(
    name="shapes",
    canvas=CANVAS,
    labels=SHAPES_WORLD_LABELS,
    backgrounds=SHAPES_WORLD_BACKGROUNDS,
    langs=("en", "zh"),
    sample_scene=sample_scene,
    render=render,
    caption=caption,
    parse=parse_caption,
    judge=judge,
    entails=caption_entails,
    layout_from_scene=layout_from_scene,
    layout_to_scene=layout_to_scene,
    make_sample=make_sample,
    held_out_samples=held_out_samples,
    write_imagefolder=write_imagefolder,
    caption_corpus=caption_corpus,
    benchmark_prompts=benchmark_prompts,
    describe=describe,
)
