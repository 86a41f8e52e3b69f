"""The painter: layout -> every image-tokenizer code in one parallel step (GLIGEN-style grounding).

The layout is rasterised on the pixel canvas: each object writes, inside its box grown by
``margin`` pixels, its label feature (the sum of its label words' embeddings, so "red star" is
composed from "red" and "star") and four geometry channels (the pixel's position inside the box in
[-1, 1] and the box's width and height); the background's embedding is added everywhere.
Pixel-unshuffle brings that to the trunk grid, a residual conv net mixes neighbourhoods, and the
head predicts each FSQ digit of each token (``sum(levels)`` logits per token rather than one per code:
a much smaller head that shares what nearby codes have in common). Painting is ``argmax``: a layout
determines its image.

A ``masked`` painter (MaskGIT) also sees the codes decided so far, a mask token elsewhere: trained to fill
masks of random ratio, it paints in ``steps`` rounds, each keeping the most confident of its new codes, so
later codes agree with earlier ones. ``steps=1`` is the one-step painter.

The trunk runs at the token grid, or ``upsample`` times coarser: then each trunk cell's head predicts
the ``upsample x upsample`` tokens it covers (pixel shuffle), so a finer image tokenizer (more, smaller
tokens: crisper small shapes) costs the trunk nothing.

Saved as ``config.json`` + ``model.safetensors`` (:class:`~lvg.component.Component`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lvg.component import Component
from lvg.data.layout import Layout, LayoutError
from lvg.models.blocks import ResBlock
from lvg.ranges import bounded, check_ranges


@dataclass
class PainterConfig:
    """Architecture and vocabulary of a :class:`Painter`."""

    label_words: list[str] = field(default_factory=list)  # every word a label may use
    backgrounds: list[str] = field(default_factory=lambda: ["white", "black"])
    canvas: int = bounded(8, 1024, default=64)
    grid: int = bounded(1, 256, default=16)  # token grid side (the image tokenizer's)
    fsq_levels: list[int] = bounded(2, 1 << 20, default_factory=lambda: [8, 5, 5, 5])  # the image tokenizer's
    max_objects: int = bounded(1, 64, default=4)
    embed_dim: int = bounded(1, 512, default=24)  # per-pixel label feature size
    width: int = bounded(8, 2048, default=128)
    blocks: int = bounded(0, 64, default=4)
    # pixels around each box that still see the object (anti-aliased edges)
    margin: float = bounded(0.0, 8.0, note="pixels", default=1.0)
    upsample: int = bounded(
        1, 16, default=1
    )  # token-grid cells per trunk cell side: the trunk runs at grid // upsample
    masked: bool = False  # MaskGIT: also sees the codes decided so far and paints in rounds (paint(steps=...))

    def __post_init__(self) -> None:
        check_vocabulary(self)
        if self.canvas % self.grid:
            raise ValueError(f"grid {self.grid} must divide canvas {self.canvas}")
        if self.grid % self.upsample:
            raise ValueError(f"upsample {self.upsample} must divide grid {self.grid}")
        if not self.fsq_levels:
            raise ValueError("fsq_levels must hold at least one level")
        if not isinstance(self.masked, bool):
            raise ValueError(f"masked must be true or false, got {self.masked!r}")

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def patch(self) -> int:
        """Canvas pixels per trunk cell side."""
        return self.canvas // (self.grid // self.upsample)


def check_vocabulary(config: PainterConfig) -> None:
    """A painter config's label words and backgrounds (non-empty, distinct) and its declared ranges."""
    if not config.label_words or len(set(config.label_words)) != len(config.label_words):
        raise ValueError("label_words must be a non-empty list of distinct words")
    if not config.backgrounds or len(set(config.backgrounds)) != len(config.backgrounds):
        raise ValueError("backgrounds must be a non-empty list of distinct names")
    check_ranges(config)


