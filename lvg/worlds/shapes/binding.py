"""Sentences that bind attributes across several objects: one of each, shared attributes, lists without articles.

The planner of round 8 drew these forms wrong far more often than any other, its own training forms included
(2026-12-08, 60 prompts per form at seed 0): "three triangles: one red, one cyan and one green" (three red
triangles: 2 of 60 right), "yellow cross, purple cross, blue cross, pink cross" (0 of 40), "a square, a star and a
circle, all blue" (0 of 40), "一小一大两个圆" (0 of 36). They were rare in its stream: a scene of one shape
in several colours, or of several shapes in one, is rare in the contract's distribution. ``binding_sample`` draws
such a scene and says it in one of these forms, for ``PlanDataConfig.binding_prob`` of the planner's rows:

- **colours**: 2-4 objects of one shape, one of each colour ("three circles: one red, one yellow, one blue",
  "red, blue and green balls, one each", "red circle, blue circle, green circle", "红、蓝、黄三种颜色的星星各一个",
  "红圆、蓝圆、绿圆", "四个圆，分别是红色、蓝色、绿色和黄色");
- **sizes**: two objects of one shape, one small and one large, the colour shared or left open ("two circles, one
  big and one small", "small red circle, big red circle", "一大一小两个粉色的圆");
- **shared**: 2-4 objects of different shapes in one colour, sometimes one size too ("a square, a circle and a
  triangle, all big and green", "two stars and a circle, all of them yellow", "一个圆、一个方块和一个三角形，都是红色");
- **counts**: one shape in two colours, counted ("four circles: two red and two yellow", "三个方块，两个蓝的一个绿的").

Every sentence means exactly its spec, whose groups are in the order the sentence names them (so the target layout
lists the objects in that order). A pure function of ``rng``.
"""

from __future__ import annotations

import random

from .captions import NUM_ZH
from .phrasings import NOUN_EN, NOUN_ZH, NUM_EN, SIZE_EN, SIZE_ZH1, _background
from .sentences import ASK_EN, ASK_ZH, _a
from .spec import Spec, normalize_spec
from .world import BG_PROBS, CELLS, COLOR_ZH, COLORS, SHAPE_PLURAL, SHAPES, SIZES, Obj, Scene, random_jitter

KIND_WEIGHTS = {"colours": 0.4, "sizes": 0.15, "shared": 0.3, "counts": 0.15}
SHORT_ZH = {"circle": "圆", "square": "方块", "triangle": "三角", "diamond": "菱形", "star": "星星", "cross": "十字"}


def _plural(shape: str, noun: str) -> str:
    """The plural of one of the shape's words ("boxes", "plus signs", "rhombuses"; the shape's own: SHAPE_PLURAL)."""
    if noun == shape:
        return SHAPE_PLURAL[shape]
    return noun + ("es" if noun.endswith(("s", "x")) else "s")


def _noun_en(shape: str, rng: random.Random, plural: bool = False) -> str:
    noun = rng.choice(NOUN_EN[shape])
    return _plural(shape, noun) if plural else noun


def _and(items: list[str], rng: random.Random) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + rng.choice([" and ", ", and ", ", "]) + items[-1]


def _measure(shape: str, noun: str) -> str:
    return "颗" if shape == "star" and noun in ("星星", "五角星", "星") else "个"


def _count_zh(n: int, shape: str, noun: str) -> str:
    return NUM_ZH[n][:-1] + _measure(shape, noun)


