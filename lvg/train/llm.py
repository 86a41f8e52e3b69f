"""Train the unified LM on Shapes World: text -> image and image -> text in one causal LM.

    lvg train llm --config configs/llm-shapes.yaml [--resume] [key.sub=value ...]

Each batch renders scenes, tokenizes the images with the (frozen) image tokenizer and mixes both
directions; text -> image rows drop their caption with probability ``cond_dropout`` (classifier-free
guidance). Same conventions as the tokenizer trainer: typed config, progress bar, atomic
resumable checkpoints, TensorBoard, periodic validation (benchmark accuracy, caption exact match).
The result is a complete pipeline folder, ``OUT/pipeline``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lvg.data.imagefolder import batch_indices
from lvg.data.imagefolder import chunks as batch_chunks
from lvg.models.unified import IGNORE, VocabLayout, build_lm, grow_from_pretrained, training_batch, weighted_lm_loss
from lvg.pipelines.pipeline import Pipeline
from lvg.resources import benchmark_prompts_file, default_component_dir
from lvg.sampling.config import GenerationConfig
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.dataset import ShapesWorldConfig, make_sample

from .common import TrainConfig
from .config import config_to_dict
from .folder import Folder, captions, held_out_loss, images_tensor
from .loop import WEIGHT, Shard, Task, full_precision, run


@dataclass
class LMConfig:
    preset: str = "small"  # tiny | small | base | medium (see lvg.models.unified.PRESETS)
    init_from: str | None = None  # grow from a local Hugging Face causal LM folder instead
    max_text_tokens: int = 64


@dataclass
class LLMDataConfig:
    t2i_prob: float = 0.75  # share of text -> image rows (the rest are captioning rows)
    cond_dropout: float = 0.1  # text -> image rows trained without their caption (for CFG)
    langs: list[str] = field(default_factory=lambda: ["en", "zh"])
    paraphrase_prob: float = 0.1
    seed: int = 0


@dataclass
class LLMLossConfig:
    image_weight: float = 1.0
    text_weight: float = 1.0


@dataclass
class LLMEvalConfig:
    prompts_per_category: int = 10  # benchmark prompts per category at each validation (0: skip)
    captions: int = 100  # held-out renders captioned at each validation (0: skip)
    guidance_scale: float = 3.0
    temperature: float = 1.0
    prompts: str | None = None  # benchmark prompts file (None: the one shipped with lvg)

    def __post_init__(self) -> None:
        self.generation()  # bad sampling settings fail when the config is read, not at the first validation

    def generation(self) -> GenerationConfig:
        """The sampling settings of validation (seed 0: every validation draws the same noise)."""
        return GenerationConfig(guidance_scale=self.guidance_scale, temperature=self.temperature, seed=0)


@dataclass
class LLMTrainingConfig:
    model: LMConfig = field(default_factory=LMConfig)
    image_tokenizer: str | None = None  # folder; None: the default model's image_tokenizer/ (see lvg.resources)
    text_tokenizer: str | None = None  # folder; None: the default model's text_tokenizer/
    data: LLMDataConfig = field(default_factory=LLMDataConfig)
    loss: LLMLossConfig = field(default_factory=LLMLossConfig)
    eval: LLMEvalConfig = field(default_factory=LLMEvalConfig)
    imagefolder: str | None = None  # train on a user imagefolder's (image, text / text_zh) pairs instead
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/llm"))


def component_dir(path: str | None, name: str) -> Path:
    """``path`` as given (relative to the working directory), or the default model's component ``name``."""
    return Path(path) if path is not None else default_component_dir(name)


def validate(pipe: Pipeline, cfg: LLMEvalConfig, prompts: list[dict]) -> dict[str, float]:
    from lvg.eval.shapes import evaluate_captioning, evaluate_generation

    was = pipe.lm.training
    pipe.lm.eval()
    out: dict[str, float] = {}
    if prompts:
        for lang in ("en", "zh"):
            r = evaluate_generation(pipe, prompts, lang, cfg.generation())
            out[f"val/acc_{lang}"] = r["overall"]
            out.update({f"val/{lang}_{c}": v for c, v in r["categories"].items()})
    if cfg.captions:
        out["val/caption_exact_en"] = evaluate_captioning(pipe, cfg.captions, "en")["exact_match"]
    pipe.lm.train(was)
    return out


HEADLINE = ("val/acc_en", "val/acc_zh", "val/caption_exact_en")


def headline(metrics: dict[str, float]) -> str:
    """The progress line's summary of a validation: accuracy per language and caption exact match."""
    return ", ".join(f"{k[4:]} {metrics[k]:.3f}" for k in HEADLINE if k in metrics)


