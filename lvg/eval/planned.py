"""Quality of a planned pipeline (planner + painter) on Shapes World, judged on pixels.

:func:`planned_quality` measures, for the languages asked:

- the public benchmark, end to end (pixel judge), and the planner alone (symbolic layout check);
- 3- and 4-object prompts with every colour and size stated, and prompts typed the way people type them
  (:mod:`lvg.eval.prompt_sets`);
- diversity: 16 seeds of underspecified prompts, how many pass and how many distinct layouts they give;
- FID/KID (the pipeline's CLIP image features, else lvg's pixel features) against renders of the same
  prompts, and the CLIP score of the generations;
- the failures of the weakest benchmark category, for a picture.

Every image here comes from the pipeline; renders appear only as the reference set of FID/KID.
"""

from __future__ import annotations

from typing import Any

import torch

from lvg.eval.benchmark import CATEGORIES
from lvg.eval.metrics import frechet_distance, images_to_tensor, kernel_inception_distance
from lvg.eval.planning import evaluate_plans, layout_satisfies
from lvg.eval.prompt_sets import diversity_prompts, multi_object_prompts, typed_prompts
from lvg.eval.shapes import evaluate_generation
from lvg.eval.suite import feature_extractor, real_renders
from lvg.sampling.config import GenerationConfig

DIVERSITY_SEEDS = 16


def _accuracy(pipe: Any, rows: list[dict], lang: str, cfg: GenerationConfig, keep_images: bool = False) -> dict:
    """``evaluate_generation`` with per-category accuracy for any category names (not only the benchmark's)."""
    gen = evaluate_generation(pipe, rows, lang, cfg, keep_images=keep_images)
    cats = sorted({r["category"] for r in gen["rows"]}, key=lambda c: (c not in CATEGORIES, c))
    gen["categories"] = {c: sum(r["passed"] for r in gen["rows"] if r["category"] == c)
                         / sum(r["category"] == c for r in gen["rows"]) for c in cats}  # fmt: skip
    return gen


def diversity_check(pipe: Any, lang: str, cfg: GenerationConfig, seeds: int = DIVERSITY_SEEDS) -> list[dict]:
    """For each underspecified prompt: ``seeds`` images (seeds 0..n-1), how many pass the judge, how many
    distinct layouts and distinct images they make."""
    from lvg.eval.judge import judge

    out = []
    for row in diversity_prompts():
        res = pipe(row[lang], config=cfg.replace(num_images=seeds, seed=0))
        passed = sum(judge(im, row["spec"]).passed for im in res.images)
        out.append({"prompt": row[lang], "images": seeds, "passed": passed,
                    "layouts_ok": sum(layout_satisfies(lay, row["spec"]) for lay in res.layouts),
                    "distinct_layouts": len({lay.to_json() for lay in res.layouts}),
                    "distinct_images": len({im.tobytes() for im in res.images})})  # fmt: skip
    return out


def fid_kid_clip(pipe: Any, rows: list[dict], gen: dict, lang: str) -> dict[str, Any]:
    """FID/KID of the generations against renders of the same prompts, and the mean CLIP score."""
    fake = images_to_tensor([r["image"] for r in gen["rows"]])
    real = real_renders(rows)
    feats, name = feature_extractor(pipe)
    with torch.inference_mode():
        f_fake, f_real = feats(fake), feats(real)
        out: dict[str, Any] = {"features": name, "fid": frechet_distance(f_real, f_fake),
                               "kid": kernel_inception_distance(f_real, f_fake, subset_size=min(100, len(rows)))}  # fmt: skip
        if getattr(pipe, "clip", None) is not None:
            texts = [r[lang] for r in rows]
            out["clip_score"] = float(pipe.clip.score(fake, texts).float().mean())
            out["clip_score_real"] = float(pipe.clip.score(real, texts).float().mean())
    return out


def planned_quality(pipe: Any, prompts: list[dict], langs: tuple[str, ...] = ("en", "zh"),
                    config: GenerationConfig | None = None, extra_per_kind: int = 50) -> dict[str, Any]:  # fmt: skip
    """Everything listed in the module docstring, per language (see there)."""
    cfg = (config or pipe.generation_config).replace(seed=0, num_images=1, rerank=1)
    multi = multi_object_prompts(extra_per_kind)
    typed = typed_prompts(extra_per_kind // 2)
    res: dict[str, Any] = {"config": cfg.to_dict()}
    for lang in langs:
        gen = _accuracy(pipe, prompts, lang, cfg, keep_images=True)
        plans = evaluate_plans(pipe.planner, prompts, lang, seed=0, guidance_scale=cfg.guidance_scale,
                               temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p)  # fmt: skip
        weakest = min(CATEGORIES, key=lambda c: gen["categories"].get(c, 1.0))
        res[lang] = {
            "benchmark": {k: gen[k] for k in ("overall", "categories", "num_prompts")},
            "planner_only": {k: plans[k] for k in ("overall", "categories", "not_a_scene")},
            "multi_object": {k: v for k, v in _accuracy(pipe, multi, lang, cfg).items() if k != "rows"},
            "typed": {k: v for k, v in _accuracy(pipe, typed, lang, cfg).items() if k != "rows"},
            "diversity": diversity_check(pipe, lang, cfg),
            "fid_kid_clip": fid_kid_clip(pipe, prompts, gen, lang),
            "weakest": weakest,
            "weakest_failures": [
                {"prompt": r["prompt"], "reason": r["reason"], "image": r["image"]}
                for r in gen["rows"]
                if r["category"] == weakest and not r["passed"]
            ],  # fmt: skip
        }
    return res
