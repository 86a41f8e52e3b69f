"""Train the restorer on images damaged on the fly: the clean image is the target.

    lvg train restorer --config configs/restorer-emoji.yaml [--resume] [key.sub=value ...]

Each training image (Shapes World's stream, or an imagefolder's images) is, with probability ``data.damage_prob``,
damaged one way as the reader's damage training does (:func:`lvg.train.reader.damage`: Gaussian noise of std 10-70
grey levels, Gaussian blur of sigma 0.5-3 px, or JPEG at quality 5-60), and with probability ``data.hole_prob``
also given one square hole (side ``data.hole_min``-``data.hole_max`` px, anywhere) filled smoothly from its border
(:func:`lvg.pipelines.restore.fill_holes`) and marked in the restorer's mask input. Each row's damage is a pure
function of (data seed, step, row), so resume and sharding draw the same damage. Loss: L1 to the clean image.
Validation: PSNR (of the mean squared error over the set) of the restored against the clean held-out images,
beside the damaged input's, on a fixed damaged set. The result is ``OUT/restorer`` (``config.json`` + ``model.safetensors``, class ``Restorer``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from lvg.models.restorer import Restorer, RestorerConfig
from lvg.ranges import bounded, check_ranges
from lvg.worlds.shapes.dataset import ShapesWorldConfig
from lvg.worlds.shapes.heldout import held_out_images

from .common import TrainConfig, hash_seed
from .config import config_to_dict
from .folder import Folder, images_tensor
from .loop import Shard, Task, run
from .reader import damage
from .tokenizer import shapes_world_images


@dataclass
class RestorerDataConfig:
    """How training images are damaged."""

    damage_prob: float = bounded(0.0, 1.0, integer=False, default=0.9)  # noise, blur or JPEG (one, random strength)
    hole_prob: float = bounded(0.0, 1.0, integer=False, default=0.3)  # also one square hole, filled from its border
    hole_min: int = bounded(1, 1024, default=8)  # hole side, px
    hole_max: int = bounded(1, 1024, default=32)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.hole_min > self.hole_max:
            raise ValueError(f"hole_min ({self.hole_min}) must not exceed hole_max ({self.hole_max})")


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


@dataclass
class RestorerTrainingConfig:
    """Everything ``lvg train restorer`` needs (the YAML file's sections)."""

    model: RestorerConfig = field(default_factory=RestorerConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/restorer"))
    data: RestorerDataConfig = field(default_factory=RestorerDataConfig)
    val_images: int = bounded(1, None, default=256)  # held-out images, damaged once with a fixed seed
    data_seed: int = 0
    imagefolder: str | None = None  # train on a user imagefolder's images (their size sets model.canvas)
    init_from: str | None = None  # a trained restorer folder to start from (its architecture; model.* unused)
    val_fraction: float = bounded(0.0, 1.0, integer=False, hi_open=True, default=0.05)
    # the pixel loss: "l1" (sharp edges), or "mse", whose minimiser is the mean of what a hole may hold, the best
    # guess by PSNR
    loss: str = "l1"

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")


def damage_rows(clean: torch.Tensor, seeds: list[int], data: RestorerDataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [B, 3, S, S], each damaged as ``data`` says with its own seed -> (damaged uint8 [B, 3, S, S],
    holes bool [B, S, S])."""
    from lvg.pipelines.restore import fill_holes

    S = clean.shape[-1]
    out, holes = clean.clone(), torch.zeros(len(clean), S, S, dtype=torch.bool)
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(seed)
        out[i : i + 1] = damage(clean[i : i + 1], data.damage_prob, gen)
        if float(torch.rand(1, generator=gen)) < data.hole_prob:
            side = min(data.hole_min + int((data.hole_max - data.hole_min + 1) * float(torch.rand(1, generator=gen))),
                       data.hole_max, S)  # fmt: skip
            x0, y0 = (int(v) for v in torch.randint(0, S - side + 1, (2,), generator=gen))
            holes[i, y0 : y0 + side, x0 : x0 + side] = True
            out[i, :, holes[i]] = 0
    return fill_holes(out, holes), holes


def set_psnr(images: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR (dB) of the mean squared error over a whole set of uint8 images [N, 3, S, S] (an undamaged image, whose
    own PSNR is infinite, adds zero error instead of dominating a mean of per-image PSNRs)."""
    mse = ((images.float() - clean.float()) ** 2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-10))


class RestorerTask(Task):
    """Damaged image -> clean image, L1."""

    name = "restorer"
    batch_in_workers = True

    def __init__(self, cfg: RestorerTrainingConfig, device: torch.device):
        self.folder = None
        if cfg.imagefolder:  # a user folder's images (no text needed); their size is the model's canvas
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction)
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, canvas=self.folder.canvas))
            n = min(cfg.val_images, len(self.folder.val))
            clean = images_tensor(self.folder.val_images, range(n))
        else:
            clean = held_out_images(cfg.val_images)
        start = None
        if cfg.init_from:  # a further round of a trained restorer: its architecture and weights
            start = Restorer.from_pretrained(cfg.init_from)
            if self.folder is not None:
                self.folder.check_canvas(start.config.canvas, f"the restorer in {cfg.init_from}")
            cfg = dataclasses.replace(cfg, model=start.config)
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.model = (start or Restorer(cfg.model)).to(device).train()
        self.modules = {"model": self.model}
        self.data = ShapesWorldConfig(seed=cfg.data_seed)
        seeds = [hash_seed(-1, j) for j in range(len(clean))]  # the held-out damage: the same for every run and round
        self.val_clean, (self.val_damaged, self.val_holes) = clean, damage_rows(clean, seeds, cfg.data)

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        rows = list(shard.rows(B))
        if self.folder is not None:
            idx = self.folder.indices(step, shard, B, f"lvg-restorer-folder:{self.cfg.data_seed}")
            clean = images_tensor(self.folder.train_images, idx)
        else:
            clean = shapes_world_images(step, shard, B, self.data)
        damaged, holes = damage_rows(clean, [hash_seed(self.cfg.data_seed, step, j) for j in rows], self.cfg.data)
        return {"clean": clean, "damaged": damaged, "holes": holes}

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        clean = batch["clean"].to(self.device, non_blocking=True).float() / 255  # [B, 3, S, S]
        damaged = batch["damaged"].to(self.device, non_blocking=True).float() / 255
        restored = self.model(damaged, batch["holes"].to(self.device))
        return {"loss": LOSSES[self.cfg.loss](restored.float(), clean)}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if not len(self.val_clean):
            return {}
        was = self.model.training
        self.model.eval()
        restored = self.model.restore(self.val_damaged, self.val_holes)
        self.model.train(was)
        return {"val/psnr": set_psnr(restored, self.val_clean), "val/psnr_damaged": set_psnr(self.val_damaged,
                                                                                            self.val_clean)}  # fmt: skip

    def summary(self, metrics: dict[str, float]) -> str:
        if "val/psnr" not in metrics:
            return super().summary(metrics)
        return f"psnr {metrics['val/psnr']:.2f} dB (damaged {metrics['val/psnr_damaged']:.2f})"

    def save(self, out: Path) -> Path:
        return self.model.save_pretrained(out / "restorer")


def train_restorer(cfg: RestorerTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) restorer training; returns the saved restorer folder ``OUT/restorer``."""
    return run(cfg.train, lambda device: RestorerTask(cfg, device), resume, stop_after)
