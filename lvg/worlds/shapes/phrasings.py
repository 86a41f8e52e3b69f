"""More ways people phrase a request: version 4 of the prompt-analysis data.

Version 3 (:mod:`lvg.worlds.shapes.sentences`) taught the planner sentences in the caption grammar's order with
everyday words. People also type:

- **around the request**: greetings, hedges and thanks ("hi! could you ...", "so i was thinking, maybe ...",
  "...? thanks so much!", "你好呀！能不能帮我画...", "...就好啦～") (:func:`frame`);
- **notes and formats**: a count after the noun ("red circles: 3", "triangles x4", "红色圆形×3"), key-value
  notes ("bg=black; 1 large green star", "shape: star, colour: red", "背景=黑；..."), layout lists
  ("layout: red circle top-left, blue square top-right", "左上红圆，右上蓝方块");
- **attribute clauses**: "one circle which is red color and it is big", "a star of purple colour", "a circle,
  red, big", "一个圆形，它的颜色是红色，它很大", "一个大号的红色圆";
- **a relation said as a statement**: "the triangle is yellow, the circle is blue, the triangle is to the right of
  the circle", "star above circle, both pink", "the star is higher than the square", "there is a green cross, and
  under it there is a pink triangle", "先来一个橙色的圆，然后在它下面放一个紫色的十字", "星星比方块高";
- **a count of the whole**: "three shapes: a red star, a blue star and a yellow star", "三个图形：...",
  "红、蓝、黄三种颜色的星星各一个", "一大一小两个十字形", "a big and a small cross";
- **emphasis**: "a circle. just one circle.", "画个圆。就一个圆。", measure words ("四颗小黄星");
- more words for the nine places ("centered", "halfway down the left edge", "居中", "左侧中间").

:func:`phrase` returns a sentence that means exactly its spec (the target layout satisfies it) and the spec with
its groups in the order the sentence names them; :func:`refusal_phrase` gives prompts to refuse in these forms.
Version 5 (``phrase(..., version=5)``) tells a relation from the other object in more forms ("B with A to its
right", "B的右边有A") and also when both objects have the same shape; version 4 draws exactly as the fourth round saw.
None of these forms was taken from a hand-written evaluation set that is still counted as held out.
"""

from __future__ import annotations

import random

from .captions import NUM_ZH
from .sentences import INVERSE, _a
from .spec import Spec, normalize_spec
from .world import BG_ZH, COLOR_ZH, COLORS, SHAPE_PLURAL, SHAPE_ZH, SHAPES

NUM_EN = {1: "one", 2: "two", 3: "three", 4: "four"}
SIZE_EN = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
SIZE_ZH1 = {"small": "小", "large": "大"}
NOUN_EN = {"circle": ["circle", "ball", "dot"], "square": ["square", "box", "block"], "triangle": ["triangle"],
           "diamond": ["diamond", "rhombus"], "star": ["star"], "cross": ["cross", "plus sign"]}  # fmt: skip
NOUN_ZH = {"circle": ["圆形", "圆", "圆圈", "圆点"], "square": ["正方形", "方块", "方形"], "triangle": ["三角形", "三角"],
           "diamond": ["菱形"], "star": ["星形", "星星", "五角星", "星"], "cross": ["十字形", "十字", "加号"]}  # fmt: skip
