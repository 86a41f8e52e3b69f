"""Train the painter: Shapes World layout -> the (frozen) image tokenizer's codes of its render.

    lvg train painter --config configs/painter-shapes.yaml [--resume] [key.sub=value ...]

Each batch draws scenes from the contract's training distribution, renders them and encodes the
renders with the image tokenizer (the targets); the painter sees only the scenes' layouts. The
renderer is the data source here and never part of the painter. Validation paints held-out layouts,
decodes them and asks the pixel judge whether every object (shape, colour, size, cell) and the
background came out right. The result is ``OUT/painter`` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lvg.models.painter import Painter, PainterConfig
from lvg.models.painter_adapters import PainterFinetuneConfig, adapt_painter, save_painter_run
from lvg.pipelines.planned import PlannedPipeline
from lvg.pipelines.utils import decode_images
from lvg.tokenizers.image import ImageTokenizer
from lvg.worlds.shapes.captions import describe_fully
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS, layout_from_scene
from lvg.worlds.shapes.world import CANVAS, sample_scene

from .common import TrainConfig
from .config import config_to_dict
from .folder import Folder, held_out_loss
from .loop import Shard, Task, full_precision, run

HELD_OUT = "lvg-painter-val"  # validation scenes come from their own seed, never from the training stream


@dataclass
class PainterModelConfig:
    embed_dim: int = 24
    width: int = 128
    blocks: int = 4
    margin: float = 1.0
    upsample: int = 1  # token-grid cells per trunk cell side (2: a 32x32 tokenizer, a 16x16 trunk)
    masked: bool = False  # MaskGIT: learn to fill masked codes from the known ones; paints in eval.steps rounds


@dataclass
class PainterEvalConfig:
    scenes: int = 300  # held-out scenes painted and judged at each validation
    steps: int = 8  # rounds a masked painter paints in at validation (1 for a one-step painter)


@dataclass
class PainterTrainingConfig:
    model: PainterModelConfig = field(default_factory=PainterModelConfig)
    image_tokenizer: str = "models/shapes-default/image_tokenizer"
    imagefolder: str | None = None  # train on a user imagefolder whose metadata.jsonl rows carry layouts instead
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation
    data_seed: int = 0
    eval: PainterEvalConfig = field(default_factory=PainterEvalConfig)
    finetune: PainterFinetuneConfig = field(default_factory=PainterFinetuneConfig)  # start from a trained painter
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/painter"))


def scenes_for(seed: str, start: int, num: int) -> list:
    """Scenes ``start .. start + num`` of the stream named ``seed`` (each a pure function of its index)."""
    return [sample_scene(random.Random(f"{seed}:{i}")) for i in range(start, start + num)]


def shapes_world_vocabulary() -> dict:
    """What a Shapes World painter must know: ``label_words``, ``backgrounds``, ``canvas``, ``max_objects``."""
    words = sorted({w for lab in SHAPES_WORLD_LABELS for w in lab.split()})
    return {"label_words": words, "backgrounds": list(SHAPES_WORLD_BACKGROUNDS), "canvas": CANVAS, "max_objects": 4}


def folder_vocabulary(rows: list[dict]) -> dict:
    """What a painter of an imagefolder's rows must know: their label words, backgrounds, canvas and most objects
    per image (the keys of :func:`shapes_world_vocabulary`)."""
    lays = [r["layout"] for r in rows]
    return {"label_words": sorted({w for lay in lays for o in lay.objects for w in o.label.split()}),
            "backgrounds": sorted({lay.background for lay in lays}), "canvas": lays[0].canvas,
            "max_objects": max(1, max(len(lay.objects) for lay in lays))}  # fmt: skip


def painter_config(vocabulary: dict, grid: int, fsq_levels: list[int], m: PainterModelConfig) -> PainterConfig:
    return PainterConfig(**vocabulary, grid=grid, fsq_levels=list(fsq_levels), embed_dim=m.embed_dim, width=m.width,
                         blocks=m.blocks, margin=m.margin, upsample=m.upsample, masked=m.masked)  # fmt: skip


def shapes_world_painter_config(grid: int, fsq_levels: list[int], m: PainterModelConfig) -> PainterConfig:
    return painter_config(shapes_world_vocabulary(), grid, fsq_levels, m)


def targets(scenes: list, image_tok: ImageTokenizer) -> torch.Tensor:
    """The image tokenizer's codes of the scenes' renders [B, g, g]."""
    return encode_images(np.stack([render(s) for s in scenes]), image_tok)


def encode_images(images: np.ndarray, image_tok: ImageTokenizer) -> torch.Tensor:
    """uint8 images [B, H, W, 3] -> the image tokenizer's codes [B, g, g]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    with torch.inference_mode():
        return image_tok.encode(x.to(image_tok.device)).cpu()


