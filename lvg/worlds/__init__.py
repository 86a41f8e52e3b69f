"""Worlds: each one a package with its data, its captions and the referee that checks images against text.

A world provides its scene sampler and renderer (the data stream and its imagefolder export), its captioner and
caption grammar (EN/ZH), its label set and backgrounds on a square canvas, a held-out split, benchmark prompts and
its referee (the pixel judge, and the check that a caption satisfies a prompt). Everything else in lvg (tokenizers,
layouts, models, sampling, pipelines, serving) is generic and imports no world: it is handed a world's texts,
labels and checks by the caller (the CLI, the trainers, the evaluation, ``lvg.load_pipeline``).

Worlds sit at the data level: a world may import ``lvg.data`` and the top-level helpers, nothing above.
:data:`WORLDS` maps a name to ``"module:ATTRIBUTE"`` (imported only when asked for, like the pipeline registry), so
adding a world is one entry::

    register_world("emoji", "lvg.worlds.emoji.plugin:WORLD")
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORLDS: dict[str, str] = {"shapes": "lvg.worlds.shapes.plugin:WORLD", "emoji": "lvg.worlds.emoji.plugin:WORLD"}
DEFAULT_WORLD = "shapes"


@dataclass(frozen=True)
class World:
    """What a world plugs into lvg. Scenes, captions, specs and verdicts are the world's own types; what crosses
    into the generic layers is plain: strings, labels, :class:`~lvg.data.layout.Layout` and uint8 images."""

    name: str
    canvas: int  # square images of canvas x canvas pixels
    labels: tuple[str, ...]  # every object label its layouts use
    backgrounds: tuple[str, ...]  # every background label
    langs: tuple[str, ...]  # caption languages
    sample_scene: Callable[..., Any]  # (random.Random) -> scene
    render: Callable[[Any], Any]  # scene -> uint8 [canvas, canvas, 3]
    caption: Callable[..., Any]  # (scene, random.Random) -> caption (``.en``, ``.zh``, ``.spec``)
    parse: Callable[[str], Any]  # caption or prompt -> spec; a ValueError subclass names what does not parse
    judge: Callable[[Any, Any], Any]  # (image, prompt or spec) -> verdict (``.passed``, ``.reason``)
    entails: Callable[[str | None, str], bool | None]  # does a (complete) caption satisfy a prompt? None: no parse
    layout_from_scene: Callable[..., Any]  # scene -> Layout
    layout_to_scene: Callable[..., Any]  # Layout -> scene (a LayoutError names what does not fit)
    make_sample: Callable[..., Any]  # (index, config) -> item ``index`` of the data stream
    held_out_samples: Callable[[int], list[Any]]  # items 0..n-1 of the stream no training run uses
    write_imagefolder: Callable[..., Path]  # (out, num, seed) -> a Hugging Face imagefolder with metadata.jsonl
    caption_corpus: Callable[..., Iterator[str]]  # (num, seed) -> caption texts (the text tokenizer's corpus)
    benchmark_prompts: Callable[[], list[dict]]  # the public benchmark's rows ({id, category, spec, en, zh})


def register_world(name: str, target: str) -> None:
    """Register world ``name`` as the :class:`World` at ``target`` (``"package.module:ATTRIBUTE"``, imported lazily)."""
    module, sep, attr = target.partition(":")
    if not (name and module and sep and attr):
        raise ValueError(f"register_world needs a name and a 'module:ATTRIBUTE' target, got {name!r}, {target!r}")
    WORLDS[name] = target


def get_world(name: str = DEFAULT_WORLD) -> World:
    """The world registered as ``name`` (imported now)."""
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; registered: {sorted(WORLDS)}")
    module, _, attr = WORLDS[name].partition(":")
    world = getattr(importlib.import_module(module), attr)
    if not isinstance(world, World):
        raise TypeError(f"{WORLDS[name]} is not a World")
    return world


def attach_world(pipe: Any, name: str = DEFAULT_WORLD) -> Any:
    """Give ``pipe`` the world's referee where it takes one and has none (``entails``, which ``verify`` uses)."""
    if hasattr(pipe, "entails") and pipe.entails is None:
        pipe.entails = get_world(name).entails
    return pipe


def read_benchmark_rows(path: str | os.PathLike, normalize: Callable[[Any], Any], categories: Any) -> list[dict]:
    """A world's benchmark JSONL file: every row a JSON object whose ``spec`` ``normalize`` accepts (and returns
    normalised) and whose ``category`` is one of ``categories``; a bad row is a ValueError naming the file and line."""
    from lvg.files import read_jsonl

    rows = []
    for n, row in read_jsonl(path):
        try:
            if not isinstance(row, dict):
                raise ValueError("a row must be a JSON object")
            row["spec"] = normalize(row["spec"])
            if row.get("category") not in categories:
                raise ValueError(f"unknown category {row.get('category')!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: bad benchmark row: {e}") from None
        rows.append(row)
    return rows
