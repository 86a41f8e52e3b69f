"""Train the planner LM: prompt (EN/ZH, canonical, paraphrased, typed) -> layout tokens.

    lvg train planner --config configs/planner-shapes.yaml [--resume] [key.sub=value ...]

No images are involved: each batch draws (prompt, layout) pairs from :mod:`lvg.worlds.shapes.plans` in
process (microseconds per pair). Loss on the layout tokens only; prompts dropped with probability
``cond_dropout`` for classifier-free guidance. Validation samples layouts for benchmark prompts with
the grammar-constrained sampler and checks them symbolically (layout -> scene -> spec). The result is
``OUT/planner``: ``lm/`` (Hugging Face Llama, safetensors), ``text_tokenizer/`` and ``plan_vocab.json``.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lvg.data.imagefolder import batch_indices
from lvg.data.imagefolder import chunks as chunks_of
from lvg.data.layout import jitter_edit_boxes
from lvg.data.text import EDIT_REFUSAL_REASONS, REFUSAL_REASONS
from lvg.models.adapters import FinetuneConfig, param_groups, start_from_base
from lvg.models.planner import (
    IGNORE,
    PlannerSize,
    PlanVocab,
    build_planner_lm,
    edit_prompt,
    grow_planner_from_pretrained,
    init_layout_embeddings,
    planner_batch,
    planner_loss,
)
from lvg.pipelines.planned import LayoutPlanner
from lvg.ranges import check_weights
from lvg.tokenizers.layout import LayoutTokenizer, LayoutTokenizerConfig
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds import EditStream
from lvg.worlds.shapes.edits import EDIT_TYPES as SHAPES_EDIT_TYPES
from lvg.worlds.shapes.plans import PlanDataConfig, make_plan_sample
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS
from lvg.worlds.shapes.world import CANVAS, SIZES

from .common import TrainConfig
from .config import config_to_dict
from .folder import Folder, captions, held_out_loss
from .loop import WEIGHT, Shard, Task, run

LM_ROWS_PER_CHUNK = 8  # 1.8x faster planner steps than one padded batch of 64 on a CPU core (BENCHMARKS.md)


@dataclass
class PlannerModelConfig:
    size: PlannerSize = field(default_factory=PlannerSize)
    init_from: str | None = None  # grow from a local Hugging Face causal LM folder instead
    max_text_tokens: int = 96
    bins_per_px: int = 3
    # start the layout tokens' embeddings at their words and on a smooth curve (locations):
    # lvg.models.planner.init_layout_embeddings; False: the Llama's random init (or the grown LM's own)
    init_layout_from_words: bool = False


@dataclass
class PlannerEvalConfig:
    prompts_per_category: int = 20  # benchmark prompts per category and language at each validation (0: skip)
    guidance_scale: float = 1.0
    temperature: float = 1.0


@dataclass
class PlannerTrainingConfig:
    model: PlannerModelConfig = field(default_factory=PlannerModelConfig)
    text_tokenizer: str = "models/shapes-default/text_tokenizer"
    prompts: str = "benchmarks/shapes_prompts.jsonl"
    imagefolder: str | None = None  # train on a user imagefolder whose metadata.jsonl rows carry layouts instead
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation (val/loss)
    # with an imagefolder: the world whose prompts to refuse (lvg.worlds.World.refusal) replace data.refusal_prob of
    # each batch, so the planner learns to say what it cannot draw (its vocabulary gets the refusal tokens); with
    # data.edit_prob, its edits (lvg.worlds.World.edit) replace that share of each batch (an editor: 1.0)
    world: str | None = None
    data: PlanDataConfig = field(default_factory=PlanDataConfig)
    cond_dropout: float = 0.1
    # start from a trained planner (a model folder or its planner/) and adapt it: full, freeze or lora
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    eval: PlannerEvalConfig = field(default_factory=PlannerEvalConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/planner"))


EDIT_CHECKS, EDIT_VAL_START = 256, 10**9  # held-out edits of a world's stream: indices no training step reaches
EDIT_RETRIES, EDIT_RETRY_STRIDE = 1000, 10**11  # an edit over labels a folder lacks: the next such index instead
REFUSAL_CHECKS = 200  # held-out prompts of each kind (drawable, to refuse) a planner that refuses is validated on
BUCKET = 8  # batches drawn together and split by prompt length, so little compute goes to padding


def plan_batch(step: int, batch_size: int, cfg: PlanDataConfig) -> list:
    """The samples of training step ``step``: rounds of ``BUCKET`` batches are drawn together, sorted by prompt
    length and cut into batches (taken in a seeded order), so a batch's rows have similar lengths. A pure
    function of ``step``, so resuming continues the same stream."""
    rnd, k = divmod(step, BUCKET)
    key = (rnd, batch_size, repr(cfg))
    if _ROUND.get("key") != key:  # the round's pool serves its BUCKET consecutive steps: draw it once
        pool = [make_plan_sample(rnd * BUCKET * batch_size + i, cfg) for i in range(BUCKET * batch_size)]
        pool.sort(key=lambda s: (len(s.text.encode("utf-8")), s.index))
        order = list(range(BUCKET))
        random.Random(f"lvg-plan-buckets:{cfg.seed}:{rnd}").shuffle(order)
        _ROUND.update(key=key, pool=pool, order=order)
    pool, order = _ROUND["pool"], _ROUND["order"]
    return pool[order[k] * batch_size : (order[k] + 1) * batch_size]


_ROUND: dict = {}  # the last round plan_batch drew (a pure function of its key, so caching changes nothing)


def shapes_world_layout_config(bins_per_px: int = 3, refusals: tuple[str, ...] = ()) -> LayoutTokenizerConfig:
    """Shapes World's layout vocabulary; no box side under the small size (the grammar's ``min_side``)."""
    return LayoutTokenizerConfig(SHAPES_WORLD_LABELS, SHAPES_WORLD_BACKGROUNDS, CANVAS, bins_per_px, 4, refusals,
                                 min(SIZES.values()))  # fmt: skip


def folder_layout_config(rows: list[dict], bins_per_px: int = 3, refusals: tuple[str, ...] = ()
                         ) -> LayoutTokenizerConfig:  # fmt: skip
    """The layout vocabulary of a user imagefolder: its labels, backgrounds, canvas, most objects per image, shortest
    box side (``min_side``, whole pixels, of the boxes as ``bins_per_px`` quantises them) and ``refusals`` (the
    reasons a planner that analyses prompts may give)."""
    lays = [r["layout"] for r in rows]
    canvases = {lay.canvas for lay in lays}
    if len(canvases) != 1:
        raise ValueError(f"every layout of a folder must use one canvas size, got {sorted(canvases)}")
    labels = tuple(sorted({o.label for lay in lays for o in lay.objects}))
    loose = LayoutTokenizer(LayoutTokenizerConfig(labels, tuple(sorted({lay.background for lay in lays})),
                                                  canvases.pop(), bins_per_px,
                                                  max(1, max(len(lay.objects) for lay in lays)), refusals))  # fmt: skip
    sides = [min(x1 - x0, y1 - y0) for lay in lays for o in lay.objects
             for x0, y0, x1, y1 in [loose.box_bins(o.box)]]  # fmt: skip
    return replace(loose.config, min_side=min(sides, default=0) // bins_per_px)


@dataclass(frozen=True)
class _FolderSample:
    text: str
    layout: object
    refusal: str | None = None  # a user folder's rows are always drawable
    context: object = None  # an edit's layout before it (a world's edit stream; the text is then its instruction)


def folder_samples(rows: list[dict]) -> list[_FolderSample]:
    """Every (prompt, layout) pair of a user folder's rows: ``text`` and, where a row has one, ``text_zh``."""
    return [_FolderSample(text, rows[i]["layout"]) for i, _, text in captions(rows)]


