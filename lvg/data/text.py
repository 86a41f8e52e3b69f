"""Text conventions every world shares: which language a text is in, and how a reading LM writes its answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lvg.data.layout import Layout

CANNOT = {"en": "cannot answer", "zh": "无法回答"}  # what a reading LM says to a question it cannot ground
WORK_SEP = "=>"  # the reading LM writes its working, then this, then the answer
# Why a planner that analyses prompts refuses one (its refusal tokens, in this order): words outside its world, more
# objects than fit, a contradiction, zero or a negative count. Every world's prompt-analysis data uses these.
REFUSAL_REASONS: tuple[str, ...] = ("unknown", "count", "contradiction", "zero")
# An editor's reasons (every world's edit data uses these): the planner's, and an object the image does not hold (or
# one that several objects fit).
EDIT_REFUSAL_REASONS: tuple[str, ...] = (*REFUSAL_REASONS, "missing")


def detect_language(text: str) -> str:
    """'zh' if the text holds any CJK character or full-width punctuation, else 'en'."""
    return "zh" if re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", text) else "en"


def final_answer(text: str) -> str:
    """The answer in a reading LM's output: what follows its working (see :attr:`Question.target`)."""
    return text.rsplit(WORK_SEP, 1)[-1].strip()


@dataclass(frozen=True)
class Question:
    """A visual question a world asks about a scene, with its answer (every world's reading stream uses these)."""

    kind: str  # one of the world's question types
    lang: str
    text: str
    answer: str
    work: str = ""  # the steps before the answer (e.g. a count's matching objects, a relation's two cells)

    @property
    def target(self) -> str:
        """What the reading LM learns to write: ``work => answer``, or the answer alone."""
        return f"{self.work} {WORK_SEP} {self.answer}" if self.work else self.answer


@dataclass(frozen=True)
class ReadingSample:
    """One item of a world's reading stream: a layout and what a reading LM learns to write about it."""

    index: int
    layout: Layout  # in reading order
    lang: str
    question: str | None  # None: the task is the caption
    answer: str  # the text to learn: the caption, or the question's target (its working, then the answer)
    kind: str  # "caption" or a question type
