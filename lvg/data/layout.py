"""Layouts: what a planner writes and a painter paints — a background plus labelled boxes.

A :class:`Layout` is general (any label strings, any canvas size): objects are ``{"label", "box"}``
with ``box = [x0, y0, x1, y1]`` in pixels, ``0 <= x0 < x1 <= canvas`` (likewise y), and boxes must not
overlap (touching is fine). JSON in and out; every validation error names the object and the field.
Nothing here knows a world: a world maps its scenes to layouts (Shapes World:
:mod:`lvg.worlds.shapes.scene_layout`).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lvg.files import InputFileError, parse_json, read_json, shorten

DEFAULT_CANVAS = 64  # pixels, when a layout does not say
MAX_LAYOUT_OBJECTS = 64  # a hard cap for any layout; a model's own limit is usually lower
BOX_DECIMALS = 4  # boxes are kept rounded to 1e-4 px, so layouts compare equal across float paths and JSON


class LayoutError(ValueError):
    """A layout (or layout file) that is malformed; the message names the object and the field."""


@dataclass(frozen=True)
class LayoutObject:
    """One object of a layout: a free-text label and a pixel box ``(x0, y0, x1, y1)``."""

    label: str
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "box": [_num(v) for v in self.box]}


def _finite(v: float) -> bool:
    """Whether ``v`` is a finite number that fits a float (an integer such as 10**400 does not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _num(v: float) -> float | int:
    """Whole numbers as ints in JSON; others rounded to 4 decimals (boxes live on a 1/3-pixel grid)."""
    r = round(float(v), BOX_DECIMALS)
    return int(r) if r == int(r) else r


@dataclass(frozen=True)
class Layout:
    """A background label and non-overlapping labelled boxes on a square ``canvas`` (pixels)."""

    background: str
    objects: tuple[LayoutObject, ...]
    canvas: int = DEFAULT_CANVAS

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if not isinstance(self.canvas, int) or isinstance(self.canvas, bool) or not 1 <= self.canvas <= 4096:
            raise LayoutError(f"canvas must be an integer number of pixels in [1, 4096], got {self.canvas!r}")
        if not isinstance(self.background, str) or not self.background.strip():
            raise LayoutError(f"background must be a non-empty string, got {self.background!r}")
        if len(self.objects) > MAX_LAYOUT_OBJECTS:
            raise LayoutError(f"a layout holds at most {MAX_LAYOUT_OBJECTS} objects, got {len(self.objects)}")
        for i, o in enumerate(self.objects):
            if not isinstance(o, LayoutObject):
                raise LayoutError(f"object {i} is not a LayoutObject")
            if not isinstance(o.label, str) or not o.label.strip():
                raise LayoutError(f"object {i}: field 'label' must be a non-empty string, got {o.label!r}")
            box = o.box
            if not isinstance(box, (tuple, list)) or len(box) != 4:
                raise LayoutError(f"object {i} ({o.label}): field 'box' must be [x0, y0, x1, y1], got {box!r}")
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v) for v in box):
                raise LayoutError(f"object {i} ({o.label}): field 'box' must hold 4 finite numbers, got "
                                  f"{shorten(repr(box), 200)}")  # fmt: skip
            rounded = tuple(round(float(v), BOX_DECIMALS) + 0.0 for v in box)  # checked as kept (and as written)
            x0, y0, x1, y1 = rounded
            if not (0 <= x0 < x1 <= self.canvas and 0 <= y0 < y1 <= self.canvas):
                raise LayoutError(
                    f"object {i} ({o.label}): field 'box' {list(box)} must satisfy 0 <= x0 < x1 <= {self.canvas} "
                    f"and 0 <= y0 < y1 <= {self.canvas} (inside the canvas; boxes are kept to {BOX_DECIMALS} "
                    f"decimals)"
                )
            object.__setattr__(o, "box", rounded)
        for i, a in enumerate(self.objects):
            for j in range(i):
                if boxes_overlap(a.box, self.objects[j].box):
                    b = self.objects[j]
                    raise LayoutError(
                        f"object {i} ({a.label}): field 'box' {list(a.box)} overlaps object {j} ({b.label}) "
                        f"{list(b.box)}; boxes may touch but not overlap"
                    )

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return {"background": self.background, "canvas": self.canvas, "objects": [o.to_dict() for o in self.objects]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, d: Any) -> Layout:
        """Build from ``{"background", "objects": [{"label", "box"}], "canvas"?}``; errors name the field."""
        if not isinstance(d, dict):
            raise LayoutError(f"a layout is a JSON object, got {type(d).__name__}")
        unknown = set(d) - {"background", "objects", "canvas"}
        if unknown:
            raise LayoutError(f"unknown layout fields {sorted(unknown)}; expected background, objects, canvas")
        if "background" not in d:
            raise LayoutError("layout field 'background' is missing")
        objs = d.get("objects")
        if not isinstance(objs, list):
            raise LayoutError(f"layout field 'objects' must be a list, got {type(objs).__name__}")
        out = []
        for i, o in enumerate(objs):
            if not isinstance(o, dict):
                raise LayoutError(f"object {i} must be a JSON object with 'label' and 'box'")
            bad = set(o) - {"label", "box"}
            if bad:
                raise LayoutError(f"object {i}: unknown fields {sorted(bad)}; expected label, box")
            for key in ("label", "box"):
                if key not in o:
                    raise LayoutError(f"object {i}: field '{key}' is missing")
            box = o["box"]
            if not isinstance(box, list) or len(box) != 4:
                raise LayoutError(f"object {i} ({o['label']}): field 'box' must be a list [x0, y0, x1, y1]")
            out.append(LayoutObject(o["label"], tuple(box)))
        return cls(d["background"], tuple(out), d.get("canvas", DEFAULT_CANVAS))

    @classmethod
    def from_json(cls, text: str) -> Layout:
        try:
            d = parse_json(text, "layout")
        except InputFileError as e:
            raise LayoutError(str(e)) from None
        return cls.from_dict(d)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Layout:
        """Read a layout JSON file (a regular file only: see :func:`lvg.files.read_json`); a missing or unreadable
        file is a :class:`LayoutError` naming it."""
        p = Path(path)
        try:
            d = read_json(p)
        except InputFileError as e:
            raise LayoutError(str(e) if str(p) in str(e) else f"{p}: {e}") from None
        except OSError as e:
            raise LayoutError(f"cannot read layout file {p}: {e.strerror or e}") from None
        try:
            return cls.from_dict(d)
        except LayoutError as e:
            raise LayoutError(f"{p}: {e}") from None


