"""Caption parser: canonical English or Chinese caption -> canonical structured spec.

Hand-written, linear-time recursive descent over words (English) or characters (Chinese).
It accepts the contract's grammar (plus harmless leniency: case, extra spaces, a final full
stop, digits for counts, an Oxford comma) and raises :class:`CaptionParseError` — a
``ValueError`` — naming the span it could not read for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lvg.data.text import detect_language

from .spec import MAX_OBJECTS, Spec, SpecError, normalize_spec
from .world import BG_ZH, CELL_EN, CELL_ZH, COLOR_ZH, COLORS, SHAPE_PLURAL, SHAPE_ZH, SHAPES, SIZE_ZH, SIZES

MAX_CAPTION_CHARS = 2000


class CaptionParseError(SpecError):
    """A caption outside the canonical grammar. ``span`` is the (start, end) of the bad text."""

    def __init__(self, message: str, text: str = "", span: tuple[int, int] | None = None):
        self.text = text
        self.span = span
        if span is not None:
            shown = text[span[0] : span[1]]
            if len(shown) > 40:
                shown = shown[:40] + "..."
            message = f"{message} (at characters {span[0]}-{span[1]}: {shown!r})"
        super().__init__(message)


def parse_caption(text: str, lang: str | None = None) -> Spec:
    """Parse a caption (English or Chinese; auto-detected when ``lang`` is None) into a spec."""
    if not isinstance(text, str):
        raise CaptionParseError(f"a caption must be a string, got {type(text).__name__}")
    if not text.strip():
        raise CaptionParseError("the caption is empty", text)
    if len(text) > MAX_CAPTION_CHARS:
        raise CaptionParseError(
            f"the caption is {len(text)} characters long; the limit is {MAX_CAPTION_CHARS}",
            text,
            (MAX_CAPTION_CHARS, len(text)),
        )
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text)
    if bad:
        raise CaptionParseError(f"control character {bad.group()!r} in caption", text, bad.span())
    lang = lang or detect_language(text)
    if lang == "en":
        return _EnParser(text).parse()
    if lang == "zh":
        return _ZhParser(text).parse()
    raise ValueError(f"unknown language {lang!r}; expected 'en' or 'zh'")


def _finish(groups: list[dict], relation: str | None, bg: str | None, text: str) -> Spec:
    spec: Spec = {"groups": groups}
    if relation:
        spec["relation"] = relation
    if bg:
        spec["bg"] = bg
    try:
        return normalize_spec(spec)
    except CaptionParseError:
        raise
    except SpecError as e:
        raise CaptionParseError(str(e), text, (0, len(text))) from None


# ----------------------------------------------------------------------------- English


@dataclass
class _Tok:
    value: str
    start: int
    end: int


_EN_LEX = re.compile(r"(?P<word>[A-Za-z]+)|(?P<num>\d+)|(?P<punct>[,.])|(?P<space>\s+)")
_EN_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_EN_TOO_MANY = {"five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "many", "several"}
_EN_SHAPES = {**{s: s for s in SHAPES}, **{SHAPE_PLURAL[s]: s for s in SHAPES}}
_EN_CELLS = {tuple(phrase.split()): cell for cell, phrase in CELL_EN.items()}
_EN_CELLS.update({("in", "the", "centre"): (1, 1), ("in", "the", "middle"): (1, 1)})
_EN_RELATIONS = {
    ("to", "the", "left", "of"): "left",
    ("to", "the", "right", "of"): "right",
    ("left", "of"): "left",
    ("right", "of"): "right",
    ("above",): "above",
    ("below",): "below",
}
_EN_BACKGROUNDS = {("on", "a", bg, "background"): bg for bg in ("white", "black")}
_EN_BACKGROUNDS.update({("on", bg, "background"): bg for bg in ("white", "black")})


class _EnParser:
    def __init__(self, text: str):
        self.text = text
        self.toks: list[_Tok] = []
        pos = 0
        while pos < len(text):
            m = _EN_LEX.match(text, pos)
            if m is None:
                raise CaptionParseError("unexpected character in an English caption", text, (pos, pos + 1))
            if m.lastgroup != "space":
                self.toks.append(_Tok(m.group().lower(), m.start(), m.end()))
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.toks[j].value if j < len(self.toks) else None

    def error(self, message: str, width: int = 1) -> CaptionParseError:
        if self.i >= len(self.toks):
            return CaptionParseError(message + ", but the caption ended", self.text, (len(self.text), len(self.text)))
        last = self.toks[min(self.i + width, len(self.toks)) - 1]
        return CaptionParseError(message, self.text, (self.toks[self.i].start, last.end))

    def phrase(self, table: dict[tuple[str, ...], object]):
        """Match the longest word sequence of ``table`` at the cursor; return its value or None."""
        for words, value in sorted(table.items(), key=lambda kv: -len(kv[0])):
            if all(self.peek(k) == w for k, w in enumerate(words)):
                self.i += len(words)
                return value
        return None

    def parse(self) -> Spec:
        groups = [self.item()]
        relation = self.phrase(_EN_RELATIONS)
        if relation:
            groups.append(self.item())
        else:
            listed = False
            while self.peek() == ",":
                self.i += 1
                if self.peek() == "and":  # Oxford comma
                    break
                groups.append(self.item())
                listed = True
            if self.peek() == "and":
                self.i += 1
                groups.append(self.item())
            elif listed:
                raise self.error("expected 'and' before the last item of a list")
        bg = None
        if self.peek() in (",", "on"):
            if self.peek() == ",":
                self.i += 1
            bg = self.phrase(_EN_BACKGROUNDS)
            if bg is None:
                raise self.error("expected 'on a white background' or 'on a black background'", 4)
        if self.peek() == ".":
            self.i += 1
        if self.i < len(self.toks):
            raise self.error("unexpected words after a complete caption", len(self.toks))
        return _finish(groups, relation, bg, self.text)

    def item(self) -> dict:
        word = self.peek()
        if word is None:
            raise self.error("expected an object such as 'a red circle'")
        if word in _EN_COUNTS:
            count = _EN_COUNTS[word]
        elif word.isdigit() and 1 <= int(word) <= MAX_OBJECTS:
            count = int(word)
        elif word in _EN_TOO_MANY or word.isdigit():
            raise self.error(f"count {word!r} is out of range: a scene holds 1 to {MAX_OBJECTS} objects")
        else:
            raise self.error("expected 'a', 'an' or a number (two, three, four) to start an object")
        self.i += 1
        group: dict = {"shape": None}
        if self.peek() in SIZES:
            group["size"] = self.peek()
            self.i += 1
        if self.peek() in COLORS:
            group["color"] = self.peek()
            self.i += 1
        shape = _EN_SHAPES.get(self.peek() or "")
        if shape is None:
            expected = (
                "a shape"
                if "color" in group
                else "a size, a colour or a shape"
                if "size" not in group
                else "a colour or a shape"
            )
            raise self.error(f"expected {expected} (shapes: {', '.join(SHAPES)}; colours: {', '.join(COLORS)})")
        group["shape"] = shape
        self.i += 1
        group["count"] = count
        cell = self.phrase(_EN_CELLS)
        if cell is not None:
            if count != 1:
                raise self.error("only a single object can have a position")
            group["cell"] = list(cell)
        return group


# ----------------------------------------------------------------------------- Chinese

_ZH_COUNTS = {"一个": 1, "两个": 2, "二个": 2, "三个": 3, "四个": 4, "1个": 1, "2个": 2, "3个": 3, "4个": 4}
_ZH_TOO_MANY = {c + "个": c for c in "五六七八九十"} | {f"{d}个": d for d in "056789"}
_ZH_SIZES = {v: k for k, v in SIZE_ZH.items()}
_ZH_COLORS = {v: k for k, v in COLOR_ZH.items()}
_ZH_SHAPES = {v: k for k, v in SHAPE_ZH.items()}
_ZH_CELLS = {v: k for k, v in CELL_ZH.items()}
_ZH_RELATIONS = {"左边": "left", "右边": "right", "上方": "above", "下方": "below"}
_ZH_BACKGROUNDS = {BG_ZH[bg] + "背景": bg for bg in ("white", "black")}
_ZH_ALL = [
    *_ZH_COUNTS,
    *_ZH_SIZES,
    *_ZH_COLORS,
    *_ZH_SHAPES,
    *_ZH_CELLS,
    *_ZH_RELATIONS,
    *_ZH_BACKGROUNDS,
    "在",
    "的",
    "和",
    "、",
    "，",
    ",",
]


class _ZhParser:
    def __init__(self, text: str):
        self.text = text
        # Spaces carry no meaning in Chinese captions; keep each kept char's original index.
        self.idx = [i for i, ch in enumerate(text) if not ch.isspace()]
        self.s = "".join(text[i] for i in self.idx)
        if self.s.endswith(("。", ".")):
            self.s = self.s[:-1]
            self.idx = self.idx[:-1]
        self.i = 0

    def accept(self, table) -> object | None:
        for key in sorted(table, key=len, reverse=True):
            if self.s.startswith(key, self.i):
                self.i += len(key)
                return table[key] if isinstance(table, dict) else key
        return None

    def error(self, message: str) -> CaptionParseError:
        if self.i >= len(self.s):
            return CaptionParseError(message + ", but the caption ended", self.text, (len(self.text), len(self.text)))
        j = self.i + 1  # the unreadable run: up to the next known word
        while j < len(self.s) and j - self.i < 20 and not any(self.s.startswith(w, j) for w in _ZH_ALL):
            j += 1
        return CaptionParseError(message, self.text, (self.idx[self.i], self.idx[j - 1] + 1))

    def parse(self) -> Spec:
        groups = [self.item()]
        relation = None
        if self.s.startswith("在", self.i) and self._starts_object(self.i + 1):
            self.i += 1
            groups.append(self.item())
            if not self.accept(["的"]):
                raise self.error("expected 的 and a relation (左边, 右边, 上方, 下方)")
            relation = self.accept(_ZH_RELATIONS)
            if relation is None:
                raise self.error("expected a relation: 左边, 右边, 上方 or 下方")
        else:
            listed = False
            while self.accept(["、"]):
                groups.append(self.item())
                listed = True
            if self.accept(["和"]):
                groups.append(self.item())
            elif listed:
                raise self.error("expected 和 before the last item of a list")
        bg = None
        if self.accept(["，", ","]):
            bg = self.accept(_ZH_BACKGROUNDS)
            if bg is None:
                raise self.error("expected 白色背景 or 黑色背景")
        if self.i < len(self.s):
            raise self.error("unexpected text after a complete caption")
        return _finish(groups, relation, bg, self.text)

    def _starts_object(self, j: int) -> bool:
        return any(self.s.startswith(k, j) for k in (*_ZH_COUNTS, *_ZH_TOO_MANY))

    def item(self) -> dict:
        too_many = self.accept(_ZH_TOO_MANY)
        if too_many is not None:
            self.i -= 2
            raise self.error(f"count out of range: a scene holds 1 to {MAX_OBJECTS} objects")
        count = self.accept(_ZH_COUNTS)
        if count is None:
            raise self.error("expected a count (一个, 两个, 三个, 四个) to start an object")
        group: dict = {"shape": None}
        size = self.accept(_ZH_SIZES)
        if size:
            group["size"] = size
        color = self.accept(_ZH_COLORS)
        if color:
            group["color"] = color
        shape = self.accept(_ZH_SHAPES)
        if shape is None:
            raise self.error("expected a colour or a shape (圆形, 正方形, 三角形, 菱形, 星形, 十字形)")
        group["shape"] = shape
        group["count"] = count
        if self.s.startswith("在", self.i) and not self._starts_object(self.i + 1):
            self.i += 1
            cell = self.accept(_ZH_CELLS)
            if cell is None:
                raise self.error("expected a position such as 左上角 after 在")
            if count != 1:
                raise self.error("only a single object can have a position")
            group["cell"] = list(cell)
        return group
