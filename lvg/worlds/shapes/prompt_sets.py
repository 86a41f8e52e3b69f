"""Extra evaluation prompt sets beside the public benchmark (same row format: id, category, spec, en, zh).

- :func:`multi_object_prompts`: 3 and 4 objects, every colour and size stated (the hardest scenes).
- :func:`typed_prompts`: prompts written the way people type them, from templates of their own (not the
  training captioner): digits (``3 blue stars``), capitals, full stops, extra spaces, ``left of``,
  ``under``, ``in the middle``, Chinese ``。`` and digits (``3个``). Each row's spec is built with its text.
- :func:`diversity_prompts`: underspecified prompts for the seed-diversity check.
- :func:`touching_prompts`: 2-4 large objects in neighbouring cells, each one's cell stated, with the scene whose
  boxes come closest (every object jittered towards its neighbours) for painting the true layout.
"""

from __future__ import annotations

import random

from lvg.worlds.shapes.spec import normalize_spec
from lvg.worlds.shapes.world import (
    BG_ZH,
    CELL_EN,
    CELL_ZH,
    CELLS,
    COLOR_ZH,
    COLORS,
    JITTER,
    SHAPE_PLURAL,
    SHAPE_ZH,
    SHAPES,
    SIZE_ZH,
    SIZES,
    Obj,
    Scene,
)

_NUM_EN = {1: "a", 2: "two", 3: "three", 4: "four"}
_NUM_ZH = {1: "一个", 2: "两个", 3: "三个", 4: "四个"}


def _obj_en(shape: str, color: str | None = None, size: str | None = None, n: int = 1, digits: bool = False) -> str:
    words = [w for w in (size, color) if w] + [shape if n == 1 else SHAPE_PLURAL[shape]]
    head = str(n) if digits else _NUM_EN[n]
    if head == "a" and words[0][0] in "aeiou":
        head = "an"
    return f"{head} {' '.join(words)}"


def _obj_zh(shape: str, color: str | None = None, size: str | None = None, n: int = 1, digits: bool = False) -> str:
    return (f"{n}个" if digits else _NUM_ZH[n]) + SIZE_ZH.get(size, "") + COLOR_ZH.get(color, "") + SHAPE_ZH[shape]


def _join_en(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _join_zh(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "、".join(parts[:-1]) + "和" + parts[-1]


def multi_object_prompts(per_count: int = 50, seed: int = 0) -> list[dict]:
    """``per_count`` prompts with 3 and with 4 objects, each with colour and size (canonical grammar)."""
    rng = random.Random(f"lvg-multi-object:{seed}")
    rows = []
    for n in (3, 4):
        for i in range(per_count):
            objs = [(rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(SIZES))) for _ in range(n)]
            spec = normalize_spec({"groups": [{"shape": s, "color": c, "size": z} for s, c, z in objs]})
            rows.append({"id": f"objects_{n}-{i:03d}", "category": f"objects_{n}", "spec": spec,
                         "en": _join_en([_obj_en(s, c, z) for s, c, z in objs]),
                         "zh": _join_zh([_obj_zh(s, c, z) for s, c, z in objs])})  # fmt: skip
    return rows


_CELL_TYPED_EN = {(1, 1): "in the middle", (0, 0): "at the top left", (2, 2): "at the bottom right",
                  (0, 1): "at the top", (2, 1): "at the bottom", (1, 0): "on the left side", (1, 2): "on the right side",
                  (0, 2): "in the top right corner", (2, 0): "at the bottom left"}  # fmt: skip
_REL_TYPED_EN = {"left": "left of", "right": "right of", "above": "over", "below": "under"}
_REL_ZH = {"left": "左边", "right": "右边", "above": "上面", "below": "下面"}
_CELL_ZH = {(0, 0): "左上角", (0, 1): "上方", (0, 2): "右上角", (1, 0): "左侧", (1, 1): "中间", (1, 2): "右侧",
            (2, 0): "左下角", (2, 1): "下方", (2, 2): "右下角"}  # fmt: skip


def _style_en(text: str, rng: random.Random) -> str:
    u = rng.random()
    text = text[0].upper() + text[1:] if u < 0.5 else (text.upper() if u < 0.6 else text)
    if rng.random() < 0.5:
        text += "."
    if rng.random() < 0.3:
        text = text.replace(" ", "  ", rng.randint(1, 3))
    return text


def typed_prompts(per_kind: int = 20, seed: int = 0) -> list[dict]:
    """Prompts as people type them: counts with digits, positions, relations and backgrounds in other words."""
    rng = random.Random(f"lvg-typed:{seed}")
    rows: list[dict] = []

    def add(kind: str, spec: dict, en: str, zh: str) -> None:
        rows.append({"id": f"typed_{kind}-{sum(r['category'] == 'typed_' + kind for r in rows):03d}",
                     "category": f"typed_{kind}", "spec": normalize_spec(spec), "en": _style_en(en, rng),
                     "zh": zh + ("。" if rng.random() < 0.7 else "")})  # fmt: skip

    colors = list(COLORS)
    for _ in range(per_kind):  # counting with digits
        n, s, c = rng.randint(2, 4), rng.choice(SHAPES), rng.choice(colors)
        add(
            "count",
            {"groups": [{"shape": s, "color": c, "count": n}]},
            _obj_en(s, c, n=n, digits=True),
            _obj_zh(s, c, n=n, digits=True),
        )
    for _ in range(per_kind):  # position in other words
        s, c, cell = rng.choice(SHAPES), rng.choice(colors), rng.choice(CELLS)
        add(
            "position",
            {"groups": [{"shape": s, "color": c, "cell": list(cell)}]},
            f"{_obj_en(s, c)} {_CELL_TYPED_EN[cell]}",
            f"{_obj_zh(s, c)}在{_CELL_ZH[cell]}",
        )
    for _ in range(per_kind):  # relations: "left of", "under", "over"
        rel = rng.choice(list(_REL_TYPED_EN))
        (s1, c1), (s2, c2) = [(rng.choice(SHAPES), rng.choice(colors)) for _ in range(2)]
        spec = {"groups": [{"shape": s1, "color": c1}, {"shape": s2, "color": c2}], "relation": rel}
        add(
            "relation",
            spec,
            f"{_obj_en(s1, c1)} {_REL_TYPED_EN[rel]} {_obj_en(s2, c2)}",
            f"{_obj_zh(s1, c1)}在{_obj_zh(s2, c2)}的{_REL_ZH[rel]}",
        )
    for _ in range(per_kind):  # two kinds of objects with counts and a background
        (s1, c1), (s2, c2) = [(rng.choice(SHAPES), rng.choice(colors)) for _ in range(2)]
        n1 = rng.randint(1, 2)
        bg = rng.choice(["white", "black"])
        spec = {"groups": [{"shape": s1, "color": c1, "count": n1}, {"shape": s2, "color": c2}], "bg": bg}
        zh_bg = {"white": "白色", "black": "黑色"}[bg]
        add(
            "background",
            spec,
            f"{_obj_en(s1, c1, n=n1, digits=n1 > 1)} and {_obj_en(s2, c2)} on a {bg} background",
            f"{_obj_zh(s1, c1, n=n1, digits=n1 > 1)}和{_obj_zh(s2, c2)}，{zh_bg}背景",
        )
    return rows


def diversity_prompts() -> list[dict]:
    """Underspecified prompts: the planner must fill in cells, colours and sizes, differently per seed."""
    rows = [("a circle", "一个圆形", {"groups": [{"shape": "circle"}]}),
            ("two stars", "两个星形", {"groups": [{"shape": "star", "count": 2}]}),
            ("a square and a triangle", "一个正方形和一个三角形",
             {"groups": [{"shape": "square"}, {"shape": "triangle"}]})]  # fmt: skip
    return [{"id": f"diversity-{i}", "category": "diversity", "spec": normalize_spec(s), "en": en, "zh": zh}
            for i, (en, zh, s) in enumerate(rows)]  # fmt: skip


def _neighbours(cell: tuple[int, int]) -> list[tuple[int, int]]:
    r, c = cell
    return [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)) if (r + dr, c + dc) in CELLS]


