"""Train the image tokenizer on the infinite Shapes World stream.

    lvg train tokenizer --config configs/tokenizer-shapes.yaml [--resume] [key.sub=value ...]

Loop: render a batch -> encode/quantise/decode -> foreground-weighted L1+MSE (+ optional PatchGAN
hinge loss) -> AdamW step. Periodic validation on a fixed held-out set (PSNR, SSIM, codebook use,
pixel-judge round trip), atomic checkpoints, TensorBoard. The trained model is written with
``save_pretrained`` to ``OUT/image_tokenizer``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lvg.resources import benchmark_prompts_file
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig, reconstruction_loss
from lvg.worlds.shapes.dataset import ShapesWorldConfig, make_sample
from lvg.worlds.shapes.heldout import held_out_images

from .common import TrainConfig
from .config import config_to_dict
from .discriminator import DiscriminatorConfig, PatchDiscriminator, hinge_d_loss, hinge_g_loss
from .folder import Folder, held_out_loss, images_tensor
from .loop import Shard, Task, Update, run


@dataclass
class TokenizerLossConfig:
    fg_weight: float = 10.0  # weight of pixels that differ from the background (objects, edges)
    edge_weight: float = 1.0  # extra factor on edge pixels (3x3 neighbourhood not one colour): crisp small shapes
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
    imagefolder: str | None = None  # train on a user imagefolder's images instead (their size sets model.image_size)
    val_fraction: float = 0.1  # share of the imagefolder's images held out for validation


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


def shapes_world_images(step: int, shard: Shard, batch_size: int, cfg: ShapesWorldConfig) -> torch.Tensor:
    """This shard's renders of the Shapes World batch ``step`` (items ``step * batch_size + row``), uint8 [b, 3, H, W]."""
    images = [make_sample(step * batch_size + j, cfg).image for j in shard.rows(batch_size)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


class TokenizerTask(Task):
    """Images -> codes -> images: foreground-weighted reconstruction, plus an optional PatchGAN adversary with its
    own optimizer (a second :class:`Update`, from ``loss.gan_start`` on)."""

    name = "tokenizer"
    batch_in_workers = True

    def __init__(self, cfg: TokenizerTrainingConfig, device: torch.device):
        from lvg.worlds.shapes.benchmark import load_prompts

        self.folder = None
        if cfg.imagefolder:  # a user folder's images (no text needed); their size is the model's image_size
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction)
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, image_size=self.folder.canvas))
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.model = ImageTokenizer(cfg.model).to(device).train()
        self.modules = {"model": self.model}
        self.disc = None
        if cfg.loss.gan_weight > 0:
            self.disc = PatchDiscriminator(cfg.loss.discriminator).to(device)
            self.modules["disc"] = self.disc
        if self.folder is not None:  # held-out folder images; the judge round trip is Shapes World's
            self.val_images, self.prompts = images_tensor(self.folder.val_images, range(len(self.folder.val))), []
        else:
            self.val_images = held_out_images(cfg.eval.num_images)
            n = cfg.eval.round_trip_prompts  # 0 skips the round trip; a missing prompts file is an error
            self.prompts = load_prompts(cfg.eval.prompts or benchmark_prompts_file())[:n] if n else []
        self.data = ShapesWorldConfig(seed=cfg.data_seed)

    def gan_on(self, step: int) -> bool:
        return self.disc is not None and step >= self.cfg.loss.gan_start

    def updates(self) -> list[Update]:
        out = [Update("opt", self.model.parameters(), self.loss)]
        if self.disc is not None:  # AdamW's default weight decay, constant rate, no clipping
            out.append(Update("d_opt", self.disc.parameters(), self.d_loss, lr=self.cfg.loss.disc_lr, betas=(0.5, 0.9),
                              weight_decay=0.01, clip=False, active=self.gan_on))  # fmt: skip
        return out

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        if self.folder is not None:
            idx = self.folder.indices(step, shard, B, f"lvg-tokenizer-folder:{self.cfg.data_seed}")
            return {"image": images_tensor(self.folder.train_images, idx), "step": step}
        return {"image": shapes_world_images(step, shard, B, self.data), "step": step}

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        images = batch["image"].to(self.device, non_blocking=True).float() / 255  # [B, 3, 64, 64]
        recon, codes, aux = self.model(images)
        rec = reconstruction_loss(recon, images, self.cfg.loss.fg_weight, self.cfg.loss.edge_weight)
        out = {"loss": rec + aux, "rec": rec}
        if self.gan_on(batch["step"]):
            out["g_loss"] = hinge_g_loss(self.disc(recon))
            out["loss"] = out["loss"] + self.cfg.loss.gan_weight * out["g_loss"]
            batch["real"], batch["recon"] = images, recon.detach()  # for the discriminator's update
        return out

    def d_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"d_loss": hinge_d_loss(self.disc(batch["real"] * 2 - 1), self.disc(batch["recon"]))}

    def validate(self) -> dict[str, float]:
        if self.folder is None:
            return validate(self.model, self.val_images, self.prompts)
        if not len(self.val_images):
            return {}
        chunks = self.folder.val_chunks(self.cfg.train.batch_size)  # the loss without the adversary's term
        loss = held_out_loss(self, (({"image": self.val_images[c.start : c.stop], "step": -1}, len(c)) for c in chunks))
        return {"val/loss": loss, **validate(self.model, self.val_images, self.prompts)}

    def save(self, out: Path) -> Path:
        return self.model.save_pretrained(out / "image_tokenizer")


def train_tokenizer(cfg: TokenizerTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the folder of the saved tokenizer.

    ``stop_after`` ends this run after that many steps (checkpointed), to be continued with
    ``resume=True``; the schedule is always that of ``cfg.train.steps``.
    """
    return run(cfg.train, lambda device: TokenizerTask(cfg, device), resume, stop_after)
