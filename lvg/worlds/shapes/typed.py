"""Prompts the way people type them: surface variants of a caption for training planners.

:func:`typed_variant` keeps the meaning and changes the surface: capitals, full stops, extra
spaces, digits for counts (``3 blue stars``, ``3个蓝色星形``), ``one``/``1`` for ``a``, and
Chinese/ASCII end punctuation. Paraphrases of the wording itself (``left of``, ``under``, ``in the
middle``) come from :func:`lvg.worlds.shapes.captions.spec_to_text` with an ``rng``.
"""

from __future__ import annotations

import random
import re

_EN_NUM = {"two": "2", "three": "3", "four": "4"}
_ZH_NUM = {"一个": ["1个", "一个"], "两个": ["2个", "二个", "两个"], "三个": ["3个"], "四个": ["4个"]}


def _case(text: str, rng: random.Random) -> str:
    u = rng.random()
    if u < 0.4:
        return text[:1].upper() + text[1:]
    if u < 0.5:
        return text.title()
    if u < 0.55:
        return text.upper()
    return text


def typed_variant(text: str, lang: str, rng: random.Random) -> str:
    """A randomly re-typed version of ``text`` in ``lang`` (``"en"`` or ``"zh"``) with the same meaning."""
    if lang == "en":
        words = text.split(" ")
        if rng.random() < 0.5:
            words = [_EN_NUM.get(w, w) for w in words]
        if rng.random() < 0.15:
            words = [("one" if rng.random() < 0.5 else "1") if w in ("a", "an") and i == 0 else w
                     for i, w in enumerate(words)]  # fmt: skip
        if rng.random() < 0.3:
            words = [w + " " * rng.randint(1, 2) if rng.random() < 0.3 else w for w in words]
        text = " ".join(words)
        text = _case(text, rng)
        end = rng.random()
        if end < 0.35:
            text += "."
        elif end < 0.4:
            text += "!"
    elif lang == "zh":
        if rng.random() < 0.5:
            text = re.sub("|".join(_ZH_NUM), lambda m: rng.choice(_ZH_NUM[m.group(0)]), text)
        if rng.random() < 0.15:
            text = text.replace("，", rng.choice([",", "， ", " ，"]))
        end = rng.random()
        if end < 0.4:
            text += "。"
        elif end < 0.45:
            text += "."
    else:
        raise ValueError(f"unknown language {lang!r}; expected 'en' or 'zh'")
    if rng.random() < 0.1:
        text = " " * rng.randint(1, 2) + text + " " * rng.randint(0, 2)
    return text
