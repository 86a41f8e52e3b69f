"""Planned generation vs the one-stage LM: benchmark accuracy against CPU minutes of training.

    python benchmarks/ablation.py [--minutes 5 15 30 60] [--lang en]

Reads the training runs' checkpoint snapshots (``runs/snapshots/RUN/step-N``, copied as each run wrote its
checkpoints) and their ``metrics.jsonl`` (wall seconds per step), picks for each budget the last snapshot
written within it, and judges one image per public benchmark prompt (pixel judge, seed 0):

- planned: the planner (``--planner-run``, default ``runs/planner-lr1e3``, the shipped one; ``planner-shapes`` is the
  first release's, lr 3e-3) and the painter (``runs/painter-shapes``) trained side by side,
  one core each, so ``t`` wall minutes are ``2t`` CPU minutes; the shipped 16x16 image tokenizer decodes;
- one-stage: the unified LM of the same parameter count (``configs/llm-ablation.yaml``, preset ``mini``, one
  core) writes all 64 codes of the 8x8 image tokenizer, guidance 3.

Writes the "ablation" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _report import write_section
from safetensors.torch import load_file

from lvg.eval.shapes import evaluate_generation
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import load_prompts

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"


def snapshot_at(run: str, minutes: float, stopped: bool = False) -> tuple[Path, int, float] | None:
    """The last snapshot of ``run`` reached within ``minutes`` of training (path, step, seconds).

    Seconds are the training process's CPU seconds when the snapshot was taken (``cpu.txt``, written by the
    snapshot watcher from ``/proc/PID/stat``) where recorded, else the run's wall seconds (``metrics.jsonl``),
    which for a one-thread job are an upper bound on its CPU seconds."""
    times = {}
    snaps = RUNS / run / "snapshots"  # written by the trainer with train.keep_snapshots=true
    if not snaps.is_dir():
        snaps = RUNS / "snapshots" / run  # copied by a watcher (how this session's runs were recorded)
    cpu = snaps / "cpu.txt"
    if cpu.is_file():
        for line in cpu.read_text().splitlines():
            step, secs = line.split()[:2]
            times[int(step)] = float(secs)
    else:
        for line in (RUNS / run / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            times[row["step"]] = row["time"]
    if times and stopped:  # a run stopped early: a budget past its end (by more than a checkpoint interval) is unknown
        ordered = sorted(times.values())
        gap = max(b - a for a, b in zip(ordered, ordered[1:])) if len(ordered) > 1 else 0
        if minutes * 60 > ordered[-1] + gap:
            return None
    best = None
    for snap in sorted(snaps.glob("step-*"), key=lambda p: int(p.name[5:])):
        step = int(snap.name[5:])
        if step in times and times[step] <= minutes * 60:
            best = (snap, step, times[step])
    return best


def planned_pipe(planner_snap: Path, painter_snap: Path, planner_run: str = "planner-lr1e3"):
    from lvg.models.painter import Painter
    from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
    from lvg.tokenizers.image import ImageTokenizer

    base = LayoutPlanner.from_pretrained(RUNS / planner_run / "planner")
    base.lm.load_state_dict(load_file(str(planner_snap / "lm.safetensors")))
    painter = Painter.from_pretrained(RUNS / "painter-shapes" / "painter")
    painter.load_state_dict(load_file(str(painter_snap / "painter.safetensors")))
    image_tok = ImageTokenizer.from_pretrained(ROOT / "models" / "shapes-default" / "image_tokenizer")
    return PlannedPipeline(base, painter.eval(), image_tok)


def one_stage_pipe(snap: Path):
    from lvg.models.unified import VocabLayout, build_lm
    from lvg.pipelines.pipeline import Pipeline
    from lvg.tokenizers.image import ImageTokenizer
    from lvg.tokenizers.text import load_text_tokenizer

    text_tok = load_text_tokenizer(ROOT / "models" / "shapes-default" / "text_tokenizer")
    image_tok = ImageTokenizer.from_pretrained(ROOT / "models" / "image-tokenizer-8x8")
    layout = VocabLayout.from_tokenizers(text_tok, image_tok.codebook_size, 64, 64)
    lm = build_lm(layout, "mini")
    lm.load_state_dict(load_file(str(snap / "lm.safetensors")))
    return Pipeline(lm.eval(), image_tok, text_tok, layout), sum(p.numel() for p in lm.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--cpu-minutes",
        type=float,
        nargs="+",
        default=[5, 15, 30, 60, 90],
        help="training budgets in CPU minutes (planned: half on each of its two jobs)",
    )
    ap.add_argument("--lang", default="en", choices=["en", "zh"])
    ap.add_argument("--planner-run", default="planner-lr1e3", help="the planner's run folder under runs/")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prompts = load_prompts(benchmark_prompts_file())
    cache_file = RUNS / "ablation_cache.json"  # accuracy per evaluated snapshot, so a rerun only adds new ones
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}

    def cached(key: str, fn) -> float:
        if key not in cache:
            cache[key] = fn()
            cache_file.write_text(json.dumps(cache, indent=1))
        return cache[key]

    rows = []
    n_one = 0
    for c in args.cpu_minutes:
        pl, pa = snapshot_at(args.planner_run, c / 2), snapshot_at("painter-shapes", c / 2)
        planned = None
        if pl and pa:
            planned = cached(f"{pl[0]}|{pa[0]}|{args.lang}", lambda a=pl[0], b=pa[0]: evaluate_generation(
                planned_pipe(a, b, args.planner_run), prompts, args.lang, guidance_scale=1.0,
                seed=0).overall)  # fmt: skip
        os_snap = snapshot_at("llm-ablation", c, stopped=True)  # the same CPU minutes on one core
        one = None
        if os_snap:
            pipe, n_one = one_stage_pipe(os_snap[0])
            one = cached(f"{os_snap[0]}|{args.lang}", lambda p=pipe: evaluate_generation(
                p, prompts, args.lang, guidance_scale=3.0, seed=0).overall)  # fmt: skip
        rows.append((c, pl, pa, planned, os_snap, one))
        print(c, planned, one, flush=True)
    pct = lambda v: "—" if v is None else f"**{v:.1%}**"  # noqa: E731
    step = lambda s: "-" if s is None else f"{s[1]} ({s[2] / 60:.1f} min)"  # noqa: E731
    lines = [
        "## Planned generation vs one-stage LM at equal CPU time (`python benchmarks/ablation.py`)",
        "",
        f"Public benchmark ({len(prompts)} prompts, {args.lang.upper()}), one image per prompt (seed 0), pixel judge."
        f" Planned: planner (`runs/{args.planner_run}`, 2.03M parameters) and painter (0.95M) trained side by side, one core each, so W wall"
        " minutes are 2W CPU minutes (a budget of C CPU minutes gives each C/2). One-stage: a unified LM of the same size"
        f" ({n_one / 1e6:.2f}M parameters, preset `mini`, 8x8 tokenizer, guidance 3) trained on one core for the same"
        " CPU minutes. Minutes are each process's measured CPU time where recorded (`cpu.txt`: the one-stage run and"
        " the shipped planner) and wall time otherwise (the painter: an upper bound on its CPU time). The shipped"
        " planner's snapshots start at step 1,000 (a watcher started late), so budgets under 28 minutes have no"
        " planned entry. All on this 2-core machine, each job with one torch thread; the checkpoint used is the"
        " last one written within the budget; — : no checkpoint within it (the planned jobs checkpoint every 250"
        " steps, about 5 minutes) or a budget past the end of the run. Sampling: temperature 1 for both (the shipped"
        " planned model samples at 0.3).",
        "",
        "| CPU minutes | planned: planner step | painter step | planned accuracy | one-stage step | one-stage accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for c, pl, pa, planned, os_snap, one in rows:
        lines.append(f"| {c:g} | {step(pl)} | {step(pa)} | {pct(planned)} | {step(os_snap)} | {pct(one)} |")
    body = "\n".join(lines)
    write_section("ablation", body)
    print(body)


if __name__ == "__main__":
    main()
