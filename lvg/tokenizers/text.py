"""Byte-level BPE text tokenizer for captions (Hugging Face ``tokenizers``).

Byte-level, so any UTF-8 text encodes (free text, other languages) even though the merges
are learned on one world's captions (the caller passes them: Shapes World's are
:func:`lvg.worlds.shapes.captions.caption_corpus`). Saved as a standard ``tokenizer.json`` (+ config files)
that ``transformers.PreTrainedTokenizerFast`` / ``AutoTokenizer`` load directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lvg.files import check_regular_file

PAD, BOS, EOS, BOI, EOI = "<pad>", "<bos>", "<eos>", "<boi>", "<eoi>"
LANG_TOKENS = {"en": "<en>", "zh": "<zh>"}  # which language a caption is asked in
# Task tokens reserved for the unified model, plus spares so later tasks need no re-training.
TASK_TOKENS = ["<t2i>", "<i2t>", "<vqa>", "<edit>", "<extra_0>", "<extra_1>", "<extra_2>", "<extra_3>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, BOI, EOI, *LANG_TOKENS.values(), *TASK_TOKENS]
MAX_TEXT_TOKENS = 256  # longest caption the models accept, in tokens
CJK_PATTERN = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE on ``texts`` (a world's captions, e.g. EN + ZH)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    # CJK characters and punctuation become pre-tokens of their own, so merges never glue
    # attributes together ("色圆形在"); Chinese tokens are characters, English ones words.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CJK_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer, extra_specials: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer over ``tok`` with lvg's special-token roles set."""
    extra = SPECIAL_TOKENS[3:] if extra_specials is None else extra_specials
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=MAX_TEXT_TOKENS,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=extra,
    )


def save_text_tokenizer(tok: PreTrainedTokenizerFast, path: str | os.PathLike) -> Path:
    """Save to ``path`` as ``tokenizer.json`` + ``tokenizer_config.json``.

    The config names ``PreTrainedTokenizerFast`` so that transformers 4.x and 5.x both load it.
    """
    path = Path(path)
    tok.save_pretrained(path)
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=MAX_TEXT_TOKENS)
    cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_text_tokenizer(path: str | os.PathLike, required: list[str] | None = None) -> PreTrainedTokenizerFast:
    """Load a saved text tokenizer folder (or a bare ``tokenizer.json``), checking its specials.

    ``required`` lists the special tokens that must exist (default: all of lvg's; a tokenizer kept
    from a grown Hugging Face model only needs the ones the vocabulary layout uses).
    """
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    check_regular_file(file)  # a FIFO would hang the reader
    if not file.is_file():
        raise FileNotFoundError(f"no tokenizer.json at {path}")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
        raise ValueError(f"{file} is not a valid tokenizer.json: {e}") from None
    missing = [t for t in (SPECIAL_TOKENS if required is None else required) if tok.token_to_id(t) is None]
    if missing:
        raise ValueError(f"{file} lacks lvg's special tokens {missing}")
    return wrap(tok, [s for s in SPECIAL_TOKENS[3:] if tok.token_to_id(s) is not None])