def folder_batch(samples: list[_FolderSample], step: int, batch_size: int, seed: int) -> list[_FolderSample]:
    """Batch ``step`` of a user folder's pairs: epochs of seeded permutations, a pure function of ``step``."""
    return [samples[i] for i in batch_indices(len(samples), step, batch_size, f"lvg-plan-folder:{seed}")]


def validate(planner: LayoutPlanner, cfg: PlannerEvalConfig, prompts: list[dict]) -> dict[str, float]:
    from lvg.eval.planning import evaluate_plans

    was = planner.lm.training
    planner.lm.eval()
    out: dict[str, float] = {}
    for lang in ("en", "zh"):
        r = evaluate_plans(planner, prompts, lang, guidance_scale=cfg.guidance_scale, temperature=cfg.temperature)
        out[f"val/plan_{lang}"] = r["overall"]
        out.update({f"val/{lang}_{c}": v for c, v in r["categories"].items()})
    planner.lm.train(was)
    return out


def headline(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k[4:]} {metrics[k]:.3f}" for k in ("val/plan_en", "val/plan_zh") if k in metrics)


class PlannerTask(Task):
    """Prompt -> layout tokens (loss on the layout tokens, weighted by their number across shards)."""

    name = "planner"
    rows_per_chunk = LM_ROWS_PER_CHUNK  # rows per forward pass (see lm_loss); benchmarks/train_speed.py varies it

    def __init__(self, cfg: PlannerTrainingConfig, device: torch.device):
        from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts

        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.rows = self.folder = self.refuse = self.edit = None
        if cfg.world is not None and not cfg.imagefolder:
            raise ValueError("world names the refusals or edits of an imagefolder's planner: give imagefolder too")
        if cfg.imagefolder:  # layouts and prompts from metadata.jsonl (no images needed); val_fraction held out
            for name in ("dense_prob", "binding_prob", "placing_prob", "placing_refusal_prob"):
                if getattr(cfg.data, name) > 0:
                    raise ValueError(f"data.{name} {getattr(cfg.data, name)}: it draws Shapes World's own scenes; an "
                                     "imagefolder's rows are its own (leave it at 0)")  # fmt: skip
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction, layouts=True, images=False)
            self.rows = folder_samples(self.folder.train)  # both languages where the folder has them
            if cfg.data.edit_prob > 0 and cfg.world is None:
                raise ValueError("data.edit_prob with an imagefolder draws its world's edits: give world")
            if cfg.world is not None and (cfg.data.refusal_prob > 0 or cfg.data.edit_prob > 0):
                from lvg.worlds import get_world

                world = get_world(cfg.world)
                self.refuse = world.refusal if cfg.data.refusal_prob > 0 else None
                self.edit = world.edit if cfg.data.edit_prob > 0 else None
                for got, what in ((self.refuse, "refusal"), (self.edit, "edit")):
                    if got is None and getattr(cfg.data, f"{what}_prob") > 0:
                        raise ValueError(f"world {cfg.world!r} has no {what} stream (lvg.worlds.World.{what})")
                if self.edit is not None:  # the weights name the world's own edit types
                    check_weights(cfg.data.edit_type_weights, world.edit_types, "data.edit_type_weights")
            refusals = EDIT_REFUSAL_REASONS if self.edit else REFUSAL_REASONS if self.refuse else ()
            lay_cfg = folder_layout_config(self.folder.train + self.folder.val, cfg.model.bins_per_px, refusals)
        else:  # with refusals in the stream, the vocabulary gets their tokens (prompt analysis, editing)
            check_weights(cfg.data.edit_type_weights, SHAPES_EDIT_TYPES, "data.edit_type_weights")
            if cfg.data.edit_prob > 0 and cfg.data.edit_order != "reading":
                raise ValueError(
                    f"data.edit_order {cfg.data.edit_order!r}: Shapes World's edit stream draws in "
                    'reading order only ("lines" is drawn by an imagefolder\'s world, e.g. Emoji World)'
                )
            if cfg.data.edit_prob > 0 and cfg.data.edit_varied_prob > 0:
                raise ValueError(
                    f"data.edit_varied_prob {cfg.data.edit_varied_prob}: Shapes World's edit stream does not draw "
                    "it (an imagefolder's world does, e.g. Emoji World)"
                )
            refusals = (EDIT_REFUSAL_REASONS if cfg.data.edit_prob > 0 else REFUSAL_REASONS
                        if cfg.data.refusal_prob > 0 else ())  # fmt: skip
            lay_cfg = shapes_world_layout_config(cfg.model.bins_per_px, refusals)
        d = cfg.data
        self.edit_stream = EditStream(d.seed, d.edit_combo_prob, d.edit_refusal_prob, d.edit_group_prob,
                                      d.edit_type_weights, d.edit_order, d.edit_varied_prob)  # fmt: skip
        self.adapted = None
        if cfg.finetune.base:  # the base's layers and text tokenizer; its rows for the tokens both vocabularies name
            if cfg.model.init_from:
                raise ValueError("give model.init_from (grow a Hugging Face LM) or finetune.base, not both")
            # the base's labels stay plannable; finetune.new_words reads the folder's prompts
            self.adapted = start_from_base(cfg.finetune, "planner", lay_cfg, [r.text for r in self.rows or ()])
            lm, text_tok, vocab = self.adapted.lm, self.adapted.text_tokenizer, self.adapted.vocab
        elif cfg.model.init_from:
            lm, text_tok, vocab = grow_planner_from_pretrained(cfg.model.init_from, lay_cfg, cfg.model.max_text_tokens)
        else:
            text_tok = load_text_tokenizer(cfg.text_tokenizer)
            vocab = PlanVocab.from_tokenizer(text_tok, lay_cfg, cfg.model.max_text_tokens)
            lm = build_planner_lm(vocab, cfg.model.size)
            if cfg.model.init_layout_from_words:
                init_layout_embeddings(lm, vocab, text_tok)
        if d.edit_prob > 0:  # the order the edits put objects in is the one the trained editor is given them in
            vocab = replace(vocab, layout=replace(vocab.layout, order=d.edit_order))
        self.lm, self.text_tok, self.vocab = lm.to(device).train(), text_tok, vocab
        self.layout_tok = LayoutTokenizer(vocab.layout)
        self.labels = frozenset(vocab.layout.labels)  # (what an edit of a world's stream may name)
        self.modules = {"lm": self.lm}
        self.planner = LayoutPlanner(self.lm, text_tok, vocab)
        k = cfg.eval.prompts_per_category
        self.prompts = []
        if k and self.rows is None:  # the Shapes World benchmark says nothing about a user folder's labels
            all_prompts = load_prompts(cfg.prompts)
            self.prompts = [r for c in CATEGORIES for r in [p for p in all_prompts if p["category"] == c][:k]]

    def batch(self, step: int, shard: Shard) -> dict[str, torch.Tensor]:
        cfg, B = self.cfg, self.cfg.train.batch_size
        if self.rows is None:
            samples = plan_batch(step, B, cfg.data)
        else:
            samples = folder_batch(self.rows, step, B, cfg.data.seed)
            if self.refuse is not None:  # a share of the rows become prompts to refuse, with their reason
                pick = random.Random(f"lvg-plan-refuse:{cfg.data.seed}:{step}")
                samples = [self.refusal(step * B + j) if pick.random() < cfg.data.refusal_prob else s
                           for j, s in enumerate(samples)]  # fmt: skip
            if self.edit is not None:  # a share of the rows become the world's edits
                pick = random.Random(f"lvg-plan-edit:{cfg.data.seed}:{step}")
                samples = [self.edit_sample(step * B + j) if pick.random() < cfg.data.edit_prob else s
                           for j, s in enumerate(samples)]  # fmt: skip
        if cfg.data.edit_box_noise > 0:
            samples = self.jitter_edits(samples, step)
        rng = random.Random(f"lvg-plan-drop:{cfg.data.seed}:{step}")
        return self.encode(shard.take(samples), shard.take([rng.random() < cfg.cond_dropout for _ in samples]))

    def jitter_edits(self, samples: list, step: int) -> list:
        """``samples`` with reader-like noise on the boxes of their edits (``data.edit_box_noise``; a pure function
        of ``step``, drawn before the batch is sharded, so resuming and any world size see the same rows)."""
        rng = random.Random(f"lvg-edit-noise:{self.cfg.data.seed}:{step}")
        out = []
        for s in samples:
            if s.context is not None:
                before, after = jitter_edit_boxes(s.context, None if s.refusal else s.layout, self.cfg.data.edit_box_noise,
                                                  rng, self.vocab.layout.min_side, self.vocab.layout.order)  # fmt: skip
                s = replace(s, context=before, layout=s.layout if s.refusal else after)
            out.append(s)
        return out

    def refusal(self, index: int, held_out: bool = False) -> _FolderSample:
        """Item ``index`` of the world's stream of prompts to refuse (``held_out``: its names that never train)."""
        text, reason = self.refuse(index, self.cfg.data.seed, held_out)
        return _FolderSample(text, None, reason)

    def edit_sample(self, index: int) -> _FolderSample:
        """Item ``index`` of the world's edit stream: instruction, the layout before, the one after or a refusal.
        An edit naming a label the vocabulary lacks (a folder that shows only some of the world's) is passed over for
        the next of a seeded sequence of items no training step draws (``index + k * EDIT_RETRY_STRIDE``)."""
        known = self.labels
        for k in range(EDIT_RETRIES):
            text, before, after, reason = self.edit(index + k * EDIT_RETRY_STRIDE, self.edit_stream)
            if {o.label for lay in (before, after) if lay is not None for o in lay.objects} <= known:
                return _FolderSample(text, after, reason, before)
        raise ValueError(f"{EDIT_RETRIES} edits of world {self.cfg.world!r} in a row name labels the folder "
                         f"{self.cfg.imagefolder} does not show: give a folder with more of the world's scenes")  # fmt: skip

    def encode(self, samples: list, drop: list[bool]) -> dict[str, torch.Tensor]:
        """The LM batch of (prompt, layout) samples, the prompts of rows ``drop`` left out."""
        L, tok = self.vocab.max_text_tokens, self.layout_tok
        text_ids = [ids[:L] for ids in self.text_tok([s.text for s in samples], add_special_tokens=False)["input_ids"]]
        text_ids = [t if s.context is None else edit_prompt(t, tok.encode(s.context), self.vocab)
                    for t, s in zip(text_ids, samples)]  # fmt: skip
        lay_ids = [self.layout_tok.encode_refusal(s.refusal) if s.refusal else self.layout_tok.encode(s.layout)
                   for s in samples]  # fmt: skip
        # a refusal needs its prompt, and an edit its instruction and layout (only plain prompts are dropped)
        drop = [d and not s.refusal and s.context is None for d, s in zip(drop, samples)]
        return planner_batch(text_ids, lay_ids, self.vocab, drop)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return lm_loss(self.lm, batch, self.device, self.rows_per_chunk)

    def validate(self) -> dict[str, float]:
        if self.folder is not None:  # a user folder: the loss on its held-out rows (prompts never dropped)
            val = folder_samples(self.folder.val)
            out = {"val/loss": self.held_out_loss(val)} if val else {}
            if self.refuse is not None:  # held-out rows drawn, held-out prompts to refuse refused
                out.update(self.validate_refusals([s.text for s in val][:REFUSAL_CHECKS]))
            if self.edit is not None:  # the loss on edits no training step draws
                out["val/edit_loss"] = self.held_out_loss(self.val_edits)
            return out
        return validate(self.planner, self.cfg.eval, self.prompts) if self.prompts else {}

    @functools.cached_property
    def val_edits(self) -> list[_FolderSample]:
        """The world's held-out edits (the same at every validation)."""
        return [self.edit_sample(EDIT_VAL_START + i) for i in range(EDIT_CHECKS)]

    def held_out_loss(self, samples: list[_FolderSample]) -> float:
        """The loss on held-out ``samples``, in batches of the training batch size, no prompt dropped."""
        chunks = chunks_of(len(samples), self.cfg.train.batch_size)
        return held_out_loss(self, ((self.encode([samples[i] for i in c], [False] * len(c)), len(c)) for c in chunks))

    @torch.no_grad()
    def validate_refusals(self, drawable: list[str]) -> dict[str, float]:
        """The share of ``drawable`` prompts the planner draws, and of held-out prompts to refuse it refuses."""
        was = self.lm.training
        self.lm.eval()
        refuse = [self.refusal(i, held_out=True).text for i in range(REFUSAL_CHECKS)]
        L = self.vocab.max_text_tokens  # (longer prompts are refused before the planner reads them)
        drawable, refuse = ([t for t in texts if len(self.text_tok(t, add_special_tokens=False)["input_ids"]) <= L]
                            for texts in (drawable, refuse))  # fmt: skip
        said = self.planner.refusals(self.planner.tokenize(drawable + refuse), 64)
        self.lm.train(was)
        return {"val/accepted": sum(r is None for r in said[: len(drawable)]) / max(1, len(drawable)),
                "val/refused": sum(r is not None for r in said[len(drawable) :]) / max(1, len(refuse))}  # fmt: skip

    def summary(self, metrics: dict[str, float]) -> str:
        return headline(metrics) if self.prompts else super().summary(metrics)

    def param_groups(self) -> list:
        """Under fine-tuning, LoRA's B and low-rank rows may train faster (``finetune.lr_ratio``, LoRA+)."""
        return param_groups(self.lm, self.cfg.finetune) if self.adapted else super().param_groups()

    def save(self, out: Path) -> Path:
        """``OUT/planner`` (any LoRA merged in) and, for LoRA, bottleneck adapters and prefixes, the adapter alone in
        ``OUT/adapter``; the last two cannot be merged, so they write no ``OUT/planner`` (returns ``OUT/adapter``)."""
        lm = self.adapted.save(self.lm, out, "planner") if self.adapted else self.lm
        if lm is None:
            return out / "adapter"
        return LayoutPlanner(lm, self.text_tok, self.vocab).save_pretrained(out / "planner")


