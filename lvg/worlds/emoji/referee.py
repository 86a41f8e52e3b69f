"""Emoji World's referee: reads an image (pixels only) back into emoji and checks it against a prompt.

1. **Background.** The median pixel, named by the nearest of the world's backgrounds (white, black), or None when
   it is far from both.
2. **Objects.** Pixels whose (lightly smoothed) colour is far from the background are ink; its 8-connected
   components are the pieces. Scenes hold at most one emoji per cell and boxes never overlap, so a piece wider or
   taller than the large size plus ``SLACK`` (emoji that touch) is cut at its emptiest line within ``CUT_SEARCH``
   px of a cell border, and pieces are then gathered, biggest first, into objects: a piece joins the nearest object
   whose box, grown by it, stays within that size (one emoji with interior background-coloured pixels or loose
   parts, a white sheep's face or a fork beside a plate, stays one object). Objects under ``MIN_INK`` pixels are
   specks. Measured against connected components of dilated ink split at the cell borders (the first version),
   this took the pass rate on random 1-4 emoji scenes from 86% to 99.9% (clean renders).
3. **Naming.** A small conv net (:mod:`lvg.worlds.emoji.classifier`, trained only on the real sprites under
   augmentation) names the (emoji, style) pair from the object's ink box resized to ``REF`` x ``REF``; without one,
   a nearest-sprite matcher does: every (emoji, style) sprite is rendered alone at the world's small size, the large
   size and one between, on each background, sharp and blurred, its ink box (found by the same detector) resized to
   ``REF`` x ``REF``, and an object is named by the nearest of these references (L2) on its background. The
   references also serve the next step, and an object farther than ``MAX_DISTANCE`` from every reference of the
   pair it is named is unknown.
4. **Size and cell.** The ink extent is compared with that emoji's (and style's) own ink extent at the small and at
   the large size (an emoji that fills only part of its box is not taken for a small one); the box centre (the ink
   centre corrected by the sprite's own offset) gives the grid cell.

The verdict uses :func:`explain`, the rule that also decides whether a scene satisfies a spec, so the symbolic check
and the pixel check cannot drift apart. Validation: :mod:`lvg.worlds.emoji.referee_check`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lvg.images import rgb_array

from .captions import Spec, _fits, normalize_spec, parse_caption
from .concepts import STYLES
from .scenes import BACKGROUNDS, CANVASES, GRID, SIZES, EmojiScene, SpriteBank, composite, relation_holds

REF = 16  # side of the matched crops
INK_SMOOTHING = 0.6  # px: the colour distance is taken on the image blurred this much (noise averages out)
INK_THRESHOLD = 28.0  # smoothed RGB distance from the background (0..255 units) above which a pixel is ink
CUT_SEARCH = 3  # px: touching emoji are cut at the emptiest line this close to a cell border
SLACK = 2  # px: an object's ink box may exceed the large size by this much (blur)
MIN_INK = 6  # components with fewer ink pixels are specks
BLUR_LEVELS = (0.0, 0.8)  # the references are rendered sharp and blurred (generators and codecs soften)
MAX_BG_DISTANCE = 100.0
MAX_DISTANCE = 0.12  # mean squared distance (0..1 units) to the nearest reference above which an object is unknown
_PAD = 4


class RefereeInputError(ValueError):
    """The referee was handed something that is not an RGB image of the world's canvas (or an integer upscale)."""


@dataclass(frozen=True)
class SeenEmoji:
    """One object as read from the pixels: emoji (EN name), style or size are None when nothing fits."""

    emoji: str | None
    style: str | None
    size: str | None
    cell: tuple[int, int]
    box: tuple[int, int, int, int]  # the ink box [x0, y0, x1, y1), end-exclusive
    distance: float = 0.0  # mean squared distance to the nearest reference (0..1 units)


@dataclass
class Reading:
    bg: str | None
    objects: list[SeenEmoji] = field(default_factory=list)


@dataclass
class Verdict:
    passed: bool
    reason: str
    reading: Reading


# ----------------------------------------------------------------------------- the rule


def _expand(spec: Spec) -> list[dict]:
    return [g for g in spec["groups"] for _ in range(g["count"])]


def assignment(objects: Sequence[Any], spec: Spec) -> list[int] | None:
    """A one-to-one assignment of ``objects`` (anything with ``emoji, style, size, cell``) to the spec's items that
    meets every stated attribute and the relation (``result[k]``: the object for item ``k``), or None."""
    items = _expand(spec)
    if len(objects) != len(items):
        return None
    rel = spec.get("relation")
    for perm in itertools.permutations(range(len(objects))):
        if not all(_fits(objects[i], g) for i, g in zip(perm, items)):
            continue
        if rel is None or relation_holds(rel, tuple(objects[perm[0]].cell), tuple(objects[perm[1]].cell)):
            return list(perm)
    return None


