"""Edit instructions on Emoji World: (scene, instruction EN/ZH) -> the edited scene, or why it cannot be done.

The emoji analogue of :mod:`lvg.worlds.shapes.edits`: an editing LM learns ``<bos> instruction <layout> OLD </layout>
<layout> NEW </layout>`` from these pairs (labels with their style, ``"cat (noto)"``), so no rule maps words to edits
at inference. Edits: ``restyle`` (the other artist's drawing of the same emoji: the analogue of recolouring),
``replace`` (another emoji in its place), resize, move, add, remove, swap two emoji, change the background, and two
of them at once. Instructions to refuse: an emoji the scene does not hold (or several that fit) -> ``missing``;
an emoji or a colour outside the world -> ``unknown``; a fifth emoji -> ``count``; removing the only one -> ``zero``.

Edited and added emoji draw from the image tokenizer's training pool (a style-held-out emoji only in its seen style),
so every label an edit writes is one the planner's grammar knows. The new layout keeps the old one's objects in their
order, each edited in place, with an added one last; a moved or added emoji sits at its cell's centre. Item ``i`` of
a stream is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from lvg.data.layout import Layout, LayoutError, check_layout_order, order_indices
from lvg.ranges import bounded, check_ranges, check_weights
from lvg.worlds.grammar import EDIT_TEMPLATES_EN, EDIT_TEMPLATES_ZH, first_edit_type, with_second_edit

from .analysis import Outside
from .captions import BG_ZH, CELL_EN, CELL_ZH, NUM_ZH, SIZE_ZH, STYLE_ZH
from .concepts import ConceptTable
from .reading import PLACE_EN
from .scenes import BACKGROUNDS, CELLS, EmojiObj, EmojiScene, EmojiSceneError, SceneConfig, pool_choices, sample_scene

EDIT_TYPES: tuple[str, ...] = ("restyle", "replace", "resize", "move", "add", "remove", "swap", "background")
STYLE_WORDS_EN = {"twemoji": ("Twemoji", "Twitter"), "noto": ("Noto", "Google")}
STYLE_WORDS_ZH = {"twemoji": ("推特风格", "Twitter风格"), "noto": ("谷歌风格", "Noto风格")}
COLORS_EN = ("red", "blue", "green", "purple", "golden", "pink", "orange", "grey")  # no colour edits in this world
COLORS_ZH = ("红色", "蓝色", "绿色", "紫色", "金色", "粉色", "橙色", "灰色")

_EN = {
    "restyle": ["draw the {ref} in {style} style", "make the {ref} {style} style", "change the {ref} to {style} style",
                "use the {style} style for the {ref}", "restyle the {ref} as {style}"],
    "replace": ["turn the {ref} into {desc}", "replace the {ref} with {desc}", "change the {ref} to {desc}",
                "make the {ref} {desc} instead", "swap out the {ref} for {desc}"],
    **EDIT_TEMPLATES_EN,
}  # fmt: skip
_ZH = {
    "restyle": ["把{ref}改成{style}", "将{ref}换成{style}", "把{ref}画成{style}", "{ref}改用{style}"],
    "replace": ["把{ref}换成{desc}", "将{ref}替换为{desc}", "把{ref}变成{desc}", "用{desc}代替{ref}", "{ref}改成{desc}"],
    **EDIT_TEMPLATES_ZH,
}  # fmt: skip


@dataclass(frozen=True)
class EmojiEditConfig:
    """What the editor's training stream draws."""

    seed: int = 0
    combo_prob: float = bounded(0.0, 1.0, default=0.25)  # two edits in one instruction
    refusal_prob: float = bounded(0.0, 1.0, default=0.12)
    # relative weight of each edit type's first edit ({"swap": 3}; a type left out weighs 1); empty: uniform, drawn
    # as before
    type_weights: dict[str, float] = field(default_factory=dict)
    # the objects' order in both layouts: "reading" (by box centre: the stream as before) or "lines" (rows as text
    # is read, lvg.data.layout.line_order: two emoji of one row keep their left-to-right order whatever their jitter)
    order: str = "reading"
    # the chance that a scene repeating an emoji has one copy given that emoji's other style or the other size first,
    # as an earlier edit leaves it, so instructions name emoji by style or size ("the Twitter dove", "the small
    # mouse") as a chain of edits does; the world's scenes repeat an emoji in one style and size only. 0 draws
    # nothing (the stream as before)
    varied_prob: float = bounded(0.0, 1.0, default=0.0)

    def __post_init__(self) -> None:
        check_ranges(self)
        check_weights(self.type_weights, EDIT_TYPES, "type_weights")
        check_layout_order(self.order)


