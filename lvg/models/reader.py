"""The reader: image -> layout (a background plus labelled boxes), a small CenterNet-style detector.

A conv stem brings the image to a grid of stride ``stride`` (16x16 for 64 px), residual blocks mix
neighbourhoods, and three heads read it out:

- ``cls`` [B, 1 + labels, g, g]: for each grid cell, channel 0 is the logit that an object's box centre
  falls in the cell, the others that object's label;
- ``box`` [B, 4, g, g]: that box's centre offset from the cell centre and its width and height, in
  grid units;
- ``bg`` [B, backgrounds]: the background, from the pooled features.

Decoding keeps cells whose object score (the sigmoid of channel 0) is a 3x3 local maximum above ``threshold``,
at most ``max_objects`` of them. A box that overlaps a better one by at most ``touch`` px (two objects side by side,
each read a pixel wide) is split from it at the overlap's middle, so both stay and touch; one that overlaps it more
is a second reading of the same object and is dropped. Returns a
:class:`~lvg.data.layout.Layout`. Nothing here knows about Shapes World's cells: labels and boxes are
whatever the training layouts hold.

Saved as ``config.json`` + ``model.safetensors`` (:class:`~lvg.component.Component`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lvg.component import Component
from lvg.data.layout import Layout, LayoutError, LayoutObject, boxes_overlap
from lvg.models.blocks import ResBlock
from lvg.ranges import bounded, check_ranges


def make_room(kept: list[LayoutObject], new: LayoutObject, touch: float) -> list[LayoutObject]:
    """``kept`` plus ``new`` where ``new`` overlaps each kept box by at most ``touch`` px (on the axis it overlaps
    less): the two are split at the overlap's middle on that axis, so they touch. ``kept`` alone where ``new``
    overlaps a kept box more (a second detection of it), or where a split would leave a box under 1 px."""
    out, b = list(kept), list(new.box)
    for k, o in enumerate(out):
        if not boxes_overlap(tuple(b), o.box):
            continue
        a = list(o.box)
        depth = [min(b[ax + 2], a[ax + 2]) - max(b[ax], a[ax]) for ax in (0, 1)]  # overlap in x, in y
        ax = 0 if depth[0] <= depth[1] else 1
        if depth[ax] > touch:
            return list(kept)
        mid = (max(b[ax], a[ax]) + min(b[ax + 2], a[ax + 2])) / 2
        first, second = (a, b) if a[ax] + a[ax + 2] <= b[ax] + b[ax + 2] else (b, a)  # by centre on that axis
        first[ax + 2], second[ax] = mid, mid
        if min(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]) < 1:
            return list(kept)
        out[k] = LayoutObject(o.label, tuple(a))
    return [*out, LayoutObject(new.label, tuple(b))]


@dataclass
class ReaderConfig:
    """Vocabulary and architecture of a :class:`Reader`."""

    labels: list[str] = field(default_factory=list)
    backgrounds: list[str] = field(default_factory=lambda: ["white", "black"])
    canvas: int = bounded(8, 1024, default=64)
    stride: int = bounded(1, 64, default=4)  # pixels per grid cell (a power of two)
    width: int = bounded(8, 1024, default=64)
    blocks: int = bounded(0, 32, default=3)
    max_objects: int = bounded(1, 256, default=4)
    threshold: float = bounded(0.0, 1.0, lo_open=True, hi_open=True, default=0.5)  # object score a detection needs
    touch: float = bounded(0.0, 64.0, default=2.0)  # px two detections' boxes may overlap and both stay (split apart)

    def __post_init__(self) -> None:
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be a non-empty list of distinct strings")
        if not self.backgrounds or len(set(self.backgrounds)) != len(self.backgrounds):
            raise ValueError("backgrounds must be a non-empty list of distinct names")
        check_ranges(self)
        if self.stride & (self.stride - 1) or self.canvas % self.stride:
            raise ValueError(f"stride must be a power of two dividing canvas {self.canvas}, got {self.stride}")
        if self.width % 8:
            raise ValueError(f"width must be a multiple of 8, got {self.width}")

    @property
    def grid(self) -> int:
        return self.canvas // self.stride


class Reader(Component, nn.Module):
    """Image -> layout detector (see the module docstring)."""

    config_class = ReaderConfig

    def __init__(self, config: ReaderConfig):
        super().__init__()
        self.config = c = config
        self.label_ids = {lab: i + 1 for i, lab in enumerate(c.labels)}
        self.bg_ids = {b: i for i, b in enumerate(c.backgrounds)}
        downs, ch = [], 3
        for k in range(int(math.log2(c.stride))):
            out = c.width if k == int(math.log2(c.stride)) - 1 else max(8, c.width // 2)
            downs += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.SiLU()]
            ch = out
        self.stem = (
            nn.Sequential(nn.Conv2d(3, c.width, 3, padding=1), nn.SiLU()) if not downs else nn.Sequential(*downs)
        )
        self.body = nn.Sequential(*[ResBlock(c.width) for _ in range(c.blocks)])
        self.out_norm = nn.GroupNorm(8, c.width)
        self.cls = nn.Conv2d(c.width, 1 + len(c.labels), 1)
        self.box = nn.Conv2d(c.width, 4, 1)
        self.bg = nn.Linear(c.width, len(c.backgrounds))

    @property
    def device(self) -> torch.device:
        return self.cls.weight.device

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 images [B, 3, canvas, canvas] -> cls [B, 1+L, g, g], box [B, 4, g, g], bg [B, n_bg]."""
        x = images.to(self.device, torch.float32) / 127.5 - 1
        h = F.silu(self.out_norm(self.body(self.stem(x))))  # [B, width, g, g]
        return {"cls": self.cls(h), "box": self.box(h), "bg": self.bg(h.mean((2, 3)))}

    # ------------------------------------------------------------------ training targets and loss

    def targets(self, layouts: list[Layout]) -> dict[str, torch.Tensor]:
        """Layouts -> cls [B, g, g] (0 = none), box [B, 4, g, g] (grid units), bg [B]."""
        c, g = self.config, self.config.grid
        cls = torch.zeros(len(layouts), g, g, dtype=torch.long)
        box = torch.zeros(len(layouts), 4, g, g)
        bg = torch.zeros(len(layouts), dtype=torch.long)
        for i, lay in enumerate(layouts):
            if lay.background not in self.bg_ids:
                raise LayoutError(f"field 'background': {lay.background!r} is not one of {c.backgrounds}")
            bg[i] = self.bg_ids[lay.background]
            for k, o in enumerate(lay.objects):
                if o.label not in self.label_ids:
                    raise LayoutError(f"object {k}: field 'label' {o.label!r} is not a label this reader knows")
                x0, y0, x1, y1 = (v / c.stride for v in o.box)
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                col, row = min(int(cx), g - 1), min(int(cy), g - 1)
                cls[i, row, col] = self.label_ids[o.label]
                box[i, :, row, col] = torch.tensor([cx - col - 0.5, cy - row - 0.5, x1 - x0, y1 - y0])
        return {"cls": cls, "box": box, "bg": bg}

    def loss(self, out: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Object-or-not per cell (binary cross-entropy, object and empty cells averaged apart so the few object cells
        weigh as much as the many empty ones), label cross-entropy and box L1 on object cells, background
        cross-entropy."""
        t = {k: v.to(self.device) for k, v in t.items()}
        pos = t["cls"] > 0  # [B, g, g]
        bce = F.binary_cross_entropy_with_logits(out["cls"][:, 0], pos.float(), reduction="none")  # [B, g, g]
        obj = bce[pos].mean() + bce[~pos].mean() if pos.any() else bce.mean()  # object and empty cells weigh alike
        labels = out["cls"][:, 1:].permute(0, 2, 3, 1)[pos]  # [P, L]
        label = F.cross_entropy(labels, t["cls"][pos] - 1) if len(labels) else out["cls"].sum() * 0
        box = (F.l1_loss(out["box"], t["box"], reduction="none") * pos.unsqueeze(1)).sum() / pos.sum().clamp_min(1) / 4
        bg = F.cross_entropy(out["bg"], t["bg"])
        return {"loss": obj + label + box + bg, "obj": obj, "label": label, "box": box, "bg": bg}

    # ------------------------------------------------------------------ decoding

    @torch.inference_mode()
    def detect(self, images: torch.Tensor) -> list[Layout]:
        """uint8 images [B, 3, canvas, canvas] -> one layout each (possibly without objects)."""
        c = self.config
        out = self(images)
        score = out["cls"][:, 0].float().sigmoid()  # [B, g, g]
        peak = score == F.max_pool2d(score.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
        keep = peak & (score >= c.threshold)
        labels = out["cls"][:, 1:].argmax(1)  # [B, g, g]
        bgs = out["bg"].argmax(-1)
        layouts = []
        for i in range(images.shape[0]):
            rows, cols = keep[i].nonzero(as_tuple=True)
            order = score[i, rows, cols].argsort(descending=True)
            objs: list[LayoutObject] = []
            for j in order.tolist():
                r, q = rows[j].item(), cols[j].item()
                dx, dy, w, h = out["box"][i, :, r, q].float().tolist()
                cx, cy = (q + 0.5 + dx) * c.stride, (r + 0.5 + dy) * c.stride
                w, h = max(w, 0.25) * c.stride, max(h, 0.25) * c.stride
                x0, y0 = min(max(cx - w / 2, 0.0), c.canvas - 1.0), min(max(cy - h / 2, 0.0), c.canvas - 1.0)
                b = (x0, y0, min(max(cx + w / 2, x0 + 1), c.canvas), min(max(cy + h / 2, y0 + 1), c.canvas))
                if len(objs) < c.max_objects:
                    objs = make_room(objs, LayoutObject(c.labels[labels[i, r, q].item()], b), c.touch)
            layouts.append(Layout(c.backgrounds[bgs[i].item()], tuple(objs), c.canvas))
        return layouts
