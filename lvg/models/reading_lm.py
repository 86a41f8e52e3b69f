"""The reading LM's sequences: a causal LM reads a layout (what the reader saw) and writes text.

Same vocabulary as the planner (:class:`~lvg.models.planner.PlanVocab`: text tokens, then layout tokens).
Two tasks, marked with the text tokenizer's special tokens::

    caption:  <bos> <i2t> <en|zh> <layout> BG (LABEL x0 y0 x1 y1)* </layout> caption <eos>
    question: <bos> <vqa> question <layout> BG (LABEL x0 y0 x1 y1)* </layout> answer <eos>

The loss covers the text after ``</layout>`` and the ``<eos>``. Training right-pads, generation
left-pads; position ids are ``cumsum(attention_mask) - 1`` in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from lvg.models.padding import right_padded_batch
from lvg.models.planner import PlanVocab

TASK_TOKENS = ("<i2t>", "<vqa>", "<en>", "<zh>")


@dataclass(frozen=True)
class ReadingTokens:
    """Ids of the task markers in the text tokenizer."""

    i2t: int
    vqa: int
    en: int
    zh: int

    @classmethod
    def from_tokenizer(cls, text_tok: PreTrainedTokenizerBase) -> ReadingTokens:
        ids = [text_tok.convert_tokens_to_ids(t) for t in TASK_TOKENS]
        missing = [t for t, i in zip(TASK_TOKENS, ids) if i is None or i == text_tok.unk_token_id]
        if missing:
            raise ValueError(f"the text tokenizer lacks the reading task tokens {missing}")
        return cls(*ids)

    def lang(self, lang: str) -> int:
        if lang not in ("en", "zh"):
            raise ValueError(f"unknown language {lang!r}; expected 'en' or 'zh'")
        return self.en if lang == "en" else self.zh


def reading_prompt(vocab: PlanVocab, tasks: ReadingTokens, layout_ids: list[int], lang: str | None = None,
                   question_ids: list[int] | None = None) -> list[int]:  # fmt: skip
    """The prompt row (global ids) of a caption (``lang``) or a question (``question_ids``) about a layout whose
    local layout ids (``<layout> ... </layout>``) are ``layout_ids``."""
    if (lang is None) == (question_ids is None):
        raise ValueError("a reading prompt is either a caption (lang) or a question (question_ids)")
    head = [vocab.bos_id, tasks.i2t, tasks.lang(lang)] if lang else [vocab.bos_id, tasks.vqa, *question_ids]
    return head + [vocab.layout_offset + k for k in layout_ids]


def reading_batch(prompts: list[list[int]], answers: list[list[int]], vocab: PlanVocab) -> dict[str, torch.Tensor]:
    """Right-padded training rows ``prompt answer <eos>``: input_ids, attention_mask, position_ids, labels [B, T]
    (labels IGNORE except the answer and its ``<eos>``)."""
    rows = [[*p, *a, vocab.eos_id] for p, a in zip(prompts, answers, strict=True)]
    return right_padded_batch(rows, [len(p) for p in prompts], vocab.pad_id)