@dataclass(frozen=True)
class EmojiEditSample:
    index: int
    lang: str
    instruction: str
    before: EmojiScene  # objects in reading order, or in lines (the config's order: the one the editor sees and keeps)
    after: EmojiScene | None  # None: refused
    refusal: str | None
    kinds: tuple[str, ...]
    added_unstated: tuple[str, ...] = ()  # what the instruction leaves open about an added emoji (style, size, cell)

    @property
    def before_layout(self) -> Layout:
        """The layout the editor reads: styled labels, reading order."""
        return self.before.layout(with_style=True)

    @property
    def after_layout(self) -> Layout | None:
        """The edited layout: the old objects in the old order, edited in place, an added one last."""
        return None if self.after is None else self.after.layout(with_style=True)


class _Words:
    """How an edit names things in one language, over one concept table."""

    def __init__(self, table: ConceptTable, lang: str, rng: random.Random):
        self.table, self.lang, self.rng, self.en = table, lang, rng, lang == "en"

    def name(self, emoji: str) -> str:
        c = self.table.get(emoji)
        return c.en if self.en else c.zh

    def cell(self, cell: tuple[int, int]) -> str:
        return CELL_EN[cell] if self.en else CELL_ZH[cell]

    def style(self, style: str) -> str:
        return self.rng.choice((STYLE_WORDS_EN if self.en else STYLE_WORDS_ZH)[style])

    def ref(self, scene: EmojiScene, o: EmojiObj, avoid: str | None = None) -> str | None:
        """A phrase that picks ``o`` alone out of ``scene``: its name, else with its size, style or cell (never by
        ``avoid``, the attribute the edit changes); None when nothing does."""
        same = [p for p in scene.objects if p.emoji == o.emoji]
        name = self.name(o.emoji)
        if len(same) == 1:
            return name
        options = []
        if avoid != "size" and sum(p.size == o.size for p in same) == 1:
            options.append(f"{o.size} {name}" if self.en else f"{SIZE_ZH[o.size]}{name}")
        if avoid != "style" and sum(p.style == o.style for p in same) == 1:
            options.append(f"{self.style(o.style)} {name}" if self.en else f"{self.style(o.style)}的{name}")
        if avoid != "cell":
            options.append(f"{name} {CELL_EN[o.cell]}" if self.en else f"{CELL_ZH[o.cell]}的{name}")
        return self.rng.choice(options) if options else None

    def desc(self, emoji: str, style: str | None, size: str | None) -> str:
        """An emoji to draw: "a small Noto dog" / "一只小的谷歌风格的狗" (style and size where stated)."""
        c = self.table.get(emoji)
        if self.en:
            words = [w for w in (size, self.style(style) if style else None) if w]
            if not words:
                return f"{c.article} {c.en}".strip()
            text = " ".join([*words, c.en])
            return text if not c.article else f"{'an' if text[0].lower() in 'aeiou' else 'a'} {text}"
        return f"{NUM_ZH[1]}{c.measure}{SIZE_ZH[size] if size else ''}{STYLE_ZH[style] if style else ''}{c.zh}"


def in_order(scene: EmojiScene, order: str = "reading") -> EmojiScene:
    """``scene`` with its objects in ``order`` (by centre or in lines, :data:`lvg.data.layout.LAYOUT_ORDERS`): the
    order the editor sees and keeps."""
    idx = order_indices([o.box(scene.canvas) for o in scene.objects], order)
    return EmojiScene(tuple(scene.objects[i] for i in idx), scene.bg, scene.canvas)


