"""Tiny runs of every trainer for the golden-loss tests (tests/test_train_loop.py).

Each case trains a tiny model for a few steps (``stop_after``; the schedule is that of ``train.steps``) with every
step logged, and returns its ``train/*`` rows. Only config classes and public entry points are used, so the same
cases ran on the code before the shared loop (commit 5ee1416) to measure the golden values.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import lvg

ROOT = Path(lvg.__file__).resolve().parents[1]  # the checkout whose lvg is imported (its benchmarks/ too)
MODEL = ROOT / "models" / "shapes-default"
STEPS = 5  # logged steps per case
COMMON = ["train.steps=50", "train.warmup_steps=2", "train.log_every=1", "train.eval_every=1000",
          "train.ckpt_every=1000", "train.progress=false", "train.device=cpu"]  # fmt: skip
LM = ["hidden_size=32", "num_hidden_layers=1", "num_attention_heads=2", "intermediate_size=64"]


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.startswith("train/") and k not in ("train/lr", "train/elapsed_s")}
            for r in rows if "train/loss" in r]  # fmt: skip


def _run(cls, fn, out: Path, overrides: list[str]) -> list[dict]:
    from lvg.train.config import load_config

    fn(load_config(cls, None, [f"train.out_dir={out}", *COMMON, *overrides]), stop_after=STEPS)
    return _rows(out)


def tokenizer(out: Path, gan: bool = False) -> list[dict]:
    from lvg.train.tokenizer import TokenizerTrainingConfig, train_tokenizer

    gan_args = ["loss.gan_weight=0.5", "loss.gan_start=2", "loss.discriminator.channels=8",
                "loss.discriminator.layers=2"] if gan else []  # fmt: skip
    return _run(TokenizerTrainingConfig, train_tokenizer, out, ["model.channels=[8,16,16]", "train.batch_size=4",
                                                                "train.lr=2e-3", "eval.num_images=4",
                                                                "eval.round_trip_prompts=0", *gan_args])  # fmt: skip


def tokenizer_gan(out: Path) -> list[dict]:
    return tokenizer(out, gan=True)


def planner(out: Path) -> list[dict]:
    from lvg.train.planner import PlannerTrainingConfig, train_planner

    return _run(PlannerTrainingConfig, train_planner, out, [*(f"model.size.{x}" for x in LM), "train.batch_size=4",
                                                            "train.lr=1e-3", "eval.prompts_per_category=1",
                                                            f"text_tokenizer={MODEL / 'text_tokenizer'}"])  # fmt: skip


def tiny_image_tokenizer(out: Path) -> Path:
    """A tiny image tokenizer of seeded random weights (8x8 grid, 16 codes): the cases that need one train against
    it, so their losses do not change when the shipped model's tokenizer is retrained."""
    import torch

    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig

    torch.manual_seed(0)
    ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4])).save_pretrained(out / "imgtok")
    return out / "imgtok"


def painter(out: Path) -> list[dict]:
    from lvg.train.painter import PainterTrainingConfig, train_painter

    return _run(PainterTrainingConfig, train_painter, out / "run", ["model.width=16", "model.blocks=1",
                                                                    "model.embed_dim=8", "eval.scenes=4",
                                                                    "train.batch_size=4", "train.lr=1e-3",
                                                                    f"image_tokenizer={tiny_image_tokenizer(out)}"])  # fmt: skip


def reader(out: Path) -> list[dict]:
    from lvg.train.reader import ReaderTrainingConfig, train_reader

    return _run(ReaderTrainingConfig, train_reader, out / "run", ["model.width=16", "model.blocks=1", "eval_scenes=4",
                                                                  "train.batch_size=4", "train.lr=1e-3",
                                                                  f"image_tokenizer={tiny_image_tokenizer(out)}"])  # fmt: skip


def reading_lm(out: Path) -> list[dict]:
    from lvg.train.reader import ReadingLMTrainingConfig, train_reading_lm

    return _run(ReadingLMTrainingConfig, train_reading_lm, out, [*(f"size.{x}" for x in LM), "eval_captions=2",
                                                                 "eval_questions=1", "train.batch_size=6",
                                                                 "train.lr=1e-3",
                                                                 f"text_tokenizer={MODEL / 'text_tokenizer'}"])  # fmt: skip


def clip(out: Path) -> list[dict]:
    from lvg.train.clip import ClipTrainingConfig, train_clip

    return _run(ClipTrainingConfig, train_clip, out, ["model.embed_dim=32", "model.image_channels=[8,16,16,16]",
                                                      "model.text_width=32", "model.text_layers=1",
                                                      "model.text_heads=2", "train.batch_size=6", "train.lr=3e-3",
                                                      "eval.num_images=8", "eval.num_candidates=4",
                                                      f"text_tokenizer={MODEL / 'text_tokenizer'}"])  # fmt: skip


def llm(out: Path) -> list[dict]:

    from lvg.train.llm import LLMTrainingConfig, train_llm

    return _run(LLMTrainingConfig, train_llm, out / "run", ["model.preset=tiny", f"image_tokenizer={tiny_image_tokenizer(out)}",
                                                            f"text_tokenizer={MODEL / 'text_tokenizer'}",
                                                            "eval.prompts_per_category=1", "eval.captions=2",
                                                            "train.batch_size=6", "train.lr=1e-3"])  # fmt: skip


def peer(out: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peer_diffusion

    _, args = peer_diffusion.parse_args(["--preset", "tiny", "--batch-size", "2", "--max-steps", str(STEPS),
                                         "--num-workers", "0", "--val-size", "2", "--no-progress", "--log-every", "1",
                                         "--warmup-steps", "2", "--out", str(out), "--peer-only",
                                         "--max-text-tokens", "64",  # (the limit when the golden was measured)
                                         "--text-tokenizer", str(MODEL / "text_tokenizer")])  # fmt: skip
    peer_diffusion.train_peer(args, 10**6)
    return _rows(out)


def restorer(out: Path) -> list[dict]:
    from lvg.train.restorer import RestorerTrainingConfig, train_restorer

    return _run(RestorerTrainingConfig, train_restorer, out, ["model.width=8", "model.levels=2", "model.blocks=1",
                                                              "train.batch_size=4", "train.lr=2e-3",
                                                              "val_images=4"])  # fmt: skip


CASES = {f.__name__: f for f in (tokenizer, tokenizer_gan, planner, painter, reader, reading_lm, clip, llm, peer,
                                 restorer)}  # fmt: skip

if __name__ == "__main__":  # python tests/golden_train.py OUT_DIR [CASE ...]: print every case's rows as JSON
    import tempfile

    import torch

    torch.set_num_threads(1)
    if os.environ.get("GOLDEN_STEPS"):  # a longer comparison (the schedule grows to fit it)
        STEPS = int(os.environ["GOLDEN_STEPS"])
        COMMON[0] = f"train.steps={max(50, STEPS)}"
    names = sys.argv[2:] or list(CASES)
    res = {}
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            res[name] = CASES[name](Path(d) / name)
    Path(sys.argv[1]).write_text(json.dumps(res, indent=1))
