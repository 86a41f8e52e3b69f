"""Train ONE LM that plans and reads: prompt -> layout, layout -> caption, question + layout -> answer.

    lvg train unified-lm --config configs/unified-lm-shapes.yaml [--resume] [key.sub=value ...]

The planner and the reading LM of a planned model share one vocabulary (:class:`~lvg.models.planner.PlanVocab`), and
their sequences are told apart by their first tokens (``<bos> prompt <layout>`` plans; ``<bos> <i2t>`` and
``<bos> <vqa>`` read), so one causal LM learns all three tasks: each step takes a planning batch
(:func:`lvg.train.planner.plan_batch`) and a reading batch (:func:`lvg.worlds.shapes.reading.make_reading_sample`), and the
loss is their weighted sum. The result, ``OUT/lm`` (``lm/``, ``text_tokenizer/``, ``plan_vocab.json``), serves as a
planned model's planner and its reading LM alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lvg.models.planner import (
    IGNORE,
    PlannerSize,
    PlanVocab,
    build_planner_lm,
    planner_batch,
    planner_loss,
    save_lm_folder,
)
from lvg.models.reading_lm import ReadingTokens, reading_batch, reading_prompt
from lvg.pipelines.planned import LayoutPlanner
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.plans import PlanDataConfig
from lvg.worlds.shapes.reading import ReadingDataConfig, make_reading_sample

from .checkpoint import load_checkpoint
from .common import TrainConfig, TrainingRun, autocast, lr_at, set_lr, start_run
from .config import config_to_dict
from .planner import PlannerEvalConfig, plan_batch, shapes_world_layout_config
from .planner import validate as validate_plans


@dataclass
class UnifiedLMTrainingConfig:
    size: PlannerSize = field(default_factory=lambda: PlannerSize(192, 4, 6, 512))
    text_tokenizer: str = "models/shapes-default/text_tokenizer"
    prompts: str = "benchmarks/shapes_prompts.jsonl"
    bins_per_px: int = 1
    max_text_tokens: int = 96
    plan_data: PlanDataConfig = field(default_factory=PlanDataConfig)
    reading_data: ReadingDataConfig = field(default_factory=ReadingDataConfig)
    plan_batch_size: int = 64  # planning rows per step; train.batch_size is the reading rows per step
    plan_weight: float = 1.0  # loss = plan_weight * planning loss + reading loss
    cond_dropout: float = 0.1
    eval: PlannerEvalConfig = field(default_factory=PlannerEvalConfig)
    eval_captions: int = 100
    eval_questions: int = 20
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/unified-lm"))


def _token_loss(lm, batch: dict[str, torch.Tensor], device: torch.device, precision: str) -> tuple[torch.Tensor, int]:
    """Summed next-token loss over the labelled tokens of ``batch``, and their count."""
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast(device, precision):
        logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"]).logits  # [b, T, V]  # fmt: skip
    n = int((batch["labels"][:, 1:] != IGNORE).sum())
    return planner_loss(logits, batch["labels"]) * n, n


def train_unified_lm(cfg: UnifiedLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) unified-LM training; returns the saved folder ``OUT/lm``."""
    from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts

    from .reader import validate_reading_lm

    tc = cfg.train
    out, device = start_run(cfg, resume)
    text_tok = load_text_tokenizer(cfg.text_tokenizer)
    vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(cfg.bins_per_px), cfg.max_text_tokens)
    tasks = ReadingTokens.from_tokenizer(text_tok)
    layout_tok = vocab.layout_tokenizer
    lm = build_planner_lm(vocab, cfg.size).to(device).train()
    opt = torch.optim.AdamW(lm.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    step = load_checkpoint(out, {"lm": lm}, {"opt": opt})["step"] if resume else 0
    planner = LayoutPlanner(lm, text_tok, vocab)
    k = cfg.eval.prompts_per_category
    all_prompts = load_prompts(cfg.prompts) if k else []
    prompts = [r for c in CATEGORIES for r in [p for p in all_prompts if p["category"] == c][:k]]
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    L = cfg.max_text_tokens

    def validate() -> dict[str, float]:
        m = validate_plans(planner, cfg.eval, prompts) if prompts else {}
        return {**m, **validate_reading_lm(lm, text_tok, vocab, cfg)}

    def headline(m: dict[str, float]) -> str:
        keys = ("val/plan_en", "val/plan_zh", "val/caption_en", "val/vqa_en", "val/vqa_zh", "val/en_relation")
        return ", ".join(f"{k[4:]} {m[k]:.3f}" for k in keys if k in m)

    with TrainingRun(out, tc, step, end, "unified LM", {"lm": lm}, {"opt": opt},
                     {"config": config_to_dict(cfg)}) as run:  # fmt: skip
        while step < end:
            # planning rows: prompt -> layout (prompts dropped with probability cond_dropout, for guidance)
            plans = plan_batch(step, cfg.plan_batch_size, cfg.plan_data)
            rng = random.Random(f"lvg-plan-drop:{cfg.plan_data.seed}:{step}")
            drop = [rng.random() < cfg.cond_dropout for _ in plans]
            text_ids = [ids[:L] for ids in text_tok([s.text for s in plans], add_special_tokens=False)["input_ids"]]
            p_sum, p_n = _token_loss(lm, planner_batch(text_ids, [layout_tok.encode(s.layout) for s in plans], vocab,
                                                       drop), device, tc.precision)  # fmt: skip
            # reading rows: layout -> caption, question + layout -> answer (captions and questions padded apart)
            reads = [make_reading_sample(i, cfg.reading_data) for i in range(step * tc.batch_size,
                                                                              (step + 1) * tc.batch_size)]  # fmt: skip
            q_ids = text_tok([s.question or "" for s in reads], add_special_tokens=False)["input_ids"]
            a_ids = text_tok([s.answer for s in reads], add_special_tokens=False)["input_ids"]
            rows = [reading_prompt(vocab, tasks, layout_tok.encode(s.layout), lang=s.lang) if s.question is None
                    else reading_prompt(vocab, tasks, layout_tok.encode(s.layout), question_ids=q[:L])
                    for s, q in zip(reads, q_ids)]  # fmt: skip
            r_sum, r_n = torch.zeros((), device=device), 0
            for group in ([i for i, s in enumerate(reads) if (s.question is None) == cap] for cap in (True, False)):
                if group:
                    s_, n_ = _token_loss(lm, reading_batch([rows[i] for i in group], [a_ids[i] for i in group], vocab),
                                         device, tc.precision)  # fmt: skip
                    r_sum, r_n = r_sum + s_, r_n + n_
            plan_loss, read_loss = p_sum / p_n, r_sum / r_n
            loss = cfg.plan_weight * plan_loss + read_loss
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            gnorm = run.optimize(opt, lm.parameters(), loss)
            step = run.advance()
            run.log_train(step, lr, gnorm, loss=loss.item(), plan=plan_loss.item(), read=read_loss.item())
            run.end_of_step(step, validate, headline)
    return save_lm_folder(out / "lm", lm, text_tok, vocab)
