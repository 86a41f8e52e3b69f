"""The one training loop: every lvg trainer is a small :class:`Task` that :func:`run` trains.

A task says *what* to learn: its modules, the batch of a step (a pure function of the step, so resuming and
sharding need no data state), its losses, its validation and the artefact it saves. The loop owns *how*: device
and precision, AdamW and the warmup + cosine schedule, gradient accumulation, clipping, optional EMA weights,
logging, atomic checkpoints, resume, early stopping, Ctrl-C, non-finite guards and multi-process training.

Multi-process: launched by ``torchrun`` (gloo on CPU, nccl on GPU), the same command runs on 1 or N processes.
Every optimizer step has a global batch of ``train.batch_size`` rows; shard ``s`` of ``world * grad_accum``
(rank ``r``, micro-batch ``m``: ``s = m * world + r``) takes rows ``s, s + world * grad_accum, ...``. Each shard's
loss is weighted by its share of the global mean (rows, or tokens when a loss says ``"weight"``), gradients are
summed over shards and ranks (one all-reduce per optimizer step) and divided by the total weight, so the update
is that of one process on the whole batch. Only rank 0 logs, validates and writes checkpoints; checkpoints hold
the plain modules, so a run resumes on any number of processes.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint, save_checkpoint
from .common import (
    RunLogger,
    TrainConfig,
    autocast,
    lr_at,
    prepare_run_dir,
    resolve_device,
    seed_everything,
    set_lr,
    write_json,
)

WEIGHT = "weight"  # optional entry of a loss dict: this micro-batch's share of the global mean (default 1)


def full_precision(device: torch.device) -> torch.autocast:
    """Autocast off inside a loss (e.g. a frozen tokenizer making targets, as before the forward's autocast)."""
    return torch.autocast(device.type, enabled=False)


class NonFiniteError(ValueError):
    """A loss or gradient became NaN or infinite: training stops and the last good checkpoint is kept."""


@dataclass(frozen=True)
class Shard:
    """Which rows of a step's global batch this process computes now: rows ``index, index + count, ...``."""

    index: int = 0
    count: int = 1

    def rows(self, batch_size: int) -> range:
        """Row numbers (0-based, within the global batch) of this shard."""
        return range(self.index, batch_size, self.count)

    def take(self, items: list) -> list:
        """This shard's items of a global batch drawn as a list."""
        return items[self.index :: self.count]


@dataclass
class Update:
    """One optimizer of a task and the loss it minimises (the first entry of ``loss(batch)``'s dict).

    ``params`` is what :class:`torch.optim.AdamW` takes (parameters or param-group dicts). ``lr=None`` follows
    the config's warmup + cosine schedule; a number is a constant rate. ``betas`` / ``weight_decay`` default to
    the config's. ``clip`` clips the gradient norm to ``grad_clip`` (over ``clip_params`` when given: the norm's
    summation order is the module's, as in a plain ``clip_grad_norm_(model.parameters())``). ``active(step)`` says whether it runs at a
    step (a discriminator that starts late). Updates run in order; a later one may read what an earlier loss
    left in the batch (e.g. the generator's detached output).
    """

    name: str
    params: Iterable
    loss: Callable[[Any], dict[str, torch.Tensor]]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    clip: bool = True
    active: Callable[[int], bool] | None = None
    clip_params: Iterable | None = None  # the parameters whose norm is clipped, in this order (default: params)


class Task:
    """What a trainer learns. Subclasses set ``name``, ``modules`` and ``config`` and implement :meth:`batch`,
    :meth:`loss` and :meth:`save`; the rest has defaults."""

    name: str = "train"
    modules: dict[str, nn.Module]  # checkpointed by name; the first one gets the EMA copy
    config: dict  # written to OUT/config.json and into every checkpoint
    batch_in_workers: bool = False  # batch() is CPU-only and may run in DataLoader workers (train.num_workers)
    shardable: bool = True  # its loss is a mean over rows (or weighted tokens), so shards add up to the batch
    ema: nn.Module | None = None  # set by the loop when train.ema_decay > 0

    def updates(self) -> list[Update]:
        """The optimizers and their losses: by default one AdamW over :meth:`param_groups` on :meth:`loss`."""
        return [Update("opt", self.param_groups(), self.loss)]

    def param_groups(self) -> list:
        """What the default update trains: every module's parameters, or param-group dicts, whose ``lr_scale``
        multiplies the scheduled rate (e.g. LoRA+)."""
        return [p for m in self.modules.values() for p in m.parameters()]

    def batch(self, step: int, shard: Shard) -> Any:
        """This shard of the global batch of ``step`` (a pure function of both)."""
        raise NotImplementedError

    def loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """Losses of a batch, ``loss`` first (the one minimised); ``weight`` (optional) as :data:`WEIGHT`."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        return {}

    def summary(self, metrics: dict[str, float]) -> str:
        """The progress line's text after a validation."""
        return ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in metrics.items())

    def scalars(self, step: int) -> dict[str, float]:
        """Further values logged with the training losses (after the step)."""
        return {}

    def should_stop(self, step: int) -> bool:
        """True ends the run at ``step`` (validated and checkpointed), e.g. when a time budget is spent."""
        return False

    def state(self) -> dict:
        """JSON kept in the checkpoint besides ``config``."""
        return {}

    def load_state(self, extra: dict) -> None:
        """Restore what :meth:`state` returned (on resume)."""

    def save(self, out: Path) -> Path:
        """Write the trained artefact under ``out``; return its folder."""
        raise NotImplementedError


