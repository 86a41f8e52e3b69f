"""The Shapes World compositional benchmark: its nine categories and seeded prompt sets."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

from lvg.worlds import read_benchmark_rows
from lvg.worlds.shapes.captions import spec_to_text
from lvg.worlds.shapes.spec import Spec, normalize_spec
from lvg.worlds.shapes.world import BACKGROUNDS, CELLS, COLORS, RELATIONS, SHAPES, SIZES

CATEGORIES = (
    "single_object",
    "colors",
    "sizes",
    "counting",
    "two_objects",
    "color_attribution",
    "position",
    "relation",
    "background",
)


def _maybe(rng: random.Random, g: dict, key: str, options) -> dict:
    if rng.random() < 0.5:
        g[key] = rng.choice(list(options))
    return g


def _single(rng: random.Random) -> Spec:
    return {"groups": [{"shape": rng.choice(SHAPES)}]}


def _colors(rng: random.Random) -> Spec:
    return {"groups": [{"shape": rng.choice(SHAPES), "color": rng.choice(list(COLORS))}]}


def _sizes(rng: random.Random) -> Spec:
    g = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
    g["size"] = rng.choice(list(SIZES))
    return {"groups": [g]}


def _counting(rng: random.Random) -> Spec:
    g = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
    g["count"] = rng.randint(2, 4)
    return {"groups": [g]}


def _two_objects(rng: random.Random) -> Spec:
    a, b = rng.sample(SHAPES, 2)
    return {"groups": [{"shape": a}, {"shape": b}]}


def _color_attribution(rng: random.Random) -> Spec:
    a, b = rng.choice(SHAPES), rng.choice(SHAPES)
    ca, cb = rng.sample(list(COLORS), 2)
    return {"groups": [{"shape": a, "color": ca}, {"shape": b, "color": cb}]}


def _position(rng: random.Random) -> Spec:
    g = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
    g["cell"] = list(rng.choice(CELLS))
    return {"groups": [g]}


def _relation(rng: random.Random) -> Spec:
    while True:
        a = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
        b = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
        if a != b:  # two different descriptions, so the relation is not trivially symmetric
            return {"groups": [a, b], "relation": rng.choice(RELATIONS)}


def _background(rng: random.Random) -> Spec:
    g = _maybe(rng, {"shape": rng.choice(SHAPES)}, "color", COLORS)
    return {"groups": [g], "bg": rng.choice(list(BACKGROUNDS))}


GENERATORS: dict[str, Callable[[random.Random], Spec]] = dict(
    zip(
        CATEGORIES,
        (
            _single,
            _colors,
            _sizes,
            _counting,
            _two_objects,
            _color_attribution,
            _position,
            _relation,
            _background,
        ),
    )
)


def make_prompts(per_category: int = 50, seed: int = 0) -> list[dict]:
    """``per_category`` distinct prompts for each category: ``{id, category, spec, en, zh}``.

    Categories with fewer distinct prompts than asked (e.g. single_object has 6) repeat them,
    so every category carries the same weight in the overall score.
    """
    rng = random.Random(f"lvg-benchmark:{seed}")
    rows = []
    for cat in CATEGORIES:
        distinct: dict[str, Spec] = {}
        for _ in range(per_category * 50):
            if len(distinct) == per_category:
                break
            spec = normalize_spec(GENERATORS[cat](rng))
            distinct.setdefault(json.dumps(spec, sort_keys=True), spec)
        specs = list(distinct.values())
        for i in range(per_category):  # cycle through the distinct prompts when there are few
            spec = specs[i % len(specs)]
            rows.append(
                {
                    "id": f"{cat}-{i:03d}",
                    "category": cat,
                    "spec": spec,
                    "en": spec_to_text(spec, "en"),
                    "zh": spec_to_text(spec, "zh"),
                }
            )
    return rows


def load_prompts(path: str | os.PathLike) -> list[dict]:
    """Read a benchmark JSONL file (through :func:`lvg.files.read_jsonl`: a regular UTF-8 file), validating every
    row (clear error naming the line)."""
    return read_benchmark_rows(path, normalize_spec, CATEGORIES)


def write_prompts(path: str | os.PathLike, rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
