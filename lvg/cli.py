"""``lvg`` command line. Each subcommand is a thin wrapper over a library function.

Every command is two small functions side by side: ``_add_<command>(subparsers)`` declares its flags and
``_<command>(args)`` runs it. Handlers print what library functions return; they never rewrite it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from lvg import __version__

Subparsers = Any  # argparse's private _SubParsersAction


# ---------------------------------------------------------------------- shared flags


def _training_args(d: argparse.ArgumentParser, example_config: str) -> None:
    d.add_argument("--config", type=Path, help=f"YAML config (e.g. {example_config})")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    d.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop this run after N more steps (checkpointed); continue later with --resume")  # fmt: skip
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.batch_size=64")


def _sampling_args(d: argparse.ArgumentParser) -> None:
    """``--guidance-scale``, ``--temperature``, ``--top-k``, ``--top-p``: one flag per sampling setting of
    :class:`~lvg.sampling.GenerationConfig` (its help text and type declared there), default the model's own."""
    from lvg.ranges import field_help
    from lvg.sampling.config import RANGES, SAMPLING_FIELDS, GenerationConfig

    for name in SAMPLING_FIELDS:
        d.add_argument(f"--{name.replace('_', '-')}", type=int if RANGES[name].integer else float, default=None,
                       help=f"{field_help(GenerationConfig, name)} (default: the model's own)")  # fmt: skip
    d.add_argument("--batch-size", type=int, default=32, help="images generated per forward batch (default 32)")


def _generation_config(args: argparse.Namespace, num_images: int = 1, base=None):  # -> GenerationConfig
    """The :class:`~lvg.sampling.GenerationConfig` of the flags given, over ``base`` (a loaded pipeline's own
    ``generation_config``; None: the library defaults). Called once before the model loads, so bad flags fail
    first, and again with the pipeline's defaults."""
    from lvg.sampling.config import FIELDS, SAMPLING_FIELDS, GenerationConfig, GenerationConfigError

    given = {k: getattr(args, k) for k in SAMPLING_FIELDS if getattr(args, k) is not None}
    try:
        return GenerationConfig.from_kwargs(base, num_images=num_images, seed=args.seed, rerank=args.rerank,
                                            verify=getattr(args, "verify", 0), **given)  # fmt: skip
    except GenerationConfigError as e:  # "seed must be in [0, ...]" -> "--seed must be in [0, ...]": the flag's name
        name = str(e).split(" ", 1)[0]
        raise GenerationConfigError(
            f"--{name.replace('_', '-')}{str(e)[len(name) :]}" if name in FIELDS else str(e)
        ) from None


