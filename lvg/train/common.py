"""Trainer conventions shared by every lvg trainer (image tokenizer, LLM, ...).

One typed :class:`TrainConfig`; device and precision selection (bf16 autocast on GPUs, fp32 on
CPU); warmup + cosine learning rate; a run folder with TensorBoard logs, ``metrics.jsonl`` and an
atomic resumable checkpoint (see :mod:`lvg.train.checkpoint`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
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

from .checkpoint import has_checkpoint


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
    grad_accum: int = bounded(
        1, None, default=1
    )  # micro-batches per optimizer step (batch_size is the global batch, split among them)
    ema_decay: float = bounded(
        0.0, 1.0, hi_open=True, default=0.0
    )  # > 0 keeps an EMA copy of the model's weights ("ema" in the checkpoint)
    best_metric: str | None = None  # validation metric whose best checkpoint is kept in OUT/best (and saved)
    best_mode: str = "max"  # max | min: which direction of best_metric is better
    patience: int = bounded(
        0, None, default=0
    )  # stop after this many validations without a better best_metric (0: never)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be max or min, got {self.best_mode!r}")
        if self.patience and not self.best_metric:
            raise ValueError("patience needs best_metric (the validation metric to watch)")
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
        if device.type == "cpu":
            _warn_slow_cpu_bf16()
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as torch's own check says."""
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(c() for c in checks if c is not None)


@functools.cache
def _warn_slow_cpu_bf16() -> None:
    """Say once that bf16 autocast on a CPU without native bf16 is emulated: 18x slower than fp32 for the emoji
    restorer on a 2-core AVX2 machine (29 s against 1.6 s a step), where the AVX512-BF16 machine the configs were
    written on gained ~1.5-2x."""
    if cpu_has_native_bf16():
        return
    import warnings

    warnings.warn("train.precision=bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX) is emulated and many "
                  "times slower than fp32 here: pass train.precision=fp32", stacklevel=3)  # fmt: skip


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's rate to ``lr`` times the group's ``lr_scale`` (1 when it has none)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and processes): per-row noise or damage that resume and
    sharding draw again the same."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big") >> 1


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
