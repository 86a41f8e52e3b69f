"""Train ONE LM that plans and reads: prompt -> layout, layout -> caption, question + layout -> answer.

    lvg train unified-lm --config configs/unified-lm-shapes.yaml [--resume] [key.sub=value ...]

The planner and the reading LM of a planned model share one vocabulary (:class:`~lvg.models.planner.PlanVocab`), and
their sequences are told apart by their first tokens (``<bos> prompt <layout>`` plans; ``<bos> <i2t>`` and
``<bos> <vqa>`` read), so one causal LM learns all three tasks. It is a :class:`~lvg.train.loop.MultiTask` of the
planner's task and the reading LM's task on one shared LM: each step draws a planning batch of ``plan_batch_size``
rows and a reading batch of ``train.batch_size`` rows, and the loss is ``plan_weight * planning + reading``. The
result, ``OUT/lm`` (``lm/``, ``text_tokenizer/``, ``plan_vocab.json``), serves as a planned model's planner and as
its reading LM.

``finetune.base`` starts from a trained planner (a model folder or its ``planner/``) instead of a new LM: the planning
half then keeps the base's vocabulary (its refusal tokens too, for ``plan_data`` with prompts to refuse), and the
reading half reads and writes in that vocabulary. Refusal tokens come after every layout token, so a reading row is
the same token ids either way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lvg.models.adapters import FinetuneConfig
from lvg.models.planner import PlannerSize, PlanVocab, save_lm_folder
from lvg.models.reading_lm import ReadingTokens
from lvg.ranges import bounded, check_ranges
from lvg.worlds.shapes.plans import PlanDataConfig
from lvg.worlds.shapes.reading import ReadingDataConfig

from .common import TrainConfig
from .config import config_to_dict
from .loop import MultiTask, run
from .planner import PlannerEvalConfig, PlannerModelConfig, PlannerTask, PlannerTrainingConfig
from .reader import ReadingLMTask, ReadingLMTrainingConfig


@dataclass
class UnifiedLMTrainingConfig:
    size: PlannerSize = field(default_factory=lambda: PlannerSize(192, 4, 6, 512))
    text_tokenizer: str = "models/shapes-default/text_tokenizer"
    prompts: str = "benchmarks/shapes_prompts.jsonl"
    bins_per_px: int = bounded(1, 16, default=1)
    max_text_tokens: int = bounded(1, 256, default=96)
    plan_data: PlanDataConfig = field(default_factory=PlanDataConfig)
    reading_data: ReadingDataConfig = field(default_factory=ReadingDataConfig)
    plan_batch_size: int = bounded(1, None, default=64)  # planning rows per step (train.batch_size: reading rows)
    plan_weight: float = bounded(0.0, None, default=1.0)  # loss = plan_weight * planning loss + reading loss
    cond_dropout: float = bounded(0.0, 1.0, default=0.1)
    eval: PlannerEvalConfig = field(default_factory=PlannerEvalConfig)
    eval_captions: int = bounded(0, None, default=100)  # held-out layouts captioned per language at each validation
    eval_questions: int = bounded(0, None, default=20)  # held-out questions per type and language
    imagefolder: str | None = None  # plan and caption a user imagefolder's layouts instead (see the two trainers)
    # start from a trained planner (a model folder or its planner/) and teach it to read too; size and
    # text_tokenizer are then the base's
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    val_fraction: float = bounded(0.0, 1.0, hi_open=True, default=0.1)  # share of its rows held out for validation
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/unified-lm"))

    def __post_init__(self) -> None:
        check_ranges(self)

    def planner_config(self) -> PlannerTrainingConfig:
        """The planning half as the planner trainer's config (its batch: ``plan_batch_size`` rows)."""
        model = PlannerModelConfig(size=self.size, max_text_tokens=self.max_text_tokens, bins_per_px=self.bins_per_px)
        return PlannerTrainingConfig(model=model, text_tokenizer=self.text_tokenizer, prompts=self.prompts,
                                     data=self.plan_data, cond_dropout=self.cond_dropout, eval=self.eval,
                                     imagefolder=self.imagefolder, val_fraction=self.val_fraction,
                                     finetune=self.finetune,
                                     train=dataclasses.replace(self.train, batch_size=self.plan_batch_size))  # fmt: skip

    def reading_config(self) -> ReadingLMTrainingConfig:
        """The reading half as the reading-LM trainer's config."""
        return ReadingLMTrainingConfig(size=self.size, text_tokenizer=self.text_tokenizer, bins_per_px=self.bins_per_px,
                                       max_text_tokens=self.max_text_tokens, data=self.reading_data,
                                       eval_captions=self.eval_captions, eval_questions=self.eval_questions,
                                       imagefolder=self.imagefolder, val_fraction=self.val_fraction,
                                       train=self.train)  # fmt: skip


class UnifiedLMTask(MultiTask):
    """The planner's task and the reading LM's task on ONE LM (the planner's; the reading task's own is dropped)."""

    HEADLINE = ("val/plan_en", "val/plan_zh", "val/caption_en", "val/caption_zh", "val/vqa_en", "val/vqa_zh")

    def __init__(self, cfg: UnifiedLMTrainingConfig, device: torch.device):
        plan = PlannerTask(cfg.planner_config(), device)
        read = ReadingLMTask(cfg.reading_config(), device)
        if _reading_part(read.vocab) != _reading_part(plan.vocab):
            raise ValueError("the planning and reading vocabularies differ (text tokenizer or layout settings)")
        # one LM for both tasks, in the planner's vocabulary (a base's refusal tokens, which no reading row uses)
        read.lm, read.vocab, read.text_tok = plan.lm, plan.vocab, plan.text_tok
        read.tasks = ReadingTokens.from_tokenizer(plan.text_tok)
        read.modules = {"lm": plan.lm}
        super().__init__({"plan": plan, "read": read}, {"plan": cfg.plan_weight}, name="unified LM")
        self.cfg, self.config = cfg, config_to_dict(cfg)

    def validate(self) -> dict[str, float]:
        """The two tasks' validations; their held-out losses (a user folder) as ``val/plan_loss``, ``val/read_loss``,
        and a reading metric named as a planning one (question types ``relation`` and ``background`` are prompt
        categories too: ``val/en_relation``) as ``val/read_en_relation``."""
        plan, read = self.tasks["plan"].validate(), self.tasks["read"].validate()
        out = {("val/plan_loss" if m == "val/loss" else m): v for m, v in plan.items()}
        for m, v in read.items():
            name = "val/read_loss" if m == "val/loss" else m
            out["val/read_" + name[4:] if name in out else name] = v
        return out

    def summary(self, metrics: dict[str, float]) -> str:
        if not any(k in metrics for k in self.HEADLINE):
            return super().summary(metrics)
        return ", ".join(f"{k[4:]} {metrics[k]:.3f}" for k in self.HEADLINE if k in metrics)

    def save(self, out: Path) -> Path:
        plan = self.tasks["plan"]
        return save_lm_folder(out / "lm", plan.lm, plan.text_tok, plan.vocab)


def _reading_part(vocab: PlanVocab) -> PlanVocab:
    """``vocab`` without what only planning uses (refusal tokens, the shortest box side a sampled layout may have)."""
    return dataclasses.replace(vocab, layout=dataclasses.replace(vocab.layout, refusals=(), min_side=0))


def train_unified_lm(cfg: UnifiedLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) unified-LM training; returns the saved folder ``OUT/lm``."""
    return run(cfg.train, lambda device: UnifiedLMTask(cfg, device), resume, stop_after)
