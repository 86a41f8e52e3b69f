"""Shapes World v1: the contract's vocabulary, scene types and the training-scene sampler.

Everything here follows ``docs/shapes-world.md`` exactly; see that file for the rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lvg.worlds.grammar import RELATIONS

CANVAS = 64
GRID = 3

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 40),
    "orange": (245, 140, 20),
    "yellow": (250, 220, 30),
    "green": (40, 170, 60),
    "cyan": (40, 210, 220),
    "blue": (30, 80, 220),
    "purple": (130, 50, 190),
    "pink": (250, 120, 200),
}
COLOR_ZH = {
    "red": "红色",
    "orange": "橙色",
    "yellow": "黄色",
    "green": "绿色",
    "cyan": "青色",
    "blue": "蓝色",
    "purple": "紫色",
    "pink": "粉色",
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
SHAPE_PLURAL = {s: s + ("es" if s.endswith("s") else "s") for s in SHAPES}
SHAPE_ZH = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "diamond": "菱形",
    "star": "星形",
    "cross": "十字形",
}
SIZES: dict[str, int] = {"small": 10, "large": 16}
SIZE_ZH = {"small": "小的", "large": "大的"}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}
BG_ZH = {"white": "白色", "black": "黑色"}

Cell = tuple[int, int]
CELLS: tuple[Cell, ...] = tuple((r, c) for r in range(GRID) for c in range(GRID))
# Absolute-position phrases (English includes its preposition; Chinese is prefixed by 在).
CELL_EN: dict[Cell, str] = {
    (0, 0): "in the top left",
    (0, 1): "at the top",
    (0, 2): "in the top right",
    (1, 0): "on the left",
    (1, 1): "in the center",
    (1, 2): "on the right",
    (2, 0): "in the bottom left",
    (2, 1): "at the bottom",
    (2, 2): "in the bottom right",
}
CELL_ZH: dict[Cell, str] = {
    (0, 0): "左上角",
    (0, 1): "上方",
    (0, 2): "右上角",
    (1, 0): "左侧",
    (1, 1): "中间",
    (1, 2): "右侧",
    (2, 0): "左下角",
    (2, 1): "下方",
    (2, 2): "右下角",
}
JITTER = 2  # uniform integer offset in [-JITTER, JITTER] on each axis

# Training distribution (contract): background and object-count probabilities.
BG_PROBS = {"white": 0.75, "black": 0.25}
COUNT_PROBS = {1: 0.35, 2: 0.35, 3: 0.15, 4: 0.15}


def cell_center(cell: Cell) -> tuple[float, float]:
    """Un-jittered centre (cx, cy) in pixels of grid cell (row, col)."""
    row, col = cell
    step = CANVAS / GRID
    return ((col + 0.5) * step, (row + 0.5) * step)


def relation_holds(rel: str, a: Cell, b: Cell) -> bool:
    """Whether ``a <rel> b`` holds by cell index (the contract's definition)."""
    if rel == "left":
        return a[1] < b[1]
    if rel == "right":
        return a[1] > b[1]
    if rel == "above":
        return a[0] < b[0]
    if rel == "below":
        return a[0] > b[0]
    raise ValueError(f"unknown relation {rel!r}; expected one of {RELATIONS}")


@dataclass(frozen=True)
class Obj:
    """One object of a scene: attributes plus its cell and integer jitter (dx, dy)."""

    shape: str
    color: str
    size: str
    cell: Cell
    jitter: tuple[int, int] = (0, 0)

    @property
    def center(self) -> tuple[float, float]:
        cx, cy = cell_center(self.cell)
        return (cx + self.jitter[0], cy + self.jitter[1])

    def to_dict(self) -> dict:
        return {
            "shape": self.shape,
            "color": self.color,
            "size": self.size,
            "cell": list(self.cell),
            "jitter": list(self.jitter),
        }


@dataclass(frozen=True)
class Scene:
    """A full scene: 1 to 4 objects in distinct cells on a solid background."""

    objects: tuple[Obj, ...]
    bg: str = "white"

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 4:
            raise ValueError(f"a scene holds 1 to 4 objects, got {len(self.objects)}")
        cells = [o.cell for o in self.objects]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects share a cell: {cells}")
        if self.bg not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.bg!r}")
        for o in self.objects:
            if o.shape not in SHAPES or o.color not in COLORS or o.size not in SIZES:
                raise ValueError(f"invalid object {o}")
            if o.cell not in CELLS or max(abs(o.jitter[0]), abs(o.jitter[1])) > JITTER:
                raise ValueError(f"invalid cell or jitter in {o}")

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects], "bg": self.bg}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        objs = tuple(
            Obj(o["shape"], o["color"], o["size"], tuple(o["cell"]), tuple(o.get("jitter", (0, 0))))
            for o in d["objects"]
        )
        return cls(objs, d.get("bg", "white"))


def random_jitter(rng: random.Random) -> tuple[int, int]:
    return (rng.randint(-JITTER, JITTER), rng.randint(-JITTER, JITTER))


def sample_scene(rng: random.Random, group_prob: float = 0.3) -> Scene:
    """Draw a training scene from the contract's distribution.

    The contract fixes the background and object-count probabilities; attributes are uniform.
    With probability ``group_prob`` a multi-object scene reuses a few attribute prototypes, so
    groups of identical objects (the "counting" category) are common enough to learn.
    """
    n = rng.choices(list(COUNT_PROBS), weights=list(COUNT_PROBS.values()))[0]
    bg = "white" if rng.random() < BG_PROBS["white"] else "black"
    cells = rng.sample(CELLS, n)

    def attrs() -> tuple[str, str, str]:
        return (rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(SIZES)))

    if n >= 2 and rng.random() < group_prob:
        protos = [attrs() for _ in range(rng.randint(1, n - 1))]
        chosen = protos + [rng.choice(protos) for _ in range(n - len(protos))]
        rng.shuffle(chosen)
    else:
        chosen = [attrs() for _ in range(n)]
    objs = tuple(Obj(s, c, z, cell, random_jitter(rng)) for (s, c, z), cell in zip(chosen, cells))
    return Scene(objs, bg)
