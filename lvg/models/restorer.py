"""The restorer: a damaged image (and its hole mask) -> the clean image, pixel for pixel.

Reading a damaged image and painting its layout again (:func:`lvg.pipelines.restore.restore` without a restorer)
gives a clean painting, but never a better one than the painter draws from a label: in Emoji World that is the
ceiling (65% of scenes read and painted again pass the referee, against 98% for a filter that keeps the pixels). A
restorer keeps what the damage left: it is a small residual U-Net (three scales, residual conv blocks without
normalisation, skip connections) that predicts the correction to add to the input. Its input is the damaged image, with any hole filled smoothly from its border, and the hole mask (zeros
without one), so one model denoises, deblurs, removes JPEG blocks and fills holes. Its last layer starts at zero:
before training it returns the input unchanged.

It is trained on the world's images (or any imagefolder's) damaged on the fly (``lvg train restorer``,
:mod:`lvg.train.restorer`), and the pipeline runs it first in ``restore``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lvg.component import Component
from lvg.ranges import bounded, check_ranges


@dataclass
class RestorerConfig:
    """Architecture of a :class:`Restorer`."""

    canvas: int = bounded(8, 1024, default=64)  # square images of canvas x canvas pixels
    width: int = bounded(4, 512, default=32)  # channels at full resolution
    levels: int = bounded(1, 4, default=3)  # scales: full resolution, then each halved (channels x2, at most x4)
    blocks: int = bounded(1, 8, default=1)  # residual blocks per scale, on the way down and on the way up

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.canvas % (2 ** (self.levels - 1)):
            raise ValueError(f"canvas ({self.canvas}) must be divisible by 2**(levels - 1) ({2 ** (self.levels - 1)})")


class Block(nn.Module):
    """x + conv(relu(conv(x))) at constant width, without normalisation (as restoration nets such as EDSR drop it:
    a norm layer here learned several times slower)."""

    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(x)))


class Restorer(Component, nn.Module):
    """Damaged image + hole mask -> clean image (``forward`` on floats, :meth:`restore` on uint8)."""

    config_class = RestorerConfig

    def __init__(self, config: RestorerConfig):
        super().__init__()
        self.config = c = config
        widths = [c.width * min(2**i, 4) for i in range(c.levels)]
        self.head = nn.Conv2d(3 + 1, widths[0], 3, padding=1)  # RGB + hole mask
        self.down = nn.ModuleList(nn.Sequential(*[Block(w) for _ in range(c.blocks)]) for w in widths)
        self.pool = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.unpool = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in zip(widths, widths[1:]))
        self.up = nn.ModuleList(nn.Sequential(*[Block(w) for _ in range(c.blocks)]) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], 3, 3, padding=1)  # the correction
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def device(self) -> torch.device:
        return self.tail.weight.device

    def forward(self, images: torch.Tensor, holes: torch.Tensor | None = None) -> torch.Tensor:
        """images [B, 3, S, S] in [0, 1] (holes already filled), holes [B, S, S] (True / 1 = missing; None: none)
        -> restored images [B, 3, S, S] (the input plus the predicted correction; not clamped)."""
        B, _, S, _ = images.shape
        mask = torch.zeros(B, 1, S, S, device=images.device, dtype=images.dtype) if holes is None \
            else holes.to(images.dtype).view(B, 1, S, S)  # fmt: skip
        h = F.relu(self.head(torch.cat([images * 2 - 1, mask], 1)))  # [B, w0, S, S]
        skips = []
        for i, block in enumerate(self.down):
            h = block(h)
            if i < len(self.pool):
                skips.append(h)
                h = F.relu(self.pool[i](h))  # [B, w_{i+1}, S / 2^(i+1), ...]
        for i in reversed(range(len(self.up))):
            h = self.up[i](F.relu(self.unpool[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))) + skips[i])
        return images + self.tail(h)  # [B, 3, S, S]

    @torch.inference_mode()
    def restore(self, images: torch.Tensor, holes: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
        """uint8 images [N, 3, S, S] (holes filled) and holes [N, S, S] bools (or None) -> uint8 [N, 3, S, S]."""
        S = self.config.canvas
        if images.dim() != 4 or images.shape[1:] != (3, S, S):
            raise ValueError(f"the restorer takes images of 3x{S}x{S}, got {'x'.join(map(str, images.shape[1:]))}")
        out = []
        for s in range(0, len(images), batch_size):
            x = images[s : s + batch_size].to(self.device, torch.float32) / 255
            h = None if holes is None else holes[s : s + batch_size].to(self.device)
            out.append((self(x, h).clamp(0, 1) * 255).round().to(torch.uint8).cpu())
        return torch.cat(out) if out else images.clone()
