"""The extended evaluation behind ``lvg eval shapes --report DIR``.

On top of compositional accuracy (:mod:`lvg.eval.shapes`) it measures, for a pipeline and a prompt set:
FID and KID of the generations against real renders of the same prompts (features: the pipeline's CLIP image
tower when it has one, else :class:`lvg.eval.metrics.PixelFeatures`; both are lvg's own, not Inception, and
the report says which), the sanity figures of that feature space (real vs real, real vs pixel-shuffled), CLIP
score, diversity and distinct code sequences among several samples of one prompt, cycle consistency
(text -> image -> caption -> parsed spec), the image tokenizer's PSNR/SSIM on held-out renders, and accuracy
as guidance scale and temperature vary. Everything is then written as a self-contained HTML + Markdown report.

With user-supplied Inception-v3 weights (``lvg eval shapes --inception-weights FILE``), :func:`inception_section`
adds the standard Inception-v3 FID and Inception Score through torchmetrics (:mod:`lvg.eval.inception`); the
report labels them "Inception-v3 ... (user weights: FILE)" beside the lvg-feature FID above.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from lvg.eval.inception import InceptionEvaluator, load_inception
from lvg.eval.metrics import (
    PixelFeatures,
    cycle_consistency,
    distinct_fraction,
    diversity,
    frechet_distance,
    images_to_tensor,
    kernel_inception_distance,
    sanity_checks,
)  # fmt: skip
from lvg.eval.recon import psnr_ssim, reconstruct
from lvg.eval.report import accuracy_sweep, category_table_from, failures_from, write_report
from lvg.eval.results import GenerationResult
from lvg.eval.shapes import eval_config
from lvg.pipelines.protocols import TextToImagePipeline, UnifiedPipeline
from lvg.sampling.config import GenerationConfig
from lvg.worlds.shapes.benchmark import CATEGORIES
from lvg.worlds.shapes.heldout import held_out_images
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.spec import scene_from_spec


def _per_category(prompts: list[dict], k: int) -> list[dict]:
    return [r for c in CATEGORIES for r in [p for p in prompts if p["category"] == c][:k]]


def feature_extractor(pipe: TextToImagePipeline) -> tuple[Any, str]:
    """(images uint8 [N, 3, 64, 64] -> features [N, D], its name)."""
    if getattr(pipe, "clip", None) is not None:
        return (lambda x: pipe.clip.encode_image(x).float().cpu()), "lvg CLIP image tower (models' own, not Inception)"
    return PixelFeatures(), "lvg PixelFeatures (fixed pixel statistics; no CLIP loaded; not Inception)"


def real_renders(prompts: list[dict], seed: int = 0) -> torch.Tensor:
    """One render per prompt of a random scene that satisfies it: uint8 [N, 3, 64, 64]."""
    arr = [render(scene_from_spec(r["spec"], random.Random(f"lvg-real:{seed}:{i}"))) for i, r in enumerate(prompts)]
    return images_to_tensor(arr)


def _generated_images(gen: GenerationResult) -> torch.Tensor:
    if not gen.rows or "image" not in gen.rows[0]:
        raise ValueError("FID/IS need evaluate_generation(..., keep_images=True) results")
    return images_to_tensor([r["image"] for r in gen.rows])


def fid_kid_clip_score(
    pipe: TextToImagePipeline, gen: GenerationResult, feats_of: Any, real_f: torch.Tensor
) -> dict[str, Any]:
    """FID and KID (mean, std) of a ``keep_images=True`` generation result against real features ``real_f``, and,
    when the pipeline has a CLIP, the mean CLIP score (``100 * max(cos, 0)``) of the images against their prompts."""
    fake = _generated_images(gen)
    fake_f = feats_of(fake)
    out: dict[str, Any] = {"fid": frechet_distance(real_f, fake_f),
                           "kid": kernel_inception_distance(real_f, fake_f, subset_size=200)}  # fmt: skip
    if getattr(pipe, "clip", None) is not None:
        out["clip_score"] = float(pipe.clip.clip_score(fake, [r["prompt"] for r in gen.rows]).mean())
    return out


def inception_section(prompts: list[dict], gens: list[GenerationResult], weights: str | Path, variant: str = "fid",
                      seed: int = 0, device: str | torch.device = "cpu",
                      batch_size: int = 32) -> dict[str, Any]:  # fmt: skip
    """Inception-v3 FID (against :func:`real_renders` of the prompts) and IS of each language's generations.

    ``weights``: the user's safetensors file (see :mod:`lvg.eval.inception`). Returns ``{"weights": file name,
    "variant", "num_classes", "num_real", "by_lang": {lang: {"fid", "is_mean", "is_std"}}}``.
    """
    fakes = {g.lang: _generated_images(g) for g in gens}
    net = load_inception(weights, variant, device)
    ev = InceptionEvaluator(net, batch_size=batch_size, seed=seed)
    ev.add_real(real_renders(prompts, seed))
    return {"weights": Path(weights).name, "variant": variant, "num_classes": net.num_classes,
            "num_real": ev.num_real, "by_lang": {lang: ev.evaluate(fake) for lang, fake in fakes.items()}}  # fmt: skip


def inception_rows(section: dict[str, Any]) -> dict[str, Any]:
    """Report rows ``{name: value}`` of an :func:`inception_section`, named so they cannot pass for lvg's FID."""
    src = f"user weights: {section['weights']}"
    rows: dict[str, Any] = {"Inception-v3 variant": f"{section['variant']} ({section['num_classes']} classes)"}
    for lang, m in section["by_lang"].items():
        rows[f"Inception-v3 FID ({src}) ({lang})"] = m["fid"]
        rows[f"Inception-v3 IS ({src}) ({lang})"] = m["is_mean"]
        rows[f"Inception-v3 IS std ({src}) ({lang})"] = m["is_std"]
    return rows


