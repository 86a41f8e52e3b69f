"""Fine-tuning an LM over a :class:`~lvg.models.planner.PlanVocab` from a trained base, with Hugging Face peft.

- :func:`transplant` moves a base LM onto a new layout vocabulary (a new world's labels): the text rows and every
  layout token both vocabularies name keep their trained rows; new labels start at their words' trained rows.
- :func:`prepare` readies the LM for one :data:`METHODS` entry: ``full`` (every weight trains), ``freeze`` (only
  the chosen decoder layers and the new tokens' rows train) or ``lora`` (peft's LoRA on the chosen projections,
  plus the new tokens' rows through peft's ``trainable_token_indices``).
- :func:`save_adapter` / :func:`load_adapter`: a LoRA adapter in peft's own format (``adapter_config.json`` +
  ``adapter_model.safetensors``; never a pickle) plus ``lvg_adapter.json``, which names the base by its weights'
  SHA-256 and holds the adapted vocabulary, so an adapter loaded on another base fails with a clear error.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from lvg.component import config_from_dict, read_json_object
from lvg.files import check_regular_file
from lvg.models.planner import PLAN_VOCAB, PlanVocab, init_layout_embeddings, load_lm_folder
from lvg.models.unified import CausalLM
from lvg.ranges import bounded, check_ranges
from lvg.tokenizers.layout import LayoutTokenizerConfig

METHODS = ("full", "freeze", "lora")
ADAPTER_META = "lvg_adapter.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    """peft's LoraConfig fields lvg exposes."""

    rank: int = bounded(1, 4096, default=8)
    alpha: float = bounded(0.0, None, lo_open=True, default=16.0)
    dropout: float = bounded(0.0, 1.0, hi_open=True, default=0.0)
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS

    def __post_init__(self) -> None:
        check_ranges(self, prefix="finetune.lora: ")
        self.target_modules = tuple(self.target_modules)
        unknown = set(self.target_modules) - set(LLAMA_PROJECTIONS)
        if not self.target_modules or unknown:
            raise ValueError(f"finetune.lora.target_modules must be some of {', '.join(LLAMA_PROJECTIONS)}"
                             + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))  # fmt: skip


