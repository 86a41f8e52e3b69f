"""``lvg`` command line. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lvg import __version__


def _data_shapes(args: argparse.Namespace) -> int:
    from lvg.data.imagefolder import write_imagefolder

    out = write_imagefolder(args.out, args.num, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {args.num} images and metadata.jsonl to {out}")
    return 0


def _data_preview(args: argparse.Namespace) -> int:
    from lvg.data.imagefolder import preview_grid

    args.out.parent.mkdir(parents=True, exist_ok=True)
    preview_grid(args.num, seed=args.seed, cols=args.cols, scale=args.scale).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from lvg.data.parse import parse_caption

    print(json.dumps(parse_caption(args.caption, args.lang), ensure_ascii=False))
    return 0


def _judge(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from lvg.data.parse import parse_caption
    from lvg.data.spec import normalize_spec
    from lvg.eval.judge import judge

    spec = parse_caption(args.prompt) if args.prompt is not None else normalize_spec(json.loads(args.spec))
    failed = 0
    for path in args.images:
        try:
            with Image.open(path) as im:
                v = judge(im, spec)
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"cannot read image {path}: {e}") from None
        failed += not v.passed
        seen = ", ".join(
            f"{o.size or '?'} {o.color or '?'} {o.shape or 'unknown'} @{list(o.cell)}" for o in v.reading.objects
        )
        print(f"{'PASS' if v.passed else 'FAIL'}\t{path}\t{v.reason}\tbg={v.reading.bg}\t[{seen}]")
    return 1 if failed else 0


def _train_text_tokenizer(args: argparse.Namespace) -> int:
    from lvg.tokenizers.text import save_text_tokenizer, train_text_tokenizer

    tok = train_text_tokenizer(args.num_scenes, args.vocab_size, args.seed)
    save_text_tokenizer(tok, args.out)
    print(f"trained a byte-level BPE with {len(tok)} tokens; saved to {args.out}")
    return 0


def _train_tokenizer(args: argparse.Namespace) -> int:
    from lvg.train.config import load_config
    from lvg.train.tokenizer import TokenizerTrainingConfig, train_tokenizer

    cfg = load_config(TokenizerTrainingConfig, args.config, args.overrides)
    path = train_tokenizer(cfg, resume=args.resume, stop_after=args.stop_after)
    print(f"saved the image tokenizer to {path}")
    return 0


def _eval_tokenizer(args: argparse.Namespace) -> int:
    from lvg.eval.recon import evaluate_tokenizer
    from lvg.tokenizers.image import ImageTokenizer

    metrics = evaluate_tokenizer(ImageTokenizer.from_pretrained(args.model), num=args.num)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvg",
        description="lvg: LLM visual generation. Text -> LLM -> image tokens -> image, and back, "
        "trained on the built-in Shapes World.",
    )
    p.add_argument("--version", action="version", version=f"lvg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser(
        "data", help="Shapes World data: write datasets, preview samples", description="Shapes World data tools."
    )
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    d = dsub.add_parser(
        "shapes",
        help="render N scenes as a Hugging Face imagefolder",
        description="Render N seeded Shapes World scenes to DIR as PNG files plus metadata.jsonl "
        "(file_name, text = canonical English, text_zh = canonical Chinese, spec = what text "
        "states). Load it with datasets.load_dataset('imagefolder', data_dir=DIR).",
    )
    d.add_argument("--num", type=int, required=True, help="number of images to write")
    d.add_argument("--out", type=Path, required=True, help="output directory (created; must be empty)")
    d.add_argument(
        "--seed", type=int, default=0, help="stream seed; item i is a pure function of (seed, i) (default 0)"
    )
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    d.set_defaults(func=_data_shapes)
    d = dsub.add_parser(
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

    d = sub.add_parser(
        "parse",
        help="parse a canonical caption into its structured spec (JSON)",
        description="Parse a canonical Shapes World caption (English or Chinese) and print the "
        "structured spec as JSON. Exits with status 2 and names the unreadable span otherwise.",
    )
    d.add_argument("caption", help="the caption, e.g. 'a small red circle to the left of a large blue square'")
    d.add_argument("--lang", choices=["en", "zh"], default=None, help="language (default: detect)")
    d.set_defaults(func=_parse)

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

    train = sub.add_parser("train", help="train lvg components", description="Train lvg components.")
    tsub = train.add_subparsers(dest="train_command", metavar="COMPONENT", required=True)
    d = tsub.add_parser(
        "text-tokenizer",
        help="train the byte-level BPE caption tokenizer",
        description="Train a byte-level BPE (Hugging Face tokenizers) on Shapes World captions in "
        "English and Chinese, with lvg's special tokens; save tokenizer.json + config to OUT.",
    )
    d.add_argument("--out", type=Path, required=True, help="output directory")
    d.add_argument("--num-scenes", type=int, default=50_000, help="scenes to caption for training (default 50000)")
    d.add_argument("--vocab-size", type=int, default=1024, help="maximum vocabulary size (default 1024)")
    d.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    d.set_defaults(func=_train_text_tokenizer)
    d = tsub.add_parser(
        "tokenizer",
        help="train the image tokenizer (VQ/FSQ autoencoder) on Shapes World",
        description="Train the image tokenizer on the infinite Shapes World stream. Settings come from the "
        "dataclass defaults, then --config YAML, then KEY=VALUE overrides (e.g. train.steps=2000 "
        "model.quantizer=vq). Writes OUT/checkpoint (atomic, resumable), OUT/tb (TensorBoard), "
        "OUT/metrics.jsonl and, at the end, OUT/image_tokenizer (config.json + model.safetensors). "
        "Ctrl-C saves a checkpoint first.",
    )
    d.add_argument("--config", type=Path, help="YAML config (e.g. configs/tokenizer-shapes.yaml)")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    d.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="stop this run after N more steps (checkpointed); continue later with --resume",
    )
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.batch_size=64")
    d.set_defaults(func=_train_tokenizer)

    ev = sub.add_parser("eval", help="evaluate lvg components", description="Evaluate lvg components.")
    esub = ev.add_subparsers(dest="eval_command", metavar="COMPONENT", required=True)
    d = esub.add_parser(
        "tokenizer",
        help="reconstruction quality of an image tokenizer",
        description="PSNR and SSIM on held-out Shapes World renders, codebook use (fraction, perplexity) "
        "and the pixel judge's acceptance of benchmark scenes after a round trip. Prints JSON.",
    )
    d.add_argument("--model", type=Path, required=True, help="image tokenizer folder (config.json + model.safetensors)")
    d.add_argument("--num", type=int, default=1000, help="held-out renders (default 1000)")
    d.set_defaults(func=_eval_tokenizer)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lvg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        print(f"lvg: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