def _model_config(args: argparse.Namespace, pipe, num_images: int = 1):  # -> GenerationConfig
    return _generation_config(args, num_images, getattr(pipe, "generation_config", None))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _check_output(path: Path) -> None:
    """Fail before generating when ``path`` cannot take an image: a folder, an unknown suffix, a file for a parent."""
    if path.is_dir():
        raise ValueError(f"-o {path} is a directory; give a file name such as {path / 'out.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"-o {path}: unknown image type {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"-o {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"-o {path}: cannot write in {parent}")
            break


def _load_pipeline(model: Path | None, clip: Path | None = None):
    """The pipeline its folder declares (default: the default model), with ``--clip DIR`` replacing any bundled CLIP."""
    from lvg.pipelines import load_pipeline
    from lvg.worlds import attach_world

    pipe = attach_world(load_pipeline(model))
    if clip is not None:
        from lvg.models.clip import ShapesClip

        pipe.clip = ShapesClip.from_pretrained(clip).to(pipe.device)
    return pipe


def _print_metrics(metrics: dict[str, Any]) -> None:
    for k, v in metrics.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


# ---------------------------------------------------------------------- lvg data


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


# ---------------------------------------------------------------------- lvg parse / judge


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


# ---------------------------------------------------------------------- lvg train


def _add_train_text_tokenizer(sub: Subparsers) -> None:
    d = sub.add_parser(
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


def _train_text_tokenizer(args: argparse.Namespace) -> int:
    from lvg.tokenizers.text import save_text_tokenizer, train_text_tokenizer
    from lvg.worlds.shapes.captions import caption_corpus

    tok = train_text_tokenizer(caption_corpus(args.num_scenes, args.seed), args.vocab_size)
    save_text_tokenizer(tok, args.out)
    print(f"trained a byte-level BPE with {len(tok)} tokens; saved to {args.out}")
    return 0


def _run_training(args: argparse.Namespace, config_cls: type, train_fn, what: str) -> int:
    """Shared by the ``train`` commands: config from YAML + overrides, then (resumable) training."""
    from lvg.train.config import load_config

    cfg = load_config(config_cls, args.config, args.overrides)
    path = train_fn(cfg, resume=args.resume, stop_after=args.stop_after)
    print(f"saved {what} to {path}")
    return 0


def _add_train_tokenizer(sub: Subparsers) -> None:
    d = sub.add_parser(
        "tokenizer",
        help="train the image tokenizer (VQ/FSQ autoencoder) on Shapes World",
        description="Train the image tokenizer on the infinite Shapes World stream. Settings come from the "
        "dataclass defaults, then --config YAML, then KEY=VALUE overrides (e.g. train.steps=2000 "
        "model.quantizer=vq). Writes OUT/checkpoint (atomic, resumable), OUT/tb (TensorBoard), "
        "OUT/metrics.jsonl and, at the end, OUT/image_tokenizer (config.json + model.safetensors). "
        "Ctrl-C saves a checkpoint first.",
    )
    _training_args(d, "configs/tokenizer-shapes.yaml")
    d.set_defaults(func=_train_tokenizer)


def _train_tokenizer(args: argparse.Namespace) -> int:
    from lvg.train.tokenizer import TokenizerTrainingConfig, train_tokenizer

    return _run_training(args, TokenizerTrainingConfig, train_tokenizer, "the image tokenizer")


def _add_train_llm(sub: Subparsers) -> None:
    d = sub.add_parser(
        "llm",
        help="train the unified text<->image LM on Shapes World",
        description="Train the unified causal LM (text -> image tokens and image -> caption) on the Shapes World "
        "stream, with a trained image tokenizer. Settings: dataclass defaults, then --config YAML, then "
        "KEY=VALUE overrides (e.g. model.preset=base train.steps=20000 model.init_from=PATH). Writes "
        "OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and, at the end, the pipeline folder OUT/pipeline.",
    )
    _training_args(d, "configs/llm-shapes.yaml")
    d.set_defaults(func=_train_llm)


def _train_llm(args: argparse.Namespace) -> int:
    from lvg.train.llm import LLMTrainingConfig, train_llm

    return _run_training(args, LLMTrainingConfig, train_llm, "the pipeline")


def _add_train_clip(sub: Subparsers) -> None:
    d = sub.add_parser(
        "clip",
        help="train a small CLIP (image/caption embeddings) on Shapes World, for reranking",
        description="Train a small CLIP (conv image tower + transformer text tower, symmetric InfoNCE) on Shapes "
        "World renders with their partial canonical captions in English and Chinese. Settings: dataclass "
        "defaults, then --config YAML, then KEY=VALUE overrides (e.g. train.steps=2000 model.embed_dim=64). "
        "Validates zero-shot caption choice and text -> image retrieval on held-out renders. Writes "
        "OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and, at the end, OUT/clip (config.json, model.safetensors, "
        "text_tokenizer/). Copy OUT/clip into a model folder as clip/ (and list it in model_index.json) to bundle it.",
    )
    _training_args(d, "configs/clip-shapes.yaml")
    d.set_defaults(func=_train_clip)


def _train_clip(args: argparse.Namespace) -> int:
    from lvg.train.clip import ClipTrainingConfig, train_clip

    return _run_training(args, ClipTrainingConfig, train_clip, "the CLIP model")


def _add_train_planner(sub: Subparsers) -> None:
    d = sub.add_parser(
        "planner",
        help="train the planner LM (prompt -> layout) of a planned model",
        description="Train the planner: a causal LM (Hugging Face Llama) that reads a prompt (EN/ZH; canonical, "
        "paraphrased and typed the way people type) and writes a layout (background, labelled boxes as location "
        "tokens). Shapes World pairs are drawn in process; imagefolder=DIR trains on a folder whose metadata.jsonl "
        "rows carry 'objects'. Settings: dataclass defaults, then --config YAML, then KEY=VALUE overrides (e.g. "
        "train.steps=3000 model.size.hidden_size=192 model.init_from=PATH). Validates the sampled layouts of "
        "benchmark prompts symbolically. Writes OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and OUT/planner.",
    )
    _training_args(d, "configs/planner-shapes.yaml")
    d.set_defaults(func=_train_planner)


def _train_planner(args: argparse.Namespace) -> int:
    from lvg.train.planner import PlannerTrainingConfig, train_planner

    return _run_training(args, PlannerTrainingConfig, train_planner, "the planner")


def _add_train_reader(sub: Subparsers) -> None:
    d = sub.add_parser(
        "reader",
        help="train the reader (image -> layout) of a planned model",
        description="Train the reader: a small CenterNet-style detector that reads an image as a layout (background "
        "plus labelled boxes). Trains on Shapes World renders, some passed through the image tokenizer and back, "
        "with pixel noise; validates the fraction of held-out renders read exactly. Writes OUT/checkpoint, OUT/tb, "
        "OUT/metrics.jsonl and OUT/detector (bundle it with `lvg assemble --reader`).",
    )
    _training_args(d, "configs/reader-shapes.yaml")
    d.set_defaults(func=_train_reader)


def _train_reader(args: argparse.Namespace) -> int:
    from lvg.train.reader import ReaderTrainingConfig, train_reader

    return _run_training(args, ReaderTrainingConfig, train_reader, "the reader")


def _add_train_reading_lm(sub: Subparsers) -> None:
    d = sub.add_parser(
        "reading-lm",
        help="train the reading LM (layout -> caption, answers) of a planned model",
        description="Train the reading LM: a causal LM (Hugging Face Llama) that reads a layout and writes its "
        "canonical caption (EN/ZH) or answers a question about it. Validates caption exact match and question "
        "accuracy per type on held-out layouts. Writes OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and OUT/reading_lm.",
    )
    _training_args(d, "configs/reading-lm-shapes.yaml")
    d.set_defaults(func=_train_reading_lm)


def _train_reading_lm(args: argparse.Namespace) -> int:
    from lvg.train.reader import ReadingLMTrainingConfig, train_reading_lm

    return _run_training(args, ReadingLMTrainingConfig, train_reading_lm, "the reading LM")


def _add_train_painter(sub: Subparsers) -> None:
    d = sub.add_parser(
        "painter",
        help="train the painter (layout -> image codes in one step) of a planned model",
        description="Train the painter: a layout-conditioned conv net that predicts every code of a trained image "
        "tokenizer in one parallel step. Shapes World scenes are rendered and encoded on the fly (the targets); "
        "imagefolder=DIR trains on a folder whose metadata.jsonl rows carry 'objects'. Settings: dataclass "
        "defaults, then --config YAML, then KEY=VALUE overrides (e.g. train.steps=3000 model.width=128). Validates "
        "with the pixel judge on held-out scenes. Writes OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and OUT/painter.",
    )
    _training_args(d, "configs/painter-shapes.yaml")
    d.set_defaults(func=_train_painter)


def _train_painter(args: argparse.Namespace) -> int:
    from lvg.train.painter import PainterTrainingConfig, train_painter

    return _run_training(args, PainterTrainingConfig, train_painter, "the painter")


# ---------------------------------------------------------------------- lvg generate / plan / caption / export


def _add_generate(sub: Subparsers) -> None:
    d = sub.add_parser(
        "generate",
        help="text -> image with a trained lvg model",
        description="Generate images from a prompt (English or Chinese). One prompt: -o OUT.png (N > 1 writes "
        "OUT-0.png, OUT-1.png, ... or one grid with --grid). Many prompts: --prompts FILE (one per line, UTF-8) "
        "--out-dir DIR writes DIR/00000.png, DIR/00001.png, ... in line order. Image j uses seed SEED + j.",
    )
    d.add_argument("prompt", nargs="?", help="the prompt, e.g. 'a small red circle to the left of a blue square'")
    d.add_argument("-o", "--output", type=Path, help="output PNG for a single prompt")
    d.add_argument("--prompts", type=Path, help="file with one prompt per line")
    d.add_argument("--out-dir", type=Path, help="output folder for --prompts")
    d.add_argument("--num-images", type=int, default=1, help="images for the prompt (default 1)")
    d.add_argument("--grid", action="store_true", help="with --num-images > 1: write one grid image")
    d.add_argument("--seed", type=int, default=0, help="seed of the first image (default 0)")
    d.add_argument("--scale", type=int, default=1, help="integer upscale of the output, the model's canvas (default 1)")
    d.add_argument("--model", type=Path, default=None,
                   help="model folder (default: the shipped model; $LVG_DEFAULT_MODEL or $LVG_HOME override it)")  # fmt: skip
    d.add_argument("--rerank", type=int, default=1, metavar="K",
                   help="generate K candidates per image and keep the best by CLIP score (default 1 = off; "
                   "needs a clip/ component in the model or --clip)")  # fmt: skip
    d.add_argument("--clip", type=Path, default=None, metavar="DIR", help="CLIP folder to rerank with (lvg train clip)")
    d.add_argument("--verify", type=int, default=0, metavar="K",
                   help="self-check: read each image back, caption it, and regenerate (up to K more tries) the images "
                   "whose caption contradicts the prompt (default 0 = off; planned models with a reader; prompts "
                   "outside the Shapes World grammar are left unchecked)")  # fmt: skip
    d.add_argument("--layout", type=Path, default=None, metavar="FILE",
                   help="paint this layout (JSON: {\"background\", \"objects\": [{\"label\", \"box\": [x0, y0, x1, y1]}]}) "
                   "instead of planning one from a prompt (planned models only; see `lvg plan`)")  # fmt: skip
    _sampling_args(d)
    d.set_defaults(func=_generate)


def _save(img, path: Path, scale: int) -> None:
    from PIL import Image

    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _read_prompt_lines(path: Path) -> list[str]:
    from lvg.files import read_text

    lines = read_text(path).splitlines()  # a regular UTF-8 file (a FIFO or a device is refused, not waited on)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"{path}:{n}: empty prompt line")
    if not lines:
        raise ValueError(f"{path} holds no prompts")
    return lines


def _paint_layout(args: argparse.Namespace) -> int:
    from lvg.data.layout import Layout, LayoutError

    if args.prompt is not None or args.prompts is not None or args.output is None:
        raise ValueError("--layout FILE paints that layout: give -o OUT.png and no prompt")
    _check_output(args.output)
    layout = Layout.from_file(args.layout)
    pipe = _load_pipeline(args.model)
    if not hasattr(pipe, "paint"):
        raise ValueError(f"the model at {args.model or 'the default location'} has no painter (a one-stage model)")
    try:
        out = pipe(layout=layout)
    except LayoutError as e:  # e.g. "layout canvas 128 differs from this model's 64": say which file
        raise LayoutError(f"{args.layout}: {e}") from None
    _save(out.images[0], args.output, args.scale)
    print(f"wrote {args.output} (painted {args.layout})")
    return 0


MAX_SCALE = 32  # a 64x64 canvas -> 2048x2048


def _generate(args: argparse.Namespace) -> int:
    if not 1 <= args.scale <= MAX_SCALE:
        raise ValueError(f"--scale must be an integer in [1, {MAX_SCALE}] (the canvas upscaled), got {args.scale}")
    if args.layout is not None:
        return _paint_layout(args)
    if args.prompts is not None:
        if args.prompt is not None or args.out_dir is None:
            raise ValueError("use either PROMPT with -o FILE, or --prompts FILE with --out-dir DIR")
        if args.out_dir.exists() and not args.out_dir.is_dir():
            raise ValueError(f"--out-dir {args.out_dir} is a file, not a folder")
        _generation_config(args)
        lines = _read_prompt_lines(args.prompts)
        pipe = _load_pipeline(args.model, args.clip)
        out = pipe(lines, _model_config(args, pipe), batch_size=args.batch_size)
        for i, img in enumerate(out.images):
            _save(img, args.out_dir / f"{i:05d}.png", args.scale)
        print(f"wrote {len(out.images)} images to {args.out_dir}")
        return 0
    _generation_config(args, args.num_images)
    if args.prompt is None or args.output is None:
        raise ValueError("give a PROMPT and -o OUT.png (or --prompts FILE --out-dir DIR)")
    _check_output(args.output)
    pipe = _load_pipeline(args.model, args.clip)
    cfg = _model_config(args, pipe, args.num_images)
    out = pipe(args.prompt, cfg, batch_size=args.batch_size)
    if cfg.num_images == 1:
        _save(out.images[0], args.output, args.scale)
        print(f"wrote {args.output} (seed {out.seeds[0]})")
    elif args.grid:
        from lvg.data.imagefolder import image_grid

        _save(image_grid(out.images), args.output, args.scale)
        print(f"wrote a grid of {cfg.num_images} images to {args.output} (seeds {out.seeds[0]}..{out.seeds[-1]})")
    else:
        for i, img in enumerate(out.images):
            _save(img, args.output.with_name(f"{args.output.stem}-{i}{args.output.suffix}"), args.scale)
        print(f"wrote {cfg.num_images} images {args.output.stem}-0..{cfg.num_images - 1}{args.output.suffix}")
    return 0


def _add_plan(sub: Subparsers) -> None:
    d = sub.add_parser(
        "plan",
        help="prompt -> layout (JSON) with a planned model's planner LM",
        description="Sample layouts for a prompt with the planner LM (grammar-constrained: every layout is valid) and "
        "print them as JSON, one per line. Layout j uses seed SEED + j. Paint one with `lvg generate --layout FILE`.",
    )
    d.add_argument("prompt", help="the prompt, e.g. 'two stars' or '三个黄色星形，黑色背景'")
    d.add_argument("--num-images", type=int, default=1, help="layouts to sample (default 1)")
    d.add_argument("--seed", type=int, default=0, help="seed of the first layout (default 0)")
    d.add_argument("--rerank", type=int, default=1, help=argparse.SUPPRESS)
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    _sampling_args(d)
    d.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    _generation_config(args, args.num_images)
    pipe = _load_pipeline(args.model)
    if not hasattr(pipe, "plan"):
        raise ValueError(f"the model at {args.model or 'the default location'} has no planner (a one-stage model)")
    for lay in pipe.plan(args.prompt, _model_config(args, pipe, args.num_images), batch_size=args.batch_size):
        print(lay.to_json())
    return 0


def _add_caption(sub: Subparsers) -> None:
    d = sub.add_parser(
        "caption",
        help="image -> caption with a trained lvg model",
        description="Caption images, one line per image in order, in the canonical grammar.",
    )
    d.add_argument("images", nargs="+", type=Path, help="image files (64x64 or integer upscales; others are resized)")
    d.add_argument("--lang", choices=["en", "zh"], default="en", help="caption language (default en)")
    d.add_argument("--num-beams", type=int, default=1, help="beam search width (1 = greedy)")
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.set_defaults(func=_caption)


def _caption(args: argparse.Namespace) -> int:
    from lvg.images import open_image

    images = [open_image(p) for p in args.images]  # every file read (and checked) before the model loads
    pipe = _load_pipeline(args.model)
    for cap in pipe.caption(images, lang=args.lang, num_beams=args.num_beams):
        print(cap)
    return 0


def _add_ask(sub: Subparsers) -> None:
    d = sub.add_parser(
        "ask",
        help="answer a question about an image (visual question answering)",
        description="Answer a question (English or Chinese) about an image with a planned model's reader: how many, "
        "what colour / shape / size is the X, where is the X, is A left of / above B, the background colour, is "
        "there a Y. Other questions get 'cannot answer' (无法回答). Prints one line.",
    )
    d.add_argument("image", type=Path, help="image file (64x64 or integer upscales; others are resized)")
    d.add_argument("question", help="the question, e.g. 'how many stars are there?' or '背景是什么颜色？'")
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.set_defaults(func=_ask)


def _ask(args: argparse.Namespace) -> int:
    if not args.image.is_file():
        raise FileNotFoundError(f"image not found: {args.image}")
    pipe = _load_pipeline(args.model)
    if not getattr(pipe, "can_caption", False) or not hasattr(pipe, "answer"):
        raise ValueError(f"the model at {args.model or 'the default location'} cannot answer questions (no reader)")
    print(pipe.answer(str(args.image), args.question))
    return 0


def _add_export(sub: Subparsers) -> None:
    d = sub.add_parser(
        "export",
        help="copy a model folder, storing weights in fp16/bf16 (to ship)",
        description="Load a pipeline folder strictly and write it to OUT (its components and model_index.json) "
        "with weights stored as --dtype; other files in OUT (e.g. a model card) are kept.",
    )
    d.add_argument("model", type=Path, help="source pipeline folder (e.g. runs/llm-shapes/pipeline)")
    d.add_argument("out", type=Path, help="destination folder (e.g. models/shapes-default)")
    d.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                   help="storage precision of the weights (default float16)")  # fmt: skip
    d.add_argument("--clip", type=Path, default=None, help="bundle this CLIP folder as the clip/ component")
    d.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    import torch

    from lvg.pipelines import load_pipeline

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": None}[args.dtype]
    _load_pipeline(args.model, args.clip).save_pretrained(args.out, dtype=dtype)
    load_pipeline(args.out)  # strict reload: the exported folder is complete and consistent
    print(f"exported {args.model} to {args.out} ({args.dtype} weights)")
    return 0


def _add_assemble(sub: Subparsers) -> None:
    d = sub.add_parser(
        "assemble",
        help="assemble a planned model folder from its trained components",
        description="Load a trained planner, painter, image tokenizer and (optionally) CLIP strictly and write them "
        "to OUT as one PlannedPipeline folder (model_index.json + component folders), weights stored as --dtype; "
        "other files in OUT (e.g. a model card) are kept. The folder is reloaded strictly at the end.",
    )
    d.add_argument("out", type=Path, help="destination folder (e.g. models/shapes-default)")
    d.add_argument("--planner", type=Path, required=True, help="planner folder (lvg train planner: OUT/planner)")
    d.add_argument("--painter", type=Path, required=True, help="painter folder (lvg train painter: OUT/painter)")
    d.add_argument("--painter-class", default="Painter",
                   help="the painter's class, a name in the component registry (default Painter)")  # fmt: skip
    d.add_argument("--image-tokenizer", type=Path, required=True, help="image tokenizer the painter was trained on")
    d.add_argument("--clip", type=Path, default=None, help="CLIP folder to bundle (reranking, CLIP score)")
    d.add_argument("--reader", type=Path, default=None,
                   help="reader folder to bundle (lvg train reader: OUT/detector); needs --reading-lm")  # fmt: skip
    d.add_argument("--reading-lm", type=Path, default=None,
                   help="reading LM folder to bundle (lvg train reading-lm: OUT/reading_lm); needs --reader")  # fmt: skip
    d.add_argument("--guidance-scale", type=float, default=1.0, help="the folder's default guidance (default 1.0)")
    d.add_argument("--temperature", type=float, default=1.0, help="the folder's default temperature (default 1.0)")
    d.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                   help="storage precision of the weights (default float16)")  # fmt: skip
    d.set_defaults(func=_assemble)


def _assemble(args: argparse.Namespace) -> int:
    import torch

    from lvg.models.clip import ShapesClip
    from lvg.pipelines import load_pipeline
    from lvg.pipelines.components import component_class
    from lvg.pipelines.planned import DEFAULT_GENERATION, LayoutPlanner, PlannedPipeline
    from lvg.tokenizers.image import ImageTokenizer

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": None}[args.dtype]
    if (args.reader is None) != (args.reading_lm is None):
        raise ValueError("give both --reader and --reading-lm (or neither)")
    reader = None
    if args.reader is not None:
        from lvg.models.planner import load_lm_folder
        from lvg.models.reader import Reader
        from lvg.pipelines.reading import ImageReader

        reader = ImageReader(Reader.from_pretrained(args.reader), *load_lm_folder(args.reading_lm, "reading LM"))
    clip = ShapesClip.from_pretrained(args.clip) if args.clip is not None else None
    painter = component_class(args.painter_class, "--painter-class").from_pretrained(args.painter)
    pipe = PlannedPipeline(LayoutPlanner.from_pretrained(args.planner), painter,
                           ImageTokenizer.from_pretrained(args.image_tokenizer), clip,
                           DEFAULT_GENERATION.replace(guidance_scale=args.guidance_scale,
                                                      temperature=args.temperature), reader)  # fmt: skip
    pipe.save_pretrained(args.out, dtype=dtype)
    load_pipeline(args.out)  # strict reload: the folder is complete and consistent
    print(f"assembled a PlannedPipeline in {args.out} ({args.dtype} weights)")
    return 0


# ---------------------------------------------------------------------- lvg eval


def _add_eval_tokenizer(sub: Subparsers) -> None:
    d = sub.add_parser(
        "tokenizer",
        help="reconstruction quality of an image tokenizer",
        description="PSNR and SSIM on held-out Shapes World renders, codebook use (fraction, perplexity) "
        "and the pixel judge's acceptance of benchmark scenes after a round trip. Prints JSON.",
    )
    d.add_argument("--model", type=Path, required=True, help="image tokenizer folder (config.json + model.safetensors)")
    d.add_argument("--num", type=int, default=1000, help="held-out renders (default 1000)")
    d.set_defaults(func=_eval_tokenizer)


def _eval_tokenizer(args: argparse.Namespace) -> int:
    from lvg.eval.recon import evaluate_tokenizer
    from lvg.tokenizers.image import ImageTokenizer

    metrics = evaluate_tokenizer(ImageTokenizer.from_pretrained(args.model), num=args.num)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def _add_eval_clip(sub: Subparsers) -> None:
    d = sub.add_parser(
        "clip",
        help="zero-shot caption choice and text -> image retrieval of a CLIP",
        description="On held-out Shapes World renders with their full canonical captions: zero-shot top-1 (pick "
        "the right caption among --num-candidates) and text -> image retrieval top-1 among --num renders. "
        "Prints JSON.",
    )
    d.add_argument("--model", type=Path, required=True, help="CLIP folder (e.g. runs/clip-shapes/clip)")
    d.add_argument("--num", type=int, default=500, help="held-out renders (default 500)")
    d.add_argument("--num-candidates", type=int, default=10, help="captions per zero-shot choice (default 10)")
    d.set_defaults(func=_eval_clip)


def _eval_clip(args: argparse.Namespace) -> int:
    from lvg.eval.clip_eval import retrieval_top1, zero_shot_accuracy
    from lvg.models.clip import ShapesClip

    clip = ShapesClip.from_pretrained(args.model)
    metrics = {"zero_shot": zero_shot_accuracy(clip, args.num, num_candidates=args.num_candidates),
               "retrieval": retrieval_top1(clip, args.num)}  # fmt: skip
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def _add_eval_shapes(sub: Subparsers) -> None:
    d = sub.add_parser(
        "shapes",
        help="Shapes World benchmark: per-category accuracy and captioning exact match",
        description="Generate every prompt of the benchmark file with a fixed seed (prompt i uses SEED + i), judge "
        "each image with the pixel judge, and caption held-out renders. Prints a table; writes results.json "
        "and results.md to --out.",
    )
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.add_argument("--lang", choices=["en", "zh", "both"], default="both", help="prompt language (default both)")
    d.add_argument("--prompts", type=Path, default=None,
                   help="benchmark prompts (default: the 450 shipped with lvg, benchmarks/shapes_prompts.jsonl)")  # fmt: skip
    d.add_argument("--captions", type=int, default=1000, help="held-out renders to caption (default 1000; 0 = skip)")
    d.add_argument("--questions", type=int, default=200,
                   help="models that read: held-out visual questions per type and language (default 200; 0 = skip); "
                   "the reader's exact layouts and the closed loop (every prompt) are reported too")  # fmt: skip
    d.add_argument("--seed", type=int, default=0, help="seed of the first prompt (default 0)")
    d.add_argument("--out", type=Path, default=Path("eval-shapes"), help="output folder (default eval-shapes)")
    d.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="also compute FID/KID, CLIP score, diversity, cycle consistency, tokenizer PSNR/SSIM and "
                   "guidance/temperature sweeps, and write a self-contained HTML + Markdown report to DIR")  # fmt: skip
    d.add_argument("--rerank", type=int, default=1, help="CLIP reranking: best of K candidates per image (default 1)")
    d.add_argument("--clip", type=Path, default=None, help="CLIP folder for reranking/CLIP score (default: bundled)")
    d.add_argument("--inception-weights", type=Path, default=None, metavar="FILE",
                   help="also compute the standard Inception-v3 FID and Inception Score with YOUR Inception-v3 weights "
                   "(a safetensors file; nothing is downloaded; see docs/evaluation.md); written to results.json "
                   "and the --report")  # fmt: skip
    d.add_argument("--inception-variant", choices=["fid", "torchvision"], default="fid",
                   help="which network the weights are for: fid = pytorch-fid's FID Inception (TF graph), "
                   "torchvision = torchvision's ImageNet Inception-v3 (default fid)")  # fmt: skip
    _sampling_args(d)
    d.set_defaults(func=_eval_shapes)