def lm_loss(
    lm, batch: dict[str, torch.Tensor], device: torch.device, rows_per_chunk: int = LM_ROWS_PER_CHUNK
) -> dict[str, torch.Tensor]:
    """Next-token loss of an LM on a right-padded batch (``input_ids``, ``attention_mask``, ``position_ids``,
    ``labels``): the mean over its target tokens, weighted by their number when shards are summed.

    The rows run through the LM in chunks of ``rows_per_chunk``, sorted by length and each cut to its longest row, so
    padding costs little (right padding: causal attention never lets a real token see the pads after it, so the
    loss is the one of the whole padded batch, up to float rounding)."""
    lengths = batch["attention_mask"].sum(-1)  # [B]
    order = torch.argsort(lengths, stable=True)
    total, count = torch.zeros((), device=device), (batch["labels"][:, 1:] != IGNORE).sum()
    for chunk in order.split(rows_per_chunk):
        T = int(lengths[chunk].max())
        part = {k: v[chunk, :T].to(device) for k, v in batch.items()}
        logits = lm(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                    position_ids=part["position_ids"]).logits  # [b, T, V]  # fmt: skip
        total = total + planner_loss(logits, part["labels"], reduction="sum")
    return {"loss": total / count.clamp(min=1).to(device), WEIGHT: count}


def train_planner(cfg: PlannerTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) planner training; returns the saved planner folder ``OUT/planner``."""
    return run(cfg.train, lambda device: PlannerTask(cfg, device), resume, stop_after)
