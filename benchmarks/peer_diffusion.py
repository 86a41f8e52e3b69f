"""Peer baseline: a standard text-conditioned pixel diffusion model vs lvg's LM, same budget, same evaluation.

    python benchmarks/peer_diffusion.py [--budget-s SECONDS] [--lvg-model DIR] [--lvg-train-wall-s S]
        [--out runs/peer-diffusion] [--resume] [--langs en,zh] [--num-prompts N] [--peer-only] [--notes TEXT]

Trains :class:`lvg.pipelines.diffusion.PeerDiffusionPipeline` (``diffusers`` UNet2DConditionModel on 64x64 pixels,
DDPM training with v-prediction on the cosine schedule and Min-SNR-5 weights, a small text encoder over lvg's text
tokenizer, 10% caption dropout, AdamW with warmup then a constant rate, EMA weights) on the Shapes World stream,
captions mixed EN/ZH exactly as the LM sees them, for a wall-time budget: by default the LM's own recorded
training wall time (``metrics.jsonl`` "time" of its run folder, or the model card's "N s of training"), so run
this on the hardware the LM was trained on. Checkpoints are atomic and ``--resume`` continues a run (the time
already spent counts against the budget).

Then both models are evaluated in this one run by the same code: ``lvg.eval.shapes.evaluate_generation`` on
``benchmarks/shapes_prompts.jsonl`` (accuracy per category and overall, per language), FID of the generations
against real renders of the same prompts with lvg's own features (the shipped CLIP image tower when present,
else PixelFeatures), and images/s of generation at the same batch size on the same device after a warm-up.
An optional guidance sweep on validation prompts (a different seed than the benchmark's) picks each model's
guidance scale the same way. Writes the "peer-diffusion" section of BENCHMARKS.md. ``--peer-only`` trains and
evaluates the peer alone (e.g. while lvg's default model is not trained yet).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _report import BENCHMARKS_MD, write_section

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "benchmarks" / "shapes_prompts.jsonl"
DEFAULT_DIR = ROOT / "models" / "shapes-default"
LLM_RUN = ROOT / "runs" / "llm-shapes"  # where scripts/train_shapes_default.sh trains the LM
TOKENIZER_RUN = ROOT / "runs" / "tokenizer-shapes"
SECTION = "peer-diffusion"


# ---------------------------------------------------------------------- lvg's recorded training budget


def recorded_wall_s(metrics_file: Path) -> tuple[float, int] | None:
    """(wall seconds, last step) of a run's ``metrics.jsonl``; None when it has no timed rows.

    Each (re)start of a trainer restarts the "time" column at 0, so the wall time is the sum over the resumed
    segments of each segment's last time (work redone after a resume counts: it was spent).
    """
    if not metrics_file.is_file():
        return None
    total, seg_max, prev, step = 0.0, 0.0, -1.0, 0
    for line in metrics_file.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            t, s = float(row["time"]), int(row["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if t < prev:  # a new segment began
            total += seg_max
            seg_max = 0.0
        seg_max, prev, step = max(seg_max, t), t, s
    total += seg_max
    return (total, step) if total > 0 else None


def card_wall_s(model_dir: Path) -> float | None:
    """Training seconds of the LM from a model card (``README.md``): "N s of training" in its "Unified LM" part."""
    card = model_dir / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    part = re.search(r"^## Unified LM.*?(?=^## |\Z)", text, re.S | re.M)
    m = re.search(r"([\d,]+(?:\.\d+)?)\s*s of training", part.group(0)) if part else None
    return float(m.group(1).replace(",", "")) if m else None


def lvg_training_record(model_dir: Path) -> dict[str, Any] | None:
    """The LM's recorded training wall time (and steps, batch size) for ``model_dir``, or None."""
    runs = [model_dir, model_dir.parent]
    if model_dir.resolve() == DEFAULT_DIR.resolve():
        runs.append(LLM_RUN)
    for run in runs:
        rec = recorded_wall_s(run / "metrics.jsonl")
        if rec:
            batch = None
            try:
                batch = json.loads((run / "config.json").read_text(encoding="utf-8"))["train"]["batch_size"]
            except (OSError, json.JSONDecodeError, KeyError, TypeError):
                pass
            return {"wall_s": rec[0], "steps": rec[1], "batch_size": batch, "source": str(run / "metrics.jsonl")}
    wall = card_wall_s(model_dir)
    if wall:
        return {"wall_s": wall, "steps": None, "batch_size": None, "source": str(model_dir / "README.md")}
    return None


