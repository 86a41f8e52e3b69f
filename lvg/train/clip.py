"""Train a small CLIP on the infinite Shapes World stream.

    lvg train clip --config configs/clip-shapes.yaml [--resume] [--stop-after N] [key.sub=value ...]

Loop: render a batch of scenes with their (randomly partial, EN or ZH) canonical captions -> symmetric
InfoNCE over the batch -> AdamW step. Periodic validation on held-out renders (zero-shot caption choice
and text -> image retrieval, see :mod:`lvg.eval.clip_eval`), atomic checkpoints, TensorBoard. The trained
model is written with ``save_pretrained`` to ``OUT/clip``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lvg.data.imagefolder import batch_indices
from lvg.data.imagefolder import chunks as batch_chunks
from lvg.models.clip import ClipConfig, ShapesClip
from lvg.resources import default_component_dir
from lvg.tokenizers.text import PAD, load_text_tokenizer
from lvg.worlds.shapes.dataset import ShapesWorldConfig, make_sample

from .common import TrainConfig
from .config import config_to_dict
from .folder import Folder, captions, held_out_loss, images_tensor
from .loop import Shard, Task, Update, run


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
    imagefolder: str | None = None  # train on a user imagefolder's (image, text / text_zh) pairs instead
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation


def validate(model: ShapesClip, cfg: ClipEvalConfig) -> dict[str, float]:
    from lvg.eval.clip_eval import retrieval_top1, zero_shot_accuracy

    zs = zero_shot_accuracy(model, cfg.num_images, num_candidates=cfg.num_candidates)["accuracy"]
    return {"val/zero_shot_top1": zs, "val/retrieval_top1": retrieval_top1(model, cfg.num_images)["top1"]}


class ClipTask(Task):
    """Symmetric InfoNCE over the batch. The loss needs every row of the batch, so CLIP trains on one process
    without gradient accumulation."""

    name = "clip"
    batch_in_workers = True
    shardable = False

    def __init__(self, cfg: ClipTrainingConfig, text_tok, device: torch.device):
        self.folder = None
        if cfg.imagefolder:  # a user folder: its images (their size is the model's image_size) and captions
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction)
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, image_size=self.folder.canvas))
            self.train_captions, self.val_captions = captions(self.folder.train), captions(self.folder.val)
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.model = ShapesClip(cfg.model, text_tok).to(device).train()
        self.modules = {"model": self.model}
        self.data = ShapesWorldConfig(seed=cfg.data_seed, paraphrase_prob=cfg.paraphrase_prob)

    def updates(self) -> list[Update]:
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and n != "text_tower.pos"]
        no_decay = [p for n, p in self.model.named_parameters() if not (p.ndim >= 2 and n != "text_tower.pos")]
        return [Update("opt", [{"params": decay, "weight_decay": self.cfg.train.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], self.loss,
                       clip_params=self.model.parameters())]  # fmt: skip

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        if self.folder is not None:
            idx = batch_indices(
                len(self.train_captions), step, B, f"lvg-clip-folder:{self.cfg.data_seed}", shard.rows(B)
            )
            return self.folder_batch(self.folder.train_images, [self.train_captions[i] for i in idx])
        items = [make_sample(step * B + j, self.data) for j in shard.rows(B)]
        images = torch.from_numpy(np.stack([s.image for s in items])).permute(0, 3, 1, 2).contiguous()
        return {"image": images, "text": [s.text for s in items]}  # uint8 [B, 3, 64, 64], captions

    @staticmethod
    def folder_batch(images, items: list[tuple[int, str, str]]) -> dict:
        """Images and captions of a user folder's ``(row, lang, caption)`` items."""
        return {"image": images_tensor(images, [i for i, _, _ in items]), "text": [c for _, _, c in items]}

    def validate_folder(self) -> dict[str, float]:
        """The contrastive loss on held-out batches, and text -> image retrieval among all held-out images."""
        items, images = self.val_captions, self.folder.val_images
        if len(self.folder.val) < 2:  # one image: nothing to tell apart
            return {}
        B = self.cfg.train.batch_size
        loss = held_out_loss(self, ((self.folder_batch(images, items[c.start : c.stop]), len(c))
                                    for c in batch_chunks(len(items), B)))  # fmt: skip
        was = self.model.training
        self.model.eval()
        img = torch.cat([self.model.encode_image(images_tensor(images, c)) for c in batch_chunks(len(images), B)])
        txt = torch.cat([self.model.encode_text([t for _, _, t in items[c.start : c.stop]])
                         for c in batch_chunks(len(items), B)])  # fmt: skip
        self.model.train(was)
        hits = ((txt @ img.T).argmax(1).cpu() == torch.tensor([i for i, _, _ in items])).float().mean().item()
        return {"val/loss": loss, "val/retrieval_top1": hits}

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": self.model(batch["image"].to(self.device, non_blocking=True), batch["text"])}

    def scalars(self, step: int) -> dict[str, float]:
        return {"train/logit_scale": self.model.logit_scale.exp().item()}

    def validate(self) -> dict[str, float]:
        return validate(self.model, self.cfg.eval) if self.folder is None else self.validate_folder()

    def save(self, out: Path) -> Path:
        return self.model.save_pretrained(out / "clip")


def train_clip(cfg: ClipTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the folder of the saved CLIP.

    ``stop_after`` ends this run after that many steps (checkpointed), to be continued with
    ``resume=True``; the schedule is always that of ``cfg.train.steps``.
    """
    tok_dir = cfg.text_tokenizer if cfg.text_tokenizer is not None else default_component_dir("text_tokenizer")
    text_tok = load_text_tokenizer(tok_dir, required=[PAD])
    return run(cfg.train, lambda device: ClipTask(cfg, text_tok, device), resume, stop_after)
