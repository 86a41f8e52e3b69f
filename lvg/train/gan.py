"""Train the GAN painter: layout + noise -> pixels, against a layout-conditioned critic.

    lvg train gan-painter --config configs/gan-painter-shapes.yaml [--resume] [key.sub=value ...]

Data: Shapes World's training stream (each scene rendered; the renderer is the data source, never part of the
painter), or an imagefolder whose ``metadata.jsonl`` rows carry layouts (``lvg data emoji`` writes one). The
generator minimises ``rec_weight * L1(painted, real) + adv_weight * hinge(critic(painted))``; the critic
(:class:`~lvg.models.gan.LayoutDiscriminator`, spectral norm, image- and object-level projection) minimises the hinge
loss on real vs painted images from ``loss.gan_start`` on, with its own optimizer (a second :class:`Update`), and an
optional R1 penalty on real images. ``train.ema_decay`` keeps an EMA of the generator, which is what is saved.
Validation paints held-out layouts and reports PSNR against the real images and, where a world's referee can judge
them (Shapes World's stream, or ``world:`` for a folder a world wrote), the share of images it passes.
The result is ``OUT/painter`` (``config.json`` + ``model.safetensors``, class ``GanPainter``).

Fine-tuning: a ``finetune:`` section (``base``: a GAN painter folder or a model folder with a GAN painter;
``method``: ``full`` or ``lora``) starts from a trained GAN painter on its words and backgrounds plus the data's
(``model.*`` is then the base's). New words' rows start at the mean of the base's and always train; with ``lora``
only they and peft's LoRA on the sprite decoder train, and ``OUT/painter_adapter`` holds the adapter alone
(role ``gan painter``). The critic starts from scratch either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lvg.eval.recon import psnr_ssim
from lvg.images import images_to_tensor
from lvg.models.gan import DiscriminatorConfig, GanPainter, GanPainterConfig, LayoutDiscriminator
from lvg.models.painter_adapters import GanPainterFinetuneConfig, adapt_painter, save_painter_run
from lvg.pipelines.planned import PlannedPipeline
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import layout_from_scene

from .common import TrainConfig, hash_seed
from .config import config_to_dict
from .folder import Folder, images_tensor
from .loop import Shard, Task, Update, run
from .painter import folder_vocabulary, scenes_for, shapes_world_vocabulary


@dataclass
class GanModelConfig:
    embed_dim: int = 192
    noise_dim: int = 32
    sprite: int = 32
    width: int = 128
    supersample: int = 2
    refine_width: int = 0


@dataclass
class GanLossConfig:
    rec_weight: float = 1.0  # L1 between the painting and the real image of the same layout
    adv_weight: float = 0.01  # the critic's hinge term (0: no critic, reconstruction only)
    obj_weight: float = 1.0  # object-level critic terms, relative to the image-level one
    gan_start: int = 500  # the critic trains, and the adversarial term counts, from this step on
    r1_weight: float = 0.0  # R1 gradient penalty on real images (0: off; spectral norm is always on)
    disc_lr: float = 2.0e-4


@dataclass
class GanEvalConfig:
    scenes: int = 300  # held-out layouts painted and judged at each validation


@dataclass
class GanPainterTrainingConfig:
    model: GanModelConfig = field(default_factory=GanModelConfig)
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(width=32))
    loss: GanLossConfig = field(default_factory=GanLossConfig)
    imagefolder: str | None = None  # train on an imagefolder whose metadata.jsonl rows carry layouts
    val_fraction: float = 0.1
    world: str | None = None  # the world whose referee judges held-out paintings of a folder (e.g. emoji)
    data_seed: int = 0
    eval: GanEvalConfig = field(default_factory=GanEvalConfig)
    finetune: GanPainterFinetuneConfig = field(default_factory=GanPainterFinetuneConfig)  # from a trained one
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/gan-painter", ema_decay=0.999))


def painter_config(vocabulary: dict, m: GanModelConfig) -> GanPainterConfig:
    """A GAN painter of ``vocabulary`` (:func:`lvg.train.painter.shapes_world_vocabulary` or ``folder_vocabulary``)."""
    return GanPainterConfig(**vocabulary, embed_dim=m.embed_dim, noise_dim=m.noise_dim, sprite=m.sprite,
                            width=m.width, supersample=m.supersample, refine_width=m.refine_width)  # fmt: skip


class LayoutImages:
    """Layouts and their real images for a pixel painter (GAN or diffusion): Shapes World's training stream (each
    scene rendered), or an imagefolder whose rows carry layouts; plus ``val_n`` held-out layouts, texts and images,
    the painter vocabulary of the data, and the referee that judges held-out paintings (Shapes World's, or ``world``'s
    for a folder; None for a folder without one). ``name`` keys the streams (``lvg-NAME:SEED`` and the like)."""

    def __init__(self, name: str, imagefolder: str | None, val_fraction: float, world: str | None, data_seed: int,
                 val_n: int):  # fmt: skip
        self.name, self.data_seed, self.folder, self.judge = name, data_seed, None, None
        if imagefolder:
            self.folder = folder = Folder(imagefolder, val_fraction, layouts=True)
            self.vocabulary = folder_vocabulary(folder.train + folder.val)
            n = min(val_n, len(folder.val))
            self.val_layouts = [r["layout"] for r in folder.val[:n]]
            self.val_texts = [r["text"] for r in folder.val[:n]]
            self.val_images = images_tensor(folder.val_images, range(n))
            if world:
                from lvg.worlds import get_world

                self.judge = get_world(world).judge
        else:
            from lvg.worlds.shapes.captions import describe_fully
            from lvg.worlds.shapes.judge import judge

            self.vocabulary = shapes_world_vocabulary()
            scenes = scenes_for(f"lvg-{name}-val:{data_seed}", 0, val_n)
            self.val_layouts = [layout_from_scene(s) for s in scenes]
            self.val_texts = [describe_fully(s) for s in scenes]
            self.val_images = renders(scenes)
            self.judge = judge

    def scores(self, painted: torch.Tensor) -> dict[str, float]:
        """PSNR of the first ``len(painted)`` held-out layouts painted (uint8 [N, 3, H, W]) against their real images,
        and the share the referee passes (when there is one)."""
        n = len(painted)
        out = {"val/psnr": psnr_ssim(painted, self.val_images[:n])[0]}
        if self.judge is not None:
            imgs = painted.permute(0, 2, 3, 1).numpy()
            out["val/scene_pass"] = sum(bool(self.judge(im, txt).passed) for im, txt in
                                        zip(imgs, self.val_texts[:n], strict=True)) / n  # fmt: skip
        return out

    def batch(self, step: int, shard: Shard, batch_size: int) -> tuple[list, torch.Tensor]:
        """This shard's layouts and uint8 images [B, 3, H, W] of global step ``step``."""
        if self.folder is None:
            scenes = [scenes_for(f"lvg-{self.name}:{self.data_seed}", step * batch_size + j, 1)[0]
                      for j in shard.rows(batch_size)]  # fmt: skip
            return [layout_from_scene(s) for s in scenes], renders(scenes)
        idx = self.folder.indices(step, shard, batch_size, f"lvg-{self.name}-folder:{self.data_seed}")
        return [self.folder.train[j]["layout"] for j in idx], images_tensor(self.folder.train_images, idx)


