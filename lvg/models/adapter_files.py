"""Adapter folders without the LMs: file names, peft's LoRA settings, reading and checking a folder, and folding
a peft adapter into a model. Nothing here imports transformers, so the painter's fine-tuning and its adapter
folders (:mod:`lvg.models.painter_adapters`) load without it; :mod:`lvg.models.adapters` builds on this for LMs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from lvg.component import read_json_object
from lvg.files import check_regular_file
from lvg.ranges import bounded, check_ranges

ADAPTER_META = "lvg_adapter.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
MODULE_WEIGHTS = "lvg_modules.safetensors"
PEFT_TYPES = (
    "LORA",
    "TRAINABLE_TOKENS",
)  # the peft adapters lvg writes and applies  # the bottleneck adapters' or the prefix's weights
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VOCAB_MATRICES = ("embed_tokens", "lm_head")  # LoRA on these covers the new tokens' rows with a low-rank delta


@dataclass
class LoraSettings:
    """peft's LoraConfig fields lvg exposes (``TARGETS``: the modules LoRA may go on; the LM's here)."""

    TARGETS: ClassVar[tuple[str, ...]] = LLAMA_PROJECTIONS + VOCAB_MATRICES
    rank: int = bounded(1, 4096, default=8)
    alpha: float = bounded(0.0, None, lo_open=True, default=16.0)
    dropout: float = bounded(0.0, 1.0, hi_open=True, default=0.0)
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS

    def __post_init__(self) -> None:
        check_ranges(self, prefix="finetune.lora: ")
        self.target_modules = tuple(self.target_modules)
        unknown = set(self.target_modules) - set(self.TARGETS)
        if not self.target_modules or unknown:
            raise ValueError(f"finetune.lora.target_modules must be some of {', '.join(self.TARGETS)}"
                             + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))  # fmt: skip


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft reads ``model.is_gradient_checkpointing``, which transformers 5 deprecates with a FutureWarning that
    says nothing to an lvg user: silence that one warning while peft wraps a model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def weights_sha256(lm: nn.Module) -> str:
    """SHA-256 of an LM's weights as float32 (names sorted): what an adapter records of its base."""
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def adapter_json(path: str | os.PathLike) -> dict | None:
    """An adapter folder's ``lvg_adapter.json`` (its role, base and settings), or None where the folder has none;
    a special file in its place is an error naming it."""
    meta = Path(path) / ADAPTER_META
    check_regular_file(meta)
    return read_json_object(meta) if meta.is_file() else None


def read_adapter_meta(path: Path, role: str, files: tuple[str, ...] = ()) -> dict:
    """``path/lvg_adapter.json`` of an adapter folder for ``role``, after checking that the folder holds it (and
    ``files``), no pickled ``adapter_model.bin`` (peft would unpickle it), and that the role is ``role``."""
    for name in (ADAPTER_META, *files):
        check_regular_file(path / name)
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not an lvg {role} adapter folder (no {name})")
    if (path / "adapter_model.bin").exists():
        raise ValueError(f"{path} holds adapter_model.bin: lvg loads safetensors only and never unpickles")
    meta = read_json_object(path / ADAPTER_META)
    if meta.get("role") != role:
        raise ValueError(f"{path} is an adapter for the {str(meta.get('role'))[:40]!r}, not the {role} (role in "
                         f"{path / ADAPTER_META})")  # fmt: skip
    return meta


def peft_folded(model: nn.Module, path: Path) -> nn.Module:
    """``model`` with the peft adapter in the folder ``path`` folded in. The config is read by lvg first (size,
    depth, encoding, a BOM) and handed to peft; an error names ``adapter_config.json`` or
    ``adapter_model.safetensors``, whichever peft could not use."""
    from peft import PeftConfig, PeftModel

    data = read_json_object(path / PEFT_CONFIG)
    # what lvg writes: a plain LoRA or TrainableTokens adapter (peft's other switches need other libraries or
    # cannot be folded into the weights)
    unusable = [k for k in ("megatron_config", "alora_invocation_tokens", "layer_replication") if data.get(k)]
    if data.get("peft_type") not in PEFT_TYPES or data.get("lora_bias") or unusable:
        raise ValueError(f"{path / PEFT_CONFIG}: lvg applies plain LoRA and TrainableTokens adapters (peft_type one "
                         f"of {', '.join(PEFT_TYPES)}, without lora_bias, megatron_config, alora_invocation_tokens or "
                         f"layer_replication); got peft_type {str(data.get('peft_type'))[:40]!r}"
                         + (f" with {', '.join(unusable)}" if unusable else ""))  # fmt: skip
    try:
        config = PeftConfig.from_peft_type(**data)
    except (ValueError, TypeError, KeyError, AttributeError, ImportError) as e:
        raise ValueError(f"{path / PEFT_CONFIG} is not a config peft can use: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:300]}") from None  # fmt: skip
    check_adapter_weights(path / PEFT_WEIGHTS)
    try:
        with quiet_peft():
            peft_model = PeftModel.from_pretrained(model, str(path), config=config, is_trainable=False,
                                                   use_safetensors=True)  # fmt: skip
            return peft_model.merge_and_unload()
    except (ValueError, TypeError, KeyError, RuntimeError, AttributeError, IndexError, ImportError,
            NotImplementedError) as e:  # weights or settings that do not fit the base  # fmt: skip
        raise ValueError(f"{path / PEFT_WEIGHTS} with {path / PEFT_CONFIG} does not fit its base: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:300]}") from None  # fmt: skip


def check_adapter_weights(file: Path) -> dict[str, torch.Tensor]:
    """The adapter's safetensors file reads, and every float tensor in it is finite (returned); else a ValueError
    naming it."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except Exception as e:  # safetensors' own error types (a truncated or garbled file)
        raise ValueError(f"{file} is not a readable safetensors file: {' '.join(str(e).split())[:200]}") from None
    for k, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{file}: tensor {k!r} holds NaN or infinite values (corrupt weights)")
    return state
