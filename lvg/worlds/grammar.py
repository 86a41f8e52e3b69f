"""Caption-grammar steps that every grid world shares: which attributes a caption states, where it places its
objects, and how it merges identical descriptions into counted groups.

A world's ``describe(scene, rng)`` shuffles its objects, draws a :func:`stated_mask` per attribute, then calls
:func:`place_and_count` with each object's stated attributes; the random draws happen in that order, so a world
that moves onto these helpers keeps its captions byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
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


# Edit instructions every world phrases the same way (each world adds its own kinds: Shapes World's recolour, Emoji
# World's restyle and replace). ``{ref}`` / ``{ref2}``: phrases that pick out one object; ``{place}``: a cell without
# its preposition; ``{cell}``: with it; ``{desc}``: an object to add; ``{size}`` / ``{er}``: the new size.
EDIT_TEMPLATES_EN: dict[str, list[str]] = {
    "resize": ["make the {ref} {size}", "make the {ref} {er}", "resize the {ref} to {size}", "change the {ref} to {size}"],
    "move": ["move the {ref} to the {place}", "put the {ref} in the {place}", "move the {ref} {cell}",
             "place the {ref} at the {place}"],
    "add": ["add {desc}", "add {desc} {cell}", "put {desc} {cell}", "draw {desc} too", "also add {desc}"],
    "remove": ["remove the {ref}", "delete the {ref}", "take away the {ref}", "erase the {ref}", "get rid of the {ref}"],
    "swap": ["swap the {ref} and the {ref2}", "swap the positions of the {ref} and the {ref2}",
             "exchange the {ref} and the {ref2}", "switch the {ref} and the {ref2}"],
    "background": ["make the background {bg}", "change the background to {bg}", "use a {bg} background",
                   "set the background to {bg}"],
}  # fmt: skip
EDIT_TEMPLATES_ZH: dict[str, list[str]] = {
    "resize": ["把{ref}变{er}", "把{ref}改成{size}", "将{ref}变成{size}", "{ref}变{er}一点"],
    "move": ["把{ref}移到{cell}", "将{ref}放到{cell}", "把{ref}挪到{cell}", "{ref}移动到{cell}"],
    "add": ["添加{desc}", "在{cell}加{desc}", "再画{desc}", "加上{desc}", "在{cell}添加{desc}"],
    "remove": ["删除{ref}", "去掉{ref}", "把{ref}删掉", "移除{ref}", "把{ref}去掉"],
    "swap": ["交换{ref}和{ref2}的位置", "把{ref}和{ref2}互换位置", "{ref}和{ref2}换一下位置", "对调{ref}和{ref2}"],
    "background": ["把背景改成{bg}", "背景换成{bg}", "将背景设为{bg}", "背景改为{bg}"],
}  # fmt: skip
EDIT_JOIN = {"en": [" and ", ", then ", " and then ", "; "], "zh": ["，然后", "，再", "并且", "，"]}  # two edits in one


def first_edit_type(rng: random.Random, types: Sequence[str], weights: Mapping[str, float]) -> str:
    """The type of an edit's first edit: one of ``types``, uniform where ``weights`` is empty (one ``rng.choice``, the
    stream as it was drawn before weights existed), else by ``weights`` (a type left out weighs 1)."""
    if not weights:
        return rng.choice(types)
    return rng.choices(types, [weights.get(k, 1.0) for k in types])[0]


def with_second_edit(text: str, objects: Sequence[Any], after: Any, first: str, types: Sequence[str], lang: str,
                     rng: random.Random, combo_prob: float,
                     edit: Callable[[Any, str, set[int]], Any]) -> tuple[str, Any, tuple[str, ...]]:  # fmt: skip
    """An edit instruction ``text`` of kind ``first`` (``objects`` before, the scene ``after``), with a second edit of
    another kind (never add or swap) joined on at ``combo_prob`` (never after an add, a removal or a swap), done by
    ``edit(scene, kind, busy)`` on the objects the first left alone. Returns ``(text, scene, kinds)``, unchanged where
    no second edit is drawn or it does not fit (``edit`` gave None). One draw of ``rng`` decides, whatever ``first``."""
    if rng.random() >= combo_prob or first in ("add", "remove", "swap"):
        return text, after, (first,)
    touched = {i for i, (a, b) in enumerate(zip(objects, after.objects)) if a != b}
    second = rng.choice([k for k in types if k not in (first, "add", "swap")])
    more = edit(after, second, touched)
    if more is None:
        return text, after, (first,)
    return text + rng.choice(EDIT_JOIN[lang]) + more[0], more[1], (first, second)
