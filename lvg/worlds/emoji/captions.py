"""Emoji World captions: scene -> spec -> canonical EN / ZH text, and canonical text -> spec (the parser).

A spec is ``{"groups": [{"emoji", "style"?, "size"?, "count", "cell"?}], "relation"?, "bg"?}`` with ``emoji`` the
concept's EN name; see docs/emoji-world.md for the grammar. The parser is a longest-match scanner over the concept
table's names (names may hold spaces, "and", "的" or digits), so it needs the :class:`ConceptTable`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from lvg.worlds.grammar import check_count_and_cell, check_groups, place_and_count, stated_mask

from .concepts import MEASURE_WORDS, STYLES, ConceptTable
from .scenes import BACKGROUNDS, CELLS, RELATIONS, EmojiScene, relation_holds

Spec = dict[str, Any]
GROUP_KEYS = ("emoji", "style", "size", "count", "cell")
SIZE_NAMES = ("small", "large")
MAX_OBJECTS = 4

NUM_EN = {1: "a", 2: "two", 3: "three", 4: "four"}
NUM_ZH = {1: "一", 2: "两", 3: "三", 4: "四"}
SIZE_ZH = {"small": "小的", "large": "大的"}
STYLE_EN = {"twemoji": "Twemoji", "noto": "Noto"}  # canonical adjectives: "a small Twemoji cat"
STYLE_ZH = {"twemoji": "推特风格的", "noto": "谷歌风格的"}  # "一只小的推特风格的猫"
BG_ZH = {"white": "白色", "black": "黑色"}
CELL_EN = {(0, 0): "in the top left", (0, 1): "at the top", (0, 2): "in the top right", (1, 0): "on the left",
           (1, 1): "in the center", (1, 2): "on the right", (2, 0): "in the bottom left", (2, 1): "at the bottom",
           (2, 2): "in the bottom right"}  # fmt: skip
CELL_ZH = {(0, 0): "左上角", (0, 1): "上方", (0, 2): "右上角", (1, 0): "左侧", (1, 1): "中间", (1, 2): "右侧",
           (2, 0): "左下角", (2, 1): "下方", (2, 2): "右下角"}  # fmt: skip
REL_EN = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
REL_ZH = {"left": "左边", "right": "右边", "above": "上方", "below": "下方"}

# What users type for the styles (the parser accepts all, case-insensitive).
STYLE_ALIASES_EN = {
    **{w: "twemoji" for w in ("twemoji", "twitter", "twemoji-style", "twitter-style", "twemoji style", "twitter style")},
    **{w: "noto" for w in ("noto", "google", "noto-style", "google-style", "noto style", "google style")},
}  # fmt: skip
STYLE_ALIASES_ZH = {
    **{f"{w}风格{d}": "twemoji" for w in ("推特", "twemoji", "twitter") for d in ("的", "")},
    **{f"{w}风格{d}": "noto" for w in ("谷歌", "noto", "google") for d in ("的", "")},
}  # fmt: skip


class EmojiCaptionError(ValueError):
    """A caption or spec outside Emoji World's grammar; the message names the word or field."""


# ----------------------------------------------------------------------------- specs


