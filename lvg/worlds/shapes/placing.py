"""Where things go, said as people say it: relations told from the other object, comparisons, places as headlines.

Round 9 of the planner still drew wrong, in forms a writer who never saw its data used, the places of objects:

- **other**: a relation told from the object it is measured from, with a verb or "there is" ("under the yellow
  square there's a purple star", "to the right of the small red cross, put a big green cross", "a blue square, and a
  red circle sitting to its left", "黄色方块下面有个紫色星星", "小红十字的右边放一个大绿十字", "紫色圆的右边画个橙色三角");
- **named_first**: the same relation words with the object that moves named first ("a green star sitting just above
  a red diamond", "一个红圆放在蓝方块的左边"): a first try without them (2026-12-08, candidate A of round 10) learned
  the rows above and then inverted 29 of 120 such English prompts (round 9: 2), so both word orders are drawn;
- **compare**: a comparison ("the green diamond should be higher than the yellow square", "the pink ball is lower
  than the green box", "yellow star and blue star side by side, the yellow one on the left", "绿色菱形要比黄色正方形高",
  "粉色的圆比绿色方块低");
- **places**: each object's place said as a headline or a clause of its own ("lower left: small green star", "Right
  side: one blue plus. Left side: one yellow plus.", "an orange star on the left and a purple square over on the
  right", "三角形一个，红色，放左下角", "顶部放一个大的青色十字形", "左边一个蓝色星星，右边一个蓝色十字").

A background is sometimes said in everyday words too ("on a dark backdrop", "深色背景", "黑底"). ``placing_sample``
draws one of these for ``PlanDataConfig.placing_prob`` of the planner's rows. Every sentence means exactly its spec,
whose groups are in the order the sentence names them (so the target layout lists the objects in that order). A pure
function of ``rng``. None of these forms was taken from a hand-written set that is still counted as held out (set 9's
failures were read to choose the kinds; set 10 was written before this module and not read).
"""

from __future__ import annotations

import random

from .binding import SHORT_ZH
from .phrasings import NOUN_EN, NOUN_ZH, PLACE_EN, PLACE_ZH, SIZE_ZH1, _words_en, frame
from .sentences import ASK_EN, ASK_ZH, CELLS_EN, CELLS_ZH, INVERSE, _a
from .spec import Spec, normalize_spec, scene_from_spec
from .world import BG_PROBS, CELLS, COLOR_ZH, COLORS, RELATIONS, SHAPES, Scene, relation_holds

KIND_WEIGHTS = {"other": 0.3, "named_first": 0.25, "compare": 0.2, "places": 0.25}

# B's side, said before A ("under the yellow square, ..."): where A lies from B
FROM_EN = {"left": ["to the left of", "left of", "on the left side of", "just left of"],
           "right": ["to the right of", "right of", "on the right side of", "just right of"],
           "above": ["above", "over", "on top of", "just above", "higher up than"],
           "below": ["under", "below", "beneath", "underneath", "just below"]}  # fmt: skip
ITS_EN = {"left": ["to its left", "on its left", "on the left of it", "left of it"],
          "right": ["to its right", "on its right", "on the right of it", "right of it"],
          "above": ["above it", "on top of it", "over it", "up above it"],
          "below": ["under it", "below it", "beneath it", "underneath it"]}  # fmt: skip
SIDE_ZH = {"left": ["左边", "左侧", "左面", "左手边"], "right": ["右边", "右侧", "右面", "右手边"],
           "above": ["上面", "上方", "上边", "上头"], "below": ["下面", "下方", "下边", "底下", "下头"]}  # fmt: skip
# A compared with B ("A is higher than B")
THAN_EN = {"left": ["further left than", "farther left than", "more to the left than", "a bit more left than"],
           "right": ["further right than", "farther right than", "more to the right than", "a bit more right than"],
           "above": ["higher than", "higher up than", "a bit higher than", "further up than"],
           "below": ["lower than", "lower down than", "a bit lower than", "further down than"]}  # fmt: skip