# ---------------------------------------------------------------------- training the peer


def device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    n = torch.get_num_threads()
    return f"CPU, {n} torch thread{'s' if n > 1 else ''}"


def train_peer(args: argparse.Namespace, budget_s: float) -> tuple[Any, dict[str, Any]]:
    """Train (or resume) the peer for ``budget_s`` wall seconds with lvg's training loop; returns (EMA pipeline,
    training facts)."""
    import numpy as np
    import torch

    from lvg.models.diffusion import PeerDiffusionConfig
    from lvg.pipelines.diffusion import PeerDiffusionPipeline
    from lvg.tokenizers.text import load_text_tokenizer
    from lvg.train.checkpoint import CHECKPOINT_DIR
    from lvg.train.common import TrainConfig, autocast, write_json
    from lvg.train.loop import Shard, Task, run
    from lvg.worlds.shapes.dataset import ShapesWorldConfig, make_sample
    from lvg.worlds.shapes.heldout import HELD_OUT_SEED

    # constant rate after warmup (min_lr_ratio 1): the stopping step is not known in advance; EMA does the averaging
    tc = TrainConfig(steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, min_lr_ratio=1.0,
                     warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, beta2=0.999, grad_clip=1.0,
                     log_every=args.log_every, eval_every=args.eval_every, ckpt_every=args.ckpt_every, seed=args.seed,
                     out_dir=str(args.out), device=args.device, precision=args.precision,
                     num_workers=args.num_workers, progress=False, ema_decay=args.ema_decay)  # fmt: skip
    out = Path(args.out)

    class PeerTask(Task):
        """DDPM on 64x64 renders with EMA weights, for a wall-time budget (the time already spent counts)."""

        name = "peer"
        batch_in_workers = True

        def __init__(self, device: torch.device) -> None:
            from tqdm.auto import tqdm

            self.device, self.tok = device, load_text_tokenizer(args.text_tokenizer)
            if args.resume:  # the architecture is the checkpoint's, whatever the command line says now
                saved = json.loads((out / CHECKPOINT_DIR / "state.json").read_text())["extra"]
                self.cfg = PeerDiffusionConfig(**{**saved["peer"], "sampling_steps": args.sampling_steps})
            else:
                limit = {} if args.max_text_tokens is None else {"max_text_tokens": args.max_text_tokens}
                self.cfg = PeerDiffusionConfig.preset(args.preset, sampling_steps=args.sampling_steps,
                                                      vocab_size=len(self.tok), **limit)  # fmt: skip
            self.pipe = PeerDiffusionPipeline.build(self.cfg, self.tok)
            self.model = self.pipe.model.to(device).train()
            self.modules = {"model": self.model}
            self.config = {"peer": asdict(self.cfg), "args": {k: str(v) for k, v in vars(args).items()},
                           "elapsed_s": 0.0}  # fmt: skip
            self.elapsed0, self.t0, self.step = 0.0, time.perf_counter(), 0
            self.data = ShapesWorldConfig(seed=args.data_seed, langs=("en", "zh"), paraphrase_prob=args.paraphrase_prob)
            held = [make_sample(i, ShapesWorldConfig(seed=HELD_OUT_SEED)) for i in range(args.val_size)]
            self.val_x0 = torch.stack([torch.from_numpy(s.image) for s in held]).permute(0, 3, 1, 2).float() / 127.5 - 1
            self.val_ids, self.val_mask = self.pipe.tokenize([s.text for s in held])
            g = torch.Generator().manual_seed(0)
            self.val_noise = torch.randn(self.val_x0.shape, generator=g)  # [V, 3, 64, 64] fixed, so validations compare
            self.val_t = torch.randint(0, self.cfg.num_train_timesteps, (len(held),), generator=g)
            self.bar = tqdm(total=math.ceil(budget_s), unit="s", desc="peer diffusion", disable=args.no_progress)

        def elapsed(self) -> float:
            return self.elapsed0 + time.perf_counter() - self.t0

        def load_state(self, extra: dict) -> None:
            self.elapsed0, self.t0 = float(extra["elapsed_s"]), time.perf_counter()

        def state(self) -> dict:
            return {"peer": asdict(self.cfg), "args": self.config["args"], "elapsed_s": self.elapsed()}

        def batch(self, step: int, shard: Shard) -> dict:
            B = args.batch_size
            rng = random.Random(f"lvg-peer-rows:{args.data_seed}:{step}")  # resumable dropout choices
            drop = shard.take([rng.random() < args.cond_dropout for _ in range(B)])
            items = [make_sample(step * B + j, self.data) for j in shard.rows(B)]
            ids, mask = self.pipe.tokenize([s.text for s in items])  # [B, T] each
            image = torch.from_numpy(np.stack([s.image for s in items])).permute(0, 3, 1, 2).contiguous()
            return {"image": image, "ids": ids, "mask": mask, "drop": torch.tensor(drop)}

        def loss(self, b: dict) -> dict[str, torch.Tensor]:
            x0 = b["image"].to(self.device).float() / 127.5 - 1  # [B, 3, 64, 64] in [-1, 1]
            d = self.device
            return {"loss": self.model.training_loss(x0, b["ids"].to(d), b["mask"].to(d), b["drop"].to(d),
                                                     args.snr_gamma)}  # fmt: skip

        def should_stop(self, step: int) -> bool:
            self.step = step
            self.bar.update(min(math.floor(self.elapsed()), self.bar.total) - self.bar.n)
            return self.elapsed() >= budget_s

        def scalars(self, step: int) -> dict[str, float]:
            return {"train/elapsed_s": self.elapsed()}

        @torch.no_grad()
        def validate(self) -> dict[str, float]:
            d = self.device
            loss = self.ema.module.training_loss(self.val_x0.to(d), self.val_ids.to(d), self.val_mask.to(d), None,
                                                 args.snr_gamma, self.val_noise.to(d), self.val_t.to(d))  # fmt: skip
            return {"val/ema_loss": float(loss), "train/elapsed_s": self.elapsed()}

        def save(self, out: Path) -> Path:
            return PeerDiffusionPipeline(self.ema.module, self.tok).save_pretrained(out / "pipeline")

    made: list[PeerTask] = []

    def make(device: torch.device) -> PeerTask:
        made.append(PeerTask(device))
        counts = made[0].model.num_parameters()
        print(f"peer: {counts['unet']:,} UNet + {counts['text_encoder']:,} text encoder = {counts['total']:,} "
              f"parameters; {device_name(device)}; budget {budget_s:.0f} s", flush=True)  # fmt: skip
        return made[0]

    run(tc, make, resume=args.resume)
    task = made[0]
    task.bar.close()
    peer = PeerDiffusionPipeline(task.ema.module, task.tok)
    mixed = not isinstance(autocast(task.device, tc.precision), contextlib.nullcontext)
    elapsed = task.elapsed0 if task.step == 0 else task.elapsed()
    info = {"steps": max(task.step, _checkpoint_step(out)), "batch_size": tc.batch_size, "train_wall_s": elapsed,
            "budget_s": budget_s, "params": task.model.num_parameters(), "device": device_name(task.device),
            "num_workers": tc.num_workers, "config": asdict(task.cfg),
            "precision": "bf16 autocast" if mixed else "fp32"}  # fmt: skip
    write_json(out / "train_info.json", info)
    print(f"peer: trained {info['steps']} steps x {tc.batch_size} in {elapsed:.0f} s -> {out / 'pipeline'}")
    return peer, info


