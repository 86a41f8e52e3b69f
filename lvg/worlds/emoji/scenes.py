"""Emoji World scenes: 1-4 emoji on a 3 x 3 grid, their sampling, their rendering and their layouts.

Geometry (docs/emoji-world.md): a square canvas of ``canvas`` px (64 by default, 96 supported), a 3 x 3 grid whose
cell (row, col) is centred at the whole pixel ``(round((col + 0.5) C/3), round((row + 0.5) C/3))``, moved by an
integer jitter of at most ``JITTER[canvas]`` on each axis. An emoji of size ``s`` (``SIZES[canvas]``) fills the
square box ``[cx - s/2, cy - s/2, cx + s/2, cy + s/2]`` (whole pixels). Boxes keep ``MARGIN`` (1) px from the canvas
edge. Jitter is drawn again (up to 20 times) when a box would break that or overlap another; if that fails, every
emoji of the scene sits at its cell centre (with zero jitter no two boxes overlap).

Rendering: each vendor's 64 x 64 RGBA sprite is resized to ``s`` with Lanczos on premultiplied alpha (float32, each
channel as a PIL ``F`` image, so no 8-bit rounding between the steps) and composited over the solid background.
Resized sprites are cached per (emoji, style, size).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.worlds.grammar import RELATIONS

from .assets import SPRITE_SIDE, EmojiAssetError, EmojiAssets
from .concepts import STYLE_VENDOR, STYLES, Concept, ConceptTable

GRID = 3
CANVASES = (64, 96)
DEFAULT_CANVAS = 64
SIZES: dict[int, dict[str, int]] = {64: {"small": 14, "large": 20}, 96: {"small": 20, "large": 30}}
JITTER: dict[int, int] = {64: 2, 96: 3}
MARGIN = 1  # boxes keep this many pixels from the canvas edge
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}
BG_PROBS = {"white": 0.75, "black": 0.25}
COUNT_PROBS = {1: 0.35, 2: 0.35, 3: 0.15, 4: 0.15}
Cell = tuple[int, int]
CELLS: tuple[Cell, ...] = tuple((r, c) for r in range(GRID) for c in range(GRID))
POOLS = ("train", "all", "unseen", "style-held-out")


class EmojiSceneError(ValueError):
    """A scene, canvas or setting outside Emoji World's contract; the message names the field."""


def check_canvas(canvas: int) -> int:
    if canvas not in CANVASES:
        raise EmojiSceneError(f"canvas must be one of {list(CANVASES)} px, got {canvas!r}")
    return canvas


def cell_center(cell: Cell, canvas: int = DEFAULT_CANVAS) -> tuple[int, int]:
    """The un-jittered whole-pixel centre (cx, cy) of grid cell (row, col)."""
    row, col = cell
    return (round((col + 0.5) * canvas / GRID), round((row + 0.5) * canvas / GRID))


def relation_holds(rel: str, a: Cell, b: Cell) -> bool:
    """Whether ``a <rel> b`` holds by cell index (as in Shapes World)."""
    if rel not in RELATIONS:
        raise EmojiSceneError(f"unknown relation {rel!r}; expected one of {list(RELATIONS)}")
    return {"left": a[1] < b[1], "right": a[1] > b[1], "above": a[0] < b[0], "below": a[0] > b[0]}[rel]