ONE_EN = {"left": ["on the left", "further left", "to the left", "on the left side"],
          "right": ["on the right", "further right", "to the right", "on the right side"],
          "above": ["higher", "on top", "higher up", "above"], "below": ["lower", "at the bottom", "lower down", "below"]}  # fmt: skip
THAN_ZH = {"left": ["靠左", "更靠左", "靠左一些", "偏左"], "right": ["靠右", "更靠右", "靠右一些", "偏右"],
           "above": ["高", "更高", "高一点", "靠上", "高一些"], "below": ["低", "更低", "低一点", "靠下", "低一些"]}  # fmt: skip
ONE_ZH = {"left": ["在左边", "靠左", "在左"], "right": ["在右边", "靠右", "在右"], "above": ["在上面", "高一些", "在上"],
          "below": ["在下面", "低一些", "在下"]}  # fmt: skip
# more words for the nine places, as headlines and clauses
MORE_EN = {(0, 1): ["top", "up top", "top middle"], (1, 0): ["left side", "over on the left", "the left"],
           (1, 2): ["right side", "over on the right", "the right"], (2, 1): ["bottom", "down at the bottom"],
           (1, 1): ["middle", "the middle", "center"]}  # fmt: skip
MORE_ZH = {(0, 1): ["顶部", "上面", "最上面", "顶上"], (1, 0): ["左边", "左侧", "最左边"], (1, 2): ["右边", "右侧", "最右边"],
           (2, 1): ["底部", "下面", "最下面", "底下"], (1, 1): ["中间", "正中间"]}  # fmt: skip
BG_EN = {"black": ["on a dark background", "on a dark backdrop", "against black", "on a black canvas", "dark background",
                   "with a black bg"],
         "white": ["on a light background", "on plain white", "against white", "on a white canvas", "light background",
                   "with a white bg"]}  # fmt: skip
BG_ZH2 = {"black": ["深色背景", "黑底", "背景是黑的", "暗色背景", "背景用黑色"],
          "white": ["浅色背景", "白底", "背景是白的", "背景用白色", "白色底"]}  # fmt: skip


def _group(rng: random.Random, shape: str | None = None) -> dict:
    """One object with a colour (mostly) and a size (sometimes)."""
    g: dict = {"shape": shape or rng.choice(SHAPES), "count": 1}
    if rng.random() < 0.8:
        g["color"] = rng.choice(sorted(COLORS))
    if rng.random() < 0.4:
        g["size"] = rng.choice(["small", "large"])
    return g


def _np_en(g: dict, rng: random.Random, the: bool = False) -> str:
    words = _words_en(g, rng)
    return ("the " + words) if the else (_a(words) if rng.random() < 0.8 else "one " + words)


def _np_zh(g: dict, rng: random.Random, count: bool = True) -> str:
    """ "一个大的红色圆形", "小红十字", "紫色圆", "三角形"."""
    if rng.random() < 0.4:  # compact: size and colour by one character each
        noun = SHORT_ZH[g["shape"]] if rng.random() < 0.6 else rng.choice(NOUN_ZH[g["shape"]])
        words = SIZE_ZH1.get(g.get("size"), "") + COLOR_ZH.get(g.get("color"), "")[:1] + noun
    else:
        size = rng.choice({"small": ["小的", "小"], "large": ["大的", "大"]}[g["size"]]) if "size" in g else ""
        color = rng.choice([COLOR_ZH[g["color"]], COLOR_ZH[g["color"]] + "的"]) if "color" in g else ""
        words = size + color + rng.choice(NOUN_ZH[g["shape"]])
    m = "颗" if g["shape"] == "star" and rng.random() < 0.4 else "个"
    return (rng.choice(["一" + m, "", "一" + m]) if count else "") + words


def _pair(rng: random.Random) -> tuple[dict, dict]:
    """Two objects a sentence can tell apart (a fifth of the time of one shape; never the same words)."""
    a = _group(rng)
    b = _group(rng, a["shape"] if rng.random() < 0.2 else None)
    if a == b:  # two of the same object: tell them apart by colour
        b["color"] = rng.choice(sorted(set(COLORS) - {a.get("color")}))
    return a, b


