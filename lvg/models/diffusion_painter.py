"""The diffusion painter: layout + noise -> pixels by denoising, the layout-conditioned peer of the GAN painter.

A standard pixel-space DDPM built from ``diffusers`` parts (:class:`diffusers.UNet2DModel`, trained with
:class:`diffusers.DDPMScheduler`, sampled with :class:`diffusers.DDIMScheduler`, eta 0), conditioned on the same
layout the other painters paint, as layout-to-image diffusion models do (LayoutDiffusion, GLIGEN's spatial
grounding): the layout is rasterised into conditioning channels concatenated to the noisy image.

The layout map [B, map_dim + 3, H, W]:

- ``map_dim`` feature channels: the background's embedding everywhere, then each object's label feature (the sum
  of its label words' embeddings, as every painter's, projected to ``map_dim``) composited over it in layout order
  with the object's box coverage (anti-aliased: a pixel half inside a box is half covered);
- the coverage of all objects, and the position inside the topmost object's box (u, v in [-1, 1]; 0 outside any
  box), which tells apart two touching boxes of one label and where each object's centre is.

Defaults as the text-conditioned peer (:mod:`lvg.models.diffusion`): v-prediction on the cosine schedule, Min-SNR-5
loss weights. ``paint(layouts, seeds)`` is deterministic given the seeds: image ``i`` starts from noise drawn from a
generator seeded with ``seeds[i]``. Saved as ``config.json`` + ``model.safetensors`` (strict loading); only this
module imports ``diffusers`` (``pip install 'lvg[peer]'``), and only when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lvg.component import Component
from lvg.data.layout import Layout
from lvg.models.diffusion import PREDICTION_TYPES, _diffusers
from lvg.models.painter import LayoutInputs, check_vocabulary
from lvg.ranges import bounded, check_ranges


@dataclass
class DiffusionPainterConfig:
    """Vocabulary, layout map, UNet and noise schedule of a :class:`DiffusionPainter`."""

    label_words: list[str] = field(default_factory=list)  # every word a label may use
    backgrounds: list[str] = field(default_factory=lambda: ["white", "black"])
    canvas: int = bounded(8, 1024, default=64)
    max_objects: int = bounded(1, 64, default=4)
    embed_dim: int = bounded(1, 1024, default=64)  # label feature size
    map_dim: int = bounded(1, 256, default=16)  # feature channels of the layout map
    patch: int = bounded(1, 8, default=2)  # the UNet sees patch x patch pixels as one (space to depth): 4x cheaper
    block_out_channels: list[int] = bounded(1, 4096, default_factory=lambda: [32, 64, 64])  # one level each
    layers_per_block: int = bounded(1, 16, default=1)
    attention_levels: int = bounded(0, 8, default=1)  # the deepest levels with self-attention
    norm_num_groups: int = bounded(1, 256, default=16)
    num_train_timesteps: int = bounded(1, 100_000, default=1000)
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    sampling_steps: int = bounded(1, 10_000, default=20)  # DDIM steps when a call does not say

    def __post_init__(self) -> None:
        check_ranges(self)
        check_vocabulary(self)
        n = len(self.block_out_channels)
        if not 1 <= n <= 6 or self.canvas % (self.patch * 2 ** (n - 1)):
            raise ValueError(f"block_out_channels {self.block_out_channels}: 1..6 levels that halve the canvas cleanly")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"block_out_channels {self.block_out_channels} must be multiples of norm_num_groups")
        if self.attention_levels > n:
            raise ValueError(f"attention_levels {self.attention_levels} exceeds the {n} levels")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")

    def unet_kwargs(self) -> dict[str, Any]:
        """Arguments of ``UNet2DModel``: plain ResNet levels, then ``attention_levels`` levels with attention."""
        n, a = len(self.block_out_channels), self.attention_levels
        return dict(
            sample_size=self.canvas // self.patch, in_channels=(3 + self.map_dim + 3) * self.patch**2,
            out_channels=3 * self.patch**2,
            block_out_channels=tuple(self.block_out_channels), layers_per_block=self.layers_per_block,
            down_block_types=("DownBlock2D",) * (n - a) + ("AttnDownBlock2D",) * a,
            up_block_types=("AttnUpBlock2D",) * a + ("UpBlock2D",) * (n - a),
            norm_num_groups=self.norm_num_groups, attention_head_dim=8,
        )  # fmt: skip

    def scheduler_kwargs(self) -> dict[str, Any]:
        return dict(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
                    prediction_type=self.prediction_type)  # fmt: skip


def box_coverage(boxes: torch.Tensor, canvas: int) -> torch.Tensor:
    """Boxes [N, 4] (pixels, x0 y0 x1 y1) -> each pixel's covered fraction [N, canvas, canvas] (exact for boxes)."""
    px = torch.arange(canvas, device=boxes.device, dtype=torch.float32)  # pixel i spans [i, i + 1]
    x0, y0, x1, y1 = boxes.float().unbind(-1)
    cx = (torch.minimum(px + 1, x1[:, None]) - torch.maximum(px, x0[:, None])).clamp(0, 1)  # [N, W]
    cy = (torch.minimum(px + 1, y1[:, None]) - torch.maximum(px, y0[:, None])).clamp(0, 1)  # [N, H]
    return cy[:, :, None] * cx[:, None, :]