@dataclass(frozen=True)
class EmojiObj:
    """One emoji of a scene: its concept (EN name), style, size, cell and integer jitter (dx, dy)."""

    emoji: str
    style: str
    size: str
    cell: Cell
    jitter: tuple[int, int] = (0, 0)

    def box(self, canvas: int = DEFAULT_CANVAS) -> tuple[int, int, int, int]:
        cx, cy = cell_center(self.cell, canvas)
        cx, cy = cx + self.jitter[0], cy + self.jitter[1]
        s = SIZES[canvas][self.size]
        return (cx - s // 2, cy - s // 2, cx - s // 2 + s, cy - s // 2 + s)

    def to_dict(self) -> dict:
        return {"emoji": self.emoji, "style": self.style, "size": self.size, "cell": list(self.cell),
                "jitter": list(self.jitter)}  # fmt: skip


@dataclass(frozen=True)
class EmojiScene:
    """1 to 4 emoji in distinct cells on a solid background, on a ``canvas`` x ``canvas`` image."""

    objects: tuple[EmojiObj, ...]
    bg: str = "white"
    canvas: int = DEFAULT_CANVAS

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        check_canvas(self.canvas)
        if not 1 <= len(self.objects) <= 4:
            raise EmojiSceneError(f"a scene holds 1 to 4 emoji, got {len(self.objects)}")
        if len({o.cell for o in self.objects}) != len(self.objects):
            raise EmojiSceneError(f"two emoji share a cell: {[o.cell for o in self.objects]}")
        if self.bg not in BACKGROUNDS:
            raise EmojiSceneError(f"unknown background {self.bg!r}; expected one of {list(BACKGROUNDS)}")
        for i, o in enumerate(self.objects):
            if o.style not in STYLES:
                raise EmojiSceneError(f"emoji {i} ({o.emoji}): unknown style {o.style!r}; expected {list(STYLES)}")
            if o.size not in SIZES[self.canvas]:
                raise EmojiSceneError(f"emoji {i} ({o.emoji}): unknown size {o.size!r}")
            if o.cell not in CELLS or max(abs(o.jitter[0]), abs(o.jitter[1])) > JITTER[self.canvas]:
                raise EmojiSceneError(f"emoji {i} ({o.emoji}): bad cell {o.cell} or jitter {o.jitter}")
            x0, y0, x1, y1 = o.box(self.canvas)
            if min(x0, y0) < MARGIN or max(x1, y1) > self.canvas - MARGIN:
                raise EmojiSceneError(
                    f"emoji {i} ({o.emoji}): box {[x0, y0, x1, y1]} is not inside the canvas with a {MARGIN} px margin"
                )
        # overlaps are checked by the Layout (boxes may touch, not overlap)
        self.layout()

    def layout(self, order: list[int] | None = None, with_style: bool = False) -> Layout:
        """The scene as a :class:`~lvg.data.layout.Layout`: label = the EN name (``"cat (twemoji)"`` with style)."""
        idx = range(len(self.objects)) if order is None else order
        objs = []
        for i in idx:
            o = self.objects[i]
            label = f"{o.emoji} ({o.style})" if with_style else o.emoji
            objs.append(LayoutObject(label, tuple(float(v) for v in o.box(self.canvas))))
        return Layout(self.bg, tuple(objs), self.canvas)

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects], "bg": self.bg, "canvas": self.canvas}

    @classmethod
    def from_dict(cls, d: dict) -> EmojiScene:
        try:
            objs = tuple(EmojiObj(o["emoji"], o["style"], o["size"], tuple(o["cell"]), tuple(o.get("jitter", (0, 0))))
                         for o in d["objects"])  # fmt: skip
            return cls(objs, d.get("bg", "white"), d.get("canvas", DEFAULT_CANVAS))
        except (KeyError, TypeError) as e:
            raise EmojiSceneError(f"a scene dict needs objects with emoji, style, size, cell: {e}") from None


