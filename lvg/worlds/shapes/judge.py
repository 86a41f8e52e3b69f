"""The pixel judge: reads a Shapes World image back into objects and checks it against a spec.

It sees only pixels. Per grid cell (objects never leave their cell's pixel block), it
1. decides whether the cell holds ink (pixels far from the background colour);
2. fits a palette colour by least squares under the compositing model
   ``pixel = bg + alpha * (colour - bg)`` with alpha in [0, 1];
3. matches the resulting alpha map against templates built from the renderer's own coverage
   masks (every shape, size and jitter, sharp and blurred) and keeps the best;
4. calls the object "unknown" when even the best template fits poorly, so a blob, a broken
   shape or an object straddling two cells can never pass for a real one.

The verdict then uses :func:`lvg.worlds.shapes.spec.explain`, the same rule the symbolic checks use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from lvg.images import rgb_array
from lvg.worlds.shapes.render import object_alpha
from lvg.worlds.shapes.spec import Seen, Spec, explain, normalize_spec
from lvg.worlds.shapes.world import BACKGROUNDS, CANVAS, CELLS, COLORS, JITTER, SHAPES, SIZES, Obj

# Pixel blocks of the 3x3 grid (end-exclusive). Objects in column 0 touch pixels 0..20, column 1
# 22..41, column 2 43..63 (rows alike); the separator pixels 21 and 42 are never drawn on and
# belong to no block, so blur bleeding across a cell border is not mistaken for an object.
BLOCKS = ((0, 21), (22, 42), (43, 64))
# Presence is decided on block interiors, 2 px in from every side that faces another block, so
# heavy blur bleeding from a neighbour cannot create an object; every object keeps most of its ink.
INTERIORS = ((0, 19), (24, 40), (45, 64))
BLUR_LEVELS = (0.0, 0.8, 1.3)
INK_SMOOTHING = 1.0  # presence is decided on the difference image blurred by this sigma (px):
INK_THRESHOLD = 40.0  # pixel noise averages out there, while objects (coherent blobs) survive
MIN_INK_PIXELS = 3
QUIET_THRESHOLD = 12.0  # smoothed distance under which a pixel is taken as background (noise estimate)
MAX_SHAPE_RESIDUAL = 0.2  # |alpha - template|^2 / |template|^2 above this: unknown shape
MAX_COLOR_RESIDUAL = 0.12  # share of the ink energy the best palette colour leaves unexplained
MAX_BG_DISTANCE = 100.0

_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[c] for c in _PALETTE_NAMES], np.float32)  # [8, 3]


class JudgeInputError(ValueError):
    """The judge was handed something that is not a 64x64 RGB image (or an integer upscale)."""


@dataclass(frozen=True)
class DetectedObject(Seen):
    """An object read from pixels; shape/size (or colour) is None when nothing fits well."""

    shape_residual: float = 0.0
    color_residual: float = 0.0
    ink_pixels: int = 0


@dataclass
class Reading:
    bg: str | None
    objects: list[DetectedObject] = field(default_factory=list)


@dataclass
class Verdict:
    passed: bool
    reason: str
    reading: Reading


def to_array(image: Any) -> np.ndarray:
    """A PIL image, numpy array (HWC) or torch tensor (CHW or HWC) as float32 [64, 64, 3] in 0..255
    (:func:`lvg.images.rgb_array`: integer upscales are block-averaged back, float input in 0..1 is scaled)."""
    return rgb_array(image, CANVAS, JudgeInputError)


@cache
def _templates(cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Alpha templates for one cell block: every shape x size x jitter x blur level.

    Returns (T [K, h*w], |T|^2 [K], labels[K] = (shape, size)).
    """
    from scipy.ndimage import gaussian_filter

    (r0, r1), (c0, c1) = BLOCKS[cell[0]], BLOCKS[cell[1]]
    rows, labels = [], []
    for shape in SHAPES:
        for size in SIZES:
            for jx in range(-JITTER, JITTER + 1):
                for jy in range(-JITTER, JITTER + 1):
                    alpha, (x0, y0) = object_alpha(Obj(shape, "red", size, cell, (jx, jy)))
                    canvas = np.zeros((CANVAS, CANVAS), np.float32)
                    canvas[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha
                    for sigma in BLUR_LEVELS:
                        t = gaussian_filter(canvas, sigma) if sigma else canvas
                        rows.append(t[r0:r1, c0:c1].reshape(-1))
                        labels.append((shape, size))
    T = np.stack(rows)
    return T, (T * T).sum(1), labels


def _read_cell(
    d: np.ndarray, dist: np.ndarray, V: np.ndarray, noise_var: float, cell: tuple[int, int]
) -> DetectedObject | None:
    """Read one cell.

    ``d``: image minus background [64, 64, 3]; ``dist``: smoothed |d| [64, 64]; ``V``: palette
    minus background [8, 3]; ``noise_var``: per-channel pixel noise variance. Residuals have the
    energy that this much noise is expected to add subtracted, so they measure shape, not noise.
    """
    (i0, i1), (j0, j1) = INTERIORS[cell[0]], INTERIORS[cell[1]]
    ink = int((dist[i0:i1, j0:j1] > INK_THRESHOLD).sum())  # smoothed ink pixels in the interior
    if ink < MIN_INK_PIXELS:
        return None
    (r0, r1), (c0, c1) = BLOCKS[cell[0]], BLOCKS[cell[1]]
    dc = d[r0:r1, c0:c1].reshape(-1, 3)  # [P, 3] pixel minus background
    # Colour: least squares over candidate ink pixels, alpha clipped to [0, 1], per palette colour.
    cand = dc[(dc * dc).sum(1) > 30.0**2]  # [N, 3]
    a = np.clip(cand @ V.T / (V * V).sum(1), 0.0, 1.0)  # [N, 8]
    resid = ((cand[:, None, :] - a[..., None] * V[None]) ** 2).sum((0, 2))  # [8]
    k = int(resid.argmin())
    # noise orthogonal to the colour direction (2 of 3 dimensions) stays in the residual
    color_residual = float(max(resid[k] - 2.0 * noise_var * len(cand), 0.0) / max((cand * cand).sum(), 1e-6))
    v = V[k]
    alpha = np.clip(dc @ v / (v @ v), 0.0, 1.0)  # [P]
    T, TT, labels = _templates(cell)
    err = TT - 2.0 * (T @ alpha) + alpha @ alpha  # [K] squared distance to each template
    j = int(err.argmin())
    # alpha noise has variance noise_var / |v|^2; clipping at 0 and 1 keeps about half of it
    shape_residual = float(max(err[j] - 0.5 * len(alpha) * noise_var / (v @ v), 0.0) / TT[j])
    shape, size = labels[j] if shape_residual <= MAX_SHAPE_RESIDUAL else (None, None)
    color = _PALETTE_NAMES[k] if color_residual <= MAX_COLOR_RESIDUAL else None
    return DetectedObject(shape, color, size, cell, shape_residual, color_residual, ink)


def read_image(image: Any) -> Reading:
    """Read ``image`` into a background name and the objects found in each cell."""
    arr = to_array(image)
    b = np.median(arr.reshape(-1, 3), axis=0)  # background: most pixels are background
    names = list(BACKGROUNDS)
    dists = [float(np.linalg.norm(b - np.array(BACKGROUNDS[n], np.float32))) for n in names]
    bg = names[int(np.argmin(dists))] if min(dists) <= MAX_BG_DISTANCE else None
    d = arr - b
    from scipy.ndimage import gaussian_filter

    ds = gaussian_filter(d, (INK_SMOOTHING, INK_SMOOTHING, 0))
    dist = np.sqrt((ds * ds).sum(-1))  # smoothed distance from the background [64, 64]
    quiet = dist < QUIET_THRESHOLD  # clearly background: what varies there is noise
    noise_var = float((d[quiet] ** 2).mean()) if quiet.sum() >= 100 else 0.0
    V = _PALETTE - b[None]
    objects = [o for cell in CELLS if (o := _read_cell(d, dist, V, noise_var, cell)) is not None]
    return Reading(bg, objects)


def judge(image: Any, spec: Spec | str) -> Verdict:
    """Decide whether ``image`` satisfies ``spec`` (a spec dict or a canonical caption)."""
    if isinstance(spec, str):
        from lvg.worlds.shapes.parse import parse_caption

        spec = parse_caption(spec)
    else:
        spec = normalize_spec(spec)
    reading = read_image(image)
    reason = explain(reading.objects, reading.bg, spec)
    return Verdict(reason is None, reason or "ok", reading)
