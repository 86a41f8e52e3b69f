"""Reading tasks on Emoji World: what a reading LM learns to say about a layout (docs/emoji-world.md).

Both tasks are conditioned on a layout whose labels carry the art style (``"cat (noto)"``, as the planner and the
reader write them), objects in :func:`~lvg.data.layout.reading_order`:

- **captions**: the complete canonical caption (:func:`~lvg.worlds.emoji.captions.describe_fully`: every emoji with
  size, style and cell in cell order, and the background) in English or Chinese. Its meaning is the scene exactly,
  so a caption is scored by comparing it with the true scene's.
- **visual questions** of :data:`QUESTION_TYPES`, EN and ZH: how many X, what is at a place, where is X, is A
  left of / right of / above / below B. Counts and relations write their working first (the cells they look at), as
  Shapes World's reading LM does, then :data:`~lvg.data.text.WORK_SEP` and the answer.

Item ``i`` of a stream is a pure function of ``(seed, i)``; the held-out items use :data:`HELD_OUT_SEED`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lvg.data.layout import Layout, reading_key, reading_order
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
PLACE_EN = {cell: text.split(" ", 1)[1].removeprefix("the ") for cell, text in CELL_EN.items()}  # "top left", "center"


def place(cell: tuple[int, int], lang: str) -> str:
    """A cell as an answer: "top left" / "左上角"."""
    return PLACE_EN[cell] if lang == "en" else CELL_ZH[cell]


def scene_caption(scene: EmojiScene, table: ConceptTable, lang: str) -> str:
    """The complete canonical caption of ``scene`` (what the reading LM writes for its layout)."""
    return spec_to_text(describe_fully(scene, table), table, lang)


def styled_layout(scene: EmojiScene) -> Layout:
    """The scene's layout as the reading LM sees it: styled labels, objects in reading order."""
    return reading_order(scene.layout(with_style=True))


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
        seen = sorted((p for p in objs if p.emoji == emoji), key=lambda p: reading_key(p.box(scene.canvas)))
        c = table.get(emoji)
        text = f"how many {c.en_plural} are there?" if lang == "en" else f"有几{c.measure}{c.zh}？"
        work = " ; ".join(f"{i} {place(p.cell, lang)}" for i, p in enumerate(seen, 1)) or NOTHING[lang]
        return Question(kind, lang, text, str(len(seen)), work)
    if kind == "what":
        cell = rng.choice([o.cell for o in objs]) if rng.random() < 0.8 else rng.choice(CELLS)
        there = next((o for o in objs if o.cell == cell), None)
        text = f"what is {CELL_EN[cell]}?" if lang == "en" else f"{CELL_ZH[cell]}是什么？"
        return Question(kind, lang, text, _name(there.emoji, table, lang) if there else NOTHING[lang])
    if kind == "where":
        o = rng.choice(objs)
        if not _unique(scene, o):
            return None
        text = f"where is {_the(o.emoji, table)}?" if lang == "en" else f"{_name(o.emoji, table, lang)}在哪里？"
        return Question(kind, lang, text, place(o.cell, lang))
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
        work = f"{place(a.cell, lang)} ; {place(b.cell, lang)} ; {true_relation(a.cell, b.cell, rel, lang, relation_holds, REL)}"
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
