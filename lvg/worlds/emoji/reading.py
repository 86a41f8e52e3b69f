"""Reading tasks on Emoji World: what a reading LM learns to say about a layout (docs/emoji-world.md).

Both tasks are conditioned on a layout whose labels carry the art style (``"cat (noto)"``, as the planner and the
reader write them), objects in lines (:func:`~lvg.data.layout.line_order`, as the reading pipeline gives them):

- **captions**: the complete canonical caption (:func:`~lvg.worlds.emoji.captions.describe_fully`: every emoji with
  size, style and cell in cell order, and the background) in English or Chinese. Its meaning is the scene exactly,
  so a caption is scored by comparing it with the true scene's.
- **visual questions** of :data:`QUESTION_TYPES`, EN and ZH: how many X, what is at a place, where is X, is A
  left of / right of / above / below B. Every question writes its working first, then
  :data:`~lvg.data.text.WORK_SEP` and the answer. The working goes through the scene's objects in the layout's order,
  each as its name and place (as a caption does), and stops at the one asked about (``where``; ``what`` writes places
  first and stops at the asked place), or numbers each one of the asked emoji (``count``). A relation is worked out
  in steps separated by :data:`STEP`: the first emoji's name and the objects up to it, then its column (or row, for
  above / below); the same for the second emoji; then the two numbers and the relation that holds. So each step is a
  local decision (is this the object asked about?) and the answer repeats words just written.

Item ``i`` of a stream is a pure function of ``(seed, i)``; the held-out items use :data:`HELD_OUT_SEED`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from lvg.data.layout import Layout, line_indices, line_order
from lvg.data.text import Question, ReadingSample
from lvg.ranges import bounded, check_ranges
from lvg.worlds.grammar import true_relation

from .captions import CELL_EN, CELL_ZH, REL_EN, REL_ZH, EmojiCaptionError, describe_fully, parse_caption, spec_to_text
from .concepts import ConceptTable
from .referee import scene_satisfies
from .scenes import (
    CELLS,
    RELATIONS,
    EmojiObj,
    EmojiScene,
    EmojiSceneError,
    SceneConfig,
    pool_choices,
    relation_holds,
    sample_scene,
)
from .world import HELD_OUT_SEED

QUESTION_TYPES = ("count", "what", "where", "relation")
YES = {"en": "yes", "zh": "是"}
NO = {"en": "no", "zh": "否"}
NOTHING = {"en": "nothing", "zh": "没有东西"}
REL = {"en": REL_EN, "zh": REL_ZH}
STEP = {"en": " | ", "zh": "|"}  # between a relation's steps: the scan to A, the scan to B, the comparison
# How a question's working is written, per language. A byte-level BPE gives a word its leading space (" camel") only
# after another word, so the working starts with a head word: every name is then the same tokens wherever it is
# written. Chinese is written without spaces, as its captions are: one token per character.
INVENTORY_HEAD = {"en": "objects:", "zh": "物体："}
ITEM_SEP = {"en": ", ", "zh": "，"}
WORD_SEP = {"en": " ", "zh": ""}
NAME_SEP = {"en": ":", "zh": "："}  # a relation's scan: the emoji it looks for, this, then the objects up to it
LINE = ({"en": "row {}", "zh": "第{}行"}, {"en": "column {}", "zh": "第{}列"})  # a cell's row (axis 0) or column
PLACE_EN = {cell: text.split(" ", 1)[1].removeprefix("the ") for cell, text in CELL_EN.items()}  # "top left", "center"


def place(cell: tuple[int, int], lang: str) -> str:
    """A cell as an answer: "top left" / "左上角"."""
    return PLACE_EN[cell] if lang == "en" else CELL_ZH[cell]


def scene_caption(scene: EmojiScene, table: ConceptTable, lang: str) -> str:
    """The complete canonical caption of ``scene`` (what the reading LM writes for its layout)."""
    return spec_to_text(describe_fully(scene, table), table, lang)


def styled_layout(scene: EmojiScene) -> Layout:
    """The scene's layout as the reading LM sees it: styled labels, objects in lines (:func:`line_order`, the order
    :class:`~lvg.pipelines.reading.ImageReader` gives it)."""
    return line_order(scene.layout(with_style=True))


def _items(items: list[tuple[str, ...]], lang: str) -> str:
    """Items of a working: each one's words joined by WORD_SEP, the items by ITEM_SEP."""
    return ITEM_SEP[lang].join(WORD_SEP[lang].join(i) for i in items)


def _scan(items: list[tuple[str, ...]], lang: str) -> str:
    """Working that goes through a scene's objects in order: the head word, then the items (see INVENTORY_HEAD)."""
    return INVENTORY_HEAD[lang] + WORD_SEP[lang] + _items(items, lang)


