"""Validate Emoji World's pixel referee on real renders (the numbers in docs/emoji-world.md, "Referee").

    python benchmarks/emoji_referee.py [--prompts benchmarks/emoji_prompts.jsonl] [--random 1000] [--repeat 1]

For every benchmark prompt (``--repeat`` renders each) and ``--random`` held-out scene captions, a scene satisfying
it is rendered with the real sprites, at three levels: clean, soft (blur 0.8 px, noise 6/255) and harsh (blur 0.8,
noise 10/255, as Shapes World's judge was checked). Prints the pass rate on the own prompt, the fail rate on a
mismatched prompt (false accepts against the symbolic truth), the agreement with the truth on near misses (one thing
changed), per-object naming / style / size accuracy by size, and the stress test (``--stress`` single emoji at
sides between the sizes, blurred, noisy, half JPEG-compressed). Needs the emoji cache (npm, once).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lvg.worlds.emoji.benchmark import load_prompts
from lvg.worlds.emoji.referee import SHIPPED_CLASSIFIER, Referee
from lvg.worlds.emoji.referee_check import stress_objects, validate_referee
from lvg.worlds.emoji.world import EmojiWorld

LEVELS = {"clean": (0.0, 0.0), "soft": (6.0, 0.8), "harsh": (10.0, 0.8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=Path, default=Path(__file__).with_name("emoji_prompts.jsonl"))
    ap.add_argument("--random", type=int, default=1000, help="held-out random scene captions (default 1000)")
    ap.add_argument("--repeat", type=int, default=1, help="renders per benchmark prompt (default 1)")
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--stress", type=int, default=1500, help="single emoji for the stress test (default 1500)")
    ap.add_argument("--classifier", type=Path, default=SHIPPED_CLASSIFIER, help="classifier folder (default: shipped)")
    ap.add_argument("--matcher", action="store_true", help="name emoji with the nearest-sprite matcher only")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    world = EmojiWorld.load()
    use_net = not args.matcher and (args.classifier / "config.json").is_file()
    referee = Referee.for_world(world, args.classifier if use_net else None)
    print(f"naming with {'the classifier in ' + str(args.classifier) if use_net else 'the nearest-sprite matcher'}")
    t = time.perf_counter()
    for bg in ("white", "black"):
        referee.references(bg)
    print(f"references built in {time.perf_counter() - t:.1f} s")
    rows = load_prompts(args.prompts, world.table) * args.repeat
    sets = {"benchmark": ([r["spec"] for r in rows], [r["category"] for r in rows])}
    if args.random:
        held = world.held_out_samples(args.random)
        sets["random"] = ([s.spec for s in held], None)
    out = {}
    for level in args.levels:
        noise, blur = LEVELS[level]
        for name, (specs, cats) in sets.items():
            t = time.perf_counter()
            r = validate_referee(referee, specs, seed=0, noise=noise, blur=blur, categories=cats)
            r["seconds"] = time.perf_counter() - t
            out[f"{level}/{name}"] = r
            print(f"{level:5s} {name:9s} n={r['num']}: own prompt passes {r['correct_pass_rate']:.4f}, mismatched "
                  f"fails {r['mismatched_fail_rate']:.4f} (truth {1 - r['mismatched_truth_rate']:.4f}, false accepts "
                  f"{r['mismatched_false_accepts']}), {1e3 * r['seconds'] / r['num'] / 2:.1f} ms/judgement")  # fmt: skip
            print(f"      near miss: agreement {r['near_miss_agreement']:.4f} (truth passes "
                  f"{r['near_miss_truth_rate']:.4f}), false accepts {r['near_miss_false_accepts']}, false rejects "
                  f"{r['near_miss_false_rejects']}")  # fmt: skip
            for z, m in r["objects"].items():
                print(f"      {z:5s} objects {m['objects']}: found {m['found']:.4f} emoji {m['emoji']:.4f} "
                      f"emoji+style {m['style']:.4f} size {m['size']:.4f}")  # fmt: skip
            if cats is not None:
                print(
                    "      by category: "
                    + ", ".join(f"{c} {v:.3f}" for c, v in r["correct_pass_rate_by_category"].items())
                )
            for f in r["failures"][:3]:
                print(f"      failure: {f['reason']}  spec={json.dumps(f['spec'], ensure_ascii=False)}")
    if args.stress:
        r = stress_objects(referee, args.stress)
        out["stress"] = r
        print(
            f"stress n={args.stress}: found alone {r['alone']:.4f}, emoji {r['emoji']:.4f}, emoji+style {r['style']:.4f}"
        )
        for side, m in r["by_side"].items():
            print(f"      {side} px: emoji {m['emoji']:.4f} emoji+style {m['style']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
