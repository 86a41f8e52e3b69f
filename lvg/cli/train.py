"""``lvg train COMPONENT``: every trainer from one table (:data:`TRAINERS`), plus the text tokenizer.

A trainer is a typed config class and a ``train(cfg, resume=..., stop_after=...) -> Path`` function (one
:mod:`lvg.train.loop` task each); its command reads the config from the dataclass defaults, then ``--config`` YAML,
then ``KEY=VALUE`` overrides. Adding a trainer is one :class:`Trainer` row.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path

from .common import Subparsers, group

SETTINGS = "Settings: dataclass defaults, then --config YAML, then KEY=VALUE overrides"
INTERRUPT = "Ctrl-C saves a checkpoint first."
OUTPUTS = "Writes OUT/checkpoint (atomic, resumable), OUT/tb (TensorBoard), OUT/metrics.jsonl and, at the end,"


@dataclass(frozen=True)
class Trainer:
    """One ``lvg train`` command: its config class and train function (``"module:name"``, imported when run), the
    example config, what it saves, and its help (one line) and description (what it trains, on what, and how it
    validates; the settings and outputs sentences are added)."""

    name: str
    config: str  # "lvg.train.planner:PlannerTrainingConfig"
    train: str  # "lvg.train.planner:train_planner"
    example_config: str
    what: str  # "the planner": printed as "saved the planner to PATH"
    help: str
    about: str  # what it trains on what, and how it validates
    example_overrides: str  # e.g. "train.steps=3000 model.width=128"
    saves: str  # what OUT holds at the end, e.g. "OUT/planner"

    def description(self) -> str:
        return f"{self.about} {SETTINGS} (e.g. {self.example_overrides}). {OUTPUTS} {self.saves}. {INTERRUPT}"

    def run(self, args: argparse.Namespace) -> int:
        from lvg.train.config import load_config

        cfg = load_config(_resolve(self.config), args.config, args.overrides)
        path = _resolve(self.train)(cfg, resume=args.resume, stop_after=args.stop_after)
        print(f"saved {self.what} to {path}")
        return 0


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


IMAGEFOLDER = "imagefolder=DIR trains on a folder whose metadata.jsonl rows carry 'objects'."

TRAINERS: tuple[Trainer, ...] = (
    Trainer("tokenizer", "lvg.train.tokenizer:TokenizerTrainingConfig", "lvg.train.tokenizer:train_tokenizer",
            "configs/tokenizer-shapes.yaml", "the image tokenizer",
            "train the image tokenizer (VQ/FSQ autoencoder) on Shapes World",
            "Train the image tokenizer on the infinite Shapes World stream.",
            "train.steps=2000 model.quantizer=vq", "OUT/image_tokenizer (config.json + model.safetensors)"),
    Trainer("planner", "lvg.train.planner:PlannerTrainingConfig", "lvg.train.planner:train_planner",
            "configs/planner-shapes.yaml", "the planner", "train the planner LM (prompt -> layout) of a planned model",
            "Train the planner: a causal LM (Hugging Face Llama) that reads a prompt (EN/ZH; canonical, paraphrased and "
            f"typed the way people type) and writes a layout (background, labelled boxes as location tokens). Shapes "
            f"World pairs are drawn in process; {IMAGEFOLDER} Validates the sampled layouts of benchmark prompts "
            "symbolically. finetune.base=MODEL finetune.method=full|freeze|lora|adapter|prefix adapts a trained planner "
            "instead (docs/finetune.md).",
            "train.steps=3000 model.size.hidden_size=192 model.init_from=PATH", "OUT/planner (OUT/adapter for adapters)"),
    Trainer("painter", "lvg.train.painter:PainterTrainingConfig", "lvg.train.painter:train_painter",
            "configs/painter-shapes.yaml", "the painter",
            "train the painter (layout -> image codes in one step) of a planned model",
            "Train the painter: a layout-conditioned conv net that predicts every code of a trained image tokenizer in "
            f"one parallel step. Shapes World scenes are rendered and encoded on the fly (the targets); {IMAGEFOLDER} "
            "Validates with the pixel judge on held-out scenes. finetune.base=MODEL finetune.method=lora adapts a trained "
            "painter to a folder's new label words instead (LoRA on its convolutions; docs/finetune.md).",
            "train.steps=3000 model.width=128", "OUT/painter (and OUT/painter_adapter for LoRA)"),
    Trainer("gan-painter", "lvg.train.gan:GanPainterTrainingConfig", "lvg.train.gan:train_gan_painter",
            "configs/gan-painter-shapes.yaml", "the GAN painter",
            "train the GAN painter (layout + noise -> pixels, with a layout-conditioned critic) of a planned model",
            "Train the GAN painter: a generator that paints each object of a layout as an RGBA sprite from its label "
            "words and noise, places it in its box and composites it, against an image- and object-level critic "
            "(hinge loss, spectral norm, projection on labels) plus an L1 term to the real image. Shapes World scenes "
            f"are rendered on the fly; {IMAGEFOLDER} Validates PSNR and the world's referee on held-out layouts. "
            "finetune.base=MODEL finetune.method=full|lora adapts a trained GAN painter (a model folder's GAN painter) "
            "to a folder's new label words instead (docs/finetune.md).",
            "train.steps=3000 loss.adv_weight=0", "OUT/painter (class GanPainter: lvg assemble --painter-class "
            "GanPainter; with LoRA also OUT/painter_adapter)"),
    Trainer("diffusion-painter", "lvg.train.diffusion_painter:DiffusionPainterTrainingConfig",
            "lvg.train.diffusion_painter:train_diffusion_painter", "configs/diffusion-painter-shapes.yaml",
            "the diffusion painter", "train the diffusion painter (layout + noise -> pixels by DDIM) to compare painters",
            "Train the diffusion painter: a diffusers UNet2DModel DDPM on pixels, conditioned on the layout rasterised "
            "into channels (each object's label feature over its box, coverage, position in the box), v-prediction "
            f"with Min-SNR weights and an EMA. The painter comparison's diffusion peer (benchmarks/painters.py). "
            f"Shapes World scenes are rendered on the fly; {IMAGEFOLDER} Validates a held-out loss, PSNR and the "
            "world's referee on held-out layouts painted by DDIM.",
            "train.steps=6000 model.block_out_channels=[32,64,64]", "OUT/painter (class DiffusionPainter)"),
    Trainer("reader", "lvg.train.reader:ReaderTrainingConfig", "lvg.train.reader:train_reader",
            "configs/reader-shapes.yaml", "the reader", "train the reader (image -> layout) of a planned model",
            "Train the reader: a small CenterNet-style detector that reads an image as a layout (background plus "
            "labelled boxes). Trains on Shapes World renders, some passed through the image tokenizer and back, with "
            "pixel noise; validates the fraction of held-out renders read exactly.",
            "train.steps=2000", "OUT/detector (bundle it with `lvg assemble --reader`)"),
    Trainer("restorer", "lvg.train.restorer:RestorerTrainingConfig", "lvg.train.restorer:train_restorer",
            "configs/restorer-emoji.yaml", "the restorer",
            "train the restorer (damaged image + hole mask -> clean image) of a planned model",
            "Train the restorer: a small residual U-Net that turns noisy, blurred, JPEG-damaged or holed images back "
            "into clean ones, pixel for pixel; pipe.restore runs it first. Training images (Shapes World's stream, or "
            "imagefolder=DIR's images) are damaged on the fly with a seeded random damage; the clean image is the L1 "
            "target. Validates PSNR on a fixed damaged held-out set, beside the damaged input's.",
            "train.steps=4000 model.width=64", "OUT/restorer (bundle it with `lvg assemble --restorer`)"),
    Trainer("reading-lm", "lvg.train.reader:ReadingLMTrainingConfig", "lvg.train.reader:train_reading_lm",
            "configs/reading-lm-shapes.yaml", "the reading LM",
            "train the reading LM (layout -> caption, answers) of a planned model",
            "Train the reading LM: a causal LM (Hugging Face Llama) that reads a layout and writes its canonical "
            "caption (EN/ZH) or answers a question about it. Validates caption exact match and question accuracy per "
            "type on held-out layouts.",
            "train.steps=2000", "OUT/reading_lm"),
    Trainer("unified-lm", "lvg.train.unified:UnifiedLMTrainingConfig", "lvg.train.unified:train_unified_lm",
            "configs/unified-lm-shapes.yaml", "the unified LM",
            "train ONE LM that plans and reads (prompt -> layout, layout -> caption, answers) of a planned model",
            "Train one causal LM (Hugging Face Llama) on the planner's task and the reading LM's task at once, told "
            "apart by task tokens: prompt -> layout, layout -> caption (EN/ZH) and question + layout -> answer. Each "
            "step draws a planning batch (plan_batch_size rows) and a reading batch (train.batch_size rows). "
            "Validates as the planner and the reading LM do. The result serves as a planned model's planner and its "
            "reading LM.",
            "train.steps=3000 plan_weight=1.0", "OUT/lm (lm/, text_tokenizer/, plan_vocab.json)"),
    Trainer("llm", "lvg.train.llm:LLMTrainingConfig", "lvg.train.llm:train_llm", "configs/llm-shapes.yaml",
            "the pipeline", "train the unified text<->image LM on Shapes World",
            "Train the unified causal LM (text -> image tokens and image -> caption) on the Shapes World stream, with "
            "a trained image tokenizer.",
            "model.preset=base train.steps=20000 model.init_from=PATH", "the pipeline folder OUT/pipeline"),
    Trainer("clip", "lvg.train.clip:ClipTrainingConfig", "lvg.train.clip:train_clip", "configs/clip-shapes.yaml",
            "the CLIP model", "train a small CLIP (image/caption embeddings) on Shapes World, for reranking",
            "Train a small CLIP (conv image tower + transformer text tower, symmetric InfoNCE) on Shapes World renders "
            "with their partial canonical captions in English and Chinese. Validates zero-shot caption choice and "
            "text -> image retrieval on held-out renders.",
            "train.steps=2000 model.embed_dim=64",
            "OUT/clip (config.json, model.safetensors, text_tokenizer/; copy it into a model folder as clip/ and list "
            "it in model_index.json to bundle it)"),
)  # fmt: skip


def _add_trainer(sub: Subparsers, t: Trainer) -> None:
    d = sub.add_parser(t.name, help=t.help, description=t.description())
    d.add_argument("--config", type=Path, help=f"YAML config (e.g. {t.example_config})")
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    d.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop this run after N more steps (checkpointed); continue later with --resume")  # fmt: skip
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.batch_size=64")
    d.set_defaults(func=t.run)


def _add_train_text_tokenizer(sub: Subparsers) -> None:
    d = sub.add_parser(
        "text-tokenizer",
        help="train the byte-level BPE caption tokenizer",
        description="Train a byte-level BPE (Hugging Face tokenizers) on a world's captions in English and "
        "Chinese (Shapes World by default), with lvg's special tokens; save tokenizer.json + config to OUT.",
    )
    d.add_argument("--out", type=Path, required=True, help="output directory")
    d.add_argument("--world", choices=("shapes", "emoji"), default="shapes",
                   help="whose captions (default shapes; emoji reads the Emoji World cache, fetching it once)")  # fmt: skip
    d.add_argument("--num-scenes", type=int, default=50_000, help="scenes to caption for training (default 50000)")
    d.add_argument("--vocab-size", type=int, default=1024, help="maximum vocabulary size (default 1024)")
    d.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    d.set_defaults(func=_train_text_tokenizer)


def _train_text_tokenizer(args: argparse.Namespace) -> int:
    from lvg.tokenizers.text import save_text_tokenizer, train_text_tokenizer
    from lvg.worlds import get_world

    if args.num_scenes < 1:
        raise ValueError(f"--num-scenes must be at least 1, got {args.num_scenes}")
    corpus = get_world(args.world).caption_corpus(args.num_scenes, args.seed)
    tok = train_text_tokenizer(corpus, args.vocab_size)
    save_text_tokenizer(tok, args.out)
    print(f"trained a byte-level BPE with {len(tok)} tokens; saved to {args.out}")
    return 0


def add_train_commands(sub: Subparsers) -> None:
    """``lvg train text-tokenizer`` and one command per :data:`TRAINERS` row."""
    train = group(sub, "train", "train lvg components", "Train lvg components.", "train_command", "COMPONENT")
    _add_train_text_tokenizer(train)
    for t in TRAINERS:
        _add_trainer(train, t)
