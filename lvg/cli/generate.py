"""``lvg generate``, ``lvg plan``, ``lvg caption`` and ``lvg ask``: a trained model, text <-> image."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    Subparsers,
    adapter_arg,
    check_output,
    generation_config,
    load_pipeline,
    model_config,
    painter_arg,
    sampling_args,
    set_threads,
    threads_arg,
    unsupported_arg,
    warn_unsupported,
)


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
    adapter_arg(d)
    painter_arg(d)
    d.add_argument("--verify", type=int, default=0, metavar="K",
                   help="self-check: read each image back, caption it, and regenerate (up to K more tries) the images "
                   "whose caption contradicts the prompt (default 0 = off; planned models with a reader; prompts "
                   "outside the Shapes World grammar are left unchecked)")  # fmt: skip
    d.add_argument("--layout", type=Path, default=None, metavar="FILE",
                   help="paint this layout (JSON: {\"background\", \"objects\": [{\"label\", \"box\": [x0, y0, x1, y1]}]}) "
                   "instead of planning one from a prompt (planned models only; see `lvg plan`)")  # fmt: skip
    threads_arg(d, 1, "one image call at a time gains little from more on a small CPU")
    unsupported_arg(d)
    sampling_args(d)
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
    check_output(args.output)
    layout = Layout.from_file(args.layout)
    pipe = load_pipeline(args.model, adapter=args.adapter, painter=args.painter)
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
    set_threads(args.threads)
    if args.layout is not None:
        return _paint_layout(args)
    if args.prompts is not None:
        if args.prompt is not None or args.out_dir is None:
            raise ValueError("use either PROMPT with -o FILE, or --prompts FILE with --out-dir DIR")
        if args.out_dir.exists() and not args.out_dir.is_dir():
            raise ValueError(f"--out-dir {args.out_dir} is a file, not a folder")
        generation_config(args)
        lines = _read_prompt_lines(args.prompts)
        pipe = load_pipeline(args.model, args.clip, args.adapter, args.painter)
        out = pipe(lines, model_config(args, pipe), batch_size=args.batch_size)
        warn_unsupported(out.prompts, out.unsupported)
        for i, img in enumerate(out.images):
            _save(img, args.out_dir / f"{i:05d}.png", args.scale)
        print(f"wrote {len(out.images)} images to {args.out_dir}")
        return 0
    generation_config(args, args.num_images)
    if args.prompt is None or args.output is None:
        raise ValueError("give a PROMPT and -o OUT.png (or --prompts FILE --out-dir DIR)")
    check_output(args.output)
    pipe = load_pipeline(args.model, args.clip, args.adapter, args.painter)
    cfg = model_config(args, pipe, args.num_images)
    out = pipe(args.prompt, cfg, batch_size=args.batch_size)
    warn_unsupported(out.prompts, out.unsupported)
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
    adapter_arg(d)
    unsupported_arg(d)
    sampling_args(d)
    d.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    generation_config(args, args.num_images)
    pipe = load_pipeline(args.model, adapter=args.adapter)
    if not hasattr(pipe, "plan"):
        raise ValueError(f"the model at {args.model or 'the default location'} has no planner (a one-stage model)")
    for lay in pipe.plan(args.prompt, model_config(args, pipe, args.num_images), batch_size=args.batch_size):
        print(lay.to_json())
    if args.allow_unsupported:
        warn_unsupported([args.prompt], [e and e.reason for e in pipe.analyse(args.prompt)])
    return 0


def _add_edit(sub: Subparsers) -> None:
    d = sub.add_parser(
        "edit",
        help="edit an image by instruction (EN or ZH): recolour, resize, move, add, remove, swap, background",
        description="Edit an image by instruction with a planned model that has an editor: the reader reads the "
        "image's layout, the editor LM rewrites it as the instruction says, and the painter repaints only what "
        "changed (untouched objects keep their pixels). Several instructions are applied in turn. An instruction "
        "the model cannot carry out exits with the reason (--allow-unsupported draws a best effort).",
    )
    d.add_argument("image", type=Path, help="the image to edit (the model's canvas or an upscale)")
    d.add_argument("instructions", nargs="+", help="e.g. 'make the circle blue' or '把正方形移到左上角'")
    d.add_argument("-o", "--output", type=Path, required=True, help="output PNG (the image after the last edit)")
    d.add_argument("--seed", type=int, default=0, help="seed of the editor's sampling (default 0)")
    d.add_argument(
        "--candidates",
        type=int,
        default=None,
        metavar="K",
        help="layouts the editor writes per edit, the likeliest kept (1-64; default: pipe.edit's own)",
    )
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    unsupported_arg(d)
    d.set_defaults(func=_edit)


def _edit(args: argparse.Namespace) -> int:
    from lvg.images import open_image

    check_output(args.output)
    image = open_image(args.image)
    pipe = load_pipeline(args.model)
    if not hasattr(pipe, "edit"):
        raise ValueError(f"the model at {args.model or 'the default location'} cannot edit (a one-stage model)")
    out = pipe.edit(
        image, args.instructions, seed=args.seed, allow_unsupported=args.allow_unsupported, candidates=args.candidates
    )
    warn_unsupported(args.instructions, out.unsupported)
    _save(out.image, args.output, 1)
    print(f"wrote {args.output} ({len(args.instructions)} edit(s); layout after: {out.layouts[-1].to_json()})")
    return 0


def _add_restore(sub: Subparsers) -> None:
    d = sub.add_parser(
        "restore",
        help="restore a noisy, blurred, JPEG-damaged or holed image (restore its pixels, or read it and paint it "
        "again)",
        description="Restore damaged images with a planned model that reads. A folder with a restorer (Emoji "
        "World's) restores each image pixel for pixel, and --prompt then guides only what fills a --mask hole (a "
        "painting of the prompt where the restored image's read layout contradicts it). Without one, the reader "
        "reads what each image shows as a layout and the painter paints it again; --prompt guides it (the planner's "
        "candidates for the prompt compete with what was read; the closest to the damaged image wins). --mask keeps "
        "the pixels outside the hole (inpainting). One image: -o OUT.png; several: --out-dir DIR.",
    )
    d.add_argument("images", nargs="+", type=Path, help="damaged image files (the model's canvas or an upscale)")
    d.add_argument("-o", "--output", type=Path, help="output PNG for one image")
    d.add_argument("--out-dir", type=Path, help="output folder for several images (same file names)")
    d.add_argument("--prompt", default=None, help="what the image shows (optional; EN or ZH)")
    d.add_argument("--mask", type=Path, default=None, help="hole mask image: white = missing pixels (optional)")
    d.add_argument("--candidates", type=int, default=8, help="layouts planned for --prompt (default 8)")
    d.add_argument("--seed", type=int, default=0, help="seed of the first planned candidate (default 0)")
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.set_defaults(func=_restore)


def _restore(args: argparse.Namespace) -> int:
    from lvg.images import open_image

    if (args.output is None) == (args.out_dir is None) or (args.output is not None and len(args.images) > 1):
        raise ValueError("give -o OUT.png for one image, or --out-dir DIR for several")
    if args.output is not None:
        check_output(args.output)
    images = [open_image(p) for p in args.images]  # every file read (and checked) before the model loads
    mask = open_image(args.mask) if args.mask is not None else None
    pipe = load_pipeline(args.model)
    if not hasattr(pipe, "restore"):
        raise ValueError(f"the model at {args.model or 'the default location'} cannot restore (it needs a planner, "
                         "a painter and a reader)")  # fmt: skip
    out = pipe.restore(images, args.prompt, mask, args.candidates, args.seed)
    paths = [args.output] if args.output is not None else [args.out_dir / f"{p.stem}.png" for p in args.images]
    for img, path, src in zip(out.images, paths, out.sources):
        _save(img, path, 1)
        print(f"wrote {path} (painted from the {'layout read' if src == 'read' else 'prompt'})")
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
    pipe = load_pipeline(args.model)
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
    pipe = load_pipeline(args.model)
    if not getattr(pipe, "can_caption", False) or not hasattr(pipe, "answer"):
        raise ValueError(f"the model at {args.model or 'the default location'} cannot answer questions (no reader)")
    print(pipe.answer(str(args.image), args.question))
    return 0


def _add_augment(sub: Subparsers) -> None:
    d = sub.add_parser(
        "augment",
        help="write a labelled imagefolder of new scenes the model invents (data augmentation)",
        description="The planner writes NUM distinct new scenes (its prompt-free mode: what it learned a scene of its "
        "world looks like), the reading LM describes each in English and Chinese, and the painter draws it. Writes "
        "OUT/00000.png, ... and OUT/metadata.jsonl (file_name, text, text_zh, background, canvas, objects, seed): an "
        "imagefolder every `lvg train` command reads. Layout draws use seeds SEED, SEED + 1, ... (repeats skipped), "
        "so the same command writes the same folder. Needs a planned model with a reader.",
    )
    d.add_argument("--num", type=int, required=True, help="examples to write")
    d.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    d.add_argument("--seed", type=int, default=0, help="seed of the first layout draw (default 0)")
    d.add_argument("--temperature", type=float, default=1.0,
                   help="the planner's sampling temperature (default 1: the scenes as varied as it learned them)")  # fmt: skip
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty directory")
    threads_arg(d, 1, "batched calls")
    d.set_defaults(func=_augment)


def _augment(args: argparse.Namespace) -> int:
    from lvg.data.imagefolder import prepare_output_folder
    from lvg.pipelines.augment import augment, write_augmented
    from lvg.sampling import GenerationConfig

    GenerationConfig(seed=args.seed, temperature=args.temperature)  # their ranges, checked where they are declared
    set_threads(args.threads)
    prepare_output_folder(args.out, args.num, args.overwrite)  # refuse a bad --out before the model loads
    pipe = load_pipeline(args.model)
    samples = augment(pipe, args.num, args.seed, args.temperature, progress=True)
    out = write_augmented(samples, args.out, args.num, overwrite=True)
    print(f"wrote {len(samples)} examples to {out}")
    return 0


def add_generate_commands(sub: Subparsers) -> None:
    """``lvg generate``, ``lvg plan``, ``lvg caption``, ``lvg ask``, ``lvg augment``."""
    for add in (_add_generate, _add_plan, _add_caption, _add_ask, _add_augment, _add_edit, _add_restore):
        add(sub)
