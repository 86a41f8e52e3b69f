"""New words for a fine-tuned LM's text tokenizer: the frequent words of new data that the base tokenizer spells in
pieces ("cockroach" as c/o/c/k/ro/ac/h, "蟑" as three bytes), added to it as whole tokens (Hugging Face
``add_tokens``), each after the ids the base already has.

A Latin word is a run of letters, added with ``single_word=True`` so it never matches inside a longer word. Chinese is
written without spaces, so ``cut`` says what a Chinese word is: one CJK ideograph (``chars``), or (``pieces``) a piece
of the stretches of ideographs the base lacks, cut by a byte-pair encoding learned from the new texts themselves
(Hugging Face ``tokenizers``' ``BpeTrainer``): a name written often, "海螺", is one token instead of characters the
LM must learn to write in order, and ideographs the base has keep its rows.

Added tokens match leftmost-longest ("海螺" before "海"). Decoding gives the text back exactly."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

__all__ = ["CUTS", "add_words", "find_new_words", "word_pieces"]

LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}")
IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RUN = re.compile(f"[{IDEOGRAPH}]+")
CUTS = ("chars", "pieces")  # how find_new_words cuts Chinese into words


def find_new_words(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, max_words: int, min_count: int = 5,
                   cut: str = "chars") -> list[str]:  # fmt: skip
    """Up to ``max_words`` words of ``texts`` (at least ``min_count`` times each) that ``tokenizer`` spells in two
    or more pieces (a Latin word as it follows a space), most frequent first (ties: in code-point order); Chinese cut
    as ``cut`` says (the module's docstring)."""
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {', '.join(CUTS)}, got {cut!r}")
    texts = [t for t in texts if t]
    runs = [run for t in texts for run in CJK_RUN.findall(t)]
    counts = Counter(w for t in texts for w in LATIN.findall(t))
    if cut == "chars":
        counts.update(ch for run in runs for ch in run)
    else:
        counts.update(cjk_pieces(runs, tokenizer, min_count))
    words = {w: n for w, n in counts.items() if n >= min_count and len(word_pieces(tokenizer, w)) > 1}
    return sorted(words, key=lambda w: (-words[w], w))[: max(0, max_words)]


def cjk_pieces(runs: list[str], tokenizer: PreTrainedTokenizerBase, min_count: int) -> Counter[str]:
    """How often each piece occurs when the stretches of ``runs`` made of ideographs that ``tokenizer`` lacks (it
    spells them in bytes) are cut by a byte-pair encoding trained on those stretches (pairs merged while they occur
    ``min_count`` times, and at least twice). Ideographs the base knows stay as it spells them, so its trained rows
    keep their use."""
    from tokenizers import Tokenizer, models, trainers

    unknown = sorted({ch for run in runs for ch in run if len(word_pieces(tokenizer, ch)) > 1})
    if not unknown:
        return Counter()
    stretch = re.compile(f"[{''.join(unknown)}]+")  # ideographs only (CJK_RUN): nothing to escape
    stretches = [s for run in runs for s in stretch.findall(run)]
    bpe = Tokenizer(models.BPE())
    bpe.train_from_iterator(stretches, trainers.BpeTrainer(vocab_size=1_000_000, min_frequency=max(2, min_count),
                                                           show_progress=False))  # fmt: skip
    return Counter(p for enc in bpe.encode_batch(stretches) for p in enc.tokens)


def word_pieces(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """The ids ``tokenizer`` spells ``word`` with: a Latin word as it follows a space, Chinese as it is."""
    return tokenizer(" " + word if LATIN.fullmatch(word) else word, add_special_tokens=False)["input_ids"]


def add_words(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` with ``words`` added as whole tokens, in order, after its own ids (a Latin word only
    where it stands alone, never inside a longer word; Chinese wherever it occurs)."""
    out = copy.deepcopy(tokenizer)
    out.add_tokens([AddedToken(w, single_word=bool(LATIN.fullmatch(w)), normalized=False) for w in words])
    return out