def _other(lang: str, rng: random.Random) -> tuple[Spec, str, bool]:
    """B first, then A placed from it; the spec names B first (``B INVERSE[rel] A``)."""
    a, b = _pair(rng)
    rel = rng.choice(RELATIONS)  # where A lies from B
    spec = {"groups": [b, a], "relation": INVERSE[rel]}
    if lang == "en":
        where = rng.choice(FROM_EN[rel])
        bt = _np_en(b, rng, the=rng.random() < 0.6)
        form = rng.randrange(4)
        if form == 0:
            verb = rng.choice(["put", "draw", "place", "add", "there's", "there is", "i want", "have", "we need"])
            return spec, f"{where} {bt}, {verb} {_np_en(a, rng)}", False
        if form == 1:
            return (
                spec,
                f"{where} {bt} " + rng.choice(["there's", "there is", "sits", "is", "goes"]) + f" {_np_en(a, rng)}",
                False,
            )
        its = rng.choice(ITS_EN[rel])
        if form == 2:
            verb = rng.choice(["sitting ", "placed ", "", "that sits ", "right "])
            return (
                spec,
                f"{_np_en(b, rng)}, " + rng.choice(["and ", "plus ", "with "]) + f"{_np_en(a, rng)} {verb}{its}",
                True,
            )
        return spec, f"{_np_en(b, rng)}" + rng.choice([" that has ", " which has ", ". put ", "; then "]) + \
            f"{_np_en(a, rng)} {its}", True  # fmt: skip
    side = rng.choice(SIDE_ZH[rel])
    bt = _np_zh(b, rng, count=False)
    of = rng.choice(["的", "", "的"])
    pre = rng.choice(["", "", "在"])
    verb = rng.choice(
        ["有个", "有一个", "放", "放一个", "画个", "画", "是", "再来个", "加一个", "摆个", "放个", "要有"]
    )
    a_text = _np_zh(a, rng, count=verb in ("放", "画", "是", "要有") and rng.random() < 0.7)
    if pre and verb in ("有个", "有一个", "是", "要有"):
        pre = ""
    return spec, f"{pre}{bt}{of}{side}{verb}{a_text}", False


def _named_first(lang: str, rng: random.Random) -> tuple[Spec, str, bool]:
    """A named first, then where it lies from B, in the same words as :func:`_other` ("a green star sitting just above
    a red diamond", "一个红圆放在蓝方块的左边"): the word order, not the words, says which object is measured from
    which, so both orders are drawn."""
    a, b = _pair(rng)
    rel = rng.choice(RELATIONS)
    spec = {"groups": [a, b], "relation": rel}
    if lang == "en":
        verb = rng.choice(["", "", "sitting ", "placed ", "that sits ", "which is ", "just ", "is "])
        at = _np_en(a, rng, the=verb == "is " or rng.random() < 0.2)
        return spec, f"{at} {verb}{rng.choice(FROM_EN[rel])} {_np_en(b, rng, the=rng.random() < 0.4)}", verb != "is "
    at, bt = _np_zh(a, rng, count=rng.random() < 0.6), _np_zh(b, rng, count=rng.random() < 0.3)
    verb = rng.choice(["在", "放在", "位于", "画在", "要在", "摆在"])
    return spec, f"{at}{verb}{bt}{rng.choice(['的', '', '的'])}{rng.choice(SIDE_ZH[rel])}", verb in ("在", "位于")


