"""The referee's emoji classifier: a small conv net that names (emoji, style) from an object's ink crop.

It is trained only on the real sprites under augmentation, never on generated images: each sample is one sprite of a
random (emoji, style) pair, resized to a whole-pixel side between ``min_side`` and ``max_side`` (the world's small
and large sizes and beyond), composited at a random offset on either background, blurred (sigma 0-1.2 px), given
Gaussian noise (sigma 0-10) and, half the time, JPEG-compressed (quality 50-95); its ink box is found by the
referee's own detector and resized to ``REF`` x ``REF`` as the referee does at judgement time. Train and save::

    OMP_NUM_THREADS=1 python -m lvg.worlds.emoji.classifier --out lvg/worlds/emoji/referee_model

(defaults: 30,000 crops, 800 AdamW steps of 128, one-cycle lr 3e-3, seed 0; ~1 min of crops and ~3-4 min of
training on one shared core). The folder holds ``classifier.safetensors`` (fp16) and ``config.json`` (the classes
in order, the width and the training settings); nothing is unpickled.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lvg.weights import load_weights, save_weights

from .concepts import STYLES
from .referee import REF, crop_feature, ink_mask
from .scenes import BACKGROUNDS, SpriteBank, composite

WEIGHTS = "classifier.safetensors"
CONFIG = "config.json"


class ClassifierError(ValueError):
    """A classifier folder that does not fit (missing files, classes unknown to the concept table); names the file."""


@dataclass(frozen=True)
class ClassifierConfig:
    """The net's width and how it is trained."""

    width: int = 32
    samples: int = 30_000
    steps: int = 800
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0
    min_side: int = 12
    max_side: int = 22
    max_blur: float = 1.2
    max_noise: float = 10.0
    jpeg_prob: float = 0.5


def _block(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())


class EmojiClassifier(nn.Module):
    """Five 3x3 conv blocks (width w, w, 2w, 2w, 4w; two 2x poolings), global average pooling, one linear layer."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _block(3, w), _block(w, w), nn.MaxPool2d(2), _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] for crops ``x`` [B, 3, REF, REF] in 0..1."""
        return self.net(x * 2.0 - 1.0)


def features_to_tensor(feats: np.ndarray) -> torch.Tensor:
    """Flattened ``crop_feature`` rows [N, REF*REF*3] -> [N, 3, REF, REF]."""
    return torch.from_numpy(np.ascontiguousarray(feats, np.float32)).view(-1, REF, REF, 3).permute(0, 3, 1, 2)


def augmented_crop(
    bank: SpriteBank, emoji: str, style: str, rng: random.Random, nrng: np.random.Generator, cfg: ClassifierConfig
) -> np.ndarray | None:
    """One augmented crop feature of a real sprite (None when no ink survives)."""
    from lvg.images import jpeg

    from .referee_check import degrade

    side = rng.randint(cfg.min_side, cfg.max_side)
    bg = rng.choice(list(BACKGROUNDS))
    n = side + 10
    img = np.empty((n, n, 3), np.float32)
    img[:] = np.asarray(BACKGROUNDS[bg], np.float32) / 255.0
    composite(img, bank.resized(emoji, style, side), rng.randint(2, 8), rng.randint(2, 8))
    img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    img = degrade(img, nrng, rng.uniform(0, cfg.max_noise), rng.uniform(0, cfg.max_blur))
    if rng.random() < cfg.jpeg_prob:
        img = jpeg(img, rng.randint(50, 95))
    arr = img.astype(np.float32)
    ys, xs = np.nonzero(ink_mask(arr, np.asarray(BACKGROUNDS[bg], np.float32)))
    if len(xs) == 0:
        return None
    return crop_feature(arr, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def train_classifier(
    bank: SpriteBank, pairs: list[tuple[str, str]], cfg: ClassifierConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> EmojiClassifier:  # fmt: skip
    """Train a classifier of ``pairs`` ((emoji, style), the class order) on augmented crops of the real sprites."""
    cfg = cfg or ClassifierConfig()
    rng = random.Random(f"lvg-emoji-classifier:{cfg.seed}")
    nrng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    feats, labels = [], []
    while len(feats) < cfg.samples:
        k = rng.randrange(len(pairs))
        f = augmented_crop(bank, *pairs[k], rng, nrng, cfg)
        if f is not None:
            feats.append(f)
            labels.append(k)
    X, Y = features_to_tensor(np.stack(feats)), torch.tensor(labels)
    net = EmojiClassifier(len(pairs), cfg.width)
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    g = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for step in range(cfg.steps):
        idx = torch.randint(0, len(X), (cfg.batch,), generator=g)
        loss = nn.functional.cross_entropy(net(X[idx]), Y[idx], label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step % 100 == 0 or step == cfg.steps - 1):
            log(f"step {step}: loss {loss.item():.3f}")
    return net.eval()


def save_classifier(
    net: EmojiClassifier, pairs: list[tuple[str, str]], cfg: ClassifierConfig, folder: str | os.PathLike
) -> Path:
    """Write ``classifier.safetensors`` (fp16) and ``config.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(net, folder / WEIGHTS, dtype=torch.float16)
    meta = {"classes": [list(p) for p in pairs], "ref": REF, "config": asdict(cfg),
            "command": "OMP_NUM_THREADS=1 python -m lvg.worlds.emoji.classifier --out DIR"}  # fmt: skip
    (folder / CONFIG).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def load_classifier(folder: str | os.PathLike) -> tuple[EmojiClassifier, list[tuple[str, str]]]:
    """The classifier in ``folder`` and its classes; a missing or unfitting file is a :class:`ClassifierError`."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        pairs = [(str(e), str(s)) for e, s in meta["classes"]]
        width = int(meta["config"]["width"])
        if meta.get("ref", REF) != REF:
            raise ClassifierError(f"{folder / CONFIG}: field 'ref' is {meta['ref']}, the referee uses {REF}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        if isinstance(e, ClassifierError):
            raise
        raise ClassifierError(f"{folder / CONFIG}: not a classifier config ({e})") from None
    net = EmojiClassifier(len(pairs), width)
    return load_weights(net, folder / WEIGHTS, folder / CONFIG).eval(), pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("referee_model"))
    ap.add_argument("--samples", type=int, default=ClassifierConfig.samples)
    ap.add_argument("--steps", type=int, default=ClassifierConfig.steps)
    ap.add_argument("--seed", type=int, default=ClassifierConfig.seed)
    args = ap.parse_args()
    from .world import EmojiWorld

    torch.set_num_threads(1)
    world = EmojiWorld.load()
    pairs = [(c.en, s) for c in world.table for s in STYLES]
    cfg = ClassifierConfig(samples=args.samples, steps=args.steps, seed=args.seed)
    t = time.perf_counter()
    net = train_classifier(
        world.bank, pairs, cfg, log=lambda m: print(f"{time.perf_counter() - t:7.1f} s  {m}", flush=True)
    )
    print(f"trained in {time.perf_counter() - t:.0f} s; wrote {save_classifier(net, pairs, cfg, args.out)}")


if __name__ == "__main__":
    main()
