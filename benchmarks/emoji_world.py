"""Emoji World: are small emoji recognisable at a given size, and how fast are scenes rendered?

Recognisability is measured with a nearest-sprite classifier, as in the field notes: every (emoji, style) pair of
the concept table is rendered alone at side ``s`` on each background, its box is cropped and resized to 24 x 24
(bilinear), and compared (L2) with every real sprite composited on the same background at 24 x 24; the nearest names
the emoji and the style. ``clean`` uses the render as it is; ``soft`` blurs it (Gaussian, sigma 0.8 px), adds
Gaussian noise (sigma 6/255), which brings the crop to about the PSNR of the image tokenizer probe's reconstructions
(~27 dB on whole scenes; the crop PSNR is printed): it stands for what a model's output would keep. Needs the real cache (npm, once).

    python benchmarks/emoji_world.py [--sizes 10 12 14 16 20 24 30] [--scenes 2000]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from PIL import Image, ImageFilter

from lvg.worlds.emoji.assets import ensure_assets
from lvg.worlds.emoji.concepts import STYLES, build_concepts
from lvg.worlds.emoji.scenes import BACKGROUNDS, SceneConfig, SpriteBank, composite, render, sample_scene

REF = 24


def _on_bg(sprite: np.ndarray, bg: str) -> np.ndarray:
    img = np.empty(sprite.shape[:2] + (3,), np.float32)
    img[:] = np.asarray(BACKGROUNDS[bg], np.float32) / 255.0
    composite(img, sprite, 0, 0)
    return img


def _to_ref(rgb: np.ndarray) -> np.ndarray:
    im = Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).resize((REF, REF), Image.BILINEAR)
    return np.asarray(im, np.float32).reshape(-1) / 255.0


def _soften(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    im = Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    out = np.asarray(im, np.float32) / 255.0 + rng.normal(0, 6 / 255, rgb.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def recognisability(bank: SpriteBank, sizes: list[int], canvas: int = 96) -> list[dict]:
    pairs = [(c.en, s) for c in bank.table for s in STYLES]
    rows = []
    rng = np.random.default_rng(0)
    for bg in BACKGROUNDS:
        refs = np.stack([_to_ref(_on_bg(bank.resized(e, s, 64), bg)) for e, s in pairs])
        for side in sizes:
            for mode in ("clean", "soft"):
                hit_e = hit_es = 0
                psnr = []
                for k, (e, s) in enumerate(pairs):
                    img = np.empty((canvas, canvas, 3), np.float32)
                    img[:] = np.asarray(BACKGROUNDS[bg], np.float32) / 255.0
                    x0 = y0 = (canvas - side) // 2
                    composite(img, bank.resized(e, s, side), x0, y0)
                    if mode == "soft":
                        soft = _soften(img, rng)
                        crop = (slice(y0, y0 + side), slice(x0, x0 + side))
                        psnr.append(10 * np.log10(1.0 / max(float(np.mean((soft[crop] - img[crop]) ** 2)), 1e-12)))
                        img = soft
                    q = _to_ref(img[y0 : y0 + side, x0 : x0 + side])
                    j = int(np.argmin(((refs - q) ** 2).sum(1)))
                    hit_e += pairs[j][0] == e
                    hit_es += j == k
                rows.append({"bg": bg, "side": side, "mode": mode, "emoji": hit_e / len(pairs),
                             "emoji+style": hit_es / len(pairs), "psnr": float(np.mean(psnr)) if psnr else None})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 12, 14, 16, 20, 24])
    ap.add_argument("--scenes", type=int, default=2000)
    args = ap.parse_args()
    assets = ensure_assets()
    t = time.perf_counter()
    table = build_concepts(assets)
    print(f"concepts: {len(table)} (built in {time.perf_counter() - t:.2f} s)")
    bank = SpriteBank(assets, table)
    for r in recognisability(bank, args.sizes):
        p = f", PSNR {r['psnr']:.1f} dB" if r["psnr"] else ""
        print(
            f"{r['bg']:5s} s={r['side']:2d} {r['mode']:5s}: emoji {r['emoji']:.3f}  emoji+style {r['emoji+style']:.3f}{p}"
        )
    for canvas in (64, 96):
        cfg = SceneConfig(canvas=canvas, pool="all")
        bank = SpriteBank(assets, table)
        t = time.perf_counter()
        for i in range(args.scenes):
            render(sample_scene(random.Random(i), table, cfg), bank)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(args.scenes):
            render(sample_scene(random.Random(i), table, cfg), bank)
        warm = time.perf_counter() - t
        print(f"canvas {canvas}: {1e3 * cold / args.scenes:.3f} ms/scene first pass (sprites read and resized), "
              f"{1e3 * warm / args.scenes:.3f} ms/scene with the sprite cache warm")  # fmt: skip


if __name__ == "__main__":
    main()