def folder_painter_config(rows: list[dict], grid: int, fsq_levels: list[int], m: PainterModelConfig) -> PainterConfig:
    """A painter for a user imagefolder: its label words, backgrounds, canvas and most objects per image."""
    return painter_config(folder_vocabulary(rows), grid, fsq_levels, m)


@torch.inference_mode()
def validate(painter: Painter, image_tok: ImageTokenizer, scenes: list, codes: torch.Tensor,
             steps: int = 1) -> dict[str, float]:  # fmt: skip
    """Token accuracy and the pixel judge's full-scene pass rate on held-out scenes (painted in ``steps`` rounds)."""
    from lvg.worlds.shapes.judge import judge

    was = painter.training
    painter.eval()
    layouts = [layout_from_scene(s) for s in scenes]
    pred = torch.cat([painter.paint(layouts[i : i + 64], steps=steps).cpu() for i in range(0, len(layouts), 64)])
    passed = sum(judge(im, describe_fully(s)).passed for im, s in zip(decode_images(pred, image_tok), scenes))
    painter.train(was)
    return {"val/token_acc": (pred == codes).float().mean().item(), "val/scene_pass": passed / len(scenes)}


@torch.inference_mode()
def token_accuracy(painter: Painter, layouts: list, codes: torch.Tensor, steps: int = 1) -> float:
    was = painter.training
    painter.eval()
    pred = torch.cat([painter.paint(layouts[i : i + 64], steps=steps).cpu() for i in range(0, len(layouts), 64)])
    painter.train(was)
    return (pred == codes).float().mean().item()


def headline(m: dict[str, float]) -> str:
    return f"scene pass {m['val/scene_pass']:.3f}, token acc {m['val/token_acc']:.3f}"


