"""PatchGAN discriminator and hinge losses for adversarial image-tokenizer training (VQGAN style; training only).

The discriminator (pix2pix's ``NLayerDiscriminator`` with GroupNorm) scores overlapping patches
of a 64x64 image as real or fake; each output logit sees a ~70x70 receptive field at 3 layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lvg.ranges import bounded, check_ranges

MAX_MULT = 8  # channel width stops growing at channels * 8


class DiscriminatorConfigError(ValueError):
    """A :class:`DiscriminatorConfig` that cannot build a discriminator for 64x64 images."""


@dataclass
class DiscriminatorConfig:
    """Width of the first conv and number of stride-2 convs (1..4 for 64x64 inputs)."""

    channels: int = bounded(1, None, default=64)
    # 64 / 2^layers must stay >= 4 so the two final 4x4 stride-1 convs leave at least 2x2 patches
    layers: int = bounded(1, 4, note="for 64x64 images", default=3)

    def __post_init__(self) -> None:
        check_ranges(self, error=DiscriminatorConfigError)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, c), c)


class PatchDiscriminator(nn.Module):
    """Images [B, 3, 64, 64] in [-1, 1] -> patch logits [B, 1, h', w'] (6x6 at the default 3 layers)."""

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = config or DiscriminatorConfig()
        ch, n = self.config.channels, self.config.layers
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = ch
        for i in range(1, n):  # further stride-2 convs, widening the channels
            nxt = ch * min(2**i, MAX_MULT)
            layers += [nn.Conv2d(c, nxt, 4, stride=2, padding=1, bias=False), _norm(nxt), nn.LeakyReLU(0.2)]
            c = nxt
        nxt = ch * min(2**n, MAX_MULT)
        layers += [nn.Conv2d(c, nxt, 4, stride=1, padding=1, bias=False), _norm(nxt), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(nxt, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, 1, h', w']
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W] in [-1, 1], got {tuple(images.shape)}")
        return self.net(images)


def _init_weights(m: nn.Module) -> None:
    """pix2pix / VQGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.GroupNorm):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``0.5 * (mean relu(1 - real) + mean relu(1 + fake))`` (scalar)."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss ``-mean(fake)`` (scalar)."""
    return -fake_logits.mean()
