"""New words for a fine-tuned LM's text tokenizer: the frequent words of new data that the base tokenizer spells in
pieces ("cockroach" as c/o/c/k/ro/ac/h, "蟑" as three bytes), added to it as whole tokens, each after the ids the
base already has.

A Latin word is taken as the base's pre-tokenizer cuts the text: with the space before it (" boar") or without one,
where it starts a text or follows a hyphen ("bottom" as an answer, "facing" in "front-facing"). The two are different
words, as they are to the base ("Ġbottom" is one token and "bottom" three). In a byte-pair (BPE) base, each joins the
model's vocabulary (Hugging Face ``tokenizers``, ``ignore_merges``: a piece of text that is a whole vocabulary entry is
one token), so " boar" is one token wherever it occurs and text with no new word keeps the base's tokens. In
another base, the word is an added token matched only where it stands alone. Each new word with a space brings its
twin without one ("boar", however rare: a reading LM starts an answer with it), and a fine-tuned LM ties the twin's
rows to the word's (:func:`twin_ids`, ``LowRankRows``), so the twin knows what the word learns.

Chinese is written without spaces, so ``cut`` says what a Chinese word is: one CJK ideograph (``chars``), or
(``pieces``) a piece of the stretches of ideographs the base lacks, cut by a byte-pair encoding learned from the new
texts themselves (``tokenizers``' ``BpeTrainer``): a name written often, "海螺", is one token instead of characters
the LM must learn to write in order, and ideographs the base has keep its rows. Chinese words are added tokens
(``add_tokens``), matched leftmost-longest ("海螺" before "海") wherever they occur.

Decoding gives the text back exactly."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer
from transformers import PreTrainedTokenizerBase

__all__ = ["CUTS", "WORDS_FORMAT", "add_words", "find_new_words", "start_pieces", "twin_ids", "word_pieces"]

LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}")
WORD = re.compile(f" ?{LATIN.pattern}")  # a Latin word as a text holds it: after a space, or not
IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RUN = re.compile(f"[{IDEOGRAPH}]+")
CUTS = ("chars", "pieces")  # how find_new_words cuts Chinese into words
WORDS_FORMAT = 2  # how add_words adds words (an adapter records it: 2, Latin words as the pre-tokenizer cuts them)


def find_new_words(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, max_words: int, min_count: int = 5,
                   cut: str = "chars") -> list[str]:  # fmt: skip
    """Up to ``max_words`` words of ``texts`` (at least ``min_count`` times each) that ``tokenizer`` spells in two
    or more pieces (or as its unknown token), most frequent first (ties: in code-point order): Latin words as
    :func:`latin_words` finds them (" boar", "bottom"), Chinese cut as ``cut`` says (the module's docstring). Then
    the twin without its space of each new Latin word with one (" boar" brings "boar", however rare: an answer
    starts with it), where the base lacks it and it is not chosen already."""
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {', '.join(CUTS)}, got {cut!r}")
    texts = [t for t in texts if t]
    runs = [run for t in texts for run in CJK_RUN.findall(t)]
    counts = Counter(w for t in texts for w in latin_words(t, tokenizer))
    if cut == "chars":
        counts.update(ch for run in runs for ch in run)
    else:
        counts.update(cjk_pieces(runs, tokenizer, min_count))
    words = {w: n for w, n in counts.items() if n >= min_count and not known(tokenizer, w)}
    chosen = sorted(words, key=lambda w: (-words[w], w))[: max(0, max_words)]
    bare = [w[1:] for w in chosen if w.startswith(" ") and WORD.fullmatch(w) and not known(tokenizer, w[1:])]
    return chosen + [w for w in bare if w not in chosen]  # each new " boar" with its twin "boar" (twin_ids)


def latin_words(text: str, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The Latin words of ``text`` as ``tokenizer``'s pre-tokenizer cuts it (each with the space before it where
    it has one), or as runs of letters after an optional space where it has no pre-tokenizer."""
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    parts = [text[a:b] for _, (a, b) in pre.pre_tokenize_str(text)] if pre else WORD.findall(text)
    return [p for p in parts if WORD.fullmatch(p)]


def cjk_pieces(runs: list[str], tokenizer: PreTrainedTokenizerBase, min_count: int) -> Counter[str]:
    """How often each piece occurs when the stretches of ``runs`` made of ideographs that ``tokenizer`` lacks (it
    spells them in bytes) are cut by a byte-pair encoding trained on those stretches (pairs merged while they occur
    ``min_count`` times, and at least twice). Ideographs the base knows stay as it spells them, so its trained rows
    keep their use."""
    from tokenizers import models, trainers

    unknown = sorted({ch for run in runs for ch in run if not known(tokenizer, ch)})
    if not unknown:
        return Counter()
    stretch = re.compile(f"[{''.join(unknown)}]+")  # ideographs only (CJK_RUN): nothing to escape
    stretches = [s for run in runs for s in stretch.findall(run)]
    bpe = Tokenizer(models.BPE())
    bpe.train_from_iterator(stretches, trainers.BpeTrainer(vocab_size=1_000_000, min_frequency=max(2, min_count),
                                                           show_progress=False))  # fmt: skip
    return Counter(p for enc in bpe.encode_batch(stretches) for p in enc.tokens)


def known(tokenizer: PreTrainedTokenizerBase, word: str) -> bool:
    """Whether ``tokenizer`` spells ``word`` as one token of its own (not in pieces, not as its unknown token)."""
    ids = word_pieces(tokenizer, word)
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


def word_pieces(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """The ids ``tokenizer`` spells ``word`` with (a Latin word's leading space, if any, included)."""
    return tokenizer(word, add_special_tokens=False)["input_ids"]


def twin_ids(tokenizer: PreTrainedTokenizerBase, first: int) -> dict[int, int]:
    """{id: twin id} for the tokens from id ``first`` on that are Latin words without their space ("boar") whose
    spaced twin (" boar") is one token of ``tokenizer``: the rows a fine-tuned LM ties (``LowRankRows``)."""
    out = {}
    for i in range(first, len(tokenizer)):
        word = tokenizer.decode([i], clean_up_tokenization_spaces=False)
        if WORD.fullmatch(word) and not word.startswith(" ") and known(tokenizer, " " + word):
            out[i] = word_pieces(tokenizer, " " + word)[0]
    return out


def start_pieces(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    """The ids of ``tokenizer`` (the base) whose rows a new ``word``'s rows start at: the same word with or without
    its space where the base has that as one token ("bottom" at " bottom"), else the word's own pieces."""
    other = word[1:] if word.startswith(" ") else " " + word
    return word_pieces(tokenizer, other if WORD.fullmatch(word) and known(tokenizer, other) else word)


def add_words(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` with ``words`` added as whole tokens after its own ids: first, in order, the Latin
    words (" boar", "bottom") a BPE base takes into its vocabulary, matched as whole pieces of text; then, in order,
    the rest (Chinese, and Latin words in another base) as added tokens (the module's docstring)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model, pre = state["model"], tokenizer.backend_tokenizer.pre_tokenizer
    added, next_id, whole = [], len(tokenizer), False
    for w in words:
        cut = pre.pre_tokenize_str(w) if pre else []
        if model.get("type") == "BPE" and WORD.fullmatch(w) and len(cut) == 1:
            whole = True
            if cut[0][0] not in model["vocab"]:  # (an entry its merges never reach is whole from now on)
                model["vocab"][cut[0][0]] = next_id  # the word as the model sees it: "Ġboar" in a byte-level BPE
                next_id += 1
        else:
            added.append(AddedToken(w, single_word=bool(WORD.fullmatch(w)), normalized=False))
    out = copy.deepcopy(tokenizer)
    if whole:
        model["ignore_merges"] = True  # a piece that is a whole entry is that entry (the base's texts keep theirs)
        out._tokenizer = Tokenizer.from_str(json.dumps(state))
    out.add_tokens(added)
    return out
