"""Atomic, resumable training checkpoints in safetensors + JSON (never pickle).

A checkpoint is a folder ``OUT/checkpoint/`` holding one ``<name>.safetensors`` per module, one
``<name>.optim.safetensors`` per optimizer (its tensors) and ``state.json`` (step, optimizer
hyper-parameters, config, anything else JSON). It is written to a temporary folder and swapped in
with renames, so a crash leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT_DIR = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that is missing, torn, corrupt or does not match the run."""


def _optim_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optim_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        if not pid.isdigit() or int(pid) >= len(params):
            raise ValueError(f"optimizer tensor {key!r} names no parameter (the optimizer has {len(params)})")
        shape = params[int(pid)].shape
        if v.ndim > 0 and v.shape != shape:  # AdamW's moments have their parameter's shape; "step" is a scalar
            raise ValueError(f"optimizer tensor {key!r} has shape {tuple(v.shape)}, its parameter {tuple(shape)}")
        _check_finite(v, f"optimizer tensor {key!r}")
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    out_dir: str | os.PathLike,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict | None = None,
) -> Path:
    """Write the checkpoint for ``step`` atomically to ``out_dir/checkpoint``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _recover(out_dir)
    for stale in out_dir.glob(".checkpoint-*"):  # temporary folders of a run killed while writing
        if stale.name != ".checkpoint-old":
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".checkpoint-"))
    state: dict[str, Any] = {"step": step, "optimizers": {}, "extra": extra or {}}
    for name, m in modules.items():
        sd = {k: v.detach().contiguous().cpu() for k, v in m.state_dict().items()}
        save_file(sd, str(tmp / f"{name}.safetensors"))
    for name, opt in optimizers.items():
        tensors, meta = _optim_to_flat(opt)
        save_file(tensors, str(tmp / f"{name}.optim.safetensors"))
        state["optimizers"][name] = meta
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(tmp / "rng.safetensors"))
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    for f in tmp.iterdir():  # make the bytes durable before the swap
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    final, old = out_dir / CHECKPOINT_DIR, out_dir / ".checkpoint-old"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _recover(out_dir: Path) -> None:
    """A run killed between the two renames of :func:`save_checkpoint` left no ``checkpoint/`` but a complete
    ``.checkpoint-old/``: put it back (training resumes from that step and reaches the same weights)."""
    final, old = out_dir / CHECKPOINT_DIR, out_dir / ".checkpoint-old"
    if not final.exists() and (old / "state.json").is_file():
        old.rename(final)


def _load(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint file's tensors; a damaged file is a ValueError naming it."""
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise ValueError(f"{path.name}: {e}") from None


def _check_finite(t: torch.Tensor, what: str) -> None:
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{what} holds NaN or inf")


def _check_state(state: Any) -> None:
    """``state.json``'s fields, before anything is restored: a step that is a non-negative integer, and so on."""
    if not isinstance(state, dict):
        raise ValueError("state.json must hold an object")
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"state.json: 'step' must be a non-negative integer, got {step!r}")
    for key in ("optimizers", "extra"):
        if not isinstance(state.get(key), dict):
            raise ValueError(f"state.json: {key!r} must be an object, got {state.get(key)!r}")


def has_checkpoint(out_dir: str | os.PathLike) -> bool:
    if Path(out_dir).is_dir():
        _recover(Path(out_dir))
    return (Path(out_dir) / CHECKPOINT_DIR / "state.json").is_file()


def load_checkpoint(
    out_dir: str | os.PathLike, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> dict:
    """Restore modules, optimizers and RNG state in place (strictly); return the saved state dict."""
    ckpt = Path(out_dir) / CHECKPOINT_DIR
    if not has_checkpoint(out_dir):
        raise CheckpointError(f"no checkpoint to resume from in {out_dir}")
    try:
        state = json.loads((ckpt / "state.json").read_text())
        _check_state(state)
        rng = _load(ckpt / "rng.safetensors")
        if not isinstance(rng.get("torch"), torch.Tensor) or rng["torch"].dtype != torch.uint8:
            raise ValueError("rng.safetensors: 'torch' must be a uint8 tensor")
        for name, m in modules.items():
            sd = _load(ckpt / f"{name}.safetensors")
            for k, v in sd.items():
                _check_finite(v, f"{name}.safetensors: {k!r}")
            m.load_state_dict(sd, strict=True)
        for name, opt in optimizers.items():
            _optim_from_flat(opt, _load(ckpt / f"{name}.optim.safetensors"), state["optimizers"][name])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
    except (OSError, SafetensorError, json.JSONDecodeError, KeyError, RuntimeError, ValueError, TypeError, AttributeError,
            RecursionError) as e:  # fmt: skip
        raise CheckpointError(f"cannot resume from {ckpt}: {e}") from None
    return state
