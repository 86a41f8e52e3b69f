"""Regenerate benchmarks/shapes_prompts.jsonl, the public Shapes World benchmark prompts.

    python benchmarks/make_shapes_prompts.py [--per-category 50] [--seed 0]

Seeded: the same arguments always produce the same file (a test checks the committed copy).
"""

import argparse
from pathlib import Path

from lvg.worlds.shapes.benchmark import make_prompts, write_prompts

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-category", type=int, default=50, help="prompts per category (default 50)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("shapes_prompts.jsonl"))
    args = ap.parse_args()
    rows = make_prompts(args.per_category, args.seed)
    print(f"wrote {len(rows)} prompts to {write_prompts(args.out, rows)}")
