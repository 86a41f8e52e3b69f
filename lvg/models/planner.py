"""The planner: a causal LM (Hugging Face Llama) that reads a prompt and writes a layout.

Vocabulary: ids ``[0, text_vocab_size)`` are the text tokenizer's; layout token ``k`` (local id of
:class:`~lvg.tokenizers.layout.LayoutTokenizer`) is id ``text_vocab_size + k``. Sequence::

    <bos> prompt <layout> BG (LABEL x0 y0 x1 y1)* </layout>

Training right-pads, generation left-pads; position ids are always ``cumsum(attention_mask) - 1``, so
both see the same positions. The loss covers the layout tokens after ``<layout>`` (``</layout>``
included). Classifier-free guidance's unconditional prompt is ``<bos> <layout>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from lvg.component import config_from_dict, read_json_object
from lvg.files import check_regular_file
from lvg.models.padding import IGNORE, left_pad, right_padded_batch
from lvg.models.unified import CausalLM, load_lm, save_lm
from lvg.ranges import bounded, check_ranges
from lvg.tokenizers.layout import LAYOUT, LayoutTokenizer, LayoutTokenizerConfig

MAX_PROMPT_TOKENS = 256  # longest prompt any planner accepts (its own limit may be lower)


@dataclass(frozen=True)
class PlanVocab:
    """Where text tokens and layout tokens live in the planner LM's vocabulary."""

    text_vocab_size: int = bounded(0, None)
    pad_id: int = bounded(0, None)
    bos_id: int = bounded(0, None)
    eos_id: int = bounded(0, None)
    layout: LayoutTokenizerConfig
    max_text_tokens: int = bounded(1, MAX_PROMPT_TOKENS, default=96)

    def __post_init__(self) -> None:
        if isinstance(self.layout, dict):
            object.__setattr__(self, "layout", LayoutTokenizerConfig(**self.layout))
        check_ranges(self, prefix="plan vocabulary: ")
        if max(self.pad_id, self.bos_id, self.eos_id) >= self.text_vocab_size:
            raise ValueError("plan vocabulary: special token ids must lie inside the text vocabulary")

    @property
    def layout_offset(self) -> int:
        return self.text_vocab_size

    @cached_property
    def layout_tokenizer(self) -> LayoutTokenizer:
        return LayoutTokenizer(self.layout)

    @property
    def vocab_size(self) -> int:
        return self.text_vocab_size + self.layout_tokenizer.vocab_size

    @property
    def max_length(self) -> int:
        return 1 + self.max_text_tokens + self.layout_tokenizer.max_length

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layout"] = self.layout.to_dict()
        return d

    @classmethod
    def from_tokenizer(cls, text_tok: PreTrainedTokenizerBase, layout: LayoutTokenizerConfig,
                       max_text_tokens: int = 96) -> PlanVocab:  # fmt: skip
        ids = {n: text_tok.convert_tokens_to_ids(t) for n, t in (("pad", "<pad>"), ("bos", "<bos>"), ("eos", "<eos>"))}
        missing = [n for n, i in ids.items() if i is None or i == text_tok.unk_token_id]
        if missing:
            raise ValueError(f"the text tokenizer lacks lvg's special tokens: {missing}")
        return cls(len(text_tok), ids["pad"], ids["bos"], ids["eos"], layout, max_text_tokens)


@dataclass(frozen=True)
class PlannerSize:
    """Transformer dimensions of a planner LM."""

    hidden_size: int = 192
    num_hidden_layers: int = 5
    num_attention_heads: int = 6
    intermediate_size: int = 512


def build_planner_lm(vocab: PlanVocab, size: PlannerSize | None = None) -> LlamaForCausalLM:
    """A fresh Llama (RMSNorm, RoPE, SwiGLU) over ``vocab``."""
    s = size or PlannerSize()
    cfg = LlamaConfig(
        vocab_size=vocab.vocab_size, hidden_size=s.hidden_size, num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads, num_key_value_heads=s.num_attention_heads,
        intermediate_size=s.intermediate_size, max_position_embeddings=vocab.max_length + 8,
        pad_token_id=vocab.pad_id, bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id,
        tie_word_embeddings=False, rope_theta=10000.0,
    )  # fmt: skip
    return CausalLM(cfg)


