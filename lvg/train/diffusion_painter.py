"""Train the diffusion painter: the layout-conditioned pixel DDPM that the painter comparison measures.

    lvg train diffusion-painter --config configs/diffusion-painter-shapes.yaml [--resume] [key.sub=value ...]

Data as the GAN painter's: Shapes World's training stream (each scene rendered; the renderer is the data source,
never part of the painter), or an imagefolder whose ``metadata.jsonl`` rows carry layouts (``lvg data emoji``
writes one). Each step draws noise and timesteps from a generator seeded by (data seed, step), so a resumed run
sees the same ones. ``train.ema_decay`` keeps an EMA of the weights, which is what is saved and validated.
Validation: the EMA model's DDPM loss on a fixed held-out batch (fixed noise and timesteps, so validations compare),
and held-out layouts painted by DDIM (``eval.sampling_steps``), with PSNR against the real images and, where a
world's referee can judge them, the share it passes. The result is ``OUT/painter`` (class ``DiffusionPainter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lvg.models.diffusion_painter import DiffusionPainter, DiffusionPainterConfig

from .common import TrainConfig, hash_seed
from .config import config_to_dict
from .gan import LayoutImages
from .loop import Shard, Task, run


@dataclass
class DiffusionModelConfig:
    embed_dim: int = 64
    map_dim: int = 16
    patch: int = 2
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    layers_per_block: int = 1
    attention_levels: int = 1
    norm_num_groups: int = 16
    sampling_steps: int = 20


@dataclass
class DiffusionEvalConfig:
    scenes: int = 64  # held-out layouts painted (DDIM) and judged at each validation
    loss_rows: int = 64  # the fixed held-out batch of the validation loss
    sampling_steps: int = 20


@dataclass
class DiffusionPainterTrainingConfig:
    model: DiffusionModelConfig = field(default_factory=DiffusionModelConfig)
    snr_gamma: float = 5.0  # Min-SNR-gamma loss weights (0: plain MSE)
    imagefolder: str | None = None  # train on an imagefolder whose metadata.jsonl rows carry layouts
    val_fraction: float = 0.1
    world: str | None = None  # the world whose referee judges held-out paintings of a folder (e.g. emoji)
    data_seed: int = 0
    eval: DiffusionEvalConfig = field(default_factory=DiffusionEvalConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/diffusion-painter", ema_decay=0.999))


def painter_config(vocabulary: dict, m: DiffusionModelConfig) -> DiffusionPainterConfig:
    """A diffusion painter of ``vocabulary`` (``shapes_world_vocabulary()`` or ``folder_vocabulary(rows)``)."""
    return DiffusionPainterConfig(**vocabulary, embed_dim=m.embed_dim, map_dim=m.map_dim, patch=m.patch,
                                  block_out_channels=list(m.block_out_channels), layers_per_block=m.layers_per_block,
                                  attention_levels=m.attention_levels, norm_num_groups=m.norm_num_groups,
                                  sampling_steps=m.sampling_steps)  # fmt: skip


class DiffusionPainterTask(Task):
    """Layouts and their real images -> the DDPM loss; the EMA weights are the painter."""

    name = "diffusion-painter"

    def __init__(self, cfg: DiffusionPainterTrainingConfig, device: torch.device):
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.data = d = LayoutImages("diffusion-painter", cfg.imagefolder, cfg.val_fraction, cfg.world, cfg.data_seed,
                                     max(cfg.eval.scenes, cfg.eval.loss_rows))  # fmt: skip
        pc = painter_config(d.vocabulary, cfg.model)
        self.painter = DiffusionPainter(pc).to(device).train()
        self.modules = {"painter": self.painter}

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        rows = list(shard.rows(B))
        layouts, images = self.data.batch(step, shard, B)
        # noise and timesteps are a pure function of (data seed, step): a resumed run draws the same ones
        g = torch.Generator().manual_seed(hash_seed(self.cfg.data_seed, step, rows[0] if rows else 0))
        noise = torch.randn(len(rows), 3, images.shape[-2], images.shape[-1], generator=g)
        timesteps = torch.randint(0, self.painter.config.num_train_timesteps, (len(rows),), generator=g)
        return {"layouts": layouts, "images": images, "noise": noise, "timesteps": timesteps}

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        d = self.device
        t = {k: v.to(d) for k, v in self.painter.encode_layouts(batch["layouts"]).items()}
        x0 = batch["images"].to(d).float() / 127.5 - 1  # [B, 3, H, W] in [-1, 1]
        return {"loss": self.painter.training_loss(x0, t, self.cfg.snr_gamma, batch["noise"].to(d),
                                                   batch["timesteps"].to(d))}  # fmt: skip

    def generator(self) -> DiffusionPainter:
        """The weights to paint with: the EMA copy when the run keeps one."""
        return self.ema.module if self.ema is not None else self.painter

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        g = self.generator()
        was = g.training
        g.eval()
        d, ec = self.device, self.cfg.eval
        out: dict[str, float] = {}
        rows = min(ec.loss_rows, len(self.data.val_layouts))
        if rows:
            gen = torch.Generator().manual_seed(0)
            x0 = self.data.val_images[:rows].float() / 127.5 - 1
            noise = torch.randn(x0.shape, generator=gen)
            ts = torch.randint(0, g.config.num_train_timesteps, (rows,), generator=gen)
            t = {k: v.to(d) for k, v in g.encode_layouts(self.data.val_layouts[:rows]).items()}
            out["val/loss"] = float(g.training_loss(x0.to(d), t, self.cfg.snr_gamma, noise.to(d), ts.to(d)))
        n = min(ec.scenes, len(self.data.val_layouts))
        if n:
            out |= self.data.scores(g.paint(self.data.val_layouts[:n], list(range(n)), ec.sampling_steps))
        g.train(was)
        return out

    def summary(self, metrics: dict[str, float]) -> str:
        parts = [f"{k.removeprefix('val/')} {v:.3f}" for k, v in metrics.items() if k.startswith("val/")]
        return ", ".join(parts) or super().summary(metrics)

    def save(self, out: Path) -> Path:
        return self.generator().save_pretrained(out / "painter")


def train_diffusion_painter(cfg: DiffusionPainterTrainingConfig, resume: bool = False,
                            stop_after: int | None = None) -> Path:  # fmt: skip
    """Run (or resume) diffusion painter training; returns the saved painter folder ``OUT/painter``."""
    return run(cfg.train, lambda device: DiffusionPainterTask(cfg, device), resume, stop_after)
