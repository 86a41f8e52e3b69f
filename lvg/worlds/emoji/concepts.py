"""Emoji World's concept table: which emoji, their English and Chinese names, measure words and held-out splits.

A concept is an emoji of the chosen categories (default ``Animals & Nature`` and ``Food & Drink``) that has art from
both vendors (``has_img_<vendor>`` in that vendor's ``emoji.json`` and the PNG in its cache) and a CLDR label in
both ``en/compact.json`` and ``zh/compact.json``. Hexcodes are matched across the packages with every ``-FE0F``
(variation selector 16) dropped, since emojibase writes ``1F54A`` where emoji-data writes ``1F54A-FE0F`` and vice
versa. Skin-tone variants are not concepts.

Splits (see :func:`assign_splits`): of the chosen set, ``round(0.1 N)`` emoji are ``unseen`` (never shown to the
image tokenizer), ``round(0.1 N)`` are ``style-held-out`` (shown in one style only, ``seen_style``), the rest are
``train``. Emoji are ranked by ``sha256("SEED:HEXCODE")``, so the split is a pure function of the seed and the set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .assets import EmojiAssetError, EmojiAssets

DEFAULT_CATEGORIES: tuple[str, ...] = ("Animals & Nature", "Food & Drink")
ALL_CATEGORIES: tuple[str, ...] = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink",
                                   "Travel & Places", "Activities", "Objects", "Symbols", "Flags")  # fmt: skip
STYLES: tuple[str, ...] = ("twemoji", "noto")  # the two art styles, named after the art sets
STYLE_VENDOR = {"twemoji": "twitter", "noto": "google"}  # style -> the package's vendor key
SPLIT_SEED = 19
HELD_OUT_FRACTION = 0.1
SPLITS = ("train", "unseen", "style-held-out")

# Chinese measure words (量词): by EN label first, then by subcategory, else 个.
MEASURE_BY_SUBCATEGORY: dict[str, str] = {
    "animal-mammal": "只", "animal-bird": "只", "animal-amphibian": "只", "animal-bug": "只",
    "animal-reptile": "条", "animal-marine": "条",
    "plant-flower": "朵", "plant-other": "棵",
    "drink": "杯",
}  # fmt: skip
MEASURE_BY_NAME: dict[str, str] = {
    # large animals: 头; horse: 匹; animal faces: 张
    **dict.fromkeys(["ox", "cow", "water buffalo", "pig", "boar", "elephant", "bison", "rhinoceros", "hippopotamus",
                     "mammoth", "moose", "donkey", "camel", "two-hump camel"], "头"),
    "horse": "匹",
    **dict.fromkeys(["mouse face", "cow face", "tiger face", "rabbit face", "cat face", "horse face", "monkey face",
                     "dog face", "pig face", "dragon face", "spider web"], "张"),
    # reptiles and sea animals that are not long: 只
    **dict.fromkeys(["turtle", "T-Rex", "sauropod", "crab", "shrimp", "lobster", "octopus", "squid", "oyster", "seal",
                     "jellyfish", "fried shrimp"], "只"),
    # long and thin: 条 / 根
    **dict.fromkeys(["bug", "worm"], "条"),
    **dict.fromkeys(["feather", "banana", "carrot", "cucumber", "ear of corn", "baguette bread", "lollipop"], "根"),
    # plants
    **dict.fromkeys(["maple leaf", "fallen leaf", "leaf fluttering in wind", "bacon"], "片"),
    **dict.fromkeys(["bouquet", "sheaf of rice"], "束"),
    **dict.fromkeys(["herb", "shamrock", "four leaf clover", "seedling", "coral"], "株"),
    "potted plant": "盆", "mushroom": "朵", "brown mushroom": "朵",
    **dict.fromkeys(["rosette", "empty nest", "nest with eggs", "spiral shell", "microbe", "pig nose"], "个"),
    # food and dishware
    "grapes": "串", "cherries": "对", "paw prints": "串", "chopsticks": "双",
    **dict.fromkeys(["fork and knife", "fork and knife with plate"], "副"),
    **dict.fromkeys(["kitchen knife", "spoon", "teapot"], "把"),
    **dict.fromkeys(["pizza", "cheese wedge", "cut of meat", "chocolate bar", "shortcake", "ice"], "块"),
    **dict.fromkeys(["french fries", "green salad"], "份"),
    **dict.fromkeys(["spaghetti", "curry rice"], "盘"),
    **dict.fromkeys(["cooked rice", "steaming bowl"], "碗"),
    **dict.fromkeys(["candy", "peanuts"], "颗"),
    "popcorn": "桶", "bottle with popping cork": "瓶", "baby bottle": "个", "beverage box": "盒",
}  # fmt: skip
MEASURE_DEFAULT = "个"
MEASURE_WORDS: tuple[str, ...] = tuple(sorted({MEASURE_DEFAULT, *MEASURE_BY_SUBCATEGORY.values(),
                                               *MEASURE_BY_NAME.values()}))  # fmt: skip

# English plurals: of the head noun (the words before "of", "with", "in", ...; else the whole name), last word.
_IRREGULAR_PLURAL = {
    "mouse": "mice", "goose": "geese", "knife": "knives", "leaf": "leaves", "wolf": "wolves", "ox": "oxen",
    "man": "men", "woman": "women", "person": "people", "child": "children", "foot": "feet", "tooth": "teeth",
    "tomato": "tomatoes", "potato": "potatoes", "mango": "mangoes", "volcano": "volcanoes", "mosquito": "mosquitoes",
    "sheaf": "sheaves", "fork and knife": "forks and knives",
    **dict.fromkeys(["fish", "deer", "moose", "bison", "sheep", "shrimp", "squid", "ice", "rice", "popcorn", "salt",
                     "butter", "bacon", "spaghetti", "sake", "mate", "dango", "oden", "fondue", "custard", "sushi",
                     "broccoli", "garlic", "ginger", "milk", "cooking"], None),  # unchanged
}  # fmt: skip
_ALREADY_PLURAL = {"men", "women", "people", "children", "feet", "teeth", "mice", "geese"}
_SINGULAR_IN_S = {"canvas", "bus", "atlas", "gas", "lens", "news", "mantis", "rhinoceros", "tennis", "chess"}
_HEAD_BREAKS = {"of", "with", "in", "on", "at", "from", "fluttering", "holding", "without"}
_AN_EXCEPTIONS = {"unicorn": "a", "ewe": "a", "european": "a", "one": "a", "uniform": "a", "unit": "a", "hour": "an"}


@dataclass(frozen=True)
class Concept:
    """One emoji of the world."""

    id: int  # position in the table (sorted by emoji-data's sort_order)
    hexcode: str  # emoji-data's "unified", e.g. "1F408" (the sprites are <hexcode, lower case>.png)
    image: str  # sprite file name in img/<vendor>/64/
    en: str  # CLDR English label, e.g. "cat"
    zh: str  # CLDR Chinese label, e.g. "猫"
    en_plural: str  # e.g. "cats"; equal to ``en`` for already-plural or uncountable names
    article: str  # "a", "an" or "" (already-plural names take no article: "grapes")
    measure: str  # Chinese measure word, e.g. "只"
    category: str
    subcategory: str
    split: str  # "train", "unseen" or "style-held-out"
    seen_style: str | None = None  # for style-held-out: the one style the image tokenizer sees

    def styles_for_training(self) -> tuple[str, ...]:
        """The styles this emoji may appear in when training the image tokenizer."""
        if self.split == "unseen":
            return ()
        return (self.seen_style,) if self.split == "style-held-out" else STYLES

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ConceptTable:
    """The concepts of one category set, with name look-ups."""

    concepts: tuple[Concept, ...]
    categories: tuple[str, ...]
    split_seed: int = SPLIT_SEED

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_en", {c.en.lower(): c for c in self.concepts})
        object.__setattr__(self, "_by_zh", {c.zh: c for c in self.concepts})

    def __len__(self) -> int:
        return len(self.concepts)

    def __iter__(self):
        return iter(self.concepts)

    def get(self, name: str) -> Concept:
        """The concept whose EN (any case) or ZH name is ``name``; an unknown name is a ``KeyError`` naming it."""
        c = self._by_en.get(name.lower()) or self._by_zh.get(name)  # type: ignore[attr-defined]
        if c is None:
            raise KeyError(f"unknown emoji {name!r}")
        return c

    def split(self, name: str) -> tuple[Concept, ...]:
        return tuple(c for c in self.concepts if c.split == name)

    def to_jsonl(self) -> str:
        return "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in self.concepts)


def match_key(hexcode: str) -> str:
    """The hexcode as matched across packages: upper case, every ``-FE0F`` dropped."""
    return hexcode.upper().replace("-FE0F", "")


def article_en(name: str) -> str:
    """``a`` or ``an`` by the first word's sound (a small exception list for "unicorn", "ewe", ...)."""
    first = name.split()[0].lower().split("-")[0]
    if first in _AN_EXCEPTIONS:
        return _AN_EXCEPTIONS[first]
    if first.startswith(("hour", "honest", "honor", "honour")):
        return "an"
    if first.startswith(("uni", "use", "usu", "uto", "eu")):
        return "a"
    return "an" if first[:1] in "aeiou" else "a"


