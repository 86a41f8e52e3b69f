"""Trainer conventions shared by every lvg trainer (image tokenizer, LLM, ...).

One typed :class:`TrainConfig`; device and precision selection (bf16 autocast on GPUs, fp32 on
CPU); warmup + cosine learning rate; a run folder with TensorBoard logs, ``metrics.jsonl`` and an
atomic resumable checkpoint (see :mod:`lvg.train.checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lvg.ranges import bounded, check_ranges

from .checkpoint import has_checkpoint, save_checkpoint
from .config import config_to_dict


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings common to all trainers."""

    steps: int = bounded(1, None, default=1000)
    batch_size: int = bounded(1, None, default=64)
    lr: float = bounded(0.0, None, lo_open=True, default=3e-4)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = bounded(0, None, default=100)
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    log_every: int = bounded(1, None, default=50)
    eval_every: int = bounded(1, None, default=500)
    ckpt_every: int = bounded(1, None, default=500)
    seed: int = 0
    out_dir: str = "runs/run"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    num_workers: int = bounded(0, None, default=0)  # DataLoader worker processes rendering data
    progress: bool = True
    keep_snapshots: bool = False  # also keep every checkpoint as OUT/snapshots/step-N (+ CPU seconds in cpu.txt)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (unless fp32 is asked for); plain fp32 on CPU."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    """Check the run folder: refuse to overwrite a checkpoint unless resuming, and vice versa."""
    out = Path(cfg.out_dir)
    if resume and not has_checkpoint(out):
        raise FileNotFoundError(f"--resume given but {out} holds no checkpoint")
    if not resume and has_checkpoint(out):
        raise FileExistsError(f"{out} already holds a checkpoint; pass --resume to continue it or pick another out_dir")
    out.mkdir(parents=True, exist_ok=True)
    return out


def start_run(cfg: Any, resume: bool) -> tuple[Path, torch.device]:
    """What every trainer does first: check the run folder (:func:`prepare_run_dir`), write the full config to
    ``OUT/config.json``, pick the device and seed everything; ``cfg.train`` is the :class:`TrainConfig`.
    Returns (the run folder, the device)."""
    out = prepare_run_dir(cfg.train, resume)
    write_json(out / "config.json", config_to_dict(cfg))
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed)
    return out, device


class RunLogger:
    """Scalars to TensorBoard (``OUT/tb``) and to ``OUT/metrics.jsonl``."""

    def __init__(self, out_dir: Path):
        self.file = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tb"))
        except ImportError:  # tensorboard is a dependency, but keep training without it
            self.tb = None
        self.t0 = time.time()

    def log(self, step: int, **scalars: Any) -> None:
        row = {"step": step, "time": round(time.time() - self.t0, 2)}
        for k, v in scalars.items():
            v = float(v)
            row[k] = v
            if self.tb is not None:
                self.tb.add_scalar(k, v, step)
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class TrainingRun:
    """The bookkeeping every trainer does around its optimisation step.

    Owns the progress bar and the :class:`RunLogger`; validates every ``eval_every`` steps (and at the
    last step), checkpoints every ``ckpt_every`` steps (and where this run ends), checkpoints on Ctrl-C
    before re-raising, and closes everything::

        with TrainingRun(out, tc, step, end, "tokenizer", modules, optims, extra) as run:
            while step < end:
                ...                                 # one optimisation step
                step = run.advance()
                if step % tc.log_every == 0 or step == end:
                    run.log.log(step, **scalars)
                run.end_of_step(step, lambda: validate(model))
    """

    def __init__(self, out: Path, tc: TrainConfig, step: int, end: int, desc: str, modules: dict,
                 optimizers: dict, extra: dict) -> None:  # fmt: skip
        from tqdm.auto import tqdm

        self.out, self.tc, self.step, self.end = out, tc, step, end
        self.modules, self.optimizers, self.extra = modules, optimizers, extra
        self.log = RunLogger(out)
        self.bar = tqdm(total=tc.steps, initial=step, desc=desc, unit="step", disable=not tc.progress)

    def __enter__(self) -> TrainingRun:
        return self

    def advance(self) -> int:
        """Count one finished optimisation step; returns the new step number."""
        self.step += 1
        self.bar.update(1)
        return self.step

    def optimize(self, opt: torch.optim.Optimizer, params: Any, loss: torch.Tensor) -> float:
        """One optimiser step on ``loss``, gradients clipped to ``grad_clip``; returns the gradient norm."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, self.tc.grad_clip)
        opt.step()
        return gnorm.item()

    def log_train(self, step: int, lr: float, grad_norm: float, **losses: float) -> None:
        """Log ``train/<name>`` for each loss (``loss`` first: it goes on the progress line), the lr and the
        gradient norm, every ``log_every`` steps and at the last."""
        if step % self.tc.log_every == 0 or step == self.end:
            self.log.log(step, **{f"train/{k}": v for k, v in losses.items()}, **{"train/lr": lr,
                                                                                  "train/grad_norm": grad_norm})  # fmt: skip
            self.bar.set_postfix(loss=f"{losses['loss']:.3f}")

    def checkpoint(self) -> None:
        save_checkpoint(self.out, self.step, self.modules, self.optimizers, self.extra)
        if self.tc.keep_snapshots:  # for accuracy-against-training-time curves (benchmarks/ablation.py)
            import shutil

            snaps = self.out / "snapshots"
            snaps.mkdir(exist_ok=True)
            shutil.copytree(self.out / "checkpoint", snaps / f"step-{self.step}", dirs_exist_ok=True)
            with open(snaps / "cpu.txt", "a", encoding="utf-8") as f:  # this process's CPU seconds so far
                f.write(f"{self.step} {time.process_time():.2f} {int(time.time())}\n")

    def end_of_step(self, step: int, validate, summary=None) -> None:
        """Validate (``validate() -> {name: value}``) and checkpoint when due.

        ``summary(metrics) -> str`` picks what the progress line shows (default: every metric).
        """
        if step % self.tc.eval_every == 0 or step == self.tc.steps:
            metrics = validate()
            self.log.log(step, **metrics)
            text = summary(metrics) if summary else ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in metrics.items())
            self.bar.write(f"step {step}: {text}")
        if step % self.tc.ckpt_every == 0 or step == self.end:
            self.checkpoint()

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is KeyboardInterrupt:
                self.checkpoint()
                self.bar.write(f"interrupted: checkpoint saved at step {self.step}; continue with --resume")
        finally:
            self.bar.close()
            self.log.close()
        return False  # never swallow the exception