def _eval_shapes(args: argparse.Namespace) -> int:
    from lvg.eval.shapes import evaluate_captioning, evaluate_generation, markdown_report, write_results
    from lvg.resources import benchmark_prompts_file
    from lvg.worlds.shapes.benchmark import load_prompts

    _generation_config(args)
    if args.inception_weights is not None:  # fail before the long generation run
        from lvg.eval.inception import check_weights

        check_weights(args.inception_weights, args.inception_variant)
    prompts_file = args.prompts or benchmark_prompts_file()
    prompts = load_prompts(prompts_file)
    pipe = _load_pipeline(args.model, args.clip)
    cfg = _model_config(args, pipe)
    langs = ["en", "zh"] if args.lang == "both" else [args.lang]
    keep = args.report is not None or args.inception_weights is not None
    gen = [evaluate_generation(pipe, prompts, lang, cfg, batch_size=args.batch_size, keep_images=keep)
           for lang in langs]  # fmt: skip
    can_read = pipe.can_caption
    if args.captions and not can_read:
        print(f"note: {type(pipe).__name__} has no reader; captioning is not evaluated")
    cap = [evaluate_captioning(pipe, args.captions, lang) for lang in langs] if args.captions and can_read else []
    inception = None
    if args.inception_weights is not None:
        from lvg.eval.suite import inception_section

        inception = inception_section(prompts, gen, args.inception_weights, args.inception_variant, seed=args.seed,
                                      device=pipe.device)  # fmt: skip
    extra: dict = {"inception": inception} if inception is not None else {}
    if can_read and hasattr(pipe, "answer"):
        from lvg.eval.reading import reading_markdown, reading_section

        extra["reading"] = reading_section(pipe, prompts, langs, cfg, args.questions, args.captions,
                                           args.batch_size)  # fmt: skip
    meta = {"model": str(args.model or "default"), **cfg.to_dict(), "prompts": str(prompts_file)}
    write_results(args.out, gen, cap, meta, extra or None)
    print(markdown_report(gen, cap))
    if "reading" in extra:
        text = reading_markdown(extra["reading"])
        with open(args.out / "results.md", "a", encoding="utf-8") as f:
            f.write("\n" + text)
        print(text)
    if inception is not None and args.report is None:
        from lvg.eval.suite import inception_rows

        _print_metrics(inception_rows(inception))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    if args.report is not None:
        from lvg.eval.suite import extended_report

        path, metrics = extended_report(pipe, prompts, gen, args.report, cfg, inception=inception)
        _print_metrics(metrics)
        print(f"wrote the report to {path}")
    return 0