def boxes_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two boxes share interior area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# px a box read from an image may lie from a world's own box and still be that box (the reading benchmarks' exactness,
# and a world's describe of a read layout)
READ_TOLERANCE = 1.5


def reading_key(box: tuple[float, float, float, float]) -> tuple[float, float]:
    """Sort key of a box in reading order: its centre, row (y) first."""
    return (box[1] + box[3]) / 2, (box[0] + box[2]) / 2


def reading_indices(boxes: list[tuple[float, float, float, float]]) -> list[int]:
    """The order of ``boxes`` by centre, top to bottom then left to right: indices into ``boxes`` (ties keep theirs)."""
    return sorted(range(len(boxes)), key=lambda i: reading_key(boxes[i]))


def reading_order(layout: Layout) -> Layout:
    """``layout`` with its objects sorted by box centre, top to bottom then left to right."""
    return _reordered(layout, reading_indices([o.box for o in layout.objects]))


def _reordered(layout: Layout, idx: list[int]) -> Layout:
    return Layout(layout.background, tuple(layout.objects[i] for i in idx), layout.canvas)


def jitter_edit_boxes(before: Layout, after: Layout | None, prob: float, rng: random.Random, min_side: float = 0.0,
                      order: str = "reading") -> tuple[Layout, Layout | None]:  # fmt: skip
    """An edit pair with reader-like noise: each coordinate of each box of ``before`` moves 1 px either way with
    probability ``prob``, and each object of ``after`` standing on a box of ``before`` (kept, restyled, swapped onto
    it) moves with it, so the pair still keeps what it kept, on the boxes a reader might have read. Where the noise
    would leave the canvas, make a side shorter than ``min_side`` (and than it was), overlap two boxes or change
    ``before``'s ``order`` (:data:`LAYOUT_ORDERS`), the pair comes back unchanged; so does a pair ``prob`` leaves
    alone."""
    moved = {}
    for o in before.objects:
        box = tuple(v + (rng.choice((-1, 1)) if rng.random() < prob else 0) for v in o.box)
        if box != o.box:
            moved[o.box] = box
    if not moved:
        return before, after

    def shift(lay: Layout) -> Layout:
        return Layout(lay.background, tuple(replace(o, box=moved.get(o.box, o.box)) for o in lay.objects), lay.canvas)

    try:
        new_before, new_after = shift(before), None if after is None else shift(after)
    except LayoutError:  # off the canvas or overlapping
        return before, after
    for old, box in moved.items():
        for k in (0, 1):
            if box[k + 2] - box[k] < min(min_side, old[k + 2] - old[k]):
                return before, after
    if (
        in_layout_order(new_before, order).objects != new_before.objects
        and in_layout_order(before, order).objects == before.objects
    ):
        return before, after
    return new_before, new_after


