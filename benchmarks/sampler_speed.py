"""lvg's sampler vs ``transformers``' ``generate()`` on the same model and settings (CPU); and planned
generation against both.

    python benchmarks/sampler_speed.py [--model DIR | --preset base] [--threads 2] [--repeats 3]
    python benchmarks/sampler_speed.py --planned [DIR] [--threads 2]     # planned vs one-stage, images/s

``--planned`` times whole text -> image calls (prompt -> image pixels, decoding included) at batch 1 and 64:
the planned model (planner LM -> layout -> painter -> image tokenizer; default the shipped one, its own
settings), and a one-stage LM with the same parameter count (preset ``mini``, untrained: it always samples
all 64 codes, so its speed does not depend on the weights) sampling with lvg's sampler and with
``transformers.generate``, then decoding with the 8x8 image tokenizer. Writes the "planned-speed" section.

Generates 64 image tokens per image (restricted to image codes) with both samplers, side by side
in one run: single-image latency (batch 1) and batch throughput (batch 16), without guidance and
with classifier-free guidance (lvg doubles the batch; transformers runs its
``UnbatchedClassifierFreeGuidanceLogitsProcessor``, a second forward per step). Peak memory is the
max RSS of a fresh subprocess per configuration. Timing does not depend on the weights, so an
untrained model of the shipped size (``--preset base``) is representative when no trained model
exists. Writes the "sampler-speed" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import write_section

ROOT = Path(__file__).resolve().parents[1]


def build(model_dir: str | None, preset: str):
    import torch

    from lvg.models.unified import VocabLayout, build_lm
    from lvg.pipelines.pipeline import Pipeline
    from lvg.tokenizers.text import load_text_tokenizer

    if model_dir:
        pipe = Pipeline.from_pretrained(model_dir)
        return pipe.lm, pipe.layout, pipe.text_tokenizer
    tok = load_text_tokenizer(ROOT / "models" / "shapes-default" / "text_tokenizer")
    layout = VocabLayout.from_tokenizers(tok, 1000, 64)
    torch.manual_seed(0)
    return build_lm(layout, preset).eval(), layout, tok


def run_one(args: argparse.Namespace) -> dict:
    """One configuration in this (fresh) process: median seconds per call."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList
    from transformers.generation.logits_process import UnbatchedClassifierFreeGuidanceLogitsProcessor

    from lvg.models.unified import t2i_prefix, tokenize_texts
    from lvg.sampling import generate_image_tokens

    torch.set_num_threads(args.threads)
    lm, layout, tok = build(args.model, args.preset)
    prompts = tokenize_texts(tok, ["a small red circle to the left of a large blue square"] * args.batch, 64)
    ids, mask = t2i_prefix(prompts, layout)
    u_ids, u_mask = t2i_prefix([None] * args.batch, layout)
    lo, hi = layout.image_range
    g = args.guidance

    class ImageOnly(LogitsProcessor):
        def __call__(self, input_ids, scores):
            out = torch.full_like(scores, float("-inf"))
            out[:, lo:hi] = scores[:, lo:hi]
            return out

    def lvg_call():
        gens = [torch.Generator().manual_seed(i) for i in range(args.batch)]
        kw = dict(uncond_input_ids=u_ids, uncond_attention_mask=u_mask) if g != 1 else {}
        return generate_image_tokens(lm, ids, mask, 64, (lo, hi), guidance_scale=g, generators=gens, **kw)

    def hf_call():
        procs = [ImageOnly()]
        if g != 1:
            procs.insert(0, UnbatchedClassifierFreeGuidanceLogitsProcessor(g, lm, u_ids, u_mask))
        return lm.generate(input_ids=ids, attention_mask=mask, max_new_tokens=64, min_new_tokens=64, do_sample=True,
                           top_k=0, logits_processor=LogitsProcessorList(procs), pad_token_id=layout.pad_id)  # fmt: skip

    fn = lvg_call if args.impl == "lvg" else hf_call
    if getattr(args, "decode", False):  # whole text -> image: decode the codes into pixels too
        from lvg.tokenizers.image import ImageTokenizer

        image_tok = ImageTokenizer.from_pretrained(ROOT / "models" / "image-tokenizer-8x8")
        sample_fn = fn

        def fn():
            out = sample_fn()
            codes = (out if args.impl == "lvg" else out[:, ids.shape[1] :]) - lo
            image_tok.decode(codes.reshape(-1, 8, 8))
            return out

    with torch.inference_mode():
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
    n_tokens = out.shape[1] if args.impl == "lvg" else out.shape[1] - ids.shape[1]
    assert n_tokens == 64, n_tokens
    return {
        "seconds": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_planned(args: argparse.Namespace) -> dict:
    """One planned-generation configuration in this (fresh) process: median seconds per call."""
    import torch

    from lvg.pipelines import load_pipeline

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.planned_model)
    prompts = ["a small red circle to the left of a large blue square"] * args.batch
    with torch.inference_mode():
        pipe(prompts, seed=0)  # warm-up
        times, plan_times = [], []
        for r in range(args.repeats):
            t = time.perf_counter()
            out = pipe(prompts, seed=r)
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            pipe.plan(prompts, seed=r)  # the planner LM alone: what the call costs before any painting
            plan_times.append(time.perf_counter() - t)
    assert len(out.images) == args.batch
    return {
        "seconds": statistics.median(times),
        "plan_seconds": statistics.median(plan_times),
        "grid": pipe.image_tokenizer.config.grid,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def planned_table(args: argparse.Namespace) -> None:
    """Planned generation vs the one-stage sampler (lvg and transformers), whole text -> image calls."""
    rows = []
    for batch in (1, 64):
        res = {}
        for impl in ("planned", "lvg", "hf"):
            cfg = {"impl": impl, "batch": batch, "guidance": 1.0, "decode": True}
            cmd = [sys.executable, __file__, "--one", json.dumps(cfg), "--preset", "mini", "--threads",
                   str(args.threads), "--repeats", str(args.repeats), "--planned", str(args.planned)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            print(impl, cfg, res[impl], flush=True)
        rows.append((batch, res))
    g = rows[0][1]["planned"]["grid"]
    lines = [
        "## Planned vs one-stage generation speed (`python benchmarks/sampler_speed.py --planned`)",
        "",
        f"Whole text -> image calls (prompt to pixels, decoding included), CPU, {args.threads} torch threads, median of"
        f" {args.repeats} calls after a warm-up, one prompt repeated to fill the batch; peak memory = max RSS of a fresh"
        f" process per cell. Planned: `{args.planned}` (planner LM writes ~22 layout tokens, the painter predicts all"
        f" {g * g} codes of the {g}x{g} tokenizer in one step; its own settings, guidance 1). One-stage: a unified LM of the"
        " same parameter count (preset `mini`, ~3.0M, untrained: speed does not depend on the weights) sampling 64"
        " codes of the 8x8 tokenizer without guidance (its fastest setting), with lvg's KV-cached sampler and with"
        " `transformers.generate`. The planner column times `pipe.plan` alone in the same process (layouts, no painting or decoding): the"
        " one-stage sampler's time over it bounds what planned generation could reach with painting and decoding free.",
        "",
        "| batch | planned images/s | one-stage (lvg) images/s | one-stage (transformers) images/s |"
        " planned / one-stage (lvg) | planned ms per call | planner alone ms (bound on the ratio) |"
        " peak MB planned / lvg / transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for batch, r in rows:
        p, a, b = (r[k]["seconds"] for k in ("planned", "lvg", "hf"))
        lines.append(f"| {batch} | **{batch / p:.1f}** | {batch / a:.1f} | {batch / b:.1f} | **{a / p:.1f}x** "
                     f"| {1000 * p:.0f} | {1000 * r['planned']['plan_seconds']:.0f} "
                     f"({a / r['planned']['plan_seconds']:.1f}x) "
                     f"| {r['planned']['peak_rss_mb']:.0f} / {r['lvg']['peak_rss_mb']:.0f} / "
                     f"{r['hf']['peak_rss_mb']:.0f} |")  # fmt: skip
    body = "\n".join(lines)
    write_section("planned-speed", body)
    print(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="trained pipeline folder (default: untrained --preset model)")
    ap.add_argument("--preset", default="base", help="model size preset when no --model (default base)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (median reported)")
    ap.add_argument("--batch-size", type=int, default=16, help="batch for the throughput rows (default 16)")
    ap.add_argument("--planned", nargs="?", const="models/shapes-default", default=None, metavar="DIR",
                    help="time planned generation (DIR, default the shipped model) against the one-stage sampler")  # fmt: skip
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration (JSON)
    args = ap.parse_args()
    if args.one:
        cfg = json.loads(args.one)
        ns = argparse.Namespace(**{**vars(args), **cfg, "planned_model": args.planned})
        print(json.dumps(run_planned(ns) if ns.impl == "planned" else run_one(ns)))
        return
    if args.planned:
        planned_table(args)
        return
    rows = []
    for batch in (1, args.batch_size):
        for guidance in (1.0, 3.0):
            res = {}
            for impl in ("lvg", "hf"):  # side by side, same process settings, fresh process each
                cfg = {"impl": impl, "batch": batch, "guidance": guidance}
                cmd = [sys.executable, __file__, "--one", json.dumps(cfg), "--preset", args.preset,
                       "--threads", str(args.threads), "--repeats", str(args.repeats)]  # fmt: skip
                if args.model:
                    cmd += ["--model", args.model]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                res[impl] = json.loads(out.stdout.strip().splitlines()[-1])
                print(impl, cfg, res[impl], flush=True)
            rows.append((batch, guidance, res))
    what = f"trained model `{args.model}`" if args.model else f"untrained `{args.preset}` preset (shipped size)"
    lines = [
        "## Sampler speed (`python benchmarks/sampler_speed.py`)",
        "",
        f"64 image tokens per image, sampling at temperature 1 restricted to image codes, KV cache on in both;"
        f" {what}; {args.threads} torch threads; median of {args.repeats} calls after a warm-up; peak memory ="
        " max RSS of a fresh process per row.",
        "",
        "| batch | guidance | lvg s/call | transformers s/call | lvg images/s | transformers images/s | speed-up |"
        " lvg peak MB | transformers peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for batch, guidance, r in rows:
        a, b = r["lvg"]["seconds"], r["hf"]["seconds"]
        lines.append(f"| {batch} | {guidance:g} | {a:.3f} | {b:.3f} | {batch / a:.1f} | {batch / b:.1f} | {b / a:.2f}x "
                     f"| {r['lvg']['peak_rss_mb']:.0f} | {r['hf']['peak_rss_mb']:.0f} |")  # fmt: skip
    body = "\n".join(lines)
    write_section("sampler-speed", body)
    print(body)


if __name__ == "__main__":
    main()
