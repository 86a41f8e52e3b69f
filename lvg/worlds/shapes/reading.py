"""Reading tasks on Shapes World: what the reading LM learns to say about a layout.

Two tasks, both conditioned on a layout the reader saw (objects in :func:`reading_order`):

- **captions**: the complete canonical caption (every object with size, colour, shape and cell, plus
  the background) in English or Chinese, objects in the layout's order. Its meaning is the layout's
  scene exactly, so a caption can be scored by parsing it and comparing with the true scene.
- **visual questions** of :data:`QUESTION_TYPES` (EN/ZH): how many, what colour / shape / size, where,
  is A left of / above B, the background, is there a Y. A question this set does not cover, or whose
  object is missing or ambiguous, is answered :data:`CANNOT`.

Item ``i`` of a stream is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cache

from lvg.data.layout import Layout, LayoutObject, reading_key, reading_order
from lvg.data.text import CANNOT, Question, ReadingSample
from lvg.ranges import bounded, check_ranges
from lvg.worlds.grammar import true_relation
from lvg.worlds.shapes.scene_layout import layout_from_scene, layout_to_scene, object_box

from .captions import REL_EN, REL_ZH, spec_to_text
from .parse import CaptionParseError, parse_caption
from .spec import Seen, Spec, SpecError, normalize_spec, satisfies
from .world import (
    BG_ZH,
    CANVAS,
    CELL_EN,
    CELL_ZH,
    COLOR_ZH,
    COLORS,
    GRID,
    RELATIONS,
    SHAPE_PLURAL,
    SHAPE_ZH,
    SHAPES,
    SIZE_ZH,
    SIZES,
    Obj,
    Scene,
    relation_holds,
    sample_scene,
)

QUESTION_TYPES = (
    "count", "color", "shape", "size", "where", "relation", "background", "exists", "unanswerable", "total",
)  # fmt: skip
# Types added after the first shipped reading LM: their training weight is 0 unless a config asks for them, so the
# default stream stays the one that model learned ("total": how many objects in all).
_DEFAULT_WEIGHT = {"total": 0.0}
TOTAL_ASK = {  # "how many objects are there?" and its wordings; the held-out ones only evaluate
    "en": ("how many objects are there?", "how many shapes are there?", "how many things are in the picture?",
           "how many objects are in the image?", "how many shapes do you see?", "how many objects in total?",
           "how many objects do you see?", "how many shapes are in the picture?", "how many things are there?",
           "count the objects", "how many figures are there?", "what is the total number of shapes?",
           "how many objects can you count?", "number of objects?", "how many shapes in all?",
           "how many things do you see?", "how many objects are shown?", "how many are there in total?"),
    "zh": ("有几个物体？", "图里有几个图形？", "一共有几个形状？", "画面里有多少个物体？", "有多少个图形？", "总共有几个东西？",
           "图中有几个东西？", "一共有多少个物体？", "数一下有几个图形", "有几个形状？", "画面中共有几个图形？",
           "图片里有多少个东西？", "总共几个物体？", "一共几个？", "这里有几个图形？"),
}  # fmt: skip
TOTAL_HELD_OUT = {
    "en": ("how many items can you see?", "what is the number of objects?", "count the shapes"),
    "zh": ("图中共有多少个东西？", "数一数有几个图形？", "这里一共几个物体？"),
}
# Off-grid layouts (what the reading LM must also read): each box anywhere in its object's cell (its centre at least
# 1 px inside), with sides drawn from its size's band; 13 px, halfway between 10 and 16, is never drawn.
OFF_GRID_SIDES = {"small": (6, 12), "large": (14, 21)}
YES = {"en": "yes", "zh": "是"}
NO = {"en": "no", "zh": "否"}
SIZE_ANSWER_ZH = {"small": "小", "large": "大"}

# Questions no layout answers. The first ones train the model; the held-out ones only evaluate it.
OFF_TOPIC = {
    "en": ["what is the weather like?", "who drew this picture?", "how old is the {ref}?", "what is the {ref} thinking?",
           "why is the {ref} there?", "what time is it?", "is the {ref} happy?", "what is the name of the {ref}?",
           "what does the {ref} taste like?", "how heavy is the {ref}?", "tell me a joke", "what is 2 plus 2?"],
    "zh": ["今天天气怎么样？", "这张图是谁画的？", "{ref}几岁了？", "{ref}在想什么？", "{ref}为什么在那里？", "现在几点？",
           "{ref}开心吗？", "{ref}叫什么名字？", "{ref}是什么味道？", "{ref}有多重？", "讲个笑话", "二加二等于几？"],
}  # fmt: skip
# The training stream also composes off-topic questions from these words (none of them names an attribute,
# a shape, a place in the picture or a relation, and none occurs in OFF_TOPIC_HELD_OUT), so the LM learns
# that words it cannot ground mean "cannot answer", not which twelve sentences do.
_OFF_EN = {
    "is the {ref} {w}?": ["happy", "sad", "hungry", "angry", "asleep", "awake", "hot", "cold", "wet", "dry", "soft",
                          "hard", "sweet", "sour", "heavy", "expensive", "cheap", "broken", "new", "real", "famous",
                          "friendly", "dangerous", "safe", "tired", "lonely", "clean", "dirty", "noisy", "quiet",
                          "shiny", "smooth", "rough", "sick", "lucky", "hollow", "magnetic", "edible", "married",
                          "ready", "made of wood", "a robot", "a toy", "for sale"],
    "how {w} is the {ref}?": ["old", "heavy", "tall", "expensive", "loud", "far away", "hot", "cold", "deep",
                              "strong", "smart", "warm", "dangerous", "happy", "long", "thick"],
    "what is the {ref} {w}?": ["doing", "eating", "saying", "reading", "holding", "watching", "thinking about",
                               "looking at", "made of", "called", "worth", "for", "waiting for", "afraid of"],
    "who {w} the {ref}?": ["made", "painted", "moved", "owns", "likes", "bought", "built", "named", "lost", "found"],
    "can the {ref} {w}?": ["fly", "swim", "sing", "talk", "dance", "jump", "see", "speak", "read", "cook", "climb"],
    "what does the {ref} {w}?": ["taste like", "smell like", "sound like", "eat", "want", "say", "mean", "feel like"],
    "why is the {ref} {w}?": ["there", "here", "sad", "happy", "alone", "so quiet", "waiting"],
    "{w}": ["what is the weather like?", "who drew this picture?", "what time is it?", "tell me a joke",
            "what is 2 plus 2?", "how are you?", "are you a robot?", "what language is this?", "which team won?",
            "what day is it today?", "what is the capital of france?", "tell me a story", "who are you?",
            "what year is it?", "where do you live?", "what is your name?", "is it raining?", "what is love?",
            "how much does this cost?", "who is the president?"],
}  # fmt: skip
_OFF_ZH = {
    "{ref}{w}吗？": ["开心", "难过", "饿", "生气", "累", "热", "冷", "湿", "软", "硬", "甜", "重", "贵", "便宜", "新",
                   "旧", "危险", "安全", "干净", "脏", "吵", "安静", "幸运", "孤单", "聪明", "害怕", "困"],
    "{ref}是{w}的吗？": ["真", "假", "木头做", "金属做", "纸做", "甜", "软", "热", "新买", "别人"],
    "{ref}有多{w}？": ["重", "老", "高", "贵", "远", "深", "热", "冷", "长", "聪明", "厚"],
    "{ref}会{w}吗？": ["飞", "游泳", "唱歌", "说话", "跳舞", "跳", "走路", "看书", "做饭", "爬树"],
    "{ref}在{w}什么？": ["想", "吃", "看", "说", "做", "等", "怕", "读"],
    "谁{w}了{ref}？": ["画", "做", "移动", "买", "拿走", "弄丢", "找到"],
    "{ref}{w}？": ["为什么在那里", "叫什么名字", "是什么味道", "是用什么做的", "值多少钱", "喜欢什么", "为什么不说话",
                   "几岁了", "在想什么", "开心吗"],
    "{w}": ["今天天气怎么样？", "这张图是谁画的？", "现在几点？", "讲个笑话", "二加二等于几？", "你是谁？",
            "今天星期几？", "法国的首都是哪里？", "你好吗？", "这是哪一年？", "在下雨吗？", "你住在哪里？", "谁赢了？",
            "这个多少钱？", "讲个故事"],
}  # fmt: skip


@cache
def off_topic_pool(lang: str) -> tuple[str, ...]:
    """Every off-topic question template the training stream draws from (``{ref}``: a referring phrase); built
    once per language."""
    return tuple(t.replace("{w}", w) for t, words in (_OFF_EN if lang == "en" else _OFF_ZH).items() for w in words)


OFF_TOPIC_HELD_OUT = {
    "en": ["where was this photo taken?", "is the {ref} alive?", "what music is playing?", "how fast is the {ref}?"],
    "zh": ["这张照片是在哪里拍的？", "{ref}是活的吗？", "在放什么音乐？", "{ref}跑得多快？"],
}


def caption_text(layout: Layout, lang: str) -> str:
    """The complete canonical caption of a Shapes World layout, objects in the layout's order."""
    scene = layout_to_scene(layout, tolerance=1.0)
    return scene_caption(scene.objects, scene.bg, lang)