def _colours(lang: str, rng: random.Random) -> tuple[list[dict], str]:
    n = rng.choice([2, 2, 3, 3, 4])
    shape = rng.choice(SHAPES)
    size = rng.choice([None, None, None, *SIZES])  # sometimes stated for them all
    gs = [
        {"shape": shape, "count": 1, "color": c, **({"size": size} if size else {})}
        for c in rng.sample(sorted(COLORS), n)
    ]
    cs = [g["color"] for g in gs]
    if lang == "en":
        sz = (rng.choice(SIZE_EN[size]) + " ") if size else ""
        plural = sz + _noun_en(shape, rng, plural=True)
        count = rng.choice([NUM_EN[n], str(n)])
        form = rng.randrange(7)
        if form == 0:
            return gs, f"{count} {plural}" + rng.choice([": ", ", ", " - "]) + _and([f"one {c}" for c in cs], rng)
        if form == 1:
            return gs, f"{count} {plural} (" + _and([f"one {c}" for c in cs], rng) + ")"
        if form == 2:
            return gs, rng.choice([f"{plural} in {_and(cs, rng)}, one of each", f"{_and(cs, rng)} {plural}, one each",
                                   f"one {' and one '.join(cs)} {sz}{_noun_en(shape, rng)}"])  # fmt: skip
        if form == 3:  # a plain list, with or without articles
            art = rng.random() < 0.4
            items = [(_a if art else str)(f"{c} {sz}{_noun_en(shape, rng)}") for c in cs]
            return gs, _and(items, rng)
        if form == 4:
            return gs, f"{count} {plural}, each a different colour: {_and(cs, rng)}"
        if form == 5:
            return gs, f"{plural}: {_and(cs, rng)}" + rng.choice(["", ", one of each", " (one each)"])
        return gs, f"{count} {plural}" + rng.choice([" coloured ", " colored ", " in "]) + _and(cs, rng) + \
            rng.choice([", one each", ", one of each colour", " respectively"])  # fmt: skip
    noun = rng.choice(NOUN_ZH[shape])
    sz = SIZE_ZH1[size] if size else ""
    one = [COLOR_ZH[c][:1] for c in cs]
    full = [COLOR_ZH[c] for c in cs]
    head = _count_zh(n, shape, noun) + (sz + "的" if sz and rng.random() < 0.5 else sz) + noun
    form = rng.randrange(6)
    if form == 0:
        return gs, head + rng.choice(["，", "：", ""]) + rng.choice(["", "，"]).join(
            f"一{_measure(shape, noun)}{c}的" for c in one
        )
    if form == 1:
        return gs, f"{'、'.join(one)}{NUM_ZH[n][:-1]}种颜色的{sz}{noun}各一{_measure(shape, noun)}"
    if form == 2 and n == 2:
        return gs, f"一{one[0]}一{one[1]}两{_measure(shape, noun)}{sz}{noun}"
    if form == 3:  # a plain list of short names
        short = SHORT_ZH[shape] if rng.random() < 0.6 else noun
        items = [f"{sz}{c}{short}" if rng.random() < 0.5 else f"{sz}{f}的{short}" for c, f in zip(one, full)]
        return gs, rng.choice(["、", "，", " "]).join(items)
    if form == 4:
        return gs, head + "，分别是" + "、".join(full[:-1]) + "和" + full[-1]
    return gs, f"{sz}{noun}要{NUM_ZH[n][:-1]}{_measure(shape, noun)}：" + "、".join(full) + "各一" + _measure(
        shape, noun
    )


def _sizes(lang: str, rng: random.Random) -> tuple[list[dict], str]:
    shape = rng.choice(SHAPES)
    color = rng.choice([None, *sorted(COLORS)])
    order = rng.sample(sorted(SIZES), 2)
    gs = [{"shape": shape, "count": 1, "size": s, **({"color": color} if color else {})} for s in order]
    if lang == "en":
        s0, s1 = (rng.choice(SIZE_EN[s]) for s in order)
        c = f"{color} " if color else ""
        form = rng.randrange(4)
        if form == 0:
            return gs, f"two {c}{_noun_en(shape, rng, plural=True)}" + rng.choice(
                [", ", ": ", " - "]
            ) + f"one {s0} and one {s1}"
        if form == 1:
            return gs, f"a {s0} and a {s1} {c}{_noun_en(shape, rng)}"
        if form == 2:
            return gs, f"{s0} {c}{_noun_en(shape, rng)}, {s1} {c}{_noun_en(shape, rng)}"
        return gs, f"one {s0}, one {s1} {c}{_noun_en(shape, rng)}"
    noun = rng.choice(NOUN_ZH[shape])
    m = _measure(shape, noun)
    c = COLOR_ZH[color] if color else ""
    z0, z1 = (SIZE_ZH1[s] for s in order)
    form = rng.randrange(4)
    if form == 0:
        return gs, f"一{z0}一{z1}两{m}{c}{'的' if c else ''}{noun}"
    if form == 1:
        return gs, f"两{m}{c}{'的' if c else ''}{noun}，一{m}{z0}的一{m}{z1}的"
    if form == 2:
        short = SHORT_ZH[shape]
        return gs, f"{z0}{c[:1]}{short}、{z1}{c[:1]}{short}"
    return gs, f"两{m}{c}{noun}，一{z0}一{z1}"