def _checkpoint_step(out: Path) -> int:
    state = out / "checkpoint" / "state.json"
    return json.loads(state.read_text())["step"] if state.is_file() else 0


# ---------------------------------------------------------------------- evaluation


class Timed:
    """Wraps a pipeline: counts the seconds and images of its calls (generation only, not judging)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe, self.seconds, self.images = pipe, 0.0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = self.pipe(*args, **kwargs)
        self.seconds += time.perf_counter() - t
        self.images += len(out.images)
        return out


def fid(real_f: Any, images: Any, feats_of: Any) -> float:
    """FID of ``images`` (uint8 [N, 3, 64, 64]) against real features; NaN when too few images to fit one."""
    from lvg.eval.metrics import frechet_distance

    try:
        return frechet_distance(real_f, feats_of(images))
    except ValueError:  # too few images for a covariance, or a degenerate one
        return float("nan")


def sweep_guidance(pipe: Any, prompts: list[dict], scales: list[float], batch_size: int) -> dict[float, float]:
    """Overall accuracy (English) on validation prompts at each guidance scale."""
    from lvg.eval.shapes import evaluate_generation

    return {g: evaluate_generation(pipe, prompts, "en", seed=0, guidance_scale=g, batch_size=batch_size).overall
            for g in scales}  # fmt: skip


def evaluate(pipe: Any, prompts: list[dict], langs: list[str], guidance: float, batch_size: int, feats_of: Any,
             real_f: Any) -> dict[str, Any]:  # fmt: skip
    """Accuracy per category and FID per language, and images/s over all of it."""
    from lvg.eval.metrics import images_to_tensor
    from lvg.eval.shapes import evaluate_generation

    pipe(prompts[0][langs[0]], num_images=1, seed=0, guidance_scale=guidance, batch_size=batch_size)  # warm-up
    timed = Timed(pipe)
    res: dict[str, Any] = {"guidance_scale": guidance}
    for lang in langs:
        r = evaluate_generation(timed, prompts, lang, seed=0, guidance_scale=guidance, batch_size=batch_size,
                                keep_images=True)  # fmt: skip
        res[lang] = {"overall": r.overall, "categories": r.categories,
                     "fid": fid(real_f, images_to_tensor([row["image"] for row in r.rows]), feats_of)}  # fmt: skip
    res["images_per_s"] = timed.images / timed.seconds
    return res


# ---------------------------------------------------------------------- report


def _m(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def report(res: dict[str, Any], meta: dict[str, Any]) -> str:
    """The Markdown body of the "peer-diffusion" section."""
    from lvg.worlds.shapes.benchmark import CATEGORIES

    peer, lvg, langs = res["peer"], res.get("lvg"), meta["langs"]
    pi = meta["peer_train"]
    cfg = pi["config"]
    cols = ([("lvg", lvg)] if lvg else []) + [("peer", peer)]
    lines = [
        "## Peer baseline: pixel diffusion vs lvg (`python benchmarks/peer_diffusion.py`)",
        "",
        f"Same training budget: **{meta['budget_s']:.0f} s** of wall time ({meta['budget_source']}); hardware: "
        f"{pi['device']}, {pi['num_workers']} data workers. Both models are scored in one run by "
        f"`lvg.eval.shapes.evaluate_generation` on `benchmarks/shapes_prompts.jsonl` ({meta['num_prompts']} prompts "
        f"per language, seed 0); FID against one real render per prompt with {meta['features']} (floor, real vs "
        f"real renders of the same prompts: {meta['fid_floor']:.2f}); images/s = generation only, batch "
        f"{meta['batch_size']}, same device, after a warm-up.",
        "",
    ]
    if not lvg:
        lines += [f"**lvg model not evaluated**: {meta['lvg_missing']}", ""]
    elif meta.get("lvg_image_tokenizer_wall_s"):
        lines += [f"lvg's image tokenizer was trained separately, for {meta['lvg_image_tokenizer_wall_s']:.0f} s, "
                  "not counted in the budget.", ""]  # fmt: skip
    head = "| | " + " | ".join("lvg (LM + image tokenizer)" if n == "lvg" else "peer diffusion (UNet + text encoder)"
                                for n, _ in cols) + " |"  # fmt: skip
    lines += [head, "|---|" + "---|" * len(cols)]

    def row(name: str, vals: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(vals) + " |")

    lp = meta.get("lvg_params")
    attn = cfg["image_size"] // 2 ** cfg["first_attention_level"]
    peer_arch = (f"diffusers UNet2DConditionModel {tuple(cfg['block_out_channels'])}, {cfg['layers_per_block']} "
                 f"res block/level, attention at {attn}x{attn} and below; {cfg['text_layers']}-layer text encoder "
                 f"(width {cfg['text_width']}) over lvg's text tokenizer")  # fmt: skip
    vals = {"lvg": [], "peer": []}
    if lvg:
        rec = meta["lvg_record"] or {}
        steps = f"{rec['steps']:,}" if rec.get("steps") else "?"
        batch = f" x {rec['batch_size']}" if rec.get("batch_size") else ""
        vals["lvg"] = [f"Llama LM + FSQ image tokenizer (`{meta['lvg_model']}`)",
                       f"{_m(lp['lm'])} + {_m(lp['image_tokenizer'])} = {_m(lp['lm'] + lp['image_tokenizer'])}",
                       f"{rec['wall_s']:.0f} s (recorded)" if rec else "unknown", f"{steps}{batch}",
                       f"64 image tokens (KV cache), temperature 1, CFG {lvg['guidance_scale']:g}"]  # fmt: skip
    pp = pi["params"]
    vals["peer"] = [peer_arch, f"{_m(pp['unet'])} + {_m(pp['text_encoder'])} = {_m(pp['total'])}",
                    f"{pi['train_wall_s']:.0f} s", f"{pi['steps']:,} x {pi['batch_size']}",
                    f"DDIM {cfg['sampling_steps']} steps (eta 0), CFG {peer['guidance_scale']:g}"]  # fmt: skip
    for i, name in enumerate(["model", "parameters", "training wall time", "steps x batch", "sampler"]):
        row(name, [vals[n][i] for n, _ in cols])
    row("images/s", [f"{r['images_per_s']:.2f}" for _, r in cols])
    for lang in langs:
        row(f"**overall accuracy ({lang})**", [f"**{r[lang]['overall']:.1%}**" for _, r in cols])
    for lang in langs:
        row(f"FID ({lang})", [f"{r[lang]['fid']:.2f}" for _, r in cols])
    lines += ["", "| category | " + " | ".join(f"{n} {lang}" for n, _ in cols for lang in langs) + " |",
              "|---|" + "---|" * (len(cols) * len(langs))]  # fmt: skip
    for c in CATEGORIES:
        row(c, [f"{r[lang]['categories'].get(c, float('nan')):.1%}" for _, r in cols for lang in langs])
    if meta.get("sweep"):
        lines += ["", f"Guidance picked per model by English accuracy on {meta['sweep_prompts']} validation prompts "
                      "(`make_prompts(seed=1)`, not the benchmark file):", ""]  # fmt: skip
        scales = sorted({g for s in meta["sweep"].values() for g in s})
        lines += ["| model | " + " | ".join(f"g={g:g}" for g in scales) + " |", "|---|" + "---|" * len(scales)]
        for name, s in meta["sweep"].items():
            row(name, [f"{s[g]:.1%}" if g in s else "" for g in scales])
    lines += [
        "",
        f"Peer recipe: pixel space 64x64, {cfg['prediction_type']} on the {cfg['beta_schedule']} schedule "
        f"({cfg['num_train_timesteps']} steps), Min-SNR-{meta['snr_gamma']:g} weights, AdamW lr {meta['lr']:g} "
        f"(warmup {meta['warmup_steps']}, then constant; weight decay {meta['weight_decay']:g}), EMA "
        f"{meta['ema_decay']:g} (sampled from the EMA weights), {meta['cond_dropout']:.0%} caption dropout, captions "
        f"EN/ZH from the same Shapes World stream and tokenizer as the LM, {pi['precision']}. The LM's recorded time "
        "counts its periodic validations; the peer's counts its own.",
        "",
        f"What was tried: {meta['notes'] or 'the defaults above only (no `--notes` given)'}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-s", type=float, help="training wall-time budget (default: the LM's recorded time)")
    ap.add_argument("--lvg-model", type=Path, help="lvg pipeline folder (default: the shipped models/shapes-default)")
    ap.add_argument("--lvg-train-wall-s", type=float, help="the LM's training wall time, if not recorded by its run")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "peer-diffusion", help="peer run folder")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (spent time counts)")
    ap.add_argument("--langs", default="en,zh", help="evaluation languages (default en,zh)")
    ap.add_argument("--num-prompts", type=int, default=50, help="benchmark prompts per category (default all 50)")
    ap.add_argument("--peer-only", action="store_true", help="train and evaluate the peer alone")
    ap.add_argument("--notes", default="", help="'what was tried' note for BENCHMARKS.md")
    ap.add_argument("--benchmarks-file", type=Path, default=BENCHMARKS_MD, help="Markdown file to write the section to")
    ap.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md (results.json only)")
    m = ap.add_argument_group("peer model and training")
    m.add_argument("--preset", default="base", help="peer size: base (default) or tiny (tests)")
    m.add_argument("--text-tokenizer", type=Path, default=DEFAULT_DIR / "text_tokenizer")
    m.add_argument("--batch-size", type=int, default=128)
    m.add_argument(
        "--max-text-tokens",
        type=int,
        help="the text encoder's positions (default: the peer config's, 96; the stream's captions reach ~70)",
    )
    m.add_argument("--lr", type=float, default=2e-4, help="AdamW rate (default 2e-4, DDPM's at batch 128)")
    m.add_argument("--warmup-steps", type=int, default=500)
    m.add_argument("--weight-decay", type=float, default=0.01)
    m.add_argument("--ema-decay", type=float, default=0.999)
    m.add_argument("--snr-gamma", type=float, default=5.0, help="Min-SNR-gamma loss weights (0: plain MSE)")
    m.add_argument("--cond-dropout", type=float, default=0.1, help="caption dropout for guidance (as the LM)")
    m.add_argument("--paraphrase-prob", type=float, default=0.1, help="as the LM's data config")
    m.add_argument("--data-seed", type=int, default=0)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--max-steps", type=int, default=10**9, help="stop earlier than the budget at this step")
    m.add_argument("--log-every", type=int, default=50)
    m.add_argument("--eval-every", type=int, default=1000, help="EMA loss on a fixed held-out batch every N steps")
    m.add_argument("--ckpt-every", type=int, default=1000)
    m.add_argument("--val-size", type=int, default=64)
    m.add_argument("--device", default="auto")
    m.add_argument("--precision", default="auto", help="auto (bf16 autocast on CUDA) | bf16 | fp32")
    m.add_argument("--num-workers", type=int, default=8, help="data rendering processes (default 8, as the LM)")
    m.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    m.add_argument("--no-progress", action="store_true")
    e = ap.add_argument_group("evaluation")
    e.add_argument("--sampling-steps", type=int, default=50, help="DDIM steps of the peer (default 50)")
    e.add_argument("--guidance-scale", type=float, default=3.0, help="guidance of both models without a sweep")
    e.add_argument("--guidance-sweep", default="1.5,3,5", help="scales to pick guidance from ('' to skip)")
    e.add_argument("--sweep-prompts", type=int, default=3, help="validation prompts per category for the sweep")
    e.add_argument("--eval-batch-size", type=int, default=64, help="generation batch of both models")
    args = ap.parse_args(argv)
    args.langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if not args.langs or any(x not in ("en", "zh") for x in args.langs):
        ap.error(f"--langs must list en and/or zh, got {','.join(args.langs)!r}")
    if args.num_prompts < 1 or args.eval_batch_size < 1 or args.sampling_steps < 1:
        ap.error("--num-prompts, --eval-batch-size and --sampling-steps must be at least 1")
    try:
        args.guidance_sweep = [float(x) for x in args.guidance_sweep.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--guidance-sweep must be comma-separated numbers, got {args.guidance_sweep!r}")
    return ap, args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap, args = parse_args(argv)
    import torch

    from lvg.eval.suite import feature_extractor, real_renders
    from lvg.pipelines.pipeline import Pipeline
    from lvg.resources import default_model_dir
    from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts, make_prompts

    if args.threads:
        torch.set_num_threads(args.threads)
    lvg_dir = args.lvg_model or default_model_dir()
    lvg_pipe, lvg_missing = None, ""
    if not args.peer_only:  # check before hours of training, not after
        try:
            lvg_pipe = Pipeline.from_pretrained(lvg_dir)
        except (FileNotFoundError, ValueError) as e:
            ap.error(f"cannot load the lvg model: {e}. Train it (bash scripts/train_shapes_default.sh), pass "
                     "--lvg-model DIR, or use --peer-only to train and evaluate the peer alone")  # fmt: skip
    else:
        lvg_missing = f"`--peer-only` (lvg model folder `{lvg_dir}` not used)"
        print("lvg model: skipped (--peer-only); the peer is trained and evaluated alone", flush=True)
    record = lvg_training_record(Path(lvg_dir))
    if args.budget_s is not None:
        budget, source = args.budget_s, "`--budget-s`"
    elif args.lvg_train_wall_s is not None:
        budget, source = args.lvg_train_wall_s, "the LM's training time, from `--lvg-train-wall-s`"
    elif record:
        budget, source = record["wall_s"], f"the LM's recorded training time, `{record['source']}`"
    else:
        ap.error(f"--budget-s is required: found no recorded training time for the lvg model {lvg_dir} "
                 f"(looked for metrics.jsonl in it, its parent and {LLM_RUN}, and for 'N s of training' in its "
                 "README.md); or pass --lvg-train-wall-s")  # fmt: skip
    if budget <= 0:
        ap.error(f"the budget must be positive, got {budget}")
    if args.lvg_train_wall_s is not None and record is None:
        record = {"wall_s": args.lvg_train_wall_s, "steps": None, "batch_size": None, "source": "--lvg-train-wall-s"}
    print(f"budget: {budget:.0f} s ({source}); make sure this machine is the one the LM was timed on", flush=True)
    tok_rec = recorded_wall_s(TOKENIZER_RUN / "metrics.jsonl")
    if tok_rec:
        print(f"note: lvg's image tokenizer took another {tok_rec[0]:.0f} s ({TOKENIZER_RUN}); not in the budget")

    try:
        peer, peer_info = train_peer(args, budget)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        ap.error(str(e))
    device = peer.device

    prompts_all = load_prompts(PROMPTS)
    prompts = [r for c in CATEGORIES for r in [p for p in prompts_all if p["category"] == c][: args.num_prompts]]
    clip = None
    if (DEFAULT_DIR / "clip" / "config.json").is_file():
        from lvg.models.clip import ShapesClip

        clip = ShapesClip.from_pretrained(DEFAULT_DIR / "clip")
    feats_of, feats_name = feature_extractor(SimpleNamespace(clip=clip))  # one extractor for both models
    real_f = feats_of(real_renders(prompts, seed=0))
    floor = fid(real_f, real_renders(prompts, seed=1), feats_of)

    models: list[tuple[str, Any]] = [("peer", peer)]
    lvg_params = None
    if lvg_pipe is not None:
        lvg_pipe.to(device)
        models.insert(0, ("lvg", lvg_pipe))
        lvg_params = {"lm": sum(p.numel() for p in lvg_pipe.lm.parameters()),
                      "image_tokenizer": sum(p.numel() for p in lvg_pipe.image_tokenizer.parameters())}  # fmt: skip
        print(f"lvg: {lvg_params['lm']:,} LM + {lvg_params['image_tokenizer']:,} image tokenizer parameters")
    sweep: dict[str, dict[float, float]] = {}
    results: dict[str, Any] = {}
    val_prompts = make_prompts(args.sweep_prompts, seed=1) if args.guidance_sweep else []
    for name, pipe in models:
        guidance = args.guidance_scale
        if val_prompts:
            sweep[name] = sweep_guidance(pipe, val_prompts, args.guidance_sweep, args.eval_batch_size)
            s = sweep[name]  # best accuracy; on ties the scale nearest --guidance-scale
            guidance = max(s, key=lambda g: (s[g], -abs(g - args.guidance_scale)))
            print(f"{name}: guidance sweep {sweep[name]} -> {guidance:g}", flush=True)
        results[name] = evaluate(pipe, prompts, args.langs, guidance, args.eval_batch_size, feats_of, real_f)
        summary = ", ".join(f"{lang} {results[name][lang]['overall']:.1%} (FID {results[name][lang]['fid']:.2f})"
                            for lang in args.langs)  # fmt: skip
        print(f"{name}: {summary}, {results[name]['images_per_s']:.2f} images/s", flush=True)
    meta = {"budget_s": budget, "budget_source": source, "langs": args.langs, "num_prompts": len(prompts),
            "features": feats_name, "fid_floor": floor, "batch_size": args.eval_batch_size, "peer_train": peer_info,
            "lvg_model": str(lvg_dir), "lvg_record": record, "lvg_params": lvg_params, "lvg_missing": lvg_missing,
            "lvg_image_tokenizer_wall_s": tok_rec[0] if tok_rec else None, "sweep": sweep,
            "sweep_prompts": len(val_prompts), "notes": args.notes, "lr": args.lr, "warmup_steps": args.warmup_steps,
            "weight_decay": args.weight_decay, "ema_decay": args.ema_decay, "snr_gamma": args.snr_gamma,
            "cond_dropout": args.cond_dropout}  # fmt: skip
    out = {"meta": meta, "results": results}
    (Path(args.out) / "results.json").write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    body = report(results, meta)
    if not args.no_report:
        write_section(SECTION, body, Path(args.benchmarks_file))
    print(body)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
