"""Adapting the shipped Shapes World planner to Emoji World: from scratch against the fine-tuning methods.

    python benchmarks/finetune_emoji.py [--train] [--steps 1000] [--methods full lora8 ...] [--runs runs/ft]

``--train`` trains each method's planner (``lvg train planner --config configs/planner-emoji.yaml`` plus the
method's overrides and ``train.steps``) into ``RUNS/planner-emoji-METHOD``, one after another; without it, the runs
already there are scored. ``scratch`` is ``runs/planner-emoji`` (the config as it is, with its own Emoji World
text tokenizer), trained separately. Scored per run:
- planner-only accuracy on the 450 Emoji World benchmark prompts, EN and ZH (prompt i with seed i, the shipped
  sampling settings: temperature 0.3): each layout becomes an Emoji World scene, checked against the prompt's spec by
  the referee's symbolic check (names, counts, styles, sizes, cells, relations, background);
- the held-out loss at the end (layout tokens only, the folder's 5% validation rows: comparable across text
  tokenizers), the training wall time (one thread, beside one other job), trainable parameters and their share,
  the adapter's size;
- forgetting: the Shapes World public benchmark, planner only, of the adapted planner (its vocabulary keeps the
  base's labels), beside the base planner's.
Writes BENCHMARKS.md's "finetune-emoji" section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from _report import write_section

from lvg.component import config_from_dict
from lvg.data.layout import LayoutError
from lvg.eval.planning import evaluate_plans
from lvg.models.adapters import trainable_share
from lvg.models.planner import load_lm_folder
from lvg.pipelines.planned import LayoutPlanner
from lvg.resources import benchmark_prompts_file
from lvg.train.planner import PlannerTask, PlannerTrainingConfig
from lvg.worlds import get_world
from lvg.worlds.emoji.referee import scene_satisfies
from lvg.worlds.shapes.benchmark import load_prompts

ROOT = Path(__file__).resolve().parents[1]
BASE = "finetune.base=models/shapes-default"
METHODS = {  # name: overrides of configs/planner-emoji.yaml
    "full": [BASE, "finetune.method=full", "train.lr=1e-3"],
    "freeze-top": [BASE, "finetune.method=freeze", "finetune.train_layers=[-1]", "train.lr=3e-3"],
    "freeze-top2": [BASE, "finetune.method=freeze", "finetune.train_layers=[-2,-1]", "train.lr=3e-3"],
    "lora4": [BASE, "finetune.method=lora", "finetune.lora.rank=4", "finetune.lora.alpha=8", "train.lr=3e-3"],
    "lora8": [BASE, "finetune.method=lora", "finetune.lora.rank=8", "finetune.lora.alpha=16", "train.lr=3e-3"],
    "lora16": [BASE, "finetune.method=lora", "finetune.lora.rank=16", "finetune.lora.alpha=32", "train.lr=3e-3"],
}
SAMPLING = {"temperature": 0.3, "guidance_scale": 1.0, "top_k": 0, "top_p": 1.0}


def train(method: str, out: Path, steps: int) -> None:
    cmd = [sys.executable, "-m", "lvg.cli", "train", "planner", "--config", "configs/planner-emoji.yaml",
           *METHODS[method], f"train.out_dir={out}", f"train.steps={steps}", "train.warmup_steps=50",
           "train.eval_every=250"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)


def emoji_accuracy(planner: LayoutPlanner, world, prompts: list[dict], lang: str) -> float:
    texts = [p[lang] for p in prompts]
    layouts = planner.plan_tokens(planner.tokenize(texts), list(range(len(texts))), SAMPLING["guidance_scale"],
                                  SAMPLING["temperature"], SAMPLING["top_k"], SAMPLING["top_p"])  # fmt: skip
    ok = 0
    for p, lay in zip(prompts, layouts, strict=True):
        try:
            ok += scene_satisfies(world.layout_to_scene(lay), world.parse(p["en"], "en"))
        except LayoutError:
            pass
    return ok / len(prompts)


def shapes_accuracy(planner: LayoutPlanner) -> tuple[float, float]:
    prompts = load_prompts(benchmark_prompts_file())
    return tuple(evaluate_plans(planner, prompts, lang, seed=0, **SAMPLING).overall for lang in ("en", "zh"))


def score(run: Path, world, prompts: list[dict]) -> dict:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    cfg = config_from_dict(PlannerTrainingConfig, json.loads((run / "config.json").read_text()), str(run))
    task = PlannerTask(cfg, torch.device("cpu"))
    trainable, total = trainable_share(task.lm)
    planner = LayoutPlanner(*load_lm_folder(run / "planner"))
    planner.lm.eval()
    adapter = run / "adapter" / "adapter_model.safetensors"
    out = {
        "steps": rows[-1]["step"], "minutes": rows[-1]["time"] / 60,
        "val_loss": next(r["val/loss"] for r in reversed(rows) if "val/loss" in r),
        "trainable": trainable, "share": trainable / total,
        "adapter_mb": adapter.stat().st_size / 1e6 if adapter.is_file() else None,
        "emoji": [emoji_accuracy(planner, world, prompts, lang) for lang in ("en", "zh")],
        "shapes": shapes_accuracy(planner) if cfg.finetune.base else None,
    }  # fmt: skip
    print(run.name, out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="train each method's planner first")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--runs", type=Path, default=Path("runs/ft"))
    ap.add_argument("--scratch", type=Path, default=Path("runs/planner-emoji"), help="the from-scratch run")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    world = get_world("emoji")
    prompts = world.benchmark_prompts()
    runs = {"scratch": args.scratch, **{m: args.runs / f"planner-emoji-{m}" for m in args.methods}}
    if args.train:
        for m in args.methods:
            train(m, runs[m], args.steps)
    res = {m: score(r, world, prompts) for m, r in runs.items() if (r / "planner").is_dir()}
    base = LayoutPlanner(*load_lm_folder(ROOT / "models" / "shapes-default" / "planner"))
    base.lm.eval()
    base_shapes = shapes_accuracy(base)

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    lines = [
        f"`python benchmarks/finetune_emoji.py` (steps {args.steps} for the adapted runs; "
        f"{time.perf_counter() - t0:.0f} s to score): the shipped Shapes World planner adapted to the Emoji World "
        "imagefolder `runs/emoji-data` (`lvg data emoji --num 20000`), against a planner trained from scratch "
        "on it. Planner only: each layout checked symbolically by the Emoji World referee against the prompt's spec "
        f"(450 benchmark prompts, temperature {SAMPLING['temperature']}). Minutes: training wall time on one thread "
        "beside one other job. Forgetting: the Shapes World public benchmark, planner only; the base planner scores "
        f"{pct(base_shapes[0])} / {pct(base_shapes[1])} (EN / ZH), and a LoRA adapter removed gives the base back "
        "exactly.",
        "",
        "| method | steps | minutes | held-out loss | Emoji World EN / ZH | trainable (share) | adapter | Shapes World EN / ZH |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r in res.items():
        shapes = f"{pct(r['shapes'][0])} / {pct(r['shapes'][1])}" if r["shapes"] else "(its own vocabulary)"
        adapter = f"{r['adapter_mb']:.2f} MB" if r["adapter_mb"] else ""
        lines.append(f"| {m} | {r['steps']} | {r['minutes']:.1f} | {r['val_loss']:.3f} | {pct(r['emoji'][0])} / "
                     f"{pct(r['emoji'][1])} | {r['trainable']:,} ({pct(r['share'])}) | {adapter} | {shapes} |")  # fmt: skip
    write_section("finetune-emoji", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