def _compare(lang: str, rng: random.Random) -> tuple[Spec, str, bool]:
    """A compared with B: "A should be higher than B", "A比B高"; or "A and B, the red one on the left"."""
    a, b = _pair(rng)
    rel = rng.choice(RELATIONS)
    spec = {"groups": [a, b], "relation": rel}
    key = (
        "color"
        if a.get("color") and b.get("color") and a["color"] != b["color"]
        else ("shape" if a["shape"] != b["shape"] else None)
    )
    if lang == "en":
        if key and rng.random() < 0.3:
            one = f"the {a['color']} one" if key == "color" else "the " + rng.choice(NOUN_EN[a["shape"]])
            side = " side by side" if rel in ("left", "right") and rng.random() < 0.5 else ""
            return spec, f"{_np_en(a, rng)} and {_np_en(b, rng)}{side}, " + rng.choice(["", "with "]) + \
                f"{one} {rng.choice(ONE_EN[rel])}", True  # fmt: skip
        verb = rng.choice(["should be", "is", "sits", "needs to be", "has to be", "goes", "placed"])
        text = f"{_np_en(a, rng, the=rng.random() < 0.6)} {verb} {rng.choice(THAN_EN[rel])} {_np_en(b, rng, the=rng.random() < 0.6)}"
        if rng.random() < 0.2:
            return spec, rng.choice(["put ", "make ", "draw "]) + text.replace(f" {verb} ", " ", 1), False
        return spec, text, False
    at, bt = _np_zh(a, rng, count=rng.random() < 0.3), _np_zh(b, rng, count=False)
    if key and rng.random() < 0.3:
        one = f"{COLOR_ZH[a['color']]}的那个" if key == "color" else rng.choice(NOUN_ZH[a["shape"]])
        return spec, f"{at}和{bt}，{one}{rng.choice(ONE_ZH[rel])}", True
    than = rng.choice(THAN_ZH[rel])
    form = rng.choice(["{a}比{b}{t}", "{a}要比{b}{t}", "{a}的位置比{b}{t}", "{a}放得比{b}{t}"])
    return spec, form.format(a=at, b=bt, t=than), False


def _place_en(cell: tuple[int, int], rng: random.Random) -> str:
    return rng.choice([*PLACE_EN[cell], *MORE_EN.get(cell, [])])


def _place_zh(cell: tuple[int, int], rng: random.Random) -> str:
    return rng.choice([*PLACE_ZH[cell], *CELLS_ZH[cell], *MORE_ZH.get(cell, [])])


def _places(lang: str, rng: random.Random) -> tuple[Spec, str, bool]:
    """1-3 objects, each with its own place, said as headlines or clauses."""
    n = rng.choice([1, 1, 2, 2, 2, 3])
    gs = [{**_group(rng), "cell": c} for c in rng.sample(CELLS, n)]
    form = rng.randrange(3)
    if lang == "en":
        if form == 0:  # "lower left: small green star. right side: one blue plus"
            parts = [_place_en(g["cell"], rng) + rng.choice([": ", " - ", ": one "]) + _words_en(g, rng) for g in gs]
            if rng.random() < 0.5:
                parts = [p[:1].upper() + p[1:] for p in parts]
            return {"groups": gs}, rng.choice([". ", "; ", "\n"]).join(parts), False
        if form == 1:  # "an orange star on the left and a purple square over on the right"
            parts = [_np_en(g, rng) + " " + _place_clause_en(g["cell"], rng) for g in gs]
            return {"groups": gs}, rng.choice(["; ", ", ", " and "]).join(parts), True
        parts = [rng.choice(CELLS_EN[g["cell"]]) + ", " + _np_en(g, rng) for g in gs]  # "on the left, a star"
        return {"groups": gs}, rng.choice(["; ", ". ", ", and "]).join(parts).capitalize(), False
    if form == 0:  # "左下：小绿星"，"顶部放一个大的青色十字形"
        parts = [_place_zh(g["cell"], rng) + rng.choice(["：", "，", "放", "放一个", "一个", "画个"]) + _np_zh(g, rng, count=False)
                 for g in gs]  # fmt: skip
    elif form == 1:  # "三角形一个，红色，放左下角"
        parts = []
        for g in gs:
            attrs = [
                w for w in (COLOR_ZH.get(g.get("color")), {"small": "小的", "large": "大的"}.get(g.get("size"))) if w
            ]
            where = rng.choice(["放", "放在", "在"]) + _place_zh(g["cell"], rng)
            parts.append("，".join([rng.choice(NOUN_ZH[g["shape"]]) + "一个", *attrs, where]))
    else:  # "一个蓝色星星放在左下角"
        parts = [_np_zh(g, rng) + rng.choice(["放在", "在", "放", "画在"]) + _place_zh(g["cell"], rng) for g in gs]
    return {"groups": gs}, rng.choice(["，", "；", "。"]).join(parts), form == 2


