"""The captioner: scene -> spec (what a caption states) -> canonical English / Chinese text.

``describe`` decides what to say about a scene (omitting size, colour, position/relation and
background at random, grouping identical objects); ``spec_to_text`` writes a spec in the
contract's canonical grammar, or, given an ``rng``, in a randomly paraphrased form for training.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from lvg.worlds.grammar import place_and_count, stated_mask

from .spec import Spec, normalize_spec
from .world import (
    BG_ZH,
    CELL_EN,
    CELL_ZH,
    COLOR_ZH,
    SHAPE_PLURAL,
    SHAPE_ZH,
    SIZE_ZH,
    Scene,
    relation_holds,
    sample_scene,
)

NUM_EN = {2: "two", 3: "three", 4: "four"}
NUM_ZH = {1: "一个", 2: "两个", 3: "三个", 4: "四个"}
REL_EN = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
REL_ZH = {"left": "左边", "right": "右边", "above": "上方", "below": "下方"}

# Paraphrase alternatives (training only; never part of the canonical grammar).
_PARA_REL_EN = {
    "left": ["to the left of", "left of", "on the left of"],
    "right": ["to the right of", "right of", "on the right of"],
    "above": ["above", "over", "on top of"],
    "below": ["below", "under", "beneath"],
}
_PARA_REL_ZH = {
    "left": ["左边", "左侧"],
    "right": ["右边", "右侧"],
    "above": ["上方", "上面"],
    "below": ["下方", "下面"],
}
_PARA_PREFIX_EN = ["", "", "an image of ", "a picture of ", "a drawing of ", "a render of "]
_PARA_PREFIX_ZH = ["", "", "画面中有", "图中有", "一张图片：", "图片里是"]
_PARA_BG_EN = [" on a {} background", " against a {} background", " with a {} background", ", {} background"]
_PARA_BG_ZH = ["，{}背景", "，背景是{}", "，背景为{}"]
_PARA_CELL_EN = {
    (0, 0): ["in the top left", "in the top left corner", "at the top left", "in the upper left"],
    (0, 1): ["at the top", "at the top center", "in the top middle"],
    (0, 2): ["in the top right", "in the top right corner", "at the top right", "in the upper right"],
    (1, 0): ["on the left", "on the left side", "at the left"],
    (1, 1): ["in the center", "in the middle", "in the centre"],
    (1, 2): ["on the right", "on the right side", "at the right"],
    (2, 0): ["in the bottom left", "in the bottom left corner", "at the bottom left", "in the lower left"],
    (2, 1): ["at the bottom", "at the bottom center", "in the bottom middle"],
    (2, 2): ["in the bottom right", "in the bottom right corner", "at the bottom right", "in the lower right"],
}


@dataclass
class CaptionConfig:
    """How often the captioner states each attribute (probabilities per caption)."""

    color_all: float = 0.75  # every object's colour stated
    color_none: float = 0.10  # no colour stated (otherwise: each object's with probability 1/2)
    size_all: float = 0.35
    size_none: float = 0.45
    position_single: float = 0.5  # one-object scene: state its cell
    relation_pair: float = 0.45  # two-object scene: state a relation ...
    position_multi: float = 0.15  # ... or else the cells of every object
    background: float = 0.5


def describe(scene: Scene, rng: random.Random, cfg: CaptionConfig | None = None) -> Spec:
    """Choose what a caption of ``scene`` states, as a canonical spec the scene satisfies."""
    cfg = cfg or CaptionConfig()
    objs = list(scene.objects)
    rng.shuffle(objs)
    n = len(objs)
    colors = stated_mask(rng, n, cfg.color_all, cfg.color_none)
    sizes = stated_mask(rng, n, cfg.size_all, cfg.size_none)
    described = [{"shape": o.shape} | ({"color": o.color} if c else {}) | ({"size": o.size} if z else {})
                 for o, c, z in zip(objs, colors, sizes)]  # fmt: skip
    groups, relation = place_and_count(rng, described, [o.cell for o in objs], cfg, relation_holds)
    spec: Spec = {"groups": groups}
    if relation:
        spec["relation"] = relation
    if rng.random() < cfg.background:
        spec["bg"] = scene.bg
    return normalize_spec(spec)


def _pick(options: list[str], rng: random.Random | None) -> str:
    return options[0] if rng is None else rng.choice(options)


def _object_en(g: dict, rng: random.Random | None) -> str:
    words = [w for w in (g.get("size"), g.get("color")) if w]
    count = g["count"]
    words.append(g["shape"] if count == 1 else SHAPE_PLURAL[g["shape"]])
    if count == 1:
        head = "an" if words[0][0] in "aeiou" else "a"
    else:
        head = _pick([NUM_EN[count], str(count)], rng) if rng else NUM_EN[count]
    text = head + " " + " ".join(words)
    if "cell" in g:
        text += " " + _pick(_PARA_CELL_EN[tuple(g["cell"])], rng) if rng else " " + CELL_EN[tuple(g["cell"])]
    return text


def _object_zh(g: dict, rng: random.Random | None) -> str:
    text = NUM_ZH[g["count"]] + SIZE_ZH.get(g.get("size"), "") + COLOR_ZH.get(g.get("color"), "")
    text += SHAPE_ZH[g["shape"]]
    if "cell" in g:
        text += _pick(["在", "位于"], rng) + CELL_ZH[tuple(g["cell"])]
    return text


def _join(parts: list[str], sep: str, last: str) -> str:
    return parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + last + parts[-1]


def spec_to_text(spec: Spec, lang: str = "en", rng: random.Random | None = None) -> str:
    """Write ``spec`` as a caption in ``lang`` ("en" or "zh").

    With ``rng=None`` the text is the contract's canonical grammar (parseable, deterministic);
    with an ``rng`` it is a random paraphrase for training diversity.
    """
    if lang == "en":
        objs = [_object_en(g, rng) for g in spec["groups"]]
        if "relation" in spec:
            rel = _pick(_PARA_REL_EN[spec["relation"]], rng) if rng else REL_EN[spec["relation"]]
            text = f"{objs[0]} {rel} {objs[1]}"
        else:
            text = _join(objs, ", ", " and ")
        if "bg" in spec:
            text += (_pick(_PARA_BG_EN, rng) if rng else _PARA_BG_EN[0]).format(spec["bg"])
        return (_pick(_PARA_PREFIX_EN, rng) if rng else "") + text
    if lang == "zh":
        objs = [_object_zh(g, rng) for g in spec["groups"]]
        if "relation" in spec:
            rel = _pick(_PARA_REL_ZH[spec["relation"]], rng) if rng else REL_ZH[spec["relation"]]
            text = f"{objs[0]}{_pick(['在', '位于'], rng)}{objs[1]}的{rel}"
        else:
            text = _join(objs, "、", "和")
        if "bg" in spec:
            text += (_pick(_PARA_BG_ZH, rng) if rng else _PARA_BG_ZH[0]).format(BG_ZH[spec["bg"]])
        return (_pick(_PARA_PREFIX_ZH, rng) if rng else "") + text
    raise ValueError(f"unknown language {lang!r}; expected 'en' or 'zh'")


@dataclass(frozen=True)
class Caption:
    spec: Spec
    en: str
    zh: str


def caption(scene: Scene, rng: random.Random, cfg: CaptionConfig | None = None) -> Caption:
    """A random canonical caption of ``scene`` in both languages, with the spec it states."""
    spec = describe(scene, rng, cfg)
    return Caption(spec, spec_to_text(spec, "en"), spec_to_text(spec, "zh"))


def describe_fully(scene: Scene) -> Spec:
    """The complete description of ``scene``: every object with shape, colour, size and cell, in
    reading order (row by row), plus the background. Captioning targets this, so a caption can be
    checked for an exact match against the scene."""
    groups = [
        {"shape": o.shape, "color": o.color, "size": o.size, "count": 1, "cell": list(o.cell)}
        for o in sorted(scene.objects, key=lambda o: o.cell)
    ]
    return normalize_spec({"groups": groups, "bg": scene.bg})


def matches_fully(spec: Spec, scene: Scene) -> bool:
    """Whether ``spec`` states everything about ``scene`` and all of it is true (any group order)."""
    if spec.get("bg") != scene.bg or "relation" in spec:
        return False
    stated = sorted((g["shape"], g.get("color", ""), g.get("size", ""), tuple(g.get("cell", ())), g["count"])
                    for g in spec["groups"])  # fmt: skip
    truth = sorted((o.shape, o.color, o.size, o.cell, 1) for o in scene.objects)
    return stated == truth


def caption_corpus(num: int, seed: int = 0, paraphrase_prob: float = 0.3) -> Iterator[str]:
    """``num`` scenes' captions in both languages (canonical, and paraphrased some of the time)."""
    rng = random.Random(f"lvg-text-corpus:{seed}")
    for _ in range(num):
        cap = caption(sample_scene(rng), rng)
        for lang, text in (("en", cap.en), ("zh", cap.zh)):
            yield spec_to_text(cap.spec, lang, rng) if rng.random() < paraphrase_prob else text