def scene_caption(objects: tuple[Obj, ...] | list[Obj], bg: str, lang: str) -> str:
    """The complete canonical caption of ``objects`` (in that order) on ``bg``."""
    groups = [{"shape": o.shape, "color": o.color, "size": o.size, "count": 1, "cell": list(o.cell)}
              for o in objects]  # fmt: skip
    return spec_to_text(normalize_spec({"groups": groups, "bg": bg}), lang)


Box = tuple[float, float, float, float]


def off_grid_boxes(scene: Scene, rng: random.Random) -> dict[Obj, Box]:
    """A box for each object of ``scene`` off the grid (see :data:`OFF_GRID_SIDES`): whole pixels, inside the
    canvas, its centre in the object's cell, no two overlapping (after 20 tries, the objects' grid boxes)."""
    step = CANVAS / GRID
    for _ in range(20):
        boxes: dict[Obj, Box] = {}
        for o in scene.objects:
            lo, hi = OFF_GRID_SIDES[o.size]
            w, h = rng.randint(lo, hi), rng.randint(lo, hi)
            r, c = o.cell
            x0 = rng.randint(max(0, math.ceil(c * step + 1 - w / 2)), min(CANVAS - w, int((c + 1) * step - 1 - w / 2)))
            y0 = rng.randint(max(0, math.ceil(r * step + 1 - h / 2)), min(CANVAS - h, int((r + 1) * step - 1 - h / 2)))
            box = (x0, y0, x0 + w, y0 + h)
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes.values()):
                break
            boxes[o] = box
        if len(boxes) == len(scene.objects):
            return boxes
    return {o: object_box(o) for o in scene.objects}


