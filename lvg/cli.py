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


def _run_training(args: argparse.Namespace, config_cls: type, train_fn, what: str) -> int:
    """Shared by the ``train`` commands: config from YAML + overrides, then (resumable) training."""
    from lvg.train.config import load_config

    cfg = load_config(config_cls, args.config, args.overrides)
    path = train_fn(cfg, resume=args.resume, stop_after=args.stop_after)
    print(f"saved {what} to {path}")
    return 0


def _train_tokenizer(args: argparse.Namespace) -> int:
    from lvg.train.tokenizer import TokenizerTrainingConfig, train_tokenizer

    return _run_training(args, TokenizerTrainingConfig, train_tokenizer, "the image tokenizer")


def _train_clip(args: argparse.Namespace) -> int:
    from lvg.train.clip import ClipTrainingConfig, train_clip

    return _run_training(args, ClipTrainingConfig, train_clip, "the CLIP model")


def _eval_clip(args: argparse.Namespace) -> int:
    from lvg.eval.clip_eval import retrieval_top1, zero_shot_accuracy
    from lvg.models.clip import ShapesClip

    clip = ShapesClip.from_pretrained(args.model)
    metrics = {"zero_shot": zero_shot_accuracy(clip, args.num, num_candidates=args.num_candidates),
               "retrieval": retrieval_top1(clip, args.num)}  # fmt: skip
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def _eval_tokenizer(args: argparse.Namespace) -> int:
    from lvg.eval.recon import evaluate_tokenizer
    from lvg.tokenizers.image import ImageTokenizer

    metrics = evaluate_tokenizer(ImageTokenizer.from_pretrained(args.model), num=args.num)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def _load_pipeline(model: Path | None):
    from lvg.pipelines.pipeline import Pipeline

    return Pipeline.from_pretrained(model)


def _save(img, path: Path, scale: int) -> None:
    from PIL import Image

    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _load_generation_pipeline(args: argparse.Namespace):
    """The pipeline, with ``--clip DIR`` (if given) replacing any bundled CLIP; checks ``--rerank`` needs."""
    pipe = _load_pipeline(args.model)
    if args.clip is not None:
        from lvg.models.clip import ShapesClip

        pipe.clip = ShapesClip.from_pretrained(args.clip).to(pipe.device)
    if args.rerank > 1 and pipe.clip is None:
        raise ValueError("--rerank > 1 needs a CLIP model: the model folder has no clip/ component, pass --clip DIR")
    return pipe