def normalize_spec(spec: Spec, table: ConceptTable) -> Spec:
    """Validate ``spec`` against the grammar and ``table``; return it with keys in canonical order and counts."""
    out = []
    for i, g in enumerate(check_groups(spec, GROUP_KEYS, EmojiCaptionError)):
        if "emoji" not in g:
            raise EmojiCaptionError(f"group {i}: field 'emoji' is missing")
        try:
            name = table.get(str(g["emoji"])).en
        except KeyError:
            raise EmojiCaptionError(f"group {i}: unknown emoji {g['emoji']!r}") from None
        h: dict = {"emoji": name}
        if "style" in g:
            if g["style"] not in STYLES:
                raise EmojiCaptionError(f"group {i}: field 'style' must be one of {list(STYLES)}, got {g['style']!r}")
            h["style"] = g["style"]
        if "size" in g:
            if g["size"] not in SIZE_NAMES:
                raise EmojiCaptionError(f"group {i}: field 'size' must be small or large, got {g['size']!r}")
            h["size"] = g["size"]
        count, cell = check_count_and_cell(i, g, MAX_OBJECTS, CELLS, EmojiCaptionError)
        h["count"] = count
        if cell is not None:
            h["cell"] = cell
        out.append(h)
    if sum(g["count"] for g in out) > MAX_OBJECTS:
        raise EmojiCaptionError(f"a scene holds at most {MAX_OBJECTS} emoji, the spec asks for more")
    cells = [tuple(g["cell"]) for g in out if "cell" in g]
    if len(set(cells)) != len(cells):
        raise EmojiCaptionError(f"two groups share a cell: {cells}")
    res: Spec = {"groups": out}
    if "relation" in spec:
        if spec["relation"] not in RELATIONS:
            raise EmojiCaptionError(f"field 'relation' must be one of {list(RELATIONS)}, got {spec['relation']!r}")
        if len(out) != 2 or any(g["count"] != 1 or "cell" in g for g in out):
            raise EmojiCaptionError("a relation needs exactly two groups of count 1 without cells")
        res["relation"] = spec["relation"]
    if "bg" in spec:
        if spec["bg"] not in BACKGROUNDS:
            raise EmojiCaptionError(f"field 'bg' must be one of {list(BACKGROUNDS)}, got {spec['bg']!r}")
        res["bg"] = spec["bg"]
    return res


# ----------------------------------------------------------------------------- captioning


@dataclass(frozen=True)
class CaptionConfig:
    """How often the captioner states each attribute (probabilities per caption, as in Shapes World)."""

    style_all: float = 0.3  # every emoji's style stated
    style_none: float = 0.5  # no style stated (otherwise: each emoji's with probability 1/2)
    size_all: float = 0.35
    size_none: float = 0.45
    position_single: float = 0.5
    relation_pair: float = 0.45
    position_multi: float = 0.15
    background: float = 0.5


def describe(scene: EmojiScene, rng: random.Random, table: ConceptTable, cfg: CaptionConfig | None = None) -> Spec:
    """Choose what a caption of ``scene`` states, as a canonical spec the scene satisfies."""
    cfg = cfg or CaptionConfig()
    objs = list(scene.objects)
    rng.shuffle(objs)
    n = len(objs)
    styles = stated_mask(rng, n, cfg.style_all, cfg.style_none)
    sizes = stated_mask(rng, n, cfg.size_all, cfg.size_none)
    described = [{"emoji": o.emoji} | ({"style": o.style} if st else {}) | ({"size": o.size} if z else {})
                 for o, st, z in zip(objs, styles, sizes)]  # fmt: skip
    groups, relation = place_and_count(rng, described, [o.cell for o in objs], cfg, relation_holds)
    spec: Spec = {"groups": groups}
    if relation:
        spec["relation"] = relation
    if rng.random() < cfg.background:
        spec["bg"] = scene.bg
    return normalize_spec(spec, table)


@dataclass(frozen=True)
class Caption:
    spec: Spec
    en: str
    zh: str


def caption(scene: EmojiScene, rng: random.Random, table: ConceptTable, cfg: CaptionConfig | None = None) -> Caption:
    """A random canonical caption of ``scene`` in both languages, with the spec it states."""
    spec = describe(scene, rng, table, cfg)
    return Caption(spec, spec_to_text(spec, table, "en"), spec_to_text(spec, table, "zh"))


def describe_fully(scene: EmojiScene, table: ConceptTable) -> Spec:
    """Everything about ``scene``: each emoji with style, size and cell in reading order, plus the background."""
    groups = [{"emoji": o.emoji, "style": o.style, "size": o.size, "count": 1, "cell": list(o.cell)}
              for o in sorted(scene.objects, key=lambda o: o.cell)]  # fmt: skip
    return normalize_spec({"groups": groups, "bg": scene.bg}, table)


