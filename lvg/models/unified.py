"""The unified causal LM: one Llama over text tokens and image codes.

Vocabulary: ids ``[0, text_vocab_size)`` are the text tokenizer's (special tokens included);
image code ``k`` is id ``image_offset + k``. Two sequence formats share one model:

- text -> image: ``<pad>* <bos> text <boi> img_1 .. img_N <eoi>`` (text left-padded to a fixed
  length, so every image starts at the same index); loss on the image tokens and ``<eoi>``.
- image -> text: ``<bos> <boi> img_1 .. img_N <eoi> <en|zh> text <eos> <pad>*``; the language tag
  asks for the caption's language; loss on text and ``<eos>``.

Classifier-free guidance's unconditional prompt is the same prefix with no text. Position ids
are always ``cumsum(attention_mask) - 1``, in training and in generation alike.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from lvg.models.adapter_layers import has_bottlenecks

try:  # transformers' strict config checks (recent huggingface_hub) raise this, not a ValueError
    from huggingface_hub.errors import StrictDataclassError
except ImportError:  # pragma: no cover
    StrictDataclassError = ValueError  # type: ignore[misc,assignment]

from lvg.component import Component, ConfigError, read_json_object
from lvg.files import check_regular_file
from lvg.models.padding import IGNORE, left_pad
from lvg.ranges import bounded, check_ranges

# Named sizes (parameter counts for the shipped 550-token text vocabulary + 1,000 image codes).
PRESETS: dict[str, dict] = {
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=2),  # ~0.3M
    # ~3.0M: the parameter count of the default planned model (planner 2.03M + painter 0.95M), for the ablation
    "mini": dict(hidden_size=192, intermediate_size=576, num_hidden_layers=5, num_attention_heads=6),
    "small": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=6, num_attention_heads=4),  # ~5M
    "base": dict(hidden_size=320, intermediate_size=864, num_hidden_layers=8, num_attention_heads=5),  # ~10M
    "medium": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=6),  # ~15M
}


@dataclass
class VocabLayout:
    """Where text tokens, special tokens and image codes live in the LM's vocabulary."""

    text_vocab_size: int = bounded(8, 1_000_000)
    codebook_size: int = bounded(2, 1 << 20)
    image_tokens: int = bounded(1, 4096)  # tokens per image (grid * grid)
    pad_id: int
    bos_id: int
    eos_id: int
    boi_id: int
    eoi_id: int
    en_id: int
    zh_id: int
    max_text_tokens: int = bounded(1, 4096, default=64)

    def __post_init__(self) -> None:
        check_ranges(self)
        ids = ("pad_id", "bos_id", "eos_id", "boi_id", "eoi_id", "en_id", "zh_id")  # inside the text vocabulary
        check_ranges(self, {name: (0, self.text_vocab_size - 1) for name in ids})

    @property
    def image_offset(self) -> int:
        return self.text_vocab_size

    @property
    def vocab_size(self) -> int:
        return self.text_vocab_size + self.codebook_size

    @property
    def image_range(self) -> tuple[int, int]:
        return (self.image_offset, self.image_offset + self.codebook_size)

    def caption_allowed(self) -> torch.Tensor:
        """BoolTensor [V]: ids a caption may use (text tokens and ``<eos>``, no other specials)."""
        allowed = torch.zeros(self.vocab_size, dtype=torch.bool)
        allowed[: self.text_vocab_size] = True
        allowed[[self.pad_id, self.bos_id, self.boi_id, self.eoi_id, self.en_id, self.zh_id]] = False
        allowed[self.eos_id] = True
        return allowed

    def lang_id(self, lang: str) -> int:
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
        return self.en_id if lang == "en" else self.zh_id

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_tokenizers(
        cls, text_tok: PreTrainedTokenizerBase, codebook_size: int, image_tokens: int, max_text_tokens: int = 64
    ) -> VocabLayout:
        ids = {name: text_tok.convert_tokens_to_ids(tok) for name, tok in
               (("pad", "<pad>"), ("bos", "<bos>"), ("eos", "<eos>"), ("boi", "<boi>"), ("eoi", "<eoi>"),
                ("en", "<en>"), ("zh", "<zh>"))}  # fmt: skip
        missing = [n for n, i in ids.items() if i is None or i == text_tok.unk_token_id]
        if missing:
            raise ValueError(f"the text tokenizer lacks lvg's special tokens: {missing}")
        return cls(len(text_tok), codebook_size, image_tokens, ids["pad"], ids["bos"], ids["eos"], ids["boi"],
                   ids["eoi"], ids["en"], ids["zh"], max_text_tokens)  # fmt: skip