# Compact names of the nine places, said after the noun ("red circle top-left") or before it ("左上红圆").
PLACE_EN = {
    (0, 0): ["top-left", "top left", "upper left", "upper-left corner", "top left corner"],
    (0, 1): ["top-center", "top middle", "at the middle of the top edge", "in the top row, middle", "top centre"],
    (0, 2): ["top-right", "top right", "upper right", "upper-right corner", "top right corner"],
    (1, 0): ["middle-left", "center-left", "halfway down the left edge", "in the middle of the left edge",
             "on the left, halfway down"],
    (1, 1): ["centered", "center", "in the centre", "dead center", "smack in the middle", "middle"],
    (1, 2): ["middle-right", "center-right", "halfway down the right edge", "in the middle of the right edge",
             "on the right, halfway down"],
    (2, 0): ["bottom-left", "bottom left", "lower left", "lower-left corner", "bottom left corner"],
    (2, 1): ["bottom-center", "bottom middle", "at the middle of the bottom edge", "in the bottom row, centered",
             "bottom centre"],
    (2, 2): ["bottom-right", "bottom right", "lower right", "lower-right corner", "bottom right corner"],
}  # fmt: skip
PLACE_ZH = {
    (0, 0): ["左上", "左上角", "左上方"], (0, 1): ["正上方", "顶部中间", "最上面一排的正中间", "上边中间", "顶部居中"],
    (0, 2): ["右上", "右上角", "右上方"], (1, 0): ["左侧中间", "画面左侧中间", "左边中间", "靠左居中", "左中"],
    (1, 1): ["居中", "正中", "画面正中", "正中央", "中心"], (1, 2): ["右侧中间", "画面右侧中间", "右边中间", "靠右居中", "右中"],
    (2, 0): ["左下", "左下角", "左下方"], (2, 1): ["正下方", "底部中间", "最下面一排的正中间", "底部正中", "底部居中"],
    (2, 2): ["右下", "右下角", "右下方"],
}  # fmt: skip
# A relation said as a statement about A ("A is higher than B"), and where B lies from A ("under it").
STATE_EN = {
    "left": ["is to the left of", "is left of", "stands at the left side of", "sits on the left of",
             "is further left than", "is on the left side of"],
    "right": ["is to the right of", "is right of", "stands at right side of", "sits on the right of",
              "is further right than", "is on the right side of"],
    "above": ["is above", "is higher than", "sits on top of", "is over", "is placed above", "is up above"],
    "below": ["is below", "is lower than", "is under", "is beneath", "sits underneath", "is placed below"],
}  # fmt: skip
WHERE_EN = {"left": ["to its left", "somewhere to its left", "on its left side", "just left of it"],
            "right": ["to its right", "somewhere to its right", "on its right side", "just right of it"],
            "above": ["above it", "somewhere above it", "on top of it", "higher up"],
            "below": ["under it", "somewhere underneath it", "below it", "beneath it", "lower down"]}  # fmt: skip
STATE_ZH = {"left": ["在{b}的左边", "在{b}左侧", "比{b}靠左", "在{b}左手边"],
            "right": ["在{b}的右边", "在{b}右侧", "比{b}靠右", "在{b}右手边"],
            "above": ["在{b}的上面", "在{b}上方", "比{b}高", "比{b}靠上", "在{b}的上边"],
            "below": ["在{b}的下面", "在{b}下方", "比{b}低", "比{b}靠下", "在{b}的下边", "在{b}底下"]}  # fmt: skip
WHERE_ZH = {"left": ["左边", "左侧", "左边随便哪里"], "right": ["右边", "右侧", "右边随便哪里"],
            "above": ["上面", "上方", "上面随便哪里"], "below": ["下面", "下方", "下面随便哪里", "底下"]}  # fmt: skip
FRAME_EN = (
    ["hi! ", "hello, ", "hey, ", "hi there! could you draw ", "ok so ", "okay, here's what i want: ",
     "so i was thinking, could you do ", "i'd love a picture with ", "could you please draw ",
     "would you mind drawing ", "can you make ", "i need picture: ", "i need a picture of ", "picture: ",
     "image: ", "prompt: ", "generate an image of ", "please create an image with ", "for my slides i need ",
     "quick request: ", "my kid wants ", "i'm looking for ", "let's see... ", "what i'd like is ",
     "my son loves shapes, so maybe ", "Hi! I'd like ", "Please: "],
    ["!", "!!", ".", "?", " please", ", please", " pls", ", thanks!", ". thank you!", ". thanks so much!",
     ", if that's okay", ", if you can", " for me", " :)", ", nothing else", ", that's it", ". that's all."],
)  # fmt: skip
FRAME_ZH = (
    ["你好！", "你好呀！能不能帮我画", "麻烦画", "麻烦帮我画一下", "帮忙画", "我想想啊……先来", "这样吧：", "请帮我生成一张图：",
     "给我来一张图：", "来一张：", "想要一张图，", "我需要一张图：", "嗨，画", "那个，帮我画", "可以画", "能不能画",
     "我家孩子想要", "劳驾，画", "要求：", "图片内容："],
    ["吧", "，谢谢", "，谢谢啦！", "就好啦～", "哦", "呀", "。", "！", "～", "，别的什么都不要", "，其他都不要", "就行",
     "，麻烦了", "，可以吗？", "好吗？", "，多谢"],
)  # fmt: skip