class MultiTask(Task):
    """Several tasks trained together on shared modules: the loss is the weighted sum of theirs.

    Each sub-task draws its own batch of the step; ``weights`` scale their losses (default 1). The modules
    are the union of the sub-tasks' (one model shared by name is checkpointed once); the artefact is the first
    sub-task's. E.g. one LM trained on planning, captioning and question answering."""

    def __init__(self, tasks: dict[str, Task], weights: dict[str, float] | None = None, name: str = "multi-task"):
        self.tasks, self.weights, self.name = tasks, {k: 1.0 for k in tasks} | (weights or {}), name
        self.modules = {}
        for t in tasks.values():
            for k, m in t.modules.items():
                if k in self.modules and self.modules[k] is not m:
                    raise ValueError(f"tasks name different modules {k!r}: give shared modules one name each")
                self.modules[k] = m
        self.config = {k: t.config for k, t in tasks.items()}
        self.shardable = all(t.shardable for t in tasks.values())

    def batch(self, step: int, shard: Shard) -> dict[str, Any]:
        return {k: t.batch(step, shard) for k, t in self.tasks.items()}

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        parts = {k: t.loss(batch[k]) for k, t in self.tasks.items()}
        total = sum(self.weights[k] * p["loss"] for k, p in parts.items())
        return {"loss": total, **{f"{k}/{n}": v for k, p in parts.items() for n, v in p.items() if n != WEIGHT}}

    def validate(self) -> dict[str, float]:
        return {k: v for t in self.tasks.values() for k, v in t.validate().items()}

    def save(self, out: Path) -> Path:
        return next(iter(self.tasks.values())).save(out)


# ----------------------------------------------------------------------------- EMA


def ema_decay_at(decay: float, step: int) -> float:
    """EMA decay after optimisation step ``step`` (0-based): diffusers' EMAModel warmup ``(1 + step) / (10 + step)``."""
    return min(decay, (1 + step) / (10 + step))


