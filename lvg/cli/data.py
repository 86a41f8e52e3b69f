"""``lvg data shapes|emoji|preview``, ``lvg parse`` and ``lvg judge``: the worlds' data and referee tools."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import Subparsers, group

# lvg.worlds.emoji.concepts' ALL_CATEGORIES and DEFAULT_CATEGORIES, written out so that building the parser imports no
# world (tests/test_emoji_cli.py checks that they agree)
EMOJI_CATEGORIES = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
                    "Activities", "Objects", "Symbols", "Flags")  # fmt: skip
EMOJI_DEFAULT_CATEGORIES = ("Animals & Nature", "Food & Drink")
EMOJI_POOLS = ("train", "all", "unseen", "style-held-out")  # lvg.worlds.emoji.scenes.POOLS, written out likewise


def _add_data_shapes(sub: Subparsers) -> None:
    d = sub.add_parser(
        "shapes",
        help="render N scenes as a Hugging Face imagefolder",
        description="Render N seeded Shapes World scenes to DIR as PNG files plus metadata.jsonl "
        "(file_name, text = canonical English, text_zh = canonical Chinese, spec = what text "
        "states). Load it with datasets.load_dataset('imagefolder', data_dir=DIR).",
    )
    d.add_argument("--num", type=int, required=True, help="number of images to write")
    d.add_argument("--out", type=Path, required=True, help="output directory (created; must be empty)")
    d.add_argument("--seed", type=int, default=0,
                   help="stream seed; item i is a pure function of (seed, i) (default 0)")  # fmt: skip
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    d.set_defaults(func=_data_shapes)


def _data_shapes(args: argparse.Namespace) -> int:
    from lvg.worlds.shapes.export import write_imagefolder

    out = write_imagefolder(args.out, args.num, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {args.num} images and metadata.jsonl to {out}")
    return 0


def _add_data_emoji(sub: Subparsers) -> None:
    d = sub.add_parser(
        "emoji",
        help="render N Emoji World scenes (real Twemoji/Noto art) as a Hugging Face imagefolder",
        description="Render N seeded Emoji World scenes (1-4 emoji on a 3x3 grid, two art styles) to DIR as PNG files "
        "plus metadata.jsonl (file_name, text = canonical English, text_zh = canonical Chinese, spec, background, "
        "canvas, objects = [{label, box, style}]), concepts.jsonl (the emoji, their names and held-out splits) and "
        "ATTRIBUTION.md. The art and labels come from three pinned npm packages (emoji-datasource-twitter, "
        "emoji-datasource-google, emojibase-data), fetched once with `npm pack` into the cache $LVG_HOME/emoji "
        "(default ~/.cache/lvg/emoji) and checked against pinned sha512 sums; offline, put their tarballs in "
        "$LVG_HOME/emoji/tarballs/. Licences: Twemoji graphics CC-BY 4.0, Noto Emoji Apache 2.0, emoji data and "
        "CLDR labels MIT. The images are derivative works of that art: keep ATTRIBUTION.md with them. "
        "Contract: docs/emoji-world.md.",
    )
    d.add_argument("--out", type=Path, required=True, help="output directory (created; must be empty)")
    d.add_argument("--num", type=int, default=1000, help="number of images to write (default 1000)")
    d.add_argument("--seed", type=int, default=0,
                   help="stream seed; item i is a pure function of (seed, i) and the settings (default 0)")  # fmt: skip
    d.add_argument("--canvas", type=int, choices=(64, 96), default=64, help="image side in pixels (default 64)")
    d.add_argument("--categories", nargs="+", choices=EMOJI_CATEGORIES, default=list(EMOJI_DEFAULT_CATEGORIES),
                   metavar="CATEGORY", help="emoji categories to draw from (Unicode group names, e.g. 'Food & Drink'; "
                   f"default: {' '.join(repr(c) for c in EMOJI_DEFAULT_CATEGORIES)}; "
                   f"any of: {', '.join(EMOJI_CATEGORIES)})")  # fmt: skip
    d.add_argument("--pool", choices=EMOJI_POOLS, default="train",
                   help="which emoji and styles scenes may show (docs/emoji-world.md, 'Held out'): train (default; "
                   "never the held-out emoji, style-held-out emoji only in their seen style), all, unseen (only the "
                   "emoji no training run sees) or style-held-out (only those emoji, in the style never seen)")  # fmt: skip
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    d.set_defaults(func=_data_emoji)


def _data_emoji(args: argparse.Namespace) -> int:
    from lvg.worlds.emoji.imagefolder import write_imagefolder
    from lvg.worlds.emoji.plugin import load_emoji_world

    if args.num < 1:  # before the cache is fetched
        raise ValueError(f"--num must be at least 1, got {args.num}")
    world = load_emoji_world(categories=tuple(dict.fromkeys(args.categories)), canvas=args.canvas, pool=args.pool)
    out = write_imagefolder(args.out, args.num, seed=args.seed, world=world, overwrite=args.overwrite)
    print(f"wrote {args.num} images of {len(world.table)} emoji ({args.pool} pool), metadata.jsonl, concepts.jsonl and ATTRIBUTION.md "
          f"to {out} (keep ATTRIBUTION.md with the images)")  # fmt: skip
    return 0


def _add_data_preview(sub: Subparsers) -> None:
    d = sub.add_parser(
        "preview",
        help="draw a grid of samples with their captions",
        description="Draw a PNG grid of Shapes World samples with canonical English captions.",
    )
    d.add_argument("--out", type=Path, required=True, help="output PNG file")
    d.add_argument("--num", type=int, default=12, help="number of samples (default 12)")
    d.add_argument("--cols", type=int, default=4, help="grid columns (default 4)")
    d.add_argument("--scale", type=int, default=3, help="integer upscale of each 64x64 image (default 3)")
    d.add_argument("--seed", type=int, default=0, help="stream seed (default 0)")
    d.set_defaults(func=_data_preview)


def _data_preview(args: argparse.Namespace) -> int:
    from lvg.worlds.shapes.export import preview_grid

    args.out.parent.mkdir(parents=True, exist_ok=True)
    preview_grid(args.num, seed=args.seed, cols=args.cols, scale=args.scale).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _add_parse(sub: Subparsers) -> None:
    d = sub.add_parser(
        "parse",
        help="parse a canonical caption into its structured spec (JSON)",
        description="Parse a canonical Shapes World caption (English or Chinese) and print the "
        "structured spec as JSON. Exits with status 2 and names the unreadable span otherwise.",
    )
    d.add_argument("caption", help="the caption, e.g. 'a small red circle to the left of a large blue square'")
    d.add_argument("--lang", choices=["en", "zh"], default=None, help="language (default: detect)")
    d.set_defaults(func=_parse)


def _parse(args: argparse.Namespace) -> int:
    from lvg.worlds.shapes.parse import parse_caption

    print(json.dumps(parse_caption(args.caption, args.lang), ensure_ascii=False))
    return 0


def _add_judge(sub: Subparsers) -> None:
    d = sub.add_parser(
        "judge",
        help="check images against a prompt with the pixel judge",
        description="Read each image (64x64 or an integer upscale) back into objects and decide "
        "whether it satisfies the prompt. Prints PASS/FAIL per image; exit status 1 if any fails.",
    )
    d.add_argument("images", nargs="+", type=Path, help="image files")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt", help="a canonical caption (English or Chinese)")
    g.add_argument("--spec", help="a structured spec as JSON")
    d.set_defaults(func=_judge)


def _judge(args: argparse.Namespace) -> int:
    from lvg.images import open_image
    from lvg.worlds.shapes.judge import judge
    from lvg.worlds.shapes.parse import parse_caption
    from lvg.worlds.shapes.spec import normalize_spec

    spec = parse_caption(args.prompt) if args.prompt is not None else normalize_spec(json.loads(args.spec))
    failed = 0
    for path in args.images:
        v = judge(open_image(path), spec)
        failed += not v.passed
        seen = ", ".join(
            f"{o.size or '?'} {o.color or '?'} {o.shape or 'unknown'} @{list(o.cell)}" for o in v.reading.objects
        )
        print(f"{'PASS' if v.passed else 'FAIL'}\t{path}\t{v.reason}\tbg={v.reading.bg}\t[{seen}]")
    return 1 if failed else 0


def add_data_commands(sub: Subparsers) -> None:
    """``lvg data shapes|emoji|preview``, ``lvg parse``, ``lvg judge``."""
    data = group(sub, "data", "world data: write datasets (Shapes World, Emoji World), preview samples",
                 "World data tools: Shapes World (built in) and Emoji World (real emoji art, fetched once with npm).",
                 "data_command", "SUBCOMMAND")  # fmt: skip
    _add_data_shapes(data)
    _add_data_emoji(data)
    _add_data_preview(data)
    _add_parse(sub)
    _add_judge(sub)