def _scan_to(scene: EmojiScene, o: EmojiObj, axis: int, table: ConceptTable, lang: str) -> str:
    """A relation's scan for ``o``: its name, then the objects in order up to it, then its row or column (``axis``
    0 or 1, numbered from 1): ``"cat: scorpion top right, cat top left, column 1"``."""
    items = [*_named_up_to(scene, o, table, lang), (LINE[axis][lang].format(o.cell[axis] + 1),)]
    return _name(o.emoji, table, lang) + NAME_SEP[lang] + WORD_SEP[lang] + _items(items, lang)


def _named_up_to(scene: EmojiScene, o: EmojiObj, table: ConceptTable, lang: str) -> list[tuple[str, str]]:
    """The "where" scan for ``o``: the scene's objects in order up to and including it, each as name and place."""
    return [_named(p, table, lang) for p in _until(scene, lambda p: p is o)]


def _until(scene: EmojiScene, found: Callable[[EmojiObj], bool]) -> list[EmojiObj]:
    """The scene's objects in order, up to and including the first that ``found`` accepts (all when none does)."""
    out = []
    for o in _in_lines(scene):
        out.append(o)
        if found(o):
            break
    return out


def _named(o: EmojiObj, table: ConceptTable, lang: str) -> tuple[str, str]:
    return _name(o.emoji, table, lang), place(o.cell, lang)


def _in_lines(scene: EmojiScene) -> list[EmojiObj]:
    """The scene's objects in the order of :func:`styled_layout`."""
    return [scene.objects[i] for i in line_indices([o.box(scene.canvas) for o in scene.objects])]


def _name(emoji: str, table: ConceptTable, lang: str) -> str:
    c = table.get(emoji)
    return c.en if lang == "en" else c.zh


def _unique(scene: EmojiScene, o: EmojiObj) -> bool:
    return sum(p.emoji == o.emoji for p in scene.objects) == 1


def _the(emoji: str, table: ConceptTable) -> str:
    return f"the {table.get(emoji).en}"


def make_question(scene: EmojiScene, kind: str, lang: str, rng: random.Random, table: ConceptTable,
                  training: bool = False, names: list[str] | None = None) -> Question | None:  # fmt: skip
    """A question of ``kind`` about ``scene`` in ``lang``, or None when the scene cannot carry it (``where`` and
    ``relation`` need emoji that occur once). ``training`` balances relation answers (yes as often as no).
    ``names``: the emoji a count may ask about besides the scene's own (asked emoji that are absent answer 0)."""
    objs = scene.objects
    if kind == "count":
        if names and rng.random() < 0.3:
            emoji = rng.choice(names)
        else:
            emoji = rng.choice(objs).emoji
        c = table.get(emoji)
        text = f"how many {c.en_plural} are there?" if lang == "en" else f"有几{c.measure}{c.zh}？"
        items, seen = [], 0
        for p in _in_lines(scene):  # every object; each one of the asked emoji numbered as it is met
            hit = p.emoji == emoji
            seen += hit
            items.append(_named(p, table, lang) + ((str(seen),) if hit else ()))
        return Question(kind, lang, text, str(seen), _scan(items, lang))
    if kind == "what":
        cell = rng.choice([o.cell for o in objs]) if rng.random() < 0.8 else rng.choice(CELLS)
        there = next((o for o in objs if o.cell == cell), None)
        text = f"what is {CELL_EN[cell]}?" if lang == "en" else f"{CELL_ZH[cell]}是什么？"
        answer = _name(there.emoji, table, lang) if there else NOTHING[lang]
        items = [(place(p.cell, lang), _name(p.emoji, table, lang)) for p in _until(scene, lambda p: p.cell == cell)]
        return Question(kind, lang, text, answer, _scan(items, lang))
    if kind == "where":
        o = rng.choice(objs)
        if not _unique(scene, o):
            return None
        text = f"where is {_the(o.emoji, table)}?" if lang == "en" else f"{_name(o.emoji, table, lang)}在哪里？"
        return Question(kind, lang, text, place(o.cell, lang), _scan(_named_up_to(scene, o, table, lang), lang))
    if kind == "relation":
        if len(objs) < 2:
            return None
        a, b = rng.sample(objs, 2)
        if not (_unique(scene, a) and _unique(scene, b)) or a.emoji == b.emoji:
            return None
        rels = RELATIONS
        if training:  # the answer first, then a relation that gives it (two distinct cells always have both)
            want = rng.random() < 0.5
            rels = tuple(r for r in RELATIONS if relation_holds(r, a.cell, b.cell) == want)
        rel = rng.choice(rels)
        if lang == "en":
            text = f"is {_the(a.emoji, table)} {REL_EN[rel]} {_the(b.emoji, table)}?"
        else:
            text = f"{_name(a.emoji, table, lang)}在{_name(b.emoji, table, lang)}的{REL_ZH[rel]}吗？"
        ans = (YES if relation_holds(rel, a.cell, b.cell) else NO)[lang]
        rel_true = true_relation(a.cell, b.cell, rel, lang, relation_holds, REL)
        axis = 1 if rel in ("left", "right") else 0  # the relation compares columns, or rows
        scans = [_scan_to(scene, o, axis, table, lang) for o in (a, b)]
        last = ITEM_SEP[lang].join([str(a.cell[axis] + 1), str(b.cell[axis] + 1), rel_true])
        work = INVENTORY_HEAD[lang] + WORD_SEP[lang] + STEP[lang].join([*scans, last])
        return Question(kind, lang, text, ans, work)
    raise ValueError(f"unknown question type {kind!r}; expected one of {QUESTION_TYPES}")


