"""Saving and strictly loading a module's weights as safetensors (never pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}  # fmt: skip
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class WeightsError(ValueError):
    """A weights file that does not fit its module: unreadable, mismatched, or holding NaN/inf (names the file)."""


def save_weights(model: nn.Module, file: str | os.PathLike, dtype: torch.dtype | None = None,
                 metadata: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Write ``model``'s state dict to ``file``; floating tensors cast to ``dtype`` when given (e.g. fp16 to ship)."""
    state = {k: v.detach().to(dtype if dtype and v.is_floating_point() else v.dtype).contiguous().cpu()
             for k, v in model.state_dict().items()}  # fmt: skip
    save_file(state, str(file), metadata={"format": "pt", **(metadata or {})})
    return Path(file)


def missing_weights_error(what: str, file: Path) -> FileNotFoundError:
    """The error for a missing ``model.safetensors``; when pickle weights lie there instead, it says what to do."""
    pickles = (
        sorted(p.name for p in file.parent.glob("*") if p.suffix in PICKLE_SUFFIXES) if file.parent.is_dir() else []
    )
    if pickles:
        return FileNotFoundError(
            f"{what} file missing: {file}; {file.parent} holds only pickle weights ({', '.join(pickles)}), which lvg "
            f"never loads (unpickling can run code): convert them to {file.name} with safetensors in a trusted process"
        )
    return FileNotFoundError(f"{what} file missing: {file}{symlink_note(file)}")


def symlink_note(path: Path) -> str:
    """``" (a broken or looping symlink)"`` when ``path`` is a symlink that resolves to nothing, else ``""``."""
    return " (a broken or looping symlink)" if path.is_symlink() and not path.exists() else ""


def _first_lines(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], file: str | os.PathLike,
                config_file: str | os.PathLike) -> None:  # fmt: skip
    """``state`` has exactly ``expected``'s names, shapes and kinds of dtype, and only finite floats; else a
    :class:`WeightsError` naming the file and the tensor."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise WeightsError(f"{file} does not match {config_file}: missing tensors {missing[:3]}{'...' * (len(missing) > 3)}"
                           f", unexpected tensors {extra[:3]}{'...' * (len(extra) > 3)}")  # fmt: skip
    for k, want in expected.items():
        got = state[k]
        if got.shape != want.shape:
            raise WeightsError(f"{file} does not match {config_file}: tensor {k!r} has shape {list(got.shape)}, "
                               f"expected {list(want.shape)}")  # fmt: skip
        if got.is_floating_point() != want.is_floating_point() or (got.dtype == torch.bool) != (
            want.dtype == torch.bool
        ):
            raise WeightsError(f"{file}: tensor {k!r} is stored as {got.dtype}, expected a {want.dtype} kind of tensor")
        if got.is_floating_point() and got.device.type != "meta" and not bool(torch.isfinite(got).all()):
            raise WeightsError(f"{file}: tensor {k!r} holds NaN or infinite values (corrupt weights)")


def check_header(file: str | os.PathLike, expected: dict[str, torch.Tensor], config_file: str | os.PathLike) -> None:
    """Check the tensor names, shapes and dtypes in ``file``'s header against ``expected`` (e.g. a module built on
    the meta device) without reading any weights, so a config that does not fit its weights fails before anything
    is allocated."""
    try:
        with safe_open(str(file), framework="pt") as f:
            state = {k: torch.empty(f.get_slice(k).get_shape(), dtype=_DTYPES.get(f.get_slice(k).get_dtype(), torch.uint8),
                                    device="meta") for k in f.keys()}  # fmt: skip
    except (SafetensorError, OSError) as e:
        raise WeightsError(
            f"{file} is not a readable safetensors file (truncated or corrupt?): {_first_lines(e)}"
        ) from None
    check_state(state, expected, file, config_file)


def load_weights(model: nn.Module, file: str | os.PathLike, config_file: str | os.PathLike) -> nn.Module:
    """Load ``file`` into ``model`` strictly (computing in float32), with errors that name the problem: unreadable
    files, missing or unexpected tensors, wrong shapes or dtypes, and NaN/inf weights are :class:`WeightsError`."""
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise WeightsError(
            f"{file} is not a readable safetensors file (truncated or corrupt?): {_first_lines(e)}"
        ) from None
    check_state(state, model.state_dict(), file, config_file)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model