def extended_report(pipe: UnifiedPipeline, prompts: list[dict], gens: list[GenerationResult],
                    out_dir: str | Path, config: GenerationConfig | None = None, *, samples_per_prompt: int = 4,
                    subset_per_category: int = 3, tokenizer_images: int = 500,
                    inception: dict[str, Any] | None = None, **settings: Any) -> tuple[Path, dict]:  # fmt: skip
    """Compute the extended metrics and write the report; returns (index.html path, metrics).

    Sampling settings come from ``config`` and ``settings`` as in :func:`lvg.eval.shapes.evaluate_generation`
    (seed 0 unless given); the gallery, cycle consistency and sweeps run without reranking. ``inception``: an
    :func:`inception_section` (computed once by the caller, who also records it elsewhere); its rows follow the
    lvg-feature FID/KID rows.
    """
    cfg = eval_config(config, **settings).replace(num_images=1, rerank=1)
    seed = cfg.seed if cfg.seed is not None else 0
    feats_of, feats_name = feature_extractor(pipe)
    real = real_renders(prompts, seed)
    real_f = feats_of(real)
    metrics: dict[str, Any] = {"features": feats_name}
    for g in gens:
        m = fid_kid_clip_score(pipe, g, feats_of, real_f)
        metrics[f"FID ({g.lang})"] = m["fid"]
        metrics[f"KID x1000 ({g.lang})"] = 1000 * m["kid"][0]
        if "clip_score" in m:
            metrics[f"CLIP score ({g.lang})"] = m["clip_score"]
    if inception is not None:
        metrics.update(inception_rows(inception))
    sanity = sanity_checks(held_out_images(400), feats_of)
    metrics["sanity: FID real vs real"] = sanity["fid_real_real"]
    metrics["sanity: FID real vs pixel-shuffled"] = sanity["fid_real_shuffled"]

    subset = _per_category(prompts, subset_per_category)
    gallery_rows = _per_category(prompts, 1)
    out = pipe(
        [r["en"] for r in gallery_rows], config=cfg.replace(num_images=samples_per_prompt, allow_unsupported=True)
    )
    groups = [i for i in range(len(gallery_rows)) for _ in range(samples_per_prompt)]
    metrics["diversity (mean pairwise feature distance)"] = diversity(feats_of(images_to_tensor(out.images)), groups)
    metrics["distinct code sequences per prompt"] = distinct_fraction(out.codes, groups)
    galleries = [{"prompt": r["en"], "images": out.images[i * samples_per_prompt : (i + 1) * samples_per_prompt]}
                 for i, r in enumerate(gallery_rows)]  # fmt: skip
    for g in gens:
        cyc = cycle_consistency(pipe, subset, g.lang, cfg)
        metrics[f"cycle consistency ({g.lang}, {len(subset)} prompts)"] = cyc.rate
    images = held_out_images(tokenizer_images)
    psnr, ssim = psnr_ssim(reconstruct(pipe.image_tokenizer, images)[0], images)
    metrics[f"tokenizer PSNR dB ({tokenizer_images} held-out)"] = psnr
    metrics[f"tokenizer SSIM ({tokenizer_images} held-out)"] = ssim
    lang = gens[0].lang
    sweeps = {
        "guidance_scale": accuracy_sweep(pipe, subset, lang, [1.0, 2.0, 3.0, 5.0], "guidance_scale", cfg),
        "temperature": accuracy_sweep(pipe, subset, lang, [0.5, 1.0, 1.5], "temperature", cfg),
    }
    failures = [f for g in gens for f in failures_from(g, limit=12)]
    path = write_report(
        out_dir, "lvg evaluation report", category_table_from(gens), metrics, galleries, failures, sweeps
    )
    return path, metrics
