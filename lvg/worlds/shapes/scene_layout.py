"""Shapes World scenes as layouts (:class:`lvg.data.layout.Layout`), and back.

Shapes World maps to layouts exactly: an object's label is ``"COLOUR SHAPE"`` (``"red star"``) and its
box is the square of side ``s`` (10 or 16 px) centred on its jittered cell centre, so the size is read
from the box. :func:`layout_from_scene` and :func:`layout_to_scene` are inverse functions.
"""

from __future__ import annotations

from lvg.data.layout import Layout, LayoutError, LayoutObject

from .world import BACKGROUNDS, CANVAS, CELLS, COLORS, JITTER, SHAPES, SIZES, Obj, Scene, cell_center

SHAPES_WORLD_LABELS: tuple[str, ...] = tuple(f"{c} {s}" for s in SHAPES for c in COLORS)
SHAPES_WORLD_BACKGROUNDS: tuple[str, ...] = tuple(BACKGROUNDS)


def object_label(color: str, shape: str) -> str:
    return f"{color} {shape}"


def object_box(obj: Obj) -> tuple[float, float, float, float]:
    """The pixel box of a Shapes World object: side ``s`` centred on its jittered cell centre."""
    cx, cy = obj.center
    h = SIZES[obj.size] / 2
    return (cx - h, cy - h, cx + h, cy + h)


def layout_from_scene(scene: Scene, order: list[int] | None = None) -> Layout:
    """The exact layout of ``scene`` (objects in ``order``, default the scene's own)."""
    idx = range(len(scene.objects)) if order is None else order
    objs = tuple(LayoutObject(object_label(o.color, o.shape), object_box(o)) for o in (scene.objects[i] for i in idx))
    return Layout(scene.bg, objs, CANVAS)


def layout_to_scene(layout: Layout, tolerance: float = 1e-3) -> Scene:
    """The Shapes World scene a layout describes; :class:`LayoutError` names what does not fit.

    Exact by default; ``tolerance`` (pixels) accepts boxes whose side and centre are that close to a Shapes World
    object's (a planner writing whole-pixel coordinates is within 1 px), snapping to the nearest one.
    """
    if layout.canvas != CANVAS:
        raise LayoutError(f"a Shapes World layout has canvas {CANVAS}, got {layout.canvas}")
    if layout.background not in BACKGROUNDS:
        raise LayoutError(f"background must be one of {sorted(BACKGROUNDS)}, got {layout.background!r}")
    if not 1 <= len(layout.objects) <= 4:
        raise LayoutError(f"a Shapes World scene holds 1 to 4 objects, got {len(layout.objects)}")
    objs = []
    sides = {v: k for k, v in SIZES.items()}
    for i, o in enumerate(layout.objects):
        words = o.label.split()
        if len(words) != 2 or words[0] not in COLORS or words[1] not in SHAPES:
            raise LayoutError(f"object {i}: field 'label' must be 'COLOUR SHAPE' (e.g. 'red star'), got {o.label!r}")
        x0, y0, x1, y1 = o.box
        w, h = x1 - x0, y1 - y0
        side = min(sides, key=lambda v: abs(v - w))
        if abs(w - side) > tolerance or abs(h - side) > tolerance:
            raise LayoutError(f"object {i} ({o.label}): field 'box' must be a square of side 10 or 16, got {w}x{h}")
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cell = min(CELLS, key=lambda c: (cell_center(c)[0] - cx) ** 2 + (cell_center(c)[1] - cy) ** 2)
        ccx, ccy = cell_center(cell)
        jx, jy = round(cx - ccx), round(cy - ccy)
        jx, jy = max(-JITTER, min(JITTER, jx)), max(-JITTER, min(JITTER, jy))
        if abs(cx - ccx - jx) > tolerance or abs(cy - ccy - jy) > tolerance:
            raise LayoutError(
                f"object {i} ({o.label}): field 'box' centre ({cx:.2f}, {cy:.2f}) is not a grid cell centre "
                f"plus an integer jitter of at most {JITTER}"
            )
        objs.append(Obj(words[1], words[0], sides[side], cell, (jx, jy)))
    try:
        return Scene(tuple(objs), layout.background)
    except ValueError as e:
        raise LayoutError(str(e)) from None
