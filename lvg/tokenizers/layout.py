"""Layout tokenizer: :class:`~lvg.data.layout.Layout` <-> layout tokens, and the grammar that keeps
sampled layouts valid.

Token format (Pix2Seq / Kosmos-2 style location tokens)::

    <layout> BG (LABEL x0 y0 x1 y1){1..max_objects} </layout>

``BG`` is one background token, ``LABEL`` one label token per known label string, and each
coordinate one of ``canvas * bins_per_px + 1`` location tokens (bin ``k`` is ``k / bins_per_px``
pixels). Coordinates are quantised to the nearest bin, as in Pix2Seq: with ``bins_per_px = 3`` every
Shapes World box is exact (cell centres are multiples of a third of a pixel); the shipped planner uses
whole pixels (``bins_per_px = 1``, 65 location tokens), which moves a box by at most half a pixel and
gives each location token three times the training signal. Ids here are *local* (0-based); a
language model adds its own offset.

:class:`LayoutGrammar` gives, for any prefix, the set of tokens that keep the layout valid: the
background first, at least one object, at most ``max_objects``, ``x0 < x1`` and ``y0 < y1`` inside
the canvas, no box overlapping an earlier one, and no box side under the config's ``min_side`` (the world's
smallest object: a box squeezed against an earlier one, a sliver no painter can draw an object in, is never
written; the planner places the object where it fits). Every sequence it allows decodes to a valid
:class:`Layout`, whatever the model's logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from lvg.data.layout import Layout, LayoutError, LayoutObject, check_layout_order, in_layout_order
from lvg.ranges import bounded, check_ranges

LAYOUT, END = 0, 1  # local ids of <layout> and </layout>
FIELDS = ("label", "x0", "y0", "x1", "y1")  # the tokens of one object, in order


def describe_labels(labels: Sequence[str], limit: int = 16) -> str:
    """What a model's ``labels`` are, for an error message: all of them when there are at most ``limit``; when they
    are every pair of a first word and a last word (Shapes World's "COLOUR SHAPE"), the words of each kind; else
    the first ``limit`` and how many there are."""
    labels = list(labels)
    if len(labels) <= limit:
        return "it knows " + ", ".join(repr(x) for x in labels)
    parts = [x.rsplit(" ", 1) for x in labels]
    if all(len(p) == 2 for p in parts):
        firsts = list(dict.fromkeys(p[0] for p in parts))
        lasts = list(dict.fromkeys(p[1] for p in parts))
        if len(firsts) * len(lasts) == len(set(labels)):
            return (f"it knows {len(labels)} labels 'A B', A one of {', '.join(firsts)} and B one of "
                    f"{', '.join(lasts)} (e.g. {labels[0]!r})")  # fmt: skip
    return f"it knows {len(labels)} labels: " + ", ".join(repr(x) for x in labels[:limit]) + ", ..."


@dataclass(frozen=True)
class LayoutTokenizerConfig:
    """The layout vocabulary: label and background strings, canvas and coordinate resolution."""

    labels: tuple[str, ...]
    backgrounds: tuple[str, ...]
    canvas: int = bounded(1, 4096, default=64)
    bins_per_px: int = bounded(1, 16, default=3)
    max_objects: int = bounded(1, 64, default=4)
    # reasons the planner may give instead of a layout (``<layout> REASON </layout>``), one token each, after the
    # locations; empty: a planner that always draws (every folder before prompt analysis)
    refusals: tuple[str, ...] = ()
    # the shortest box side (whole pixels) a sampled layout may have: the world's smallest object (Shapes World 10,
    # a folder its smallest box); 0: any non-empty box (every folder written before this field)
    min_side: int = bounded(0, 4096, default=0)
    # the order the model reads and keeps a layout's objects in (lvg.data.layout.LAYOUT_ORDERS): "reading" (by box
    # centre) or "lines" (rows as text is read: a box read a pixel higher stays in its row); an editor is given the
    # layout in this order
    order: str = "reading"

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "backgrounds", tuple(self.backgrounds))
        object.__setattr__(self, "refusals", tuple(self.refusals))
        if len(set(self.refusals)) != len(self.refusals) or any(not isinstance(r, str) or not r.strip()
                                                                  for r in self.refusals):  # fmt: skip
            raise ValueError("layout tokenizer: refusals must be distinct non-empty strings")
        for name in ("labels", "backgrounds"):
            vals = getattr(self, name)
            if not vals or any(not isinstance(v, str) or not v.strip() for v in vals):
                raise ValueError(f"layout tokenizer: {name} must be a non-empty list of non-empty strings")
            if len(set(vals)) != len(vals):
                raise ValueError(f"layout tokenizer: {name} holds duplicates")
        check_ranges(self, prefix="layout tokenizer: ")
        check_layout_order(self.order, "layout tokenizer: order")
        if self.min_side > self.canvas:
            raise ValueError(f"layout tokenizer: min_side {self.min_side} is larger than the canvas {self.canvas}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"], d["backgrounds"] = list(self.labels), list(self.backgrounds)
        if self.refusals:
            d["refusals"] = list(self.refusals)
        else:  # folders written before refusals existed stay byte-identical when saved again
            del d["refusals"]
        if self.min_side == 0:  # likewise
            del d["min_side"]
        if self.order == "reading":  # likewise
            del d["order"]
        return d


@dataclass
class LayoutTokenizer:
    """Encode and decode layouts as local token ids (see the module docstring)."""

    config: LayoutTokenizerConfig
    _label_ids: dict[str, int] = field(init=False, repr=False)
    _bg_ids: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        c = self.config
        self.bg_offset = 2
        self.label_offset = self.bg_offset + len(c.backgrounds)
        self.loc_offset = self.label_offset + len(c.labels)
        self.num_locs = c.canvas * c.bins_per_px + 1
        self.refusal_offset = self.loc_offset + self.num_locs
        self.vocab_size = self.refusal_offset + len(c.refusals)
        self._bg_ids = {b: self.bg_offset + i for i, b in enumerate(c.backgrounds)}
        self._label_ids = {lab: self.label_offset + i for i, lab in enumerate(c.labels)}

    def ordered(self, layout: Layout) -> Layout:
        """``layout`` with its objects in the model's order (``config.order``)."""
        return in_layout_order(layout, self.config.order)

    @property
    def max_length(self) -> int:
        """Longest token sequence: ``<layout> BG`` + 5 per object + ``</layout>``."""
        return 3 + len(FIELDS) * self.config.max_objects

    def kind(self, tok: int) -> str:
        """``layout``, ``end``, ``bg``, ``label``, ``loc`` or ``refusal`` for a local id."""
        if tok == LAYOUT:
            return "layout"
        if tok == END:
            return "end"
        if self.bg_offset <= tok < self.label_offset:
            return "bg"
        if self.label_offset <= tok < self.loc_offset:
            return "label"
        if self.loc_offset <= tok < self.refusal_offset:
            return "loc"
        if self.refusal_offset <= tok < self.vocab_size:
            return "refusal"
        raise LayoutError(f"token {tok} is not a layout token (vocabulary of {self.vocab_size})")

    def box_bins(self, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """A pixel box -> (x0, y0, x1, y1) in bins, each to the nearest bin, kept non-empty (exact for boxes on the
        grid)."""
        b, n = self.config.bins_per_px, self.num_locs - 1
        x0, y0, x1, y1 = (min(max(round(v * b), 0), n) for v in box)
        x1, y1 = max(x1, min(x0 + 1, n)), max(y1, min(y0 + 1, n))
        return min(x0, x1 - 1), min(y0, y1 - 1), x1, y1

    def check(self, layout: Layout) -> None:
        """Raise :class:`LayoutError` naming the object and field this vocabulary cannot express."""
        c = self.config
        if layout.canvas != c.canvas:
            raise LayoutError(f"layout canvas {layout.canvas} differs from this model's {c.canvas}")
        if layout.background not in self._bg_ids:
            raise LayoutError(f"field 'background': {layout.background!r} is not one of {list(c.backgrounds)}")
        if not 1 <= len(layout.objects) <= c.max_objects:
            raise LayoutError(f"field 'objects': this model paints 1 to {c.max_objects} objects, "
                              f"got {len(layout.objects)}")  # fmt: skip
        for i, o in enumerate(layout.objects):
            if o.label not in self._label_ids:
                raise LayoutError(f"object {i}: field 'label' {o.label!r} is not a label this model knows; "
                                  f"{describe_labels(c.labels)}")  # fmt: skip

    def encode(self, layout: Layout) -> list[int]:
        """``<layout> BG (LABEL x0 y0 x1 y1)* </layout>`` as local ids (boxes quantised, see :meth:`box_bins`)."""
        self.check(layout)
        ids = [LAYOUT, self._bg_ids[layout.background]]
        for o in layout.objects:
            ids.append(self._label_ids[o.label])
            ids += [self.loc_offset + k for k in self.box_bins(o.box)]
        return [*ids, END]

    def encode_refusal(self, reason: str) -> list[int]:
        """``<layout> REASON </layout>`` as local ids (``reason`` one of the config's ``refusals``)."""
        if reason not in self.config.refusals:
            raise ValueError(f"{reason!r} is not a refusal this vocabulary has ({list(self.config.refusals)})")
        return [LAYOUT, self.refusal_offset + self.config.refusals.index(reason), END]

    def refusal_ids(self) -> range:
        """The local ids of the refusal tokens (empty when the vocabulary has none)."""
        return range(self.refusal_offset, self.vocab_size)

    def decode(self, ids: list[int]) -> Layout:
        """Local ids (with or without the leading ``<layout>``, up to ``</layout>``) -> :class:`Layout`."""
        ids = list(ids)
        if ids and ids[0] == LAYOUT:
            ids = ids[1:]
        if END in ids:
            ids = ids[: ids.index(END)]
        if ids and self.kind(ids[0]) == "refusal":
            raise LayoutError(f"the planner refused to draw ({self.config.refusals[ids[0] - self.refusal_offset]}): "
                              "there is no layout")  # fmt: skip
        if not ids or self.kind(ids[0]) != "bg":
            raise LayoutError("a layout token sequence starts with a background token")
        body = ids[1:]
        if len(body) % len(FIELDS):
            raise LayoutError(f"layout tokens end inside an object ({len(body)} tokens after the background)")
        c = self.config
        objs = []
        for i in range(0, len(body), len(FIELDS)):
            lab, *locs = body[i : i + len(FIELDS)]
            if self.kind(lab) != "label" or any(self.kind(t) != "loc" for t in locs):
                raise LayoutError(f"object {i // len(FIELDS)}: expected LABEL x0 y0 x1 y1 tokens")
            box = tuple((t - self.loc_offset) / c.bins_per_px for t in locs)
            objs.append(LayoutObject(c.labels[lab - self.label_offset], box))
        return Layout(c.backgrounds[ids[0] - self.bg_offset], tuple(objs), c.canvas)


class LayoutGrammar:
    """Which layout token may come next, so that every completed sequence is a valid layout.

    ``allowed(prefix)`` takes the local ids generated after ``<layout>`` and returns a BoolTensor over
    the local vocabulary. A finished prefix (ending in ``</layout>``) allows only ``</layout>`` again,
    so finished rows of a batch can keep stepping harmlessly. Refusal tokens are never allowed: whether to refuse
    is decided before sampling (:meth:`lvg.pipelines.planned.LayoutPlanner.analyse`), so a sampled row is a layout.
    """

    def __init__(self, tokenizer: LayoutTokenizer):
        self.tok = tokenizer
        self.n = tokenizer.num_locs  # locations 0 .. n-1
        self.m = max(1, tokenizer.config.min_side * tokenizer.config.bins_per_px)  # the shortest box side, in bins
        self._bins = torch.arange(self.n)

    def _mask(self, lo: int, hi: int) -> torch.Tensor:
        m = torch.zeros(self.tok.vocab_size, dtype=torch.bool)
        m[lo:hi] = True
        return m

    def _loc_mask(self, ok: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(self.tok.vocab_size, dtype=torch.bool)
        m[self.tok.loc_offset : self.tok.refusal_offset] = ok
        return m

    def _free_corners(self, boxes: list[list[int]]) -> torch.Tensor:
        """BoolTensor [n, n]: the corners [x0, y0] of an m x m box inside the canvas and outside every earlier box."""
        n, m = self.n, self.m
        cover = torch.zeros(n - 1, n - 1, dtype=torch.int32)  # [x, y]: the unit square at (x, y) is in an earlier box
        for x0, y0, x1, y1 in boxes:
            cover[x0:x1, y0:y1] = 1
        s = torch.nn.functional.pad(cover.cumsum(0).cumsum(1), (1, 0, 1, 0))  # [n, n]: s[x, y] = cover[:x, :y].sum()
        k = n - m  # corners 0 .. n-1-m keep the box inside the canvas
        free = torch.zeros(n, n, dtype=torch.bool)
        free[:k, :k] = (s[m:, m:] - s[:k, m:] - s[m:, :k] + s[:k, :k]) == 0  # [k, k]: covered squares in each box
        return free

    def allowed(self, prefix: list[int]) -> torch.Tensor:
        t, n, m = self.tok, self.n, self.m
        if not prefix:
            return self._mask(t.bg_offset, t.label_offset)
        if prefix[-1] == END:
            return self._mask(END, END + 1)
        body = prefix[1:]
        done, pos = divmod(len(body), len(FIELDS))
        loc = lambda k: [v - t.loc_offset for v in k]  # noqa: E731
        boxes = [loc(body[i * 5 + 1 : i * 5 + 5]) for i in range(done)]  # previous boxes, in bins
        cur = loc(body[done * 5 + 1 : done * 5 + pos])
        b = self._bins
        if pos == 0:  # a label (while there is room for another box), or the end (after at least one object)
            room = done < t.config.max_objects and bool(self._free_corners(boxes).any())
            mask = self._mask(t.label_offset, t.loc_offset) if room else self._mask(0, 0)
            if done >= 1:
                mask[END] = True
            return mask
        if pos == 1:  # x0: some y0 leaves room for an m x m box there
            return self._loc_mask(self._free_corners(boxes).any(dim=1))
        if pos == 2:  # y0: an m x m box at (x0, y0) is outside every earlier box
            return self._loc_mask(self._free_corners(boxes)[cur[0]])
        if pos == 3:  # x1 >= x0 + m, stopping at the first box met along the rows y0 .. y0+m-1
            x0, y0 = cur
            limit = n - 1
            for bx0, by0, _bx1, by1 in boxes:
                if by0 < y0 + m and y0 < by1 and bx0 > x0:
                    limit = min(limit, bx0)
            return self._loc_mask((b >= x0 + m) & (b <= limit))
        x0, y0, x1 = cur  # pos == 4: y1 >= y0 + m, stopping at the first box below within [x0, x1]
        limit = n - 1
        for bx0, by0, bx1, _by1 in boxes:
            if bx0 < x1 and x0 < bx1 and by0 > y0:
                limit = min(limit, by0)
        return self._loc_mask((b >= y0 + m) & (b <= limit))
