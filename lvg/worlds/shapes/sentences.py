"""Everyday sentences for a scene's spec: the forms people type that the caption grammar never writes.

Version 3 of the prompt-analysis data (``PlanDataConfig.analysis_version=3``) draws these for part of its
everyday rows, and the refusals of :func:`refusal_sentence` for part of its refusals:

- the background first ("on a black background, ...", "黑色背景，..."), or as its own sentence;
- a relation told from the other object ("a blue circle with a yellow square to its right", "蓝色圆的右边有一个黄色
  正方形"); the returned spec then lists the groups in the order the sentence names them, so the target layout
  does too;
- attributes after the noun ("a star. make it big and red", "画一个星形，要大的，红色"), a colour left open ("a
  square, any colour", "颜色随便"), a shared colour ("four crosses, all of them orange"), lists ("three circles:
  one red, one yellow, one blue", "...各一个", "一大一小");
- a place first ("in the top left corner: ...", "左上角一个...") and more words for the nine places.

Every sentence means exactly its spec (the target layout satisfies it). Item ``i`` stays a pure function of the
generator's ``rng``.
"""

from __future__ import annotations

import random

from .captions import NUM_EN, NUM_ZH
from .spec import Spec, normalize_spec
from .world import BG_ZH, COLOR_ZH, COLORS, SHAPE_PLURAL, SHAPE_ZH, SHAPES, SIZE_ZH

INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
CELLS_EN = {
    (0, 0): ["in the top left", "in the top-left corner", "up in the top left", "in the upper left corner"],
    (0, 1): ["at the top", "at the very top, in the middle", "at the top of the picture", "top center"],
    (0, 2): ["in the top right", "in the top-right corner", "up in the top right", "in the upper right corner"],
    (1, 0): ["on the left", "on the left-hand side", "on the left side of the picture", "at the left edge"],
    (1, 1): ["in the center", "right in the middle", "in the very center", "in the middle of the picture"],
    (1, 2): ["on the right", "on the right-hand side", "on the right side of the picture", "at the right edge"],
    (2, 0): ["in the bottom left", "in the bottom-left corner", "down in the bottom left", "in the lower left"],
    (2, 1): ["at the bottom", "at the bottom, in the middle", "at the bottom of the image, centered",
             "bottom center"],
    (2, 2): ["in the bottom right", "in the bottom-right corner", "down in the bottom right", "in the lower right"],
}  # fmt: skip
CELLS_ZH = {
    (0, 0): ["左上角", "左上方", "左上"],
    (0, 1): ["上方", "最上面中间", "顶部正中", "上面正中间"],
    (0, 2): ["右上角", "右上方", "右上"],
    (1, 0): ["左侧", "左边", "靠左的位置", "最左边"],
    (1, 1): ["中间", "正中央", "画面中央", "正中间"],
    (1, 2): ["右侧", "右边", "靠右的位置", "最右边"],
    (2, 0): ["左下角", "左下方", "左下"],
    (2, 1): ["下方", "底部正中", "最下面中间", "下面正中间"],
    (2, 2): ["右下角", "右下方", "右下"],
}
REL_EN = {"left": ["to the left of", "left of", "on the left of"], "right": ["to the right of", "right of"],
          "above": ["above", "on top of", "over"], "below": ["below", "under", "underneath", "beneath"]}  # fmt: skip
ITS_EN = {"left": ["to its left", "on its left"], "right": ["to its right", "on its right"],
          "above": ["above it", "on top of it", "over it"], "below": ["below it", "under it", "underneath it"]}  # fmt: skip
REL_ZH = {"left": ["左边", "左侧"], "right": ["右边", "右侧"], "above": ["上面", "上方", "上边"],
          "below": ["下面", "下方", "下边", "底下"]}  # fmt: skip
ASK_EN = ["please draw ", "could you make me ", "i'd like ", "hey, draw me ", "can i get ", "i need ", "draw ",
          "just ", "show ", "make "]  # fmt: skip
