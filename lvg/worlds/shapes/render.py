"""Pixel-exact Shapes World renderer, anti-aliased by supersampling.

Pixel (row i, column j) covers the continuous square [j, j+1) x [i, i+1). Each object's
coverage is the fraction of ``SUPERSAMPLE**2`` sample points per pixel that fall inside the
contract geometry. Coverage masks depend only on (shape, size, sub-pixel offset), so they are
computed once and cached; rendering a scene is then a handful of array slice assignments.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from .world import BACKGROUNDS, CANVAS, COLORS, SIZES, Obj, Scene

SUPERSAMPLE = 16


def inside(shape: str, x: np.ndarray, y: np.ndarray, cx: float, cy: float, s: float) -> np.ndarray:
    """Boolean mask: which points (x, y) lie inside ``shape`` of bounding side ``s`` at (cx, cy)."""
    dx, dy = x - cx, y - cy
    h = s / 2
    if shape == "circle":
        return dx * dx + dy * dy <= h * h
    if shape == "square":
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape == "triangle":  # apex (cx, cy-h), base corners (cx +- h, cy+h)
        return (dy <= h) & (np.abs(dx) <= (dy + h) / 2)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= h
    if shape == "cross":  # plus sign spanning s, arm thickness s/3
        t = s / 6
        return ((np.abs(dx) <= h) & (np.abs(dy) <= t)) | ((np.abs(dx) <= t) & (np.abs(dy) <= h))
    if shape == "star":  # 5 points, point up, outer radius h, inner radius 0.4*h
        return _in_polygon(dx, dy, star_polygon(h))
    raise ValueError(f"unknown shape {shape!r}")


def star_polygon(outer: float) -> list[tuple[float, float]]:
    """Vertices of the 5-pointed star (point up in image coordinates, y grows downwards)."""
    pts = []
    for k in range(10):
        r = outer if k % 2 == 0 else 0.4 * outer
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


def _in_polygon(x: np.ndarray, y: np.ndarray, poly: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over points."""
    result = np.zeros(np.broadcast(x, y).shape, dtype=bool)
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        result ^= crosses & (x < xint)
    return result


def object_box(center: tuple[float, float], s: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1), end-exclusive, of every pixel the object's geometry can touch."""
    cx, cy = center
    return (math.floor(cx - s / 2), math.floor(cy - s / 2), math.ceil(cx + s / 2), math.ceil(cy + s / 2))


@cache
def coverage(shape: str, size: str, fx: float, fy: float) -> np.ndarray:
    """Coverage mask (float32 in [0, 1]) of one object, in its own pixel box.

    ``fx, fy`` is the object's centre relative to the box origin; only a few distinct values
    occur (cell centres are fixed, jitter is integer), so the cache stays small.
    """
    s = SIZES[size]
    w = math.ceil(fx + s / 2)
    h = math.ceil(fy + s / 2)
    offs = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs = (np.arange(w)[:, None] + offs[None, :]).reshape(-1)  # [w*S]
    ys = (np.arange(h)[:, None] + offs[None, :]).reshape(-1)  # [h*S]
    X, Y = np.meshgrid(xs, ys)  # [h*S, w*S]
    # Samples exactly on an edge (common for diamonds and crosses) count half: average the
    # tests for a hair-smaller and a hair-larger shape.
    m = 0.5 * (inside(shape, X, Y, fx, fy, s - 1e-6).astype(np.float32) + inside(shape, X, Y, fx, fy, s + 1e-6))
    m = m.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3))  # [h, w]
    m.setflags(write=False)
    return m


def object_alpha(obj: Obj) -> tuple[np.ndarray, tuple[int, int]]:
    """Coverage mask of ``obj`` and the (x0, y0) canvas position of the mask's top-left pixel."""
    s = SIZES[obj.size]
    cx, cy = obj.center
    x0, y0, _, _ = object_box((cx, cy), s)
    return coverage(obj.shape, obj.size, round(cx - x0, 6), round(cy - y0, 6)), (x0, y0)


@cache
def _patch(shape: str, size: str, fx: float, fy: float, color: str, bg: str) -> np.ndarray:
    a = coverage(shape, size, fx, fy)[..., None]
    c = np.array(COLORS[color], np.float32)
    b = np.array(BACKGROUNDS[bg], np.float32)
    p = np.rint(b + a * (c - b)).astype(np.uint8)  # [h, w, 3]
    p.setflags(write=False)
    return p


def render(scene: Scene) -> np.ndarray:
    """Render ``scene`` to a uint8 array [64, 64, 3] (RGB).

    Object boxes never share a pixel (cells are at least 1.3 px apart even at maximum jitter),
    so each object's pre-composited patch can simply be written into the canvas.
    """
    img = np.empty((CANVAS, CANVAS, 3), np.uint8)
    img[...] = BACKGROUNDS[scene.bg]
    for o in scene.objects:
        s = SIZES[o.size]
        cx, cy = o.center
        x0, y0, _, _ = object_box((cx, cy), s)
        p = _patch(o.shape, o.size, round(cx - x0, 6), round(cy - y0, 6), o.color, scene.bg)
        img[y0 : y0 + p.shape[0], x0 : x0 + p.shape[1]] = p
    return img


def render_pil(scene: Scene, scale: int = 1):
    """Render to a PIL image, optionally upscaled by an integer factor (nearest neighbour)."""
    from PIL import Image

    im = Image.fromarray(render(scene))
    if scale != 1:
        im = im.resize((CANVAS * scale, CANVAS * scale), Image.NEAREST)
    return im
