"""Symbolic check of planned layouts: does the layout the planner wrote satisfy the prompt's spec?

A layout is mapped to a Shapes World scene (:func:`lvg.worlds.shapes.scene_layout.layout_to_scene`) within
:data:`TOLERANCE` pixels (the shipped planner writes whole-pixel coordinates, so its boxes are up to
half a pixel from the exact ones); one that maps to no scene (a box of another size, far from a
cell's centre) fails. No pixels are involved: this measures the planner alone, the pixel judge
measures the whole pipeline.
"""

from __future__ import annotations

from typing import Any

from lvg.data.layout import Layout, LayoutError
from lvg.eval.results import PlanResult
from lvg.eval.shapes import category_accuracy
from lvg.worlds.shapes.scene_layout import layout_to_scene
from lvg.worlds.shapes.spec import scene_satisfies

TOLERANCE = 1.0  # pixels


def layout_satisfies(layout: Layout, spec: dict) -> bool:
    try:
        scene = layout_to_scene(layout, TOLERANCE)
    except LayoutError:
        return False
    return scene_satisfies(scene, spec)


def evaluate_plans(planner: Any, prompts: list[dict], lang: str = "en", seed: int = 0, guidance_scale: float = 1.0,
                   temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> PlanResult:  # fmt: skip
    """Plan one layout per benchmark prompt (prompt ``i`` with seed ``seed + i``) and check it symbolically.

    ``planner`` has ``tokenize(prompts)`` and ``plan_tokens(ids, seeds, ...)`` (a ``LayoutPlanner``).
    Returns a :class:`~lvg.eval.results.PlanResult` (overall, per category, the share of layouts that map to no
    scene, and the rows ``{"id", "category", "prompt", "passed", "layout"}``).
    """
    texts = [p[lang] for p in prompts]
    layouts = planner.plan_tokens(planner.tokenize(texts), [seed + i for i in range(len(texts))], guidance_scale,
                                  temperature, top_k, top_p)  # fmt: skip
    rows = []
    bad = 0
    for p, text, lay in zip(prompts, texts, layouts, strict=True):
        try:
            ok = scene_satisfies(layout_to_scene(lay, TOLERANCE), p["spec"])
        except LayoutError:
            ok, bad = False, bad + 1
        rows.append({"id": p.get("id"), "category": p["category"], "prompt": text, "passed": ok,
                     "layout": lay.to_dict()})  # fmt: skip
    n = max(1, len(rows))
    return PlanResult(sum(r["passed"] for r in rows) / n, category_accuracy(rows), bad / n, rows)