def _plural_word(word: str) -> str:
    low = word.lower()
    if low in _IRREGULAR_PLURAL:
        return _IRREGULAR_PLURAL[low] or word
    if low.endswith("fish"):
        return word
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if low.endswith("y") and low[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    return word + "s"


def is_plural_name(name: str) -> bool:
    """Whether a label is already plural ("grapes", "french fries", "paw prints"): its head noun ends in a plural."""
    head = _head(name.split())
    last = head[-1].lower()
    if last in _ALREADY_PLURAL:
        return True
    return last.endswith("s") and last not in _SINGULAR_IN_S and not last.endswith(("ss", "us", "is"))


def _head(words: list[str]) -> list[str]:
    for i, w in enumerate(words):
        if i > 0 and w.lower() in _HEAD_BREAKS:
            return words[:i]
    return words


def plural_en(name: str) -> str:
    """The English plural of a label, made on the last word of its head noun ("glass of milk" -> "glasses of milk")."""
    if is_plural_name(name):
        return name
    words = name.split()
    head = _head(words)
    whole = " ".join(head).lower()
    if " " in whole and whole in _IRREGULAR_PLURAL:  # multi-word heads ("fork and knife")
        return " ".join([_IRREGULAR_PLURAL[whole] or " ".join(head)] + words[len(head) :])
    i = len(head) - 1
    return " ".join(words[:i] + [_plural_word(words[i])] + words[i + 1 :])


def measure_word(en: str, subcategory: str) -> str:
    """The Chinese measure word of a concept: by its EN label, else by its subcategory, else 个."""
    return MEASURE_BY_NAME.get(en, MEASURE_BY_SUBCATEGORY.get(subcategory, MEASURE_DEFAULT))


def _read_json(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise EmojiAssetError(f"cannot read {path}: {e}") from None
    if not isinstance(data, list):
        raise EmojiAssetError(f"{path}: expected a JSON list of emoji")
    return data


def _labels(path: Path) -> dict[str, str]:
    out = {}
    for i, row in enumerate(_read_json(path)):
        try:
            out.setdefault(match_key(row["hexcode"]), str(row["label"]).strip())
        except (KeyError, TypeError, AttributeError):
            raise EmojiAssetError(f"{path}: entry {i} lacks 'hexcode' or 'label'") from None
    return out


def build_concepts(
    assets: EmojiAssets, categories: Iterable[str] = DEFAULT_CATEGORIES, split_seed: int = SPLIT_SEED
) -> ConceptTable:
    """The concept table of ``categories`` (any of :data:`ALL_CATEGORIES`) from a complete cache.

    An emoji is kept when both vendors have its art and both languages have its label; an EN or ZH name that two
    emoji share keeps only the first by sort order (names must be unique to be prompted).
    """
    cats = tuple(dict.fromkeys(categories))
    if not cats:
        raise ValueError("categories is empty; name at least one emoji category")
    unknown = [c for c in cats if c not in ALL_CATEGORIES]
    if unknown:
        raise ValueError(f"unknown emoji category {unknown[0]!r}; expected some of {list(ALL_CATEGORIES)}")
    en, zh = _labels(assets.labels["en"]), _labels(assets.labels["zh"])
    rows_by_vendor = {v: _read_json(p) for v, p in assets.emoji_json.items()}
    has_art: dict[str, set[str]] = {}
    for vendor, rows in rows_by_vendor.items():
        on_disk = {p.name for p in assets.sprites[vendor].glob("*.png")}
        has_art[vendor] = {r.get("image") for r in rows if r.get(f"has_img_{vendor}") and r.get("image") in on_disk}
    base = rows_by_vendor[STYLE_VENDOR[STYLES[0]]]
    found: list[tuple] = []
    seen_en: set[str] = set()
    seen_zh: set[str] = set()
    for r in sorted(base, key=lambda r: (r.get("sort_order", 0), r.get("unified", ""))):
        if r.get("category") not in cats or not all(r.get("image") in has_art[v] for v in has_art):
            continue
        key = match_key(str(r.get("unified", "")))
        if key not in en or key not in zh:
            continue
        name_en, name_zh = en[key], zh[key]
        if name_en.lower() in seen_en or name_zh in seen_zh:
            continue
        seen_en.add(name_en.lower())
        seen_zh.add(name_zh)
        found.append((r["unified"], r["image"], name_en, name_zh, r["category"], r.get("subcategory", "")))
    if not found:
        raise EmojiAssetError(f"no emoji in categories {list(cats)} have art from both vendors and EN/ZH labels")
    splits = assign_splits([f[0] for f in found], split_seed)
    concepts = tuple(
        Concept(i, h, img, ne, nz, plural_en(ne), "" if is_plural_name(ne) else article_en(ne), measure_word(ne, sub),
                cat, sub, *splits[h])
        for i, (h, img, ne, nz, cat, sub) in enumerate(found)
    )  # fmt: skip
    return ConceptTable(concepts, cats, split_seed)


def assign_splits(hexcodes: list[str], seed: int = SPLIT_SEED) -> dict[str, tuple[str, str | None]]:
    """``hexcode -> (split, seen_style)``: the ``round(0.1 N)`` lowest-ranked by ``sha256("SEED:HEXCODE")`` are
    ``unseen``, the next ``round(0.1 N)`` ``style-held-out`` (seen in twemoji and noto alternately), the rest train."""
    ranked = sorted(hexcodes, key=lambda h: hashlib.sha256(f"{seed}:{h}".encode()).hexdigest())
    k = round(HELD_OUT_FRACTION * len(ranked))
    out: dict[str, tuple[str, str | None]] = {}
    for i, h in enumerate(ranked):
        if i < k:
            out[h] = ("unseen", None)
        elif i < 2 * k:
            out[h] = ("style-held-out", STYLES[(i - k) % 2])
        else:
            out[h] = ("train", None)
    return out