def layout_to_scene(
    layout: Layout, table: ConceptTable, styles: list[str] | None = None, tolerance: float = 1e-3
) -> EmojiScene:
    """The scene a layout describes; :class:`~lvg.data.layout.LayoutError` names the object and field that do not fit.

    Labels are EN names, optionally with the style (``"cat (twemoji)"``, as :meth:`EmojiScene.layout` writes them
    with ``with_style``); ``styles`` gives the styles otherwise (default twemoji). Boxes must be a size's square on a
    cell centre plus an integer jitter, within ``tolerance`` px (a planner writing whole pixels is within 1 px).
    """
    canvas = layout.canvas
    if canvas not in CANVASES:
        raise LayoutError(f"an Emoji World layout has canvas {list(CANVASES)}, got {canvas}")
    if layout.background not in BACKGROUNDS:
        raise LayoutError(f"background must be one of {list(BACKGROUNDS)}, got {layout.background!r}")
    if not 1 <= len(layout.objects) <= 4:
        raise LayoutError(f"an Emoji World scene holds 1 to 4 emoji, got {len(layout.objects)}")
    sides = {v: k for k, v in SIZES[canvas].items()}
    objs = []
    for i, o in enumerate(layout.objects):
        label, style = o.label, (styles[i] if styles else STYLES[0])
        for st in STYLES:
            if label.endswith(f" ({st})"):
                label, style = label[: -len(st) - 3], st
        try:
            name = table.get(label).en
        except KeyError:
            raise LayoutError(f"object {i}: field 'label': unknown emoji {label!r}") from None
        x0, y0, x1, y1 = o.box
        w, h = x1 - x0, y1 - y0
        side = min(sides, key=lambda v: abs(v - w))
        if abs(w - side) > tolerance or abs(h - side) > tolerance:
            raise LayoutError(f"object {i} ({o.label}): field 'box' must be a square of side {sorted(sides)}, "
                              f"got {w}x{h}")  # fmt: skip
        cx, cy = x0 + side // 2, y0 + side // 2
        cell = min(CELLS, key=lambda c: (cell_center(c, canvas)[0] - cx) ** 2 + (cell_center(c, canvas)[1] - cy) ** 2)
        # the nearest jitter a scene allows (within JITTER, the box inside the margin) where the box lies within
        # tolerance px of it; else the rounded one (beyond JITTER: named here; inside it: the scene names the margin)
        raw = (cx - cell_center(cell, canvas)[0], cy - cell_center(cell, canvas)[1])
        near = [_nearest_jitter(r, c, side, canvas) for r, c in zip(raw, cell_center(cell, canvas))]
        ok = max(abs(r - j) for r, j in zip(raw, near)) <= max(tolerance, 0.5)
        jx, jy = near if ok else (round(raw[0]), round(raw[1]))
        if max(abs(jx), abs(jy)) > JITTER[canvas] or abs(x0 - round(x0)) > tolerance or abs(y0 - round(y0)) > tolerance:
            raise LayoutError(f"object {i} ({o.label}): field 'box' is not on a grid cell centre plus a whole-pixel "
                              f"jitter of at most {JITTER[canvas]}")  # fmt: skip
        objs.append(EmojiObj(name, style, sides[side], cell, (jx, jy)))
    try:
        return EmojiScene(tuple(objs), layout.background, canvas)
    except EmojiSceneError as e:
        raise LayoutError(str(e)) from None


