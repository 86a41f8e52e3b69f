"""Training speed of each trainer of the default model, two ways side by side, on the CPU.

    python benchmarks/train_speed.py [--steps 20] [--threads 1]

For every stage of ``scripts/train_shapes_default.sh`` (its shipped config), builds the trainer's task and times
optimizer steps (batch, loss, backward, AdamW) two ways, alternating them over two rounds so drift hits both:
- the convolutional trainers (image tokenizer, painter, reader): fp32 against bf16 autocast (``train.precision``);
- the LMs (planner, reading LM): the whole padded batch in one forward pass against length-sorted chunks of
  ``LM_ROWS_PER_CHUNK`` rows (:func:`lvg.train.planner.lm_loss`; the same loss up to float rounding).
Writes the "train-speed" section of BENCHMARKS.md. One torch thread per job, as the training script runs them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _report import write_section

from lvg.train.common import autocast
from lvg.train.config import load_config
from lvg.train.loop import Shard
from lvg.train.painter import PainterTask, PainterTrainingConfig
from lvg.train.planner import LM_ROWS_PER_CHUNK, PlannerTask, PlannerTrainingConfig
from lvg.train.reader import ReaderTask, ReaderTrainingConfig, ReadingLMTask, ReadingLMTrainingConfig
from lvg.train.tokenizer import TokenizerTask, TokenizerTrainingConfig

ROOT = Path(__file__).resolve().parents[1]
CONV = {  # stage: (config class, task class, config file)
    "tokenizer": (TokenizerTrainingConfig, TokenizerTask, "tokenizer-shapes-16x16.yaml"),
    "painter": (PainterTrainingConfig, PainterTask, "painter-shapes.yaml"),
    "reader": (ReaderTrainingConfig, ReaderTask, "reader-shapes.yaml"),
}
LMS = {
    "planner": (PlannerTrainingConfig, PlannerTask, "planner-shapes.yaml"),
    "reading LM": (ReadingLMTrainingConfig, ReadingLMTask, "reading-lm-shapes.yaml"),
}


def make_task(cfg_cls: type, task_cls: type, config: str):
    cfg = load_config(cfg_cls, ROOT / "configs" / config, ["train.num_workers=0"])
    return task_cls(cfg, torch.device("cpu"))


def seconds_per_step(task, precision: str, steps: int, start: int) -> float:
    """Mean wall seconds of ``steps`` optimizer steps of ``task`` from batch ``start`` on."""
    opt = torch.optim.AdamW([p for m in task.modules.values() for p in m.parameters()], lr=1e-4)
    device, shard = torch.device("cpu"), Shard(0, 1)
    t0 = time.perf_counter()
    for step in range(start, start + steps):
        batch = task.batch(step, shard)
        with autocast(device, precision):
            loss = task.loss(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - t0) / steps


def measure(task, a: dict, b: dict, steps: int) -> tuple[float, float]:
    """(seconds per step with settings ``a``, with ``b``): each set on the task, two rounds of a then b."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for settings in (a, b):  # warm-up: first-call costs (allocations, oneDNN kernels) out of the timing
        _apply(task, settings)
        seconds_per_step(task, settings["precision"], 3, 0)
    for r in range(2):
        for i, settings in enumerate((a, b)):
            _apply(task, settings)
            times[i].append(seconds_per_step(task, settings["precision"], steps, 100 + (2 * r + i) * steps))
    return min(times[0]), min(times[1])


def _apply(task, settings: dict) -> None:
    if "rows_per_chunk" in settings:
        task.rows_per_chunk = settings["rows_per_chunk"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per way and round (default 20)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the training script)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for stage, (cfg_cls, task_cls, config) in CONV.items():
        task = make_task(cfg_cls, task_cls, config)
        fp32, bf16 = measure(task, {"precision": "fp32"}, {"precision": "bf16"}, args.steps)
        rows.append((stage, "fp32 / bf16 autocast", fp32, bf16))
        print(rows[-1], flush=True)
    for stage, (cfg_cls, task_cls, config) in LMS.items():
        task = make_task(cfg_cls, task_cls, config)
        batch = task.cfg.train.batch_size
        whole, chunked = measure(task, {"precision": "fp32", "rows_per_chunk": batch},
                                 {"precision": "fp32", "rows_per_chunk": LM_ROWS_PER_CHUNK}, args.steps)  # fmt: skip
        rows.append((stage, f"one padded batch of {batch} / sorted chunks of {LM_ROWS_PER_CHUNK} rows", whole, chunked))
        print(rows[-1], flush=True)
    lines = [
        f"`python benchmarks/train_speed.py --steps {args.steps} --threads {args.threads}`: seconds per optimizer "
        "step (batch, loss, backward, AdamW) of each trainer of `scripts/train_shapes_default.sh` with its shipped "
        f"config, {args.threads} torch thread(s), the two ways alternated over two rounds (the faster round of "
        "each kept). The conv trainers' bf16 is autocast (weights and optimizer fp32); it needs a CPU with bf16 "
        "instructions (avx512_bf16 or AMX) to pay off. The LMs' two ways compute the same loss (float rounding "
        "apart); fp32 both.",
        "",
        "| trainer | before / after | s/step before | s/step after | speed-up |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {how} | {a:.3f} | {b:.3f} | {a / b:.2f}x |" for s, how, a, b in rows]
    write_section("train-speed", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