def question_about(kind: str, lang: str, rng: random.Random, table: ConceptTable, scenes: SceneConfig,
                   training: bool = False) -> tuple[EmojiScene, Question]:  # fmt: skip
    """A scene of ``scenes``' pool and a question of ``kind`` about it."""
    names = sorted({e for e, _ in pool_choices(table, scenes.pool)})
    while True:
        scene = sample_scene(rng, table, scenes)
        q = make_question(scene, kind, lang, rng, table, training, names)
        if q is not None:
            return scene, q


# ----------------------------------------------------------------------------- the training stream


@dataclass
class ReadingDataConfig:
    """The Emoji World reading stream: captions and questions (types drawn uniformly) in EN and ZH."""

    seed: int = 0
    caption_prob: float = bounded(0.0, 1.0, default=0.4)  # the rest are questions
    pool: str = "train"  # the emoji and styles its scenes draw (SceneConfig.pool)

    def __post_init__(self) -> None:
        check_ranges(self)


def make_reading_sample(index: int, table: ConceptTable, scenes: SceneConfig, cfg: ReadingDataConfig
                        ) -> ReadingSample:  # fmt: skip
    """Item ``index`` of the reading stream of ``cfg.seed``."""
    rng = random.Random(f"lvg-emoji-read:{cfg.seed}:{index}")
    lang = rng.choice(("en", "zh"))
    if rng.random() < cfg.caption_prob:
        scene = sample_scene(rng, table, scenes)
        return ReadingSample(index, styled_layout(scene), lang, None, scene_caption(scene, table, lang), "caption")
    kind = rng.choice(QUESTION_TYPES)
    scene, q = question_about(kind, lang, rng, table, scenes, training=True)
    return ReadingSample(index, styled_layout(scene), lang, q.text, q.target, q.kind)


def held_out_questions(num_per_type: int, lang: str, table: ConceptTable, scenes: SceneConfig,
                       seed: int = HELD_OUT_SEED) -> list[tuple[EmojiScene, Question]]:  # fmt: skip
    """``num_per_type`` held-out (scene, question) pairs of every type, in :data:`QUESTION_TYPES` order."""
    out = []
    for kind in QUESTION_TYPES:
        rng = random.Random(f"lvg-emoji-read-eval:{seed}:{kind}:{lang}")
        out += [question_about(kind, lang, rng, table, scenes) for _ in range(num_per_type)]
    return out


def caption_scene(caption: str, table: ConceptTable, canvas: int) -> EmojiScene | None:
    """The scene a complete caption states (every emoji with style, size and cell, and the background), or None
    when the caption does not parse or leaves something out."""
    try:
        spec = parse_caption(caption, table)
    except EmojiCaptionError:
        return None
    if "bg" not in spec or "relation" in spec:
        return None
    objs = []
    for g in spec["groups"]:
        if g["count"] != 1 or not all(k in g for k in ("style", "size", "cell")):
            return None
        objs.append(EmojiObj(g["emoji"], g["style"], g["size"], (int(g["cell"][0]), int(g["cell"][1]))))
    try:
        return EmojiScene(tuple(objs), spec["bg"], canvas)
    except EmojiSceneError:
        return None


def caption_entails(caption: str | None, prompt: str, table: ConceptTable, canvas: int) -> bool | None:
    """Does a complete caption (an image's own, read back) satisfy ``prompt``? None when the prompt does not parse;
    False when the caption is None, does not parse or is incomplete."""
    try:
        asked = parse_caption(prompt, table)
    except EmojiCaptionError:
        return None
    told = caption_scene(caption, table, canvas) if caption is not None else None
    return told is not None and scene_satisfies(told, asked)
