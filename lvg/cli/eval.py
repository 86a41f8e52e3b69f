"""``lvg eval tokenizer|clip|shapes``: metrics of trained components and the Shapes World benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import (
    Subparsers,
    generation_config,
    group,
    load_pipeline,
    model_config,
    painter_arg,
    print_metrics,
    sampling_args,
)


def _add_eval_tokenizer(sub: Subparsers) -> None:
    d = sub.add_parser(
        "tokenizer",
        help="reconstruction quality of an image tokenizer",
        description="PSNR and SSIM on held-out Shapes World renders, codebook use (fraction, perplexity) "
        "and the pixel judge's acceptance of benchmark scenes after a round trip; with --imagefolder, PSNR, SSIM "
        "and codebook use on the first --num images of that folder instead. Prints JSON.",
    )
    d.add_argument("--model", type=Path, required=True, help="image tokenizer folder (config.json + model.safetensors)")
    d.add_argument("--num", type=int, default=1000, help="held-out renders, or folder images (default 1000)")
    d.add_argument("--imagefolder", type=Path, default=None,
                   help="measure on this imagefolder's images (metadata.jsonl order; e.g. `lvg data emoji --pool "
                   "unseen`) instead of Shapes World renders")  # fmt: skip
    d.set_defaults(func=_eval_tokenizer)


def _eval_tokenizer(args: argparse.Namespace) -> int:
    from lvg.eval.recon import evaluate_tokenizer, reconstruction_metrics
    from lvg.tokenizers.image import ImageTokenizer

    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}")
    tokenizer = ImageTokenizer.from_pretrained(args.model)
    if args.imagefolder is not None:
        from lvg.data.imagefolder import read_images, read_rows
        from lvg.images import images_to_tensor

        images = images_to_tensor(read_images(read_rows(args.imagefolder)[: args.num]))  # uint8 [N, 3, S, S]
        metrics = {"imagefolder": str(args.imagefolder), **reconstruction_metrics(tokenizer, images)}
    else:
        metrics = evaluate_tokenizer(tokenizer, num=args.num)
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
        "and results.md to --out after each section (meta.status says 'partial', 'interrupted' or 'complete'; "
        "Ctrl-C keeps what has finished). The default run (both languages, shipped model) takes roughly 3-5 "
        "minutes on a 2-core CPU (approximate: extrapolated from a measured 36-prompt run at ~17 prompts/s "
        "generated and judged, ~75 captions/s, ~100 questions/s; slower when other jobs share the cores); "
        "--report adds more.",
    )
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    painter_arg(d)
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
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bars on stderr for generation + judging, captioning, reading, questions and the "
                   "closed loop (default on; --no-progress for quiet logs)")  # fmt: skip
    d.add_argument("--inception-variant", choices=["fid", "torchvision"], default="fid",
                   help="which network the weights are for: fid = pytorch-fid's FID Inception (TF graph), "
                   "torchvision = torchvision's ImageNet Inception-v3 (default fid)")  # fmt: skip
    sampling_args(d)
    d.set_defaults(func=_eval_shapes)


def _eval_shapes(args: argparse.Namespace) -> int:
    from lvg.eval.shapes import evaluate_captioning, evaluate_generation, markdown_report, write_results
    from lvg.resources import benchmark_prompts_file
    from lvg.worlds.shapes.benchmark import load_prompts

    generation_config(args)
    if args.inception_weights is not None:  # fail before the long generation run
        from lvg.eval.inception import check_weights

        check_weights(args.inception_weights, args.inception_variant)
    prompts_file = args.prompts or benchmark_prompts_file()
    prompts = load_prompts(prompts_file)
    pipe = load_pipeline(args.model, args.clip, painter=args.painter)
    cfg = model_config(args, pipe)
    langs = ["en", "zh"] if args.lang == "both" else [args.lang]
    keep = args.report is not None or args.inception_weights is not None
    show = args.progress
    gen: list = []
    cap: list = []
    extra: dict = {}
    meta = {"model": str(args.model or "default"), **cfg.to_dict(), "prompts": str(prompts_file), "status": "running"}

    def save(status: str) -> None:
        """results.json and results.md of every section finished so far; ``status`` says how far the run got."""
        from lvg.eval.reading import reading_markdown

        meta["status"] = status
        write_results(args.out, gen, cap, meta, {k: v for k, v in extra.items() if v} or None)
        if extra.get("reading"):
            with open(args.out / "results.md", "a", encoding="utf-8") as f:
                f.write("\n" + reading_markdown(extra["reading"]))

    try:
        for lang in langs:
            gen.append(evaluate_generation(pipe, prompts, lang, cfg, batch_size=args.batch_size, keep_images=keep,
                                           progress=show))  # fmt: skip
            save("partial")
        can_read = pipe.can_caption
        if args.captions and not can_read:
            print(f"note: {type(pipe).__name__} has no reader; captioning is not evaluated")
        for lang in langs if args.captions and can_read else []:
            cap.append(evaluate_captioning(pipe, args.captions, lang, progress=show))
            save("partial")
        inception = None
        if args.inception_weights is not None:
            from lvg.eval.suite import inception_section

            inception = inception_section(prompts, gen, args.inception_weights, args.inception_variant,
                                          seed=args.seed, device=pipe.device)  # fmt: skip
            extra["inception"] = inception
            save("partial")
        if can_read and hasattr(pipe, "answer"):
            from lvg.eval.reading import reading_section

            extra["reading"] = {}  # filled part by part, so an interruption keeps the finished parts
            reading_section(pipe, prompts, langs, cfg, args.questions, args.captions, args.batch_size, progress=show,
                            out=extra["reading"])  # fmt: skip
        save("complete")
    except KeyboardInterrupt:
        save("interrupted")
        print(f"lvg: interrupted; wrote the finished sections to {args.out / 'results.json'} and "
              f"{args.out / 'results.md'}", file=sys.stderr)  # fmt: skip
        return 130
    print(markdown_report(gen, cap))
    if extra.get("reading"):
        from lvg.eval.reading import reading_markdown

        print(reading_markdown(extra["reading"]))
    if inception is not None and args.report is None:
        from lvg.eval.suite import inception_rows

        print_metrics(inception_rows(inception))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    if args.report is not None:
        from lvg.eval.suite import extended_report

        path, metrics = extended_report(pipe, prompts, gen, args.report, cfg, inception=inception)
        print_metrics(metrics)
        print(f"wrote the report to {path}")
    return 0


def _add_eval_emoji(sub: Subparsers) -> None:
    d = sub.add_parser(
        "emoji",
        help="Emoji World benchmark: per-category accuracy judged by the referee",
        description="Generate every prompt of the Emoji World benchmark (benchmarks/emoji_prompts.jsonl: 450 "
        "prompts, EN and ZH) with a fixed seed (prompt i uses SEED + i) and judge each image with the Emoji World "
        "referee (pixels only: the emoji, its style, size, cell, count, relations and background). Prints a table; "
        "writes results.json and results.md to --out. Needs the Emoji World cache (`lvg data emoji` fetches it once).",
    )
    d.add_argument("--model", type=Path, required=True, help="a planned model folder trained on Emoji World")
    painter_arg(d)
    d.add_argument("--lang", choices=["en", "zh", "both"], default="both", help="prompt language (default both)")
    d.add_argument("--prompts", type=Path, default=None,
                   help="benchmark prompts (default: the 450 shipped with lvg, benchmarks/emoji_prompts.jsonl); rows "
                   "{id, category, spec, en, zh} naming this world's emoji")  # fmt: skip
    d.add_argument("--num", type=int, default=None, help="only the first N prompts (default: all 450)")
    d.add_argument("--seed", type=int, default=0, help="seed of the first prompt (default 0)")
    d.add_argument("--out", type=Path, default=Path("eval-emoji"), help="output folder (default eval-emoji)")
    d.add_argument("--captions", type=int, default=500,
                   help="models that read: held-out renders to read and caption (default 500; 0 = skip)")  # fmt: skip
    d.add_argument("--questions", type=int, default=100,
                   help="models that read: held-out visual questions per type and language (default 100; 0 = skip); "
                   "the closed loop (every prompt) is reported too")  # fmt: skip
    d.add_argument("--rerank", type=int, default=1, help="CLIP reranking: best of K candidates per image (default 1)")
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="a progress bar on stderr (default on)")  # fmt: skip
    sampling_args(d)
    d.set_defaults(func=_eval_emoji)


def _eval_emoji(args: argparse.Namespace) -> int:
    from lvg.eval.shapes import evaluate_generation, markdown_report, write_results
    from lvg.worlds import get_world

    generation_config(args)
    if args.num is not None and args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}")
    world = get_world("emoji")
    prompts = world.benchmark_prompts(args.prompts)[: args.num]
    pipe = load_pipeline(args.model, painter=args.painter)
    cfg = model_config(args, pipe)
    langs = ["en", "zh"] if args.lang == "both" else [args.lang]
    results = [evaluate_generation(pipe, prompts, lang, cfg, progress=args.progress, referee=world.judge)
               for lang in langs]  # fmt: skip
    report = {"title": "Emoji World benchmark", "categories": list(results[0].categories)}  # the benchmark's own
    meta = {"model": str(args.model), **cfg.to_dict(), "num_prompts": len(prompts), "status": "complete"}
    reading: dict = {}
    if pipe.can_caption and hasattr(pipe, "answer") and (args.captions or args.questions):
        from lvg.eval.emoji_reading import emoji_reading_section

        emoji_reading_section(pipe, world, prompts, langs, cfg, args.questions, args.captions, args.batch_size,
                              progress=args.progress, out=reading)  # fmt: skip
    elif args.captions or args.questions:
        print(f"note: {args.model} has no reader; reading is not evaluated")
    write_results(args.out, results, [], meta, {"reading": reading} if reading else None, **report)
    text = markdown_report(results, [], **report)
    if reading:
        from lvg.eval.emoji_reading import emoji_reading_markdown

        text += "\n" + emoji_reading_markdown(reading, world.reading.question_types)
        with open(args.out / "results.md", "a", encoding="utf-8") as f:
            f.write("\n" + emoji_reading_markdown(reading, world.reading.question_types))
    print(text)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


def add_eval_commands(sub: Subparsers) -> None:
    """``lvg eval tokenizer|clip|shapes|emoji``."""
    ev = group(sub, "eval", "evaluate lvg components", "Evaluate lvg components.", "eval_command", "COMPONENT")
    for add in (_add_eval_tokenizer, _add_eval_clip, _add_eval_shapes, _add_eval_emoji):
        add(ev)