def frame(text: str, lang: str, rng: random.Random) -> str:
    """``text`` with what people put around a request: a greeting or hedge before it, thanks after it, or both."""
    pre, post = FRAME_EN if lang == "en" else FRAME_ZH
    u = rng.random()
    if u < 0.7:
        text = rng.choice(pre) + text
    if u > 0.4:
        text = text.rstrip("。.!！") + rng.choice(post)
    return text


# ----------------------------------------------------------------------------- one group


def _size_en(g: dict, rng: random.Random) -> str | None:
    return rng.choice(SIZE_EN[g["size"]]) if "size" in g else None


def _noun_en(g: dict, rng: random.Random, plural: bool | None = None) -> str:
    noun = rng.choice(NOUN_EN[g["shape"]])
    if plural if plural is not None else g["count"] > 1:
        noun = SHAPE_PLURAL.get(noun) or (noun + "es" if noun.endswith(("x", "s")) else noun + "s")
    return noun


def _words_en(g: dict, rng: random.Random, plural: bool | None = None) -> str:
    """ "big red balls" (no count)."""
    return " ".join(w for w in (_size_en(g, rng), g.get("color"), _noun_en(g, rng, plural)) if w)


def _count_en(n: int, rng: random.Random) -> str:
    return rng.choice([NUM_EN[n], str(n)])


def _clause_en(g: dict, rng: random.Random, alone: bool) -> str:
    """One group with its attributes said after the noun ("a big circle of red colour"; when the group is
    ``alone`` in its sentence also "one circle which is red color and it is big", "a circle, red, big")."""
    n = g["count"]
    noun = _noun_en(g, rng)
    count = "a" if n == 1 and rng.random() < 0.5 else _count_en(n, rng)
    size, color = _size_en(g, rng), g.get("color")

    def head(with_size: bool) -> str:
        words = f"{size} {noun}" if with_size and size else noun
        return _a(words) if count == "a" else f"{count} {words}"

    if not size and not color:
        return head(False)
    u = rng.random()
    if color and (u < 0.3 or not alone):  # "a big circle of red colour"
        tail = rng.choice([" of {c} colour", " of {c} color", " in {c}", ", {c} in colour", " colored {c}"])
        return head(True) + tail.format(c=color)
    attrs = [w for w in (size, color) if w]
    if u < 0.6:  # "a circle, red, big"
        rng.shuffle(attrs)
        return head(False) + ", " + ", ".join(attrs)
    verb = "is" if n == 1 else "are"
    parts = []
    if color:
        parts.append(rng.choice([f"{verb} {color} color", f"{verb} {color}", f"{verb} colored {color}"]))
    if size:
        parts.append(rng.choice([f"{verb} {size}", f"{'it' if n == 1 else 'they'} {verb} {size}"]))
    rng.shuffle(parts)
    return head(False) + rng.choice([" which ", " that "]) + " and ".join(parts)


def _object_en(g: dict, rng: random.Random, alone: bool = False) -> str:
    """A group as a noun phrase, in the grammar's order or with its attributes after the noun."""
    if rng.random() < 0.4 and (alone or "color" in g):
        return _clause_en(g, rng, alone)
    n = g["count"]
    return _a(_words_en(g, rng)) if n == 1 and rng.random() < 0.7 else f"{_count_en(n, rng)} {_words_en(g, rng)}"


def _words_zh(g: dict, rng: random.Random, short: bool = False) -> str:
    """ "大的红色圆形", or compact "大红圆" with ``short``."""
    noun = rng.choice(NOUN_ZH[g["shape"]])
    if short:
        return SIZE_ZH1.get(g.get("size"), "") + COLOR_ZH.get(g.get("color"), "")[:1] + noun
    size = rng.choice({"small": ["小的", "小", "小号的", "小小的"], "large": ["大的", "大", "大号的", "大大的"]}[g["size"]]) if "size" in g else ""  # fmt: skip
    color = rng.choice([COLOR_ZH[g["color"]], COLOR_ZH[g["color"]] + "的", COLOR_ZH[g["color"]][:1]]) if "color" in g else ""  # fmt: skip
    return size + color + noun


def _measure_zh(g: dict, rng: random.Random) -> str:
    """The count and its measure word: "两颗" for stars and balls, "三个", "一个", or nothing for one object."""
    n = g["count"]
    word = "颗" if g["shape"] in ("star", "circle") and rng.random() < 0.4 else "个"
    if n > 1:
        return NUM_ZH[n][:-1] + word
    return rng.choice(["一" + word, "一" + word, "一" + word, ""])