def ema_avg_fn(decay: float) -> Callable:
    """``avg_fn`` for :class:`torch.optim.swa_utils.AveragedModel`: an exponential moving average whose decay warms
    up as diffusers' EMAModel's (``n_averaged`` starts at 1, so update ``n`` follows step ``n - 1``)."""

    def avg(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        return averaged.lerp(current, 1 - ema_decay_at(decay, int(num_averaged) - 1))

    return avg


def make_ema(module: nn.Module, decay: float) -> nn.Module:
    """An EMA copy of ``module`` (torch's AveragedModel; the initial copy counts as the first average)."""
    from torch.optim.swa_utils import AveragedModel

    ema = AveragedModel(module, avg_fn=ema_avg_fn(decay)).requires_grad_(False).eval()
    ema.n_averaged.fill_(1)
    return ema


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Dist:
    """This process's place among the ``torchrun`` processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.on:
            torch.distributed.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.on:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def start_processes(device_name: str) -> tuple[Dist, bool]:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE`` > 1); returns (Dist, whether we created it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), False
    dist = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if torch.distributed.is_initialized():
        return dist, False
    gpu = torch.cuda.is_available() and device_name != "cpu"
    if gpu:
        torch.cuda.set_device(dist.local_rank)
    torch.distributed.init_process_group("nccl" if gpu else "gloo")
    return dist, True


def pick_device(name: str, dist: Dist) -> torch.device:
    """The config's device; under torchrun on GPUs, this process's GPU (``LOCAL_RANK``)."""
    if dist.on and name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    return resolve_device(name)


class _StepBatches(torch.utils.data.IterableDataset):
    """The micro-batches of steps ``start, start + 1, ...`` for DataLoader workers (worker ``w`` of ``n`` makes
    steps ``start + w, start + w + n, ...``; the DataLoader hands them back in step order)."""

    def __init__(self, task: Task, start: int, shards: list[Shard]):
        super().__init__()
        self.task, self.start, self.shards = task, start, shards

    def __iter__(self) -> Iterator[list]:
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.start + wid
        while True:
            yield [self.task.batch(step, s) for s in self.shards]
            step += nw


def _batches(task: Task, tc: TrainConfig, start: int, shards: list[Shard], device: torch.device) -> Iterator[list]:
    """The micro-batches of each step from ``start`` on. Tasks whose batches may be made in workers go through a
    DataLoader even without workers (its iterator draws one number from torch's RNG, as the trainers always did)."""
    if task.batch_in_workers:
        yield from torch.utils.data.DataLoader(_StepBatches(task, start, shards), batch_size=None,
                                               num_workers=tc.num_workers, pin_memory=device.type == "cuda",
                                               persistent_workers=tc.num_workers > 0)  # fmt: skip
    else:
        step = start
        while True:
            yield [task.batch(step, s) for s in shards]
            step += 1


# ----------------------------------------------------------------------------- the loop


def _params(update: Update) -> list[nn.Parameter]:
    return [p for g in update.params for p in (g["params"] if isinstance(g, dict) else [g])]


def _check_finite(out: Path, modules: dict[str, nn.Module], step: int) -> None:
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise NonFiniteError(f"{name}.{k} holds NaN or inf at step {step}; not checkpointed, the last good "
                                     f"checkpoint in {out / CHECKPOINT_DIR} is kept")  # fmt: skip


def _snapshot_cpu_offset(out: Path, step: int) -> float:
    """What to add to this process's CPU seconds so that ``snapshots/cpu.txt`` counts the whole run's: the seconds
    recorded at the step this call resumes from (0 for a fresh run). Lines past that step (written by a killed call
    after its last checkpoint was taken) are dropped."""
    cpu = out / "snapshots" / "cpu.txt"
    if not cpu.is_file():
        return 0.0
    lines = [ln for ln in cpu.read_text(encoding="utf-8").splitlines() if ln.split() and int(ln.split()[0]) <= step]
    tmp = cpu.with_suffix(".tmp")
    tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    tmp.replace(cpu)
    return float(lines[-1].split()[1]) - time.process_time() if lines and step > 0 else 0.0


class _Run:
    """State of one call of :func:`run` (kept apart so :func:`run` reads top to bottom)."""

    def __init__(self, tc: TrainConfig, task: Task, out: Path, dist: Dist, step: int, end: int):
        self.tc, self.task, self.out, self.dist, self.step, self.end = tc, task, out, dist, step, end
        self.log = RunLogger(out) if dist.main else None
        from tqdm.auto import tqdm

        self.bar = tqdm(total=tc.steps, initial=step, desc=task.name, unit="step",
                        disable=not tc.progress or not dist.main)  # fmt: skip
        self.best: float | None = None
        self.stale = 0  # validations since the best one
        self.cpu0 = _snapshot_cpu_offset(out, step) if tc.keep_snapshots and dist.main else 0.0

    def checkpoint(self, modules: dict, optims: dict) -> None:
        if not self.dist.main:
            return
        _check_finite(self.out, modules, self.step)
        extra = {"config": self.task.config, **self.task.state()}
        if self.tc.best_metric:
            extra["early_stopping"] = {"best": self.best, "stale": self.stale}
        save_checkpoint(self.out, self.step, modules, optims, extra)
        if self.tc.keep_snapshots:  # for accuracy-against-training-time curves (benchmarks/ablation.py)
            snaps = self.out / "snapshots"
            snaps.mkdir(exist_ok=True)
            shutil.copytree(self.out / CHECKPOINT_DIR, snaps / f"step-{self.step}", dirs_exist_ok=True)
            with open(snaps / "cpu.txt", "a", encoding="utf-8") as f:  # the run's CPU seconds so far (all calls)
                f.write(f"{self.step} {self.cpu0 + time.process_time():.2f} {int(time.time())}\n")

    def validate(self) -> tuple[dict[str, float], bool]:
        """Rank 0 validates; returns (metrics, whether they are the best so far). Other ranks wait."""
        improved = False
        metrics: dict[str, float] = {}
        if self.dist.main:
            metrics = self.task.validate()
            if metrics:  # nothing to validate (e.g. a folder with no held-out rows): no empty "step N:" lines
                self.log.log(self.step, **metrics)
                self.bar.write(f"step {self.step}: {self.task.summary(metrics)}")
            key = self.tc.best_metric
            if key:
                if key not in metrics:
                    raise ValueError(f"train.best_metric {key!r} is not a validation metric ({sorted(metrics)})")
                v = metrics[key]
                sign = 1 if self.tc.best_mode == "max" else -1
                improved = self.best is None or sign * (v - self.best) > 0
                self.best, self.stale = (v, 0) if improved else (self.best, self.stale + 1)
        self.stale = self.dist.broadcast(self.stale)
        return metrics, self.dist.broadcast(improved)

    def close(self) -> None:
        self.bar.close()
        if self.log is not None:
            self.log.close()


def run(tc: TrainConfig, make_task: Callable[[torch.device], Task], resume: bool = False,
        stop_after: int | None = None) -> Path:  # fmt: skip
    """Train (or resume) the task ``make_task(device)`` builds; returns the folder of its saved artefact.

    ``stop_after`` ends this call after that many steps (checkpointed), to be continued with ``resume=True``;
    the schedule is always that of ``tc.steps``. ``OUT/config.json`` is written only once the task is built and
    the checkpoint (on resume) has loaded."""
    dist, owns_group = start_processes(tc.device)
    try:
        out = _run(tc, make_task, resume, stop_after, dist)
        dist.barrier()  # every rank past its last exchange before the group is torn down
        return out
    finally:
        if owns_group:
            torch.distributed.destroy_process_group()


def _run(tc: TrainConfig, make_task: Callable[[torch.device], Task], resume: bool, stop_after: int | None,
         dist: Dist) -> Path:  # fmt: skip
    out = prepare_run_dir(tc, resume)
    device = pick_device(tc.device, dist)
    seed_everything(tc.seed)
    task = make_task(device)
    parts = dist.world * tc.grad_accum
    if parts > 1 and not task.shardable:
        raise ValueError(f"{task.name} cannot split its batch (its loss needs the whole batch): train it on one "
                         "process with train.grad_accum=1")  # fmt: skip
    if tc.batch_size % parts:
        raise ValueError(f"train.batch_size {tc.batch_size} must be divisible by processes x train.grad_accum = "
                         f"{dist.world} x {tc.grad_accum}")  # fmt: skip
    if tc.ema_decay > 0:
        task.ema = make_ema(next(iter(task.modules.values())), tc.ema_decay)
    modules = dict(task.modules) | ({"ema": task.ema} if task.ema is not None else {})
    updates = task.updates()
    optims, params, clipped = {}, {}, {}
    for u in updates:
        u.params = list(u.params)
        wd = tc.weight_decay if u.weight_decay is None else u.weight_decay
        optims[u.name] = torch.optim.AdamW(u.params, lr=tc.lr if u.lr is None else u.lr,
                                           betas=u.betas or (tc.beta1, tc.beta2), weight_decay=wd)  # fmt: skip
        params[u.name] = _params(u)
        clipped[u.name] = params[u.name] if u.clip_params is None else list(u.clip_params)
    step = 0
    saved: dict = {}
    if resume:
        state = load_checkpoint(out, modules, optims)
        step, saved = state["step"], state["extra"]
        if step > tc.steps:
            raise CheckpointError(f"{out / CHECKPOINT_DIR} is at step {step}, past train.steps={tc.steps}")
        task.load_state(saved)
    if dist.on:  # every rank starts from rank 0's weights
        for m in modules.values():
            for t in m.state_dict().values():
                torch.distributed.broadcast(t, src=0)
    if dist.main:
        write_json(out / "config.json", task.config)
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    shards = [Shard(m * dist.world + dist.rank, parts) for m in range(tc.grad_accum)]
    r = _Run(tc, task, out, dist, step, end)
    if tc.best_metric and "early_stopping" in saved:
        r.best, r.stale = saved["early_stopping"].get("best"), int(saved["early_stopping"].get("stale", 0))
    try:
        batches = _batches(task, tc, step, shards, device) if step < end else iter(())
        stopped = dist.broadcast(task.should_stop(r.step))  # e.g. a time budget spent before this call
        while r.step < end and not stopped:
            micro = next(batches)
            lr = lr_at(r.step, tc)
            logged: dict[str, float] = {"train/lr": lr}
            for u in updates:
                if u.active is not None and not u.active(r.step):
                    continue
                if u.lr is None:
                    set_lr(optims[u.name], lr)
                logged |= _optimize(u, optims[u.name], params[u.name], clipped[u.name], micro, tc, device, dist, r.step,
                                    "train/grad_norm" if u is updates[0] else f"train/{u.name}_grad_norm")  # fmt: skip
            if task.ema is not None:
                logged["train/ema_decay"] = ema_decay_at(tc.ema_decay, r.step)
                task.ema.update_parameters(modules[next(iter(task.modules))])
            r.step += 1
            r.bar.update(1)
            stopped = dist.broadcast(task.should_stop(r.step))
            if dist.main and (r.step % tc.log_every == 0 or r.step == end):
                r.log.log(r.step, **logged, **task.scalars(r.step))
                r.bar.set_postfix(loss=f"{logged.get('train/loss', math.nan):.4g}")
            improved = False
            if r.step % tc.eval_every == 0 or r.step == tc.steps or stopped:
                _, improved = r.validate()
                stopped = stopped or (tc.patience > 0 and r.stale >= tc.patience)
            if r.step % tc.ckpt_every == 0 or r.step == end or stopped or improved:
                r.checkpoint(modules, optims)
                if improved and dist.main:  # OUT/best/checkpoint: the best validation's checkpoint
                    shutil.copytree(out / CHECKPOINT_DIR, out / "best" / CHECKPOINT_DIR, dirs_exist_ok=True)
    except KeyboardInterrupt:
        r.checkpoint(modules, optims)
        r.bar.write(f"interrupted: checkpoint saved at step {r.step}; continue with --resume")
        raise
    finally:
        r.close()
    if tc.best_metric and (out / "best" / CHECKPOINT_DIR).is_dir():  # the artefact holds the best validated weights
        load_checkpoint(out / "best", modules, {})
    return dist.broadcast(task.save(out) if dist.main else None)  # the others wait for rank 0's artefact


def _optimize(u: Update, opt: torch.optim.Optimizer, params: list, clipped: list, micro: list, tc: TrainConfig,
              device: torch.device, dist: Dist, step: int, norm_key: str) -> dict[str, float]:  # fmt: skip
    """One optimizer step of ``u`` over this process's micro-batches; returns the logged values (global means)."""
    opt.zero_grad(set_to_none=True)
    if len(micro) == 1 and not dist.on:  # one process, one micro-batch: the plain step
        with autocast(device, tc.precision):
            losses = u.loss(micro[0])
        losses.pop(WEIGHT, None)
        main = next(iter(losses.values()))
        values = {k: float(v.detach() if torch.is_tensor(v) else v) for k, v in losses.items()}
        if not math.isfinite(values[next(iter(values))]):
            raise NonFiniteError(f"the {next(iter(values))} is {main.item()} at step {step + 1}: stopped before the "
                                 "optimizer step; the last good checkpoint is kept")  # fmt: skip
        main.backward()
    else:  # shards: sum weight * loss over micro-batches and ranks, divide by the total weight
        sums: dict[str, torch.Tensor] = {}
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in micro:
            with autocast(device, tc.precision):
                losses = u.loss(batch)
            w = torch.as_tensor(losses.pop(WEIGHT, 1.0), dtype=torch.float64, device=device)
            main = next(iter(losses.values()))
            (main * w.float()).backward()
            total = total + w
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + torch.as_tensor(v, device=device).detach().double() * w
        keys = list(sums)
        vec = torch.stack([total, *(sums[k] for k in keys)])
        if dist.on:
            torch.distributed.all_reduce(vec)
            has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=device)
            torch.distributed.all_reduce(has, op=torch.distributed.ReduceOp.MAX)  # a gradient on any rank: on all
            for p, h in zip(params, has.tolist(), strict=True):
                if h and p.grad is None:
                    p.grad = torch.zeros_like(p)
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                flat = torch.cat([g.reshape(-1) for g in grads])
                torch.distributed.all_reduce(flat)
                i = 0
                for g in grads:
                    g.copy_(flat[i : i + g.numel()].view_as(g))
                    i += g.numel()
        for p in params:
            if p.grad is not None:
                p.grad.div_(float(vec[0]))
        values = {k: float(vec[i + 1] / vec[0]) for i, k in enumerate(keys)}
        if not math.isfinite(values[keys[0]]):
            raise NonFiniteError(f"the {keys[0]} is {values[keys[0]]} at step {step + 1}: stopped before the "
                                 "optimizer step; the last good checkpoint is kept")  # fmt: skip
    out = {f"train/{k}": v for k, v in values.items()}
    if u.clip:
        gnorm = torch.nn.utils.clip_grad_norm_(clipped, tc.grad_clip)
        if not torch.isfinite(gnorm):
            raise NonFiniteError(f"the gradient norm is {gnorm.item()} at step {step + 1}: stopped before the "
                                 "optimizer step; the last good checkpoint is kept")  # fmt: skip
        out[norm_key] = gnorm.item()
    opt.step()
    return out
