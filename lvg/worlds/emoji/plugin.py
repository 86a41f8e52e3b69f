"""Emoji World as a :class:`lvg.worlds.World` (``get_world("emoji")``); the contract is docs/emoji-world.md.

Registered lazily: importing this module reads nothing; asking for :data:`WORLD` (which ``get_world("emoji")`` does)
loads the asset cache ``$LVG_HOME/emoji`` (fetching it once with npm when it is missing; without npm and tarballs the
error is one line saying what to run) and builds the default concept table. Other settings (categories, canvas) are
:func:`load_emoji_world` and :func:`emoji_world`.

Its referee (:mod:`lvg.worlds.emoji.referee`: pixels -> objects, emoji, style, size, cell -> verdict) and benchmark
prompts (``benchmarks/emoji_prompts.jsonl``) are the World's ``judge`` and ``benchmark_prompts``; ``entails`` checks
that a complete caption read back from an image satisfies a prompt (``verify`` and the closed loop), and ``reading``
is the reading LM's stream (:mod:`lvg.worlds.emoji.reading`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from lvg.data.layout import READ_TOLERANCE, Layout
from lvg.resources import emoji_prompts_file
from lvg.worlds import EditStream, Reading, World

from .analysis import Outside, outside_names, refusal_sample
from .assets import emoji_home
from .benchmark import load_prompts
from .concepts import DEFAULT_CATEGORIES
from .edits import EDIT_TYPES, EmojiEditConfig, make_edit_sample
from .imagefolder import write_imagefolder
from .reading import (
    QUESTION_TYPES,
    ReadingDataConfig,
    caption_entails,
    caption_scene,
    held_out_questions,
    make_reading_sample,
    scene_caption,
    styled_layout,
)
from .referee import referee_for
from .scenes import BACKGROUNDS, DEFAULT_CANVAS, EmojiScene, pool_choices, sample_scene
from .world import HELD_OUT_SEED, EmojiWorld, EmojiWorldConfig


def load_emoji_world(
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    canvas: int = DEFAULT_CANVAS,
    home: str | os.PathLike | None = None,
    pool: str = "train",
) -> EmojiWorld:
    """The :class:`EmojiWorld` of ``categories`` on a ``canvas`` px canvas whose scenes draw from ``pool`` (train,
    all, unseen, style-held-out), its cache at ``home`` (default ``$LVG_HOME/emoji``), fetched first if missing."""
    return EmojiWorld.load(EmojiWorldConfig(categories=tuple(categories), canvas=canvas, pool=pool), home)


def emoji_world(world: EmojiWorld) -> World:
    """``world`` (its concept table and canvas) as a :class:`~lvg.worlds.World`."""

    def write(out: str | os.PathLike, num: int, seed: int = 0, overwrite: bool = False) -> Path:
        return write_imagefolder(out, num, seed, world=world, overwrite=overwrite)

    referee = functools.cache(lambda: referee_for(world))  # built (classifier loaded) on the first judgement
    # the names outside the world's categories (the whole cache's concept table), read once on first use by the
    # refusal or the edit stream
    outside = functools.cache(lambda: outside_names(world.assets, world.table))

    return World(
        name="emoji",
        canvas=world.cfg.canvas,
        labels=tuple(c.en for c in world.table),
        backgrounds=tuple(BACKGROUNDS),
        langs=("en", "zh"),
        sample_scene=functools.partial(sample_scene, table=world.table, cfg=world.cfg.scene_config()),
        render=world.render,
        caption=world.caption,
        parse=world.parse,
        judge=lambda image, prompt: referee().judge(image, prompt),
        entails=lambda caption, prompt: caption_entails(caption, prompt, world.table, world.cfg.canvas),
        layout_from_scene=EmojiScene.layout,
        layout_to_scene=world.layout_to_scene,
        make_sample=world.sample,  # (index, seed)
        held_out_samples=world.held_out_samples,
        write_imagefolder=write,
        caption_corpus=world.caption_corpus,
        benchmark_prompts=lambda path=None: load_prompts(path or emoji_prompts_file(), world.table),
        reading=world_reading(world),
        refusal=world_refusals(world, outside),
        explain=functools.partial(explain_prompt, world),
        describe=functools.partial(describe_layout, world),
        edit=world_edits(world, outside),
        edit_types=EDIT_TYPES,
    )


def describe_layout(world: EmojiWorld, layout: Layout, lang: str = "en") -> str | None:
    """The complete canonical caption of the scene a read ``layout`` shows (boxes within ``READ_TOLERANCE`` px of the
    world's, as the reading evaluation allows), or None when it is no Emoji World scene."""
    try:
        scene = world.layout_to_scene(layout, tolerance=READ_TOLERANCE)
    except ValueError:  # (LayoutError is one)
        return None
    return scene_caption(scene, world.table, lang)


def explain_prompt(world: EmojiWorld, prompt: str) -> str | None:
    """What Emoji World's grammar makes of a prompt it cannot read ("unknown emoji 'guitar'"), or None when it reads
    it: the words a refusal names (the planner decides; this only explains)."""
    try:
        world.parse(prompt)
    except ValueError as e:
        return str(e).split(" in caption ")[0].split(" at '")[0].split(" at the end")[0]
    return None


def world_refusals(world: EmojiWorld, outside: Callable[[], Outside]) -> Callable[[int, int, bool], tuple[str, str]]:
    """Emoji World's stream of prompts to refuse (:mod:`lvg.worlds.emoji.analysis`) over the names ``outside()``
    gives."""

    def refusal(index: int, seed: int, held_out: bool = False) -> tuple[str, str]:
        return refusal_sample(index, seed, world, outside(), held_out)

    return refusal


def world_edits(world: EmojiWorld, outside: Callable[[], Outside]
                ) -> Callable[[int, EditStream], tuple[str, Layout, Layout | None, str | None]]:  # fmt: skip
    """Emoji World's edit stream (:mod:`lvg.worlds.emoji.edits`) as layouts with styled labels, reading order, its
    outside names from ``outside()``; its scenes repeat emoji at the stream's ``group_prob`` (None: the world's own
    rate, ``EmojiWorldConfig.group_prob``)."""

    def edit(index: int, stream: EditStream):
        scenes = world.cfg.scene_config()
        if stream.group_prob is not None:
            scenes = replace(scenes, group_prob=stream.group_prob)
        cfg = EmojiEditConfig(stream.seed, stream.combo_prob, stream.refusal_prob, dict(stream.type_weights),
                              stream.order, stream.varied_prob)  # fmt: skip
        s = make_edit_sample(index, world.table, outside(), cfg, scenes=scenes)
        return s.instruction, s.before_layout, s.after_layout, s.refusal

    return edit


def world_reading(world: EmojiWorld) -> Reading:
    """Emoji World's reading stream (:mod:`lvg.worlds.emoji.reading`) over the image tokenizer's training pool: the
    emoji and styles a model trained on ``lvg data emoji`` knows (styled labels, ``"cat (noto)"``)."""
    scenes = world.cfg.scene_config()

    def sample(index: int, seed: int, caption_prob: float):
        return make_reading_sample(index, world.table, scenes, ReadingDataConfig(seed, caption_prob, scenes.pool))

    return Reading(
        question_types=QUESTION_TYPES,
        labels=tuple(sorted(f"{e} ({s})" for e, s in pool_choices(world.table, scenes.pool))),
        backgrounds=tuple(BACKGROUNDS),
        canvas=world.cfg.canvas,
        held_out_seed=HELD_OUT_SEED,
        sample=sample,
        held_out_questions=lambda per_type, lang: held_out_questions(per_type, lang, world.table, scenes),
        caption=lambda scene, lang: scene_caption(scene, world.table, lang),
        layout=styled_layout,
        complete=lambda caption: caption_scene(caption, world.table, world.cfg.canvas) is not None,
    )


@functools.cache
def _world_at(home: Path) -> World:
    return emoji_world(load_emoji_world(home=home))


def __getattr__(name: str) -> World:
    """``WORLD``: the default Emoji World of the cache ``$LVG_HOME/emoji``, loaded on first use."""
    if name == "WORLD":
        return _world_at(emoji_home())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
