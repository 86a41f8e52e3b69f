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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORLDS: dict[str, str] = {"shapes": "lvg.worlds.shapes.plugin:WORLD", "emoji": "lvg.worlds.emoji.plugin:WORLD"}
DEFAULT_WORLD = "shapes"


@dataclass(frozen=True)
class Reading:
    """What a world teaches a reading LM (layout -> caption, question + layout -> answer) and how it is checked.

    Samples are ``(layout, lang, question or None, answer, kind)`` records (``.layout`` ... ``.kind``); layouts carry
    the labels a planner and a reader of the world write (with the style folded in where the world has one)."""

    question_types: tuple[str, ...]
    labels: tuple[str, ...]  # every label the stream's layouts use
    backgrounds: tuple[str, ...]
    canvas: int
    held_out_seed: int  # the stream's seed no training run uses (its held-out captions)
    sample: Callable[[int, int, float], Any]  # (index, seed, caption_prob) -> item ``index`` of the stream
    held_out_questions: Callable[[int, str], list[tuple[Any, Any]]]  # (per type, lang) -> [(scene, question)]
    caption: Callable[[Any, str], str]  # (scene, lang) -> its complete canonical caption
    layout: Callable[[Any], Any]  # scene -> the Layout the reading LM reads (reading order)
    complete: Callable[[str], bool]  # does a caption state everything about a scene (what captions must do)?


@dataclass(frozen=True)
class EditStream:
    """What a world's edit stream draws (``lvg train planner``'s ``data.edit_*`` settings)."""

    seed: int = 0
    combo_prob: float = 0.25  # two edits in one instruction
    refusal_prob: float = 0.12  # an instruction to refuse, with its reason
    group_prob: float | None = None  # how often a scene repeats objects (None: the world's own rate)
    type_weights: dict[str, float] = field(default_factory=dict)  # of the first edit's type ({} uniform; of edit_types)
    order: str = "reading"  # the objects' order in both layouts (lvg.data.layout.LAYOUT_ORDERS)
    varied_prob: float = 0.0  # how often a repeated object first differs from its copies (a world that draws it)


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
    # the public benchmark's rows ({id, category, spec, en, zh}), or those of a prompt file of the same format
    benchmark_prompts: Callable[..., list[dict]]
    reading: Reading | None = None  # a world-driven reading-LM stream (Shapes World's lives in its trainer)
    explain: Callable[[str], str | None] | None = None  # why its grammar cannot read a prompt (None: it can)
    # (index, seed, held_out) -> (prompt, reason): prompts the world's planner must refuse (lvg.data.text.REFUSAL_REASONS);
    # held_out draws from words that never train. Shapes World's refusals live in its planner stream.
    refusal: Callable[[int, int, bool], tuple[str, str]] | None = None
    # (layout, lang) -> the complete canonical caption of the scene a read layout shows, written by the world itself
    # (no LM); None when the layout is no scene of the world. Restore checks a restored image against a prompt with it.
    describe: Callable[[Any, str], str | None] | None = None
    # (index, EditStream) -> (instruction, layout before, layout after or None, refusal reason or None): item
    # ``index`` of the world's edit stream, what an editor LM learns from (lvg.data.text.EDIT_REFUSAL_REASONS; layouts
    # with the labels its planner writes). Shapes World's edits live in its planner stream.
    edit: Callable[[int, EditStream], tuple[str, Any, Any, str | None]] | None = None
    edit_types: tuple[str, ...] = ()  # the edit types its stream draws (what EditStream.type_weights may name)


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


def attach_world(pipe: Any, name: str | None = None) -> Any:
    """Give ``pipe`` its world's checks where it takes them and has none: ``entails`` (which ``verify`` uses),
    ``explain`` (the world's reading of a prompt it cannot parse, named in a refusal) and ``describe`` (a read
    layout's canonical caption, which ``restore`` checks a prompt against). The world is ``name``, else
    the one the model folder declares (``pipe.world``, model_index.json "world"), else Shapes World. The world is
    loaded on the first call, not now: a model generates without its world's data (Emoji World's cache)."""
    declared = getattr(pipe, "world", None)
    if name is None and declared is not None and declared not in WORLDS:
        where = getattr(pipe, "world_source", None) or "the model folder"
        raise ValueError(f"{where}: world {declared!r} is not a registered world ({sorted(WORLDS)})")
    name = name or declared or DEFAULT_WORLD
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; registered: {sorted(WORLDS)}")
    if hasattr(pipe, "entails") and pipe.entails is None:
        pipe.entails = _WorldCall(name, "entails")
    if hasattr(pipe, "explain") and pipe.explain is None:
        pipe.explain = _WorldCall(name, "explain")
    if hasattr(pipe, "describe") and pipe.describe is None:
        pipe.describe = _WorldCall(name, "describe")
    return pipe


@dataclass(frozen=True)
class _WorldCall:
    """``get_world(name).<attribute>(...)``, the world loaded on the first call (None where it has no such check)."""

    name: str
    attribute: str

    def __call__(self, *args: Any) -> Any:
        fn = getattr(get_world(self.name), self.attribute)
        return None if fn is None else fn(*args)


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
