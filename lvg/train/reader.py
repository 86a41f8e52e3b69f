"""Train the reading half of a planned model: the reader (image -> layout) and the reading LM (layout -> text).

    lvg train reader --config configs/reader-shapes.yaml [--resume] [key.sub=value ...]
    lvg train reading-lm --config configs/reading-lm-shapes.yaml [--resume] [key.sub=value ...]

The two are independent (the LM trains on true layouts), so they run side by side, one per core.

- **Reader**: each batch renders scenes from the contract's training distribution (the renderer is the
  data source, never part of the reader), some passed through the image tokenizer and back so the reader
  also reads what the painter's decoder draws, plus a little pixel noise. Validation: the fraction of
  held-out renders read exactly (every object's shape, colour, size and cell, and the background).
- **Reading LM**: captions and visual questions from :mod:`lvg.worlds.shapes.reading`, loss on the answer.
  Validation: caption exact match and question accuracy per type, from true held-out layouts.

Results: ``OUT/detector`` (reader) and ``OUT/reading_lm`` (``lm/``, ``text_tokenizer/``, ``plan_vocab.json``);
``lvg assemble --reader`` puts them together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lvg.data.layout import reading_order
from lvg.models.planner import IGNORE, PlannerSize, PlanVocab, build_planner_lm, planner_loss, save_lm_folder
from lvg.models.reader import Reader, ReaderConfig
from lvg.models.reading_lm import ReadingTokens, reading_batch, reading_prompt
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.heldout import held_out_samples, images_tensor
from lvg.worlds.shapes.reading import ReadingDataConfig, make_reading_sample
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS, layout_from_scene

from .checkpoint import load_checkpoint
from .common import (
    TrainConfig,
    TrainingRun,
    autocast,
    lr_at,
    set_lr,
    start_run,
)
from .config import config_to_dict
from .painter import scenes_for
from .planner import shapes_world_layout_config

HELD_OUT = "lvg-reader-val"


# ----------------------------------------------------------------------------- the reader (detector)


@dataclass
class ReaderModelConfig:
    stride: int = 4
    width: int = 64
    blocks: int = 3


@dataclass
class ReaderTrainingConfig:
    model: ReaderModelConfig = field(default_factory=ReaderModelConfig)
    image_tokenizer: str | None = "models/shapes-default/image_tokenizer"  # None: renders only
    roundtrip_prob: float = 0.3  # share of each batch read after an image tokenizer round trip
    noise: float = 6.0  # pixel noise: each image gets Gaussian noise of std uniform in [0, noise]
    data_seed: int = 0
    eval_scenes: int = 500
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/reader"))


def reader_images(scenes: list, step_seed: str, cfg: ReaderTrainingConfig, image_tok) -> torch.Tensor:
    """Renders of ``scenes`` as uint8 [B, 3, 64, 64]: some round-tripped through the image tokenizer, all noised."""
    x = images_tensor([render(s) for s in scenes])  # [B, 3, 64, 64] uint8
    gen = torch.Generator().manual_seed(random.Random(step_seed).getrandbits(62))
    if image_tok is not None and cfg.roundtrip_prob > 0:
        pick = (torch.rand(len(scenes), generator=gen) < cfg.roundtrip_prob).nonzero().flatten()
        if len(pick):
            with torch.inference_mode():
                back = image_tok.decode(image_tok.encode(x[pick].to(image_tok.device))).cpu()  # [n, 3, H, W] in [0, 1]
                x[pick] = (back * 255).round().to(torch.uint8)
    std = torch.rand(len(scenes), 1, 1, 1, generator=gen) * cfg.noise
    return (x.float() + torch.randn(x.shape, generator=gen) * std).round().clamp(0, 255).to(torch.uint8)


@torch.inference_mode()
def validate_reader(reader: Reader, images: torch.Tensor, scenes: list) -> dict[str, float]:
    from lvg.eval.reading import layout_is_scene

    was = reader.training
    reader.eval()
    layouts = [lay for i in range(0, len(images), 128) for lay in reader.detect(images[i : i + 128])]
    reader.train(was)
    return {"val/exact": sum(layout_is_scene(lay, s) for lay, s in zip(layouts, scenes)) / len(scenes)}


def train_reader(cfg: ReaderTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) reader training; returns the saved reader folder ``OUT/detector``."""
    from lvg.tokenizers.image import ImageTokenizer

    tc = cfg.train
    out, device = start_run(cfg, resume)
    image_tok = None
    if cfg.image_tokenizer and cfg.roundtrip_prob > 0:
        image_tok = ImageTokenizer.from_pretrained(cfg.image_tokenizer, device=device)
    m = cfg.model
    reader = Reader(ReaderConfig(labels=list(SHAPES_WORLD_LABELS), backgrounds=list(SHAPES_WORLD_BACKGROUNDS),
                                 canvas=64, stride=m.stride, width=m.width, blocks=m.blocks, max_objects=4))  # fmt: skip
    reader.to(device).train()
    opt = torch.optim.AdamW(reader.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    step = load_checkpoint(out, {"reader": reader}, {"opt": opt})["step"] if resume else 0
    val_samples = held_out_samples(cfg.eval_scenes)
    val_images = images_tensor([s.image for s in val_samples])
    val_scenes = [s.scene for s in val_samples]
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    with TrainingRun(out, tc, step, end, "reader", {"reader": reader}, {"opt": opt},
                     {"config": config_to_dict(cfg)}) as run:  # fmt: skip
        while step < end:
            scenes = scenes_for(f"lvg-reader:{cfg.data_seed}", step * tc.batch_size, tc.batch_size)
            images = reader_images(scenes, f"lvg-reader-aug:{cfg.data_seed}:{step}", cfg, image_tok)
            t = reader.targets([layout_from_scene(s) for s in scenes])
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            with autocast(device, tc.precision):
                o = reader(images)
            losses = reader.loss({k: v.float() for k, v in o.items()}, t)
            gnorm = run.optimize(opt, reader.parameters(), losses["loss"])
            step = run.advance()
            run.log_train(step, lr, gnorm, **{k: v.item() for k, v in losses.items()})
            run.end_of_step(step, lambda: validate_reader(reader, val_images, val_scenes),
                            lambda mm: f"exact {mm['val/exact']:.3f}")  # fmt: skip
    return reader.save_pretrained(out / "detector")


# ----------------------------------------------------------------------------- the reading LM


@dataclass
class ReadingLMTrainingConfig:
    size: PlannerSize = field(default_factory=lambda: PlannerSize(128, 4, 4, 384))
    text_tokenizer: str = "models/shapes-default/text_tokenizer"
    bins_per_px: int = 1  # must match the planner's (the reader's layouts are written in the same tokens)
    max_text_tokens: int = 96
    data: ReadingDataConfig = field(default_factory=ReadingDataConfig)
    eval_captions: int = 100  # held-out layouts captioned per language at each validation
    eval_questions: int = 20  # held-out questions per type and language
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/reading-lm"))


@torch.inference_mode()
def validate_reading_lm(lm, text_tok, vocab: PlanVocab, cfg: ReadingLMTrainingConfig) -> dict[str, float]:
    from lvg.eval.reading import evaluate_vqa
    from lvg.eval.shapes import score_captions
    from lvg.pipelines.reading import ImageReader

    was = lm.training
    lm.eval()
    reader = ImageReader(None, lm, text_tok, vocab)  # the LM alone: it reads true layouts
    out: dict[str, float] = {}
    samples = held_out_samples(cfg.eval_captions) if cfg.eval_captions else []
    layouts = [reading_order(layout_from_scene(s.scene)) for s in samples]
    for lang in ("en", "zh"):
        if samples:
            out[f"val/caption_{lang}"] = score_captions(reader.caption(layouts, lang), samples, lang)["exact_match"]
        if cfg.eval_questions:
            ask = lambda scenes, qs: reader.answer([reading_order(layout_from_scene(s)) for s in scenes], qs)  # noqa: E731
            r = evaluate_vqa(ask, cfg.eval_questions, lang, images=False)
            out[f"val/vqa_{lang}"] = r["overall"]
            out.update({f"val/{lang}_{k}": v for k, v in r["types"].items()})
    lm.train(was)
    return out


def train_reading_lm(cfg: ReadingLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) reading-LM training; returns the saved folder ``OUT/reading_lm``."""
    tc = cfg.train
    out, device = start_run(cfg, resume)
    text_tok = load_text_tokenizer(cfg.text_tokenizer)
    vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(cfg.bins_per_px), cfg.max_text_tokens)
    tasks = ReadingTokens.from_tokenizer(text_tok)
    layout_tok = vocab.layout_tokenizer
    lm = build_planner_lm(vocab, cfg.size).to(device).train()
    opt = torch.optim.AdamW(lm.parameters(), lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    step = load_checkpoint(out, {"lm": lm}, {"opt": opt})["step"] if resume else 0
    end = tc.steps if stop_after is None else min(tc.steps, step + stop_after)
    L = cfg.max_text_tokens
    headline = lambda m: ", ".join(f"{k[4:]} {v:.3f}" for k, v in m.items() if k[4:].startswith(("caption", "vqa")))  # noqa: E731
    with TrainingRun(out, tc, step, end, "reading LM", {"lm": lm}, {"opt": opt},
                     {"config": config_to_dict(cfg)}) as run:  # fmt: skip
        while step < end:
            samples = [
                make_reading_sample(i, cfg.data) for i in range(step * tc.batch_size, (step + 1) * tc.batch_size)
            ]
            q_ids = text_tok([s.question or "" for s in samples], add_special_tokens=False)["input_ids"]
            a_ids = text_tok([s.answer for s in samples], add_special_tokens=False)["input_ids"]
            prompts = [reading_prompt(vocab, tasks, layout_tok.encode(s.layout), lang=s.lang) if s.question is None
                       else reading_prompt(vocab, tasks, layout_tok.encode(s.layout), question_ids=q[:L])
                       for s, q in zip(samples, q_ids)]  # fmt: skip
            lr = lr_at(step, tc)
            set_lr(opt, lr)
            # captions are longer than questions: pad each kind on its own (the same loss, less padding)
            loss_sum, tokens = torch.zeros((), device=device), 0
            for group in ([i for i, s in enumerate(samples) if (s.question is None) == cap] for cap in (True, False)):
                if not group:
                    continue
                batch = reading_batch([prompts[i] for i in group], [a_ids[i] for i in group], vocab)
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast(device, tc.precision):
                    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                position_ids=batch["position_ids"]).logits  # [b, T, V]  # fmt: skip
                n = int((batch["labels"][:, 1:] != IGNORE).sum())
                loss_sum = loss_sum + planner_loss(logits, batch["labels"]) * n
                tokens += n
            loss = loss_sum / tokens  # mean over every answer token of the batch
            gnorm = run.optimize(opt, lm.parameters(), loss)
            step = run.advance()
            run.log_train(step, lr, gnorm, loss=loss.item())
            run.end_of_step(step, lambda: validate_reading_lm(lm, text_tok, vocab, cfg), headline)
    return save_lm_folder(out / "reading_lm", lm, text_tok, vocab)