LOCATION_FREQUENCIES = 16  # cosine frequencies a location token's starting embedding is drawn from


@torch.no_grad()
def init_layout_embeddings(lm: LlamaForCausalLM, vocab: PlanVocab, text_tok: PreTrainedTokenizerBase) -> None:
    """Start each layout token's rows (input embedding and output head, untied or tied) where its meaning lies:

    - a label or background at its words' text-token rows (their mean, rescaled to one row's variance), so a
      label starts next to the words that name it ("red circle" near "red" and "circle", "cat (noto)" near "cat");
    - location ``i`` of ``n`` on a smooth curve, ``sum_k cos(pi k (i + 1/2) / n) w_k`` over
      ``LOCATION_FREQUENCIES`` random directions ``w_k``, so near locations start near and far ones apart.

    Only the starting point changes (the same weights train as before); uses the global torch RNG."""
    lay = vocab.layout_tokenizer
    for matrix in {id(m): m for m in (lm.get_input_embeddings().weight, lm.get_output_embeddings().weight)}.values():
        std = float(matrix[: vocab.text_vocab_size].std())
        for names, offset in ((vocab.layout.backgrounds, lay.bg_offset), (vocab.layout.labels, lay.label_offset)):
            for i, name in enumerate(names):
                words = text_tok(name, add_special_tokens=False)["input_ids"]
                if words:
                    matrix[vocab.layout_offset + offset + i] = matrix[words].mean(0) * len(words) ** 0.5
        n, k = lay.num_locs, LOCATION_FREQUENCIES
        basis = torch.cos(torch.pi * torch.arange(k)[None, :] * (torch.arange(n)[:, None] + 0.5) / n)  # [n, k]
        directions = torch.randn(k, matrix.shape[1]) * std / (k / 2) ** 0.5  # [k, d]
        start = vocab.layout_offset + lay.loc_offset
        matrix[start : start + n] = (basis @ directions).to(matrix.dtype)


