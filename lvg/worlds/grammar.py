"""Caption-grammar steps that every grid world shares: which attributes a caption states, where it places its
objects, and how it merges identical descriptions into counted groups.

A world's ``describe(scene, rng)`` shuffles its objects, draws a :func:`stated_mask` per attribute, then calls
:func:`place_and_count` with each object's stated attributes; the random draws happen in that order, so a world
that moves onto these helpers keeps its captions byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Cell = tuple[int, int]
RELATIONS: tuple[str, ...] = ("left", "right", "above", "below")


class PlacementConfig(Protocol):
    """The three probabilities of a world's caption config that :func:`place_and_count` reads."""

    position_single: float  # a lone object's cell is stated
    relation_pair: float  # two objects are related ("A left of B") instead
    position_multi: float  # every object's cell is stated (otherwise identical descriptions are counted)


def stated_mask(rng: random.Random, n: int, p_all: float, p_none: float) -> list[bool]:
    """Which of ``n`` objects have an attribute stated: all (``p_all``), none (``p_none``), else each by a coin."""
    u = rng.random()
    if u < p_all:
        return [True] * n
    if u < p_all + p_none:
        return [False] * n
    return [rng.random() < 0.5 for _ in range(n)]


def place_and_count(
    rng: random.Random,
    described: Sequence[dict[str, Any]],
    cells: Sequence[Cell],
    cfg: PlacementConfig,
    holds: Callable[[str, Cell, Cell], bool],
) -> tuple[list[dict[str, Any]], str | None]:
    """The spec's groups and relation for objects stating ``described`` attributes at ``cells``.

    One object: its cell is stated with probability ``position_single``. Two: with probability ``relation_pair`` a
    relation that holds between them (``holds(rel, a, b)``) is chosen instead. Otherwise every cell is stated with
    probability ``position_multi``; when cells are not stated, identical descriptions merge into one counted group
    (never across a relation).
    """
    n = len(described)
    relation, at_cells = None, False
    if n == 1:
        at_cells = rng.random() < cfg.position_single
    elif n == 2 and rng.random() < cfg.relation_pair:
        relation = rng.choice([r for r in RELATIONS if holds(r, cells[0], cells[1])])
    else:
        at_cells = rng.random() < cfg.position_multi
    groups: list[dict[str, Any]] = []
    for d, cell in zip(described, cells, strict=True):
        g = {**d, "count": 1}
        if at_cells:
            g["cell"] = list(cell)
        else:
            twin = next((h for h in groups if relation is None and _same(h, g)), None)
            if twin is not None:
                twin["count"] += 1
                continue
        groups.append(g)
    return groups, relation


def _same(h: dict, g: dict) -> bool:
    return {k: v for k, v in h.items() if k != "count"} == {k: v for k, v in g.items() if k != "count"}


def check_groups(spec: Any, group_keys: Sequence[str], error: type[ValueError]) -> list[dict[str, Any]]:
    """The frame of a grid world's spec: a JSON object with ``groups`` (a non-empty list of objects whose keys are
    among ``group_keys``) and optionally ``relation`` and ``bg``. Returns the groups; ``error`` names what is wrong."""
    if not isinstance(spec, dict):
        raise error(f"a spec is a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - {"groups", "relation", "bg"}
    if unknown:
        raise error(f"unknown spec keys {sorted(unknown)}; expected groups, relation, bg")
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        raise error("a spec needs a non-empty 'groups' list")
    for i, g in enumerate(groups):
        if not isinstance(g, dict):
            raise error(f"group {i} is not an object")
        bad = set(g) - set(group_keys)
        if bad:
            raise error(f"group {i} has unknown keys {sorted(bad)}; expected {list(group_keys)}")
    return groups


def check_count_and_cell(
    i: int, g: dict[str, Any], max_objects: int, cells: Sequence[Cell], error: type[ValueError]
) -> tuple[int, list[int] | None]:
    """Group ``i``'s ``count`` (default 1, an integer from 1 to ``max_objects``) and its optional ``cell`` (one of
    ``cells``, as ``[row, col]``, only for a count of 1); ``error`` names what is wrong."""
    count = g.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max_objects:
        raise error(f"group {i}: count must be an integer from 1 to {max_objects}, got {count!r}")
    if "cell" not in g:
        return count, None
    cell = g["cell"]
    if not (isinstance(cell, (list, tuple)) and len(cell) == 2 and tuple(cell) in cells):
        raise error(f"group {i}: cell must be [row, col] with indices 0..2, got {cell!r}")
    if count != 1:
        raise error(f"group {i}: only a single object (count 1) can have a cell")
    return count, [int(cell[0]), int(cell[1])]


SAME_LINE = {
    "en": {"left": "in the same column", "above": "in the same row"},
    "zh": {"left": "同一列", "above": "同一行"},
}


def true_relation(a: Cell, b: Cell, asked: str, lang: str, holds: Callable[[str, Cell, Cell], bool],
                  words: dict[str, dict[str, str]]) -> str:  # fmt: skip
    """How cell ``a`` stands to cell ``b`` along the axis the relation ``asked`` is about, in ``words[lang]`` (a
    world's relation phrases), or "in the same column / row" when neither relation of that axis holds."""
    axis = ("left", "right") if asked in ("left", "right") else ("above", "below")
    true = next((r for r in axis if holds(r, a, b)), None)
    return SAME_LINE[lang][axis[0]] if true is None else words[lang][true]
