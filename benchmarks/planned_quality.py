"""Quality of the default planned model: benchmark, hard prompts, typed prompts, diversity, FID/KID, CLIP score.

    python benchmarks/planned_quality.py [--model models/shapes-default] [--per-kind 50] [--threads 2]

Runs :func:`lvg.eval.planned.planned_quality` in English and Chinese with the model's own generation settings
(seed 0), writes the "planned-quality" section of BENCHMARKS.md, the full results as JSON
(``runs/planned_quality.json``) and a failure grid of the weakest benchmark category per language
(``docs/failures_<lang>.png``, each failed image with its prompt and the judge's reason).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _report import write_section
from PIL import Image, ImageDraw, ImageFont

from lvg.eval.planned import planned_quality
from lvg.pipelines import load_pipeline
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts

ROOT = Path(__file__).resolve().parents[1]


def failure_grid(failures: list[dict], title: str, cols: int = 4, scale: int = 3) -> Image.Image:
    """Failed images (upscaled) with their prompt and the judge's reason under each."""
    cjk = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")  # Debian's fonts-wqy-zenhei, for Chinese prompts
    font = ImageFont.truetype(str(cjk), 11) if cjk.is_file() else ImageFont.load_default(size=11)
    w, h, text_h, pad = 64 * scale, 64 * scale, 64, 8
    n = max(1, len(failures))
    rows = (n + cols - 1) // cols
    grid = Image.new("RGB", (cols * (w + pad) + pad, 24 + rows * (h + text_h + pad) + pad), (236, 236, 236))
    draw = ImageDraw.Draw(grid)
    draw.text((pad, 6), title, fill=(0, 0, 0), font=font)
    if not failures:
        draw.text((pad, 30), "no failures", fill=(0, 0, 0), font=font)
    for i, f in enumerate(failures):
        x, y = pad + (i % cols) * (w + pad), 24 + pad + (i // cols) * (h + text_h + pad)
        grid.paste(f["image"].resize((w, h), Image.NEAREST), (x, y))
        words, lines = (f["prompt"] + " | " + f["reason"]).split(), [""]
        for word in words:
            while font.getlength(word) > w:  # a Chinese prompt has no spaces: break it where it fills the line
                cut = next((k for k in range(len(word), 1, -1) if font.getlength(word[:k]) <= w), 1)
                lines.append(word[:cut])
                word = word[cut:]
            if font.getlength(lines[-1] + " " + word) > w:
                lines.append(word)
            else:
                lines[-1] = (lines[-1] + " " + word).strip()
        draw.multiline_text((x, y + h + 2), "\n".join(lines[:5]), fill=(20, 20, 20), font=font, spacing=1)
    return grid


def pct(v: float) -> str:
    return f"{v:.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="planned model folder (default: the shipped model)")
    ap.add_argument("--per-kind", type=int, default=50, help="prompts per 3/4-object set; half per typed kind")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    prompts = load_prompts(benchmark_prompts_file())
    t0 = time.perf_counter()
    res = planned_quality(pipe, prompts, ("en", "zh"), extra_per_kind=args.per_kind)
    secs = time.perf_counter() - t0
    for lang in ("en", "zh"):
        r = res[lang]
        failure_grid(r.pop("weakest_failures")[:16],
                     f"{lang.upper()}: failures of the weakest category ({r['weakest']})").save(
            ROOT / "docs" / f"failures_{lang}.png")  # fmt: skip
    (ROOT / "runs").mkdir(exist_ok=True)
    (ROOT / "runs" / "planned_quality.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")

    en, zh = res["en"], res["zh"]
    cat_rows = "\n".join(
        f"| {c} | {pct(en['benchmark']['categories'][c])} | {pct(zh['benchmark']['categories'][c])} "
        f"| {pct(en['planner_only']['categories'][c])} | {pct(zh['planner_only']['categories'][c])} |"
        for c in CATEGORIES
    )

    def sub(key: str) -> str:
        cats = sorted(set(en[key]["categories"]) | set(zh[key]["categories"]))
        lines = [f"| {c} | {pct(en[key]['categories'][c])} | {pct(zh[key]['categories'][c])} |" for c in cats]
        lines.append(
            f"| **all {en[key]['num_prompts']}** | **{pct(en[key]['overall'])}** | **{pct(zh[key]['overall'])}** |"
        )
        return "\n".join(lines)

    div = "\n".join(
        f"| {a['prompt']} / {b['prompt']} | {a['passed']}/{a['images']} / {b['passed']}/{b['images']} "
        f"| {a['distinct_layouts']} / {b['distinct_layouts']} | {a['distinct_images']} / {b['distinct_images']} |"
        for a, b in zip(en["diversity"], zh["diversity"])
    )
    fk = {lang: res[lang]["fid_kid_clip"] for lang in ("en", "zh")}
    model = args.model or "models/shapes-default"
    body = f"""## Planned generation quality (`python benchmarks/planned_quality.py`)

Model `{model}` (planner LM -> layout -> painter -> 16x16 image tokenizer), its own generation settings
{res["config"]}, one image per prompt, prompt i with seed i; every image judged by the pixel judge.
Planner-only columns check the sampled layout symbolically (layout -> scene -> spec), without pixels.

| category | EN | ZH | planner only EN | planner only ZH |
|---|---|---|---|---|
{cat_rows}
| **overall ({en["benchmark"]["num_prompts"]} prompts)** | **{pct(en["benchmark"]["overall"])}** | **{pct(zh["benchmark"]["overall"])}** | {pct(en["planner_only"]["overall"])} | {pct(zh["planner_only"]["overall"])} |

3 and 4 objects, every colour and size stated (`lvg.worlds.shapes.prompt_sets.multi_object_prompts`):

| set | EN | ZH |
|---|---|---|
{sub("multi_object")}

Prompts typed the way people type them (`lvg.worlds.shapes.prompt_sets.typed_prompts`: digits, capitals, full stops,
extra spaces, "left of", "under", "over", "in the middle", "。", "3个"; templates of their own, not the training
captioner):

| set | EN | ZH |
|---|---|---|
{sub("typed")}

Diversity: 16 seeds (0-15) of underspecified prompts, EN / ZH:

| prompt | images passing the judge | distinct layouts | distinct images |
|---|---|---|---|
{div}

FID / KID against renders of random scenes satisfying the same prompts ({fk["en"]["features"]}), and CLIP score
(100 * max(cos, 0) with the shipped CLIP, as `lvg eval shapes --report` computes them; renders of the same prompts
score {fk["en"].get("clip_score_real", float("nan")):.1f} EN):

| lang | FID | KID | CLIP score |
|---|---|---|---|
| EN | {fk["en"]["fid"]:.2f} | {fk["en"]["kid"][0]:.4f} ± {fk["en"]["kid"][1]:.4f} | {fk["en"].get("clip_score", float("nan")):.1f} |
| ZH | {fk["zh"]["fid"]:.2f} | {fk["zh"]["kid"][0]:.4f} ± {fk["zh"]["kid"][1]:.4f} | {fk["zh"].get("clip_score", float("nan")):.1f} |

Failure grids of the weakest category: `docs/failures_en.png` ({en["weakest"]}), `docs/failures_zh.png`
({zh["weakest"]}). (The whole evaluation took {secs:.0f} s on {args.threads} threads.)
"""
    write_section("planned-quality", body)
    print(body)


if __name__ == "__main__":
    main()
