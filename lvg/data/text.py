"""Text conventions every world shares: which language a text is in, and how a reading LM writes its answer."""

from __future__ import annotations

import re

CANNOT = {"en": "cannot answer", "zh": "无法回答"}  # what a reading LM says to a question it cannot ground
WORK_SEP = "=>"  # the reading LM writes its working, then this, then the answer


def detect_language(text: str) -> str:
    """'zh' if the text holds any CJK character or full-width punctuation, else 'en'."""
    return "zh" if re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", text) else "en"


def final_answer(text: str) -> str:
    """The answer in a reading LM's output: what follows its working (see
    :attr:`lvg.worlds.shapes.reading.Question.target`)."""
    return text.rsplit(WORK_SEP, 1)[-1].strip()
