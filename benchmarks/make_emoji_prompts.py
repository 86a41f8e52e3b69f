"""Regenerate benchmarks/emoji_prompts.jsonl, the public Emoji World benchmark prompts (EN and ZH).

    python benchmarks/make_emoji_prompts.py [--per-category 50] [--seed 0]

Needs the emoji cache (fetched with npm once; see docs/emoji-world.md). Seeded: the same arguments and concept table
always produce the same file.
"""

import argparse
from pathlib import Path

from lvg.worlds.emoji.benchmark import make_prompts
from lvg.worlds.emoji.world import EmojiWorld
from lvg.worlds.shapes.benchmark import write_prompts

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-category", type=int, default=50, help="prompts per category (default 50)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("emoji_prompts.jsonl"))
    args = ap.parse_args()
    rows = make_prompts(EmojiWorld.load().table, args.per_category, args.seed)
    print(f"wrote {len(rows)} prompts to {write_prompts(args.out, rows)}")