def build_lm(layout: VocabLayout, preset: str = "small", **overrides) -> LlamaForCausalLM:
    """A fresh Llama (RMSNorm, RoPE, SwiGLU) sized by ``preset`` over ``layout``'s vocabulary."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose from {sorted(PRESETS)}")
    spec = {**PRESETS[preset], **overrides}
    spec.setdefault("num_key_value_heads", spec["num_attention_heads"])
    cfg = LlamaConfig(
        vocab_size=layout.vocab_size, max_position_embeddings=2 + layout.max_text_tokens + layout.image_tokens + 2,
        pad_token_id=layout.pad_id, bos_token_id=layout.bos_id, eos_token_id=layout.eos_id,
        tie_word_embeddings=False, rope_theta=10000.0, **spec,
    )  # fmt: skip
    return CausalLM(cfg)


# What a language model folder's config.json must say, checked before anything is built: (type, lowest, highest).
LM_LIMITS: dict[str, tuple[type, int, int]] = {
    "vocab_size": (int, 2, 1_000_000),
    "hidden_size": (int, 8, 16_384),
    "intermediate_size": (int, 8, 65_536),
    "num_hidden_layers": (int, 1, 256),
    "num_attention_heads": (int, 1, 256),
    "max_position_embeddings": (int, 8, 1_048_576),
}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v  # (not NaN)


def _optional_id(v: object) -> bool:
    return v is None or _is_int(v) and 0 <= v < 1_000_000  # type: ignore[operator]


def _str_map(v: object, values: type) -> bool:
    return isinstance(v, dict) and len(v) <= 10_000 and all(isinstance(k, str) and isinstance(x, values) and
                                                            not isinstance(x, bool) for k, x in v.items())  # fmt: skip


ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3", "longrope")
# Every other field a Llama config.json may hold, checked before transformers sees it: (rule, what it must be).
# Flags lvg's sampling relies on are pinned to the values it was written for; keys starting with "_" are metadata.
LM_FIELDS: dict[str, tuple[typing.Callable[[object], bool], str]] = {
    "num_key_value_heads": (lambda v: _is_int(v) and 1 <= v <= 256, "an integer in [1, 256]"),
    "head_dim": (lambda v: v is None or _is_int(v) and 1 <= v <= 4096, "an integer in [1, 4096] or null"),
    "hidden_act": (lambda v: v in ("silu", "gelu", "relu", "gelu_new", "gelu_pytorch_tanh"), "'silu' or 'gelu'"),
    "rms_norm_eps": (lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)"),
    "initializer_range": (lambda v: _is_num(v) and 0 <= v <= 10, "a number in [0, 10]"),
    "attention_dropout": (lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "rope_parameters": (
        lambda v: (
            isinstance(v, dict)
            and v.get("rope_type", "default") in ROPE_TYPES
            and _is_num(v.get("rope_theta"))
            and 1 <= v["rope_theta"] <= 1e9
            and all(k in ("rope_type", "rope_theta") or x is None or _is_num(x) and 0 < x < 1e9 for k, x in v.items())
            and (v.get("factor") is None or v["factor"] >= 1)
        ),
        f"{{'rope_type': one of {list(ROPE_TYPES)}, 'rope_theta': a number in [1, 1e9], other entries positive "
        "numbers, factor >= 1}",
    ),  # fmt: skip
    "pad_token_id": (_optional_id, "a token id or null"),
    "bos_token_id": (_optional_id, "a token id or null"),
    "eos_token_id": (_optional_id, "a token id or null"),
    "pretraining_tp": (lambda v: v == 1 and _is_int(v), "1"),
    "use_cache": (lambda v: v is True, "true"),
    "return_dict": (lambda v: v is True, "true"),
    "tie_word_embeddings": (lambda v: v is False, "false (lvg stores both embeddings)"),
    "attention_bias": (lambda v: isinstance(v, bool), "true or false"),
    "mlp_bias": (lambda v: isinstance(v, bool), "true or false"),
    "output_hidden_states": (lambda v: v is False, "false"),
    "output_attentions": (lambda v: v is False, "false"),
    "is_encoder_decoder": (lambda v: v is False, "false"),
    "chunk_size_feed_forward": (lambda v: v == 0 and _is_int(v), "0"),
    "dtype": (lambda v: v in (None, "float32", "float16", "bfloat16"), "'float32', 'float16', 'bfloat16' or null"),
    "id2label": (lambda v: _str_map(v, str) and all(k.isdigit() and len(k) < 7 for k in v), "a map of ids to names"),
    "label2id": (lambda v: _str_map(v, int) and all(0 <= x < 1_000_000 for x in v.values()), "a map of names to ids"),
    "problem_type": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "architectures": (
        lambda v: v is None or isinstance(v, list) and all(isinstance(x, str) for x in v),
        "a list of names or null",
    ),  # fmt: skip
    "transformers_version": (lambda v: isinstance(v, str), "a string"),
    "model_type": (lambda v: v == "llama", "'llama'"),
}


def check_lm_config(data: dict, file: str | os.PathLike) -> None:
    """Check a Llama ``config.json`` mapping field by field (types, ranges, pinned flags, no unknown fields) before
    anything is built; a :class:`ConfigError` names the file and the first bad field."""
    for key, (tp, lo, hi) in LM_LIMITS.items():
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, tp) or not lo <= v <= hi:
            raise ConfigError(f"{file}: field {key!r} must be an integer in [{lo}, {hi}], got {v!r}")
    for key, v in data.items():
        if key in LM_LIMITS or key.startswith("_"):
            continue
        if key not in LM_FIELDS:
            raise ConfigError(f"{file}: unknown field {key!r} for a Llama language model")
        ok, what = LM_FIELDS[key]
        if not ok(v):
            raise ConfigError(f"{file}: field {key!r} must be {what}, got {v!r}"[:300])
    heads, kv = data["num_attention_heads"], data.get("num_key_value_heads", data["num_attention_heads"])
    if data["hidden_size"] % heads:
        raise ConfigError(f"{file}: field 'hidden_size' must be a multiple of 'num_attention_heads'")
    if heads % kv:
        raise ConfigError(f"{file}: field 'num_attention_heads' must be a multiple of 'num_key_value_heads'")
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if data.get(key) is not None and data[key] >= data["vocab_size"]:
            raise ConfigError(f"{file}: field {key!r} = {data[key]} is outside the vocabulary ({data['vocab_size']})")


class CausalLM(Component, LlamaForCausalLM):
    """The LM component: a Hugging Face Llama (RMSNorm, RoPE, SwiGLU) stored as ``config.json`` (the transformers
    config) + ``model.safetensors``, loaded through lvg's :class:`~lvg.component.Component` base.

    It behaves exactly as ``LlamaForCausalLM`` (``transformers`` reads its folders too), but loading checks the
    config's sizes and types before anything is built (an empty ``{}`` would otherwise build transformers'
    default 6.7B model), reads safetensors only, loads strictly through :mod:`lvg.weights`, and names the file
    and the field in every error.
    """

    config_class = LlamaConfig

    def _config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def load_config(cls, path: str | os.PathLike) -> LlamaConfig:
        file = Path(path) / "config.json"
        check_regular_file(file)
        if not file.is_file():
            raise FileNotFoundError(f"language model file missing: {file}")
        data = read_json_object(file)
        check_lm_config(data, file)
        try:
            return LlamaConfig(**{k: v for k, v in data.items() if k not in ("architectures", "transformers_version")})
        except (TypeError, ValueError, KeyError, StrictDataclassError) as e:  # (transformers' own checks, a backstop)
            raise ConfigError(f"{file}: {' '.join(str(e).split())}") from None

    @classmethod
    def from_llama(cls, lm: torch.nn.Module) -> CausalLM:
        """The same weights as a :class:`CausalLM` (e.g. an LM grown from a Hugging Face folder); tied input and
        output embeddings are untied (copied), since safetensors stores each tensor once."""
        if not isinstance(lm, LlamaForCausalLM):
            raise ValueError(f"lvg's LM component is a Llama; got a {type(lm).__name__}")
        known = {k: v for k, v in lm.config.to_dict().items() if k in LM_LIMITS or k in LM_FIELDS or k.startswith("_")}
        config = LlamaConfig(**{**known, "tie_word_embeddings": False})  # (the fields lvg's loader checks)
        out = cls(config)
        state = dict(lm.state_dict())
        state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
        out.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
        return out.train(lm.training)


def save_lm(lm: LlamaForCausalLM, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Save the LM folder (``config.json`` + ``model.safetensors``); floating weights stored as ``dtype`` when
    given (the model in memory is untouched)."""
    if not isinstance(lm, LlamaForCausalLM):  # e.g. a PrefixTuned, or a peft model not merged
        raise ValueError(f"{type(lm).__name__} is not a plain Llama LM and cannot be saved as an LM folder (an LM with a "
                         "prefix or bottleneck adapters is its base plus its adapter folder)")  # fmt: skip
    if has_bottlenecks(lm):
        raise ValueError("an LM with bottleneck adapters cannot be saved as a plain LM folder: keep its base and its "
                         "adapter folder")  # fmt: skip
    lm = lm if isinstance(lm, CausalLM) else CausalLM.from_llama(lm)
    return lm.save_pretrained(path, dtype)


