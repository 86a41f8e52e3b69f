"""The Emoji World benchmark: its categories, seeded prompt sets, and real renders of a prompt.

Prompts draw (emoji, style) pairs that the image models see in training (pool ``train``), except the category
``style_held_out``: each of its prompts states, for a style-held-out emoji, the style training never shows, so
whether style and content are disentangled is reported apart.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable

from lvg.worlds import read_benchmark_rows

from .captions import Spec, normalize_spec, spec_to_text
from .concepts import STYLES, ConceptTable
from .scenes import (
    BACKGROUNDS,
    CELLS,
    DEFAULT_CANVAS,
    RELATIONS,
    SIZES,
    EmojiObj,
    EmojiScene,
    EmojiSceneError,
    _place,
    pool_choices,
    relation_holds,
)

CATEGORIES = (
    "single",
    "counting",
    "two_emoji",
    "sizes",
    "position",
    "relation",
    "background",
    "style",
    "style_held_out",
)
Gen = Callable[[random.Random, list[str], list[tuple[str, str]]], Spec]


def _maybe(rng: random.Random, g: dict, key: str, options) -> dict:
    if rng.random() < 0.5:
        g[key] = rng.choice(list(options))
    return g


def _single(rng, names, pairs) -> Spec:
    return {"groups": [{"emoji": rng.choice(names)}]}


def _counting(rng, names, pairs) -> Spec:
    return {
        "groups": [_maybe(rng, {"emoji": rng.choice(names), "count": rng.randint(2, 4)}, "size", ("small", "large"))]
    }


def _two_emoji(rng, names, pairs) -> Spec:
    a, b = rng.sample(names, 2)
    return {"groups": [{"emoji": a}, {"emoji": b}]}


def _sizes(rng, names, pairs) -> Spec:
    a, b = rng.sample(names, 2)
    groups = [{"emoji": a, "size": rng.choice(("small", "large"))}]
    if rng.random() < 0.5:
        groups.append({"emoji": b, "size": rng.choice(("small", "large"))})
    return {"groups": groups}


def _position(rng, names, pairs) -> Spec:
    return {"groups": [{"emoji": rng.choice(names), "cell": list(rng.choice(CELLS))}]}


def _relation(rng, names, pairs) -> Spec:
    a, b = rng.sample(names, 2)
    return {"groups": [{"emoji": a}, {"emoji": b}], "relation": rng.choice(RELATIONS)}


def _background(rng, names, pairs) -> Spec:
    return {"groups": [{"emoji": rng.choice(names)}], "bg": rng.choice(list(BACKGROUNDS))}


def _style(rng, names, pairs) -> Spec:
    n = min(rng.choice((1, 1, 2)), len(pairs))
    return {"groups": [{"emoji": e, "style": s} for e, s in rng.sample(pairs, n)]}


GENERATORS: dict[str, Gen] = dict(
    zip(CATEGORIES, (_single, _counting, _two_emoji, _sizes, _position, _relation, _background, _style, _style))
)


def make_prompts(table: ConceptTable, per_category: int = 50, seed: int = 0) -> list[dict]:
    """``per_category`` distinct prompts for each category: ``{id, category, spec, en, zh}`` (canonical captions)."""
    rng = random.Random(f"lvg-emoji-benchmark:{seed}")
    seen = pool_choices(table, "train")  # (emoji, style) pairs training shows
    held = pool_choices(table, "style-held-out")  # the style never shown, for the style-held-out emoji
    names = sorted({e for e, _ in seen}, key=lambda e: table.get(e).id)
    rows = []
    for cat in CATEGORIES:
        pairs = held if cat == "style_held_out" else seen
        distinct: dict[str, Spec] = {}
        for _ in range(per_category * 50):
            if len(distinct) == per_category:
                break
            spec = normalize_spec(GENERATORS[cat](rng, names, pairs), table)
            distinct.setdefault(json.dumps(spec, sort_keys=True), spec)
        for i, spec in enumerate(list(distinct.values()) * (per_category // max(len(distinct), 1) + 1)):
            if i == per_category:
                break
            rows.append({"id": f"{cat}-{i:03d}", "category": cat, "spec": spec,
                         "en": spec_to_text(spec, table, "en"), "zh": spec_to_text(spec, table, "zh")})  # fmt: skip
    return rows


def load_prompts(path: str | os.PathLike, table: ConceptTable) -> list[dict]:
    """Read a benchmark JSONL file, validating every row against ``table`` (the error names the line)."""
    return read_benchmark_rows(path, lambda spec: normalize_spec(spec, table), CATEGORIES)


def scene_from_spec(spec: Spec, rng: random.Random, canvas: int = DEFAULT_CANVAS, bg: str | None = None) -> EmojiScene:
    """A random scene that satisfies the normalised ``spec``: unstated styles, sizes, cells (the relation kept),
    jitter and background (``bg`` if given, else white 0.75 / black 0.25) are drawn."""
    items = [g for g in spec["groups"] for _ in range(g["count"])]
    fixed = {i: tuple(g["cell"]) for i, g in enumerate(items) if "cell" in g}
    free = [c for c in CELLS if c not in fixed.values()]
    for _ in range(1000):
        pick = rng.sample(free, len(items) - len(fixed))
        cells = [fixed[i] if i in fixed else pick.pop() for i in range(len(items))]
        if "relation" not in spec or relation_holds(spec["relation"], cells[0], cells[1]):
            break
    else:
        raise EmojiSceneError(f"cannot place the emoji of {spec} on the grid")
    attrs = [(g["emoji"], g.get("style") or rng.choice(STYLES), g.get("size") or rng.choice(list(SIZES[canvas])))
             for g in items]  # fmt: skip
    objs: list[EmojiObj] = []
    boxes: list[tuple] = []
    for (emoji, style, size), cell in zip(attrs, cells):
        jit = _place(rng, size, cell, canvas, boxes)
        if jit is None:  # as in sample_scene: every emoji at its cell centre
            objs = [EmojiObj(e, st, z, c) for (e, st, z), c in zip(attrs, cells)]
            break
        objs.append(EmojiObj(emoji, style, size, cell, jit))
        boxes.append(objs[-1].box(canvas))
    bg = spec.get("bg") or bg or ("white" if rng.random() < 0.75 else "black")
    return EmojiScene(tuple(objs), bg, canvas)
