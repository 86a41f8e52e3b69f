"""Edit instructions on Shapes World: (scene, instruction EN/ZH) -> the edited scene, or why it cannot be done.

An editing LM learns ``<bos> instruction <layout> OLD </layout> <layout> NEW </layout>`` from these pairs, so no rule
maps words to edits at inference. Edits: recolour, resize, move, add, remove, swap two objects, change the
background, and two of them at once. Instructions it must refuse: an object the scene does not hold (or several that
fit) -> ``missing``; words outside the world -> ``unknown``; a fifth object -> ``count``; removing the only object
-> ``zero``.

The new layout keeps the old one's objects in their order, each edited in place, with an added object last, so the
untouched objects are copied token for token. Item ``i`` of a stream is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from lvg.data.layout import Layout, reading_indices
from lvg.data.text import EDIT_REFUSAL_REASONS
from lvg.ranges import bounded, check_ranges, check_weights
from lvg.worlds.grammar import EDIT_TEMPLATES_EN, EDIT_TEMPLATES_ZH, first_edit_type, with_second_edit
from lvg.worlds.shapes.scene_layout import layout_from_scene, object_box

from .analysis import UNKNOWN_COLORS_EN, UNKNOWN_COLORS_ZH, UNKNOWN_EN, UNKNOWN_ZH
from .reading import _bad_ref, _ref, _unique_ref
from .world import (
    BACKGROUNDS,
    BG_ZH,
    CELL_EN,
    CELL_ZH,
    CELLS,
    COLOR_ZH,
    COLORS,
    SHAPE_ZH,
    SHAPES,
    SIZE_ZH,
    Obj,
    Scene,
    random_jitter,
    sample_scene,
)

EDIT_TYPES: tuple[str, ...] = ("recolor", "resize", "move", "add", "remove", "swap", "background")
EDIT_REFUSALS: tuple[str, ...] = EDIT_REFUSAL_REASONS

_EN = {
    "recolor": ["make the {ref} {color}", "change the {ref} to {color}", "paint the {ref} {color}",
                "turn the {ref} {color}", "recolor the {ref} {color}", "color the {ref} {color}"],
    **EDIT_TEMPLATES_EN,
}  # fmt: skip
_ZH = {
    "recolor": ["把{ref}变成{color}", "把{ref}改成{color}", "将{ref}涂成{color}", "{ref}改为{color}", "把{ref}染成{color}"],
    **EDIT_TEMPLATES_ZH,
}  # fmt: skip


def _place(cell: tuple[int, int]) -> str:
    """ "top left", "center", "left", ... (the cell's name without its preposition)."""
    return (
        CELL_EN[cell].split(" ", 2)[-1] if CELL_EN[cell].startswith(("in the", "at the", "on the")) else CELL_EN[cell]
    )


def _cell_phrase(cell: tuple[int, int], lang: str) -> str:
    return CELL_EN[cell] if lang == "en" else CELL_ZH[cell]


@dataclass(frozen=True)
class EditSample:
    index: int
    lang: str
    instruction: str
    before: Scene
    after: Scene | None  # None: refused
    refusal: str | None
    kinds: tuple[str, ...]
    added_unstated: tuple[str, ...] = ()  # attributes of an added object the instruction leaves open (not judged)

    @property
    def before_layout(self) -> Layout:
        """The layout the editor reads: the scene's objects in reading order."""
        return layout_from_scene(self.before, reading_order_indices(self.before))

    @property
    def after_layout(self) -> Layout | None:
        """The edited layout: the old objects in the old order, edited in place, an added one last."""
        return None if self.after is None else layout_from_scene(self.after)


def reading_order_indices(scene: Scene) -> list[int]:
    """The order of ``scene``'s objects by box centre (the order its editor sees and keeps): indices."""
    return reading_indices([object_box(o) for o in scene.objects])


def _in_order(scene: Scene) -> Scene:
    """``scene`` with its objects in reading order (the order the editor sees and keeps)."""
    return Scene(tuple(scene.objects[i] for i in reading_order_indices(scene)), scene.bg)


def _say_color(c: str, lang: str) -> str:
    return c if lang == "en" else COLOR_ZH[c]


def one_edit(scene: Scene, kind: str, lang: str, rng: random.Random,
             busy: set[int] | None = None) -> tuple[str, Scene, tuple[str, ...]] | None:  # fmt: skip
    """An instruction of ``kind`` for ``scene`` (objects in reading order) and the scene it asks for, plus the added
    object's unstated attributes; None where ``scene`` cannot carry it. ``busy``: object indices an earlier edit of the
    same instruction touched (left alone here)."""
    objs, busy = list(scene.objects), busy or set()
    free = [i for i in range(len(objs)) if i not in busy]
    t = rng.choice((_EN if lang == "en" else _ZH)[kind])
    empty = [c for c in CELLS if c not in {o.cell for o in objs}]
    if kind in ("recolor", "resize", "move", "remove"):
        if not free or (kind == "remove" and len(objs) < 2) or (kind == "move" and not empty):
            return None
        i = rng.choice(free)
        o = objs[i]
        d = _unique_ref(scene, o, rng, {"recolor": "color", "resize": "size"}.get(kind))
        if d is None:
            return None
        ref = _ref(d, lang)
        if kind == "recolor":
            c = rng.choice([c for c in COLORS if c != o.color])
            objs[i], text = replace(o, color=c), t.format(ref=ref, color=_say_color(c, lang))
        elif kind == "resize":
            z = "large" if o.size == "small" else "small"
            er = ("bigger" if z == "large" else "smaller") if lang == "en" else ("大" if z == "large" else "小")
            size = z if lang == "en" else SIZE_ZH[z]
            objs[i], text = replace(o, size=z), t.format(ref=ref, size=size, er=er)
        elif kind == "move":
            cell = rng.choice(empty)
            objs[i] = replace(o, cell=cell, jitter=random_jitter(rng))
            text = t.format(ref=ref, place=_place(cell), cell=_cell_phrase(cell, lang))
        else:
            del objs[i]
            text = t.format(ref=ref)
        return text, Scene(tuple(objs), scene.bg), ()
    if kind == "swap":
        if len(free) < 2:
            return None
        i, j = rng.sample(free, 2)
        a, b = objs[i], objs[j]
        da, db = _unique_ref(scene, a, rng), _unique_ref(scene, b, rng)
        if da is None or db is None or (a.shape, a.color, a.size) == (b.shape, b.color, b.size):
            return None
        objs[i], objs[j] = replace(a, cell=b.cell, jitter=b.jitter), replace(b, cell=a.cell, jitter=a.jitter)
        return t.format(ref=_ref(da, lang), ref2=_ref(db, lang)), Scene(tuple(objs), scene.bg), ()
    if kind == "background":
        bg = next(b for b in BACKGROUNDS if b != scene.bg)
        return t.format(bg=bg if lang == "en" else BG_ZH[bg]), Scene(tuple(objs), bg), ()
    if kind == "add":
        if len(objs) >= 4 or not empty:
            return None
        shape, color, size = rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(["small", "large"])
        stated = {"color": rng.random() < 0.7, "size": rng.random() < 0.5}
        needs_cell = "{cell}" in t
        cell = rng.choice(empty)
        if lang == "en":
            words = [w for w, k in ((size, "size"), (color, "color")) if stated[k]] + [shape]
            desc = ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)
        else:
            desc = "一个" + (SIZE_ZH[size] if stated["size"] else "") + (COLOR_ZH[color] if stated["color"] else "")
            desc += SHAPE_ZH[shape]
        text = t.format(desc=desc, cell=_cell_phrase(cell, lang))
        objs.append(Obj(shape, color, size, cell, random_jitter(rng)))
        unstated = tuple(k for k in ("color", "size") if not stated[k]) + (() if needs_cell else ("cell",))
        return text, Scene(tuple(objs), scene.bg), unstated
    raise ValueError(f"unknown edit type {kind!r}; expected one of {EDIT_TYPES}")