def caption_order(scene: EmojiScene, spec: Spec) -> list[int]:
    """Indices of the scene's emoji in the order the spec's groups mention them (for layouts and metadata).

    Each mention takes the first emoji left that fits it, backtracking where a later, more specific mention would
    find none ("an ant and a small ant" with the small ant first in the scene): depth-first in scene order, so where
    taking the first fit works the result is that one."""
    mentions = [g for g in spec["groups"] for _ in range(g["count"])]

    def assign(k: int, left: list[int]) -> list[int] | None:
        if k == len(mentions):
            return []
        for j in left:
            if _fits(scene.objects[j], mentions[k]):
                rest = assign(k + 1, [i for i in left if i != j])
                if rest is not None:
                    return [j, *rest]
        return None

    order = assign(0, list(range(len(scene.objects))))
    if order is None:
        raise ValueError(f"the spec {spec} does not describe the scene's emoji {scene.objects}")
    return order + [j for j in range(len(scene.objects)) if j not in order]


def _fits(o, g: dict) -> bool:
    return (o.emoji == g["emoji"] and g.get("style", o.style) == o.style and g.get("size", o.size) == o.size
            and list(o.cell) == g.get("cell", list(o.cell)))  # fmt: skip


def _object_en(g: dict, table: ConceptTable) -> str:
    c = table.get(g["emoji"])
    words = [w for w in (g.get("size"), STYLE_EN.get(g.get("style", ""))) if w]
    if g["count"] == 1:
        words.append(c.en)
        det = c.article if len(words) == 1 or not c.article else ("an" if words[0][0].lower() in "aeiou" else "a")
    else:
        words.append(c.en_plural)
        det = NUM_EN[g["count"]]
    text = " ".join([det, *words] if det else words)
    if "cell" in g:
        text += " " + CELL_EN[tuple(g["cell"])]
    return text


def _object_zh(g: dict, table: ConceptTable) -> str:
    c = table.get(g["emoji"])
    text = NUM_ZH[g["count"]] + c.measure + SIZE_ZH.get(g.get("size", ""), "") + STYLE_ZH.get(g.get("style", ""), "")
    text += c.zh
    if "cell" in g:
        text += "在" + CELL_ZH[tuple(g["cell"])]
    return text


def _join(parts: list[str], sep: str, last: str) -> str:
    return parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + last + parts[-1]


def spec_to_text(spec: Spec, table: ConceptTable, lang: str = "en") -> str:
    """``spec`` in the canonical grammar of ``lang`` ("en" or "zh")."""
    if lang == "en":
        objs = [_object_en(g, table) for g in spec["groups"]]
        text = f"{objs[0]} {REL_EN[spec['relation']]} {objs[1]}" if "relation" in spec else _join(objs, ", ", " and ")
        return text + (f" on a {spec['bg']} background" if "bg" in spec else "")
    if lang == "zh":
        objs = [_object_zh(g, table) for g in spec["groups"]]
        text = f"{objs[0]}在{objs[1]}的{REL_ZH[spec['relation']]}" if "relation" in spec else _join(objs, "、", "和")
        return text + (f"，{BG_ZH[spec['bg']]}背景" if "bg" in spec else "")
    raise EmojiCaptionError(f"unknown language {lang!r}; expected 'en' or 'zh'")


# ----------------------------------------------------------------------------- parsing


def detect_language(text: str) -> str:
    return "zh" if re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", text) else "en"


def _norm(text: str, lang: str) -> str:
    """Lower case; EN: runs of spaces as one; ZH: no spaces."""
    return re.sub(r"\s+", " ", text.lower()) if lang == "en" else re.sub(r"\s+", "", text.lower())


class _NameIndex(dict):
    """Normalised name forms -> EN name, grouped by first character, longest first."""


_INDEX_CACHE: dict[tuple[int, str], tuple[ConceptTable, _NameIndex]] = {}


def _name_index(table: ConceptTable, lang: str, plural: bool = False) -> _NameIndex:
    """The names of ``table`` in ``lang``; EN holds singular and plural forms, and where one emoji's plural is
    another's name ("busts in silhouette"), the plural wins in the ``plural`` index, the name otherwise."""
    hit = _INDEX_CACHE.get((id(table), lang + "+" * plural))
    if hit is not None and hit[0] is table:
        return hit[1]
    forms: dict[str, str] = {}
    if lang == "en":
        sing = {_norm(c.en, lang): c.en for c in table}
        plur = {_norm(c.en_plural, lang): c.en for c in table}
        forms = {**sing, **plur} if plural else {**plur, **sing}
    else:
        forms = {_norm(c.zh, lang): c.en for c in table}
    index = _NameIndex()
    for key, name in sorted(forms.items(), key=lambda kv: -len(kv[0])):
        index.setdefault(key[:1], []).append((key, name))
    if len(_INDEX_CACHE) > 16:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[(id(table), lang + "+" * plural)] = (table, index)
    return index