ASK_ZH = ["画", "请画", "帮我画", "我想要", "给我来", "能帮我画", "我需要"]
ANY_COLOR_EN = [", any colour", ", any color", " of any colour", " in whatever colour", " (any color is fine)"]
ANY_COLOR_ZH = ["，颜色随便", "，什么颜色都行", "，随便什么颜色"]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _noun_en(g: dict, color: bool = True, size: bool = True) -> str:
    """ "small red circles" for a group (no count word, no place)."""
    words = [w for w in ((g.get("size") if size else None), (g.get("color") if color else None)) if w]
    return " ".join([*words, g["shape"] if g["count"] == 1 else SHAPE_PLURAL[g["shape"]]])


def _object_en(g: dict, rng: random.Random, place: bool = True) -> str:
    noun = _noun_en(g)
    text = _a(noun) if g["count"] == 1 else f"{rng.choice([NUM_EN[g['count']], str(g['count'])])} {noun}"
    if place and "cell" in g:
        text += " " + rng.choice(CELLS_EN[tuple(g["cell"])])
    return text


def _noun_zh(g: dict, color: bool = True, size: bool = True) -> str:
    return (
        (SIZE_ZH.get(g.get("size"), "") if size else "")
        + (COLOR_ZH.get(g.get("color"), "") if color else "")
        + (SHAPE_ZH[g["shape"]])
    )


def _object_zh(g: dict, rng: random.Random, place: bool = True) -> str:
    text = NUM_ZH[g["count"]] + _noun_zh(g)
    if place and "cell" in g:
        text += rng.choice(["在", "位于", "放在"]) + rng.choice(CELLS_ZH[tuple(g["cell"])])
    return text


def _group_en(g: dict, rng: random.Random) -> str:
    """One group, sometimes with its attributes after the noun or a shared colour said once."""
    u = rng.random()
    if g["count"] > 1 and "color" in g and u < 0.5:
        head = f"{rng.choice([NUM_EN[g['count']], str(g['count'])])} {_noun_en(g, color=False)}"
        text = head + rng.choice([", all of them {}", ", all {}", " in {}", ", every one {}"]).format(g["color"])
    elif g["count"] == 1 and "color" in g and u < 0.4:
        text = _a(_noun_en(g, color=False)) + rng.choice([" that is {}", ", {}", " colored {}"]).format(g["color"])
    elif "color" not in g and u < 0.3:
        text = _object_en(g, rng, place=False) + rng.choice(ANY_COLOR_EN)
    else:
        return _object_en(g, rng)
    if "cell" in g:
        text += " " + rng.choice(CELLS_EN[tuple(g["cell"])])
    return text


def _group_zh(g: dict, rng: random.Random) -> str:
    u = rng.random()
    if g["count"] > 1 and "color" in g and u < 0.5:
        text = (
            NUM_ZH[g["count"]]
            + _noun_zh(g, color=False)
            + rng.choice(["，都是{}的", "，全是{}的", "，都要{}"]).format(COLOR_ZH[g["color"]])
        )
    elif g["count"] == 1 and ("color" in g or "size" in g) and u < 0.4:
        attrs = [a for a in (SIZE_ZH.get(g.get("size"), ""), COLOR_ZH.get(g.get("color"), "")) if a]
        text = "一个" + SHAPE_ZH[g["shape"]] + "，要" + "，".join(attrs)
    elif "color" not in g and u < 0.3:
        text = _object_zh(g, rng, place=False) + rng.choice(ANY_COLOR_ZH)
    else:
        return _object_zh(g, rng)
    if "cell" in g:
        text += "，" + rng.choice(["在", "放在"]) + rng.choice(CELLS_ZH[tuple(g["cell"])])
    return text


def _list_en(groups: list[dict], rng: random.Random) -> str:
    """Groups of one object each, of one shape: "three circles: one red, one yellow, one blue"."""
    n = len(groups)
    head = f"{NUM_EN[n]} {SHAPE_PLURAL[groups[0]['shape']]}"
    parts = ["one " + " ".join(w for w in (g.get("size"), g.get("color")) if w) for g in groups]
    return head + rng.choice([": ", ", "]) + ", ".join(parts[:-1]) + rng.choice([" and ", ", "]) + parts[-1]