def load_lm(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> CausalLM:
    """Load an LM folder strictly (every weight present and used; safetensors only) in eval mode."""
    lm = CausalLM.from_pretrained(path)
    return lm if dtype == torch.float32 else lm.to(dtype)


def grow_from_pretrained(
    path: str | os.PathLike, codebook_size: int, image_tokens: int, max_text_tokens: int = 64
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase, VocabLayout]:
    """Load a local Hugging Face causal LM and extend its vocabulary with lvg's tokens.

    Keeps its text tokenizer, adds ``<pad>``/``<bos>``/``<eos>``/``<boi>``/``<eoi>``/``<en>``/``<zh>``,
    then appends ``codebook_size`` image tokens after the (grown) text vocabulary.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tok.add_special_tokens({"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>",
                            "additional_special_tokens": ["<boi>", "<eoi>", "<en>", "<zh>"]})  # fmt: skip
    model, info = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, output_loading_info=True, use_safetensors=True, local_files_only=True
    )  # fmt: skip (never a pickle)
    if info.get("missing_keys") or info.get("unexpected_keys"):
        raise ValueError(f"{path}: weights do not match its config: {info}")
    layout = VocabLayout.from_tokenizers(tok, codebook_size, image_tokens, max_text_tokens)
    model.resize_token_embeddings(layout.vocab_size, mean_resizing=True)
    model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id = (
        layout.pad_id, layout.bos_id, layout.eos_id)  # fmt: skip
    return CausalLM.from_llama(model), tok, layout


# ----------------------------------------------------------------------------- sequences


def tokenize_texts(tok: PreTrainedTokenizerBase, texts: list[str], max_len: int) -> list[list[int]]:
    """Token ids of each text (no special tokens); a text longer than ``max_len`` is an error."""
    out = []
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        if len(ids) > max_len:
            raise ValueError(f"prompt is {len(ids)} tokens long; the model accepts at most {max_len}: {t[:60]!r}")
        out.append(ids)
    return out


def t2i_prefix(text_ids: list[list[int] | None], layout: VocabLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``<bos> text <boi>`` prefixes; ``None`` text gives the unconditional prefix.

    Returns input_ids [B, L+2] and attention_mask [B, L+2] with L = ``layout.max_text_tokens``.
    """
    rows = [[layout.bos_id, *(t or []), layout.boi_id] for t in text_ids]
    return left_pad(rows, layout.pad_id, length=layout.max_text_tokens + 2)


def i2t_prefix(codes: torch.Tensor, layout: VocabLayout, lang: str = "en") -> torch.Tensor:
    """``<bos> <boi> image <eoi> <lang>`` for codes [B, h, w] -> input_ids [B, N+4] (no padding)."""
    B = codes.shape[0]
    img = codes.reshape(B, -1).long().cpu() + layout.image_offset
    col = lambda v: torch.full((B, 1), v, dtype=torch.long)  # noqa: E731
    return torch.cat([col(layout.bos_id), col(layout.boi_id), img, col(layout.eoi_id), col(layout.lang_id(lang))], 1)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def training_batch(
    codes: torch.Tensor,
    text_ids: list[list[int]],
    langs: list[str],
    t2i: list[bool],
    drop_text: list[bool],
    layout: VocabLayout,
) -> dict[str, torch.Tensor]:
    """Mixed batch of both directions, all rows the same length.

    codes [B, h, w]; text_ids and langs ("en"/"zh") per row; ``t2i[i]`` picks the direction of row i; ``drop_text[i]``
    (text -> image rows only) removes the caption for classifier-free guidance.
    Text -> image rows are left-padded to the batch's longest caption, so ``<boi>`` sits at one index
    ``L + 1``; captioning rows are right-padded. Padding is masked and position ids count real tokens
    only, so the amount of padding changes no logit (generation pads to ``max_text_tokens``).
    Returns input_ids, attention_mask, position_ids, labels (IGNORE where no loss) and
    is_image [B, T] (which labels are image tokens, for per-modality loss weights).
    """
    B = codes.shape[0]
    N, max_len = layout.image_tokens, layout.max_text_tokens
    text_ids = [t[:max_len] for t in text_ids]
    L = max((len(t) for t, a, d in zip(text_ids, t2i, drop_text, strict=True) if a and not d), default=0)
    T = max([L + N + 3 if any(t2i) else 0] + [N + 5 + len(t) for t, a in zip(text_ids, t2i, strict=True) if not a])
    ids = torch.full((B, T), layout.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    img = codes.reshape(B, -1).long().cpu() + layout.image_offset  # [B, N]
    for i in range(B):
        text = text_ids[i]
        if t2i[i]:
            prefix = [layout.bos_id, *([] if drop_text[i] else text), layout.boi_id]
            row = prefix + img[i].tolist() + [layout.eoi_id]
            start = L + 2 - len(prefix)  # left-pad: <boi> always at index L + 1
            ids[i, start : start + len(row)] = torch.tensor(row)
            mask[i, start : start + len(row)] = 1
            labels[i, L + 2 : L + 2 + N + 1] = ids[i, L + 2 : L + 2 + N + 1]  # image tokens and <eoi>
        else:
            tag = layout.lang_id(langs[i])
            row = [layout.bos_id, layout.boi_id, *img[i].tolist(), layout.eoi_id, tag, *text, layout.eos_id]
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            labels[i, N + 4 : len(row)] = ids[i, N + 4 : len(row)]  # text and <eos>
    is_image = (labels >= layout.image_offset) | (labels == layout.eoi_id)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": position_ids(mask), "labels": labels,
            "is_image": is_image}  # fmt: skip


def weighted_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    is_image: torch.Tensor,
    image_weight: float = 1.0,
    text_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token cross-entropy with separate weights for image and text targets.

    logits [B, T, V] predict labels shifted by one. Returns (loss, {"image_loss", "text_loss"}).
    """
    logits, labels, is_image = logits[:, :-1].float(), labels[:, 1:], is_image[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
                         reduction="none").view_as(labels)  # fmt: skip
    valid = labels != IGNORE
    img, txt = valid & is_image, valid & ~is_image
    w = img.float() * image_weight + txt.float() * text_weight
    loss = (ce * w).sum() / w.sum().clamp_min(1e-8)
    ce = ce.detach()
    parts = {"image_loss": float(ce[img].mean()) if img.any() else float("nan"),
             "text_loss": float(ce[txt].mean()) if txt.any() else float("nan")}  # fmt: skip
    return loss, parts