@dataclass
class FinetuneConfig:
    """How an LM trainer starts from a trained LM instead of from scratch (``base`` None: from scratch)."""

    base: str | None = None  # an LM folder (a model folder's planner/ or reader/) or a model folder (its planner)
    method: str = "full"  # full | freeze | lora
    train_layers: tuple[int, ...] = (-1,)  # freeze: decoder layers that train (negative: from the top)
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        self.train_layers = tuple(self.train_layers)
        if self.method not in METHODS:
            raise ValueError(f"finetune.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method != "full" and self.base is None:
            raise ValueError(f"finetune.method {self.method} needs finetune.base (the model to adapt)")


ROLE_FOLDERS = {"planner": "planner", "reading LM": "reader"}  # where a model folder keeps each LM


def lm_folder_of(path: str | os.PathLike, role: str) -> Path:
    """The LM folder a fine-tuning base names: ``path`` itself when it holds ``plan_vocab.json``, else the model
    folder's LM of that ``role`` (``planner/`` or ``reader/``)."""
    path = Path(path)
    for folder in (path, path / ROLE_FOLDERS[role]):
        if (folder / PLAN_VOCAB).is_file():
            return folder
    raise FileNotFoundError(f"finetune.base {path} is neither a {role} folder nor a model folder with one (no "
                            f"{PLAN_VOCAB} in it or in {ROLE_FOLDERS[role]}/)")  # fmt: skip


def weights_sha256(lm: nn.Module) -> str:
    """SHA-256 of an LM's weights as float32 (names sorted): what an adapter records of its base."""
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def _row_sources(old: PlanVocab, new: PlanVocab) -> dict[int, int]:
    """new id -> old id for every token both vocabularies name (text tokens, backgrounds and labels by name,
    the structural tokens, and locations when both cut the same canvas into the same bins)."""
    if old.text_vocab_size != new.text_vocab_size:
        raise ValueError(f"the base LM's text vocabulary has {old.text_vocab_size} tokens and the new one "
                         f"{new.text_vocab_size}: fine-tuning keeps the base's text tokenizer")  # fmt: skip
    a, b = old.layout_tokenizer, new.layout_tokenizer
    src = {i: i for i in range(new.text_vocab_size)}
    src.update({new.layout_offset + k: old.layout_offset + k for k in range(b.bg_offset)})  # <layout>, </layout>
    for names_old, names_new, off_old, off_new in (
        (old.layout.backgrounds, new.layout.backgrounds, a.bg_offset, b.bg_offset),
        (old.layout.labels, new.layout.labels, a.label_offset, b.label_offset),
    ):
        where = {n: i for i, n in enumerate(names_old)}
        src.update({new.layout_offset + off_new + i: old.layout_offset + off_old + where[n]
                    for i, n in enumerate(names_new) if n in where})  # fmt: skip
    if a.num_locs == b.num_locs:
        src.update({new.layout_offset + b.loc_offset + i: old.layout_offset + a.loc_offset + i
                    for i in range(b.num_locs)})  # fmt: skip
    where = {r: i for i, r in enumerate(old.layout.refusals)}
    src.update({new.layout_offset + b.refusal_offset + i: old.layout_offset + a.refusal_offset + where[r]
                for i, r in enumerate(new.layout.refusals) if r in where})  # fmt: skip
    return src


@torch.no_grad()
def transplant(lm: CausalLM, old: PlanVocab, new: PlanVocab, text_tok: PreTrainedTokenizerBase
               ) -> tuple[CausalLM, list[int]]:  # fmt: skip
    """``lm`` (over ``old``) moved onto ``new``: a new LM with the same layers, whose rows for tokens both
    vocabularies name are the base's; the rest (new labels, backgrounds, locations) start where
    :func:`~lvg.models.planner.init_layout_embeddings` puts them (new labels at their words' trained rows).
    Returns the LM and the ids of its new tokens, ascending."""
    src = _row_sources(old, new)
    if new == old:
        return copy.deepcopy(lm), []
    cfg = copy.deepcopy(lm.config)
    cfg.vocab_size = new.vocab_size
    out = CausalLM(cfg)
    state = {k: v for k, v in lm.state_dict().items() if k not in ("model.embed_tokens.weight", "lm_head.weight")}
    missing, unexpected = out.load_state_dict(state, strict=False)  # the two vocabulary matrices are rebuilt below
    if unexpected or set(missing) - {"model.embed_tokens.weight", "lm_head.weight"}:
        raise ValueError(f"cannot transplant the LM: unexpected {unexpected}, missing {missing}")
    mats = ((out.get_input_embeddings().weight, lm.get_input_embeddings().weight),
            (out.get_output_embeddings().weight, lm.get_output_embeddings().weight))  # fmt: skip
    for dst, base in mats:
        dst[: new.text_vocab_size] = base[: new.text_vocab_size]
    init_layout_embeddings(out, new, text_tok)  # new tokens: from the (trained) text rows copied above
    ids = torch.tensor(sorted(src))
    for dst, base in mats:
        dst[ids] = base[torch.tensor([src[int(i)] for i in ids])]
    return out.train(lm.training), [i for i in range(new.vocab_size) if i not in src]


def joint_layout(base: LayoutTokenizerConfig, new: LayoutTokenizerConfig) -> LayoutTokenizerConfig:
    """The layout vocabulary an adapted LM uses: the base's labels and backgrounds, then the new data's that the base
    lacks (so the adapted LM can still plan the base's world, and forgetting can be measured), on the new data's
    canvas and resolution. Different canvases cannot share location tokens: then the new vocabulary alone."""
    if (base.canvas, base.bins_per_px) != (new.canvas, new.bins_per_px):
        return new
    labels = (*base.labels, *(x for x in new.labels if x not in base.labels))
    backgrounds = (*base.backgrounds, *(x for x in new.backgrounds if x not in base.backgrounds))
    refusals = (*base.refusals, *(x for x in new.refusals if x not in base.refusals))
    return LayoutTokenizerConfig(
        labels, backgrounds, new.canvas, new.bins_per_px, max(base.max_objects, new.max_objects), refusals
    )


@dataclass
class Adapted:
    """What a fine-tuning run starts from (:func:`start_from_base`)."""

    lm: nn.Module  # readied for the method (a peft model for freeze with new tokens and for lora)
    text_tokenizer: PreTrainedTokenizerBase
    vocab: PlanVocab
    base_sha256: str
    method: str

    def save(self, model: nn.Module, out: Path, role: str) -> CausalLM:
        """For LoRA, write the adapter alone to ``out/adapter``; return the LM with any adapter merged in."""
        if self.method == "lora":
            save_adapter(model, out / "adapter", self.base_sha256, self.vocab, role)
        return merged(model)


def start_from_base(ft: FinetuneConfig, role: str, layout: LayoutTokenizerConfig) -> Adapted:
    """The LM a fine-tuning run trains: ``ft.base``'s LM of ``role`` moved onto its own labels plus ``layout``'s
    (:func:`joint_layout`) by :func:`transplant`, readied for ``ft.method`` by :func:`prepare`."""
    base, tok, base_vocab = load_lm_folder(lm_folder_of(ft.base, role), role)
    vocab = PlanVocab.from_tokenizer(tok, joint_layout(base_vocab.layout, layout), base_vocab.max_text_tokens)
    lm, new_ids = transplant(base, base_vocab, vocab, tok)
    return Adapted(prepare(lm, ft, new_ids), tok, vocab, weights_sha256(base), ft.method)


def _layer_indices(train_layers: tuple[int, ...], n: int) -> list[int]:
    idx = sorted({i % n for i in train_layers if -n <= i < n})
    if len(idx) != len(set(train_layers)) or not idx:
        raise ValueError(f"finetune.train_layers {list(train_layers)} must name layers of this {n}-layer LM "
                         f"(0..{n - 1}, or -1..-{n} from the top)")  # fmt: skip
    return idx


def prepare(lm: CausalLM, cfg: FinetuneConfig, new_ids: list[int]) -> nn.Module:
    """``lm`` ready to train with ``cfg.method`` (``new_ids``: the transplanted tokens, whose rows always train)."""
    if cfg.method == "full":
        return lm.requires_grad_(True)
    from peft import LoraConfig, TrainableTokensConfig, get_peft_model

    tokens = {"embed_tokens": list(new_ids), "lm_head": list(new_ids)} if new_ids else None
    if cfg.method == "lora":
        s = cfg.lora
        pc = LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=list(s.target_modules),
                        trainable_token_indices=tokens)  # fmt: skip
        return get_peft_model(lm, pc)
    # freeze: the chosen decoder layers train, the rest stay; the new tokens' rows through peft's TrainableTokens
    layers = _layer_indices(cfg.train_layers, lm.config.num_hidden_layers)
    model = get_peft_model(lm, TrainableTokensConfig(target_modules=["embed_tokens", "lm_head"],
                                                     token_indices=list(new_ids))) if new_ids else lm  # fmt: skip
    model.requires_grad_(False)
    if new_ids:
        for n, p in model.named_parameters():
            p.requires_grad_("trainable_tokens_delta" in n)
    for i in layers:
        lm.model.layers[i].requires_grad_(True)
    return model


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters) of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged(model: nn.Module) -> CausalLM:
    """A plain LM with ``model``'s adapter folded in (``model`` itself unchanged)."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return model
    return copy.deepcopy(model).merge_and_unload()


def save_adapter(model: nn.Module, path: str | os.PathLike, base_sha256: str, vocab: PlanVocab,
                 role: str = "planner") -> Path:  # fmt: skip
    """Write a LoRA-trained ``model``'s adapter in peft's format (safetensors) plus ``lvg_adapter.json``."""
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    meta = {"role": role, "base_sha256": base_sha256, "plan_vocab": vocab.to_dict()}
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def load_adapter(lm: CausalLM, vocab: PlanVocab, text_tok: PreTrainedTokenizerBase, path: str | os.PathLike,
                 role: str = "planner") -> tuple[CausalLM, PlanVocab]:  # fmt: skip
    """``lm`` with the adapter at ``path`` merged in (a new LM; ``lm`` unchanged), and the adapted vocabulary.

    Refuses, with the reason, a folder that is not an lvg adapter, an adapter for another role or another base,
    and any weights file but ``adapter_model.safetensors`` (peft would unpickle a ``.bin``)."""
    from peft import PeftModel

    path = Path(path)
    for name in (ADAPTER_META, PEFT_CONFIG, PEFT_WEIGHTS):
        check_regular_file(path / name)
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not an lvg adapter folder (no {name})")
    if (path / "adapter_model.bin").exists():
        raise ValueError(f"{path} holds adapter_model.bin: lvg loads safetensors only and never unpickles")
    meta = read_json_object(path / ADAPTER_META)
    if meta.get("role") != role:
        raise ValueError(f"{path} is an adapter for the {meta.get('role')!r}, not the {role}")
    if meta.get("base_sha256") != weights_sha256(lm):
        raise ValueError(f"{path} was trained on another base {role} (its weights' SHA-256 differs): load it on the "
                         "model it was trained from")  # fmt: skip
    new_vocab = config_from_dict(PlanVocab, meta.get("plan_vocab") or {}, str(path / ADAPTER_META))
    read_json_object(path / PEFT_CONFIG)  # valid JSON (size, depth, encoding) before peft reads it
    _check_adapter_weights(path / PEFT_WEIGHTS)
    base, _ = transplant(lm, vocab, new_vocab, text_tok)
    try:
        model = PeftModel.from_pretrained(base, str(path), is_trainable=False, use_safetensors=True)
    except (ValueError, TypeError, KeyError, RuntimeError, AttributeError) as e:  # a config or weights peft rejects
        raise ValueError(f"{path} is not a usable adapter: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
                         ) from None  # fmt: skip
    return model.merge_and_unload().eval(), new_vocab


def _check_adapter_weights(file: Path) -> None:
    """The adapter's safetensors file reads, and every float tensor in it is finite; else a ValueError naming it."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except Exception as e:  # safetensors' own error types (a truncated or garbled file)
        raise ValueError(f"{file} is not a readable safetensors file: {' '.join(str(e).split())[:200]}") from None
    for k, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{file}: tensor {k!r} holds NaN or infinite values (corrupt weights)")
