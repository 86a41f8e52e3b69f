"""Fine-tuning an LM over a :class:`~lvg.models.planner.PlanVocab` from a trained base, with Hugging Face peft.

- :func:`transplant` moves a base LM onto a new layout vocabulary (a new world's labels): the text rows and every
  layout token both vocabularies name keep their trained rows; new labels start at their words' trained rows.
- :func:`prepare` readies the LM for one :data:`METHODS` entry: ``full`` (every weight trains), ``freeze`` (only
  the chosen decoder layers and the new tokens' rows train), ``lora`` (peft's LoRA on the chosen projections),
  ``adapter`` (bottleneck adapters after the chosen layers' MLPs) or ``prefix`` (a learned key/value prefix at every
  layer); the last two are :mod:`lvg.models.adapter_layers` (peft has no usable form of them). Under every method but
  ``full`` the new tokens' rows train too, through peft's ``trainable_token_indices`` / ``TrainableTokensConfig``.
- :func:`save_adapter` / :func:`load_adapter`: an adapter in peft's own format (``adapter_config.json`` +
  ``adapter_model.safetensors``; never a pickle), the bottleneck or prefix weights in ``lvg_modules.safetensors``,
  and ``lvg_adapter.json``, which names the method, the base by its weights' SHA-256 and the adapted vocabulary, so
  an adapter loaded on another base fails with a clear error. LoRA folds into the LM (:func:`merged`); bottleneck
  adapters and prefixes do not, so such a model is always its base plus the adapter folder.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from lvg.component import config_from_dict, read_json_object
from lvg.files import check_regular_file
from lvg.models.adapter_files import (
    ADAPTER_META,
    MODULE_WEIGHTS,
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    LoraSettings,
    check_adapter_weights,
    peft_folded,
    quiet_peft,
    read_adapter_meta,
    weights_sha256,
)
from lvg.models.adapter_layers import (
    PrefixTuned,
    add_bottlenecks,
    add_low_rank_rows,
    decoder_layers,
    fold_low_rank_rows,
    has_bottlenecks,
    load_module_state,
    low_rank_rows,
    module_state,
)
from lvg.models.planner import PLAN_VOCAB, PlanVocab, init_layout_embeddings, load_lm_folder
from lvg.models.unified import CausalLM
from lvg.ranges import bounded, check_ranges
from lvg.tokenizers.layout import LayoutTokenizerConfig
from lvg.tokenizers.words import CUTS, WORDS_FORMAT, add_words, find_new_words, start_pieces, twin_ids

METHODS = ("full", "freeze", "lora", "adapter", "prefix")
ADAPTER_METHODS = ("lora", "adapter", "prefix")  # the methods that leave the base untouched and write OUT/adapter
UNMERGEABLE = ("adapter", "prefix")  # they add computation; the model is the base plus the adapter folder
NEW_ROWS = ("train", "lowrank", "frozen")  # how the new tokens' rows train under a method that freezes the base


@dataclass
class BottleneckSettings:
    """Bottleneck adapters (``finetune.method=adapter``): after which layers' MLPs, and how narrow."""

    rank: int = bounded(1, 4096, default=16)  # the bottleneck's width
    layers: tuple[int, ...] | None = None  # decoder layers that get one (negative: from the top); None: every layer

    def __post_init__(self) -> None:
        check_ranges(self, prefix="finetune.adapter: ")
        self.layers = None if self.layers is None else tuple(self.layers)


@dataclass
class PrefixSettings:
    """Prefix tuning (``finetune.method=prefix``): learned key/value pairs at every layer."""

    num_tokens: int = bounded(1, 1024, default=16)

    def __post_init__(self) -> None:
        check_ranges(self, prefix="finetune.prefix: ")


