"""Fine-tuning a trained painter on new labels, with Hugging Face peft: the code painter
(:class:`~lvg.models.painter.Painter`) and the GAN painter (:class:`~lvg.models.gan.GanPainter`) alike. Each painter
class declares what fine-tuning needs: ``adapter_role`` (the role its adapters name), ``vocab_tables`` (its embedding
tables indexed by a vocabulary of its config) and ``lora_layers`` (the layers LoRA may go on).

- :func:`transplant_painter` moves a base painter onto a vocabulary that adds new label words and backgrounds: every
  weight is the base's, the known words' and backgrounds' rows too; a new row starts at the mean of the base's rows.
- :func:`prepare_painter` readies it for ``full`` (every weight trains) or ``lora`` (peft's LoRA on the painter's
  convolutions, which peft supports for ``nn.Conv2d``, plus the new rows through peft's ``trainable_token_indices``).
- :func:`adapt_painter` does both for a training run, :func:`save_painter_run` writes what it trained;
- :func:`save_painter_adapter` / :func:`load_painter_adapter`: a LoRA painter adapter in peft's format
  (safetensors only) plus ``lvg_adapter.json`` (role ``painter`` or ``gan painter``, the base painter's weights'
  SHA-256, the adapted painter's config), applied by ``PlannedPipeline.load_adapter`` like a planner adapter.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from lvg.component import config_from_dict
from lvg.models.adapter_files import (
    ADAPTER_META,
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    LoraSettings,
    peft_folded,
    quiet_peft,
    read_adapter_meta,
    weights_sha256,
)
from lvg.models.gan import GanPainter, GanPainterConfig
from lvg.models.painter import Painter, PainterConfig

AnyPainter = Painter | GanPainter
AnyPainterConfig = PainterConfig | GanPainterConfig

PAINTER_METHODS = ("full", "lora")
PAINTER_CONVS = Painter.lora_layers


@dataclass
class PainterLoraSettings(LoraSettings):
    """peft's LoraConfig fields for the code painter's convolutions."""

    TARGETS: ClassVar[tuple[str, ...]] = Painter.lora_layers
    target_modules: tuple[str, ...] = Painter.lora_layers


@dataclass
class GanPainterLoraSettings(LoraSettings):
    """peft's LoraConfig fields for the GAN painter's sprite decoder (its linear, FiLM and conv layers)."""

    TARGETS: ClassVar[tuple[str, ...]] = GanPainter.lora_layers
    target_modules: tuple[str, ...] = GanPainter.lora_layers


@dataclass
class PainterFinetuneConfig:
    """How ``lvg train painter`` starts from a trained painter (``base`` None: from scratch)."""

    LORA: ClassVar[type] = PainterLoraSettings
    base: str | None = None  # a painter folder, or a model folder (its code painter: PlannedPipeline.painter_folder)
    method: str = "full"  # full | lora
    lora: PainterLoraSettings = field(default_factory=PainterLoraSettings)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = self.LORA(**self.lora)
        if self.method not in PAINTER_METHODS:
            raise ValueError(f"finetune.method must be one of {', '.join(PAINTER_METHODS)}, got {self.method!r}")
        if self.method != "full" and self.base is None:
            raise ValueError(f"finetune.method {self.method} needs finetune.base (the painter to adapt)")


@dataclass
class GanPainterFinetuneConfig(PainterFinetuneConfig):
    """How ``lvg train gan-painter`` starts from a trained GAN painter (``base`` None: from scratch)."""

    LORA: ClassVar[type] = GanPainterLoraSettings
    base: str | None = None  # a GAN painter folder, or a model folder (its GAN painter)
    lora: GanPainterLoraSettings = field(default_factory=GanPainterLoraSettings)


def joint_painter_config(base: AnyPainterConfig, vocabulary: dict) -> AnyPainterConfig:
    """The base painter's config with ``vocabulary``'s words and backgrounds added (the base's first, in order)."""
    if vocabulary["canvas"] != base.canvas:
        raise ValueError(f"the data's canvas {vocabulary['canvas']} differs from the base painter's {base.canvas}: a "
                         "painter adapts only to images of its own size")  # fmt: skip
    words = [*base.label_words, *(w for w in vocabulary["label_words"] if w not in base.label_words)]
    bgs = [*base.backgrounds, *(b for b in vocabulary["backgrounds"] if b not in base.backgrounds)]
    return dataclasses.replace(base, label_words=words, backgrounds=bgs,
                               max_objects=max(base.max_objects, vocabulary["max_objects"]))  # fmt: skip


@torch.no_grad()
def transplant_painter(base: AnyPainter, config: AnyPainterConfig) -> tuple[AnyPainter, list[int], list[int]]:
    """``base`` (a painter) moved onto ``config`` (:func:`joint_painter_config`): a new painter of its class with the
    base's weights and rows, new rows at the mean of the base's. Returns it and the ids of the new words and new
    backgrounds."""
    out = type(base)(config)
    state = base.state_dict()
    for table, field_name in type(base).vocab_tables.items():
        names, old = getattr(config, field_name), getattr(base.config, field_name)
        w = state[f"{table}.weight"]
        where = {n: i for i, n in enumerate(old)}
        state[f"{table}.weight"] = torch.stack([w[where[n]] if n in where else w.mean(0) for n in names])
    out.load_state_dict(state, strict=True)
    new_words = [i for i, w in enumerate(config.label_words) if w not in base.config.label_words]
    new_bgs = [i for i, b in enumerate(config.backgrounds) if b not in base.config.backgrounds]
    return out.train(base.training), new_words, new_bgs


def prepare_painter(
    painter: AnyPainter, cfg: PainterFinetuneConfig, new_words: list[int], new_bgs: list[int]
) -> nn.Module:
    """``painter`` ready to train with ``cfg.method``; the new words' and backgrounds' rows always train."""
    if cfg.method == "full":
        return painter.requires_grad_(True)
    from peft import LoraConfig, get_peft_model

    new = {"label_words": new_words, "backgrounds": new_bgs}
    tokens = {table: new[f] for table, f in type(painter).vocab_tables.items() if new[f]}
    s = cfg.lora
    pattern = r".*\b(" + "|".join(s.target_modules) + r")$"  # whole module names: stem, body.N.c1, ..., head
    pc = LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=pattern,
                    trainable_token_indices=tokens or None)  # fmt: skip
    with quiet_peft():
        return get_peft_model(painter, pc)