def explain(objects: Sequence[Any], bg: str | None, spec: Spec) -> str | None:
    """Why ``objects`` on ``bg`` fail ``spec`` (a short reason), or None when they satisfy it: the background if
    stated, exactly the stated number of emoji, and some assignment meeting every stated attribute and the relation."""
    if "bg" in spec and bg != spec["bg"]:
        return f"background is {bg}, expected {spec['bg']}"
    n = len(_expand(spec))
    if len(objects) != n:
        return f"found {len(objects)} emoji, expected {n}"
    unknown = [o for o in objects if o.emoji is None]
    if unknown:
        return f"{len(unknown)} object(s) match no emoji (at cells {[list(o.cell) for o in unknown]})"
    if assignment(objects, spec) is not None:
        return None
    seen = ", ".join(f"{o.emoji} ({o.style}, {o.size}) at {list(o.cell)}" for o in objects)
    return f"no assignment of the emoji seen ({seen}) to the prompt's items meets every stated attribute"


def scene_satisfies(scene: EmojiScene, spec: Spec) -> bool:
    """Whether ``scene`` satisfies the (normalised) ``spec``: the ground truth the referee is measured against."""
    return explain(scene.objects, scene.bg, spec) is None


# ----------------------------------------------------------------------------- pixels


def to_array(image: Any, canvas: int) -> np.ndarray:
    """A PIL image, numpy array (HWC) or torch tensor (CHW or HWC) as float32 [canvas, canvas, 3] in 0..255
    (:func:`lvg.images.rgb_array`: integer upscales are block-averaged back, float input in 0..1 is scaled)."""
    return rgb_array(image, canvas, RefereeInputError)


def background(arr: np.ndarray) -> tuple[str | None, np.ndarray]:
    """The background's name (None when far from every background) and its measured colour."""
    b = np.median(arr.reshape(-1, 3), axis=0)
    names = list(BACKGROUNDS)
    dists = [float(np.linalg.norm(b - np.asarray(BACKGROUNDS[n], np.float32))) for n in names]
    return (names[int(np.argmin(dists))] if min(dists) <= MAX_BG_DISTANCE else None), b


def ink_mask(arr: np.ndarray, bg_rgb: np.ndarray) -> np.ndarray:
    """Pixels far from the background colour (after smoothing by ``INK_SMOOTHING``)."""
    from scipy.ndimage import gaussian_filter

    d = gaussian_filter(arr - bg_rgb, (INK_SMOOTHING, INK_SMOOTHING, 0))
    return np.sqrt((d * d).sum(-1)) > INK_THRESHOLD