# ---------------------------------------------------------------------- lvg serve


def _add_serve(sub: Subparsers) -> None:
    d = sub.add_parser(
        "serve",
        help="serve text -> image and captioning over HTTP (with a web page)",
        description="Serve the model over HTTP with FastAPI + uvicorn: POST /v1/images/generations (OpenAI Images API "
        "compatible, b64_json), POST /v1/captions, GET /healthz, /readyz, /metrics (Prometheus), /openapi.json and a "
        "web page at /. Concurrent requests with equal sampling settings share one batched pipeline call; a full "
        "queue answers 429, a passed deadline 504. With --api-keys-file every route but /healthz, /readyz and the "
        "page needs 'Authorization: Bearer KEY'. SIGTERM drains: requests in flight finish, then it exits 0. "
        "Binds to 127.0.0.1 unless --host says otherwise.",
    )
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    d.add_argument("--api-keys-file", type=Path, default=None, metavar="FILE",
                   help="require API keys: FILE holds one key per line ('#' comments and blank lines ignored)")  # fmt: skip
    d.add_argument("--max-batch-size", type=int, default=16, help="most images per batched pipeline call (default 16)")
    d.add_argument("--max-wait-ms", type=float, default=20,
                   help="how long a request waits for others to share its batch, in ms (default 20)")  # fmt: skip
    d.add_argument("--queue-size", type=int, default=64, help="most images waiting; beyond it 429 (default 64)")
    d.add_argument("--timeout", type=float, default=60.0, help="per-request deadline in seconds; then 504 (default 60)")
    d.add_argument("--rate-limit", type=int, default=120,
                   help="requests per minute per API key; 0 = off (default 120)")  # fmt: skip
    d.add_argument("--blocklist", type=Path, nargs="+", default=None, metavar="FILE",
                   help="prompt blocklists replacing the shipped English + Chinese ones "
                   "(one term per line, [category] sections)")  # fmt: skip
    d.add_argument("--log-prompts", action="store_true", help="include prompt text in the request log (off by default)")
    d.add_argument("--no-batching", action="store_true", help="run every request on its own pipeline call")
    d.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from lvg.pipelines.index import ModelIndex
    from lvg.serve.app import ServeSettings
    from lvg.serve.server import serve

    model = ModelIndex.read(args.model).folder  # a missing or malformed folder fails now, not after startup
    settings = ServeSettings(model_dir=model, host=args.host, port=args.port, api_keys_file=args.api_keys_file,
                             max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             queue_size=args.queue_size, request_timeout_s=args.timeout,
                             rate_limit_per_minute=args.rate_limit, blocklist_files=args.blocklist,
                             log_prompts=args.log_prompts, batching=not args.no_batching)  # fmt: skip
    serve(settings)
    return 0


