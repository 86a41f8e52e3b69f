"""Training on a user imagefolder (``metadata.jsonl`` beside the images), shared by every trainer.

A trainer with ``imagefolder: PATH`` reads the folder once (:class:`Folder`), holds out ``val_fraction`` of its
rows (chosen by file name, :func:`lvg.data.imagefolder.split_rows`), draws training batches as epochs of seeded
permutations of the rest (a pure function of the step, so resume and sharding keep working) and validates on the
held-out rows: at least their loss (:func:`held_out_loss`, ``val/loss``), plus what the trainer can measure there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from lvg.data.imagefolder import batch_indices, chunks, read_images, read_rows, split_rows

from .loop import WEIGHT, Shard, Task


class Folder:
    """A user imagefolder split into training and held-out rows (``train``, ``val``), with their images as uint8
    ``[N, S, S, 3]`` arrays (``train_images``, ``val_images``) when ``images`` is set; ``canvas`` is the images'
    side (else the layouts' canvas)."""

    def __init__(self, path: str, val_fraction: float, layouts: bool = False, images: bool = True):
        rows = read_rows(path, layouts=layouts)
        self.path = path
        self.train, self.val = split_rows(rows, val_fraction)
        self.train_images = self.val_images = None
        if images:
            every = read_images(self.train + self.val)  # one pass: every image has the same size, errors name it
            self.train_images, self.val_images = every[: len(self.train)], every[len(self.train) :]
            self.canvas = int(every.shape[1])
        else:
            lays = [r["layout"] for r in rows if r["layout"] is not None]
            self.canvas = lays[0].canvas if lays else 0

    def indices(self, step: int, shard: Shard, batch_size: int, key: str) -> list[int]:
        """Indices into ``train`` of this shard's rows of batch ``step`` (``key`` names the trainer's stream)."""
        return batch_indices(len(self.train), step, batch_size, key, shard.rows(batch_size))

    def val_chunks(self, batch_size: int) -> list[range]:
        """Held-out row indices, a batch at a time."""
        return chunks(len(self.val), batch_size)

    def check_canvas(self, size: int, what: str) -> None:
        """A model made for ``size`` x ``size`` images cannot take this folder's: say so, naming both."""
        if self.canvas != size:
            raise ValueError(f"the images of {self.path} are {self.canvas}x{self.canvas}, but {what} takes "
                             f"{size}x{size}")  # fmt: skip


def captions(rows: list[dict]) -> list[tuple[int, str, str]]:
    """``(row, lang, caption)`` for every row's ``text`` (English) and ``text_zh`` (Chinese) where it has one."""
    out = [(i, "en", r["text"]) for i, r in enumerate(rows)]
    return out + [(i, "zh", r["text_zh"]) for i, r in enumerate(rows) if r.get("text_zh")]


def images_tensor(images: np.ndarray, idx: Iterable[int]) -> torch.Tensor:
    """uint8 ``[B, 3, S, S]`` of the chosen rows of a uint8 ``[N, S, S, 3]`` array."""
    return torch.from_numpy(np.ascontiguousarray(images[list(idx)])).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def held_out_loss(task: Task, batches: Iterable[tuple[Any, int]], loss: Callable | None = None) -> float:
    """The mean loss of ``task`` (its modules in eval mode) over held-out ``(batch, rows)`` pairs, each weighted by
    its ``weight`` (tokens) when the loss gives one, else by its rows."""
    mods = list(task.modules.values())
    was = [m.training for m in mods]
    for m in mods:
        m.eval()
    total, weight = 0.0, 0.0
    for batch, rows in batches:
        out = (loss or task.loss)(batch)
        w = float(out[WEIGHT]) if WEIGHT in out else float(rows)
        total, weight = total + float(out["loss"]) * w, weight + w
    for m, w in zip(mods, was):
        m.train(w)
    return total / max(weight, 1e-12)
