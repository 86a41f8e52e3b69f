"""Quality of a planned pipeline (planner + painter) on Shapes World, judged on pixels.

:func:`planned_quality` measures, for the languages asked:

- the public benchmark, end to end (pixel judge), and the planner alone (symbolic layout check);
- 3- and 4-object prompts with every colour and size stated, and prompts typed the way people type them
  (:mod:`lvg.worlds.shapes.prompt_sets`);
- diversity: 16 seeds of underspecified prompts, how many pass and how many distinct layouts they give;
- FID/KID (the pipeline's CLIP image features, else lvg's pixel features) against renders of the same
  prompts, and the CLIP score of the generations;
- the failures of the weakest benchmark category, for a picture.

Every image here comes from the pipeline; renders appear only as the reference set of FID/KID.
"""

from __future__ import annotations

from typing import Any

import torch

from lvg.eval.planning import evaluate_plans, layout_satisfies
from lvg.eval.results import GenerationResult
from lvg.eval.shapes import evaluate_generation
from lvg.eval.suite import feature_extractor, fid_kid_clip_score, real_renders
from lvg.sampling.config import GenerationConfig
from lvg.worlds.shapes.benchmark import CATEGORIES
from lvg.worlds.shapes.prompt_sets import diversity_prompts, multi_object_prompts, typed_prompts

DIVERSITY_SEEDS = 16


def diversity_check(pipe: Any, lang: str, cfg: GenerationConfig, seeds: int = DIVERSITY_SEEDS) -> list[dict]:
    """For each underspecified prompt: ``seeds`` images (seeds 0..n-1), how many pass the judge, how many
    distinct layouts and distinct images they make."""
    from lvg.worlds.shapes.judge import judge

    out = []
    for row in diversity_prompts():
        res = pipe(row[lang], config=cfg.replace(num_images=seeds, seed=0, allow_unsupported=True))
        passed = sum(judge(im, row["spec"]).passed for im in res.images)
        out.append({"prompt": row[lang], "images": seeds, "passed": passed,
                    "layouts_ok": sum(layout_satisfies(lay, row["spec"]) for lay in res.layouts),
                    "distinct_layouts": len({lay.to_json() for lay in res.layouts}),
                    "distinct_images": len({im.tobytes() for im in res.images})})  # fmt: skip
    return out


def fid_kid_clip(pipe: Any, rows: list[dict], gen: GenerationResult) -> dict[str, Any]:
    """FID/KID and CLIP score as ``lvg eval shapes --report`` computes them, against renders of the same prompts;
    plus the CLIP score of those renders, for scale."""
    feats_of, name = feature_extractor(pipe)
    real = real_renders(rows)
    with torch.inference_mode():
        out = {"features": name, **fid_kid_clip_score(pipe, gen, feats_of, feats_of(real))}
        if getattr(pipe, "clip", None) is not None:
            out["clip_score_real"] = float(pipe.clip.clip_score(real, [r["prompt"] for r in gen.rows]).mean())
    return out


def planned_quality(pipe: Any, prompts: list[dict], langs: tuple[str, ...] = ("en", "zh"),
                    config: GenerationConfig | None = None, extra_per_kind: int = 50) -> dict[str, Any]:  # fmt: skip
    """Everything listed in the module docstring, per language (see there)."""
    cfg = (config or pipe.generation_config).replace(seed=0, num_images=1, rerank=1)
    multi = multi_object_prompts(extra_per_kind)
    typed = typed_prompts(extra_per_kind // 2)
    res: dict[str, Any] = {"config": cfg.to_dict()}
    for lang in langs:
        gen = evaluate_generation(pipe, prompts, lang, cfg, keep_images=True)
        plans = evaluate_plans(pipe.planner, prompts, lang, seed=0, guidance_scale=cfg.guidance_scale,
                               temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p)  # fmt: skip
        weakest = min(CATEGORIES, key=lambda c: gen.categories.get(c, 1.0))
        res[lang] = {
            "benchmark": {k: gen[k] for k in ("overall", "categories", "num_prompts")},
            "planner_only": {k: plans[k] for k in ("overall", "categories", "not_a_scene")},
            "multi_object": evaluate_generation(pipe, multi, lang, cfg).without_rows(),
            "typed": evaluate_generation(pipe, typed, lang, cfg).without_rows(),
            "diversity": diversity_check(pipe, lang, cfg),
            "fid_kid_clip": fid_kid_clip(pipe, prompts, gen),
            "weakest": weakest,
            "weakest_failures": [
                {"prompt": r["prompt"], "reason": r["reason"], "image": r["image"]}
                for r in gen.rows
                if r["category"] == weakest and not r["passed"]
            ],  # fmt: skip
        }
    return res