def touching_prompts(num: int = 200, seed: int = 0) -> list[dict]:
    """``num`` prompts of 2, 3 or 4 large objects (1 : 2 : 2) in a cluster of neighbouring cells, every object's colour,
    size and cell stated ("a large red star in the top left, a large blue cross at the top and ..."; backgrounds as
    the world draws them, black ones stated). Each row also holds ``scene`` (``Scene.to_dict()``): those objects with
    every one jittered by the most the world allows towards the cluster's middle, so neighbours' boxes come within
    1.3-3.3 px of each other (a 16 px object's neighbour cell is 21.3 px away), for painting the true layout."""
    rng = random.Random(f"lvg-touching:{seed}")
    rows = []
    for i in range(num):
        n = rng.choice((2, 3, 3, 4, 4))
        cells = [rng.choice(CELLS)]
        while len(cells) < n:  # grow a cluster of cells that share an edge
            cells.append(rng.choice(sorted({x for c in cells for x in _neighbours(c)} - set(cells))))
        mid_r, mid_c = (sum(c[k] for c in cells) / n for k in (0, 1))
        push = lambda a, b: JITTER * ((b > a) - (b < a))  # noqa: E731  # towards the middle, by the most allowed
        objs = tuple(Obj(rng.choice(SHAPES), rng.choice(list(COLORS)), "large", c, (push(c[1], mid_c), push(c[0], mid_r)))
                     for c in cells)  # fmt: skip
        bg = "black" if rng.random() < 0.25 else "white"
        spec = {"groups": [{"shape": o.shape, "color": o.color, "size": o.size, "cell": list(o.cell)} for o in objs]}
        en = _join_en([f"{_obj_en(o.shape, o.color, o.size)} {CELL_EN[o.cell]}" for o in objs])
        zh = _join_zh([f"{_obj_zh(o.shape, o.color, o.size)}在{CELL_ZH[o.cell]}" for o in objs])
        if bg == "black":
            spec["bg"], en, zh = bg, f"{en} on a black background", f"{zh}，{BG_ZH[bg]}背景"
        rows.append({"id": f"touching_{n}-{i:03d}", "category": f"touching_{n}", "spec": normalize_spec(spec),
                     "en": en, "zh": zh, "scene": Scene(objs, bg).to_dict()})  # fmt: skip
    return rows


__all__ = ["diversity_prompts", "multi_object_prompts", "touching_prompts", "typed_prompts"]