def off_grid_layout(scene: Scene, boxes: dict[Obj, Box]) -> tuple[Layout, tuple[Obj, ...]]:
    """The layout of ``scene`` with ``boxes``, in reading order, and its objects in that order."""
    objs = tuple(sorted(scene.objects, key=lambda o: reading_key(boxes[o])))
    lay = Layout(scene.bg, tuple(LayoutObject(f"{o.color} {o.shape}", boxes[o]) for o in objs), CANVAS)
    return lay, objs


def caption_objects(spec: Spec) -> tuple[list[Seen], str] | None:
    """The objects and background a *complete* caption spec states, or None if it is incomplete.

    Complete (as :func:`lvg.worlds.shapes.captions.describe_fully` writes it): a background, no relation, and every
    group a single object with shape, colour, size and cell.
    """
    if "bg" not in spec or "relation" in spec:
        return None
    objs = []
    for g in spec["groups"]:
        if g.get("count", 1) != 1 or not all(k in g for k in ("color", "size", "cell")):
            return None
        objs.append(Seen(g["shape"], g["color"], g["size"], (int(g["cell"][0]), int(g["cell"][1]))))
    return objs, spec["bg"]


def caption_entails(caption: str | None, prompt: str) -> bool | None:
    """Whether the scene a complete caption describes satisfies ``prompt`` (the closed loop's check: a generated
    image's own caption against the prompt it was made from). None when the prompt does not parse; False when
    the caption is None (nothing was read), does not parse or is incomplete."""
    try:
        asked = parse_caption(prompt)
    except (CaptionParseError, SpecError):
        return None
    try:
        told = caption_objects(parse_caption(caption)) if caption is not None else None
    except (CaptionParseError, SpecError):
        return False
    return told is not None and satisfies(told[0], told[1], asked)