@dataclass
class FinetuneConfig:
    """How an LM trainer starts from a trained LM instead of from scratch (``base`` None: from scratch)."""

    base: str | None = None  # an LM folder (a model folder's planner/ or reader/) or a model folder (its planner)
    method: str = "full"  # full | freeze | lora | adapter | prefix
    train_layers: tuple[int, ...] = (-1,)  # freeze: decoder layers that train (negative: from the top)
    lora: LoraSettings = field(default_factory=LoraSettings)
    adapter: BottleneckSettings = field(default_factory=BottleneckSettings)
    prefix: PrefixSettings = field(default_factory=PrefixSettings)
    # the new tokens' rows (labels and words the base lacks, started at their words' rows): train whole, move by a
    # trainable rank-new_rows_rank delta (lowrank: far fewer weights), or stay where they start (frozen: only the
    # method's own weights train; the rows are rebuilt the same way when it loads)
    new_rows: str = "train"
    new_rows_rank: int = bounded(1, 4096, default=32)
    # lowrank: the output head's new rows move by a delta of this rank instead (0: new_rows_rank, over every new
    # row); a positive rank also leaves out the head rows of tokens the LM never writes (a planner writes no text,
    # so its new words get none; a reading LM writes no layout, so its new labels get none)
    new_rows_head_rank: int = bounded(0, 4096, default=0)
    # the base's own layout tokens (locations, layout markers, its labels and backgrounds) adapt with the new rows
    # (whole, low-rank or not at all, as new_rows says): a new world may place and size objects by other rules
    layout_rows: bool = False
    # add up to this many words of the new texts (a planner's prompts; a reading LM's questions and answers) that
    # the base's text tokenizer spells in pieces as whole tokens (lvg.tokenizers.words), their rows starting at their
    # pieces' rows and training as new rows
    new_words: int = bounded(0, 100_000, default=0)
    # how the new words cut Chinese (lvg.tokenizers.words): single ideographs (chars), or byte-pair pieces of the
    # stretches of ideographs the base lacks, learned from the new texts (pieces: a name becomes one token)
    new_words_cut: str = "chars"
    # LoRA+ (Hayou et al. 2024; peft's loraplus_lr_ratio): the zero-initialised factor of each low-rank delta (LoRA's
    # B, the low-rank rows' u) trains at this multiple of the scheduled rate
    lr_ratio: float = bounded(1.0, 1024.0, integer=False, default=1.0)
    # block expansion (LLaMA Pro, Wu et al. 2024): this many new decoder layers, spread evenly among the base's, each a
    # copy of the layer before it with its attention output and MLP down projections zeroed, so the grown LM starts
    # computing exactly what the base does and gains depth to learn with (finetune.method full)
    add_layers: int = bounded(0, 64, default=0)

    def __post_init__(self) -> None:
        for name, cls in (("lora", LoraSettings), ("adapter", BottleneckSettings), ("prefix", PrefixSettings)):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, cls(**getattr(self, name)))
        check_ranges(self, prefix="finetune.")
        self.train_layers = tuple(self.train_layers)
        if self.method not in METHODS:
            raise ValueError(f"finetune.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method != "full" and self.base is None:
            raise ValueError(f"finetune.method {self.method} needs finetune.base (the model to adapt)")
        if self.new_words_cut not in CUTS:
            raise ValueError(f"finetune.new_words_cut must be one of {', '.join(CUTS)}, got {self.new_words_cut!r}")
        if self.new_rows not in NEW_ROWS:
            raise ValueError(f"finetune.new_rows must be one of {', '.join(NEW_ROWS)}, got {self.new_rows!r}")
        if self.lr_ratio != 1.0 and self.method != "lora" and self.new_rows != "lowrank":
            raise ValueError("finetune.lr_ratio speeds up LoRA's B and low-rank rows' u: it needs finetune.method=lora "
                             "or finetune.new_rows=lowrank")  # fmt: skip
        if self.new_rows_head_rank and self.new_rows != "lowrank":
            raise ValueError("finetune.new_rows_head_rank is the output head's rank under finetune.new_rows=lowrank; "
                             f"new_rows is {self.new_rows}")  # fmt: skip
        if self.add_layers and self.method != "full":
            raise ValueError(f"finetune.add_layers grows the base's depth and trains it whole: it needs "
                             f"finetune.method=full, not {self.method}")  # fmt: skip
        if self.new_rows != "train" and self.method == "full":
            raise ValueError(f"finetune.new_rows={self.new_rows} needs a method that freezes the base (full trains "
                             "every row)")  # fmt: skip


ROLE_FOLDERS = {"planner": "planner", "reading LM": "reader"}  # where a model folder keeps each LM


def lm_folder_of(path: str | os.PathLike, role: str) -> Path:
    """The LM folder a fine-tuning base names: ``path`` itself when it holds ``plan_vocab.json``, else the model
    folder's LM of that ``role`` (``planner/`` or ``reader/``)."""
    path = Path(path)
    sub = shared_lm_folder(path, role)
    for folder in (path, path / sub):
        if (folder / PLAN_VOCAB).is_file():
            return folder
    raise FileNotFoundError(f"finetune.base {path} is neither a {role} folder nor a model folder with one (no "
                            f"{PLAN_VOCAB} in it or in {sub}/)")  # fmt: skip


def shared_lm_folder(path: Path, role: str) -> str:
    """Where the model folder ``path`` keeps its LM of ``role``: ``ROLE_FOLDERS[role]``, or for the reading LM the
    folder its ``model_index.json`` declares as ``reading_lm`` (one LM that plans and reads: ``planner``)."""
    index = path / "model_index.json"
    if role == "reading LM" and index.is_file():
        comps = read_json_object(index).get("components")
        spec = comps.get("reading_lm") if isinstance(comps, dict) else None
        folder = spec.get("folder") if isinstance(spec, dict) else spec
        if isinstance(folder, str) and folder:
            return folder
    return ROLE_FOLDERS[role]


def _row_sources(old: PlanVocab, new: PlanVocab) -> dict[int, int]:
    """new id -> old id for every token both vocabularies name (text tokens, backgrounds and labels by name,
    the structural tokens, and locations when both cut the same canvas into the same bins)."""
    if old.text_vocab_size > new.text_vocab_size:
        raise ValueError(f"the base LM's text vocabulary has {old.text_vocab_size} tokens and the new one "
                         f"{new.text_vocab_size}: fine-tuning keeps the base's text tokenizer (and may add words)")  # fmt: skip
    a, b = old.layout_tokenizer, new.layout_tokenizer
    src = {i: i for i in range(old.text_vocab_size)}
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
def transplant(lm: CausalLM, old: PlanVocab, new: PlanVocab, text_tok: PreTrainedTokenizerBase,
               base_tok: PreTrainedTokenizerBase | None = None) -> tuple[CausalLM, list[int]]:  # fmt: skip
    """``lm`` (over ``old``) moved onto ``new``: a new LM with the same layers, whose rows for tokens both
    vocabularies name are the base's; the rest (new labels, backgrounds, locations) start where
    :func:`~lvg.models.planner.init_layout_embeddings` puts them (new labels at their words' trained rows).
    ``text_tok`` is ``new``'s text tokenizer: the base's (``base_tok``, default ``text_tok``) with any added words
    after its ids (:mod:`lvg.tokenizers.words`), whose rows start at their pieces' rows in the base.
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
        dst[: old.text_vocab_size] = base[: old.text_vocab_size]
        for i in range(old.text_vocab_size, new.text_vocab_size):  # added words: at their pieces in the base
            pieces = start_pieces(base_tok or text_tok, text_tok.decode([i], clean_up_tokenization_spaces=False))
            dst[i] = base[pieces].mean(0) * len(pieces) ** 0.5
    init_layout_embeddings(out, new, text_tok)  # new tokens: from the (trained) text rows copied above
    ids = torch.tensor(sorted(src))
    for dst, base in mats:
        dst[ids] = base[torch.tensor([src[int(i)] for i in ids])]
    return out.train(lm.training), [i for i in range(new.vocab_size) if i not in src]


def expand_layers(lm: CausalLM, add: int) -> CausalLM:
    """``lm`` with ``add`` more decoder layers (block expansion, as LLaMA Pro does), spread evenly over the base's
    ``n``: new layer ``k`` (0-based) follows base layer ``max(0, (k + 1) * n // add - 1)`` (``add`` = ``n``: one after each;
    ``add`` > ``n``: several after some). Each is a copy of the base layer it follows with its attention ``o_proj``
    and MLP ``down_proj`` at zero, so it adds nothing to the residual stream and the grown LM's outputs are the
    base's exactly. Returns a new :class:`CausalLM`; ``lm`` is untouched."""
    n = lm.config.num_hidden_layers
    if add < 1:
        raise ValueError(f"add_layers must be >= 1, got {add}")
    news = [0] * n  # how many new layers follow base layer i
    for k in range(add):
        news[max(0, (k + 1) * n // add - 1)] += 1
    cfg = copy.deepcopy(lm.config)
    cfg.num_hidden_layers = n + add
    out = CausalLM(cfg)
    layers: list[nn.Module] = []
    for i, layer in enumerate(lm.model.layers):
        layers.append(copy.deepcopy(layer))
        for _ in range(news[i]):
            new = copy.deepcopy(layer)
            with torch.no_grad():
                new.self_attn.o_proj.weight.zero_()
                new.mlp.down_proj.weight.zero_()
                for proj in (new.self_attn.o_proj, new.mlp.down_proj):
                    if proj.bias is not None:
                        proj.bias.zero_()
            layers.append(new)
    state = {k: v for k, v in lm.state_dict().items() if not k.startswith("model.layers.")}
    state.update({f"model.layers.{j}.{k}": v for j, layer in enumerate(layers) for k, v in layer.state_dict().items()})
    out.load_state_dict(state)  # strict: every tensor of the grown LM is named once
    return out.train(lm.training)


def joint_layout(base: LayoutTokenizerConfig, new: LayoutTokenizerConfig) -> LayoutTokenizerConfig:
    """The layout vocabulary an adapted LM uses: the base's labels and backgrounds, then the new data's that the base
    lacks (so the adapted LM can still plan the base's world, and forgetting can be measured), on the base's canvas
    and location resolution (its trained location rows; the config's ``model.bins_per_px`` is not used). Different
    canvases cannot share location tokens: then the new vocabulary alone."""
    if base.canvas != new.canvas:
        return new
    labels = (*base.labels, *(x for x in new.labels if x not in base.labels))
    backgrounds = (*base.backgrounds, *(x for x in new.backgrounds if x not in base.backgrounds))
    refusals = (*base.refusals, *(x for x in new.refusals if x not in base.refusals))
    return LayoutTokenizerConfig(labels, backgrounds, base.canvas, base.bins_per_px,
                                 max(base.max_objects, new.max_objects), refusals,
                                 min(base.min_side, new.min_side))  # fmt: skip


@dataclass
class Adapted:
    """What a fine-tuning run starts from (:func:`start_from_base`)."""

    lm: nn.Module  # readied for the method (a peft model with new tokens and for lora; PrefixTuned for prefix)
    text_tokenizer: PreTrainedTokenizerBase
    vocab: PlanVocab
    base_sha256: str
    config: FinetuneConfig
    new_words: list[str] = field(default_factory=list)  # words added to the base's text tokenizer

    def save(self, model: nn.Module, out: Path, role: str) -> CausalLM | None:
        """For LoRA, adapters and prefixes, write the adapter alone to ``out/adapter``. Return the LM with any
        adapter merged in, or None where it cannot be merged (``adapter``, ``prefix``)."""
        if self.config.method in ADAPTER_METHODS:
            save_adapter(model, out / "adapter", self.base_sha256, self.vocab, role, self.config, self.new_words)
        return None if self.config.method in UNMERGEABLE else merged(model)


def start_from_base(ft: FinetuneConfig, role: str, layout: LayoutTokenizerConfig, texts: Iterable[str] = ()
                    ) -> Adapted:  # fmt: skip
    """The LM a fine-tuning run trains: ``ft.base``'s LM of ``role`` moved onto its own labels plus ``layout``'s
    (:func:`joint_layout`) and, with ``ft.new_words``, the new words of ``texts`` (the training prompts), by
    :func:`transplant`, readied for ``ft.method`` by :func:`prepare`."""
    base, base_tok, base_vocab = load_lm_folder(lm_folder_of(ft.base, role), role)
    words = find_new_words(texts, base_tok, ft.new_words, cut=ft.new_words_cut) if ft.new_words else []
    tok = add_words(base_tok, words) if words else base_tok
    vocab = PlanVocab.from_tokenizer(tok, joint_layout(base_vocab.layout, layout), base_vocab.max_text_tokens)
    lm, new_ids = transplant(base, base_vocab, vocab, tok, base_tok)
    if ft.add_layers:
        lm = expand_layers(lm, ft.add_layers)
    new_ids = adapted_rows(new_ids, vocab, ft.layout_rows)
    unwritten = unwritten_ids(role, base_vocab, vocab)
    twins = twin_ids(tok, len(base_tok))
    return Adapted(prepare(lm, ft, new_ids, unwritten, twins), tok, vocab, weights_sha256(base), ft, words)


def adapted_rows(new_ids: list[int], vocab: PlanVocab, layout_rows: bool) -> list[int]:
    """The rows that adapt: the new tokens' and, with ``layout_rows``, every layout token's (ascending)."""
    return sorted(set(new_ids) | set(range(vocab.layout_offset, vocab.vocab_size))) if layout_rows else new_ids


def unwritten_ids(role: str, old: PlanVocab, new: PlanVocab) -> set[int]:
    """The new tokens an LM of ``role`` never writes: a planner's added words (it writes layouts), a reading LM's
    layout tokens (it writes text)."""
    if role == "planner":
        return set(range(old.text_vocab_size, new.text_vocab_size))
    return set(range(new.layout_offset, new.vocab_size))


def row_ranks(new_ids: list[int], rank: int, head_rank: int = 0, unwritten: set[int] = frozenset()
              ) -> dict[str, tuple[list[int], int]]:  # fmt: skip
    """Which rows of each vocabulary matrix move by a low-rank delta, and its rank: every new row of the input
    embeddings at ``rank``; the output head's at ``rank`` too, or, with a ``head_rank``, those not ``unwritten``
    at ``head_rank``."""
    head = [i for i in new_ids if i not in unwritten] if head_rank else list(new_ids)
    return {"embed_tokens": (list(new_ids), rank), "lm_head": (head, head_rank or rank)}


def add_new_rows(lm: nn.Module, new_ids: list[int], rank: int, head_rank: int, unwritten: set[int],
                 twins: dict[int, int]) -> None:  # fmt: skip
    """Low-rank rows (:func:`row_ranks`) for ``new_ids`` in ``lm``, in place; the rows of ``twins``
    (:func:`~lvg.tokenizers.words.twin_ids`) tied to their twins' instead, in the head only where it has their
    rows (:class:`~lvg.models.adapter_layers.LowRankRows`)."""
    ranks = row_ranks(new_ids, rank, head_rank, unwritten)
    rows = {name: ([i for i in ids if i not in twins], r) for name, (ids, r) in ranks.items()}
    add_low_rank_rows(lm, rows, {name: {i: twins[i] for i in ids if i in twins} for name, (ids, _) in ranks.items()})


def _layer_indices(train_layers: tuple[int, ...], n: int) -> list[int]:
    idx = sorted({i % n for i in train_layers if -n <= i < n})
    if len(idx) != len(set(train_layers)) or not idx:
        raise ValueError(f"finetune.train_layers {list(train_layers)} must name layers of this {n}-layer LM "
                         f"(0..{n - 1}, or -1..-{n} from the top)")  # fmt: skip
    return idx


def prepare(lm: CausalLM, cfg: FinetuneConfig, new_ids: list[int], unwritten: set[int] = frozenset(),
            twins: dict[int, int] | None = None) -> nn.Module:  # fmt: skip
    """``lm`` ready to train with ``cfg.method`` (``new_ids``: the transplanted tokens, whose rows train whole, by a
    low-rank delta or not at all, as ``cfg.new_rows`` says; ``unwritten``: those the LM never writes,
    :func:`unwritten_ids`; ``twins``: the low-rank rows tied to others, :func:`add_new_rows`)."""
    if cfg.method == "full":
        return lm.requires_grad_(True)
    model = _prepare_method(lm, cfg, new_ids if cfg.new_rows == "train" else [])
    if cfg.new_rows == "lowrank" and new_ids:  # after the method froze the base: its u, v and shifts train
        add_new_rows(lm, list(new_ids), cfg.new_rows_rank, cfg.new_rows_head_rank, unwritten, twins or {})
    return model


def _prepare_method(lm: CausalLM, cfg: FinetuneConfig, new_ids: list[int]) -> nn.Module:
    """``lm`` readied for ``cfg.method`` (not full), the rows of ``new_ids`` trainable (whole)."""
    from peft import LoraConfig, TrainableTokensConfig, get_peft_model

    tokens = {"embed_tokens": list(new_ids), "lm_head": list(new_ids)} if new_ids else None
    if cfg.method == "lora":
        s = cfg.lora
        # a vocabulary matrix LoRA adapts gets no trainable rows besides: the low-rank delta covers its new rows too
        tokens = {k: v for k, v in (tokens or {}).items() if k not in s.target_modules} or None
        pc = LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=list(s.target_modules),
                        trainable_token_indices=tokens)  # fmt: skip
        with quiet_peft():
            return get_peft_model(lm, pc)
    # the rest freeze the base; the new tokens' rows train through peft's TrainableTokens
    with quiet_peft():
        model = get_peft_model(lm, TrainableTokensConfig(target_modules=["embed_tokens", "lm_head"],
                                                     token_indices=list(new_ids))) if new_ids else lm  # fmt: skip
    model.requires_grad_(False)
    if new_ids:
        for n, p in model.named_parameters():
            p.requires_grad_("trainable_tokens_delta" in n)
    n = lm.config.num_hidden_layers
    if cfg.method == "freeze":  # the chosen decoder layers train, the rest stay
        for i in _layer_indices(cfg.train_layers, n):
            lm.model.layers[i].requires_grad_(True)
    elif cfg.method == "adapter":  # new modules: they train
        layers = list(range(n)) if cfg.adapter.layers is None else _layer_indices(cfg.adapter.layers, n)
        add_bottlenecks(lm, layers, cfg.adapter.rank)
    elif cfg.method == "prefix":  # starts at the base's own keys and values of a few text tokens (seeded)
        g = torch.Generator().manual_seed(0)
        init = torch.randint(0, lm.config.vocab_size, (cfg.prefix.num_tokens,), generator=g)
        model = PrefixTuned(model, cfg.prefix.num_tokens, init)
    return model


def param_groups(model: nn.Module, cfg: FinetuneConfig) -> list:
    """What the optimizer trains for ``cfg``: ``model``'s parameters, with LoRA's B and the low-rank rows' u in a
    group of their own at ``cfg.lr_ratio`` times the rate (LoRA+) when that is not 1."""
    params = list(model.parameters())
    if cfg.lr_ratio == 1.0:
        return params
    fast = {id(p) for n, p in model.named_parameters() if "lora_B" in n or "lora_embedding_B" in n
            or n.endswith("parametrizations.weight.0.u")}  # fmt: skip
    return [{"params": [p for p in params if id(p) not in fast]},
            {"params": [p for p in params if id(p) in fast], "lr_scale": cfg.lr_ratio}]  # fmt: skip


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters) of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged(model: nn.Module) -> CausalLM:
    """A plain LM with ``model``'s adapter folded in (``model`` itself unchanged). A model with bottleneck
    adapters or a prefix cannot be folded: a ValueError says so."""
    from peft import PeftModel

    if isinstance(model, PrefixTuned) or has_bottlenecks(model):
        raise ValueError("an LM with bottleneck adapters or a prefix cannot be folded into plain LM weights: keep "
                         "its base and the adapter folder (OUT/adapter), and load that with --adapter")  # fmt: skip
    if not isinstance(model, PeftModel) and not low_rank_rows(model):
        return model
    out = copy.deepcopy(model)
    out = out.merge_and_unload() if isinstance(out, PeftModel) else out
    fold_low_rank_rows(out)
    return out


def save_adapter(model: nn.Module, path: str | os.PathLike, base_sha256: str, vocab: PlanVocab,
                 role: str = "planner", config: FinetuneConfig | None = None, new_words: list[str] = ()
                 ) -> Path:  # fmt: skip
    """Write a fine-tuned ``model``'s adapter: peft's part in peft's format (safetensors), the bottleneck, prefix
    or low-rank-row weights in ``lvg_modules.safetensors``, and ``lvg_adapter.json`` (method and settings, role,
    base, vocabulary, the words added to the base's text tokenizer)."""
    from peft import PeftModel
    from safetensors.torch import save_file

    config = config or FinetuneConfig(method="lora", base="?")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    inner = model.lm if isinstance(model, PrefixTuned) else model
    if isinstance(inner, PeftModel):
        inner.save_pretrained(path, safe_serialization=True)
    if config.method in UNMERGEABLE or low_rank_rows(model):
        save_file(module_state(model), str(path / MODULE_WEIGHTS))
    settings = {"lora": dataclasses.asdict(config.lora), "adapter": dataclasses.asdict(config.adapter),
                "prefix": dataclasses.asdict(config.prefix)}.get(config.method)  # fmt: skip
    meta = {"role": role, "method": config.method, "settings": settings, "base_sha256": base_sha256,
            "new_token_rows": isinstance(inner, PeftModel), "plan_vocab": vocab.to_dict(),
            "low_rank_rows": _rows_meta(model, config),
            "new_words": list(new_words), "new_words_format": WORDS_FORMAT, "layout_rows": config.layout_rows}  # fmt: skip
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def _rows_meta(model: nn.Module, config: FinetuneConfig) -> int | dict[str, int] | None:
    """``low_rank_rows`` in ``lvg_adapter.json``: null (none), the rank of every new row of both matrices, or
    ``{"embed_tokens": rank, "lm_head": rank}`` where the head has its own rank (over the rows the LM writes)."""
    if not low_rank_rows(model):
        return None
    if config.new_rows_head_rank:
        return {"embed_tokens": config.new_rows_rank, "lm_head": config.new_rows_head_rank}
    return next(r.u.shape[1] for r in low_rank_rows(model).values())


def _rows_from_meta(value: object, where: Path) -> tuple[int, int] | None:
    """(rank, head rank or 0) from ``low_rank_rows`` in ``lvg_adapter.json`` (see :func:`_rows_meta`)."""

    def rank(x: object) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x > 0

    if value is None or rank(value):
        return None if value is None else (value, 0)
    if isinstance(value, dict) and set(value) == {"embed_tokens", "lm_head"} and all(map(rank, value.values())):
        return value["embed_tokens"], value["lm_head"]
    raise ValueError(f"{where}: low_rank_rows must be a positive integer, an object of positive integers "
                     f'{{"embed_tokens": .., "lm_head": ..}}, or null; got {value!r}')  # fmt: skip


def older_words(meta: dict) -> str | None:
    """Why this lvg cannot rebuild the text tokenizer of the adapter whose ``lvg_adapter.json`` is ``meta`` (its
    new words were added the way an earlier lvg added them, which cuts text another way), or None."""
    if meta.get("new_words") and meta.get("new_words_format") != WORDS_FORMAT:
        return (f"its new_words were added the way an earlier lvg added them (new_words_format "
                f"{meta.get('new_words_format')!r}, this lvg's is {WORDS_FORMAT!r})")  # fmt: skip
    return None


def load_adapter(lm: CausalLM, vocab: PlanVocab, text_tok: PreTrainedTokenizerBase, path: str | os.PathLike,
                 role: str = "planner") -> tuple[nn.Module, PlanVocab, PreTrainedTokenizerBase]:  # fmt: skip
    """``lm`` with the adapter at ``path`` applied (a new LM; ``lm`` unchanged), the adapted vocabulary and its text
    tokenizer (``text_tok`` itself, or a copy with the words the adapter added). LoRA and low-rank rows are merged
    into plain weights; bottleneck adapters and a prefix are attached (a ``PrefixTuned`` for a prefix).

    Refuses, with the reason, a folder that is not an lvg adapter, an adapter for another role or another base,
    settings that do not fit the weights, and any weights file but safetensors (peft would unpickle a ``.bin``)."""

    path = Path(path)
    meta = read_adapter_meta(path, role)
    method = meta.get("method", "lora")  # adapters written before the method was recorded are LoRA
    if method not in ADAPTER_METHODS:
        raise ValueError(f"{path / ADAPTER_META}: method must be one of {', '.join(ADAPTER_METHODS)}, got {method!r}")
    if meta.get("base_sha256") != weights_sha256(lm):
        raise ValueError(f"{path} was trained on another base {role} (the base_sha256 in {ADAPTER_META} is not this "
                         f"{role}'s weights' SHA-256): load it on the model it was trained from")  # fmt: skip
    new_vocab = config_from_dict(PlanVocab, meta.get("plan_vocab") or {}, str(path / ADAPTER_META))
    need = [PEFT_CONFIG, PEFT_WEIGHTS] if method == "lora" or meta.get("new_token_rows") else []
    rows_rank = _rows_from_meta(meta.get("low_rank_rows"), path / ADAPTER_META)
    need += [MODULE_WEIGHTS] if method in UNMERGEABLE or rows_rank else []
    for name in need:
        check_regular_file(path / name)
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a complete lvg {method} adapter folder (no {name})")
    words = meta.get("new_words") or []
    if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
        raise ValueError(f"{path / ADAPTER_META}: new_words must be a list of words, got {words!r}")
    if old := older_words(meta):
        raise ValueError(f"{path / ADAPTER_META}: {old}: fine-tune the adapter again with this lvg")
    new_tok = add_words(text_tok, words) if words else text_tok
    if len(new_tok) != new_vocab.text_vocab_size:
        raise ValueError(f"{path / ADAPTER_META}: its plan_vocab has {new_vocab.text_vocab_size} text tokens, this "
                         f"{role}'s text tokenizer with its {len(words)} new words {len(new_tok)}")  # fmt: skip
    layout_rows = meta.get("layout_rows", False)
    if not isinstance(layout_rows, bool):
        raise ValueError(f"{path / ADAPTER_META}: layout_rows must be true or false, got {layout_rows!r}")
    try:
        model, new_ids = transplant(lm, vocab, new_vocab, new_tok, text_tok)
    except ValueError as e:
        raise ValueError(f"{path / ADAPTER_META}: its plan_vocab does not fit this {role}: {e}") from None
    new_ids = adapted_rows(new_ids, new_vocab, layout_rows)
    if PEFT_CONFIG in need:
        model = peft_folded(model, path)
    if rows_rank:
        add_new_rows(
            model, new_ids, *rows_rank, unwritten_ids(role, vocab, new_vocab), twin_ids(new_tok, len(text_tok))
        )
    if method in UNMERGEABLE:
        model = _attach_modules(model, method, meta.get("settings"), path)
    elif rows_rank:
        state = check_adapter_weights(path / MODULE_WEIGHTS)
        load_module_state(model, state, f"{path / MODULE_WEIGHTS} (with the settings of {ADAPTER_META})")
    fold_low_rank_rows(model)
    return model.eval(), new_vocab, new_tok


def _attach_modules(lm: CausalLM, method: str, settings: object, path: Path) -> nn.Module:
    """``lm`` with the bottleneck adapters or the prefix ``settings`` describe, their weights from the folder."""
    where = str(path / ADAPTER_META)
    cls = BottleneckSettings if method == "adapter" else PrefixSettings
    if not isinstance(settings, dict):
        raise ValueError(f"{where}: settings must be an object (the {method} settings), got {type(settings).__name__}")
    try:
        s = config_from_dict(cls, settings, f"{where} settings")
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    state = check_adapter_weights(path / MODULE_WEIGHTS)
    if method == "adapter":
        n = len(decoder_layers(lm))
        add_bottlenecks(lm, list(range(n)) if s.layers is None else _layer_indices(s.layers, n), s.rank)
    else:
        lm = PrefixTuned(lm, s.num_tokens)
    load_module_state(lm, state, f"{path / MODULE_WEIGHTS} (with the settings of {ADAPTER_META})")
    return lm
