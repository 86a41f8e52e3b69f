"""Structured specs (the contract's JSON): normalisation, validation and satisfaction.

A spec states what a caption says: ``{"groups": [...], "relation"?, "bg"?}``. The canonical form
used everywhere in lvg has every group written as ``shape, color?, size?, count, cell?`` (count
always present) and top-level keys in the order groups, relation, bg.

``satisfies`` is the one definition of "this set of objects satisfies this spec"; the symbolic
checks on scenes and the pixel judge both call it, so they cannot drift apart.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lvg.worlds.grammar import check_count_and_cell, check_groups

from .world import (
    BACKGROUNDS,
    CELLS,
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Obj,
    Scene,
    random_jitter,
    relation_holds,
)

Spec = dict[str, Any]
GROUP_KEYS = ("shape", "color", "size", "count", "cell")
MAX_OBJECTS = 4


class SpecError(ValueError):
    """A spec (or a caption's meaning) that is malformed or cannot describe a Shapes World scene."""


def normalize_spec(spec: Spec) -> Spec:
    """Validate ``spec`` and return it in canonical form (count filled in, keys ordered).

    Raises :class:`SpecError` naming the problem.
    """
    out_groups = []
    for i, g in enumerate(check_groups(spec, GROUP_KEYS, SpecError)):
        if g.get("shape") not in SHAPES:
            raise SpecError(f"group {i}: shape must be one of {SHAPES}, got {g.get('shape')!r}")
        ng: dict[str, Any] = {"shape": g["shape"]}
        if "color" in g:
            if g["color"] not in COLORS:
                raise SpecError(f"group {i}: unknown colour {g['color']!r}")
            ng["color"] = g["color"]
        if "size" in g:
            if g["size"] not in SIZES:
                raise SpecError(f"group {i}: size must be small or large, got {g['size']!r}")
            ng["size"] = g["size"]
        count, cell = check_count_and_cell(i, g, MAX_OBJECTS, CELLS, SpecError)
        ng["count"] = count
        if cell is not None:
            ng["cell"] = cell
        out_groups.append(ng)
    total = sum(g["count"] for g in out_groups)
    if total > MAX_OBJECTS:
        raise SpecError(f"the spec describes {total} objects; a Shapes World scene holds at most {MAX_OBJECTS}")
    cells = [tuple(g["cell"]) for g in out_groups if "cell" in g]
    if len(set(cells)) != len(cells):
        raise SpecError("two objects are placed in the same cell")
    out: Spec = {"groups": out_groups}
    if "relation" in spec:
        rel = spec["relation"]
        if rel not in RELATIONS:
            raise SpecError(f"relation must be one of {RELATIONS}, got {rel!r}")
        if len(out_groups) != 2 or any(g["count"] != 1 for g in out_groups):
            raise SpecError("a relation needs exactly two single objects")
        a_cells = [tuple(out_groups[0]["cell"])] if "cell" in out_groups[0] else CELLS
        b_cells = [tuple(out_groups[1]["cell"])] if "cell" in out_groups[1] else CELLS
        if not any(ca != cb and relation_holds(rel, ca, cb) for ca in a_cells for cb in b_cells):
            raise SpecError(f"the stated cells contradict the relation {rel!r}")
        out["relation"] = rel
    if "bg" in spec:
        if spec["bg"] not in BACKGROUNDS:
            raise SpecError(f"bg must be white or black, got {spec['bg']!r}")
        out["bg"] = spec["bg"]
    return out


@dataclass(frozen=True)
class Seen:
    """An object as seen (by a scene or the pixel judge): any attribute may be unknown (None)."""

    shape: str | None
    color: str | None
    size: str | None
    cell: tuple[int, int]


def scene_objects(scene: Scene) -> list[Seen]:
    return [Seen(o.shape, o.color, o.size, o.cell) for o in scene.objects]


def _expand(spec: Spec) -> list[tuple[int, dict]]:
    return [(gi, g) for gi, g in enumerate(spec["groups"]) for _ in range(g.get("count", 1))]


def _fits(obj: Seen, g: dict) -> bool:
    if obj.shape != g["shape"]:
        return False
    if "color" in g and obj.color != g["color"]:
        return False
    if "size" in g and obj.size != g["size"]:
        return False
    return "cell" not in g or tuple(g["cell"]) == obj.cell


def assignment(objects: Sequence[Seen], spec: Spec) -> list[int] | None:
    """The first one-to-one assignment of ``objects`` to the spec's items (``result[k]`` is the index of the object
    taken for item ``k``, trying objects in the order given) that meets every stated attribute and the relation;
    None when there is none (or the counts differ)."""
    items = _expand(spec)
    if len(objects) != len(items):
        return None
    rel = spec.get("relation")
    for perm in itertools.permutations(range(len(objects))):
        if not all(_fits(objects[i], g) for i, (_, g) in zip(perm, items)):
            continue
        if rel is None or relation_holds(rel, objects[perm[0]].cell, objects[perm[1]].cell):
            return list(perm)
    return None


def explain(objects: Sequence[Seen], bg: str | None, spec: Spec) -> str | None:
    """Why ``objects`` on ``bg`` fail ``spec`` (a short reason), or None when they satisfy it.

    Exactly the stated number of objects must be present, and some one-to-one assignment of
    objects to the spec's items must meet every stated attribute and the relation.
    """
    items = _expand(spec)
    if "bg" in spec and bg != spec["bg"]:
        return f"background is {bg}, expected {spec['bg']}"
    if len(objects) != len(items):
        return f"found {len(objects)} objects, expected {len(items)}"
    if assignment(objects, spec) is not None:
        return None
    return "no assignment of objects to the prompt's items matches every stated attribute"


def satisfies(objects: Sequence[Seen], bg: str | None, spec: Spec) -> bool:
    """Whether ``objects`` on background ``bg`` satisfy ``spec`` (see :func:`explain`)."""
    return explain(objects, bg, spec) is None


def scene_satisfies(scene: Scene, spec: Spec) -> bool:
    return satisfies(scene_objects(scene), scene.bg, spec)


def scene_from_spec(spec: Spec, rng: random.Random) -> Scene:
    """A random scene that satisfies ``spec``; unstated attributes are drawn uniformly."""
    spec = normalize_spec(spec)
    items = _expand(spec)
    fixed = {i: tuple(g["cell"]) for i, (_, g) in enumerate(items) if "cell" in g}
    free_cells = [c for c in CELLS if c not in fixed.values()]
    for _ in range(1000):
        cells = dict(fixed)
        pick = rng.sample(free_cells, len(items) - len(fixed))
        for i in range(len(items)):
            if i not in cells:
                cells[i] = pick.pop()
        if "relation" not in spec or relation_holds(spec["relation"], cells[0], cells[1]):
            break
    else:  # normalize_spec guarantees a satisfiable relation, so this is unreachable
        raise SpecError("could not place objects to satisfy the relation")
    objs = []
    for i, (_, g) in enumerate(items):
        objs.append(
            Obj(
                g["shape"],
                g.get("color") or rng.choice(list(COLORS)),
                g.get("size") or rng.choice(list(SIZES)),
                cells[i],
                random_jitter(rng),
            )
        )
    bg = spec.get("bg") or ("white" if rng.random() < 0.75 else "black")
    return Scene(tuple(objs), bg)