def _nearest_jitter(raw: float, centre: int, side: int, canvas: int) -> int:
    """The whole-pixel jitter nearest ``raw`` that a scene allows on one axis: at most ``JITTER`` px, the box of side
    ``side`` on a cell centred at ``centre`` kept ``MARGIN`` px inside the canvas."""
    ok = [j for j in range(-JITTER[canvas], JITTER[canvas] + 1)
          if centre + j - side // 2 >= MARGIN and centre + j - side // 2 + side <= canvas - MARGIN]  # fmt: skip
    return min(ok, key=lambda j: (abs(raw - j), abs(j - round(raw))), default=round(raw))  # ties as round() breaks


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SceneConfig:
    """What :func:`sample_scene` draws. ``pool`` says which emoji and styles may appear:

    - ``train``: the image tokenizer's training set: ``train`` emoji in both styles and ``style-held-out`` emoji in
      their seen style only (``unseen`` emoji never);
    - ``all``: every emoji in both styles;
    - ``unseen``: only ``unseen`` emoji (both styles);
    - ``style-held-out``: only ``style-held-out`` emoji, in the style the tokenizer never saw.
    """

    canvas: int = DEFAULT_CANVAS
    pool: str = "train"
    group_prob: float = 0.3  # chance that a multi-emoji scene repeats (emoji, style, size) prototypes

    def __post_init__(self) -> None:
        check_canvas(self.canvas)
        if self.pool not in POOLS:
            raise EmojiSceneError(f"pool must be one of {list(POOLS)}, got {self.pool!r}")
        if not 0.0 <= self.group_prob <= 1.0:
            raise EmojiSceneError(f"group_prob must be in [0, 1], got {self.group_prob}")


def pool_choices(table: ConceptTable, pool: str) -> list[tuple[str, str]]:
    """The (emoji EN name, style) pairs a pool may draw, in table order."""
    out = []
    for c in table:
        if pool == "train":
            styles = c.styles_for_training()
        elif pool == "all":
            styles = STYLES
        elif pool == "unseen":
            styles = STYLES if c.split == "unseen" else ()
        elif pool == "style-held-out":
            styles = tuple(s for s in STYLES if c.split == "style-held-out" and s != c.seen_style)
        else:
            raise EmojiSceneError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        out += [(c.en, s) for s in styles]
    if not out:
        raise EmojiSceneError(f"pool {pool!r} holds no emoji in this concept table")
    return out


def _place(rng: random.Random, size: str, cell: Cell, canvas: int, boxes: list[tuple]) -> tuple[int, int] | None:
    """A jitter keeping the box inside the canvas and off the boxes placed so far; None after 20 tries."""
    j = JITTER[canvas]
    for _ in range(20):
        jit = (rng.randint(-j, j), rng.randint(-j, j))
        x0, y0, x1, y1 = EmojiObj("", STYLES[0], size, cell, jit).box(canvas)
        if x0 >= MARGIN and y0 >= MARGIN and x1 <= canvas - MARGIN and y1 <= canvas - MARGIN:
            if not any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in boxes):
                return jit
    return None


def sample_scene(rng: random.Random, table: ConceptTable, cfg: SceneConfig | None = None) -> EmojiScene:
    """Draw a scene: count (0.35/0.35/0.15/0.15 for 1-4), background (white 0.75, black 0.25), distinct cells,
    uniform (emoji, style) pairs of the pool and uniform sizes; with ``group_prob`` a multi-emoji scene reuses a few
    (emoji, style, size) prototypes so that counted groups are common."""
    cfg = cfg or SceneConfig()
    choices = pool_choices(table, cfg.pool)
    sizes = list(SIZES[cfg.canvas])
    n = rng.choices(list(COUNT_PROBS), weights=list(COUNT_PROBS.values()))[0]
    bg = "white" if rng.random() < BG_PROBS["white"] else "black"
    cells = rng.sample(CELLS, n)

    def attrs() -> tuple[str, str, str]:
        emoji, style = rng.choice(choices)
        return (emoji, style, rng.choice(sizes))

    if n >= 2 and rng.random() < cfg.group_prob:
        protos = [attrs() for _ in range(rng.randint(1, n - 1))]
        chosen = protos + [rng.choice(protos) for _ in range(n - len(protos))]
        rng.shuffle(chosen)
    else:
        chosen = [attrs() for _ in range(n)]
    objs: list[EmojiObj] = []
    boxes: list[tuple] = []
    for (emoji, style, size), cell in zip(chosen, cells):
        jit = _place(rng, size, cell, cfg.canvas, boxes)
        if jit is None:  # no jitter fits next to the others: every emoji at its cell centre (never overlaps)
            objs = [EmojiObj(e, st, z, c) for (e, st, z), c in zip(chosen, cells)]
            break
        objs.append(EmojiObj(emoji, style, size, cell, jit))
        boxes.append(objs[-1].box(cfg.canvas))
    return EmojiScene(tuple(objs), bg, cfg.canvas)


