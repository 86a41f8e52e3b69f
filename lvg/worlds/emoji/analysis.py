"""Prompt analysis data for Emoji World: prompts the planner must refuse, with the reason.

Each refusal starts from a caption of a fresh scene (:func:`refusal_prompt`) and breaks it one way:

- ``unknown``: one emoji replaced by an emoji name from outside the world's categories (CLDR names of the other
  categories: "hammer" / "锤子", "kite" / "风筝", ...), in the world's own grammar;
- ``count``: more emoji than a canvas holds (five or more of one kind, or groups adding up to more than four);
- ``contradiction``: two sizes or two styles for one emoji ("a small large cat", "一只推特风格的谷歌风格的猫");
- ``zero``: zero, "no" or a negative count.

The outside names are split by a hash of their English name: :data:`HELD_OUT_SHARE` of them never train and only
measure (``benchmarks/emoji_prompt_analysis.py``), so a refusal of a held-out name is learned, not remembered.
Item ``i`` is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from lvg.data.text import REFUSAL_REASONS

from .captions import BG_ZH, NUM_EN, NUM_ZH, SIZE_ZH, STYLE_EN, STYLE_ZH, spec_to_text
from .concepts import ALL_CATEGORIES, Concept, ConceptTable

HELD_OUT_SHARE = 0.2
REASON_WEIGHTS = {"unknown": 0.45, "count": 0.25, "contradiction": 0.12, "zero": 0.18}
BIG_EN = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten", 12: "twelve", 20: "twenty",
          100: "one hundred"}  # fmt: skip
BIG_ZH = {5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十", 12: "十二", 20: "二十", 100: "一百"}
ZERO_EN = ["zero", "no", "0", "-1", "-2", "-3", "minus one", "minus two", "negative three"]
ZERO_ZH = ["零{m}", "0{m}", "-1{m}", "-2{m}", "负一{m}", "负两{m}", "没有"]
assert set(REASON_WEIGHTS) == set(REFUSAL_REASONS)


def is_held_out(name: str) -> bool:
    """Whether an outside emoji name only measures (never trains)."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < HELD_OUT_SHARE


@dataclass(frozen=True)
class Outside:
    """The emoji names outside a world's categories, split into training and held-out names."""

    train: tuple[Concept, ...]
    held_out: tuple[Concept, ...]
    table: ConceptTable  # every category (the world's and the outside names), for the grammar's words

    @classmethod
    def of(cls, full: ConceptTable, world: ConceptTable) -> Outside:
        inside = {c.en for c in world} | {c.zh for c in world}
        # names a prompt can hold: no "flag: X" / "family: a, b" lists, none that the world's names already use
        names = [c for c in full if c.en not in inside and c.zh not in inside and not set(c.en + c.zh) & set(":,，：")]
        if not names:
            raise ValueError("no emoji names outside the world's categories: nothing to learn to refuse as unknown")
        train = [c for c in names if not is_held_out(c.en)]
        held = [c for c in names if is_held_out(c.en)]
        if not held or not train:  # a tiny cache: one name out (a single name both trains and measures)
            train, held = names[:-1] or names, names[-1:]
        return cls(tuple(train), tuple(held), full)


def outside_names(assets, world: ConceptTable) -> Outside:
    """:class:`Outside` for a world's table, from the whole cache's concept table."""
    from .concepts import build_concepts

    return Outside.of(build_concepts(assets, ALL_CATEGORIES, world.split_seed), world)


def _group_en(c: Concept, count: str, size: str | None, style: str | None, plural: bool) -> str:
    words = [w for w in (size, STYLE_EN.get(style or "")) if w]
    return " ".join([count, *words, c.en_plural if plural else c.en])


def _group_zh(c: Concept, count: str, size: str | None, style: str | None) -> str:
    return count + c.measure + SIZE_ZH.get(size or "", "") + STYLE_ZH.get(style or "", "") + c.zh


def _with_bg(text: str, bg: str | None, lang: str) -> str:
    if bg is None:
        return text
    return f"{text} on a {bg} background" if lang == "en" else f"{text}，{BG_ZH[bg]}背景"


