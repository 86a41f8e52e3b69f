"""Train the unified LM on Shapes World: text -> image and image -> text in one causal LM.

    lvg train llm --config configs/llm-shapes.yaml [--resume] [key.sub=value ...]

Each batch renders scenes, tokenizes the images with the (frozen) image tokenizer and mixes both
directions; text -> image rows drop their caption with probability ``cond_dropout`` (classifier-free
guidance). Same conventions as the tokenizer trainer: typed config, progress bar, atomic
resumable checkpoints, TensorBoard, periodic validation (benchmark accuracy, caption exact match).
The result is a complete pipeline folder, ``OUT/pipeline``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lvg.models.unified import VocabLayout, build_lm, grow_from_pretrained, training_batch, weighted_lm_loss
from lvg.pipelines.pipeline import Pipeline
from lvg.resources import benchmark_prompts_file, default_component_dir
from lvg.sampling.config import GenerationConfig
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.dataset import ShapesWorldBatches, ShapesWorldConfig

from .checkpoint import load_checkpoint
from .common import (
    TrainConfig,
    TrainingRun,
    autocast,
    lr_at,
    set_lr,
    start_run,
)
from .config import config_to_dict


@dataclass
class LMConfig:
    preset: str = "small"  # tiny | small | base | medium (see lvg.models.unified.PRESETS)
    init_from: str | None = None  # grow from a local Hugging Face causal LM folder instead
    max_text_tokens: int = 64


@dataclass
class LLMDataConfig:
    t2i_prob: float = 0.75  # share of text -> image rows (the rest are captioning rows)
    cond_dropout: float = 0.1  # text -> image rows trained without their caption (for CFG)
    langs: list[str] = field(default_factory=lambda: ["en", "zh"])
    paraphrase_prob: float = 0.1
    seed: int = 0


@dataclass
class LLMLossConfig:
    image_weight: float = 1.0
    text_weight: float = 1.0


@dataclass
class LLMEvalConfig:
    prompts_per_category: int = 10  # benchmark prompts per category at each validation (0: skip)
    captions: int = 100  # held-out renders captioned at each validation (0: skip)
    guidance_scale: float = 3.0
    temperature: float = 1.0
    prompts: str | None = None  # benchmark prompts file (None: the one shipped with lvg)

    def __post_init__(self) -> None:
        self.generation()  # bad sampling settings fail when the config is read, not at the first validation

    def generation(self) -> GenerationConfig:
        """The sampling settings of validation (seed 0: every validation draws the same noise)."""
        return GenerationConfig(guidance_scale=self.guidance_scale, temperature=self.temperature, seed=0)


@dataclass
class LLMTrainingConfig:
    model: LMConfig = field(default_factory=LMConfig)
    image_tokenizer: str | None = None  # folder; None: the default model's image_tokenizer/ (see lvg.resources)
    text_tokenizer: str | None = None  # folder; None: the default model's text_tokenizer/
    data: LLMDataConfig = field(default_factory=LLMDataConfig)
    loss: LLMLossConfig = field(default_factory=LLMLossConfig)
    eval: LLMEvalConfig = field(default_factory=LLMEvalConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/llm"))


def _component(path: str | None, name: str) -> Path:
    """``path`` as given (relative to the working directory), or the default model's component ``name``."""
    return Path(path) if path is not None else default_component_dir(name)


def validate(pipe: Pipeline, cfg: LLMEvalConfig, prompts: list[dict]) -> dict[str, float]:
    from lvg.eval.shapes import evaluate_captioning, evaluate_generation

    was = pipe.lm.training
    pipe.lm.eval()
    out: dict[str, float] = {}
    if prompts:
        for lang in ("en", "zh"):
            r = evaluate_generation(pipe, prompts, lang, cfg.generation())
            out[f"val/acc_{lang}"] = r["overall"]
            out.update({f"val/{lang}_{c}": v for c, v in r["categories"].items()})
    if cfg.captions:
        out["val/caption_exact_en"] = evaluate_captioning(pipe, cfg.captions, "en")["exact_match"]
    pipe.lm.train(was)
    return out