def _place_clause_en(cell: tuple[int, int], rng: random.Random) -> str:
    """ "in the top left", "over on the right"."""
    over = {(1, 0): ["over on the left"], (1, 2): ["over on the right"]}.get(cell, [])
    return rng.choice([*CELLS_EN[cell], *over])


KINDS = {"other": _other, "named_first": _named_first, "compare": _compare, "places": _places}


def placing_sample(lang: str, rng: random.Random) -> tuple[Scene, str, Spec]:
    """A scene, the sentence that asks for where its objects go, and its spec (groups in the sentence's order)."""
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    spec, text, askable = KINDS[kind](lang, rng)
    if askable and rng.random() < 0.3:
        text = rng.choice(ASK_EN if lang == "en" else ASK_ZH) + text
    if rng.random() < 0.3:  # the background said in everyday words
        bg = "white" if rng.random() < BG_PROBS["white"] else "black"
        spec["bg"] = bg
        if lang == "en":
            text = (f"{text}, {rng.choice(BG_EN[bg])}" if rng.random() < 0.7 else
                    f"{rng.choice(BG_EN[bg]).removeprefix('on ').capitalize()}: {text}")  # fmt: skip
        else:
            text = f"{text}，{rng.choice(BG_ZH2[bg])}" if rng.random() < 0.7 else f"{rng.choice(BG_ZH2[bg])}，{text}"
    if askable and rng.random() < 0.25:
        text = frame(text, lang, rng)
    spec = normalize_spec(spec)
    return scene_from_spec(spec, rng), text, spec  # (its objects in the spec's order, the relation holding)


def _both_ways(lang: str, rng: random.Random) -> str:
    """A relation, then the same two objects the other way round ("under the square there's a star, and the square
    is lower than the star", "红圆比蓝方块高，蓝方块又比红圆高")."""
    a, b = _pair(rng)
    rel = rng.choice(RELATIONS)
    if lang == "en":
        first = rng.choice([f"{_np_en(a, rng)} {rng.choice(FROM_EN[rel])} {_np_en(b, rng)}",
                            f"{rng.choice(FROM_EN[rel])} {_np_en(b, rng, the=True)} there's {_np_en(a, rng)}",
                            f"{_np_en(a, rng, the=True)} is {rng.choice(THAN_EN[rel])} {_np_en(b, rng, the=True)}"])  # fmt: skip
        second = f"{_np_en(b, rng, the=True)} is {rng.choice(THAN_EN[rel] + FROM_EN[rel])} {_np_en(a, rng, the=True)}"
        return first + rng.choice([", and ", " and ", ", but ", ". also, ", ", while "]) + second
    at, bt = _np_zh(a, rng, count=False), _np_zh(b, rng, count=False)
    first = rng.choice([f"{at}在{bt}的{rng.choice(SIDE_ZH[rel])}", f"{bt}的{rng.choice(SIDE_ZH[rel])}有个{at}",
                        f"{at}比{bt}{rng.choice(THAN_ZH[rel])}"])  # fmt: skip
    second = rng.choice([f"{bt}又在{at}的{rng.choice(SIDE_ZH[rel])}", f"{bt}也比{at}{rng.choice(THAN_ZH[rel])}",
                         f"同时{bt}在{at}{rng.choice(SIDE_ZH[rel])}"])  # fmt: skip
    return first + rng.choice(["，", "，但是", "，而且"]) + second


