"""The shipped models side by side: text -> image speed of Shapes World's default (its code painter and its GAN
painter) and Emoji World's model, in one run on this machine.

    python benchmarks/model_speed.py [--threads 2] [--repeats 3]

Times whole calls ``pipe(prompts, seed=0)`` (prompt -> planner -> layout -> painter -> pixels, the image tokenizer's
codes included), each model with its own settings: one image at batch 1 (seconds, median of ``--repeats`` calls of
8 prompts each), and images per second for 64 prompts at batch 64. Writes the "model-speed" section.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _report import write_section

import lvg

PROMPTS = {
    "shapes": ["a red circle to the left of a blue square", "两个绿色的星", "a small yellow triangle at the top",
               "a large purple cross on a black background"],
    "emoji": ["two cats to the left of a pizza", "一只猫在一块披萨的左边", "a Noto frog and a Twemoji whale",
              "three small strawberries"],
}  # fmt: skip


def measure(pipe, prompts: list[str], repeats: int) -> tuple[float, float]:
    pipe(prompts[0], seed=0)  # warm up
    one = []
    for _ in range(repeats):
        for i in range(8):
            t = time.perf_counter()
            pipe(prompts[i % len(prompts)], seed=i)
            one.append(time.perf_counter() - t)
    batch = [prompts[i % len(prompts)] for i in range(64)]
    t = time.perf_counter()
    pipe(batch, seed=0, batch_size=64)
    return statistics.median(one), 64 / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shapes = lvg.load_pipeline("shapes")
    rows = [("shapes-default (GAN painter)", shapes.use_painter("gan"), "shapes"),
            ("shapes-default, --painter code", shapes.use_painter("code"), "shapes"),
            ("emoji-default (GAN painter's generator)", lvg.load_pipeline("emoji", world="emoji"), "emoji")]  # fmt: skip
    lines = [f"torch threads: {args.threads}; whole text -> image calls, each model's own settings.", "",
             "| model | one image, batch 1 (s, median) | images/s, batch 64 |", "|---|---|---|"]  # fmt: skip
    for name, pipe, world in rows:
        one, per_s = measure(pipe, PROMPTS[world], args.repeats)
        lines.append(f"| {name} | {one:.3f} | {per_s:.1f} |")
        print(lines[-1], flush=True)
    body = "\n".join(lines)
    print(body)
    write_section("model-speed", body)


if __name__ == "__main__":
    main()