HEADLINE = ("val/acc_en", "val/acc_zh", "val/caption_exact_en")


def headline(metrics: dict[str, float]) -> str:
    """The progress line's summary of a validation: accuracy per language and caption exact match."""
    return ", ".join(f"{k[4:]} {metrics[k]:.3f}" for k in HEADLINE if k in metrics)


def train_llm(cfg: LLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the saved pipeline folder."""
    from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts

    tc = cfg.train
    out, device = start_run(cfg, resume)
    image_tok = ImageTokenizer.from_pretrained(_component(cfg.image_tokenizer, "image_tokenizer"), device=device)
    image_tok.requires_grad_(False)
    grid = image_tok.config.grid
    if cfg.model.init_from:
        lm, text_tok, layout = grow_from_pretrained(cfg.model.init_from, image_tok.codebook_size, grid * grid,
                                                    cfg.model.max_text_tokens)  # fmt: skip
    else:
        text_tok = load_text_tokenizer(_component(cfg.text_tokenizer, "text_tokenizer"))
        layout = VocabLayout.from_tokenizers(text_tok, image_tok.codebook_size, grid * grid, cfg.model.max_text_tokens)
        lm = build_lm(layout, cfg.model.preset)
    lm.to(device).train()
    opt = torch.optim.AdamW(lm.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    step = load_checkpoint(out, {"lm": lm}, {"opt": opt})["step"] if resume else 0
    pipe = Pipeline(lm, image_tok, text_tok, layout)

    all_prompts = load_prompts(cfg.eval.prompts or benchmark_prompts_file())
    k = cfg.eval.prompts_per_category
    prompts = [r for c in CATEGORIES for r in [p for p in all_prompts if p["category"] == c][:k]]
    data_cfg = ShapesWorldConfig(
        seed=cfg.data.seed, langs=tuple(cfg.data.langs), paraphrase_prob=cfg.data.paraphrase_prob
    )
    loader = DataLoader(ShapesWorldBatches(tc.batch_size, data_cfg, start_batch=step), batch_size=None,
                        num_workers=tc.num_workers, persistent_workers=tc.num_workers > 0)  # fmt: skip
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    batches = iter(loader)
    L = layout.max_text_tokens
    with TrainingRun(out, tc, step, end, "llm", {"lm": lm}, {"opt": opt}, {"config": config_to_dict(cfg)}) as run:
        while step < end:
            b = next(batches)
            rng = random.Random(f"lvg-llm-rows:{cfg.data.seed}:{b['batch_index']}")  # row choices, resumable
            B = len(b["text"])
            t2i = [rng.random() < cfg.data.t2i_prob for _ in range(B)]
            drop = [rng.random() < cfg.data.cond_dropout for _ in range(B)]
            texts = [t if d else f for t, f, d in zip(b["text"], b["full_text"], t2i, strict=True)]
            text_ids = [ids[:L] for ids in text_tok(texts, add_special_tokens=False)["input_ids"]]
            codes = image_tok.encode(b["image"].to(device))  # [B, h, w]
            batch = {k: v.to(device) for k, v in training_batch(codes, text_ids, b["lang"], t2i, drop, layout).items()}
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            with autocast(device, tc.precision):
                logits = lm(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"],
                ).logits  # [B, T, V]
            loss, parts = weighted_lm_loss(logits, batch["labels"], batch["is_image"], cfg.loss.image_weight,
                                           cfg.loss.text_weight)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(lm.parameters(), tc.grad_clip)
            opt.step()
            step = run.advance()
            if step % tc.log_every == 0 or step == end:
                run.log.log(step, **{"train/loss": loss.item(), "train/lr": lr, "train/grad_norm": gnorm.item(),
                                 **{f"train/{k}": v for k, v in parts.items()}})  # fmt: skip
                run.bar.set_postfix(loss=f"{loss.item():.3f}", img=f"{parts['image_loss']:.3f}")
            run.end_of_step(step, lambda: validate(pipe, cfg.eval, prompts), headline)
    return pipe.save_pretrained(out / "pipeline")