def refusal_prompt(spec: dict, lang: str, reason: str, rng: random.Random, outside: Outside,
                   held_out: bool = False) -> str:  # fmt: skip
    """A prompt in ``lang`` made from a caption's ``spec`` that must be refused for ``reason``."""
    table, groups, bg = outside.table, spec["groups"], spec.get("bg")
    if reason == "unknown":
        names = outside.held_out if held_out else outside.train
        new = [dict(g) for g in groups]
        k = rng.randrange(len(new))
        new[k]["emoji"] = rng.choice(names).en
        return spec_to_text({**spec, "groups": new}, table, lang)
    g = rng.choice(groups)
    c = table.get(g["emoji"])
    size, style = g.get("size"), g.get("style")
    if reason == "count":
        if len(groups) >= 2 and rng.random() < 0.4:  # groups of one to four that add up to more than four
            counts = [rng.randint(1, 4) for _ in groups]
            while sum(counts) <= 4:
                counts[rng.randrange(len(counts))] = rng.randint(2, 4)
            new = [{k: v for k, v in gg.items() if k != "cell"} | {"count": n} for gg, n in zip(groups, counts)]
            return spec_to_text({"groups": new} | ({"bg": bg} if bg else {}), table, lang)
        n = rng.choice(list(BIG_EN))
        if lang == "en":
            count = BIG_EN[n] if rng.random() < 0.7 else str(n)
            return _with_bg(_group_en(c, count, size, style, plural=True), bg, lang)
        count = BIG_ZH[n] if rng.random() < 0.7 else str(n)
        return _with_bg(_group_zh(c, count, size, style), bg, lang)
    if reason == "contradiction":
        if rng.random() < 0.5:
            sizes = ["small", "large"]
            rng.shuffle(sizes)
            text = (f"{NUM_EN[1]} {sizes[0]} {sizes[1]} {c.en}" if lang == "en"
                    else f"{NUM_ZH[1]}{c.measure}{SIZE_ZH[sizes[0]]}{SIZE_ZH[sizes[1]]}{c.zh}")  # fmt: skip
        else:
            styles = ["twemoji", "noto"]
            rng.shuffle(styles)
            text = (f"a {STYLE_EN[styles[0]]} {STYLE_EN[styles[1]]} {c.en}" if lang == "en"
                    else f"{NUM_ZH[1]}{c.measure}{STYLE_ZH[styles[0]]}{STYLE_ZH[styles[1]]}{c.zh}")  # fmt: skip
        return _with_bg(text, bg, lang)
    if reason == "zero":
        if lang == "en":
            word = rng.choice(ZERO_EN)
            one = word in ("-1", "minus one")
            return _with_bg(_group_en(c, word, size, style, plural=not one), bg, lang)
        word = rng.choice(ZERO_ZH)
        if word == "没有":
            return _with_bg(f"没有{c.zh}", bg, lang)
        return _with_bg(word.format(m="") + _group_zh(c, "", size, style), bg, lang)
    raise ValueError(f"unknown refusal reason {reason!r}; expected one of {list(REFUSAL_REASONS)}")


def refusal_sample(index: int, seed: int, world, outside: Outside, held_out: bool = False,
                   reason: str | None = None) -> tuple[str, str]:  # fmt: skip
    """Item ``index`` of the refusal stream of ``seed``: ``(prompt, reason)`` (``reason`` fixes the kind).
    ``world``: the :class:`~lvg.worlds.emoji.world.EmojiWorld` whose scenes and captions it starts from."""
    from .scenes import sample_scene

    rng = random.Random(f"lvg-emoji-refuse:{seed}:{index}:{held_out}")
    lang = rng.choice(("en", "zh"))
    why = reason or rng.choices(list(REASON_WEIGHTS), list(REASON_WEIGHTS.values()))[0]
    spec = world.caption(sample_scene(rng, world.table, world.cfg.scene_config()), rng).spec
    return refusal_prompt(spec, lang, why, rng, outside, held_out), why