def grow_planner_from_pretrained(path: str | os.PathLike, layout: LayoutTokenizerConfig, max_text_tokens: int = 96
                                 ) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase, PlanVocab]:  # fmt: skip
    """Load a local Hugging Face causal LM (safetensors only), add lvg's specials and the layout tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tok.add_special_tokens({"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"})
    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True,
                                                       use_safetensors=True, local_files_only=True)  # fmt: skip
    if info.get("missing_keys") or info.get("unexpected_keys"):
        raise ValueError(f"{path}: weights do not match its config: {info}")
    vocab = PlanVocab.from_tokenizer(tok, layout, max_text_tokens)
    model.resize_token_embeddings(vocab.vocab_size, mean_resizing=True)
    model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id = (
        vocab.pad_id, vocab.bos_id, vocab.eos_id)  # fmt: skip
    return CausalLM.from_llama(model), tok, vocab


# ----------------------------------------------------------------------------- folders

PLAN_VOCAB = "plan_vocab.json"


def save_lm_folder(path: str | os.PathLike, lm: LlamaForCausalLM, text_tok: PreTrainedTokenizerBase,
                   vocab: PlanVocab, dtype: torch.dtype | None = None) -> Path:  # fmt: skip
    """Write an LM over a :class:`PlanVocab` as ``lm/``, ``text_tokenizer/`` and ``plan_vocab.json``."""
    from lvg.tokenizers.text import save_text_tokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_text_tokenizer(text_tok, path / "text_tokenizer")
    save_lm(lm, path / "lm", dtype)
    write_plan_vocab(path, vocab)
    return path


def write_plan_vocab(path: str | os.PathLike, vocab: PlanVocab) -> Path:
    """Write ``vocab`` as ``path/plan_vocab.json`` (the vocabulary of an LM folder over a :class:`PlanVocab`)."""
    file = Path(path) / PLAN_VOCAB
    file.write_text(json.dumps(vocab.to_dict(), indent=2) + "\n", encoding="utf-8")
    return file


def load_lm_folder(path: str | os.PathLike, what: str = "planner"
                   ) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase, PlanVocab]:  # fmt: skip
    """Read what :func:`save_lm_folder` wrote, strictly (``what`` names the folder's role in errors)."""
    from lvg.tokenizers.text import load_text_tokenizer

    path = Path(path)
    vocab_file = path / PLAN_VOCAB
    check_regular_file(vocab_file)
    if not vocab_file.is_file():
        raise FileNotFoundError(f"{path} is not a {what} folder (no {PLAN_VOCAB})")
    try:
        vocab = config_from_dict(PlanVocab, read_json_object(vocab_file), str(vocab_file))
    except ValueError as e:
        raise ValueError(str(e) if str(vocab_file) in str(e) else f"{vocab_file} is malformed: {e}") from None
    text_tok = load_text_tokenizer(path / "text_tokenizer", required=["<pad>", "<bos>", "<eos>"])
    if PlanVocab.from_tokenizer(text_tok, vocab.layout, vocab.max_text_tokens) != vocab:
        raise ValueError(f"{path / 'text_tokenizer'} does not match {vocab_file}")
    lm = load_lm(path / "lm")
    if lm.config.vocab_size < vocab.vocab_size:
        raise ValueError(f"{vocab_file} describes {vocab.vocab_size} tokens but {path / 'lm' / 'config.json'} has "
                         f"vocab_size {lm.config.vocab_size}")  # fmt: skip
    return lm, text_tok, vocab


# ----------------------------------------------------------------------------- sequences


def plan_prefix(text_ids: list[list[int] | None], vocab: PlanVocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``<bos> text <layout>`` rows (``None``: the unconditional ``<bos> <layout>``).

    Returns input_ids and attention_mask [B, T], T = the longest row.
    """
    return left_pad([[vocab.bos_id, *(t or []), vocab.layout_offset + LAYOUT] for t in text_ids], vocab.pad_id)


def edit_prompt(text_ids: list[int], layout_ids: list[int], vocab: PlanVocab) -> list[int]:
    """The prompt ids of an edit: the instruction's text ids (cut so the whole row fits the LM's positions) and the
    layout to edit as global ids ``<layout> ... </layout>``; planned after it as any prompt is
    (``<bos> instruction <layout> OLD </layout> <layout> NEW </layout>``)."""
    room = vocab.max_text_tokens - vocab.layout_tokenizer.max_length
    return [*text_ids[: max(room, 1)], *(vocab.layout_offset + k for k in layout_ids)]


def planner_batch(text_ids: list[list[int]], layout_ids: list[list[int]], vocab: PlanVocab,
                  drop_text: list[bool] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Right-padded training rows ``<bos> text <layout> ... </layout>``.

    ``layout_ids`` are local ids starting with ``<layout>``. Returns input_ids, attention_mask,
    position_ids and labels [B, T] (labels IGNORE except the layout tokens after ``<layout>``).
    """
    drop = drop_text or [False] * len(text_ids)
    rows, starts = [], []
    for t, lay, d in zip(text_ids, layout_ids, drop, strict=True):
        prefix = [vocab.bos_id, *([] if d else t)]
        rows.append(prefix + [vocab.layout_offset + k for k in lay])
        starts.append(len(prefix) + 1)  # first label: the token after <layout>
    return right_padded_batch(rows, starts, vocab.pad_id)


def planner_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy: logits [B, T, V] predict labels [B, T] shifted by one (``reduction`` as in
    :func:`torch.nn.functional.cross_entropy`)."""
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE, reduction=reduction)  # fmt: skip