def _clause_zh(g: dict, rng: random.Random) -> str:
    """ "一个圆形，它的颜色是红色，它很大"."""
    head = _measure_zh(g, rng) + rng.choice(NOUN_ZH[g["shape"]])
    it = "它" if g["count"] == 1 else "它们"
    parts = []
    if "color" in g:
        c = COLOR_ZH[g["color"]]
        parts.append(rng.choice([f"{it}的颜色是{c}", f"颜色是{c}", f"{c}的", f"要{c}"]))
    if "size" in g:
        parts.append(rng.choice({"small": [f"{it}很小", "小的", "要小的", "小号"],
                                 "large": [f"{it}很大", "大的", "要大的", "大号"]}[g["size"]]))  # fmt: skip
    rng.shuffle(parts)
    return "，".join([head, *parts])


def _object_zh(g: dict, rng: random.Random, alone: bool = False) -> str:
    """A group as a noun phrase; when it is ``alone`` in its sentence, sometimes with its attributes as clauses."""
    if alone and rng.random() < 0.35 and ("color" in g or "size" in g):
        return _clause_zh(g, rng)
    if rng.random() < 0.3 and g["count"] == 1:
        return rng.choice(["一个", ""]) + _words_zh(g, rng, short=True)
    return _measure_zh(g, rng) + _words_zh(g, rng)


# ----------------------------------------------------------------------------- forms


def _statement(a: dict, b: dict, rel: str, lang: str, rng: random.Random) -> str | None:
    """Two single objects of different shapes and a relation, said as statements: "the triangle is yellow, the
    circle is blue, the triangle is to the right of the circle", "星形在圆形上方，都是粉色"."""
    if a["shape"] == b["shape"]:
        return None
    attrs = lambda g: {k: g[k] for k in ("color", "size") if k in g}  # noqa: E731
    both = attrs(a) == attrs(b) and attrs(a) and (lang == "en" or len(attrs(a)) == 1) and rng.random() < 0.5
    if lang == "en":
        na, nb = rng.choice(NOUN_EN[a["shape"]]), rng.choice(NOUN_EN[b["shape"]])
        the = rng.choice(["the ", ""])
        rel_text = f"{the}{na} {rng.choice(STATE_EN[rel])} {the}{nb}"
        if both:
            shared = " and ".join(w for w in (_size_en(a, rng), a.get("color")) if w)
            return rel_text.removeprefix("the ") + rng.choice([", both {}", ", both of them {}", "; they are both {}"]).format(shared)  # fmt: skip

        def says(g: dict, noun: str) -> str | None:
            words = [w for w in (_size_en(g, rng), g.get("color")) if w]
            return f"{the}{noun} is {' and '.join(words)}" if words else None

        parts = [p for p in (says(a, na), says(b, nb)) if p]
        return ", ".join([*parts, rel_text]) if rng.random() < 0.7 else ", ".join([rel_text, *parts])
    na, nb = rng.choice(NOUN_ZH[a["shape"]]), rng.choice(NOUN_ZH[b["shape"]])
    rel_text = na + rng.choice(STATE_ZH[rel]).format(b=nb)
    if both:
        shared = COLOR_ZH[a["color"]] if "color" in a else SIZE_ZH1[a["size"]]
        return rel_text + rng.choice(["，都是{}的", "，两个都是{}的", "，都要{}"]).format(shared)

    def says_zh(g: dict, noun: str) -> str | None:
        words = ([f"是{COLOR_ZH[g['color']]}的"] if "color" in g else []) + (
            [rng.choice({"small": ["很小", "是小的"], "large": ["很大", "是大的"]}[g["size"]])] if "size" in g else []
        )
        return noun + "，".join(words) if words else None

    parts = [p for p in (says_zh(a, na), says_zh(b, nb)) if p]
    return "，".join([*parts, rel_text]) if rng.random() < 0.7 else "，".join([rel_text, *parts])


STORY_EN = ["there is {b}, and {w} there is {a}", "{b}. {w}, {a}", "first {b}, then {a} {w}", "{b} and then, {w}, {a}",
            "{b}, and {a} {w}"]  # fmt: skip