def _shared(lang: str, rng: random.Random) -> tuple[list[dict], str]:
    k = rng.choice([2, 2, 3, 3, 4])
    shapes = rng.sample(SHAPES, k)
    counts = [1] * k
    while sum(counts) < 4 and rng.random() < 0.3:  # sometimes two of one
        counts[rng.randrange(k)] += 1
    color = rng.choice(sorted(COLORS))
    size = rng.choice([None, None, *SIZES])
    gs = [{"shape": s, "count": n, "color": color, **({"size": size} if size else {})} for s, n in zip(shapes, counts)]
    if lang == "en":

        def item(s: str, n: int) -> str:
            if n == 1:
                return _a(_noun_en(s, rng))
            return f"{rng.choice([NUM_EN[n], str(n)])} {_noun_en(s, rng, plural=True)}"

        listed = _and([item(s, n) for s, n in zip(shapes, counts)], rng)
        attr = " and ".join(w for w in (rng.choice(SIZE_EN[size]) if size else None, color) if w)
        both = k == 2 and sum(counts) == 2
        if rng.random() < 0.75:
            tail = rng.choice(
                [", both {}", ", both of them {}"] if both else [", all {}", ", all of them {}", ", every one {}"]
            )
            return gs, listed + tail.format(attr)
        return gs, rng.choice([f"{sum(counts)} shapes, all {attr}: ", f"everything {attr}: ", f"all {attr}: "]) + listed

    def item_zh(s: str, n: int) -> str:
        noun = rng.choice(NOUN_ZH[s])
        return f"{NUM_ZH[n][:-1] if n > 1 else '一'}{_measure(s, noun)}{noun}"

    listed = rng.choice(["、", "，", " "]).join(item_zh(s, n) for s, n in zip(shapes, counts))
    if len(shapes) > 1 and rng.random() < 0.4:
        parts = [item_zh(s, n) for s, n in zip(shapes, counts)]
        listed = "、".join(parts[:-1]) + "和" + parts[-1]
    c = COLOR_ZH[color]
    if size and rng.random() < 0.5:  # the size said on its own
        z = SIZE_ZH1[size]
        return gs, listed + rng.choice([f"，都是{c}的，都很{z}", f"，都要{z}的，{c}", f"，全是{z}号的{c}"])
    attr = (rng.choice(["大号", "大的"] if size == "large" else ["小号", "小的"]) if size else "") + c
    if rng.random() < 0.75:
        return gs, listed + rng.choice(["，都是{}的", "，全是{}的", "，都要{}", " 都是{}", "，全部{}"]).format(attr)
    return gs, rng.choice(["全部是{}的：", "都用{}：", "{}的："]).format(attr) + listed


def _counts(lang: str, rng: random.Random) -> tuple[list[dict], str]:
    shape = rng.choice(SHAPES)
    n0, n1 = rng.choice([(2, 2), (2, 1), (1, 2), (3, 1), (1, 3), (2, 2)])
    c0, c1 = rng.sample(sorted(COLORS), 2)
    gs = [{"shape": shape, "count": n0, "color": c0}, {"shape": shape, "count": n1, "color": c1}]
    total = n0 + n1
    if lang == "en":
        plural = _noun_en(shape, rng, plural=True)
        return gs, rng.choice([f"{NUM_EN[total]} {plural}: ", f"{total} {plural}, ", f"{NUM_EN[total]} {plural} - "]) + \
            f"{NUM_EN[n0]} {c0} and {NUM_EN[n1]} {c1}"  # fmt: skip
    noun = rng.choice(NOUN_ZH[shape])
    m = _measure(shape, noun)
    part = lambda n, c: f"{NUM_ZH[n][:-1] if n > 1 else '一'}{m}{COLOR_ZH[c][: rng.choice([1, 2])]}的"  # noqa: E731
    return gs, f"{NUM_ZH[total][:-1]}{m}{noun}" + rng.choice(["：", "，"]) + part(n0, c0) + rng.choice(
        ["，", ""]
    ) + part(n1, c1)


KINDS = {"colours": _colours, "sizes": _sizes, "shared": _shared, "counts": _counts}


def binding_sample(lang: str, rng: random.Random) -> tuple[Scene, str, Spec]:
    """A scene of several objects bound by shared or one-each attributes, the sentence that asks for it, and its spec
    (groups in the order the sentence names them)."""
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    gs, text = KINDS[kind](lang, rng)
    bg = "white" if rng.random() < BG_PROBS["white"] else "black"
    cells = rng.sample(CELLS, sum(g["count"] for g in gs))
    objs = []
    for g in gs:
        for _ in range(g["count"]):
            size = g.get("size") or rng.choice(sorted(SIZES))
            objs.append(
                Obj(
                    g["shape"], g.get("color") or rng.choice(sorted(COLORS)), size, cells[len(objs)], random_jitter(rng)
                )
            )
    spec: Spec = {"groups": gs}
    if rng.random() < 0.3:
        text = rng.choice(ASK_EN if lang == "en" else ASK_ZH) + text
    if rng.random() < 0.25:  # the background said too
        spec["bg"] = bg
        text = _background(text, bg, lang, rng)
    return Scene(tuple(objs), bg), text, normalize_spec(spec)