class LayoutInputs:
    """What a layout-conditioned painter shares: its label-word and background vocabularies (``config.label_words``,
    ``config.backgrounds``), a word embedding of ``config.embed_dim``, layouts -> tensors and label features."""

    config: PainterConfig  # or any config with label_words, backgrounds, canvas, max_objects and embed_dim

    def init_vocabulary(self, c: PainterConfig) -> None:
        self.word_ids = {w: i for i, w in enumerate(c.label_words)}
        self.bg_ids = {b: i for i, b in enumerate(c.backgrounds)}
        self.words = nn.Embedding(len(c.label_words), c.embed_dim)

    def encode_layouts(self, layouts: list[Layout]) -> dict[str, torch.Tensor]:
        """Layouts -> boxes [B, K, 4] (pixels), words [B, K, W] (ids of each label's words, -1 = none), valid [B, K]
        and bg [B]; ``K = config.max_objects``. A layout this painter cannot paint (another canvas, an unknown
        background or word, too many objects) is a LayoutError naming the field."""
        c = self.config
        B, K = len(layouts), c.max_objects
        W = max([len(o.label.split()) for lay in layouts for o in lay.objects] + [1])
        boxes = torch.zeros(B, K, 4)
        words = torch.full((B, K, W), -1, dtype=torch.long)
        valid = torch.zeros(B, K, dtype=torch.bool)
        bg = torch.zeros(B, dtype=torch.long)
        for i, lay in enumerate(layouts):
            if lay.canvas != c.canvas:
                raise LayoutError(f"layout canvas {lay.canvas} differs from the painter's {c.canvas}")
            if lay.background not in self.bg_ids:
                raise LayoutError(f"field 'background': {lay.background!r} is not one of {list(self.bg_ids)}")
            if len(lay.objects) > K:
                raise LayoutError(f"field 'objects': the painter paints at most {K} objects, got {len(lay.objects)}")
            bg[i] = self.bg_ids[lay.background]
            for k, o in enumerate(lay.objects):
                for w, word in enumerate(o.label.split()):
                    if word not in self.word_ids:
                        raise LayoutError(f"object {k}: field 'label' {o.label!r} uses the unknown word {word!r}")
                    words[i, k, w] = self.word_ids[word]
                boxes[i, k] = torch.tensor(o.box)
                valid[i, k] = True
        return {"boxes": boxes, "words": words, "valid": valid, "bg": bg}

    def label_features(self, words: torch.Tensor) -> torch.Tensor:
        """Word ids [..., W] (-1 = none) -> the sum of their embeddings [..., embed_dim]."""
        return sum_embeddings(self.words, words)