class GanPainterTask(Task):
    """Layouts -> paintings; the real images of the same layouts are the targets and the critic's positives."""

    name = "gan-painter"

    def __init__(self, cfg: GanPainterTrainingConfig, device: torch.device):
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.data = d = LayoutImages("gan-painter", cfg.imagefolder, cfg.val_fraction, cfg.world, cfg.data_seed,
                                     cfg.eval.scenes)  # fmt: skip
        pc = painter_config(d.vocabulary, cfg.model)
        painter = GanPainter(pc)
        self.base_sha256 = None
        if cfg.finetune.base:  # the base's weights, on its words and backgrounds plus the data's (model.* unused)
            base = GanPainter.from_pretrained(PlannedPipeline.painter_folder(cfg.finetune.base, "gan"))
            painter, pc, self.base_sha256 = adapt_painter(base, pc, cfg.finetune)
        self.painter = painter.to(device).train()
        self.disc = LayoutDiscriminator(cfg.disc, len(pc.label_words), len(pc.backgrounds), pc.canvas).to(device)
        self.modules = {"painter": self.painter, "disc": self.disc}

    # ------------------------------------------------------------------ data

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        rows = list(shard.rows(B))
        layouts, images = self.data.batch(step, shard, B)
        # each row's noise is a pure function of (data seed, step, row): resume and sharding draw the same noise
        seeds = [hash_seed(self.cfg.data_seed, step, j) for j in rows]
        return {"layouts": layouts, "images": images, "seeds": seeds, "step": step}

    # ------------------------------------------------------------------ losses

    def gan_on(self, step: int) -> bool:
        return self.cfg.loss.adv_weight > 0 and step >= self.cfg.loss.gan_start

    def updates(self) -> list[Update]:
        out = [Update("opt", self.painter.parameters(), self.loss)]
        if self.cfg.loss.adv_weight > 0:  # the critic: constant rate, GAN betas, no clipping
            out.append(Update("d_opt", self.disc.parameters(), self.d_loss, lr=self.cfg.loss.disc_lr,
                              betas=(0.0, 0.99), weight_decay=0.0, clip=False, active=self.gan_on))  # fmt: skip
        return out

    def _tensors(self, batch: dict) -> dict:
        if "t" not in batch:
            t = self.painter.encode_layouts(batch["layouts"])
            batch["t"] = {k: v.to(self.device) for k, v in t.items()}
            batch["real"] = batch["images"].to(self.device).float() / 255  # [B, 3, H, W]
        return batch["t"]

    def _critic(self, images: torch.Tensor, t: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return self.disc(images, t["boxes"], t["words"], t["valid"], t["bg"])

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        t = self._tensors(batch)
        lc = self.cfg.loss
        z = self.painter.noise(batch["seeds"], self.device)
        fake = self.painter(t["boxes"], t["words"], t["valid"], t["bg"], **z).float()  # [B, 3, H, W]
        rec = F.l1_loss(fake, batch["real"])
        out = {"loss": lc.rec_weight * rec, "rec": rec}
        if self.gan_on(batch["step"]):
            li, lo = self._critic(fake, t)
            adv = -li.float().mean() - lc.obj_weight * (lo.float().mean() if len(lo) else 0.0)
            out["loss"] = out["loss"] + lc.adv_weight * adv
            out["g_adv"] = adv
            batch["fake"] = fake.detach()  # for the critic's update
        return out

    def d_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        t, lc = batch["t"], self.cfg.loss
        real = batch["real"].requires_grad_(lc.r1_weight > 0)
        ri, ro = self._critic(real, t)
        fi, fo = self._critic(batch["fake"], t)
        d = F.relu(1 - ri.float()).mean() + F.relu(1 + fi.float()).mean()
        if len(ro):
            d = d + lc.obj_weight * (F.relu(1 - ro.float()).mean() + F.relu(1 + fo.float()).mean())
        out = {"d_loss": d}
        if lc.r1_weight > 0:
            (grad,) = torch.autograd.grad((ri.sum() + ro.sum()), real, create_graph=True)
            r1 = grad.float().pow(2).sum((1, 2, 3)).mean()
            out = {"d_loss": d + lc.r1_weight / 2 * r1, "d_hinge": d, "r1": r1}
        return out

    # ------------------------------------------------------------------ validation and artefact

    def generator(self) -> GanPainter:
        """The weights to paint with: the EMA copy when the run keeps one (a LoRA run's: peft-wrapped)."""
        return self.ema.module if self.ema is not None else self.painter

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        g = self.generator()
        was = g.training
        g.eval()
        n = len(self.data.val_layouts)
        painted = torch.cat([g.paint(self.data.val_layouts[s : s + 64], list(range(s, min(n, s + 64))))
                             for s in range(0, n, 64)]) if n else torch.zeros(0)  # fmt: skip
        g.train(was)
        return self.data.scores(painted) if n else {}

    def summary(self, metrics: dict[str, float]) -> str:
        parts = [f"psnr {metrics['val/psnr']:.2f} dB"] if "val/psnr" in metrics else []
        if "val/scene_pass" in metrics:
            parts.insert(0, f"scene pass {metrics['val/scene_pass']:.3f}")
        return ", ".join(parts) or super().summary(metrics)

    def save(self, out: Path) -> Path:
        """``OUT/painter`` (any LoRA merged in) and, for LoRA, the adapter alone in ``OUT/painter_adapter``."""
        return save_painter_run(self.generator(), out, self.base_sha256)


def renders(scenes: list) -> torch.Tensor:
    """Shapes World renders of ``scenes``, uint8 [B, 3, H, W]."""
    return images_to_tensor(np.stack([render(s) for s in scenes]))


def train_gan_painter(cfg: GanPainterTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) GAN painter training; returns the saved painter folder ``OUT/painter``."""
    return run(cfg.train, lambda device: GanPainterTask(cfg, device), resume, stop_after)
