"""``lvg eval shapes``: compositional accuracy of generations and exact-match captioning.

Generation: every benchmark prompt is generated with a fixed seed (prompt ``i`` uses ``seed + i``)
and judged by the pixel judge against its spec. Captioning: held-out renders (a stream seed that
training never uses) are captioned, parsed, and must state the whole scene exactly.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lvg.eval.progress import in_chunks
from lvg.eval.results import CaptionResult, GenerationResult
from lvg.pipelines.protocols import CaptioningPipeline, TextToImagePipeline
from lvg.sampling.config import GenerationConfig
from lvg.worlds.shapes.benchmark import CATEGORIES
from lvg.worlds.shapes.captions import matches_fully
from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_samples
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.parse import CaptionParseError, parse_caption

EVAL_CONFIG = GenerationConfig(seed=0)  # evaluation is seeded unless a config says otherwise


def eval_config(config: GenerationConfig | None = None, **settings: Any) -> GenerationConfig:
    """``config`` (default :data:`EVAL_CONFIG`: the defaults with seed 0) with ``settings`` overriding its fields."""
    return GenerationConfig.from_kwargs(config if config is not None else EVAL_CONFIG, **settings)


def category_accuracy(rows: list[dict]) -> dict[str, float]:
    """Share of ``rows`` (``{"category", "passed"}``) that passed, per category: the benchmark's categories in their
    order, then any others (extra prompt sets) by name."""
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_cat[r["category"]].append(bool(r["passed"]))
    order = [c for c in CATEGORIES if c in per_cat] + sorted(c for c in per_cat if c not in CATEGORIES)
    return {c: sum(per_cat[c]) / len(per_cat[c]) for c in order}


def evaluate_generation(pipe: TextToImagePipeline, prompts: list[dict], lang: str = "en",
                        config: GenerationConfig | None = None, *, batch_size: int = 64, keep_images: bool = False,
                        progress: bool = False, referee: Callable[[Any, Any], Any] | None = None,
                        **settings: Any) -> GenerationResult:  # fmt: skip
    """Per-category and overall accuracy of ``pipe`` on ``prompts`` in ``lang`` ("en" or "zh").

    One image per prompt, generated with ``config`` (default :data:`EVAL_CONFIG`) and ``settings`` (its fields as
    keyword arguments, e.g. ``seed=0, guidance_scale=3.0``); prompt ``i`` uses seed ``seed + i``. Prompts are
    generated and judged ``batch_size`` at a time, with a progress bar on stderr when ``progress``. ``referee``
    (image, spec) -> verdict judges each image (default: the Shapes World pixel judge; another world's ``judge``
    for its benchmark prompts). A prompt the model refuses to draw (prompt analysis) fails, with the reason
    ``refused (REASON)``: every prompt here is one it should draw (the images are made with ``allow_unsupported``
    so one refusal does not stop the rest).
    """
    referee = referee or judge
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    cfg = eval_config(config, **settings)
    if cfg.num_images != 1:
        raise ValueError(f"evaluate_generation judges one image per prompt; got num_images={cfg.num_images}")

    def run(start: int, stop: int) -> list[dict]:
        chunk = prompts[start:stop]
        seed = None if cfg.seed is None else cfg.seed + start  # prompt i keeps seed + i whatever the chunking
        out = pipe([r[lang] for r in chunk], config=cfg.replace(seed=seed, allow_unsupported=True),
                   batch_size=batch_size)  # fmt: skip
        refused = out.unsupported or [None] * len(out.images)
        rows = []
        for row, img, why in zip(chunk, out.images, refused, strict=True):
            v = referee(img, row["spec"])
            passed, reason = (v.passed, v.reason) if why is None else (False, f"refused ({why})")
            rows.append({"id": row["id"], "category": row["category"], "prompt": row[lang], "passed": passed,
                         "reason": reason, **({"image": img} if keep_images else {})})  # fmt: skip
        return rows

    rows = in_chunks(run, len(prompts), batch_size, f"generate + judge ({lang})", progress, "prompt")
    overall = sum(r["passed"] for r in rows) / len(rows)
    return GenerationResult(lang, overall, category_accuracy(rows), len(rows), rows)


def captions_of(pipe: CaptioningPipeline, images: list, lang: str = "en", num_beams: int = 1, *,
                progress: bool = False, batch_size: int = 64) -> list[str]:  # fmt: skip
    """``pipe``'s caption of each image, ``batch_size`` at a time (a progress bar on stderr when ``progress``); an
    image it refuses (a ``ValueError``, e.g. a reader that sees no object) gets an empty caption, which scores as
    wrong, instead of failing the whole evaluation."""

    def run(start: int, stop: int) -> list[str]:
        try:
            return list(pipe.caption(images[start:stop], lang=lang, num_beams=num_beams))
        except ValueError:
            out = []
            for im in images[start:stop]:
                try:
                    out.append(pipe.caption([im], lang=lang, num_beams=num_beams)[0])
                except ValueError:
                    out.append("")
            return out

    return in_chunks(run, len(images), batch_size, f"caption ({lang})", progress, "image")


def evaluate_captioning(pipe: CaptioningPipeline, num: int = 1000, lang: str = "en", seed: int = HELD_OUT_SEED,
                        num_beams: int = 1, *, progress: bool = False) -> CaptionResult:  # fmt: skip
    """Exact structured match of parsed captions with the true scenes of ``num`` held-out renders."""
    samples = held_out_samples(num, seed)
    captions = captions_of(pipe, [s.image for s in samples], lang, num_beams, progress=progress)
    return score_captions(captions, samples, lang)


def score_captions(captions: list[str], samples: list, lang: str) -> CaptionResult:
    """Exact structured match of ``captions`` (parsed in ``lang``) with the scenes of ``samples`` (held-out samples:
    ``scene``, ``index``, ``full_text``): the fraction right, the fraction that parses, the first failures."""
    num = len(samples)
    exact, parsed, failures = 0, 0, []
    for s, cap in zip(samples, captions, strict=True):
        try:
            spec = parse_caption(cap, lang)
            parsed += 1
            ok = matches_fully(spec, s.scene)
        except CaptionParseError:
            ok = False
        exact += ok
        if not ok and len(failures) < 20:
            failures.append({"index": s.index, "caption": cap, "truth": s.full_text})
    return CaptionResult(lang, num, exact / num, parsed / num, failures)


def markdown_report(
    gen: list[GenerationResult],
    cap: list[CaptionResult],
    title: str = "Shapes World benchmark",
    categories: Sequence[str] = CATEGORIES,
) -> str:
    """Markdown table of per-category accuracy per language (rows: ``categories``, by default the Shapes World
    benchmark's), plus captioning exact match."""
    langs = [g.lang for g in gen]
    lines = [f"## {title}", "", "| category | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    for c in categories:
        lines.append(f"| {c} | " + " | ".join(f"{g.categories.get(c, float('nan')):.1%}" for g in gen) + " |")
    lines.append("| **overall** | " + " | ".join(f"**{g.overall:.1%}**" for g in gen) + " |")
    for c in cap:
        lines += ["", f"Captioning ({c.lang}, {c.num} held-out renders): exact match **{c.exact_match:.1%}**, "
                      f"parseable {c.parse_rate:.1%}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | os.PathLike, gen: list[GenerationResult], cap: list[CaptionResult], meta: dict,
                  extra: dict[str, Any] | None = None, title: str = "Shapes World benchmark",
                  categories: Sequence[str] = CATEGORIES) -> Path:  # fmt: skip
    """Write ``results.json`` (``meta``, ``generation``, ``captioning`` and the ``extra`` sections, e.g.
    ``inception``) and ``results.md`` (:func:`markdown_report` with ``title`` and ``categories``) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    strip = [
        g.without_rows()
        | {"failures": [{k: v for k, v in r.items() if k != "image"} for r in g.rows if not r["passed"]][:50]}
        for g in gen
    ]  # fmt: skip  (copies: the caller's rows keep their images)
    data = {"meta": meta, "generation": strip, "captioning": [c.to_dict() for c in cap], **(extra or {})}
    (out / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown_report(gen, cap, title, categories), encoding="utf-8")
    return out