def sum_embeddings(table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """Ids [..., W] (-1 = none) -> the sum of their rows of ``table`` [..., dim] (a label as the sum of its words)."""
    return (table(ids.clamp_min(0)) * (ids >= 0).unsqueeze(-1)).sum(-2)


class Painter(LayoutInputs, Component, nn.Module):
    """Layout-conditioned parallel code predictor (see the module docstring)."""

    config_class = PainterConfig
    paints = "codes"  # what paint() returns: the image tokenizer's codes (the GAN painter returns "pixels")
    # fine-tuning (lvg.models.painter_adapters): the role its adapters name, the embedding tables indexed by a
    # vocabulary of its config (table -> config field), and the layers LoRA may go on
    adapter_role = "painter"
    vocab_tables = {"words": "label_words", "bg": "backgrounds"}
    lora_layers = ("stem", "c1", "c2", "head")  # its convolutions (c1 / c2: the residual blocks' 3x3 ones)

    def __init__(self, config: PainterConfig):
        super().__init__()
        self.config = c = config
        self.init_vocabulary(c)
        self.bg = nn.Embedding(len(c.backgrounds), c.embed_dim)
        c_in = (c.embed_dim + 4) * c.patch * c.patch
        self.stem = nn.Conv2d(c_in, c.width, 1)
        self.body = nn.Sequential(*[ResBlock(c.width) for _ in range(c.blocks)])
        self.out_norm = nn.GroupNorm(8, c.width)
        self.head = nn.Conv2d(c.width, sum(c.fsq_levels) * c.upsample**2, 1)
        if c.masked:  # the known codes' digits (one-hot) and a mask channel, per token, into the trunk
            self.tokens = nn.Conv2d((sum(c.fsq_levels) + 1) * c.upsample**2, c.width, 1)
        basis = torch.cumprod(torch.tensor([1, *c.fsq_levels[:-1]]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("levels", torch.tensor(c.fsq_levels), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ------------------------------------------------------------------ layouts -> tensors

    def rasterize(
        self, boxes: torch.Tensor, words: torch.Tensor, valid: torch.Tensor, bg: torch.Tensor
    ) -> torch.Tensor:
        """Layout tensors -> pixel features [B, embed_dim + 4, canvas, canvas]."""
        c = self.config
        dev = self.device
        boxes, words, valid, bg = boxes.to(dev), words.to(dev), valid.to(dev), bg.to(dev)
        label = self.label_features(words)  # [B, K, D]
        px = torch.arange(c.canvas, device=dev, dtype=torch.float32) + 0.5  # pixel centres
        x0, y0, x1, y1 = boxes.unbind(-1)  # [B, K] each
        w, h = (x1 - x0).clamp_min(1e-3), (y1 - y0).clamp_min(1e-3)
        m = c.margin
        inx = (px >= (x0 - m)[..., None]) & (px < (x1 + m)[..., None])  # [B, K, X]
        iny = (px >= (y0 - m)[..., None]) & (px < (y1 + m)[..., None])  # [B, K, Y]
        mask = (iny[..., :, None] & inx[..., None, :] & valid[..., None, None]).float()  # [B, K, Y, X]
        u = (px - x0[..., None]) / w[..., None] * 2 - 1  # [B, K, X]
        v = (px - y0[..., None]) / h[..., None] * 2 - 1  # [B, K, Y]
        Y = X = c.canvas
        geo = torch.stack([u[..., None, :].expand(*u.shape[:2], Y, X), v[..., :, None].expand(*v.shape[:2], Y, X),
                           (w / c.canvas)[..., None, None].expand(-1, -1, Y, X),
                           (h / c.canvas)[..., None, None].expand(-1, -1, Y, X)], 2)  # [B, K, 4, Y, X]  # fmt: skip
        feat = torch.einsum("bkd,bkyx->bdyx", label, mask) + self.bg(bg)[..., None, None]  # [B, D, Y, X]
        geo = (geo * mask[:, :, None]).sum(1)  # [B, 4, Y, X]
        return torch.cat([feat, geo], 1)

    # ------------------------------------------------------------------ network

    def forward(self, boxes: torch.Tensor, words: torch.Tensor, valid: torch.Tensor, bg: torch.Tensor,
                codes: torch.Tensor | None = None, known: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Layout tensors -> digit logits [B, sum(levels), grid, grid]. A masked painter also reads ``codes``
        [B, g, g] where ``known`` [B, g, g] (bool) is set (None: nothing known yet)."""
        c = self.config
        x = self.stem(F.pixel_unshuffle(self.rasterize(boxes, words, valid, bg), c.patch))  # [B, width, g/u, g/u]
        if c.masked:
            x = x + self.tokens(F.pixel_unshuffle(self.token_input(codes, known, len(x)), c.upsample))
        elif codes is not None or known is not None:
            raise ValueError("this painter is not masked: it reads no codes (PainterConfig.masked)")
        x = self.body(x)  # [B, width, g/u, g/u]
        return F.pixel_shuffle(self.head(F.silu(self.out_norm(x))), c.upsample)  # [B, sum(levels), g, g]

    def token_input(self, codes: torch.Tensor | None, known: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Known codes -> one-hot digits plus a mask channel [B, sum(levels) + 1, g, g] (unknown: mask only)."""
        c, dev = self.config, self.device
        if codes is None or known is None:
            codes = torch.zeros(batch, c.grid, c.grid, dtype=torch.long, device=dev)
            known = torch.zeros(batch, c.grid, c.grid, dtype=torch.bool, device=dev)
        codes, known = codes.to(dev), known.to(dev)
        digits = self.digits_of(codes)  # [B, n, g, g]
        hot = torch.cat([F.one_hot(digits[:, i], L).permute(0, 3, 1, 2) for i, L in enumerate(c.fsq_levels)], 1)
        k = known.unsqueeze(1).to(self.stem.weight.dtype)  # [B, 1, g, g]
        return torch.cat([hot.to(k.dtype) * k, 1 - k], 1)

    def digits_of(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, g, g] -> FSQ digits [B, n_levels, g, g]."""
        return (codes.unsqueeze(1) // self.basis.view(1, -1, 1, 1)) % self.levels.view(1, -1, 1, 1)

    def loss(self, logits: torch.Tensor, codes: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy over every FSQ digit of every token; codes [B, g, g]. ``weight`` [B, g, g]: average
        over the tokens it marks instead (a masked painter learns the masked tokens)."""
        digits = self.digits_of(codes.to(logits.device))
        parts = logits.split(self.config.fsq_levels, dim=1)
        if weight is None:
            return sum(F.cross_entropy(p, digits[:, i]) for i, p in enumerate(parts)) / len(parts)
        w = weight.to(logits.device).float()
        ce = sum(F.cross_entropy(p, digits[:, i], reduction="none") for i, p in enumerate(parts)) / len(parts)
        return (ce * w).sum() / w.sum().clamp_min(1.0)

    def draw(self, logits: torch.Tensor, temperature: float = 0.0,
             generators: list[torch.Generator] | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Digit logits -> (codes [B, g, g], their log-probability [B, g, g]): each digit's argmax, or
        (``temperature`` > 0) a draw from ``softmax(logits / temperature)`` with image ``i``'s ``generators[i]``."""
        parts = logits.float().split(self.config.fsq_levels, dim=1)
        if temperature <= 0:
            digits = torch.stack([p.argmax(1) for p in parts], 1)  # [B, n, g, g]
        else:
            gens = generators or [torch.Generator().manual_seed(0) for _ in range(len(logits))]
            rows = []
            for i, g in enumerate(gens):
                draws = []
                for p in parts:
                    probs = torch.softmax(p[i].cpu() / temperature, 0)  # [L, g, g]
                    flat = probs.permute(1, 2, 0).reshape(-1, probs.shape[0])  # [g*g, L]
                    draws.append(torch.multinomial(flat, 1, generator=g).view(probs.shape[1:]))
                rows.append(torch.stack(draws))  # [n, g, g]
            digits = torch.stack(rows).to(logits.device)
        logp = sum(F.log_softmax(p, 1).gather(1, digits[:, i : i + 1]).squeeze(1) for i, p in enumerate(parts))
        return (digits * self.basis.view(1, -1, 1, 1)).sum(1), logp

    def codes_from_logits(self, logits: torch.Tensor, temperature: float = 0.0,
                          seeds: list[int] | None = None) -> torch.Tensor:  # fmt: skip
        """Digit logits -> codes [B, g, g]: the argmax of each digit, or (``temperature`` > 0) a draw from
        ``softmax(logits / temperature)``, image ``i`` drawing from a generator seeded with ``seeds[i]``."""
        seeds = [0] * len(logits) if seeds is None else seeds
        return self.draw(logits, temperature, [torch.Generator().manual_seed(int(x)) for x in seeds])[0]

    @torch.inference_mode()
    def paint(self, layouts: list[Layout], seeds: list[int] | None = None, temperature: float = 0.0,
              steps: int = 1) -> torch.Tensor:  # fmt: skip
        """Layouts -> image codes LongTensor [B, grid, grid]: the argmax codes, or sampled at ``temperature`` with
        image ``i``'s draws seeded by ``seeds[i]``. A masked painter paints in ``steps`` rounds (MaskGIT: after
        round ``s`` of ``S``, ``1 - cos(pi/2 * s/S)`` of the tokens are kept, the most likely first)."""
        if steps < 1 or (steps > 1 and not self.config.masked):
            raise ValueError(f"steps={steps}: a painter paints in 1 step, a masked one (PainterConfig.masked) in >= 1")
        t = self.encode_layouts(layouts)
        args = (t["boxes"], t["words"], t["valid"], t["bg"])
        if steps == 1:
            return self.codes_from_logits(self(*args), temperature, seeds)
        seeds = [0] * len(layouts) if seeds is None else seeds
        gens = [torch.Generator().manual_seed(int(x)) for x in seeds]
        B, n = len(layouts), self.config.grid**2
        codes = torch.zeros(B, n, dtype=torch.long, device=self.device)
        known = torch.zeros(B, n, dtype=torch.bool, device=self.device)
        for s in range(1, steps + 1):
            logits = self(*args, codes.view(B, self.config.grid, -1), known.view(B, self.config.grid, -1))
            new, logp = (x.flatten(1) for x in self.draw(logits, temperature, gens))  # [B, n] each
            keep = n if s == steps else max(int(known[0].sum()) + 1, int(n * (1 - math.cos(math.pi / 2 * s / steps))))
            chosen = logp.masked_fill(known, float("inf")).topk(keep, dim=1).indices  # known tokens stay first
            now = torch.zeros_like(known).scatter_(1, chosen, True)
            codes = torch.where(now & ~known, new, codes)
            known = now
        return codes.view(B, self.config.grid, self.config.grid)