STORY_ZH = ["有{b}，它的{w}有{a}", "先来{b}，然后在它{w}放{a}", "{b}，它{w}是{a}", "先画{b}，再在它{w}画{a}"]
# version 5 adds: B "with" A placed from it, and B then A in two sentences
STORY_EN_V5 = ["{b} with {a} {w}", "{b} with {a} {w}", "{b}; {a} {w}", "{b}, with {a} {w}", "{b}. put {a} {w}"]
STORY_ZH_V5 = ["{b}的{w}有{a}", "{b}，{w}放{a}", "{b}，在它{w}画{a}", "{b}，它的{w}要有{a}"]


def _story(a: dict, b: dict, rel: str, lang: str, rng: random.Random, version: int = 4) -> str:
    """B first, then A placed from it: "there is a green cross, and under it there is a pink triangle"."""
    v5 = version >= 5
    if lang == "en":
        form = rng.choice(STORY_EN + STORY_EN_V5 if v5 else STORY_EN)
        return form.format(a=_object_en(a, rng), b=_object_en(b, rng), w=rng.choice(WHERE_EN[rel]))
    form = rng.choice(STORY_ZH + STORY_ZH_V5 if v5 else STORY_ZH)
    return form.format(a=_object_zh(a, rng), b=_object_zh(b, rng), w=rng.choice(WHERE_ZH[rel]))


def _note(gs: list[dict], lang: str, rng: random.Random) -> str | None:
    """Counts after the noun, as people write notes: "red circles: 3, blue star x1", "红色圆形×3"."""
    if any("cell" in g for g in gs):
        return None
    parts = []
    for g in gs:
        n = g["count"]
        if lang == "en":
            form = rng.choice(["{w}: {n}", "{w} x{n}", "{n}x {w}", "{w} ×{n}", "{w} ({n})", "{n} × {w}"])
            parts.append(form.format(w=_words_en(g, rng, plural=n > 1 or rng.random() < 0.3), n=n))
        else:
            form = rng.choice(["{w}×{n}", "{w}{n}个", "{w}：{n}个", "{w} x{n}", "{w}（{n}个）"])
            parts.append(form.format(w=_words_zh(g, rng, short=rng.random() < 0.3), n=n))
    return rng.choice([", ", "; ", " + "] if lang == "en" else ["，", "；", "、", " + "]).join(parts)


def _layout_list(gs: list[dict], lang: str, rng: random.Random) -> str | None:
    """Every group placed, as a list: "layout: red circle top-left, blue square top-right", "左上红圆，右上蓝方块"."""
    if not all("cell" in g for g in gs):
        return None
    parts = []
    for g in gs:
        place = rng.choice(PLACE_EN[tuple(g["cell"])] if lang == "en" else PLACE_ZH[tuple(g["cell"])])
        if lang == "en":
            noun = _words_en(g, rng) if g["count"] == 1 else f"{_count_en(g['count'], rng)} {_words_en(g, rng)}"
            forms = [f"{noun} {place}", f"{place}: {noun}"] + ([f"{noun}, {place}"] if len(gs) == 1 else [])
            parts.append(rng.choice(forms))
        else:
            noun = _words_zh(g, rng, short=rng.random() < 0.5)
            if g["count"] > 1:
                noun = NUM_ZH[g["count"]] + noun
            parts.append(rng.choice([f"{place}{noun}", f"{place}：{noun}", f"{place}放{noun}", f"{noun}在{place}"]))
    head = rng.choice(["layout: ", "Layout: ", "", "", "positions: "] if lang == "en" else ["布局：", "", "", "位置："])
    return head + rng.choice([", ", "; "] if lang == "en" else ["，", "；"]).join(parts)


def _whole(gs: list[dict], lang: str, rng: random.Random) -> str | None:
    """A count of the whole, then the parts: "three shapes: a red star, a blue star and a yellow star"."""
    total = sum(g["count"] for g in gs)
    if len(gs) < 2 or total > 4:
        return None
    if lang == "en":
        items = [_object_en(g, rng) for g in gs]
        head = rng.choice([f"{NUM_EN[total]} shapes", f"{total} shapes", f"{NUM_EN[total]} objects",
                           f"{NUM_EN[total]} things", f"{total}-element composition", f"{NUM_EN[total]}-element composition"])  # fmt: skip
        return head + rng.choice([": ", " - "]) + ", ".join(items[:-1]) + " and " + items[-1]
    items = [_object_zh(g, rng) for g in gs]
    head = rng.choice([f"{NUM_ZH[total]}图形", f"{NUM_ZH[total][:-1]}样东西", f"{total}个形状", f"{NUM_ZH[total]}物体"])
    return head + "：" + "、".join(items[:-1]) + "和" + items[-1]