# ----------------------------------------------------------------------------- questions


def _ref(d: dict, lang: str) -> str:
    """A referring phrase: ``d`` holds some of shape / color / size (no shape: "object")."""
    if lang == "en":
        words = [d[k] for k in ("size", "color") if k in d] + [d.get("shape", "object")]
        return " ".join(words)
    text = SIZE_ZH.get(d.get("size"), "") + COLOR_ZH.get(d.get("color"), "")
    return text + SHAPE_ZH[d["shape"]] if "shape" in d else text + "图形"


def _plural(d: dict) -> str:
    words = [d[k] for k in ("size", "color") if k in d]
    return " ".join([*words, SHAPE_PLURAL[d["shape"]] if "shape" in d else "shapes"])


def _fits(o: Obj, d: dict) -> bool:
    return all(getattr(o, k) == v for k, v in d.items())


def _descriptions(o: Obj, without: str | None = None) -> list[dict]:
    """Every referring description of ``o`` (non-empty subsets of its attributes, leaving out ``without``)."""
    keys = [k for k in ("shape", "color", "size") if k != without]
    out = []
    for mask in range(1, 2 ** len(keys)):
        d = {k: getattr(o, k) for j, k in enumerate(keys) if mask >> j & 1}
        if "shape" in d or "color" in d:  # "the small object" alone is too vague to be natural
            out.append(d)
    return out


def _unique_ref(scene: Scene, o: Obj, rng: random.Random, without: str | None = None) -> dict | None:
    ok = [d for d in _descriptions(o, without) if sum(_fits(p, d) for p in scene.objects) == 1]
    return rng.choice(ok) if ok else None


def _random_desc(rng: random.Random, keys: tuple[str, ...] = ("shape", "color", "size")) -> dict:
    d = {}
    while not ("shape" in d or "color" in d):
        d = {k: rng.choice(list({"shape": SHAPES, "color": COLORS, "size": SIZES}[k])) for k in keys
             if rng.random() < 0.6}  # fmt: skip
    return d


def _bad_ref(scene: Scene, rng: random.Random, without: str) -> dict:
    """A description (without ``without``) that fits no object or several."""
    keys = tuple(k for k in ("shape", "color", "size") if k != without)
    while True:
        d = _random_desc(rng, keys)
        if sum(_fits(p, d) for p in scene.objects) != 1:
            return d


def _say(value: str, kind: str, lang: str) -> str:
    if lang == "en":
        return value
    return {"color": COLOR_ZH, "shape": SHAPE_ZH, "size": SIZE_ANSWER_ZH, "bg": BG_ZH}[kind][value]


def _true_relation(a: Obj, b: Obj, asked: str, lang: str) -> str:
    """How ``a`` stands to ``b`` along the axis ``asked`` is about, in the question's own words."""
    return true_relation(a.cell, b.cell, asked, lang, relation_holds, {"en": REL_EN, "zh": REL_ZH})


def _cell(o: Obj, lang: str) -> str:
    """Where ``o`` is, as a "where" question's answer says it ("top left", "center", "左上角", ...)."""
    return CELL_EN[o.cell].split(" ", 1)[1] if lang == "en" else CELL_ZH[o.cell]


_ASK = {  # attribute questions: (EN, ZH) templates
    "color": ("what color is the {ref}?", "{ref}是什么颜色？"),
    "shape": ("what shape is the {ref}?", "{ref}是什么形状？"),
    "size": ("what size is the {ref}?", "{ref}是大还是小？"),
    "where": ("where is the {ref}?", "{ref}在哪里？"),
}


