"""Does `lvg augment` data help a small downstream model? Real-only against real + generated, on real held-out renders.

    python benchmarks/augment_lift.py [--model models/shapes-default] [--real 50 200 1000] [--generated 1000]
                                      [--seeds 3] [--steps 600] [--threads 1]

The downstream model is a small CNN that names the words of every object label in a Shapes World image (multi-label
over the label words: 8 colours and 6 shapes; "which colours and which shapes are in it"). For each K real images
(Shapes World renders from a training stream, seed 100 + run) it trains twice with the same seed and steps: on the
K real images alone, and on them plus N images `lvg augment` wrote (their labels from the planner's layouts, as
the folder stores them). Scored on 1,000 held-out renders (the held-out stream, never trained on): the share whose
predicted word set is exactly right. Mean and standard deviation over the seeds. Writes BENCHMARKS.md's
"augment-lift" section.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _report import write_section
from torch import nn

from lvg.images import images_to_tensor
from lvg.pipelines import load_pipeline
from lvg.pipelines.augment import augment
from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_samples
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_LABELS, layout_from_scene

WORDS = sorted({w for label in SHAPES_WORLD_LABELS for w in label.split()})


def targets(labels: list[list[str]]) -> torch.Tensor:
    """Multi-hot [N, len(WORDS)] of the words of each image's object labels."""
    t = torch.zeros(len(labels), len(WORDS))
    for i, labs in enumerate(labels):
        for lab in labs:
            for w in lab.split():
                t[i, WORDS.index(w)] = 1
    return t


def real_set(num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    samples = held_out_samples(num, seed)
    labels = [[o.label for o in layout_from_scene(s.scene).objects] for s in samples]
    return images_to_tensor([s.image for s in samples]), targets(labels)


def classifier() -> nn.Module:
    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1), nn.GroupNorm(8, o), nn.SiLU())

    return nn.Sequential(block(3, 32), block(32, 64), block(64, 96), block(96, 128), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(128, len(WORDS)))  # fmt: skip


def train_and_score(x: torch.Tensor, y: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor], seed: int,
                    steps: int, batch: int = 64) -> float:  # fmt: skip
    torch.manual_seed(seed)
    net = classifier()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        xb = x[idx].float() / 127.5 - 1
        flip = torch.rand(batch, generator=g) < 0.5  # no label changes under a horizontal flip
        xb[flip] = xb[flip].flip(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(net(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        tx, ty = test
        pred = torch.cat([net(tx[i : i + 256].float() / 127.5 - 1) for i in range(0, len(tx), 256)]) > 0
    return float((pred == ty.bool()).all(1).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="planned model with a reader (default: the shipped model)")
    ap.add_argument("--real", type=int, nargs="+", default=[50, 200, 1000], help="real training images K")
    ap.add_argument("--generated", type=int, default=1000, help="generated images N added to them")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600, help="classifier optimizer steps (batch 64)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    test = real_set(1000, HELD_OUT_SEED)  # the held-out stream
    pipe = load_pipeline(args.model)
    gen = augment(pipe, args.generated, seed=0, progress=True)
    gx = images_to_tensor([s.image for s in gen])
    gy = targets([[o.label for o in s.layout.objects] for s in gen])
    rows = []
    for k in args.real:
        scores: dict[str, list[float]] = {"real": [], "real + generated": []}
        for s in range(args.seeds):
            rx, ry = real_set(k, 100 + s)
            scores["real"].append(train_and_score(rx, ry, test, s, args.steps))
            scores["real + generated"].append(
                train_and_score(torch.cat([rx, gx]), torch.cat([ry, gy]), test, s, args.steps)
            )
            print(k, s, {n: v[-1] for n, v in scores.items()}, flush=True)
        rows.append((k, *(scores[n] for n in ("real", "real + generated"))))
    only_gen = [train_and_score(gx, gy, test, s, args.steps) for s in range(args.seeds)]

    def ms(v: list[float]) -> str:
        return (
            f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}%" if len(v) > 1 else f"{100 * v[0]:.1f}%"
        )

    lines = [
        f"`python benchmarks/augment_lift.py --real {' '.join(map(str, args.real))} --generated {args.generated} "
        f"--seeds {args.seeds} --steps {args.steps}` (model: {args.model or 'the shipped model'}): a small CNN names "
        f"the label words (colours and shapes) of every object in an image; exact-set accuracy on 1,000 held-out "
        f"Shapes World renders, mean ± std over {args.seeds} seeds; {args.steps} steps of batch 64 in every run. "
        f"Generated: {args.generated} images from `lvg augment` (labels from the planner's layouts). "
        f"{time.perf_counter() - t0:.0f} s on {args.threads} thread(s).",
        "",
        "| real images K | real only | real + generated | lift |",
        "|---|---|---|---|",
    ]
    for k, a, b in rows:
        lift = 100 * (statistics.mean(b) - statistics.mean(a))
        lines.append(f"| {k} | {ms(a)} | {ms(b)} | {lift:+.1f} points |")
    lines.append(f"| 0 (generated only) | | {ms(only_gen)} | |")
    write_section("augment-lift", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