def refused_edit(scene: Scene, lang: str, rng: random.Random) -> tuple[str, str]:
    """An instruction ``scene`` cannot carry out, and why."""
    objs = scene.objects
    en = lang == "en"
    u = rng.random()
    if u < 0.4:  # an object that is not there (or several that fit)
        d = _bad_ref(scene, rng, "")
        kind = rng.choice(["recolor", "move", "remove", "resize"])
        t = rng.choice((_EN if en else _ZH)[kind])
        cell = rng.choice(CELLS)
        return t.format(ref=_ref(d, lang), color=_say_color(rng.choice(list(COLORS)), lang), place=_place(cell),
                        cell=_cell_phrase(cell, lang), size="large" if en else "大的",
                        er="bigger" if en else "大"), "missing"  # fmt: skip
    if u < 0.75:  # words outside the world
        o = rng.choice(objs)
        ref = _ref(_unique_ref(scene, o, rng) or {"shape": o.shape}, lang)
        x = rng.choice(UNKNOWN_EN if en else UNKNOWN_ZH)
        c = rng.choice(UNKNOWN_COLORS_EN if en else UNKNOWN_COLORS_ZH)
        options = ([f"make the {ref} a {x}", f"turn the {ref} into a {x}", f"add a {x}", f"make the {ref} {c}",
                    f"replace the {ref} with a {x}", f"give the {ref} a {x}"] if en else
                   [f"把{ref}变成{x}", f"添加一个{x}", f"把{ref}改成{c}", f"用{x}代替{ref}", f"给{ref}加一个{x}"])  # fmt: skip
        return rng.choice(options), "unknown"
    if len(objs) == 4:  # a fifth object
        return one_edit(Scene(objs[:3], scene.bg), "add", lang, rng)[0], "count"  # type: ignore[index]
    if len(objs) == 1:  # removing the only object
        d = _unique_ref(scene, objs[0], rng) or {"shape": objs[0].shape}
        return rng.choice((_EN if en else _ZH)["remove"]).format(ref=_ref(d, lang)), "zero"
    d = _bad_ref(scene, rng, "")
    return rng.choice((_EN if en else _ZH)["remove"]).format(ref=_ref(d, lang)), "missing"


