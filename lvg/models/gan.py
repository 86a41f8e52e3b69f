"""The GAN painter: layout + noise -> pixels, object by object (LostGAN-style), with a layout-conditioned critic.

Generator (:class:`GanPainter`, the shipped component):

1. Each object's label feature is the sum of its label words' embeddings (as the code painter's: "red star" is
   composed from "red" and "star", "cat (noto)" from "cat" and "(noto)"). With the object's own noise it drives a
   small conv decoder (FiLM-modulated at every scale, as LostGAN's per-object style codes drive ISLA-Norm) that paints
   the object as an RGBA sprite of ``sprite x sprite`` pixels in its own frame.
2. Each sprite is resampled into its box on the canvas (``grid_sample`` at ``supersample`` times the canvas, then
   averaged down: anti-aliased at any box size) and composited over the background, objects in layout order.
3. A small residual conv net, fed the composite, the alpha coverage and the global noise, refines the whole image
   (edges, where objects touch); its last layer starts at zero, so training starts from the plain composite.

Painting in pixel space was chosen over the image tokenizer's latent space by measurement: the shipped 16x16 FSQ
tokenizer's own round trip is the ceiling of any code painter, and it keeps small stars at soft IoU 0.786 (0% of
them >= 0.9) and emoji at ~31 dB (docs/painters.md). Objects painted in their own frame cannot merge into a
neighbour, whatever the distance between their boxes.

The critic (:class:`LayoutDiscriminator`, training only) scores the whole image (projection on the background) and
every object crop (projection on its label feature), with spectral norm, as LostGAN's image- and object-level
discriminators do. ``paint(layouts, seeds)`` is deterministic given the seeds: image ``i`` draws its noise from a
generator seeded with ``seeds[i]``, so a seed reproduces its image byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from lvg.component import Component
from lvg.data.layout import Layout
from lvg.models.painter import LayoutInputs, check_vocabulary, sum_embeddings
from lvg.ranges import bounded, check_ranges


@dataclass
class GanPainterConfig:
    """Architecture and vocabulary of a :class:`GanPainter`."""

    label_words: list[str] = field(default_factory=list)  # every word a label may use
    backgrounds: list[str] = field(default_factory=lambda: ["white", "black"])
    canvas: int = bounded(8, 1024, default=64)
    max_objects: int = bounded(1, 64, default=4)
    embed_dim: int = bounded(1, 1024, default=128)  # label feature size
    noise_dim: int = bounded(0, 512, default=32)  # per-object and global noise size (0: no noise)
    sprite: int = bounded(8, 256, note="a power of two", default=32)  # side of each object's own RGBA canvas
    width: int = bounded(8, 2048, default=256)  # decoder channels at 4x4, halved at each doubling (at least 32)
    supersample: int = bounded(1, 8, default=2)  # placement resolution / canvas (anti-aliasing)
    refine_width: int = bounded(0, 512, default=32)  # the whole-image refiner's channels (0: no refiner)

    def __post_init__(self) -> None:
        check_vocabulary(self)
        if self.sprite & (self.sprite - 1):
            raise ValueError(f"sprite must be a power of two, got {self.sprite}")


class FiLM(nn.Module):
    """GroupNorm whose scale and shift come from a condition vector (per-object style, as in ISLA-Norm)."""

    def __init__(self, channels: int, cond: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(8, channels), channels, affine=False)
        self.proj = nn.Linear(cond, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # x [N, C, H, W], cond [N, cond]
        scale, shift = self.proj(cond).chunk(2, dim=1)
        return self.norm(x) * (1 + scale[..., None, None]) + shift[..., None, None]


class UpBlock(nn.Module):
    """2x nearest upsampling, then two 3x3 convs, each FiLM-modulated by the condition."""

    def __init__(self, c_in: int, c_out: int, cond: int):
        super().__init__()
        self.c1, self.f1 = nn.Conv2d(c_in, c_out, 3, padding=1), FiLM(c_out, cond)
        self.c2, self.f2 = nn.Conv2d(c_out, c_out, 3, padding=1), FiLM(c_out, cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.f1(self.c1(F.interpolate(x, scale_factor=2.0, mode="nearest")), cond))
        return F.silu(self.f2(self.c2(x), cond))


def widths(width: int, ups: int) -> list[int]:
    """Decoder channels at 4x4 and after each of ``ups`` doublings (halved each time, at least 32)."""
    return [max(32, width >> i) for i in range(ups + 1)]


def place(sprites: torch.Tensor, boxes: torch.Tensor, canvas: int, supersample: int) -> torch.Tensor:
    """RGBA sprites [N, 4, s, s] into their boxes [N, 4] (pixels) on the canvas -> [N, 4, canvas, canvas].

    Each sprite is stretched over its box exactly (its outer pixel edges on the box's edges), sampled bilinearly at
    ``supersample`` points per canvas pixel side and averaged (anti-aliased); outside its box a sprite is zero, so
    a box edge between canvas pixels gives that pixel partial coverage."""
    S = canvas * supersample
    px = (torch.arange(S, device=sprites.device, dtype=sprites.dtype) + 0.5) / supersample  # sample centres
    x0, y0, x1, y1 = boxes.to(sprites.dtype).unbind(-1)  # [N] each
    u = (px - x0[:, None]) / (x1 - x0).clamp_min(1e-3)[:, None] * 2 - 1  # [N, S]
    v = (px - y0[:, None]) / (y1 - y0).clamp_min(1e-3)[:, None] * 2 - 1  # [N, S]
    grid = torch.stack([u[:, None, :].expand(-1, S, -1), v[:, :, None].expand(-1, -1, S)], -1)  # [N, S, S, 2]
    # border padding, then exactly zero outside the box: a sprite's edge pixels are not blended with the padding
    inside = ((u.abs() <= 1)[:, None, :] & (v.abs() <= 1)[:, :, None]).to(sprites.dtype)  # [N, S, S]
    out = F.grid_sample(sprites, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out * inside[:, None]
    return F.avg_pool2d(out, supersample) if supersample > 1 else out


def crop(images: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, size: int, grow: float = 0.15) -> torch.Tensor:
    """Crops [N, C, size, size] of ``images`` [B, C, H, W] at boxes [N, 4] (pixels) of image ``owner[N]``, each box
    grown by ``grow`` of its side on every edge (the critic sees the object's outline and its surroundings)."""
    H = images.shape[-1]
    x0, y0, x1, y1 = boxes.to(images.dtype).unbind(-1)
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    x0, x1, y0, y1 = x0 - gx, x1 + gx, y0 - gy, y1 + gy
    t = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) / size  # [size]
    xs = (x0[:, None] + t * (x1 - x0)[:, None]) / H * 2 - 1  # [N, size]
    ys = (y0[:, None] + t * (y1 - y0)[:, None]) / H * 2 - 1
    grid = torch.stack([xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], -1)
    return F.grid_sample(images[owner], grid, mode="bilinear", padding_mode="border", align_corners=False)


class GanPainter(LayoutInputs, Component, nn.Module):
    """Layout + noise -> RGB pixels in [0, 1] (see the module docstring)."""

    config_class = GanPainterConfig
    paints = "pixels"  # what paint() returns: images (the code painter returns "codes")
    adapter_role = "gan painter"  # fine-tuning, as the code painter's (lvg.models.painter_adapters)
    vocab_tables = {"words": "label_words", "bg_colour": "backgrounds"}
    lora_layers = ("stem", "proj", "c1", "c2", "to_rgba")  # the sprite decoder (proj: its FiLM layers)

    def __init__(self, config: GanPainterConfig):
        super().__init__()
        self.config = c = config
        self.init_vocabulary(c)
        self.bg_colour = nn.Embedding(len(c.backgrounds), 3)  # each background's RGB in [0, 1] (clamped)
        nn.init.constant_(self.bg_colour.weight, 0.5)
        cond = c.embed_dim + c.noise_dim
        ups = int(math.log2(c.sprite // 4))
        ch = widths(c.width, ups)
        self.stem = nn.Linear(cond, ch[0] * 16)
        self.ups = nn.ModuleList(UpBlock(ch[i], ch[i + 1], cond) for i in range(ups))
        self.to_rgba = nn.Conv2d(ch[-1], 4, 3, padding=1)
        self.refine = None
        if c.refine_width:
            r = c.refine_width
            self.refine = nn.Sequential(nn.Conv2d(4 + min(c.noise_dim, 8), r, 3, padding=1), nn.SiLU(),
                                        nn.Conv2d(r, r, 3, padding=1), nn.SiLU(), nn.Conv2d(r, 3, 3, padding=1))  # fmt: skip
            nn.init.zeros_(self.refine[-1].weight)
            nn.init.zeros_(self.refine[-1].bias)

    @property
    def device(self) -> torch.device:
        return self.stem.weight.device

    def noise(self, seeds: list[int], device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """Per-image noise from per-image seeds: objects [B, K, noise_dim] and global [B, noise_dim]."""
        c = self.config
        z_obj = torch.zeros(len(seeds), c.max_objects, c.noise_dim)
        z_glob = torch.zeros(len(seeds), c.noise_dim)
        for i, s in enumerate(seeds):
            g = torch.Generator().manual_seed(int(s))
            z_obj[i] = torch.randn(c.max_objects, c.noise_dim, generator=g)
            z_glob[i] = torch.randn(c.noise_dim, generator=g)
        dev = device or self.device
        return {"z_obj": z_obj.to(dev), "z_glob": z_glob.to(dev)}

    def sprites(self, label: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Label features [N, E] + noise [N, Z] -> RGBA sprites [N, 4, sprite, sprite] in [0, 1]."""
        cond = torch.cat([label, z], 1)
        x = self.stem(cond).view(len(cond), -1, 4, 4)
        for up in self.ups:
            x = up(x, cond)
        return torch.sigmoid(self.to_rgba(x))

    def forward(self, boxes: torch.Tensor, words: torch.Tensor, valid: torch.Tensor, bg: torch.Tensor,
                z_obj: torch.Tensor, z_glob: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Layout tensors + noise -> images [B, 3, canvas, canvas] in [0, 1]."""
        c = self.config
        dev = self.device
        boxes, words, valid, bg = boxes.to(dev), words.to(dev), valid.to(dev), bg.to(dev)
        B, K = valid.shape
        image = self.bg_colour(bg).clamp(0, 1)[..., None, None].expand(B, 3, c.canvas, c.canvas)  # [B, 3, H, W]
        cover = image.new_zeros(B, 1, c.canvas, c.canvas)
        b_idx, k_idx = valid.nonzero(as_tuple=True)  # only the objects that exist are painted
        if len(b_idx):
            rgba = self.sprites(self.label_features(words[b_idx, k_idx]), z_obj[b_idx, k_idx])  # [N, 4, s, s]
            # premultiplied colour, so the resampled edges blend with the background, not with black
            pre = torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:]], 1)
            placed = place(pre, boxes[b_idx, k_idx], c.canvas, c.supersample)  # [N, 4, H, W]
            for k in range(K):  # composite in layout order ("over")
                sel = k_idx == k
                if sel.any():
                    rows = b_idx[sel]
                    p = placed[sel]
                    a = p[:, 3:]
                    image = image.index_put((rows,), image[rows] * (1 - a) + p[:, :3])
                    cover = cover.index_put((rows,), cover[rows] + a * (1 - cover[rows]))
        if self.refine is not None:
            zg = z_glob[:, : min(c.noise_dim, 8)][..., None, None].expand(-1, -1, c.canvas, c.canvas)
            image = image + self.refine(torch.cat([image * 2 - 1, cover, zg], 1))
        return image

    @torch.inference_mode()
    def paint(self, layouts: list[Layout], seeds: list[int] | None = None) -> torch.Tensor:
        """Layouts -> uint8 images [B, 3, canvas, canvas]; image ``i`` uses noise seeded by ``seeds[i]`` (default 0)."""
        seeds = [0] * len(layouts) if seeds is None else list(seeds)
        if len(seeds) != len(layouts):
            raise ValueError(f"got {len(seeds)} seeds for {len(layouts)} layouts")
        t = self.encode_layouts(layouts)  # every layout checked before any is painted
        out = []
        for i in range(len(layouts)):  # one at a time: an image's pixels depend on its layout and seed alone
            x = self(t["boxes"][i : i + 1], t["words"][i : i + 1], t["valid"][i : i + 1], t["bg"][i : i + 1],
                     **self.noise(seeds[i : i + 1]))  # fmt: skip
            out.append((x.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu())
        return torch.cat(out) if out else torch.zeros(0, 3, self.config.canvas, self.config.canvas, dtype=torch.uint8)


@dataclass
class DiscriminatorConfig:
    """The layout-conditioned critic (training only)."""

    width: int = bounded(8, 1024, default=64)
    crop: int = bounded(8, 128, default=32)  # object crops are resampled to crop x crop

    def __post_init__(self) -> None:
        check_ranges(self)


def _sn_conv(c_in: int, c_out: int, k: int = 4, s: int = 2, p: int = 1) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))


def _conv_stack(width: int, side: int, mults: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """Stride-2 spectral-norm convs from RGB, ``width * mult`` channels each, while the side stays above 4; returns
    the stack and its output channels."""
    layers: list[nn.Module] = []
    c = 3
    for mult in mults:
        if side <= 4:
            break
        layers += [_sn_conv(c, width * mult), nn.LeakyReLU(0.2)]
        c, side = width * mult, side // 2
    return nn.Sequential(*layers), c


class LayoutDiscriminator(nn.Module):
    """Image-level and object-level critic with projection conditioning (LostGAN / projection discriminator).

    ``forward(images in [0, 1], boxes, words, valid, bg)`` -> (image logits [B], object logits [N] of the valid
    objects in ``valid.nonzero()`` order)."""

    def __init__(self, config: DiscriminatorConfig, n_words: int, n_backgrounds: int, canvas: int):
        super().__init__()
        self.config = d = config
        w = d.width
        self.img, c = _conv_stack(w, canvas, (1, 2, 4, 8))
        self.img_out = spectral_norm(nn.Linear(c, 1))
        self.bg_embed = nn.Embedding(n_backgrounds, c)
        self.obj, co = _conv_stack(w, d.crop, (1, 2, 4))
        self.obj_out = spectral_norm(nn.Linear(co, 1))
        self.word_embed = nn.Embedding(n_words, co)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, words: torch.Tensor, valid: torch.Tensor,
                bg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        x = images * 2 - 1
        h = self.img(x).sum((2, 3))  # [B, C]
        img_logit = self.img_out(h).squeeze(1) + (self.bg_embed(bg) * h).sum(1)  # [B]
        b_idx, k_idx = valid.nonzero(as_tuple=True)
        if not len(b_idx):
            return img_logit, img_logit.new_zeros(0)
        crops = crop(x, boxes[b_idx, k_idx], b_idx, self.config.crop)  # [N, 3, crop, crop]
        ho = self.obj(crops).sum((2, 3))  # [N, C]
        label = sum_embeddings(self.word_embed, words[b_idx, k_idx])  # [N, C]
        return img_logit, self.obj_out(ho).squeeze(1) + (label * ho).sum(1)