# ----------------------------------------------------------------------------- rendering


class SpriteBank:
    """The sprites of a concept table, read from the cache and resized (premultiplied Lanczos) once per size."""

    def __init__(self, assets: EmojiAssets, table: ConceptTable):
        self.assets = assets
        self.table = table
        self._resized: dict[tuple[str, str, int], np.ndarray] = {}

    def concept(self, emoji: str) -> Concept:
        try:
            return self.table.get(emoji)
        except KeyError:
            raise EmojiSceneError(f"unknown emoji {emoji!r}: not in the concept table") from None

    def sprite(self, emoji: str, style: str) -> np.ndarray:
        """The premultiplied float32 RGBA sprite [64, 64, 4] in [0, 1], read from the cache (not kept: only the
        resized sprites are, ~3-6 KB each instead of 64 KB)."""
        if style not in STYLE_VENDOR:
            raise EmojiSceneError(f"unknown style {style!r}; expected one of {list(STYLES)}")
        path = self.assets.sprite_path(STYLE_VENDOR[style], self.concept(emoji).image)
        return premultiplied(_read_sprite(path))

    def resized(self, emoji: str, style: str, side: int) -> np.ndarray:
        """The premultiplied float32 RGBA sprite resized to ``side`` x ``side`` (computed once)."""
        key = (emoji, style, side)
        if key not in self._resized:
            self._resized[key] = resize_premultiplied(self.sprite(emoji, style), side)
        return self._resized[key]


def _read_sprite(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.size != (SPRITE_SIDE, SPRITE_SIDE):
                raise EmojiAssetError(f"sprite {path} is {im.size[0]}x{im.size[1]}, not {SPRITE_SIDE}x{SPRITE_SIDE}")
            return np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except FileNotFoundError:
        raise EmojiAssetError(
            f"sprite {path} is missing from the cache; delete the cache folder to rebuild it"
        ) from None
    except OSError as e:
        raise EmojiAssetError(f"cannot read sprite {path}: {e}") from None


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGBA -> float32 premultiplied RGBA in [0, 1]."""
    x = rgba.astype(np.float32) / 255.0
    x[..., :3] *= x[..., 3:4]
    return x


def resize_premultiplied(x: np.ndarray, side: int) -> np.ndarray:
    """Lanczos-resize a premultiplied float RGBA array to ``side`` x ``side`` (clipped so colour <= alpha)."""
    if x.shape[0] == side and x.shape[1] == side:
        return x
    chans = [np.asarray(Image.fromarray(x[..., k]).resize((side, side), Image.LANCZOS)) for k in range(4)]
    out = np.stack(chans, axis=-1)
    a = np.clip(out[..., 3:4], 0.0, 1.0)
    return np.concatenate([np.clip(out[..., :3], 0.0, a), a], axis=-1)


def composite(canvas_rgb: np.ndarray, sprite: np.ndarray, x0: int, y0: int) -> None:
    """Composite a premultiplied sprite onto a float RGB canvas in [0, 1], in place, top-left at (x0, y0)."""
    h, w = sprite.shape[:2]
    region = canvas_rgb[y0 : y0 + h, x0 : x0 + w]
    region *= 1.0 - sprite[..., 3:4]
    region += sprite[..., :3]


def render(scene: EmojiScene, bank: SpriteBank) -> np.ndarray:
    """The scene as uint8 RGB [canvas, canvas, 3]."""
    img = np.empty((scene.canvas, scene.canvas, 3), np.float32)
    img[:] = np.asarray(BACKGROUNDS[scene.bg], np.float32) / 255.0
    for o in scene.objects:
        x0, y0, x1, _ = o.box(scene.canvas)
        composite(img, bank.resized(o.emoji, o.style, x1 - x0), x0, y0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
