"""Shapes World benchmark: render speed on one core, judge validation, tokenizer lengths.

    python benchmarks/shapes_world.py [--quick]

Writes the "shapes-world" section of BENCHMARKS.md (machine and date included) and prints it.
Runs pinned to one CPU core with one thread per library.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _report import write_section  # noqa: E402

from lvg.tokenizers.text import load_text_tokenizer  # noqa: E402
from lvg.worlds.shapes.captions import caption  # noqa: E402
from lvg.worlds.shapes.dataset import ShapesWorldDataset, make_sample  # noqa: E402
from lvg.worlds.shapes.export import write_imagefolder  # noqa: E402
from lvg.worlds.shapes.judge import read_image  # noqa: E402
from lvg.worlds.shapes.judge_check import validate_judge  # noqa: E402
from lvg.worlds.shapes.render import render  # noqa: E402
from lvg.worlds.shapes.world import sample_scene  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rate(fn, items, repeats: int = 3) -> float:
    """Median items/s of ``fn`` over ``items`` (after one warm-up pass)."""
    fn(items[:200])
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(items)
        runs.append(len(items) / (time.perf_counter() - t))
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples (for a smoke run)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    n = 2000 if args.quick else 20000
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(n)]
    r_render = rate(lambda xs: [render(s) for s in xs], scenes)
    r_sample = rate(lambda xs: [sample_scene(rng) for _ in xs], scenes)
    r_full = rate(lambda xs: [make_sample(i) for i in xs], list(range(n)))
    r_stream = rate(lambda xs: [x for _, x in zip(xs, ShapesWorldDataset())], list(range(n)))
    imgs = [render(s) for s in scenes[:2000]]
    r_judge = rate(lambda xs: [read_image(x) for x in xs], imgs, repeats=1)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        write_imagefolder(Path(d) / "f", 2000, progress=False)
        r_folder = 2000 / (time.perf_counter() - t)

    checks = [validate_judge(2000, seed=0, noise=10.0, blur=0.8)]
    for noise, blur in ((20.0, 1.2), (0.0, 2.0), (0.0, 0.0)):
        checks.append(validate_judge(500 if args.quick else 1000, seed=1, noise=noise, blur=blur))

    tok = load_text_tokenizer(ROOT / "models" / "shapes-default" / "text_tokenizer")
    crng = random.Random("held-out-captions")
    caps = [caption(sample_scene(crng), crng) for _ in range(2000 if args.quick else 10000)]
    lens = {lang: [len(tok(getattr(c, lang))["input_ids"]) for c in caps] for lang in ("en", "zh")}

    rows = "\n".join(
        f"| noise {c['noise_sigma']:g}, blur {c['blur_sigma']:g} | {c['num']} | {c['correct_pass_rate']:.2%} "
        f"| {c['mismatched_judge_pass_rate']:.2%} / {c['mismatched_truth_rate']:.2%} ({c['mismatched_false_accepts']}) "
        f"| {c['near_miss_agreement']:.2%} (truth {c['near_miss_truth_rate']:.1%}; {c['near_miss_false_accepts']} "
        f"false accepts, {c['near_miss_false_rejects']} false rejects) |"
        for c in checks
    )
    body = f"""## Shapes World (`python benchmarks/shapes_world.py`)

Throughput on one pinned CPU core, one thread, median of 3 passes over {n:,} items:

| stage | items/s |
|---|---|
| `render(scene)` (64x64, anti-aliased) | **{r_render:,.0f}** scenes/s (target >= 2,000) |
| `sample_scene` | {r_sample:,.0f} |
| `make_sample` (sample + caption EN/ZH + render) | {r_full:,.0f} |
| `ShapesWorldDataset` iteration (adds tensor conversion) | {r_stream:,.0f} |
| `lvg data shapes` (adds PNG encoding and file writes) | {r_folder:,.0f} |
| pixel judge `read_image` (clean 64x64 renders) | {r_judge:,.0f} |

Pixel judge validation (`lvg.worlds.shapes.judge_check.validate_judge`): renders are blurred (Gaussian, sigma in px)
then given Gaussian noise (sigma in 0..255 units). *Correct*: a random scene satisfying a random caption's
spec. *Mismatched*: another random scene against the spec; judge pass rate / symbolic truth on the same
pairs (false accepts). *Near miss*: the correct scene with one thing changed (colour, shape, size, cell,
background, an object added or removed); agreement of the judge with the symbolic truth.

| degradation | pairs | correct pass | mismatched: judge / truth (false accepts) | near miss agreement |
|---|---|---|---|---|
{rows}

The contract's target (>= 99.5% at noise 10, blur 0.8) is the first row; the others show the margin.

Text tokenizer (`models/shapes-default/text_tokenizer`, byte-level BPE, {len(tok)} tokens) on
{len(caps):,} held-out canonical captions: English mean **{np.mean(lens["en"]):.2f}** tokens per caption
(max {max(lens["en"])}), Chinese mean **{np.mean(lens["zh"]):.2f}** (max {max(lens["zh"])}; one token per
CJK character by design).
"""
    write_section("shapes-world", body)
    print(body)


if __name__ == "__main__":
    main()
