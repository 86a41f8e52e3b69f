"""Train the image tokenizer on the infinite Shapes World stream.

    lvg train tokenizer --config configs/tokenizer-shapes.yaml [--resume] [key.sub=value ...]

Loop: render a batch -> encode/quantise/decode -> foreground-weighted L1+MSE (+ optional PatchGAN
hinge loss) -> AdamW step. Periodic validation on a fixed held-out set (PSNR, SSIM, codebook use,
pixel-judge round trip), atomic checkpoints, TensorBoard. The trained model is written with
``save_pretrained`` to ``OUT/image_tokenizer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lvg.resources import benchmark_prompts_file
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig, reconstruction_loss
from lvg.worlds.shapes.dataset import ShapesWorldBatches, ShapesWorldConfig
from lvg.worlds.shapes.heldout import held_out_images

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
from .discriminator import DiscriminatorConfig, PatchDiscriminator, hinge_d_loss, hinge_g_loss


@dataclass
class TokenizerLossConfig:
    fg_weight: float = 10.0  # weight of pixels that differ from the background (objects, edges)
    gan_weight: float = 0.0  # PatchGAN generator loss weight; 0 switches the discriminator off
    gan_start: int = 2000  # step at which the adversarial term starts
    disc_lr: float = 2e-4
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class TokenizerEvalConfig:
    num_images: int = 256  # fixed held-out renders for periodic validation
    round_trip_prompts: int = 450  # benchmark prompts for the judge round trip (0: skip)
    prompts: str | None = None  # benchmark prompts file (None: the one shipped with lvg)


@dataclass
class TokenizerTrainingConfig:
    """Everything ``lvg train tokenizer`` needs (the YAML file's sections)."""

    model: ImageTokenizerConfig = field(default_factory=ImageTokenizerConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/tokenizer"))
    loss: TokenizerLossConfig = field(default_factory=TokenizerLossConfig)
    eval: TokenizerEvalConfig = field(default_factory=TokenizerEvalConfig)
    data_seed: int = 0


@torch.no_grad()
def validate(model: ImageTokenizer, images: torch.Tensor, prompts: list[dict]) -> dict[str, float]:
    """Held-out quality: PSNR/SSIM, codebook use, and the pixel judge's round-trip acceptance."""
    from lvg.eval.recon import codebook_usage, judge_round_trip, psnr_ssim, reconstruct

    was_training = model.training
    model.eval()
    recon, codes = reconstruct(model, images)
    psnr, ssim = psnr_ssim(recon, images)
    out = {"val/psnr": psnr, "val/ssim": ssim, **{f"val/codes_{k}": v for k, v in
           codebook_usage(codes, model.codebook_size).items()}}  # fmt: skip
    if prompts:
        out["val/judge_round_trip"] = judge_round_trip(model, prompts)["rate"]
    model.train(was_training)
    return out


def train_tokenizer(cfg: TokenizerTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the folder of the saved tokenizer.

    ``stop_after`` ends this run after that many steps (checkpointed), to be continued with
    ``resume=True``; the schedule is always that of ``cfg.train.steps``.
    """
    from lvg.worlds.shapes.benchmark import load_prompts

    tc = cfg.train
    out, device = start_run(cfg, resume)
    model = ImageTokenizer(cfg.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    modules, optims = {"model": model}, {"opt": opt}
    disc = d_opt = None
    if cfg.loss.gan_weight > 0:
        disc = PatchDiscriminator(cfg.loss.discriminator).to(device)
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.loss.disc_lr, betas=(0.5, 0.9))
        modules["disc"], optims["d_opt"] = disc, d_opt
    step = load_checkpoint(out, modules, optims)["step"] if resume else 0

    val_images = held_out_images(cfg.eval.num_images)
    n = cfg.eval.round_trip_prompts  # 0 skips the round trip; a missing prompts file is an error
    prompts = load_prompts(cfg.eval.prompts or benchmark_prompts_file())[:n] if n else []
    data = ShapesWorldBatches(tc.batch_size, ShapesWorldConfig(seed=cfg.data_seed), start_batch=step, captions=False)
    loader = DataLoader(data, batch_size=None, num_workers=tc.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=tc.num_workers > 0)  # fmt: skip
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    model.train()
    batches = iter(loader)
    with TrainingRun(out, tc, step, end, "tokenizer", modules, optims, {"config": config_to_dict(cfg)}) as run:
        while step < end:
            images = next(batches)["image"].to(device, non_blocking=True).float() / 255  # [B, 3, 64, 64]
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            gan_on = disc is not None and step >= cfg.loss.gan_start
            with autocast(device, tc.precision):
                recon, codes, aux = model(images)
                rec = reconstruction_loss(recon, images, cfg.loss.fg_weight)
                loss = rec + aux
                if gan_on:
                    g_loss = hinge_g_loss(disc(recon))
                    loss = loss + cfg.loss.gan_weight * g_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            if gan_on:
                with autocast(device, tc.precision):
                    d_loss = hinge_d_loss(disc(images * 2 - 1), disc(recon.detach()))
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
            step = run.advance()
            if step % tc.log_every == 0 or step == end:
                scalars = {"train/loss": loss.item(), "train/rec": rec.item(), "train/lr": lr,
                           "train/grad_norm": gnorm.item()}  # fmt: skip
                if gan_on:
                    scalars.update({"train/g_loss": g_loss.item(), "train/d_loss": d_loss.item()})
                run.log.log(step, **scalars)
                run.bar.set_postfix(loss=f"{loss.item():.4f}")
            run.end_of_step(step, lambda: validate(model, val_images, prompts))
    return model.save_pretrained(out / "image_tokenizer")