def _each(gs: list[dict], lang: str, rng: random.Random) -> str | None:
    """Single unplaced objects of one shape told apart by one attribute: "stars in red, blue and yellow, one of
    each", "红、蓝、黄三种颜色的星星各一个", "一大一小两个十字形"."""
    if len(gs) < 2 or any(g["count"] != 1 or "cell" in g for g in gs) or len({g["shape"] for g in gs}) > 1:
        return None
    shape = gs[0]["shape"]
    if all(set(g) == {"shape", "count", "color"} for g in gs) and len({g["color"] for g in gs}) == len(gs):
        cs = [g["color"] for g in gs]
        if lang == "en":
            listed = ", ".join(cs[:-1]) + " and " + cs[-1]
            return rng.choice([f"{SHAPE_PLURAL[shape]} in {listed}, one of each", f"one {' and one '.join(cs)} {shape}",
                               f"{listed} {SHAPE_PLURAL[shape]}, one each"])  # fmt: skip
        zh = [COLOR_ZH[c][:1] for c in cs]
        noun = rng.choice(NOUN_ZH[shape])
        if len(gs) == 2 and rng.random() < 0.5:
            return f"一{zh[0]}一{zh[1]}两个{noun}"
        return f"{'、'.join(zh)}{NUM_ZH[len(gs)][:-1]}种颜色的{noun}各一个"
    if len(gs) == 2 and all(set(g) == {"shape", "count", "size"} for g in gs) and gs[0]["size"] != gs[1]["size"]:
        if lang == "en":
            s0, s1 = (rng.choice(SIZE_EN[g["size"]]) for g in gs)
            return rng.choice([f"{_a(s0)} and {_a(s1)} {shape}", f"one {s0}, one {s1} {shape}",
                               f"two {SHAPE_PLURAL[shape]}, one {s0} and one {s1}"])  # fmt: skip
        return f"一{SIZE_ZH1[gs[0]['size']]}一{SIZE_ZH1[gs[1]['size']]}两个{rng.choice(NOUN_ZH[shape])}"
    return None


def _emphasis(gs: list[dict], lang: str, rng: random.Random) -> str | None:
    """One object, said twice or "just one": "a circle. just one circle.", "画个圆。就一个圆。"."""
    if len(gs) != 1 or gs[0]["count"] != 1 or "cell" in gs[0]:
        return None
    g = gs[0]
    if lang == "en":
        w = _words_en(g, rng)
        return rng.choice([f"{_a(w)}. just one {_noun_en(g, rng)}.", f"just a single {w}", f"only one {w}",
                           f"{_a(w)}, only one", f"one {w} and nothing more"])  # fmt: skip
    w = _words_zh(g, rng, short=rng.random() < 0.4)
    return rng.choice([f"画个{w}。就一个{w}。", f"只要一个{w}", f"一个{w}就够了", f"就画一个{w}", f"来个{w}"])


def _background(text: str, bg: str, lang: str, rng: random.Random) -> str:
    if lang == "en":
        form = rng.choice(["bg={bg}; {t}", "background: {bg}; {t}", "{t}, {bg} background", "{bg} backdrop, {t}",
                           "{t} (background {bg})", "{t}, bg {bg}", "{t} on {bg}", "{bg} bg, {t}"])  # fmt: skip
        return form.format(bg=bg, t=text)
    z = BG_ZH[bg]
    form = rng.choice(["背景={b}；{t}", "背景：{b}；{t}", "{t}，{b}底", "{b1}底，{t}", "{t}，背景要{b}的", "{b}背景，{t}",
                       "{t}（{b}背景）"])  # fmt: skip
    return form.format(b=z, b1=z[:1], t=text)


