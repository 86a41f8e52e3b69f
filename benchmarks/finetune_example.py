"""The README's adaptation example, measured: does the adapted default model draw the two new labels?

    python benchmarks/finetune_example.py [--planner runs/sun-moon-planner] [--painter runs/sun-moon-painter] [--num 100]

Prompts: ``--num`` fresh scenes of ``examples/sun_and_moon.py`` (seeds the training folder never used: seed 1), EN and
ZH. Scored, with the shipped model plus the two adapters (``--adapter`` both):
- plans right: the layout holds exactly the prompt's labels, the first left of the second, on the right background
  (symbolic, on the layout);
- painted right: each planned object's box holds the label's colour (golden or purple: the share of its pixels within
  a colour distance of 60 is at least 15%), and the background is right;
- the base alone (no adapters): how it answers the same prompts (it should refuse them).
Writes BENCHMARKS.md's "finetune-example" section and ``docs/images/finetune_example.png`` (a grid of EN prompts).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import write_section
from PIL import Image

from lvg.pipelines import load_pipeline
from lvg.pipelines.planned import UnsupportedPromptError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from sun_and_moon import GOLD, PURPLE, scene  # noqa: E402

COLOURS = {"golden sun": GOLD, "purple moon": PURPLE}


def plan_right(layout, row: dict) -> bool:
    want = [o["label"] for o in row["objects"]]
    got = sorted(layout.objects, key=lambda o: (o.box[0] + o.box[2]) / 2)
    return [o.label for o in got] == want and layout.background == row["background"]


def paint_right(image: Image.Image, layout) -> bool:
    px = np.asarray(image.convert("RGB")).astype(np.int32)
    bg = np.array([255, 255, 255] if layout.background == "white" else [0, 0, 0])
    corner = np.concatenate([px[:3, :3].reshape(-1, 3), px[-3:, -3:].reshape(-1, 3)])
    if np.abs(corner - bg).sum(-1).mean() > 60:
        return False
    for o in layout.objects:
        x0, y0, x1, y1 = (int(round(v)) for v in o.box)
        region = px[y0:y1, x0:x1].reshape(-1, 3)
        near = np.sqrt(((region - np.array(COLOURS[o.label])) ** 2).sum(-1)) < 60
        if region.size == 0 or near.mean() < 0.15:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--planner", type=Path, default=Path("runs/sun-moon-planner"))
    ap.add_argument("--painter", type=Path, default=Path("runs/sun-moon-painter"))
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rng = random.Random(1)
    rows = [scene(rng) for _ in range(args.num)]
    base = load_pipeline(ROOT / "models" / "shapes-default")
    refused = {}
    for lang, key in (("en", "text"), ("zh", "text_zh")):
        n = 0
        for r in rows:
            try:
                base.plan(r[key], seed=0)
            except UnsupportedPromptError:
                n += 1
        refused[lang] = n / len(rows)
    # the painter adapter adapts the folder's code painter: paint with it (as `lvg generate --adapter` does)
    pipe = load_pipeline(ROOT / "models" / "shapes-default").use_painter("code")
    pipe.load_adapter(args.planner / "adapter", args.painter / "painter_adapter")
    scores, grid = {}, []
    for lang, key in (("en", "text"), ("zh", "text_zh")):
        planned = painted = 0
        for i, r in enumerate(rows):
            try:
                out = pipe(r[key], seed=i)
            except UnsupportedPromptError:
                continue
            lay = out.layouts[0]
            planned += plan_right(lay, r)
            painted += plan_right(lay, r) and paint_right(out.images[0], lay)
            if lang == "en" and len(grid) < 8:
                grid.append(out.images[0])
        scores[lang] = (planned / len(rows), painted / len(rows))
    if grid:
        sheet = Image.new("RGB", (128 * len(grid), 128), "white")
        for i, im in enumerate(grid):
            sheet.paste(im.resize((128, 128), Image.NEAREST), (128 * i, 0))
        (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
        sheet.save(ROOT / "docs" / "images" / "finetune_example.png")
    times = (
        (ROOT / "runs" / "readme-ft.times").read_text().strip()
        if (ROOT / "runs" / "readme-ft.times").is_file()
        else "?"
    )
    body = "\n".join([
        f"`python benchmarks/finetune_example.py` ({time.perf_counter() - t0:.0f} s): the README's example. "
        "`models/shapes-default` adapted with LoRA (rank 8) to `python examples/sun_and_moon.py runs/sun-moon` (400 "
        "images of two labels it never saw: golden sun, purple moon), planner (`configs/finetune-planner-lora.yaml`) "
        "and painter (`configs/finetune-painter-lora.yaml`), 300 steps each, one thread; training wall time: "
        f"{times}. Scored on {args.num} fresh scenes of the same kind (seed 1), prompts EN / ZH, seed i for prompt i.",
        "",
        "| | EN | ZH |",
        "|---|---|---|",
        f"| base alone: refused (names something outside its world) | {100 * refused['en']:.0f}% | "
        f"{100 * refused['zh']:.0f}% |",
        f"| adapted: planned right (labels, left-to-right order, background) | {100 * scores['en'][0]:.0f}% | "
        f"{100 * scores['zh'][0]:.0f}% |",
        f"| adapted: planned and painted right (each box holds its label's colour, background right) | "
        f"{100 * scores['en'][1]:.0f}% | {100 * scores['zh'][1]:.0f}% |",
        "",
        "![the adapted model's first eight EN prompts](docs/images/finetune_example.png)",
    ])  # fmt: skip
    write_section("finetune-example", body)
    print(body)


if __name__ == "__main__":
    main()