def _list_zh(groups: list[dict], rng: random.Random) -> str:
    head = f"{NUM_ZH[len(groups)]}{SHAPE_ZH[groups[0]['shape']]}，"
    parts = ["一个" + "".join(w for w in (SIZE_ZH.get(g.get("size"), "")[:1], COLOR_ZH.get(g.get("color"), "")[:1]) if w)
             + "的" for g in groups]  # fmt: skip
    return head + rng.choice(["", "，"]).join(parts)


def _listable(spec: Spec) -> bool:
    """Every group one unplaced object of the same shape, each told apart by its colour or size."""
    gs = spec["groups"]
    keys = [(g.get("size"), g.get("color")) for g in gs]
    return (len(gs) >= 2 and "relation" not in spec and all(g["count"] == 1 and "cell" not in g for g in gs)
            and len({g["shape"] for g in gs}) == 1 and all(any(k) for k in keys) and len(set(keys)) == len(keys))  # fmt: skip


def everyday_sentence(spec: Spec, lang: str, rng: random.Random) -> tuple[str, Spec]:
    """``spec`` said as people say it, and the spec with its groups in the order the sentence names them."""
    gs = [dict(g) for g in spec["groups"]]
    rel = spec.get("relation")
    en = lang == "en"
    if rel and rng.random() < 0.7:  # the relation told from the other object, or with other verbs
        a, b = gs
        if rng.random() < 0.5:  # B first: "B with A to its left"
            if en:
                text = f"{_object_en(b, rng)} with {_object_en(a, rng)} {rng.choice(ITS_EN[rel])}"
            else:
                text = rng.choice(["{b}的{r}有{a}", "{b}，它{r}有{a}", "{b}，{r}是{a}"]).format(
                    a=_object_zh(a, rng), b=_object_zh(b, rng).removeprefix("一个"), r=rng.choice(REL_ZH[rel])
                )
            gs, rel = [b, a], INVERSE[rel]
        elif en:
            form = rng.choice(["{a} {r} {b}", "there's {a} {r} {b}", "{a} should be {r} {b}", "{a} that sits {r} {b}",
                               "put {a} {r} {b}", "{a} placed {r} {b}"])  # fmt: skip
            text = form.format(a=_object_en(a, rng), b=_object_en(b, rng), r=rng.choice(REL_EN[rel]))
        else:
            form = rng.choice(["{a}要在{b}{r}", "{a}放在{b}的{r}", "{a}在{b}{r}", "把{a}画在{b}的{r}"])
            text = form.format(
                a=_object_zh(a, rng), b=_object_zh(b, rng).removeprefix("一个"), r=rng.choice(REL_ZH[rel])
            )
    elif _listable(spec) and rng.random() < 0.6:
        text = (_list_en if en else _list_zh)(gs, rng)
    elif not en and not rel and len(gs) >= 2 and all(g["count"] == 1 and "cell" not in g for g in gs) \
            and rng.random() < 0.3:  # fmt: skip
        text = "、".join(_noun_zh(g) for g in gs) + "各一个"
    elif rng.random() < 0.3 and all("cell" in g for g in gs):  # the place first
        if en:
            text = "; ".join(rng.choice(CELLS_EN[tuple(g["cell"])]) + rng.choice([": ", ", "]) + _object_en(g, rng, False)
                             for g in gs)  # fmt: skip
        else:
            text = "，".join(rng.choice(CELLS_ZH[tuple(g["cell"])]) + rng.choice(["", "：", "画"]) + _object_zh(g, rng, False)
                            for g in gs)  # fmt: skip
    else:
        parts = [(_group_en if en else _group_zh)(g, rng) for g in gs]
        text = (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) if en else "，".join(parts)
    bg = spec.get("bg")
    if bg:
        if en:
            form = rng.choice(["on a {bg} background, {t}", "{bg} background, {t}", "{t}. the background is {bg}",
                               "{t} on {bg}", "a {bg} background with {t}", "{t}. make the background {bg}"])  # fmt: skip
        else:
            form = rng.choice(["{bg}背景，{t}", "{bg}底，{t}", "在{bg}背景上画{t}", "背景{bg}，{t}", "{t}，背景要{bg}"])
        text = form.format(bg=bg if en else BG_ZH[bg], t=text)
    if rng.random() < 0.4:
        text = rng.choice(ASK_EN if en else ASK_ZH) + text
    if en and rng.random() < 0.15:
        text += rng.choice([", nothing else", ", that's all", " please"])
    out: Spec = {"groups": gs}
    if rel:
        out["relation"] = rel
    if bg:
        out["bg"] = bg
    return text, normalize_spec(out)


