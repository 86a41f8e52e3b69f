"""Quality of a Shapes World CLIP on held-out renders: zero-shot top-1 and text->image retrieval top-1.

    python benchmarks/clip_quality.py [--model models/shapes-default/clip] [--num 1000]

Held-out renders come from a stream seed training never uses; captions are complete and canonical, in English
or Chinese as the stream draws them. Zero-shot: each render's caption
against 9 complete captions of other scenes (chance 10%). Retrieval: each complete caption against all
`--num` renders (chance 1/num). Writes the "clip-quality" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _report import write_section

from lvg.eval.clip_eval import retrieval_top1, zero_shot_accuracy
from lvg.models.clip import ShapesClip

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "shapes-default" / "clip")
    ap.add_argument("--num", type=int, default=1000, help="held-out renders (default 1000)")
    args = ap.parse_args()
    clip = ShapesClip.from_pretrained(args.model)
    t = time.time()
    zs = zero_shot_accuracy(clip, args.num, num_candidates=10)
    rt = retrieval_top1(clip, args.num)
    params = sum(p.numel() for p in clip.parameters())
    body = f"""## Shapes World CLIP (`python benchmarks/clip_quality.py`)

Model `{args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model}` ({params:,} parameters),
{args.num:,} held-out renders (stream seed never used in training), complete canonical captions (English or
Chinese, half each on average, as the stream draws them):

| task | top-1 | chance |
|---|---|---|
| zero-shot: the right caption among {zs["num_candidates"]} | **{zs["accuracy"]:.1%}** | {zs["chance"]:.1%} |
| text -> image retrieval among {rt["n"]:,} renders | **{rt["top1"]:.1%}** | {rt["chance"]:.2%} |

(evaluation took {time.time() - t:.0f} s on CPU)
"""
    write_section("clip-quality", body)
    print(body)


if __name__ == "__main__":
    main()