@dataclass
class EditDataConfig:
    """What the editor's training stream draws."""

    seed: int = 0
    combo_prob: float = 0.25  # two edits in one instruction
    refusal_prob: float = 0.12
    # relative weight of each edit type's first edit ({"swap": 3}: swaps three times as often as each other type,
    # unnamed types 1); empty: uniform, drawn as before
    type_weights: dict[str, float] = field(default_factory=dict)
    # how often a multi-object scene repeats prototypes; None: the world's own rate (sample_scene's)
    group_prob: float | None = bounded(0.0, 1.0, default=None)

    def __post_init__(self) -> None:
        check_ranges(self)
        check_weights(self.type_weights, EDIT_TYPES, "type_weights")


def make_edit_sample(index: int, cfg: EditDataConfig | None = None, kind: str | None = None,
                     salt: str = "lvg-edit") -> EditSample:  # fmt: skip
    """Item ``index`` of the edit stream (``kind``: only that edit type, no refusals or combinations)."""
    cfg = cfg or EditDataConfig()
    rng = random.Random(f"{salt}:{cfg.seed}:{index}:{kind}")
    lang = rng.choice(("en", "zh"))
    while True:
        scene = _in_order(sample_scene(rng) if cfg.group_prob is None else sample_scene(rng, cfg.group_prob))
        if kind is None and rng.random() < cfg.refusal_prob:
            text, reason = refused_edit(scene, lang, rng)
            return EditSample(index, lang, text, scene, None, reason, ("refusal",))
        first = kind or first_edit_type(rng, EDIT_TYPES, cfg.type_weights)
        got = one_edit(scene, first, lang, rng)
        if got is None:
            continue
        text, after, unstated = got
        kinds = (first,)
        if kind is None:  # (an edit of one given kind is never joined by a second)
            text, after, kinds = with_second_edit(text, scene.objects, after, first, EDIT_TYPES, lang, rng,
                                                  cfg.combo_prob, lambda sc, k, busy: one_edit(sc, k, lang, rng, busy=busy))  # fmt: skip
        return EditSample(index, lang, text, scene, after, None, kinds, unstated)
