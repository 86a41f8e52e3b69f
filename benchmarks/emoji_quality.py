"""Quality of the Emoji World model beyond the benchmark's pass rates: FID/KID and CLIP score in the features of a
CLIP trained on real emoji art, that CLIP's zero-shot naming and retrieval, diversity, and a failure grid.

    python benchmarks/emoji_quality.py [--model models/emoji-default] [--clip DIR] [--threads 2] [--no-write]

- **FID / KID** of the images generated for the 450 benchmark prompts (seed i, the model's own settings) against
  real renders of the same prompts (a random scene satisfying each, ``scene_from_spec``), in the image features of
  the model's CLIP; beside it the same figure for a second, independent set of real renders (real vs real: what
  "as good as real" reads as in these features) and for the prompts' renders against shuffled prompts' renders.
- **CLIP score** (100 x max(cos, 0)) of generated images and of real renders against their prompts.
- **Zero-shot naming**: held-out renders of one emoji (train pool); the CLIP picks its name among every emoji name
  the model knows ("a NAME" / "一MEASURE NAME"); top-1. **Retrieval**: each held-out scene's caption picks its image
  among 200; top-1.
- **Diversity**: 16 seeds of each open prompt (one emoji, no style, size or place stated: the ``single`` benchmark
  prompts with no style) -> distinct layouts per prompt (target >= 6), and the share of prompts whose 16 layouts
  use both styles, over the prompts whose emoji the training pool draws in both (an emoji held out in one style has
  no label for it: its other style is the ``style_held_out`` category's test, not this one's).
- **Failure grid** of the weakest benchmark category per language (``style_held_out`` aside, reported apart):
  ``docs/emoji_failures_<lang>.png``.

Writes the "emoji-quality" section of BENCHMARKS.md (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path

import torch
from _report import write_section
from planned_quality import failure_grid

from lvg import load_pipeline
from lvg.eval.metrics import frechet_distance, kernel_inception_distance
from lvg.eval.shapes import evaluate_generation
from lvg.images import images_to_tensor
from lvg.worlds import get_world
from lvg.worlds.emoji.benchmark import scene_from_spec

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 7_000_005


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/emoji-default")
    ap.add_argument("--clip", default=None, help="a CLIP folder (default: the model's clip/)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only: write neither BENCHMARKS.md nor the grids")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pipe = load_pipeline(args.model)
    clip = pipe.clip
    if args.clip:
        from lvg.models.clip import ShapesClip

        clip = ShapesClip.from_pretrained(args.clip)
    if clip is None:
        raise SystemExit(f"{args.model} has no clip/ component; give --clip DIR")
    clip.eval()
    feats = lambda x: torch.cat([clip.encode_image(x[i : i + 256]).float() for i in range(0, len(x), 256)])  # noqa: E731
    world = get_world("emoji")
    from lvg.worlds.emoji.plugin import load_emoji_world

    ew = load_emoji_world()
    table = ew.table
    prompts = world.benchmark_prompts()
    real = [images_to_tensor([world.render(scene_from_spec(r["spec"], random.Random(f"lvg-real:{k}:{i}")))
                              for i, r in enumerate(prompts)]) for k in (0, 1)]  # fmt: skip
    real_f = [feats(x) for x in real]
    lines = ["| measure | EN | ZH |", "|---|---|---|"]
    res: dict[str, dict] = {}
    cfg = pipe.generation_config.replace(seed=0)
    for lang in ("en", "zh"):
        gen = evaluate_generation(pipe, prompts, lang, cfg, keep_images=True, referee=world.judge)
        fake = images_to_tensor([r["image"] for r in gen.rows])
        fake_f = feats(fake)
        cats = gen.categories
        weakest = min((c for c in cats if c != "style_held_out"), key=cats.get)  # (held-out pairs: reported apart)
        fails = [{"image": r["image"], "prompt": r["prompt"], "reason": r["reason"]}
                 for r in gen.rows if r["category"] == weakest and not r["passed"]]  # fmt: skip
        if not args.no_write:  # (--no-write: nothing in docs/ or BENCHMARKS.md changes)
            failure_grid(fails[:16], f"{lang.upper()}: failures of the weakest category ({weakest})").save(
                ROOT / "docs" / f"emoji_failures_{lang}.png")  # fmt: skip
        texts = [r[lang] for r in prompts]
        res[lang] = {
            "whole": gen.overall,
            "weakest": f"{weakest} ({cats[weakest]:.0%})",
            "fid": frechet_distance(real_f[0], fake_f),
            "kid": kernel_inception_distance(real_f[0], fake_f, subset_size=200)[0],
            "clip_gen": float(clip.clip_score(fake, texts).mean()),
            "clip_real": float(clip.clip_score(real[0], texts).mean()),
        }
    rr_fid = frechet_distance(real_f[0], real_f[1])
    rr_kid = kernel_inception_distance(real_f[0], real_f[1], subset_size=200)[0]
    perm = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(0))
    shuf_fid = frechet_distance(real_f[0], real_f[0][perm])  # same images, order only: FID ignores pairing
    # zero-shot naming of one-emoji held-out renders among every name the model knows
    known = sorted({e for e, _ in _pairs(table)})
    rng = random.Random(f"lvg-emoji-zeroshot:{HELD_OUT_SEED}")
    from lvg.worlds.emoji.scenes import EmojiObj, EmojiScene

    singles = []
    for _ in range(300):
        name, style = rng.choice(_pairs(table))
        cell = rng.choice([(r, c) for r in range(3) for c in range(3)])
        singles.append(EmojiScene((EmojiObj(name, style, rng.choice(("small", "large")), cell),),
                                  rng.choice(("white", "black"))))  # fmt: skip
    imgs = images_to_tensor([world.render(s) for s in singles])
    zs = {}
    with torch.inference_mode():
        img_e = torch.nn.functional.normalize(clip.encode_image(imgs).float(), dim=-1)
        for lang in ("en", "zh"):
            cands = [f"{table.get(n).article or 'a'} {n}" if lang == "en" else f"一{table.get(n).measure}{table.get(n).zh}"
                     for n in known]  # fmt: skip
            txt_e = torch.cat([clip.encode_text(cands[i : i + 256]).float() for i in range(0, len(cands), 256)])
            txt_e = torch.nn.functional.normalize(txt_e, dim=-1)
            pick = (img_e @ txt_e.T).argmax(1)
            zs[lang] = sum(known[int(p)] == s.objects[0].emoji for p, s in zip(pick, singles)) / len(singles)
        held = ew.held_out_samples(200, HELD_OUT_SEED, "train")
        h_img = torch.nn.functional.normalize(clip.encode_image(images_to_tensor([s.image for s in held])).float(), -1)
        ret = {}
        for lang in ("en", "zh"):
            h_txt = torch.nn.functional.normalize(clip.encode_text([getattr(s, lang) for s in held]).float(), dim=-1)
            ret[lang] = float(((h_txt @ h_img.T).argmax(1) == torch.arange(len(held))).float().mean())
    # diversity: 16 seeds of open prompts
    open_rows = [r for r in prompts if r["category"] == "single"
                 and not any(k in g for g in r["spec"]["groups"] for k in ("style", "size", "cell"))]  # fmt: skip
    trained_styles = Counter(e for e, _s in _pairs(ew.table))
    div = {}
    for lang in ("en", "zh"):
        distinct, both = [], []
        for r in open_rows:
            lays = pipe.plan(r[lang], cfg.replace(num_images=16))
            distinct.append(len({repr(lay.to_dict()) for lay in lays}))
            if trained_styles[r["spec"]["groups"][0]["emoji"]] == 2:  # (one style only: no label for the other)
                styles = {o.label.rsplit(" (", 1)[1] for lay in lays for o in lay.objects if " (" in o.label}
                both.append(len(styles) == 2)
        div[lang] = (sum(distinct) / len(distinct), sum(d >= 6 for d in distinct) / len(distinct),
                     sum(both) / len(both), len(open_rows), len(both))  # fmt: skip
    en, zh = res["en"], res["zh"]
    lines += [
        f"| whole prompt right (referee; 450 prompts) | {en['whole']:.1%} | {zh['whole']:.1%} |",
        f"| weakest category (besides style_held_out) | {en['weakest']} | {zh['weakest']} |",
        f"| FID, generated vs real renders of the same prompts | {en['fid']:.3f} | {zh['fid']:.3f} |",
        f"| KID (mean of subsets), generated vs real | {en['kid']:.4f} | {zh['kid']:.4f} |",
        f"| FID / KID, real vs real (a second set of renders) | {rr_fid:.3f} / {rr_kid:.4f} | (same) |",
        f"| CLIP score: generated / real renders | {en['clip_gen']:.1f} / {en['clip_real']:.1f} | "
        f"{zh['clip_gen']:.1f} / {zh['clip_real']:.1f} |",
        f"| CLIP zero-shot naming, one emoji among {len(known)} names (300 renders) | {zs['en']:.1%} | {zs['zh']:.1%} |",
        f"| CLIP retrieval, caption -> image among 200 held-out scenes | {ret['en']:.1%} | {ret['zh']:.1%} |",
        f"| diversity: distinct layouts of 16 seeds, mean ({div['en'][3]} open prompts) | {div['en'][0]:.1f} | "
        f"{div['zh'][0]:.1f} |",
        f"| ... prompts with >= 6 distinct layouts (target: all) | {div['en'][1]:.0%} | {div['zh'][1]:.0%} |",
        f"| ... prompts whose 16 layouts use both styles ({div['en'][4]} whose emoji trains in both) | "
        f"{div['en'][2]:.0%} | {div['zh'][2]:.0%} |",
    ]
    body = "\n".join([
        f"Emoji World quality of `{args.model}` (`python benchmarks/emoji_quality.py`; seed i for prompt i, the "
        f"model's own settings; features: the model's CLIP image tower, trained on real emoji art, not Inception; "
        f"{time.perf_counter() - t0:.0f} s). FID of the same real set against itself in another order: "
        f"{shuf_fid:.3f} (a sanity check: 0 up to float error). Failure grids: `docs/emoji_failures_en.png`, "
        "`docs/emoji_failures_zh.png`.", "", *lines])  # fmt: skip
    print(body)
    if not args.no_write:
        write_section("emoji-quality", body)


def _pairs(table) -> list[tuple[str, str]]:
    from lvg.worlds.emoji.scenes import pool_choices

    return pool_choices(table, "train")


if __name__ == "__main__":
    main()