def _two_places(lang: str, rng: random.Random) -> str:
    """One object in two places at once ("just one star: top left and bottom right", "只要一个圆，放左上角和右下角")."""
    g = _group(rng)
    c1, c2 = rng.sample(CELLS, 2)
    if lang == "en":
        one = rng.choice(["just one ", "only one ", "a single ", "one "]) + _words_en(g, rng)
        return rng.choice([f"{one}, {_place_en(c1, rng)} and {_place_en(c2, rng)} at the same time",
                           f"{one} that sits {_place_clause_en(c1, rng)} and also {_place_clause_en(c2, rng)}",
                           f"{_place_en(c1, rng)}: {one}; {_place_en(c2, rng)}: the same {_words_en(g, rng)}"])  # fmt: skip
    one = rng.choice(["只要一个", "就一个", "一个"]) + _np_zh(g, rng, count=False)
    return rng.choice([f"{one}，放在{_place_zh(c1, rng)}和{_place_zh(c2, rng)}", f"{one}，既在{_place_zh(c1, rng)}又在{_place_zh(c2, rng)}",
                       f"{one}，同时放{_place_zh(c1, rng)}和{_place_zh(c2, rng)}"])  # fmt: skip


def _place_against_relation(lang: str, rng: random.Random) -> str:
    """Two objects placed where the relation said of them cannot hold ("top left: a circle; bottom right: a square;
    the circle is lower than the square")."""
    a, b = _pair(rng)
    rel = rng.choice(RELATIONS)
    wrong = [(ca, cb) for ca in CELLS for cb in CELLS if ca != cb and relation_holds(INVERSE[rel], ca, cb)]
    ca, cb = rng.choice(wrong)
    if lang == "en":
        places = f"{_np_en(a, rng)} {_place_clause_en(ca, rng)}, {_np_en(b, rng)} {_place_clause_en(cb, rng)}"
        return places + rng.choice([", and ", "; "]) + f"{_np_en(a, rng, the=True)} is {rng.choice(THAN_EN[rel] + FROM_EN[rel])} {_np_en(b, rng, the=True)}"  # fmt: skip
    places = f"{_place_zh(ca, rng)}放{_np_zh(a, rng, count=False)}，{_place_zh(cb, rng)}放{_np_zh(b, rng, count=False)}"
    return places + "，" + rng.choice([f"{_np_zh(a, rng, count=False)}要比{_np_zh(b, rng, count=False)}{rng.choice(THAN_ZH[rel])}",
                                       f"{_np_zh(b, rng, count=False)}的{rng.choice(SIDE_ZH[rel])}是{_np_zh(a, rng, count=False)}"])  # fmt: skip


def _two_colours(lang: str, rng: random.Random) -> str:
    """An object said in one colour, then wholly in another ("a red circle that is completely blue", "红色的圆，要全蓝的")."""
    shape = rng.choice(SHAPES)
    c1, c2 = rng.sample(sorted(COLORS), 2)
    if lang == "en":
        noun = rng.choice(NOUN_EN[shape])
        return rng.choice([f"{_a(c1 + ' ' + noun)} that is completely {c2}", f"{_a(c1 + ' ' + noun)}, all {c2}",
                           f"the {noun} is {c1} and the {noun} is {c2}", f"one {noun}, {c1} all over and {c2} all over"])  # fmt: skip
    noun = rng.choice(NOUN_ZH[shape])
    z1, z2 = COLOR_ZH[c1], COLOR_ZH[c2]
    return rng.choice(
        [f"{z1}的{noun}，要全{z2}的", f"一个{z1}{noun}，整个都是{z2}", f"{noun}是{z1}的，{noun}又是{z2}的"]
    )


CONTRADICTIONS = {"both_ways": _both_ways, "two_places": _two_places, "against_relation": _place_against_relation,
                  "two_colours": _two_colours}  # fmt: skip


def placing_contradiction(lang: str, rng: random.Random) -> str:
    """A prompt in these forms that contradicts itself (to refuse with the reason ``contradiction``)."""
    return rng.choice(list(CONTRADICTIONS.values()))(lang, rng)
