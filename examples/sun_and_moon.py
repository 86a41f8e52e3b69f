"""Write a tiny imagefolder of two labels the shipped model has never seen: "golden sun" and "purple moon".

    python examples/sun_and_moon.py OUT [--num 400] [--seed 0]

Each 64x64 image holds one or two of them (a sun: a golden disc with rays; a moon: a purple crescent) on a white or
black background; ``metadata.jsonl`` gives each image's EN and ZH caption and its layout (labels and pixel boxes), the
format every lvg trainer reads. It is the README's example of adapting the shipped model to your own labels.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

CANVAS = 64
GOLD, PURPLE = (236, 178, 20), (150, 60, 200)
ZH = {"golden sun": "金色的太阳", "purple moon": "紫色的月亮"}


def draw(d: ImageDraw.ImageDraw, label: str, box: list[int], bg: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if label == "golden sun":
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        for k in range(8):  # rays
            a = k * math.pi / 4
            d.line([cx + 0.55 * r * math.cos(a), cy + 0.55 * r * math.sin(a), cx + r * math.cos(a),
                    cy + r * math.sin(a)], fill=GOLD, width=2)  # fmt: skip
        d.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=GOLD)
    else:  # a crescent: a disc with a background-coloured disc cut out of its right side
        w = x1 - x0
        d.ellipse(box, fill=PURPLE)
        d.ellipse([x0 + 0.35 * w, y0 - 0.1 * w, x1 + 0.35 * w, y1 - 0.1 * w], fill=bg)


def scene(rng: random.Random) -> dict:
    labels = rng.sample(list(ZH), rng.choice([1, 2]))
    bg = rng.choice(["white", "black"])
    boxes = []
    for i, _ in enumerate(labels):  # two objects: the first in the left half, the second in the right half
        s = rng.randint(16, 28)
        lo, hi = (
            (0, CANVAS - s) if len(labels) == 1 else ((0, CANVAS // 2 - s) if i == 0 else (CANVAS // 2, CANVAS - s))
        )
        x, y = rng.randint(lo, max(lo, hi)), rng.randint(0, CANVAS - s)
        boxes.append([x, y, x + s, y + s])
    if len(labels) == 1:
        en, zh = f"a {labels[0]}", f"一个{ZH[labels[0]]}"
    else:
        en, zh = f"a {labels[0]} left of a {labels[1]}", f"{ZH[labels[0]]}在{ZH[labels[1]]}左边"
    if bg == "black":
        en, zh = f"{en} on a black background", f"黑色背景上，{zh}"
    return {"text": en, "text_zh": zh, "background": bg, "canvas": CANVAS,
            "objects": [{"label": lab, "box": box} for lab, box in zip(labels, boxes, strict=True)]}  # fmt: skip


def write_folder(out: Path, num: int = 400, seed: int = 0) -> Path:
    """Write ``num`` images and their ``metadata.jsonl`` to ``out`` (a new or empty folder); returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(num):
        row = scene(rng)
        bg = (255, 255, 255) if row["background"] == "white" else (0, 0, 0)
        img = Image.new("RGB", (CANVAS, CANVAS), bg)
        for o in row["objects"]:
            draw(ImageDraw.Draw(img), o["label"], o["box"], bg)
        img.save(out / f"{i:04d}.png")
        rows.append(json.dumps({"file_name": f"{i:04d}.png", **row}, ensure_ascii=False))
    (out / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the folder to write")
    ap.add_argument("--num", type=int, default=400, help="how many images (default 400)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.num < 1:
        ap.error("--num must be at least 1")
    print(write_folder(args.out, args.num, args.seed))


if __name__ == "__main__":
    main()
