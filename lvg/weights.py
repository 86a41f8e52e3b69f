"""Saving and strictly loading a module's weights as safetensors (never pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


def save_weights(model: nn.Module, file: str | os.PathLike, dtype: torch.dtype | None = None,
                 metadata: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Write ``model``'s state dict to ``file``; floating tensors cast to ``dtype`` when given (e.g. fp16 to ship)."""
    state = {k: v.detach().to(dtype if dtype and v.is_floating_point() else v.dtype).contiguous().cpu()
             for k, v in model.state_dict().items()}  # fmt: skip
    save_file(state, str(file), metadata={"format": "pt", **(metadata or {})})
    return Path(file)


def load_weights(model: nn.Module, file: str | os.PathLike, config_file: str | os.PathLike) -> nn.Module:
    """Load ``file`` into ``model`` strictly (computing in float32), with errors that name the problem."""
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{file} is not a readable safetensors file (truncated or corrupt?): {e}") from None
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{file} does not match {config_file}: {e}") from None
    return model