class _Scanner:
    """Longest-match scanning over a normalised caption (EN: lower case, single spaces, words end at a boundary)."""

    def __init__(self, text: str, table: ConceptTable, lang: str):
        self.raw = text
        self.lang = lang
        self.s = _norm(text.strip().rstrip(".。"), lang)
        self.i = 0
        self.table = table
        self.names = _name_index(table, lang)

    def done(self) -> bool:
        return self.i >= len(self.s)

    def accept(self, options) -> Any:
        """Consume the longest option (a key of ``options``) at the cursor; return its value, or None."""
        if isinstance(options, _NameIndex):
            items = options.get(self.s[self.i : self.i + 1], [])
        else:
            items = sorted(options.items(), key=lambda kv: -len(kv[0]))
        for key, value in items:
            if self.s.startswith(key, self.i):
                end = self.i + len(key)
                if self.lang == "en" and end < len(self.s) and (self.s[end].isalnum() and key[-1:].isalnum()):
                    continue  # "cat" must not match the start of "caterpillar"
                self.i = end
                if self.lang == "en" and self.s.startswith(" ", self.i):
                    self.i += 1
                return value
        return None

    def error(self, message: str) -> EmojiCaptionError:
        where = self.s[self.i : self.i + 40] or "the end of the caption"
        return EmojiCaptionError(f"{message} at {where!r} in caption {self.raw!r}")

    def unknown_name(self) -> EmojiCaptionError:
        stop = r"( and |, | to the | above | below | in the | on the | at the | on a |$)" if self.lang == "en" else \
            r"(在|和|、|，|,|的|$)"  # fmt: skip
        m = re.search(stop, self.s[self.i :])
        word = self.s[self.i : self.i + (m.start() if m and m.start() > 0 else len(self.s))].strip()
        return EmojiCaptionError(f"unknown emoji {word!r} in caption {self.raw!r}")


_EN_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_ZH_COUNTS = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_EN_CELLS = {v: k for k, v in CELL_EN.items()} | {"in the centre": (1, 1), "in the middle": (1, 1)}
_EN_RELATIONS = {v: k for k, v in REL_EN.items()} | {"left of": "left", "right of": "right"}
_EN_BG = {f"on a {b} background": b for b in BACKGROUNDS} | {f"on {b} background": b for b in BACKGROUNDS}
_EN_STYLE_SUFFIX = {f"in {t}{w} style": s for w, s in STYLE_ALIASES_EN.items() if not w.endswith("style")
                    for t in ("", "the ")}  # fmt: skip
_ZH_BG = {f"{p}{z}背景": b for b, z in BG_ZH.items() for p in ("，", ",", "")}


def parse_caption(text: str, table: ConceptTable, lang: str | None = None) -> Spec:
    """A canonical EN or ZH caption (auto-detected) -> its spec; :class:`EmojiCaptionError` names what is unknown."""
    if not isinstance(text, str) or not text.strip():
        raise EmojiCaptionError("the caption is empty")
    if len(text) > 2000:
        raise EmojiCaptionError(f"the caption is {len(text)} characters long; the limit is 2000")
    lang = lang or detect_language(text)
    if lang not in ("en", "zh"):
        raise EmojiCaptionError(f"unknown language {lang!r}; expected 'en' or 'zh'")
    sc = _Scanner(text, table, lang)
    item = _item_en if lang == "en" else _item_zh
    groups = [item(sc)]
    relation = None
    if lang == "en":
        relation = sc.accept(_EN_RELATIONS)
        if relation:
            groups.append(item(sc))
        else:
            while sc.accept({"and": 1, ",": 1}) is not None:
                sc.accept({"and": 1})  # Oxford comma
                groups.append(item(sc))
        bg = sc.accept(_EN_BG)
    else:
        if sc.accept({"在": 1}) is not None:
            groups.append(item(sc, in_relation=True))
            if sc.accept({"的": 1}) is None or (relation := sc.accept({v: k for k, v in REL_ZH.items()})) is None:
                raise sc.error("expected 的左边/的右边/的上方/的下方 after the second emoji")
        else:
            while sc.accept({"和": 1, "、": 1}) is not None:
                groups.append(item(sc))
        bg = sc.accept(_ZH_BG)
    if not sc.done():
        raise sc.error("unexpected text")
    spec: Spec = {"groups": groups}
    if relation:
        spec["relation"] = relation
    if bg:
        spec["bg"] = bg
    return normalize_spec(spec, table)