def make_question(scene: Scene, kind: str, lang: str, rng: random.Random, held_out: bool = False,
                  training: bool = False, boxes: dict[Obj, Box] | None = None) -> Question | None:  # fmt: skip
    """A question of ``kind`` about ``scene`` in ``lang`` with its true answer, or None where the scene
    cannot carry that kind (``held_out`` draws the off-topic questions kept out of training).

    ``training`` draws what the training stream needs, not the natural distribution: yes and no equally
    often for relations (naturally about one in three is yes), and off-topic questions from the whole
    composed pool (:func:`off_topic_pool`) rather than the fixed list. ``boxes``: the objects' boxes when they are
    off the grid (they set the reading order a count's working lists)."""
    objs = scene.objects
    box = boxes.__getitem__ if boxes else object_box
    L = 0 if lang == "en" else 1
    if kind in _ASK:
        o = rng.choice(objs)
        attr = None if kind == "where" else kind
        d = _unique_ref(scene, o, rng, attr)
        if d is None:  # no description without that attribute singles it out
            return None
        ans = _cell(o, lang) if kind == "where" else _say(getattr(o, kind), kind, lang)
        return Question(kind, lang, _ASK[kind][L].format(ref=_ref(d, lang)), ans)
    if kind == "count":
        d = _random_desc(rng) if rng.random() < 0.5 else _descriptions(rng.choice(objs))[0]
        seen = sorted((p for p in objs if _fits(p, d)), key=lambda p: reading_key(box(p)))  # reading order
        text = f"how many {_plural(d)} are there?" if lang == "en" else f"有几个{_ref(d, lang)}？"
        work = " ; ".join(f"{i} {_cell(p, lang)}" for i, p in enumerate(seen, 1)) or ("none" if lang == "en" else "无")
        return Question(kind, lang, text, str(len(seen)), work)
    if kind == "relation":
        if len(objs) < 2:
            return None
        a, b = rng.sample(objs, 2)
        da, db = _unique_ref(scene, a, rng), _unique_ref(scene, b, rng)
        if da is None or db is None:
            return None
        rels = RELATIONS
        if training:  # the answer first, then a relation that gives it (two objects in distinct cells always
            want = rng.random() < 0.5  # have a true relation and a false one)
            rels = tuple(r for r in RELATIONS if relation_holds(r, a.cell, b.cell) == want)
        rel = rng.choice(rels)
        ra, rb = _ref(da, lang), _ref(db, lang)
        text = f"is the {ra} {REL_EN[rel]} the {rb}?" if lang == "en" else f"{ra}在{rb}的{REL_ZH[rel]}吗？"
        ans = (YES if relation_holds(rel, a.cell, b.cell) else NO)[lang]
        return Question(
            kind, lang, text, ans, f"{_cell(a, lang)} ; {_cell(b, lang)} ; {_true_relation(a, b, rel, lang)}"
        )
    if kind == "background":
        text = "what color is the background?" if lang == "en" else "背景是什么颜色？"
        return Question(kind, lang, text, _say(scene.bg, "bg", lang))
    if kind == "exists":
        d = _random_desc(rng) if rng.random() < 0.5 else _descriptions(rng.choice(objs))[-1]
        there = any(_fits(p, d) for p in objs)
        text = f"is there a {_ref(d, lang)}?" if lang == "en" else f"有{_ref(d, lang)}吗？"
        return Question(kind, lang, text, (YES if there else NO)[lang])
    if kind == "unanswerable":
        if rng.random() < 0.5:  # an attribute question about a missing or ambiguous object
            ask = rng.choice(list(_ASK))
            d = _bad_ref(scene, rng, None if ask == "where" else ask)
            return Question(kind, lang, _ASK[ask][L].format(ref=_ref(d, lang)), CANNOT[lang])
        pool = OFF_TOPIC_HELD_OUT[lang] if held_out else off_topic_pool(lang) if training else OFF_TOPIC[lang]
        text = rng.choice(pool).format(ref=_ref(_descriptions(rng.choice(objs))[0], lang))
        return Question(kind, lang, text, CANNOT[lang])
    if kind == "total":
        pool = TOTAL_ASK[lang] + (TOTAL_HELD_OUT[lang] if held_out else ())
        seen = sorted(objs, key=lambda p: reading_key(box(p)))
        work = " ; ".join(f"{i} {_cell(p, lang)}" for i, p in enumerate(seen, 1))
        return Question(kind, lang, rng.choice(pool), str(len(seen)), work)
    raise ValueError(f"unknown question type {kind!r}; expected one of {QUESTION_TYPES}")


