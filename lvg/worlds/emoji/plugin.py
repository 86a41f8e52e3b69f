"""Emoji World as a :class:`lvg.worlds.World` (``get_world("emoji")``); the contract is docs/emoji-world.md.

Registered lazily: importing this module reads nothing; asking for :data:`WORLD` (which ``get_world("emoji")`` does)
loads the asset cache ``$LVG_HOME/emoji`` (fetching it once with npm when it is missing; without npm and tarballs the
error is one line saying what to run) and builds the default concept table. Other settings (categories, canvas) are
:func:`load_emoji_world` and :func:`emoji_world`.

Its referee (:mod:`lvg.worlds.emoji.referee`: pixels -> objects, emoji, style, size, cell -> verdict) and benchmark
prompts (``benchmarks/emoji_prompts.jsonl``) are the World's ``judge`` and ``benchmark_prompts``. The check that a
caption satisfies a prompt (``entails``, which ``verify`` needs) is not written yet: that field raises
:class:`EmojiWorldMissingError` naming it, never answers silently.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from lvg.resources import emoji_prompts_file
from lvg.worlds import World

from .assets import emoji_home
from .benchmark import load_prompts
from .concepts import DEFAULT_CATEGORIES
from .imagefolder import write_imagefolder
from .referee import referee_for
from .scenes import BACKGROUNDS, DEFAULT_CANVAS, EmojiScene, sample_scene
from .world import EmojiWorld, EmojiWorldConfig


class EmojiWorldMissingError(ValueError):
    """A part of the World contract Emoji World does not provide yet; the message names it."""


def load_emoji_world(
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    canvas: int = DEFAULT_CANVAS,
    home: str | os.PathLike | None = None,
    pool: str = "train",
) -> EmojiWorld:
    """The :class:`EmojiWorld` of ``categories`` on a ``canvas`` px canvas whose scenes draw from ``pool`` (train,
    all, unseen, style-held-out), its cache at ``home`` (default ``$LVG_HOME/emoji``), fetched first if missing."""
    return EmojiWorld.load(EmojiWorldConfig(categories=tuple(categories), canvas=canvas, pool=pool), home)


def _missing(what: str) -> Callable[..., NoReturn]:
    def missing(*args: object, **kwargs: object) -> NoReturn:
        raise EmojiWorldMissingError(f"Emoji World has no {what} yet (v1 is the data side only; docs/emoji-world.md)")

    missing.__name__ = f"missing_{what.split()[0]}"
    return missing


def emoji_world(world: EmojiWorld) -> World:
    """``world`` (its concept table and canvas) as a :class:`~lvg.worlds.World`."""

    def write(out: str | os.PathLike, num: int, seed: int = 0, overwrite: bool = False) -> Path:
        return write_imagefolder(out, num, seed, world=world, overwrite=overwrite)

    referee = functools.cache(lambda: referee_for(world))  # built (classifier loaded) on the first judgement

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
        entails=_missing("referee (caption-entails-prompt check)"),
        layout_from_scene=EmojiScene.layout,
        layout_to_scene=world.layout_to_scene,
        make_sample=world.sample,  # (index, seed)
        held_out_samples=world.held_out_samples,
        write_imagefolder=write,
        caption_corpus=world.caption_corpus,
        benchmark_prompts=lambda: load_prompts(emoji_prompts_file(), world.table),
    )


@functools.cache
def _world_at(home: Path) -> World:
    return emoji_world(load_emoji_world(home=home))


def __getattr__(name: str) -> World:
    """``WORLD``: the default Emoji World of the cache ``$LVG_HOME/emoji``, loaded on first use."""
    if name == "WORLD":
        return _world_at(emoji_home())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