def refusal_sentence(lang: str, rng: random.Random, unknown_colors: list[str]) -> tuple[str, str]:
    """A prompt to refuse in an everyday form, and its reason: five or more objects named one by one or in pairs
    (count); a background said twice or a place that contradicts a relation (contradiction); a background colour
    outside the world (unknown)."""
    en = lang == "en"
    u = rng.random()
    shape = lambda: rng.choice(SHAPES)  # noqa: E731
    color = lambda: rng.choice(list(COLORS))  # noqa: E731
    if u < 0.35:  # count
        n = rng.randint(5, 7)
        if rng.random() < 0.5:
            objs = [{"shape": shape(), "color": color(), "count": 1} for _ in range(n)]
            parts = [_object_en(g, rng) if en else _object_zh(g, rng) for g in objs]
            return (
                ", ".join(parts[:-1]) + " and " + parts[-1] if en else "、".join(parts[:-1]) + "和" + parts[-1]
            ), "count"
        s1, s2 = rng.sample(SHAPES, 2)
        pairs = rng.choice([2, 3])
        if en:
            return f"{NUM_EN[pairs]} pairs of {SHAPE_PLURAL[s1]} and {_a(s2)}", "count"
        return f"{pairs if pairs != 2 else '两'}对{SHAPE_ZH[s1]}和一个{SHAPE_ZH[s2]}", "count"
    if u < 0.55:  # the background said twice, differently
        g = {"shape": shape(), "color": color(), "count": 1}
        b1, b2 = rng.sample(["white", "black"], 2)
        if en:
            return f"{_object_en(g, rng)} on a {b1} background, and the background is {b2}", "contradiction"
        return f"{BG_ZH[b1]}背景上的{_noun_zh(g)}，背景是{BG_ZH[b2]}的", "contradiction"
    if u < 0.75:  # places that contradict the relation: A on the right said to be left of B on the left, or
        # A at the bottom said to be above B at the top
        if rng.random() < 0.5:
            row = rng.randrange(3)
            c_a, c_b, rel = (row, 2), (row, 0), "left"
        else:
            col = rng.randrange(3)
            c_a, c_b, rel = (2, col), (0, col), "above"
        a = {"shape": shape(), "color": color(), "count": 1, "cell": list(c_a)}
        b = {"shape": shape(), "color": color(), "count": 1, "cell": list(c_b)}
        if en:
            return f"{_object_en(a, rng)} that is {rng.choice(REL_EN[rel])} {_object_en(b, rng)}", "contradiction"
        text = (f"{rng.choice(CELLS_ZH[c_a])}的{_noun_zh(a)}在{rng.choice(CELLS_ZH[c_b])}的{_noun_zh(b)}的"
                f"{rng.choice(REL_ZH[rel])}")  # fmt: skip
        return text, "contradiction"
    g = {"shape": shape(), "color": color(), "count": 1}  # a background colour outside the world
    bg = rng.choice([*COLORS, *(c for c in unknown_colors if c not in ("white", "black", "白色", "黑色"))])
    if en:
        return f"{_object_en(g, rng)} on {_a(bg)} background", "unknown"
    return f"{COLOR_ZH[bg] if bg in COLORS else bg}背景上画{_object_zh(g, rng)}", "unknown"