def _cell_of(x: float, y: float, canvas: int) -> tuple[int, int]:
    step = canvas / GRID
    return (min(max(int(y // step), 0), GRID - 1), min(max(int(x // step), 0), GRID - 1))


def _split(pts: np.ndarray, limit: int, canvas: int) -> list[np.ndarray]:
    """Cut a component wider or taller than ``limit`` (touching emoji) at the emptiest line near a cell border."""
    spans = [int(np.ptp(pts[:, a])) + 1 for a in (0, 1)]
    if max(spans) <= limit:
        return [pts]
    axis = int(spans[1] - limit > spans[0] - limit)
    v = pts[:, axis]
    lo, hi = int(v.min()), int(v.max())
    borders = [k * canvas / GRID for k in range(1, GRID) if lo < k * canvas / GRID < hi + 1]
    if not borders:
        return [pts]
    border = min(borders, key=lambda b: abs(b - (lo + hi + 1) / 2))
    counts = np.bincount(v - lo, minlength=hi - lo + 1)
    cuts = [t for t in range(round(border) - CUT_SEARCH, round(border) + CUT_SEARCH + 1) if lo < t <= hi]
    if not cuts:
        return [pts]
    t = min(cuts, key=lambda t: (counts[t - lo] + counts[t - lo - 1], abs(t - border)))
    return _split(pts[v < t], limit, canvas) + _split(pts[v >= t], limit, canvas)


def _gap(a: list, b: list) -> int:
    """Chebyshev gap between two boxes (0 when they touch or overlap)."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)


def find_objects(ink: np.ndarray, canvas: int) -> list[tuple[int, int, int, int]]:
    """Ink boxes ``[x0, y0, x1, y1)`` of the objects in an ink mask, in reading order (see the module docstring)."""
    from scipy.ndimage import label

    comps, _ = label(ink, structure=np.ones((3, 3), bool))
    limit = SIZES[canvas]["large"] + SLACK
    pieces = []
    for k in range(1, int(comps.max()) + 1):
        ys, xs = np.nonzero(comps == k)
        pieces += _split(np.stack([xs, ys], 1), limit, canvas)
    objects: list[list] = []  # [x0, y0, x1, y1, pixel count]
    for pts in sorted(pieces, key=len, reverse=True):  # big pieces first; fragments join the nearest object they fit
        b = [int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()) + 1, int(pts[:, 1].max()) + 1]
        best, key = None, None
        for o in objects:
            u = [min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3])]
            if u[2] - u[0] <= limit and u[3] - u[1] <= limit:
                k = (_gap(o, b), (u[2] - u[0]) * (u[3] - u[1]) - (o[2] - o[0]) * (o[3] - o[1]))
                if key is None or k < key:
                    best, key = o, k
        if best is None:
            objects.append([*b, len(pts)])
        else:
            best[:4] = [min(best[0], b[0]), min(best[1], b[1]), max(best[2], b[2]), max(best[3], b[3])]
            best[4] += len(pts)
    boxes = [tuple(o[:4]) for o in objects if o[4] >= MIN_INK]
    return sorted(boxes, key=lambda b: _cell_of((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, canvas))


def crop_feature(arr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The ink box of ``arr`` (0..255) resized to ``REF`` x ``REF`` (bilinear), flattened, in 0..1."""
    x0, y0, x1, y1 = box
    crop = Image.fromarray(np.clip(np.rint(arr[y0:y1, x0:x1]), 0, 255).astype(np.uint8))
    return np.asarray(crop.resize((REF, REF), Image.BILINEAR), np.float32).reshape(-1) / 255.0


# ----------------------------------------------------------------------------- the referee


@dataclass
class _Refs:
    feats: np.ndarray  # [K, REF*REF*3]
    pair: np.ndarray  # [K] index into pairs
    side: np.ndarray  # [K] rendered side (px)
    blur: np.ndarray  # [K] blur level index
    extent: np.ndarray  # [K] max(ink width, ink height)
    offset: np.ndarray  # [K, 2] ink box centre minus sprite box centre


class Referee:
    """The pixel referee of one concept table and canvas (its references are built once, from the real sprites)."""

    def __init__(self, bank: SpriteBank, canvas: int = 64, classifier: tuple[Any, list[tuple[str, str]]] | None = None):
        if canvas not in CANVASES:
            raise RefereeInputError(f"canvas must be one of {list(CANVASES)}, got {canvas}")
        self.bank, self.table, self.canvas = bank, bank.table, canvas
        self.pairs = [(c.en, s) for c in self.table for s in STYLES]
        self.net = None
        if classifier is not None:  # (net, its classes): class k names self.pairs[self._class_pair[k]]
            self.net, classes = classifier
            index = {p: i for i, p in enumerate(self.pairs)}
            missing = [p for p in classes if p not in index]
            if missing or len(classes) != len(self.pairs):
                raise RefereeInputError(f"the classifier's classes do not match the concept table (unknown: "
                                        f"{missing[:3]}, {len(classes)} classes for {len(self.pairs)} pairs)")  # fmt: skip
            self._class_pair = np.array([index[p] for p in classes])
        small, large = SIZES[canvas]["small"], SIZES[canvas]["large"]
        self.sides = (small, (small + large) // 2, large)
        self._refs: dict[str, _Refs] = {}

    @classmethod
    def for_world(cls, world: Any, classifier: str | os.PathLike | None = None) -> Referee:
        """The referee of an :class:`~lvg.worlds.emoji.world.EmojiWorld` (its concept table, sprites and canvas),
        naming emoji with the classifier folder ``classifier`` when given, else with the nearest-sprite matcher."""
        if classifier is None:
            return cls(world.bank, world.cfg.canvas)
        from .classifier import load_classifier

        return cls(world.bank, world.cfg.canvas, load_classifier(classifier))

    def references(self, bg: str) -> _Refs:
        """The reference crops on background ``bg`` (built on first use: ~3.5k crops per background)."""
        if bg not in self._refs:
            from scipy.ndimage import gaussian_filter

            rows: dict[str, list] = {k: [] for k in ("feats", "pair", "side", "blur", "extent", "offset")}
            bg_rgb = np.asarray(BACKGROUNDS[bg], np.float32)
            for k, (emoji, style) in enumerate(self.pairs):
                for side in self.sides:
                    n = side + 2 * _PAD
                    img = np.empty((n, n, 3), np.float32)
                    img[:] = bg_rgb / 255.0
                    composite(img, self.bank.resized(emoji, style, side), _PAD, _PAD)
                    img *= 255.0
                    for b, sigma in enumerate(BLUR_LEVELS):
                        x = gaussian_filter(img, (sigma, sigma, 0)) if sigma else img
                        ys, xs = np.nonzero(ink_mask(x, bg_rgb))
                        if len(xs) == 0:
                            continue
                        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
                        rows["feats"].append(crop_feature(x, box))
                        rows["pair"].append(k)
                        rows["side"].append(side)
                        rows["blur"].append(b)
                        rows["extent"].append(max(box[2] - box[0], box[3] - box[1]))
                        rows["offset"].append(((box[0] + box[2]) / 2 - n / 2, (box[1] + box[3]) / 2 - n / 2))
            self._refs[bg] = _Refs(*(np.asarray(rows[k], np.float32) for k in rows))
        return self._refs[bg]

    def name(self, feat: np.ndarray, extent: int, bg: str, pair: int | None = None) -> tuple[int, int, str, float]:
        """(pair index, reference index, size name, distance) of one object's crop feature on ``bg``: the nearest
        reference, or the nearest of pair ``pair`` (the classifier's answer) when given."""
        R = self.references(bg)
        d = ((R.feats - feat) ** 2).mean(1)
        j = int(d.argmin()) if pair is None else int(np.where(R.pair == pair, d, np.inf).argmin())
        same = (R.pair == R.pair[j]) & (R.blur == R.blur[j])
        small, large = SIZES[self.canvas]["small"], SIZES[self.canvas]["large"]
        ext = {s: float(R.extent[same & (R.side == s)].mean()) for s in (small, large)}
        size = "small" if abs(np.log(extent / ext[small])) <= abs(np.log(extent / ext[large])) else "large"
        return int(R.pair[j]), j, size, float(d[j])

    def read(self, image: Any) -> Reading:
        """The background and the emoji found in ``image``."""
        arr = to_array(image, self.canvas)
        bg, bg_rgb = background(arr)
        objects = []
        boxes = find_objects(ink_mask(arr, bg_rgb), self.canvas)
        feats = [crop_feature(arr, box) for box in boxes]
        classes: list[int | None] = [None] * len(boxes)
        if self.net is not None and boxes:
            import torch

            from .classifier import features_to_tensor

            with torch.no_grad():
                classes = [int(self._class_pair[k]) for k in self.net(features_to_tensor(np.stack(feats))).argmax(1)]
        for box, feat, cls in zip(boxes, feats, classes):
            extent = max(box[2] - box[0], box[3] - box[1])
            k, j, size, dist = self.name(feat, extent, bg or "white", cls)
            R = self.references(bg or "white")
            cx = (box[0] + box[2]) / 2 - R.offset[j, 0] * extent / max(R.extent[j], 1.0)
            cy = (box[1] + box[3]) / 2 - R.offset[j, 1] * extent / max(R.extent[j], 1.0)
            cell = _cell_of(cx, cy, self.canvas)
            if dist > MAX_DISTANCE:
                objects.append(SeenEmoji(None, None, None, cell, box, dist))
            else:
                objects.append(SeenEmoji(*self.pairs[k], size, cell, box, dist))
        return Reading(bg, objects)

    def spec(self, prompt: Spec | str) -> Spec:
        """A prompt (a caption in the emoji grammar, EN or ZH) or a spec dict, as a normalised spec."""
        if isinstance(prompt, str):
            return parse_caption(prompt, self.table)
        return normalize_spec(prompt, self.table)

    def judge(self, image: Any, prompt: Spec | str) -> Verdict:
        """Whether ``image`` satisfies ``prompt`` (a caption or a spec), with the reason and what was seen."""
        spec = self.spec(prompt)
        reading = self.read(image)
        reason = explain(reading.objects, reading.bg, spec)
        return Verdict(reason is None, reason or "ok", reading)


_DEFAULT: list[Referee] = []
SHIPPED_CLASSIFIER = Path(__file__).with_name("referee_model")  # trained by ``python -m lvg.worlds.emoji.classifier``


def default_referee() -> Referee:
    """The referee of the default Emoji World (real sprites from the cache; fetched with npm once if missing), with
    the shipped classifier when it is there, else the nearest-sprite matcher."""
    if not _DEFAULT:
        from .world import EmojiWorld

        _DEFAULT.append(referee_for(EmojiWorld.load()))
    return _DEFAULT[0]


def referee_for(world: Any) -> Referee:
    """The referee of ``world`` with the shipped classifier where it fits (canvas 64, the same concept set: the
    default categories), else with the nearest-sprite matcher (other category sets, canvas 96, a wheel without it)."""
    if world.cfg.canvas == 64 and (SHIPPED_CLASSIFIER / "config.json").is_file():
        from .classifier import load_classifier

        net, classes = load_classifier(SHIPPED_CLASSIFIER)
        if classes == [(c.en, s) for c in world.table for s in STYLES]:
            return Referee(world.bank, world.cfg.canvas, (net, classes))
    return Referee.for_world(world)


def judge(image: Any, prompt: Spec | str) -> Verdict:
    """Judge ``image`` against ``prompt`` (caption or spec) with the default Emoji World's referee."""
    return default_referee().judge(image, prompt)