# ---------------------------------------------------------------------- the parser


def _group(sub: Subparsers, name: str, help: str, description: str, dest: str, metavar: str) -> Subparsers:
    """A command with subcommands (``lvg data ...``, ``lvg train ...``, ``lvg eval ...``)."""
    p = sub.add_parser(name, help=help, description=description)
    return p.add_subparsers(dest=dest, metavar=metavar, required=True)


def build_parser() -> argparse.ArgumentParser:
    """The ``lvg`` argument parser: one ``_add_*`` function per command, each next to its handler."""
    p = argparse.ArgumentParser(
        prog="lvg",
        description="lvg: LLM visual generation. Text -> LLM -> image tokens -> image, and back, "
        "trained on the built-in Shapes World.",
    )
    p.add_argument("--version", action="version", version=f"lvg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data = _group(sub, "data", "Shapes World data: write datasets, preview samples", "Shapes World data tools.",
                  "data_command", "SUBCOMMAND")  # fmt: skip
    _add_data_shapes(data)
    _add_data_preview(data)
    _add_parse(sub)
    _add_judge(sub)
    train = _group(sub, "train", "train lvg components", "Train lvg components.", "train_command", "COMPONENT")
    for add in (_add_train_text_tokenizer, _add_train_tokenizer, _add_train_planner, _add_train_painter,
                _add_train_reader, _add_train_reading_lm, _add_train_llm, _add_train_clip):  # fmt: skip
        add(train)
    _add_generate(sub)
    _add_plan(sub)
    _add_caption(sub)
    _add_ask(sub)
    _add_export(sub)
    _add_assemble(sub)
    ev = _group(sub, "eval", "evaluate lvg components", "Evaluate lvg components.", "eval_command", "COMPONENT")
    for add in (_add_eval_tokenizer, _add_eval_clip, _add_eval_shapes):
        add(ev)
    _add_serve(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``lvg`` command line; errors print ``lvg: error: ...`` and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lvg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        from lvg.files import shorten

        print(f"lvg: error: {shorten(str(e))}", file=sys.stderr)  # one line, never megabytes
        return 2


if __name__ == "__main__":
    sys.exit(main())