class PainterTask(Task):
    """Layout -> the frozen image tokenizer's codes of its render (or of a user folder's images)."""

    name = "painter"

    def __init__(self, cfg: PainterTrainingConfig, device: torch.device):
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        image_tok = ImageTokenizer.from_pretrained(cfg.image_tokenizer, device=device)
        image_tok.requires_grad_(False)
        self.image_tok = image_tok
        grid, levels = image_tok.config.grid, image_tok.config.fsq_levels
        self.rows = None
        if cfg.imagefolder:  # a user folder: layouts and images from metadata.jsonl, codes encoded once
            folder = Folder(cfg.imagefolder, cfg.val_fraction, layouts=True)
            folder.check_canvas(image_tok.config.image_size, f"the image tokenizer {cfg.image_tokenizer}")
            self.folder, self.rows = folder, folder.train
            painter = Painter(folder_painter_config(folder.train + folder.val, grid, levels, cfg.model))
            self.folder_codes = encode_images(folder.train_images, image_tok)
            self.folder_layouts = [r["layout"] for r in folder.train]
            self.val_codes = encode_images(folder.val_images, image_tok) if folder.val else None
            self.val_layouts = [r["layout"] for r in folder.val]
        else:
            painter = Painter(shapes_world_painter_config(grid, levels, cfg.model))
            self.val_scenes = scenes_for(f"{HELD_OUT}:{cfg.data_seed}", 0, cfg.eval.scenes)
            self.val_codes = targets(self.val_scenes, image_tok)
        self.base_sha256 = None
        if cfg.finetune.base:  # the base's weights, on its words and backgrounds plus the data's (model.* unused)
            base = Painter.from_pretrained(PlannedPipeline.painter_folder(cfg.finetune.base, "code"))
            if (base.config.grid, list(base.config.fsq_levels)) != (grid, list(levels)):
                raise ValueError(f"finetune.base {cfg.finetune.base} paints another image tokenizer's codes (grid "
                                 f"{base.config.grid}, levels {base.config.fsq_levels}) than image_tokenizer "
                                 f"{cfg.image_tokenizer} (grid {grid}, levels {levels}): give its own")  # fmt: skip
            painter, _, self.base_sha256 = adapt_painter(base, painter.config, cfg.finetune)
        self.painter = painter.to(device).train()
        self.modules = {"painter": self.painter}
        self.steps = cfg.eval.steps if painter.config.masked else 1

    def known(self, step: int, rows: list[int]) -> torch.Tensor:
        """A masked painter's known tokens [B, g, g] for the batch rows ``rows`` of ``step``: per row a mask ratio
        ``cos(pi/2 * u)``, u uniform (MaskGIT's schedule), each token masked with that probability; seeded by
        the row, so a resumed run draws the same masks."""
        g = self.painter.config.grid
        out = []
        for j in rows:
            gen = torch.Generator().manual_seed(self.cfg.data_seed * 1_000_003 + step * 4096 + j)
            ratio = math.cos(math.pi / 2 * torch.rand((), generator=gen).item())
            out.append(torch.rand(g, g, generator=gen) >= ratio)
        return torch.stack(out)

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        if self.rows is None:
            scenes = [scenes_for(f"lvg-painter:{self.cfg.data_seed}", step * B + j, 1)[0] for j in shard.rows(B)]
            out = {"scenes": scenes, "layouts": [layout_from_scene(s) for s in scenes]}
        else:
            idx = self.folder.indices(step, shard, B, f"lvg-painter-folder:{self.cfg.data_seed}")
            out = {"codes": self.folder_codes[idx], "layouts": [self.folder_layouts[j] for j in idx]}
        if self.painter.config.masked:
            out["known"] = self.known(step, list(shard.rows(B)))
        return out

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        with full_precision(self.device):
            codes = batch["codes"] if "codes" in batch else targets(batch["scenes"], self.image_tok)  # [B, g, g]
        t = self.painter.encode_layouts(batch["layouts"])
        if not self.painter.config.masked:
            logits = self.painter(t["boxes"], t["words"], t["valid"], t["bg"])  # [B, sum(levels), g, g]
            return {"loss": self.painter.loss(logits.float(), codes.to(self.device))}
        # a masked painter fills the masked tokens from the known ones (held-out rows: nothing known)
        known = batch.get("known", torch.zeros(codes.shape, dtype=torch.bool)).to(self.device)
        logits = self.painter(t["boxes"], t["words"], t["valid"], t["bg"], codes, known)
        return {"loss": self.painter.loss(logits.float(), codes.to(self.device), ~known)}

    def validate(self) -> dict[str, float]:
        if self.rows is None:
            return validate(self.painter, self.image_tok, self.val_scenes, self.val_codes, self.steps)
        if self.val_codes is None:
            return {}
        # a user folder has no judge: the loss and token accuracy on its held-out rows
        chunks = self.folder.val_chunks(self.cfg.train.batch_size)
        loss = held_out_loss(
            self,
            (
                ({"codes": self.val_codes[c.start : c.stop], "layouts": self.val_layouts[c.start : c.stop]}, len(c))
                for c in chunks
            ),
        )
        return {
            "val/loss": loss,
            "val/token_acc": token_accuracy(self.painter, self.val_layouts, self.val_codes, self.steps),
        }

    def summary(self, metrics: dict[str, float]) -> str:
        return headline(metrics) if self.rows is None else super().summary(metrics)

    def save(self, out: Path) -> Path:
        """``OUT/painter`` (any LoRA merged in) and, for LoRA, the adapter alone in ``OUT/painter_adapter``."""
        return save_painter_run(self.painter, out, self.base_sha256)


def train_painter(cfg: PainterTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) painter training; returns the saved painter folder ``OUT/painter``."""
    return run(cfg.train, lambda device: PainterTask(cfg, device), resume, stop_after)
