"""Train a small CLIP on the infinite Shapes World stream.

    lvg train clip --config configs/clip-shapes.yaml [--resume] [--stop-after N] [key.sub=value ...]

Loop: render a batch of scenes with their (randomly partial, EN or ZH) canonical captions -> symmetric
InfoNCE over the batch -> AdamW step. Periodic validation on held-out renders (zero-shot caption choice
and text -> image retrieval, see :mod:`lvg.eval.clip_eval`), atomic checkpoints, TensorBoard. The trained
model is written with ``save_pretrained`` to ``OUT/clip``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lvg.models.clip import ClipConfig, ShapesClip
from lvg.resources import default_component_dir
from lvg.tokenizers.text import PAD, load_text_tokenizer
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
class ClipEvalConfig:
    num_images: int = 500  # held-out renders for zero-shot and retrieval
    num_candidates: int = 10  # captions the zero-shot check chooses among


@dataclass
class ClipTrainingConfig:
    """Everything ``lvg train clip`` needs (the YAML file's sections)."""

    model: ClipConfig = field(default_factory=ClipConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/clip", weight_decay=0.1))
    eval: ClipEvalConfig = field(default_factory=ClipEvalConfig)
    text_tokenizer: str | None = None  # folder; None: the default model's text_tokenizer/ (see lvg.resources)
    paraphrase_prob: float = 0.0  # chance that a training caption is a paraphrase of the canonical one
    data_seed: int = 0


def validate(model: ShapesClip, cfg: ClipEvalConfig) -> dict[str, float]:
    from lvg.eval.clip_eval import retrieval_top1, zero_shot_accuracy

    zs = zero_shot_accuracy(model, cfg.num_images, num_candidates=cfg.num_candidates)["accuracy"]
    return {"val/zero_shot_top1": zs, "val/retrieval_top1": retrieval_top1(model, cfg.num_images)["top1"]}


def train_clip(cfg: ClipTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the folder of the saved CLIP.

    ``stop_after`` ends this run after that many steps (checkpointed), to be continued with
    ``resume=True``; the schedule is always that of ``cfg.train.steps``.
    """
    tc = cfg.train
    tok_dir = cfg.text_tokenizer if cfg.text_tokenizer is not None else default_component_dir("text_tokenizer")
    text_tok = load_text_tokenizer(tok_dir, required=[PAD])
    out, device = start_run(cfg, resume)
    model = ShapesClip(cfg.model, text_tok).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n != "text_tower.pos"]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and n != "text_tower.pos")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=tc.lr, betas=(tc.beta1, tc.beta2))  # fmt: skip
    modules, optims = {"model": model}, {"opt": opt}
    step = load_checkpoint(out, modules, optims)["step"] if resume else 0

    data_cfg = ShapesWorldConfig(seed=cfg.data_seed, paraphrase_prob=cfg.paraphrase_prob)
    data = ShapesWorldBatches(tc.batch_size, data_cfg, start_batch=step)
    loader = DataLoader(data, batch_size=None, num_workers=tc.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=tc.num_workers > 0)  # fmt: skip
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    model.train()
    batches = iter(loader)
    with TrainingRun(out, tc, step, end, "clip", modules, optims, {"config": config_to_dict(cfg)}) as run:
        while step < end:
            batch = next(batches)
            images = batch["image"].to(device, non_blocking=True)  # uint8 [B, 3, 64, 64]
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            with autocast(device, tc.precision):
                loss = model(images, batch["text"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            step = run.advance()
            if step % tc.log_every == 0 or step == end:
                run.log.log(step, **{"train/loss": loss.item(), "train/lr": lr, "train/grad_norm": gnorm.item(),
                                 "train/logit_scale": model.logit_scale.exp().item()})  # fmt: skip
                run.bar.set_postfix(loss=f"{loss.item():.4f}")
            run.end_of_step(step, lambda: validate(model, cfg.eval))
    return model.save_pretrained(out / "clip")