class LLMTask(Task):
    """Text -> image tokens and image -> text in one causal LM (rows drawn per step, images tokenized on the
    device by the frozen image tokenizer)."""

    name = "llm"
    batch_in_workers = True

    def __init__(self, cfg: LLMTrainingConfig, device: torch.device):
        from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts

        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        image_tok = ImageTokenizer.from_pretrained(component_dir(cfg.image_tokenizer, "image_tokenizer"), device=device)
        image_tok.requires_grad_(False)
        grid = image_tok.config.grid
        self.folder = None
        if cfg.imagefolder:  # a user folder's images (of the image tokenizer's size) and captions
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction)
            self.folder.check_canvas(image_tok.config.image_size, "the image tokenizer")
            self.train_captions, self.val_captions = captions(self.folder.train), captions(self.folder.val)
        if cfg.model.init_from:
            lm, text_tok, layout = grow_from_pretrained(cfg.model.init_from, image_tok.codebook_size, grid * grid,
                                                        cfg.model.max_text_tokens)  # fmt: skip
        else:
            text_tok = load_text_tokenizer(component_dir(cfg.text_tokenizer, "text_tokenizer"))
            layout = VocabLayout.from_tokenizers(text_tok, image_tok.codebook_size, grid * grid,
                                                 cfg.model.max_text_tokens)  # fmt: skip
            lm = build_lm(layout, cfg.model.preset)
        self.lm, self.image_tok, self.text_tok, self.layout = lm.to(device).train(), image_tok, text_tok, layout
        self.modules = {"lm": self.lm}
        self.pipe = Pipeline(lm, image_tok, text_tok, layout)
        self.prompts = []
        if self.folder is None:  # the Shapes World benchmark says nothing about a user folder
            all_prompts = load_prompts(cfg.eval.prompts or benchmark_prompts_file())
            k = cfg.eval.prompts_per_category
            self.prompts = [r for c in CATEGORIES for r in [p for p in all_prompts if p["category"] == c][:k]]
        self.data = ShapesWorldConfig(seed=cfg.data.seed, langs=tuple(cfg.data.langs),
                                      paraphrase_prob=cfg.data.paraphrase_prob)  # fmt: skip

    def batch(self, step: int, shard: Shard) -> dict:
        """This shard's rows of batch ``step``: renders, texts, and the row choices (drawn for the whole batch)."""
        B, d = self.cfg.train.batch_size, self.cfg.data
        rng = random.Random(f"lvg-llm-rows:{d.seed}:{step}")  # row choices, resumable
        t2i = shard.take([rng.random() < d.t2i_prob for _ in range(B)])
        drop = shard.take([rng.random() < d.cond_dropout for _ in range(B)])
        if self.folder is not None:
            idx = batch_indices(len(self.train_captions), step, B, f"lvg-llm-folder:{d.seed}", shard.rows(B))
            return self.folder_batch(self.folder.train_images, [self.train_captions[i] for i in idx], t2i, drop)
        items = [make_sample(step * B + j, self.data) for j in shard.rows(B)]
        texts = [s.text if t else s.full_text for s, t in zip(items, t2i, strict=True)]
        L = self.layout.max_text_tokens
        return {"image": torch.from_numpy(np.stack([s.image for s in items])).permute(0, 3, 1, 2).contiguous(),
                "text_ids": [ids[:L] for ids in self.text_tok(texts, add_special_tokens=False)["input_ids"]],
                "lang": [s.lang for s in items], "t2i": t2i, "drop": drop}  # fmt: skip

    def folder_batch(self, images, items: list[tuple[int, str, str]], t2i: list[bool], drop: list[bool]) -> dict:
        """The rows of a user folder's ``(row, lang, caption)`` items: its caption is both the prompt of a
        text -> image row and the target of a captioning row."""
        L = self.layout.max_text_tokens
        return {"image": images_tensor(images, [i for i, _, _ in items]),
                "text_ids": [ids[:L] for ids in self.text_tok([c for _, _, c in items],
                                                              add_special_tokens=False)["input_ids"]],
                "lang": [la for _, la, _ in items], "t2i": list(t2i), "drop": list(drop)}  # fmt: skip

    def validate_folder(self) -> dict[str, float]:
        """The loss on the held-out rows: as text -> image rows (``val/loss``) and as captioning rows."""
        items, B = self.val_captions, self.cfg.train.batch_size
        if not items:
            return {}
        out = {}
        for key, t2i in (("val/loss", True), ("val/caption_loss", False)):
            out[key] = held_out_loss(self, ((self.folder_batch(self.folder.val_images, items[c.start : c.stop],
                                                               [t2i] * len(c), [False] * len(c)), len(c))
                                            for c in batch_chunks(len(items), B)))  # fmt: skip
        return out

    def loss(self, b: dict) -> dict[str, torch.Tensor]:
        with full_precision(self.device):
            codes = self.image_tok.encode(b["image"].to(self.device))  # [B, h, w]
        batch = training_batch(codes, b["text_ids"], b["lang"], b["t2i"], b["drop"], self.layout)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        logits = self.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         position_ids=batch["position_ids"]).logits  # [B, T, V]  # fmt: skip
        loss, parts = weighted_lm_loss(logits, batch["labels"], batch["is_image"], self.cfg.loss.image_weight,
                                       self.cfg.loss.text_weight)  # fmt: skip
        labels, is_image = batch["labels"][:, 1:], batch["is_image"][:, 1:]
        valid = labels != IGNORE
        weight = ((valid & is_image).sum() * self.cfg.loss.image_weight + (valid & ~is_image).sum()
                  * self.cfg.loss.text_weight)  # fmt: skip
        return {"loss": loss, **{k: torch.tensor(v) for k, v in parts.items()}, WEIGHT: weight}

    def validate(self) -> dict[str, float]:
        return validate(self.pipe, self.cfg.eval, self.prompts) if self.folder is None else self.validate_folder()

    def summary(self, metrics: dict[str, float]) -> str:
        return headline(metrics) if self.folder is None else super().summary(metrics)

    def save(self, out: Path) -> Path:
        return self.pipe.save_pretrained(out / "pipeline")


def train_llm(cfg: LLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the saved pipeline folder."""
    return run(cfg.train, lambda device: LLMTask(cfg, device), resume, stop_after)