def phrase(spec: Spec, lang: str, rng: random.Random, version: int = 4) -> tuple[str, Spec] | None:
    """``spec`` in one of the forms above, and the spec with its groups in the order the sentence names them;
    None when no form fits the spec (the caller then says it another way). Version 5 tells a relation from the
    other object in more forms ("B with A to its right"), and as such when its two shapes are the same (a
    statement needs two shapes)."""
    gs = [dict(g) for g in spec["groups"]]
    rel = spec.get("relation")
    text = None
    if rel and not any("cell" in g for g in gs):
        a, b = gs
        story = rng.random() < 0.5 or (version >= 5 and a["shape"] == b["shape"])
        if story:
            text = _story(a, b, rel, lang, rng, version)
            gs, rel = [b, a], INVERSE[rel]
        else:
            text = _statement(a, b, rel, lang, rng)
    elif not rel:
        forms = [_note, _layout_list, _whole, _each, _emphasis]
        rng.shuffle(forms)
        text = next((t for f in forms if (t := f(gs, lang, rng))), None)
        if text is None and all("cell" not in g for g in gs):
            parts = [(_object_en if lang == "en" else _object_zh)(g, rng, len(gs) == 1) for g in gs]
            text = (", ".join(parts[:-1]) + " and " + parts[-1] if lang == "en" else "，".join(parts)) if len(parts) > 1 else parts[0]  # fmt: skip
    if text is None:
        return None
    if spec.get("bg"):
        text = _background(text, spec["bg"], lang, rng)
    out: Spec = {"groups": gs, **({"relation": rel} if rel else {}), **({"bg": spec["bg"]} if spec.get("bg") else {})}
    return text, normalize_spec(out)


# ----------------------------------------------------------------------------- refusals


def refusal_phrase(
    lang: str, rng: random.Random, unknown_colors: list[str], unknown_words: list[str]
) -> tuple[str, str]:
    """A prompt to refuse in the forms above, and its reason: a note asking for too many (count) or none (zero),
    one of every shape (count), a note or key-value line naming something outside the world (unknown), a relation
    stated both ways (contradiction)."""
    en = lang == "en"
    unknown_colors = [c for c in unknown_colors if c not in ("white", "black", "白色", "黑色")]
    u = rng.random()
    g = {"shape": rng.choice(SHAPES), "color": rng.choice(list(COLORS)), "count": 1}
    if u < 0.3:  # a note with a count that does not fit, or none
        n = rng.choice([5, 6, 7, 8, 9, 10, 12, 20, 50, 100, 0, 0, 0, -1, -2])
        w = _words_en(g, rng, plural=True) if en else _words_zh(g, rng, short=rng.random() < 0.3)
        form = rng.choice(
            ["{w}: {n}", "{w} x{n}", "{n}x {w}", "{w} ×{n}"] if en else ["{w}×{n}", "{w}{n}个", "{w}：{n}个"]
        )
        return form.format(w=w, n=n), "count" if n > 4 else "zero"
    if u < 0.45:  # one of every shape
        if en:
            return rng.choice(["one of every shape", "one of each shape: circle, square, triangle, diamond, star and cross",
                               "every shape once", "all six shapes, one each", "a circle, a square, a triangle, a diamond, a star and a cross"]), "count"  # fmt: skip
        return rng.choice(["所有形状各一个", "六种形状各画一个", "圆形、正方形、三角形、菱形、星形和十字形各一个", "每种形状都来一个"]), "count"  # fmt: skip
    if u < 0.75:  # a note naming something outside the world
        bad = rng.choice(unknown_colors)
        if rng.random() < 0.5:
            text = f"bg={bad}; 1 {_words_en(g, rng)}" if en else f"背景={bad}；1个{_words_zh(g, rng)}"
        elif en:
            text = rng.choice([f"shape: {rng.choice(unknown_words)}, colour: {g['color']}", f"{rng.choice(unknown_words)} x2",
                               f"shape: {g['shape']}, colour: {bad}"])  # fmt: skip
        else:
            text = rng.choice([f"形状：{rng.choice(unknown_words)}，颜色：{COLOR_ZH[g['color']]}", f"{rng.choice(unknown_words)}×2",
                               f"形状：{SHAPE_ZH[g['shape']]}，颜色：{bad}"])  # fmt: skip
        return text, "unknown"
    s1, s2 = rng.sample(SHAPES, 2)
    rel = rng.choice(list(INVERSE))
    if en:
        return (f"the {s1} {rng.choice(STATE_EN[rel])} the {s2}, and the {s2} {rng.choice(STATE_EN[rel])} the {s1}",
                "contradiction")  # fmt: skip
    a, b = SHAPE_ZH[s1], SHAPE_ZH[s2]
    return f"{a}{rng.choice(STATE_ZH[rel]).format(b=b)}，{b}也{rng.choice(STATE_ZH[rel]).format(b=a)}", "contradiction"