class DiffusionPainter(LayoutInputs, Component, nn.Module):
    """Layout-conditioned ``UNet2DModel`` with its DDPM training loss and DDIM sampler (see the module docstring)."""

    config_class = DiffusionPainterConfig
    paints = "pixels"  # what paint() returns: images

    def __init__(self, config: DiffusionPainterConfig):
        super().__init__()
        self.config = c = config
        self.init_vocabulary(c)
        self.bg_map = nn.Embedding(len(c.backgrounds), c.map_dim)
        self.to_map = nn.Linear(c.embed_dim, c.map_dim)
        d = _diffusers()
        self.unet = d.UNet2DModel(**c.unet_kwargs())
        self.noise_scheduler = d.DDPMScheduler(**c.scheduler_kwargs())  # training: add noise, v targets
        alphas = self.noise_scheduler.alphas_cumprod.float()  # [num_train_timesteps]
        self.register_buffer("alphas_cumprod", alphas, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.to_map.weight.device

    def layout_map(self, boxes: torch.Tensor, words: torch.Tensor, valid: torch.Tensor, bg: torch.Tensor
                   ) -> torch.Tensor:  # fmt: skip
        """Layout tensors (:meth:`encode_layouts`) -> the conditioning map [B, map_dim + 3, H, W]."""
        c, dev = self.config, self.device
        boxes, words, valid, bg = boxes.to(dev), words.to(dev), valid.to(dev), bg.to(dev)
        B, K = valid.shape
        H = c.canvas
        feat = self.bg_map(bg)[..., None, None].expand(B, c.map_dim, H, H)  # [B, M, H, W]
        cover = feat.new_zeros(B, 1, H, H)
        uv = feat.new_zeros(B, 2, H, H)
        px = torch.arange(H, device=dev, dtype=feat.dtype) + 0.5
        labels = self.to_map(self.label_features(words))  # [B, K, M]
        for k in range(K):  # composite in layout order ("over"), as the renderer and the other painters do
            m = box_coverage(boxes[:, k], H)[:, None] * valid[:, k, None, None, None]  # [B, 1, H, W]
            feat = feat * (1 - m) + m * labels[:, k, :, None, None]
            cover = cover + m * (1 - cover)
            x0, y0, x1, y1 = boxes[:, k].float().unbind(-1)
            u = ((px - x0[:, None]) / (x1 - x0).clamp_min(1)[:, None] * 2 - 1).clamp(-1, 1)  # [B, W]
            v = ((px - y0[:, None]) / (y1 - y0).clamp_min(1)[:, None] * 2 - 1).clamp(-1, 1)  # [B, H]
            pos = torch.stack([u[:, None, :].expand(-1, H, -1), v[:, :, None].expand(-1, -1, H)], 1)  # [B, 2, H, W]
            uv = uv * (1 - m) + m * pos
        return torch.cat([feat, cover, uv], 1)

    def denoise(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """UNet output (epsilon or v) for noisy images x [B, 3, H, W] at timesteps t [B] with the layout map."""
        p = self.config.patch
        out = self.unet(F.pixel_unshuffle(torch.cat([x, cond.to(x.dtype)], 1), p), t).sample
        return F.pixel_shuffle(out, p)

    def training_loss(self, x0: torch.Tensor, t: dict[str, torch.Tensor], snr_gamma: float = 5.0,
                      noise: torch.Tensor | None = None, timesteps: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """DDPM loss on clean images x0 [B, 3, H, W] in [-1, 1] for their layouts ``t`` (:meth:`encode_layouts`).

        Noise and timesteps come from torch's RNG unless given; ``snr_gamma > 0`` weights rows by Min-SNR-gamma."""
        sched = self.noise_scheduler
        b = x0.shape[0]
        noise = torch.randn_like(x0) if noise is None else noise
        if timesteps is None:
            timesteps = torch.randint(0, self.config.num_train_timesteps, (b,), device=x0.device)
        noisy = sched.add_noise(x0, noise, timesteps)
        v = self.config.prediction_type == "v_prediction"
        target = sched.get_velocity(x0, noise, timesteps) if v else noise
        cond = self.layout_map(t["boxes"], t["words"], t["valid"], t["bg"])
        per_row = F.mse_loss(self.denoise(noisy, timesteps, cond).float(), target.float(), reduction="none")
        per_row = per_row.mean((1, 2, 3))  # [B]
        if snr_gamma > 0:
            ab = self.alphas_cumprod.to(x0.device)[timesteps]
            snr = ab / (1 - ab)
            clipped = snr.clamp(max=snr_gamma)
            per_row = per_row * (clipped / (snr + 1) if v else clipped / snr.clamp(min=1e-8))
        return per_row.mean()

    @torch.inference_mode()
    def paint(self, layouts: list[Layout], seeds: list[int] | None = None, steps: int | None = None) -> torch.Tensor:
        """Layouts -> uint8 images [B, 3, canvas, canvas] by ``steps`` DDIM steps (default ``sampling_steps``); image
        ``i`` starts from noise seeded by ``seeds[i]`` (default 0)."""
        c = self.config
        seeds = [0] * len(layouts) if seeds is None else list(seeds)
        if len(seeds) != len(layouts):
            raise ValueError(f"got {len(seeds)} seeds for {len(layouts)} layouts")
        t = self.encode_layouts(layouts)  # every layout checked before any is painted
        if not layouts:
            return torch.zeros(0, 3, c.canvas, c.canvas, dtype=torch.uint8)
        cond = self.layout_map(t["boxes"], t["words"], t["valid"], t["bg"])  # [B, M + 3, H, W]
        sched = _diffusers().DDIMScheduler(**c.scheduler_kwargs(), timestep_spacing="trailing", clip_sample=True)
        sched.set_timesteps(steps or c.sampling_steps)
        out = []
        for i, s in enumerate(seeds):  # one at a time: an image's pixels depend on its layout and seed alone
            x = torch.randn(1, 3, c.canvas, c.canvas, generator=torch.Generator().manual_seed(int(s))).to(self.device)
            for step in sched.timesteps:
                tt = torch.full((1,), int(step), device=x.device)
                x = sched.step(self.denoise(x, tt, cond[i : i + 1]).float(), step, x, eta=0.0).prev_sample
            out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
        return torch.cat(out)