def adapt_painter(base: AnyPainter, data: AnyPainterConfig, ft: PainterFinetuneConfig
                  ) -> tuple[nn.Module, AnyPainterConfig, str]:  # fmt: skip
    """What a fine-tuning run trains: ``base`` moved onto its own words and backgrounds plus those of ``data`` (the
    config a painter of the run's data would have; :func:`transplant_painter`), readied for ``ft.method``
    (:func:`prepare_painter`). Returns it, its config and the SHA-256 of the base's weights (the adapter's base)."""
    vocabulary = {k: getattr(data, k) for k in ("label_words", "backgrounds", "canvas", "max_objects")}
    joint, new_words, new_bgs = transplant_painter(base, joint_painter_config(base.config, vocabulary))
    return prepare_painter(joint, ft, new_words, new_bgs), joint.config, weights_sha256(base)


def merged_painter(model: nn.Module) -> AnyPainter:
    """A plain painter with ``model``'s adapter folded in (``model`` itself unchanged)."""
    from peft import PeftModel

    return copy.deepcopy(model).merge_and_unload() if isinstance(model, PeftModel) else model


def save_painter_adapter(model: nn.Module, path: str | os.PathLike, base_sha256: str, merged: AnyPainter) -> Path:
    """Write a LoRA-trained painter's adapter in peft's format (safetensors) plus ``lvg_adapter.json``; ``merged``:
    the painter with it folded in (:func:`merged_painter`), whose class names the role and whose config is saved."""
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    meta = {"role": type(merged).adapter_role, "method": "lora", "base_sha256": base_sha256,
            "painter_config": dataclasses.asdict(merged.config)}  # fmt: skip
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def save_painter_run(model: nn.Module, out: Path, base_sha256: str | None) -> Path:
    """A painter run's artefacts: ``out/painter`` (any LoRA merged in) and, for a LoRA model, the adapter alone in
    ``out/painter_adapter``. Returns the painter folder."""
    from peft import PeftModel

    painter = merged_painter(model)
    if isinstance(model, PeftModel):
        save_painter_adapter(model, out / "painter_adapter", base_sha256 or "", painter)
    return painter.save_pretrained(out / "painter")


def load_painter_adapter(painter: AnyPainter, path: str | os.PathLike) -> AnyPainter:
    """``painter`` with the painter adapter at ``path`` folded in (a new painter; ``painter`` unchanged). Refuses,
    naming the reason, a folder that is not an adapter of this painter's class (its ``adapter_role``), another base,
    and any non-safetensors weights."""

    path = Path(path)
    meta = read_adapter_meta(path, type(painter).adapter_role, (PEFT_CONFIG, PEFT_WEIGHTS))
    if meta.get("base_sha256") != weights_sha256(painter):
        raise ValueError(f"{path} was trained on another base painter (the base_sha256 in {ADAPTER_META} is not this "
                         "painter's weights' SHA-256): load it on the model it was trained from")  # fmt: skip
    config = config_from_dict(type(painter).config_class, meta.get("painter_config") or {}, str(path / ADAPTER_META))
    old = painter.config
    if dataclasses.replace(config, label_words=old.label_words, backgrounds=old.backgrounds,
                           max_objects=old.max_objects) != old or not (
        config.label_words[: len(old.label_words)] == old.label_words
        and config.backgrounds[: len(old.backgrounds)] == old.backgrounds
    ):  # fmt: skip
        raise ValueError(f"{path / ADAPTER_META}: painter_config is not this painter's config with words and "
                         "backgrounds added")  # fmt: skip
    base, _, _ = transplant_painter(painter, config)
    return peft_folded(base, path).eval()