def _fits(objs: list[EmojiObj], bg: str, canvas: int) -> EmojiScene | None:
    """The scene of ``objs`` if it is one (inside the canvas, no overlaps), else None."""
    try:
        return EmojiScene(tuple(objs), bg, canvas)
    except (EmojiSceneError, LayoutError):
        return None


def _other_style(o: EmojiObj, styles_of: dict[str, list[str]]) -> str | None:
    """The training pool's other style of ``o``'s emoji; None for a style-held-out emoji (its other style is not the
    world's to draw)."""
    return next((s for s in styles_of.get(o.emoji, []) if s != o.style), None)


def _other_size(size: str) -> str:
    return "large" if size == "small" else "small"


def _placed(objs: list[EmojiObj], i: int, new: EmojiObj, bg: str, canvas: int) -> EmojiScene | None:
    """``objs`` with object ``i`` (``len(objs)``: a new one) as ``new``, its jitter kept where it fits, else centred."""
    for o in (new, replace(new, jitter=(0, 0))):
        got = _fits([*objs[:i], o, *objs[i + 1 :]], bg, canvas)
        if got is not None:
            return got
    return None


_POOLS: dict[int, tuple[ConceptTable, list[tuple[str, str]], dict[str, list[str]]]] = {}


def _pool(table: ConceptTable) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The training pool's (emoji, style) pairs, and each emoji's styles there."""
    if id(table) not in _POOLS or _POOLS[id(table)][0] is not table:
        pairs = pool_choices(table, "train")
        styles: dict[str, list[str]] = {}
        for e, s in pairs:
            styles.setdefault(e, []).append(s)
        _POOLS[id(table)] = (table, pairs, styles)
    return _POOLS[id(table)][1], _POOLS[id(table)][2]


def one_edit(scene: EmojiScene, kind: str, lang: str, rng: random.Random, table: ConceptTable,
             busy: set[int] | None = None) -> tuple[str, EmojiScene, tuple[str, ...]] | None:  # fmt: skip
    """An instruction of ``kind`` for ``scene`` (objects in reading order) and the scene it asks for, plus what it
    leaves open about an added emoji; None where ``scene`` cannot carry it. ``busy``: objects an earlier edit of the
    same instruction touched (left alone here)."""
    w, objs, busy = _Words(table, lang, rng), list(scene.objects), busy or set()
    free = [i for i in range(len(objs)) if i not in busy]
    t = rng.choice((_EN if lang == "en" else _ZH)[kind])
    empty = [c for c in CELLS if c not in {o.cell for o in objs}]
    pool, styles_of = _pool(table)
    canvas, bg = scene.canvas, scene.bg
    if kind in ("restyle", "replace", "resize", "move", "remove"):
        if not free or (kind == "remove" and len(objs) < 2) or (kind == "move" and not empty):
            return None
        i = rng.choice(free)
        o = objs[i]
        ref = w.ref(scene, o, {"restyle": "style", "resize": "size", "move": "cell"}.get(kind))
        if ref is None:
            return None
        if kind == "restyle":
            other = _other_style(o, styles_of)
            if other is None:
                return None
            after = _placed(objs, i, replace(o, style=other), bg, canvas)
            text = t.format(ref=ref, style=w.style(other))
        elif kind == "replace":
            emoji = rng.choice([e for e in styles_of if e != o.emoji])
            stated = rng.random() < 0.3
            style = rng.choice(styles_of[emoji]) if stated else (o.style if o.style in styles_of[emoji]
                                                                  else styles_of[emoji][0])  # fmt: skip
            after = _placed(objs, i, replace(o, emoji=emoji, style=style), bg, canvas)
            text = t.format(ref=ref, desc=w.desc(emoji, style if stated else None, None))
        elif kind == "resize":
            z = _other_size(o.size)
            er = ("bigger" if z == "large" else "smaller") if lang == "en" else ("大" if z == "large" else "小")
            after = _placed(objs, i, replace(o, size=z), bg, canvas)
            text = t.format(ref=ref, size=z if lang == "en" else SIZE_ZH[z], er=er)
        elif kind == "move":
            cell = rng.choice(empty)
            after = _placed(objs, i, replace(o, cell=cell, jitter=(0, 0)), bg, canvas)
            text = t.format(ref=ref, place=PLACE_EN[cell], cell=w.cell(cell))
        else:
            del objs[i]
            after, text = EmojiScene(tuple(objs), bg, canvas), t.format(ref=ref)
        return None if after is None else (text, after, ())
    if kind == "swap":
        if len(free) < 2:
            return None
        i, j = rng.sample(free, 2)
        a, b = objs[i], objs[j]
        ra, rb = w.ref(scene, a, "cell"), w.ref(scene, b, "cell")
        if ra is None or rb is None or (a.emoji, a.style, a.size) == (b.emoji, b.style, b.size):
            return None
        objs[i], objs[j] = replace(a, cell=b.cell, jitter=b.jitter), replace(b, cell=a.cell, jitter=a.jitter)
        after = _fits(objs, bg, canvas)
        if after is None:  # (sizes differ: the larger one may not fit the other's jitter)
            objs[i], objs[j] = replace(objs[i], jitter=(0, 0)), replace(objs[j], jitter=(0, 0))
            after = _fits(objs, bg, canvas)
        return None if after is None else (t.format(ref=ra, ref2=rb), after, ())
    if kind == "background":
        new_bg = next(b for b in BACKGROUNDS if b != bg)
        return t.format(bg=new_bg if lang == "en" else BG_ZH[new_bg]), EmojiScene(tuple(objs), new_bg, canvas), ()
    if kind == "add":
        if len(objs) >= 4 or not empty:
            return None
        emoji, style = rng.choice(pool)
        size = rng.choice(["small", "large"])
        stated = {"style": rng.random() < 0.3, "size": rng.random() < 0.5}
        needs_cell = "{cell}" in t
        cell = rng.choice(empty)
        after = _placed(objs, len(objs), EmojiObj(emoji, style, size, cell), bg, canvas)
        if after is None:
            return None
        text = t.format(desc=w.desc(emoji, style if stated["style"] else None, size if stated["size"] else None),
                        cell=w.cell(cell))  # fmt: skip
        unstated = tuple(k for k in ("style", "size") if not stated[k]) + (() if needs_cell else ("cell",))
        return text, after, unstated
    raise ValueError(f"unknown edit type {kind!r}; expected one of {list(EDIT_TYPES)}")


def vary_twin(scene: EmojiScene, rng: random.Random, table: ConceptTable) -> EmojiScene:
    """``scene`` with one copy of an emoji it repeats given that emoji's other style (where the training pool draws
    it in two) or the other size, as an earlier edit leaves it; ``scene`` itself where it repeats none or the change
    does not fit."""
    objs = list(scene.objects)
    twins = [i for i, o in enumerate(objs) if sum(p.emoji == o.emoji for p in objs) > 1]
    if not twins:
        return scene
    i = rng.choice(twins)
    o = objs[i]
    other = _other_style(o, _pool(table)[1])
    new = replace(o, style=other) if other is not None and rng.random() < 0.5 else replace(o, size=_other_size(o.size))
    return _placed(objs, i, new, scene.bg, scene.canvas) or scene


def _absent(scene: EmojiScene, table: ConceptTable, rng: random.Random) -> str:
    """An emoji of the world that ``scene`` does not hold."""
    held = {o.emoji for o in scene.objects}
    while True:
        c = rng.choice(list(table))
        if c.en not in held:
            return c.en


def refused_edit(scene: EmojiScene, lang: str, rng: random.Random, table: ConceptTable, outside: Outside,
                 held_out: bool = False) -> tuple[str, str]:  # fmt: skip
    """An instruction ``scene`` cannot carry out, and why (``held_out``: outside names no training row uses)."""
    w, objs, en = _Words(table, lang, rng), scene.objects, lang == "en"
    u = rng.random()
    if u < 0.4:  # an emoji that is not there, or one that several fit
        twice = [o.emoji for o in objs if sum(p.emoji == o.emoji for p in objs) > 1]
        ref = w.name(rng.choice(twice) if twice and rng.random() < 0.4 else _absent(scene, table, rng))
        kind = rng.choice(["restyle", "move", "remove", "resize", "replace"])
        t = rng.choice((_EN if en else _ZH)[kind])
        cell = rng.choice(CELLS)
        other = _absent(scene, table, rng)
        return t.format(ref=ref, style=w.style(rng.choice(["twemoji", "noto"])), place=PLACE_EN[cell],
                        cell=w.cell(cell), size="large" if en else "大的", er="bigger" if en else "大",
                        desc=w.desc(other, None, None)), "missing"  # fmt: skip
    if u < 0.75:  # an emoji or a colour outside the world
        o = rng.choice(objs)
        ref = w.ref(scene, o) or w.name(o.emoji)
        c = rng.choice(outside.held_out if held_out else outside.train)
        x = f"{c.article} {c.en}".strip() if en else f"{NUM_ZH[1]}{c.measure}{c.zh}"
        colour = rng.choice(COLORS_EN if en else COLORS_ZH)
        options = ([f"turn the {ref} into {x}", f"replace the {ref} with {x}", f"add {x}", f"make the {ref} {colour}",
                    f"paint the {ref} {colour}"] if en else
                   [f"把{ref}换成{x}", f"添加{x}", f"用{x}代替{ref}", f"把{ref}改成{colour}", f"把{ref}涂成{colour}"])  # fmt: skip
        return rng.choice(options), "unknown"
    if len(objs) == 4:  # a fifth emoji
        got = None
        while got is None:
            got = one_edit(EmojiScene(objs[:3], scene.bg, scene.canvas), "add", lang, rng, table)
        return got[0], "count"
    if len(objs) == 1:  # removing the only emoji
        return rng.choice((_EN if en else _ZH)["remove"]).format(ref=w.name(objs[0].emoji)), "zero"
    return rng.choice((_EN if en else _ZH)["remove"]).format(ref=w.name(_absent(scene, table, rng))), "missing"


def make_edit_sample(index: int, table: ConceptTable, outside: Outside, cfg: EmojiEditConfig | None = None,
                     kind: str | None = None, salt: str = "lvg-emoji-edit", scenes: SceneConfig | None = None,
                     held_out: bool = False) -> EmojiEditSample:  # fmt: skip
    """Item ``index`` of the edit stream (``kind``: only that edit type, no refusals or combinations; ``scenes``:
    the scenes it starts from, default the training pool)."""
    cfg = cfg or EmojiEditConfig()
    rng = random.Random(f"{salt}:{cfg.seed}:{index}:{kind}")
    lang = rng.choice(("en", "zh"))
    while True:
        scene = in_order(sample_scene(rng, table, scenes or SceneConfig()), cfg.order)
        if cfg.varied_prob > 0 and rng.random() < cfg.varied_prob:  # (no draw at 0: the stream as before)
            scene = in_order(vary_twin(scene, rng, table), cfg.order)
        if kind is None and rng.random() < cfg.refusal_prob:
            text, reason = refused_edit(scene, lang, rng, table, outside, held_out)
            return EmojiEditSample(index, lang, text, scene, None, reason, ("refusal",))
        first = kind or first_edit_type(rng, EDIT_TYPES, cfg.type_weights)
        got = one_edit(scene, first, lang, rng, table)
        if got is None:
            continue
        text, after, unstated = got
        kinds = (first,)
        if kind is None:  # (an edit of one given kind is never joined by a second)
            text, after, kinds = with_second_edit(text, scene.objects, after, first, EDIT_TYPES, lang, rng,
                                                  cfg.combo_prob, lambda sc, k, busy: one_edit(sc, k, lang, rng, table, busy=busy))  # fmt: skip
        return EmojiEditSample(index, lang, text, scene, after, None, kinds, unstated)