def line_indices(boxes: list[tuple[float, float, float, float]]) -> list[int]:
    """The order of ``boxes`` in lines, as text is read (see :func:`line_order`): indices into ``boxes``."""
    lines: list[list[int]] = []
    for i in reading_indices(boxes):
        if lines:
            b, first = boxes[i], boxes[lines[-1][0]]
            if abs(reading_key(b)[0] - reading_key(first)[0]) < min(b[3] - b[1], first[3] - first[1]) / 2:
                lines[-1].append(i)
                continue
        lines.append([i])
    return [i for line in lines for i in sorted(line, key=lambda i: reading_key(boxes[i])[1])]


def line_order(layout: Layout) -> Layout:
    """``layout`` with its objects in lines, as text is read: by box centre top to bottom, an object whose centre lies
    within half the smaller height of its line's first object's centre joining that line; each line left to right.

    :func:`reading_order` puts a small object before a large one beside it whenever its centre sits a pixel higher;
    here the two share a line, ordered by x. :class:`lvg.pipelines.reading.ImageReader`'s reading LM reads layouts in
    this order, as a world's caption lists a grid's cells row by row."""
    return _reordered(layout, line_indices([o.box for o in layout.objects]))


# the orders a model may read a layout's objects in (``LayoutTokenizerConfig.order``), each boxes -> indices: by box
# centre (:func:`reading_order`), or in lines (:func:`line_order`)
LAYOUT_ORDERS = {"reading": reading_indices, "lines": line_indices}


def order_indices(boxes: list[tuple[float, float, float, float]], order: str = "reading") -> list[int]:
    """The order of ``boxes`` in ``order`` (:data:`LAYOUT_ORDERS`): indices into ``boxes``, for a world's scenes."""
    check_layout_order(order)
    return LAYOUT_ORDERS[order](boxes)


def in_layout_order(layout: Layout, order: str = "reading") -> Layout:
    """``layout`` with its objects in ``order`` (:data:`LAYOUT_ORDERS`)."""
    return _reordered(layout, order_indices([o.box for o in layout.objects], order))


def check_layout_order(order: str, what: str = "order") -> None:
    """A ValueError naming ``what`` unless ``order`` is one of :data:`LAYOUT_ORDERS`."""
    if order not in LAYOUT_ORDERS:
        raise ValueError(f"{what} must be one of {sorted(LAYOUT_ORDERS)}, got {order!r}")