def _generate(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise ValueError(f"--scale must be a positive integer, got {args.scale}")
    from lvg.pipelines.pipeline import MAX_RERANK, check_generation_args

    if not 1 <= args.rerank <= MAX_RERANK:
        raise ValueError(f"--rerank must be between 1 and {MAX_RERANK}, got {args.rerank}")
    opts = dict(guidance_scale=args.guidance_scale, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                seed=args.seed, batch_size=args.batch_size)  # fmt: skip
    if args.rerank > 1:
        opts["rerank"] = args.rerank
    check_generation_args(["-"], args.num_images, args.guidance_scale, args.temperature, args.top_k, args.top_p,
                          args.batch_size)  # fmt: skip
    if args.prompts is not None:
        if args.prompt is not None or args.out_dir is None:
            raise ValueError("use either PROMPT with -o FILE, or --prompts FILE with --out-dir DIR")
        try:
            lines = args.prompts.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{args.prompts} is not UTF-8 text: {e}") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                raise ValueError(f"{args.prompts}:{n}: empty prompt line")
        if not lines:
            raise ValueError(f"{args.prompts} holds no prompts")
        pipe = _load_generation_pipeline(args)
        out = pipe(lines, num_images=1, **opts)
        for i, img in enumerate(out.images):
            _save(img, args.out_dir / f"{i:05d}.png", args.scale)
        print(f"wrote {len(out.images)} images to {args.out_dir}")
        return 0
    if args.prompt is None or args.output is None:
        raise ValueError("give a PROMPT and -o OUT.png (or --prompts FILE --out-dir DIR)")
    pipe = _load_generation_pipeline(args)
    out = pipe(args.prompt, num_images=args.num_images, **opts)
    if args.num_images == 1:
        _save(out.images[0], args.output, args.scale)
        print(f"wrote {args.output} (seed {out.seeds[0]})")
    elif args.grid:
        from lvg.data.imagefolder import image_grid

        _save(image_grid(out.images), args.output, args.scale)
        print(f"wrote a grid of {args.num_images} images to {args.output} (seeds {out.seeds[0]}..{out.seeds[-1]})")
    else:
        for i, img in enumerate(out.images):
            _save(img, args.output.with_name(f"{args.output.stem}-{i}{args.output.suffix}"), args.scale)
        print(f"wrote {args.num_images} images {args.output.stem}-0..{args.num_images - 1}{args.output.suffix}")
    return 0


def _caption(args: argparse.Namespace) -> int:
    for p in args.images:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    pipe = _load_pipeline(args.model)
    for cap in pipe.caption([str(p) for p in args.images], lang=args.lang, num_beams=args.num_beams):
        print(cap)
    return 0


def _eval_shapes(args: argparse.Namespace) -> int:
    from lvg.eval.benchmark import load_prompts
    from lvg.eval.shapes import evaluate_captioning, evaluate_generation, markdown_report, write_results

    if args.inception_weights is not None:  # fail before the long generation run
        from lvg.eval.inception import check_weights

        check_weights(args.inception_weights, args.inception_variant)
    pipe = _load_generation_pipeline(args)
    prompts = load_prompts(args.prompts)
    langs = ["en", "zh"] if args.lang == "both" else [args.lang]
    keep = args.report is not None or args.inception_weights is not None
    gen = [evaluate_generation(pipe, prompts, lang, seed=args.seed, guidance_scale=args.guidance_scale,
                               temperature=args.temperature, batch_size=args.batch_size, rerank=args.rerank,
                               keep_images=keep) for lang in langs]  # fmt: skip
    cap = [evaluate_captioning(pipe, args.captions, lang) for lang in langs] if args.captions else []
    meta = {"model": str(args.model or "default"), "seed": args.seed, "guidance_scale": args.guidance_scale,
            "temperature": args.temperature, "rerank": args.rerank, "prompts": str(args.prompts)}  # fmt: skip
    write_results(args.out, gen, cap, meta)
    print(markdown_report(gen, cap))
    inception = None
    if args.inception_weights is not None:
        from lvg.eval.suite import inception_rows, inception_section

        inception = inception_section(prompts, gen, args.inception_weights, args.inception_variant, seed=args.seed,
                                      device=pipe.device)  # fmt: skip
        results = args.out / "results.json"
        data = json.loads(results.read_text(encoding="utf-8"))
        results.write_text(json.dumps(data | {"inception": inception}, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")  # fmt: skip
        if args.report is None:
            for k, v in inception_rows(inception).items():
                print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    if args.report is not None:
        from lvg.eval.suite import extended_report

        path, metrics = extended_report(pipe, prompts, gen, args.report, seed=args.seed,
                                        guidance_scale=args.guidance_scale, temperature=args.temperature,
                                        inception=inception)  # fmt: skip
        for k, v in metrics.items():
            print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
        print(f"wrote the report to {path}")
    return 0


def _train_llm(args: argparse.Namespace) -> int:
    from lvg.train.llm import LLMTrainingConfig, train_llm

    return _run_training(args, LLMTrainingConfig, train_llm, "the pipeline")


def _serve(args: argparse.Namespace) -> int:
    from lvg.pipelines.pipeline import MODEL_INDEX, default_model_dir
    from lvg.serve.app import ServeSettings
    from lvg.serve.server import serve

    model = args.model if args.model is not None else default_model_dir()
    if not (model / MODEL_INDEX).is_file():
        raise FileNotFoundError(f"{model} is not an lvg model folder (no {MODEL_INDEX})")
    settings = ServeSettings(model_dir=model, host=args.host, port=args.port, api_keys_file=args.api_keys_file,
                             max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             queue_size=args.queue_size, request_timeout_s=args.timeout,
                             rate_limit_per_minute=args.rate_limit, blocklist_files=args.blocklist,
                             log_prompts=args.log_prompts, batching=not args.no_batching)  # fmt: skip
    serve(settings)
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from lvg.pipelines.pipeline import Pipeline

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": None}[args.dtype]
    pipe = Pipeline.from_pretrained(args.model)
    if args.clip is not None:
        from lvg.models.clip import ShapesClip

        pipe.clip = ShapesClip.from_pretrained(args.clip)
    pipe.save_pretrained(args.out, dtype=dtype)
    Pipeline.from_pretrained(args.out)  # strict reload: the exported folder is complete and consistent
    print(f"exported {args.model} to {args.out} ({args.dtype} weights)")
    return 0


def _training_args(d: argparse.ArgumentParser, example_config: str) -> None:
    d.add_argument("--config", type=Path, help=f"YAML config (e.g. {example_config})")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    d.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop this run after N more steps (checkpointed); continue later with --resume")  # fmt: skip
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.batch_size=64")


def _sampling_args(d: argparse.ArgumentParser) -> None:
    d.add_argument("--guidance-scale", type=float, default=3.0, help="classifier-free guidance scale (default 3.0)")
    d.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 = greedy (default 1.0)")
    d.add_argument("--top-k", type=int, default=0, help="keep the k most likely codes (0 = off)")
    d.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1.0 = off)")
    d.add_argument("--batch-size", type=int, default=32, help="images generated per forward batch (default 32)")


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
    _training_args(d, "configs/tokenizer-shapes.yaml")
    d.set_defaults(func=_train_tokenizer)

    d = tsub.add_parser(
        "llm",
        help="train the unified text<->image LM on Shapes World",
        description="Train the unified causal LM (text -> image tokens and image -> caption) on the Shapes World "
        "stream, with a trained image tokenizer. Settings: dataclass defaults, then --config YAML, then "
        "KEY=VALUE overrides (e.g. model.preset=base train.steps=20000 model.init_from=PATH). Writes "
        "OUT/checkpoint, OUT/tb, OUT/metrics.jsonl and, at the end, the pipeline folder OUT/pipeline.",
    )
    _training_args(d, "configs/llm-shapes.yaml")
    d.set_defaults(func=_train_llm)

    d = tsub.add_parser(
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
    d.add_argument("--scale", type=int, default=1, help="integer upscale of the 64x64 output (default 1)")
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped models/shapes-default)")
    d.add_argument("--rerank", type=int, default=1, metavar="K",
                   help="generate K candidates per image and keep the best by CLIP score (default 1 = off; "
                   "needs a clip/ component in the model or --clip)")  # fmt: skip
    d.add_argument("--clip", type=Path, default=None, metavar="DIR", help="CLIP folder to rerank with (lvg train clip)")
    _sampling_args(d)
    d.set_defaults(func=_generate)

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

    d = sub.add_parser(
        "export",
        help="copy a model folder, storing weights in fp16/bf16 (to ship)",
        description="Load a pipeline folder strictly and write it to OUT (text tokenizer, image tokenizer, LM, "
        "model_index.json) with weights stored as --dtype; other files in OUT (e.g. a model card) are kept.",
    )
    d.add_argument("model", type=Path, help="source pipeline folder (e.g. runs/llm-shapes/pipeline)")
    d.add_argument("out", type=Path, help="destination folder (e.g. models/shapes-default)")
    d.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                   help="storage precision of the weights (default float16)")  # fmt: skip
    d.add_argument("--clip", type=Path, default=None, help="bundle this CLIP folder as the clip/ component")
    d.set_defaults(func=_export)

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
    d = esub.add_parser(
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
    d = esub.add_parser(
        "shapes",
        help="Shapes World benchmark: per-category accuracy and captioning exact match",
        description="Generate every prompt of the benchmark file with a fixed seed (prompt i uses SEED + i), judge "
        "each image with the pixel judge, and caption held-out renders. Prints a table; writes results.json "
        "and results.md to --out.",
    )
    d.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    d.add_argument("--lang", choices=["en", "zh", "both"], default="both", help="prompt language (default both)")
    d.add_argument("--prompts", type=Path, default=Path(__file__).resolve().parents[1] / "benchmarks" / "shapes_prompts.jsonl",
                   help="benchmark prompts (default benchmarks/shapes_prompts.jsonl)")  # fmt: skip
    d.add_argument("--captions", type=int, default=1000, help="held-out renders to caption (default 1000; 0 = skip)")
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