_MODIFIER_ORDERS = ((), ("size",), ("style",), ("size", "style"), ("style", "size"))


def _modified_name(sc: _Scanner, sizes: dict, styles: dict, names: _NameIndex) -> tuple[str | None, str | None, str]:
    """(size, style, name) read at the cursor: of the readings with and without modifiers, the one that reads the
    most text wins, and a bare name wins ties ("large blue diamond" is a name; "small airplane departure" is small
    plus a name). Raises the unknown-name error after the modifiers when no reading finds a name."""
    at = sc.i
    best: tuple[int, dict, str] | None = None
    for order in _MODIFIER_ORDERS:
        sc.i = at
        got = {}
        for kind in order:
            value = sc.accept(sizes if kind == "size" else styles)
            if value is None:
                break
            got[kind] = value
        else:
            name = sc.accept(names)
            if name is not None and (best is None or sc.i > best[0]):
                best = (sc.i, got, name)
    if best is None:
        sc.i = at
        sc.accept(sizes)
        sc.accept(styles)
        sc.accept(sizes)
        raise sc.unknown_name()
    sc.i = best[0]
    return best[1].get("size"), best[1].get("style"), best[2]


_TOO_MANY = ("five", "six", "seven", "eight", "nine", "ten", "many", "several", "五", "六", "七", "八", "九", "十", "5",
             "6", "7", "8", "9")  # fmt: skip


def _item(sc: _Scanner, counts: dict, measure: bool, sizes: dict, styles: dict) -> dict:
    """Count (and measure word), modifiers and name; a name that starts like a count ("一杯奶") is read whole."""
    start = sc.i
    if sc.accept(sc.names) is None and sc.accept({w: w for w in _TOO_MANY}) is not None:  # not a name "五..."
        sc.i = start
        raise sc.error(f"a scene holds at most {MAX_OBJECTS} emoji; counts are one to four (一 to 四)")
    sc.i = start
    count = sc.accept(counts)
    if count is not None and measure and sc.accept({m: m for m in MEASURE_WORDS}) is None:
        count, sc.i = None, start
    plural = _name_index(sc.table, sc.lang, plural=True) if count and count > 1 else sc.names
    try:
        size, style, name = _modified_name(sc, sizes, styles, plural)
    except EmojiCaptionError as first:
        if count is None:
            raise
        sc.i = start
        try:
            size, style, name = _modified_name(sc, sizes, styles, sc.names)
        except EmojiCaptionError:
            raise first from None
        count = None
    g: dict = {"emoji": name, "count": count or 1}
    if style:
        g["style"] = style
    if size:
        g["size"] = size
    return g


def _item_en(sc: _Scanner) -> dict:
    g = _item(sc, _EN_COUNTS, False, {s: s for s in SIZE_NAMES}, STYLE_ALIASES_EN)
    style = sc.accept(_EN_STYLE_SUFFIX)  # "a cat in Twitter style"
    if style:
        g["style"] = style  # normalize_spec puts the keys in order
    cell = sc.accept(_EN_CELLS)
    if cell:
        g["cell"] = list(cell)
    return g


def _item_zh(sc: _Scanner, in_relation: bool = False) -> dict:
    g = _item(sc, _ZH_COUNTS, True, {v: k for k, v in SIZE_ZH.items()}, STYLE_ALIASES_ZH)
    if not in_relation:
        save = sc.i
        if sc.accept({"在": 1}) is not None:
            cell = sc.accept({v: k for k, v in CELL_ZH.items()})
            if cell is None:
                sc.i = save  # "A在B的左边": the relation, read by the caller
            else:
                g["cell"] = list(cell)
    return g