def question_about(kind: str, lang: str, rng: random.Random, held_out: bool = False, training: bool = False
                   ) -> tuple[Scene, Question]:  # fmt: skip
    """A random scene and a question of ``kind`` about it (scenes that cannot carry ``kind`` are redrawn)."""
    while True:
        scene = sample_scene(rng)
        q = make_question(scene, kind, lang, rng, held_out, training)
        if q is not None:
            return scene, q


def off_grid_question(kind: str, lang: str, rng: random.Random, held_out: bool = False, training: bool = False
                      ) -> tuple[Layout, Question]:  # fmt: skip
    """:func:`question_about` on an off-grid layout (:func:`off_grid_boxes`), returned in reading order."""
    while True:
        scene = sample_scene(rng)
        boxes = off_grid_boxes(scene, rng)
        q = make_question(scene, kind, lang, rng, held_out, training, boxes)
        if q is not None:
            return off_grid_layout(scene, boxes)[0], q


def typed_question(text: str, rng: random.Random) -> str:
    """The way people type a question: a capital first letter, 'colour', no question mark, extra spaces."""
    if rng.random() < 0.3:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.2:
        text = text.replace("color", "colour")
    if rng.random() < 0.2:
        text = text.rstrip("?？")
    if rng.random() < 0.1:
        text = "  " + text.replace(" ", "  ", 1)
    return text


# ----------------------------------------------------------------------------- the training stream


@dataclass
class ReadingDataConfig:
    """What the reading LM's training stream draws."""

    seed: int = 0
    caption_prob: float = bounded(0.0, 1.0, default=0.4)  # the rest are questions
    typed_prob: float = bounded(0.0, 1.0, default=0.3)
    # relative frequency of each question type (missing types: 1, but 0 for "total"); the hard ones deserve more
    question_weights: dict[str, float] = field(default_factory=dict)
    # share of samples whose layout is off the grid (:func:`off_grid_boxes`); 0 keeps the first stream exactly
    off_grid_prob: float = bounded(0.0, 1.0, default=0.0)

    def __post_init__(self) -> None:
        check_ranges(self)
        unknown = sorted(set(self.question_weights) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"question_weights: unknown question type(s) {unknown}; known: {list(QUESTION_TYPES)}")
        if any(w < 0 for w in self.question_weights.values()) or sum(self.weights()) <= 0:
            raise ValueError("question_weights must be >= 0, and at least one type must be drawn")

    def weights(self) -> list[float]:
        """The weight of each of :data:`QUESTION_TYPES`, in that order."""
        return [float(self.question_weights.get(k, _DEFAULT_WEIGHT.get(k, 1.0))) for k in QUESTION_TYPES]


def make_reading_sample(index: int, cfg: ReadingDataConfig | None = None) -> ReadingSample:
    """Deterministically build item ``index`` of the reading stream configured by ``cfg``."""
    cfg = cfg or ReadingDataConfig()
    rng = random.Random(f"lvg-read:{cfg.seed}:{index}")
    lang = rng.choice(("en", "zh"))
    off_grid = cfg.off_grid_prob > 0 and rng.random() < cfg.off_grid_prob  # no draw at 0: the first stream stays
    if rng.random() < cfg.caption_prob:
        scene = sample_scene(rng)
        if off_grid:
            layout, objs = off_grid_layout(scene, off_grid_boxes(scene, rng))
            return ReadingSample(index, layout, lang, None, scene_caption(objs, scene.bg, lang), "caption")
        layout = reading_order(layout_from_scene(scene))
        return ReadingSample(index, layout, lang, None, caption_text(layout, lang), "caption")
    kind = rng.choices(QUESTION_TYPES, cfg.weights())[0]
    if off_grid:
        layout, q = off_grid_question(kind, lang, rng, training=True)
    else:
        scene, q = question_about(kind, lang, rng, training=True)
        layout = reading_order(layout_from_scene(scene))
    text = typed_question(q.text, rng) if rng.random() < cfg.typed_prob else q.text
    return ReadingSample(index, layout, lang, text, q.target, q.kind)
