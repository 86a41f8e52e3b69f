"""New words for a fine-tuned LM's text tokenizer: the frequent words of new data that the base tokenizer spells in
pieces ("cockroach" as c/o/c/k/ro/ac/h, "蟑" as three bytes), added to it as whole tokens (Hugging Face
``add_tokens``), each after the ids the base already has.

A word is a run of Latin letters, added with ``single_word=True`` so it never matches inside a longer word, or one
CJK ideograph (Chinese is written without spaces, so lvg adds its characters, not guessed word boundaries). Decoding
gives the text back exactly."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

__all__ = ["add_words", "find_new_words", "word_pieces"]

WORD = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # Latin word | CJK ideograph


def find_new_words(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, max_words: int,
                   min_count: int = 5) -> list[str]:  # fmt: skip
    """Up to ``max_words`` words of ``texts`` (at least ``min_count`` times each) that ``tokenizer`` spells in two
    or more pieces (a Latin word as it follows a space), most frequent first (ties: in code-point order)."""
    counts = Counter(w for t in texts if t for w in WORD.findall(t))
    words = {w: n for w, n in counts.items() if n >= min_count and len(word_pieces(tokenizer, w)) > 1}
    return sorted(words, key=lambda w: (-words[w], w))[: max(0, max_words)]


def word_pieces(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """The ids ``tokenizer`` spells ``word`` with: a Latin word as it follows a space, an ideograph alone."""
    return tokenizer(" " + word if len(word) > 1 else word, add_special_tokens=False)["input_ids"]


def add_words(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` with ``words`` added as whole tokens, in order, after its own ids."""
    out = copy.deepcopy(tokenizer)
    out.add_tokens([AddedToken(w, single_word=len(w) > 1, normalized=False) for w in words])
    return out
