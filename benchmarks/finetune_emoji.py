"""Adapting the shipped Shapes World LMs to Emoji World under a CPU budget: from scratch against each method.

    python benchmarks/finetune_emoji.py [--task planner|reading] [--train] [--methods scratch full lora16 ...]
        [--budgets 5 15 30]

``--task planner`` (the default) adapts the planner (``configs/planner-emoji.yaml``, runs in ``runs/ftb``);
``--task reading`` the reading LM (``configs/reading-lm-emoji.yaml``, runs in ``runs/ftr``); ``--task painter`` the
GAN painter (``configs/gan-painter-emoji.yaml``, runs in ``runs/ftg``; the code painter is not adapted: Emoji World
art needs its own image tokenizer).

``--train`` trains each method's planner (``lvg train planner --config configs/planner-emoji.yaml`` plus the
method's overrides, one thread, ``train.keep_snapshots=true``, a checkpoint every 100 steps) into
``RUNS/METHOD``, two at a time; without it, the runs already there are scored. Each run keeps a snapshot of every
checkpoint with the training process's CPU seconds when it was taken (``snapshots/cpu.txt``). For each budget B
(CPU minutes) the score is that of the run's last snapshot taken within B minutes. One run per method, whose
learning-rate schedule spans its longest budget, so a short budget reads a run mid-schedule (the way a user who
stops a run early would get it).

Scored per (method, budget), planner:
- planner-only accuracy on the 450 Emoji World benchmark prompts, EN and ZH, whole prompt and per category (prompt
  i with seed i, temperature 0.3): each layout becomes an Emoji World scene, checked against the prompt's spec by the
  referee's symbolic check (names, counts, styles, sizes, cells, relations, background);
per method: trainable parameters and their share, the adapter's size on disk (its safetensors files), and, at the
longest budget, forgetting: the Shapes World public benchmark (planner only) of the adapted planner, beside the
base's. Writes BENCHMARKS.md's "finetune-emoji" section.

Each scored method's row is kept in ``benchmarks/finetune_emoji_results.json``; the report lists every method found
there, so scoring a few methods (``--methods``) adds or replaces their rows and keeps the others.

Reading LM: on true layouts of Emoji World's held-out reading stream (the LM alone, as its validation does, with
more samples): captions written exactly (about 300 per language) and answers right per question type (50 per type
and language); forgetting: the same on Shapes World's held-out captions and questions, beside the base reading LM.
Writes the "finetune-emoji-reading" section.

GAN painter: painter only, the 450 benchmark prompts' true layouts (a real scene drawn for each spec, seed 0)
painted (image i with seed i) and judged by the Emoji World referee on the pixels, whole prompt and per category;
forgetting: the share of 300 held-out Shapes World scenes painted from their layouts that Shapes World's judge
passes, beside the base GAN painter's. Writes the "finetune-emoji-painter" section.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _report import write_section
from safetensors.torch import load_file

from lvg.component import config_from_dict
from lvg.data.layout import LayoutError
from lvg.eval.planning import evaluate_plans
from lvg.models.adapters import ADAPTER_META, UNMERGEABLE, lm_folder_of, merged, older_words, trainable_share
from lvg.models.gan import GanPainter
from lvg.models.painter_adapters import merged_painter, save_painter_adapter
from lvg.models.planner import load_lm_folder
from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
from lvg.resources import benchmark_prompts_file
from lvg.train.gan import GanPainterTask, GanPainterTrainingConfig
from lvg.train.planner import PlannerTask, PlannerTrainingConfig
from lvg.train.reader import ReadingLMTask, ReadingLMTrainingConfig, validate_reading_lm, validate_world_reading
from lvg.worlds import get_world
from lvg.worlds.emoji.benchmark import CATEGORIES
from lvg.worlds.emoji.referee import scene_satisfies
from lvg.worlds.shapes.benchmark import load_prompts

ROOT = Path(__file__).resolve().parents[1]
BASE = "finetune.base=models/shapes-default"
LORA = [BASE, "finetune.method=lora", "train.lr=3e-3"]
B32 = ["train.batch_size=32"]
WORDS = ["finetune.new_words=2000"]  # Emoji World's prompts have 809 words the Shapes tokenizer spells in pieces


def LOWRANK(rank: int) -> list[str]:  # noqa: N802 (reads like the constants beside it)
    return ["finetune.new_rows=lowrank", f"finetune.new_rows_rank={rank}"]


def PLUS(lr: float, ratio: float) -> list[str]:  # noqa: N802
    """LoRA+ with the new words, batch 32."""
    return [BASE, "finetune.method=lora", f"train.lr={lr:g}", f"finetune.lr_ratio={ratio:g}", *B32, *WORDS]


def LORA_WORDS(rank: int, rows: int, head: int = 0, layout: bool = False, *extra: str, lr: float = 2e-3,  # noqa: N802
               ratio: float = 4) -> list[str]:  # fmt: skip
    """LoRA rank ``rank`` (alpha 2 x rank) with LoRA+ (rate ``lr``, ratio ``ratio``) and the new words, their rows
    low-rank at ``rows`` (the output head's at ``head``; with ``layout``, the base's layout rows too), then
    ``extra``."""
    return [BASE, "finetune.method=lora", f"train.lr={lr:g}", f"finetune.lr_ratio={ratio:g}", f"finetune.lora.rank={rank}",
            f"finetune.lora.alpha={2 * rank}", *WORDS, *LOWRANK(rows),
            *([f"finetune.new_rows_head_rank={head}"] if head else []),
            *(["finetune.layout_rows=true"] if layout else []), *extra]  # fmt: skip


SEEDS = ("", "-seed1", "-seed2")  # a method's runs with other seeds (initialisation and batch order)
SEED = {s: [f"train.seed={k}", f"data.seed={k}"] if k else [] for k, s in enumerate(SEEDS)}
ATTN = "finetune.lora.target_modules=[q_proj,k_proj,v_proj,o_proj]"  # LoRA on the attention projections only
ALL = "[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,embed_tokens,lm_head]"  # LoRA on the vocabulary too
METHODS = {  # name: (steps, about 30 or 15 CPU minutes of the method here; overrides of configs/planner-emoji.yaml)
    "scratch": (2500, []),
    **{f"scratch{s}": (2500, SEED[s]) for s in SEEDS[1:]},  # the spread between runs
    **{f"scratch-4400{s}": (4400, SEED[s]) for s in SEEDS},  # a schedule of about 30 CPU minutes on a quiet machine
    "full": (2400, [BASE, "finetune.method=full", "train.lr=1e-3"]),
    "full-10min": (780, [BASE, "finetune.method=full", "train.lr=1e-3"]),  # its schedule ends at ~1/3 of scratch's
    "freeze-top": (2000, [BASE, "finetune.method=freeze", "finetune.train_layers=[-1]", "train.lr=3e-3"]),
    "freeze-top2": (2000, [BASE, "finetune.method=freeze", "finetune.train_layers=[-2,-1]", "train.lr=3e-3"]),
    "lora4": (1600, [*LORA, "finetune.lora.rank=4", "finetune.lora.alpha=8"]),
    "lora8": (1600, [*LORA, "finetune.lora.rank=8", "finetune.lora.alpha=16"]),
    "lora16": (1600, [*LORA, "finetune.lora.rank=16", "finetune.lora.alpha=32"]),
    "lora4-vocab": (
        800,
        [*LORA, "finetune.lora.rank=4", "finetune.lora.alpha=8", f"finetune.lora.target_modules={ALL}"],
    ),
    "lora8-frozen": (1000, [*LORA, "finetune.lora.rank=8", "finetune.lora.alpha=16", "finetune.new_rows=frozen"]),
    "adapter": (1600, [BASE, "finetune.method=adapter", "finetune.adapter.rank=32", "train.lr=3e-3"]),
    "prefix": (1600, [BASE, "finetune.method=prefix", "finetune.prefix.num_tokens=16", "train.lr=3e-3"]),
    # runs whose schedules end near the goal's time (a third of scratch's), batch 32 (more steps per CPU minute)
    "lora16-b32-10min": (1300, [*LORA, *B32, "finetune.lora.rank=16", "finetune.lora.alpha=32"]),
    "lora4-lowrank-10min": (1300, [*LORA, *B32, "finetune.lora.rank=4", "finetune.lora.alpha=8", *LOWRANK(32)]),
    "lora4-words-10min": (1300, [*LORA, *B32, "finetune.lora.rank=4", "finetune.lora.alpha=8", *WORDS, *LOWRANK(16)]),
    "lora6-words-10min": (
        1600,
        [
            BASE,
            "finetune.method=lora",
            "train.lr=5e-3",
            *B32,
            "finetune.lora.rank=6",
            "finetune.lora.alpha=12",
            *WORDS,
            *LOWRANK(8),
        ],
    ),  # fmt: skip
    "lora6-words-b16-10min": (
        2800,
        [
            BASE,
            "finetune.method=lora",
            "train.lr=5e-3",
            "train.batch_size=16",
            "finetune.lora.rank=6",
            "finetune.lora.alpha=12",
            *WORDS,
            *LOWRANK(8),
        ],
    ),  # fmt: skip
    "lora6-words-plus8-10min": (1600, [*PLUS(2e-3, 8), "finetune.lora.rank=6", "finetune.lora.alpha=12", *LOWRANK(8)]),
    "lora6-words-plus4-10min": (1600, [*PLUS(2e-3, 4), "finetune.lora.rank=6", "finetune.lora.alpha=12", *LOWRANK(8)]),
    "lora4-words-plus8-10min": (1600, [*PLUS(2e-3, 8), "finetune.lora.rank=4", "finetune.lora.alpha=8", *LOWRANK(16)]),
    "lora4-words-plus4-10min": (1550, [*PLUS(2e-3, 4), "finetune.lora.rank=4", "finetune.lora.alpha=8", *LOWRANK(16)]),
    "lora2-words-plus4-10min": (1550, [*PLUS(2e-3, 4), "finetune.lora.rank=2", "finetune.lora.alpha=4", *LOWRANK(32)]),
    "lora4-words-layout-10min": (  # the base's layout tokens' rows move too (low-rank)
        1550,
        [*LORA_WORDS(4, 16, 48, True), *B32],
    ),
    "lora4-words-layout-e24-10min": (  # the same, input rows at rank 24 (5.1% trainable)
        1550,
        [*LORA_WORDS(4, 24, 48, True), *B32],
    ),
    "lora4-words-layout-e22-10min": (  # rank 22 (5.0%), a schedule of 1,500 steps
        1500,
        [*LORA_WORDS(4, 22, 48, True), *B32],
    ),
    **{  # the same again with other seeds (initialisation and batch order): the spread between runs
        f"lora4-words-layout-e22-10min-seed{k}": (
            1500,
            [*LORA_WORDS(4, 22, 48, True, f"train.seed={k}", f"data.seed={k}"), *B32],
        )
        for k in (1, 2)
    },
    **{  # the same recipe for a third of scratch-4400's time
        f"lora4-words-layout-e22-2500{s}": (2500, [*LORA_WORDS(4, 22, 48, True, *SEED[s]), *B32]) for s in SEEDS
    },
    **{  # the rows above used new words of format 1 (Latin words as added tokens, lvg before 2026-12-05 11:00);
        # the same recipe with format 2 (words as the pre-tokenizer cuts them, twins tied: 4.7% trainable)
        f"lora4-words2-layout-e22-10min{s}": (1600, [*LORA_WORDS(4, 22, 48, True, *SEED[s]), *B32])
        for s in SEEDS
    },
    **{  # and for a third of scratch-4400's time
        f"lora4-words2-layout-e22-2500{s}": (2500, [*LORA_WORDS(4, 22, 48, True, *SEED[s]), *B32]) for s in SEEDS
    },
    "lora4-words-head48-10min": (
        1550,
        [*LORA_WORDS(4, 16, 48), *B32],
    ),
    "full-words-10min": (1600, [BASE, "finetune.method=full", "train.lr=1e-3", *B32, *WORDS]),
    "lora8attn-words-layout-e22-10min": (  # LoRA r = 8 on the attention projections only (cheaper steps)
        1500,
        [*LORA_WORDS(8, 22, 48, True, ATTN), *B32],
    ),
    "lora8attn-words-layout-e22-1700-10min": (  # the same, 1,700 steps (its steps cost less: still ~9 minutes)
        1700,
        [*LORA_WORDS(8, 22, 48, True, ATTN), *B32],
    ),
}
READING_GOAL = "lora2-words2-e22h32-1700"  # the reading LM's recipe under 5% trainable
PIECES = ["finetune.new_words_cut=pieces", "data.caption_prob=0.6"]
READING_METHODS = {  # the reading LM's runs: (steps, about 30 CPU minutes; overrides of configs/reading-lm-emoji.yaml)
    "scratch": (1550, []),
    **{f"scratch{s}": (1550, SEED[s]) for s in SEEDS[1:]},  # the spread between runs
    "full": (1900, [BASE, "finetune.method=full", "train.lr=1e-3"]),
    "freeze-top": (2000, [BASE, "finetune.method=freeze", "finetune.train_layers=[-1]", "train.lr=3e-3"]),
    "freeze-top2": (2000, [BASE, "finetune.method=freeze", "finetune.train_layers=[-2,-1]", "train.lr=3e-3"]),
    "lora4": (1700, [*LORA, "finetune.lora.rank=4", "finetune.lora.alpha=8"]),
    "lora8": (1700, [*LORA, "finetune.lora.rank=8", "finetune.lora.alpha=16"]),
    "lora16": (1700, [*LORA, "finetune.lora.rank=16", "finetune.lora.alpha=32"]),
    "adapter": (2300, [BASE, "finetune.method=adapter", "finetune.adapter.rank=32", "train.lr=3e-3"]),
    "prefix": (2400, [BASE, "finetune.method=prefix", "finetune.prefix.num_tokens=16", "train.lr=3e-3"]),
    "lora4-words": (  # LoRA+ with the captions' and questions' words as whole tokens, their rows low-rank
        2000,
        LORA_WORDS(4, 32),
    ),
    "lora2-words-10min": (  # under 5% trainable, a schedule ending near a third of scratch's time, batch 32
        1600,
        [*LORA_WORDS(2, 16, 24), *B32],
    ),
    "lora4-words-layout-10min": (  # the same with LoRA r = 4 and the base's layout rows low-rank too
        1450,
        [*LORA_WORDS(4, 8, 24, True), *B32],
    ),
    "full-words-10min": (1450, [BASE, "finetune.method=full", "train.lr=1e-3", *WORDS, *B32]),
    "lora2-words-e24-10min": (  # lora2-words-10min with the input rows at rank 24
        1600,
        [*LORA_WORDS(2, 24, 24), *B32],
    ),
    **{  # Chinese names as whole tokens, higher rates, more captions, input rows at rank 22 (4.8% trainable);
        # measured with new words of format 1 (Latin words as added tokens, lvg before 2026-12-05 11:00)
        f"lora2-pieces-e22-10min{s}": (
            1550,
            [*LORA_WORDS(2, 22, 24, False, *PIECES, *SEED[s], lr=4e-3, ratio=8), *B32],
        )
        for s in SEEDS
    },
    **{  # the same with new words of format 2 (words as the pre-tokenizer cuts them, twins tied): shorter rows,
        # cheaper steps, so 1,600 of these 1,700 fit a third of scratch's time (two seeds)
        f"lora2-words2-e22-1700{s}": (
            1700,
            [*LORA_WORDS(2, 22, 24, False, *PIECES, *SEED[s], lr=4e-3, ratio=8), *B32],
        )
        for s in SEEDS[:2]
    },
    **{  # and with the output head's rows at rank 32 (4.9% trainable)
        f"{READING_GOAL}{s}": (1700, [*LORA_WORDS(2, 22, 32, False, *PIECES, *SEED[s], lr=4e-3, ratio=8), *B32])
        for s in SEEDS
    },
}
PAINTER_METHODS = {  # the GAN painter's runs: (steps; overrides of configs/gan-painter-emoji.yaml)
    "scratch": (3000, []),  # runs/gan-painter-emoji-l1 of docs/painters.md (21 CPU minutes), linked as RUNS/scratch
    "full": (3300, [BASE, "finetune.method=full"]),
    "lora16": (3000, [BASE, "finetune.method=lora", "finetune.lora.rank=16", "finetune.lora.alpha=32"]),
}
TASKS = {  # --task: (lvg train command, config, methods, default runs folder, report section)
    "planner": ("planner", "configs/planner-emoji.yaml", METHODS, "runs/ftb", "finetune-emoji"),
    "reading": ("reading-lm", "configs/reading-lm-emoji.yaml", READING_METHODS, "runs/ftr", "finetune-emoji-reading"),
    "painter": ("gan-painter", "configs/gan-painter-emoji.yaml", PAINTER_METHODS, "runs/ftg", "finetune-emoji-painter"),
}
GOALS = {  # per task, (scratch, adapted) measured side by side, each also as NAME-seed1 and NAME-seed2
    "planner": (
        ("scratch", "lora4-words2-layout-e22-10min"),  # scratch's 2,500 steps (configs/planner-emoji.yaml)
        ("scratch-4400", "lora4-words2-layout-e22-2500"),  # about 30 and 10 CPU minutes on a quiet machine
    ),
    "reading": (("scratch", READING_GOAL),),  # scratch's 1,550 steps (configs/reading-lm-emoji.yaml)
}
EARLIER = "2026-12-03 to 2026-12-05 04:28 UTC"  # the rows rebuilt from BENCHMARKS.md (RESULTS' _source)
TODAY = time.strftime("%Y-%m-%d", time.gmtime())
RESULTS = ROOT / "benchmarks" / "finetune_emoji_results.json"  # every method's scored row, per task
SHAPES_SCENES = 300  # held-out Shapes World scenes for the GAN painter's forgetting
READ_CAPTIONS, READ_QUESTIONS = 300, 50  # per language; per question type and language
SAMPLING = {"temperature": 0.3, "guidance_scale": 1.0, "top_k": 0, "top_p": 1.0}


def train_command(task: str, method: str, out: Path) -> list[str]:
    command, config, methods = TASKS[task][:3]
    steps, overrides = methods[method]
    return [sys.executable, "-m", "lvg.cli", "train", command, "--config", config, *overrides,
            f"train.out_dir={out}", f"train.steps={steps}", "train.warmup_steps=50", "train.eval_every=1000",
            "train.ckpt_every=100", "train.keep_snapshots=true", "train.progress=false"]  # fmt: skip


def train(task: str, methods: list[str], runs: Path) -> None:
    """Train the methods two at a time (one thread each)."""
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    queue, running = list(methods), []
    while queue or running:
        while queue and len(running) < 2:
            m = queue.pop(0)
            log = open(runs / f"{m}.log", "w")  # noqa: SIM115 (closed when the process ends)
            running.append((subprocess.Popen(train_command(task, m, runs / m), cwd=ROOT, env=os.environ | env, stdout=log,
                                             stderr=subprocess.STDOUT), log))  # fmt: skip
        time.sleep(10)
        for p, log in list(running):
            if p.poll() is not None:
                log.close()
                running.remove((p, log))
                if p.returncode:
                    raise SystemExit(f"training failed (exit {p.returncode}): see {log.name}")


def snapshot_at(run: Path, minutes: float) -> tuple[Path, int, float] | None:
    """The last snapshot of ``run`` taken within ``minutes`` CPU minutes: (folder, step, CPU seconds)."""
    best = None
    cpu = run / "snapshots" / "cpu.txt"
    for line in cpu.read_text().splitlines() if cpu.is_file() else []:
        step, secs = int(line.split()[0]), float(line.split()[1])
        snap = run / "snapshots" / f"step-{step}"
        if secs <= minutes * 60 and snap.is_dir():
            best = (snap, step, secs)
    return best


def emoji_scores(planner: LayoutPlanner, world, prompts: list[dict], lang: str) -> dict[str, float]:
    """Share of ``prompts`` planned right: whole benchmark ("all") and per category."""
    texts = [p[lang] for p in prompts]
    layouts = planner.plan_tokens(planner.tokenize(texts), list(range(len(texts))), SAMPLING["guidance_scale"],
                                  SAMPLING["temperature"], SAMPLING["top_k"], SAMPLING["top_p"])  # fmt: skip
    hits: dict[str, list[bool]] = {}
    for p, lay in zip(prompts, layouts, strict=True):
        try:
            ok = scene_satisfies(world.layout_to_scene(lay), world.parse(p["en"], "en"))
        except LayoutError:
            ok = False
        for key in ("all", p["category"]):
            hits.setdefault(key, []).append(ok)
    return {k: sum(v) / len(v) for k, v in hits.items()}


def shapes_accuracy(planner: LayoutPlanner) -> tuple[float, float]:
    prompts = load_prompts(benchmark_prompts_file())
    return tuple(evaluate_plans(planner, prompts, lang, seed=0, **SAMPLING).overall for lang in ("en", "zh"))


class Method:
    """One method's run: its task rebuilt from the run's config, to load snapshots into."""

    KINDS = {  # --task: (config class, task class, the task's trained module, the adapter's role)
        "planner": (PlannerTrainingConfig, PlannerTask, "lm", "planner"),
        "reading": (ReadingLMTrainingConfig, ReadingLMTask, "lm", "reading LM"),
        "painter": (GanPainterTrainingConfig, GanPainterTask, "painter", "gan painter"),
    }

    def __init__(self, kind: str, run: Path):
        config_class, task_class, self.attr, self.role = self.KINDS[kind]
        cfg = config_from_dict(config_class, json.loads((run / "config.json").read_text()), str(run))
        self.run, self.cfg = run, cfg
        self.task = task_class(cfg, torch.device("cpu"))
        self.module = getattr(self.task, self.attr)
        self.trainable, self.total = trainable_share(self.module)

    def weights(self, snap: Path) -> torch.nn.Module:
        """The run's module (as it trained: a peft model for LoRA) with snapshot ``snap``'s weights (a GAN
        painter's: its EMA copy's)."""
        if self.attr == "painter":
            ema = load_file(str(snap / "ema.safetensors"))
            state = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
        else:
            state = load_file(str(snap / "lm.safetensors"))
        self.module.load_state_dict(state, strict=True)
        return self.module.eval()

    def lm(self, snap: Path) -> torch.nn.Module:
        """The LM of snapshot ``snap``, its adapter folded in where it can be (the same outputs, faster to decode)."""
        lm = self.weights(snap)
        if self.cfg.finetune.base and self.cfg.finetune.method not in UNMERGEABLE:
            lm = merged(lm)
        return lm

    def planner(self, snap: Path) -> LayoutPlanner:
        return LayoutPlanner(self.lm(snap), self.task.text_tok, self.task.vocab)

    def painter(self, snap: Path) -> GanPainter:
        return merged_painter(self.weights(snap)).eval()

    def adapter_mb(self) -> float | None:
        """The adapter's size on disk (its safetensors files); None for a run that writes no adapter."""
        method = self.cfg.finetune.method if self.cfg.finetune.base else None
        if method not in (("lora",) if self.attr == "painter" else ("lora", "adapter", "prefix")):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            if self.attr == "painter":
                save_painter_adapter(self.module, Path(tmp), "", merged_painter(self.module))
                folder = Path(tmp)
            else:
                self.task.adapted.save(self.module, Path(tmp), self.role)
                folder = Path(tmp) / "adapter"
            return sum(f.stat().st_size for f in folder.glob("*.safetensors")) / 1e6


@torch.inference_mode()
def painter_scores(g: GanPainter, world, prompts: list[dict]) -> dict[str, float]:
    """Share of the benchmark's true layouts painted so that the referee passes them: all and per category."""
    from lvg.worlds.emoji.benchmark import scene_from_spec

    rng = random.Random(0)
    layouts = [scene_from_spec(r["spec"], rng).layout(with_style=True) for r in prompts]
    hits: dict[str, list[bool]] = {}
    for s in range(0, len(layouts), 64):
        images = g.paint(layouts[s : s + 64], list(range(s, min(len(layouts), s + 64)))).permute(0, 2, 3, 1).numpy()
        for im, r in zip(images, prompts[s : s + 64], strict=True):
            ok = bool(world.judge(im, r["spec"]).passed)
            for key in ("all", r["category"]):
                hits.setdefault(key, []).append(ok)
    return {k: sum(v) / len(v) for k, v in hits.items()}


@torch.inference_mode()
def shapes_painter_pass(g: GanPainter) -> float:
    """Share of held-out Shapes World scenes painted from their layouts that Shapes World's judge passes."""
    from lvg.train.painter import HELD_OUT, scenes_for
    from lvg.worlds.shapes.captions import describe_fully
    from lvg.worlds.shapes.judge import judge
    from lvg.worlds.shapes.scene_layout import layout_from_scene

    scenes = scenes_for(f"{HELD_OUT}:shapes-forgetting", 0, SHAPES_SCENES)
    images = g.paint([layout_from_scene(sc) for sc in scenes], list(range(len(scenes)))).permute(0, 2, 3, 1).numpy()
    return sum(bool(judge(im, describe_fully(sc)).passed) for im, sc in zip(images, scenes, strict=True)) / len(scenes)


def reading_scores(lm, text_tok, vocab, reading) -> dict[str, dict[str, float]]:
    """Per language: captions written exactly ("caption"), answers right ("questions") and per question type."""
    cfg = ReadingLMTrainingConfig(eval_captions=READ_CAPTIONS, eval_questions=READ_QUESTIONS)
    if reading is None:  # Shapes World (forgetting)
        raw = validate_reading_lm(lm, text_tok, vocab, cfg)
    else:
        raw = validate_world_reading(lm, text_tok, vocab, reading, cfg)
    out: dict[str, dict[str, float]] = {}
    for lang in ("en", "zh"):
        e = {"caption": raw[f"val/caption_{lang}"], "questions": raw[f"val/vqa_{lang}"]}
        e |= {k[len(f"val/{lang}_") :]: v for k, v in raw.items() if k.startswith(f"val/{lang}_")}
        out[lang] = e
    return out


def run_older_words(run: Path) -> str | None:
    """Why this lvg cannot rebuild ``run`` (:func:`~lvg.models.adapters.older_words` of its adapter), or None."""
    meta = run / "adapter" / ADAPTER_META
    return older_words(json.loads(meta.read_text())) if meta.is_file() else None


def remember(cache_file: Path, key: str, entry: dict) -> None:
    """Add one snapshot's scores to ``cache_file``, keeping what another scorer of the same folder wrote meanwhile
    (read just before, replaced by an atomic rename)."""
    saved = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    saved[key] = entry
    fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(saved, indent=1))
    os.replace(tmp, cache_file)


def score_runs(task: str, methods: list[str], runs: Path, budgets: list[float], forgetting: bool = True
               ) -> dict[str, dict]:  # fmt: skip
    """Each method's row: trainable share, adapter size and its score at each budget (cached per snapshot), with
    ``forgetting`` an adapted run's score on Shapes World at the last budget too."""
    world = get_world("emoji")
    prompts = world.benchmark_prompts()
    cache_file = runs / "scores.json"  # per snapshot, so a rerun scores only new ones
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    res: dict[str, dict] = {}
    for m in methods:
        run = runs / m
        if not (run / "config.json").is_file():
            print(f"{m}: no run in {run}", flush=True)
            continue
        if old := run_older_words(run):
            print(f"{m}: {old}: its saved row stays", flush=True)
            continue
        meth = Method(task, run)
        row = {"trainable": meth.trainable, "share": meth.trainable / meth.total, "adapter_mb": meth.adapter_mb(),
               "budgets": {}}  # fmt: skip
        picks = [(b, snapshot_at(run, b)) for b in budgets]
        for i, (b, pick) in enumerate(picks):
            if pick is None:
                continue
            snap, step, secs = pick
            key = f"{m}/{snap.name}"
            last = forgetting and i == len(picks) - 1
            if key not in cache or (last and meth.cfg.finetune.base and "shapes" not in cache[key]):
                entry = dict(cache.get(key) or {})
                if task == "planner":
                    planner = meth.planner(snap)
                    entry = entry or {lang: emoji_scores(planner, world, prompts, lang) for lang in ("en", "zh")}
                    if last and meth.cfg.finetune.base:
                        entry["shapes"] = shapes_accuracy(planner)
                elif task == "painter":
                    g = meth.painter(snap)
                    entry = entry or {"painter": painter_scores(g, world, prompts)}
                    if last and meth.cfg.finetune.base:
                        entry["shapes"] = shapes_painter_pass(g)
                else:
                    lm, t = meth.lm(snap), meth.task
                    entry = entry or reading_scores(lm, t.text_tok, t.vocab, t.reading)
                    if last and meth.cfg.finetune.base:
                        entry["shapes"] = reading_scores(lm, t.text_tok, t.vocab, None)
                entry |= {"step": step, "cpu_min": secs / 60}
                cache[key] = entry
                remember(cache_file, key, entry)
            row["budgets"][b] = cache[key]
            print(m, b, {k: v for k, v in cache[key].items() if k not in ("zh",)}, flush=True)
        res[m] = row
    return res


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def save_results(saved: dict) -> None:
    RESULTS.write_text(json.dumps(saved, indent=1, ensure_ascii=False) + "\n")


def score_goal(task: str, runs: Path, pair: tuple[str, str]) -> dict | None:
    """The goal measured side by side: scratch and an adapter (``pair``), three seeds each, trained on this machine at
    the same time (two runs at once, as ``--train`` does); scratch scored at its end, each adapter run at a third of
    scratch's mean CPU minutes. Saved in RESULTS; None (nothing scored) while a run is missing or unfinished."""
    names = {kind: [f"{m}{s}" for s in SEEDS] for kind, m in zip(("scratch", "adapted"), pair)}
    if old := {m: why for m in names["adapted"] if (why := run_older_words(runs / m))}:
        print(f"goal {' vs '.join(pair)}: {', '.join(old)}: {next(iter(old.values()))}: its saved result stays")
        return None
    last = {m: snapshot_at(runs / m, math.inf) for m in names["scratch"] + names["adapted"]}
    waiting = [m for m, snap in last.items() if snap is None or snap[1] != TASKS[task][2][m][0]]
    if waiting:
        print("goal: waiting for", ", ".join(waiting), flush=True)
        return None
    ends = {m: secs / 60 for m, (_, _, secs) in last.items()}
    third = sum(ends[m] for m in names["scratch"]) / len(SEEDS) / 3
    got = {"third": third, "ends": ends}
    for kind, budget in (("scratch", math.inf), ("adapted", third)):
        rows = score_runs(task, names[kind], runs, [budget], forgetting=False)
        got[kind] = {m: r["budgets"][budget] | {"share": r["share"]} for m, r in rows.items()}
    saved = load_results()
    saved.setdefault(f"{task}-goal", {})[" vs ".join(pair)] = got | {"measured": TODAY}
    save_results(saved)
    return got


def goal_intro(task: str) -> str:
    """The opening paragraph of a task's goal section: the command and what was measured how."""
    runs = " ".join(f"{m}{s}" for pair in GOALS[task] for m in pair for s in SEEDS)
    if task == "planner":
        return (f"`python benchmarks/finetune_emoji.py --train --methods {runs}`: the goal of issue 21 (an adapted model "
                "matching from-scratch quality at <= 1/3 of the CPU minutes with <= 5% of the weights trainable) "
                "measured side by side: the planner from scratch and adapted with the best recipe under 5% trainable "
                "in the finetune-emoji table (LoRA r = 4 with LoRA+, the new words, low-rank new and layout rows), "
                "three seeds each (initialisation and batch order), trained on this machine the same day, two runs at "
                "a time (one thread each), so every run had one other training run beside it. Scratch is scored at its "
                "end; each adapted run at a third of scratch's mean CPU minutes, from its last snapshot within that "
                "(the planner alone on the 450 Emoji World benchmark prompts, as in the finetune-emoji table).")  # fmt: skip
    return (f"`python benchmarks/finetune_emoji.py --task reading --train --methods {runs}`: the goal of issue 21 for "
            "the reading LM, measured side by side as the planner's (finetune-emoji-goal): from scratch and adapted "
            "with the best recipe under 5% trainable found (LoRA r = 2 with LoRA+ ratio 8 at rate 4e-3; the new words "
            "of format 2, Latin words as the base's pre-tokenizer cuts them and each one's twin without its space tied "
            "to it, Chinese ones in byte-pair pieces, `finetune.new_words_cut=pieces`; low-rank new rows, input rank "
            "22, head rank 32 over the words; 60% captions in the mix; batch 32, 1,700 steps), three seeds each, on "
            "this machine the same day, one thread each, every run beside at least one other process (another run, "
            "at times also a scoring one). Scratch is scored at its end; each adapted run at a "
            "third of scratch's mean CPU minutes, from its last snapshot within that; scored as in the "
            "finetune-emoji-reading table (captions written exactly, about 300 per language; questions answered "
            "right, 50 per type and language; the LM alone on true layouts).")  # fmt: skip


GOAL_VIEWS = {  # per task: the per-run columns (header, cells of a score), the means' keys and note, the gaps' keys
    "planner": (
        "EN | ZH | counting EN / ZH",
        lambda e: (
            f"{pct(e['en']['all'])} | {pct(e['zh']['all'])} | "
            f"{100 * e['en']['counting']:.0f} / {100 * e['zh']['counting']:.0f}"
        ),
        ("all", *CATEGORIES),
        "whole benchmark and per category (EN / ZH)",
        {"": "all"},
    ),
    "reading": (
        "captions EN / ZH | questions EN / ZH",
        lambda e: (
            f"{pct(e['en']['caption'])} / {pct(e['zh']['caption'])} | "
            f"{pct(e['en']['questions'])} / {pct(e['zh']['questions'])}"
        ),
        ("caption", "questions", "count", "what", "where", "relation"),
        "captions, questions and questions by type (EN / ZH)",
        {"captions ": "caption", "questions ": "questions"},
    ),
}


FORMAT1 = (
    "(Latin words as added tokens: a new word after a space was two tokens, and a word the base has only after a space, "
    '"bottom", stayed in pieces where a text starts with it)'
)
PAIR_NOTES = {  # what a goal pair's runs were, beside the section's intro
    "scratch vs lora4-words-layout-e22-10min": f"The recipe as first measured, with new words of format 1 {FORMAT1}; "
    "superseded by the pair with lora4-words2-layout-e22-10min.",
    "scratch vs lora4-words2-layout-e22-10min": "The same recipe with the new words of format 2 "
    "(`lvg/tokenizers/words.py`: Latin words as the base's pre-tokenizer cuts them, one token each, each word's twin "
    "without its space tied to it: 4.7% trainable, cheaper steps, 1,600 of them), trained later that day than the "
    "scratch runs (11:02-11:15 against 04:59-05:34 UTC), two at a time.",
    "scratch-4400 vs lora4-words-layout-e22-2500": f"Its adapted runs use new words of format 1 {FORMAT1}; "
    "superseded by the pair with lora4-words2-layout-e22-2500.",
    "scratch-4400 vs lora4-words2-layout-e22-2500": "The same with the new words of format 2, trained later that "
    "day than the scratch runs (11:24-11:46 against 05:38-06:38 UTC), seeds 0 and 1 side by side, then seed 2 beside "
    "a scoring run.",
    "scratch vs lora2-pieces-e22-10min": f"The previous recipe, with new words of format 1 {FORMAT1} and the head's "
    "rows at rank 24; superseded by the pair below.",
    "scratch vs lora2-words2-e22h32-1700": "The recipe of the intro. Scratch was trained in the morning (07:38-08:25 "
    "UTC), the adapted runs at 10:42-10:58 UTC. The recipe was picked among six variants scored on this same "
    "benchmark that day (one or two seeds each; docs/finetune.md), on its first seed; seeds 1 and 2 were trained "
    "after the pick.",
}


def goal_report(task: str, goals: dict[str, dict]) -> str:
    """A task's goal section (finetune-emoji-goal, finetune-emoji-reading-goal): per pair, each run, the means of
    the three seeds and the gaps with their standard errors."""
    header, cells, keys, means_note, gap_keys = GOAL_VIEWS[task]
    lines = [goal_intro(task)]
    for name, got in goals.items():
        lines += ["", f"**{name}** (measured {got['measured']}; a third of scratch's mean: {got['third']:.2f} CPU "
                  f"minutes):", *(["", PAIR_NOTES[name]] if name in PAIR_NOTES else []), "",
                  f"| run | trainable share | CPU minutes (of the run's) | {header} |",
                  "|---|---|---|" + "---|" * (header.count("|") + 1)]  # fmt: skip
        means = {}
        for kind in ("scratch", "adapted"):
            lines += [f"| {m} | {100 * e['share']:.2f}% | {e['cpu_min']:.2f} ({got['ends'][m]:.2f}) | {cells(e)} |"
                      for m, e in got[kind].items()]  # fmt: skip
            es = list(got[kind].values())
            means[kind] = {lang: {k: sum(e[lang][k] for e in es) / len(es) for k in keys} for lang in ("en", "zh")}
        lines += ["", f"Means of the three seeds, {means_note}:", "", "| | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]  # fmt: skip
        for kind, label in zip(("scratch", "adapted"), name.split(" vs ")):
            mm = means[kind]
            lines.append(f"| {label} | " + " | ".join(
                f"{100 * mm['en'][k]:.1f} / {100 * mm['zh'][k]:.1f}" for k in keys) + " |")  # fmt: skip
        gaps = [
            f"{what}{lang.upper()} {gap(got, lang, key)}" for what, key in gap_keys.items() for lang in ("en", "zh")
        ]
        lines += ["", f"Adapted minus scratch, means of three seeds (standard errors from the seeds' spread): "
                  f"{'; '.join(gaps)}."]  # fmt: skip
    return "\n".join(lines)


def gap(got: dict, lang: str, key: str) -> str:
    """The adapted runs' mean minus scratch's for score ``got[kind][run][lang][key]``, with its standard error."""
    a, b = ([e[lang][key] for e in got[kind].values()] for kind in ("adapted", "scratch"))
    se = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    return f"{100 * (sum(a) / len(a) - sum(b) / len(b)):+.1f} points (standard error {100 * se:.1f})"


def measured_note(res: dict[str, dict]) -> list[str]:
    """A sentence naming the days the rows were measured on (a CPU minute buys more steps on a less loaded machine, so
    minutes compare best between rows of one day)."""
    days: dict[str, list[str]] = {}
    for m, r in res.items():
        days.setdefault(r.get("measured", EARLIER), []).append(m)
    if len(days) < 2:
        return ["", f"The rows were measured {next(iter(days))} (the report is written from `{RESULTS.name}`)."]
    return ["", "Measured on different days (a CPU minute buys more steps on a less loaded machine, so minutes compare "
            "best within one day; the finetune-emoji-goal section compares runs of one day): "
            + "; ".join(f"{day}: {', '.join(ms)}" for day, ms in sorted(days.items())) + "."]  # fmt: skip


def merged_results(task: str, scored: dict[str, dict]) -> dict[str, dict]:
    """The task's rows in RESULTS with ``scored`` put in (and saved), in the task's method order: a run that is not on
    this machine keeps the row it was measured with, so scoring some methods never drops the others."""
    saved = load_results()
    rows = saved.setdefault(task, {})
    for m, row in scored.items():
        rows[m] = row | {"budgets": {f"{b:g}": e for b, e in row["budgets"].items()}, "measured": TODAY}
    save_results(saved)
    order = TASKS[task][2]
    return {m: rows[m] | {"budgets": {float(b): e for b, e in rows[m]["budgets"].items()}} for m in order if m in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(TASKS), default="planner", help="which LM is adapted")
    ap.add_argument("--train", action="store_true", help="train each method's run first (two at a time)")
    ap.add_argument("--methods", nargs="+", help="default: every method of the task")
    ap.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=[5, 9.2, 15, 30],
        help="CPU minutes (9.2: a third of the first scratch run's 27.7 CPU minutes on a busier machine)",
    )
    ap.add_argument("--runs", type=Path, help="folder of the runs (default: runs/ftb, runs/ftr for reading)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    methods = TASKS[args.task][2]
    args.methods = args.methods or list(methods)
    unknown = [m for m in args.methods if m not in methods]
    if unknown:
        ap.error(f"--methods: unknown for --task {args.task}: {', '.join(unknown)} (known: {', '.join(methods)})")
    runs = args.runs or Path(TASKS[args.task][3])
    torch.set_num_threads(args.threads)
    if args.train:
        runs.mkdir(parents=True, exist_ok=True)
        train(args.task, args.methods, runs)
    res = merged_results(args.task, score_runs(args.task, args.methods, runs, args.budgets))
    for pair in GOALS.get(args.task, ()):
        if set(args.methods) & {f"{m}{s}" for m in pair for s in SEEDS}:
            score_goal(args.task, runs, pair)
    if args.task == "planner":
        base = LayoutPlanner(*load_lm_folder(ROOT / "models" / "shapes-default" / "planner"))
        base.lm.eval()
        write_section("finetune-emoji", report(res, args.budgets, shapes_accuracy(base)))
    elif args.task == "painter":
        base = GanPainter.from_pretrained(
            PlannedPipeline.painter_folder(ROOT / "models" / "shapes-default", "gan")
        ).eval()
        write_section("finetune-emoji-painter", painter_report(res, args.budgets, shapes_painter_pass(base)))
    else:
        lm, text_tok, vocab = load_lm_folder(
            lm_folder_of(ROOT / "models" / "shapes-default", "reading LM"), "reading LM"
        )
        lm.eval()
        base = reading_scores(lm, text_tok, vocab, None)
        write_section("finetune-emoji-reading", reading_report(res, args.budgets, base))
    if goals := load_results().get(f"{args.task}-goal"):  # written by score_goal
        write_section(f"{TASKS[args.task][4]}-goal", goal_report(args.task, goals))


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def report(res: dict[str, dict], budgets: list[float], base_shapes: tuple[float, float]) -> str:
    cats = list(CATEGORIES)
    heads = " | ".join(f"{b:g} min EN / ZH" for b in budgets)
    lines = [
        f"`python benchmarks/finetune_emoji.py` (about a minute to score a run; `--train` trains the runs): the shipped "
        "Shapes World planner adapted to the Emoji World imagefolder `runs/emoji-data` (`lvg data emoji --num "
        "20000`) by each method, against a planner trained from scratch on it (`configs/planner-emoji.yaml`, its "
        "own Emoji World text tokenizer). Budget: the training process's CPU minutes (one thread; snapshots every 100 "
        "steps, each run's learning-rate schedule spanning its longest budget; validation time included). Score: "
        "planner only, each layout checked symbolically by the Emoji World referee against the prompt's spec (450 "
        f"benchmark prompts, temperature {SAMPLING['temperature']}). Forgetting: the Shapes World public benchmark, "
        f"planner only, at the last budget; the base planner: {pct(base_shapes[0])} / {pct(base_shapes[1])} (EN / ZH); "
        "an adapter removed gives the base back exactly.",
        "",
        f"| method | trainable (share) | adapter on disk | {heads} | Shapes World EN / ZH (forgetting) |",
        "|---|---|---|" + "---|" * len(budgets) + "---|",
    ]
    for m, r in res.items():
        cells = []
        for b in budgets:
            e = r["budgets"].get(b)
            cells.append(f"{pct(e['en']['all'])} / {pct(e['zh']['all'])} ({e['cpu_min']:.1f} min)" if e else "")
        last = r["budgets"].get(budgets[-1]) or {}
        shapes = f"{pct(last['shapes'][0])} / {pct(last['shapes'][1])}" if "shapes" in last else "(own vocabulary)"
        adapter = f"{r['adapter_mb']:.2f} MB" if r["adapter_mb"] else ""
        lines.append(f"| {m} | {r['trainable']:,} ({pct(r['share'])}) | {adapter} | {' | '.join(cells)} | {shapes} |")
    lines += ["", "lora4-vocab: LoRA rank 4 on the seven projections and on the two vocabulary matrices (`embed_tokens`, "
              "`lm_head`), whose low-rank delta then covers the new labels' rows (no whole rows train): 3.0% trainable, "
              "but the output head's rank-4 delta leaves the 493 new labels' logits a 4-dimensional space, which "
              "likely explains why it barely learns to name them.", "",
              "lora8-frozen: LoRA rank 8 with `finetune.new_rows=frozen`: the new labels' rows stay where they start "
              "(the mean of their words' text rows) and only LoRA trains, 5.0% of the weights. It learns nothing "
              "usable: Emoji World's names are spelled in the Shapes text tokenizer's few pieces, so the starting rows "
              "of 493 labels are too alike to tell apart; the rows must train (whole, as in lora8, or low-rank, as in "
              "lora4-vocab).", "",
              "full-10min: full fine-tuning whose schedule ends after 780 steps, meant as about 10 CPU minutes (a third "
              "of the first scratch run's 27.7, on a busier machine than today's scratch rows): the goal's time with every weight trainable. Its steps cost 1.0 CPU second "
              "against the full run's 0.73 (it ran beside two other jobs and tests, and a step's CPU time grows with "
              "the load on this 2-vCPU machine), so its schedule ended at 12.7 minutes; at 9-10 minutes neither full run is "
              "near that scratch run's 85.6%. freeze-top2 is a 1,000-step run (its schedule ends at 15 minutes; the others' "
              "span about 30).", "",
              "The *-10min runs (batch 32, schedules ending near a third of the first scratch run's time): `words` adds the new "
              "prompts' 809 words the Shapes text tokenizer spells in pieces as whole tokens (`finetune.new_words`; "
              "their rows start at their pieces' rows and train as new rows); `lowrank` lets the new rows move by a "
              "rank-r delta instead of training whole (`finetune.new_rows=lowrank`; rank 32 for lora4-lowrank and "
              "lora2-words-plus4, 16 for the other lora4-words runs, 8 for the lora6-words runs), which is what brings LoRA under 5% trainable; `plus` is LoRA+ "
              "(`finetune.lr_ratio`: LoRA's B and the rows' u at that multiple of the rate). The words, not the "
              "method, are what speed adaptation up: full fine-tuning without them (full-10min, full, at batch 64) is "
              "far behind at equal minutes, and batch 32 alone barely moves LoRA r = 16 (lora16-b32-10min against "
              "lora16). Two LoRA+ runs stopped at 1,100 steps are left out: ratio 16 at 2e-3 and ratio 8 at 3e-3, "
              "whose loss stalled near 2.1 (1.45 for ratio 8 at 2e-3).", "",
              "`layout` (`finetune.layout_rows=true`): the base's own layout tokens (its 64 locations, layout markers, "
              "labels and backgrounds) move by the low-rank delta too, not only the new tokens: Emoji World's boxes "
              "are squares on a grid, Shapes World's are not. `head48`: the output head's delta has rank 48, over the "
              "rows a planner writes (not the 809 words: `finetune.new_rows_head_rank`); the layout runs all have it, "
              "and `e24` / `e22` give the input rows rank 24 / 22 (16 otherwise). `lora8attn`: LoRA rank 8 on the "
              "four attention projections only, whose steps cost less (1,700 of them fit the same minutes). "
              "`words2`: new words of format 2 (`lvg/tokenizers/words.py`: Latin words as the base's pre-tokenizer "
              "cuts them, one token each, and each one's twin without its space tied to its rows: 1,260 words, 452 "
              "of them tied twins); the rows before them used format 1 (809 words, Latin ones as added tokens).",
              *seed_spread(res, budgets[-1]), *measured_note(res), "",
              f"Per category at {budgets[-1]:g} CPU minutes (or the run's last snapshot before it), EN / ZH:", "",
              "| method | " + " | ".join(cats) + " |", "|---|" + "---|" * len(cats)]  # fmt: skip
    for m, r in res.items():
        e = r["budgets"].get(budgets[-1])
        if e:
            lines.append(
                f"| {m} | " + " | ".join(f"{100 * e['en'][c]:.0f} / {100 * e['zh'][c]:.0f}" for c in cats) + " |"
            )
    return "\n".join(lines)


def seed_spread(res: dict[str, dict], budget: float) -> list[str]:
    """A sentence on the runs of one method with several seeds (``NAME`` and ``NAME-seedK``) at ``budget``."""
    out = []
    for m in [m for m in res if f"{m}-seed1" in res]:
        runs = [k for k in res if k == m or k.startswith(f"{m}-seed")]
        got = [(k, e) for k in runs if (e := res[k]["budgets"].get(budget))]
        if len(got) < 2:
            continue
        each = "; ".join(f"{k.removeprefix(m) or 'seed 0'}: {pct(e['en']['all'])} / {pct(e['zh']['all'])}"
                         for k, e in got).replace("-seed", "seed ")  # fmt: skip
        mean = [sum(e[lang]["all"] for _, e in got) / len(got) for lang in ("en", "zh")]
        out += ["", f"{m} with {len(got)} seeds (initialisation and batch order), each at its last snapshot within "
                f"{budget:g} CPU minutes: mean {pct(mean[0])} / {pct(mean[1])} (EN / ZH; {each})."]  # fmt: skip
    return out


def reading_report(res: dict[str, dict], budgets: list[float], base: dict) -> str:
    heads = " | ".join(f"{b:g} min" for b in budgets)
    lines = [
        f"`python benchmarks/finetune_emoji.py --task reading` (two to five minutes to score a run on one thread; `--train` trains the "
        "runs): the shipped Shapes World reading LM adapted to Emoji World's reading stream (`configs/reading-lm-"
        "emoji.yaml`, `world: emoji`) by each method, against a reading LM trained from scratch on it (the same "
        "config: the planner's size, its own Emoji World text tokenizer). Budget: the training process's CPU minutes "
        "(one thread; snapshots every 100 steps, each run's learning-rate schedule spanning about 30 minutes; "
        "validation time included). Score: the LM alone on true layouts of the stream's held-out seed: captions "
        f"written exactly (about {READ_CAPTIONS} per language) and questions answered right ({READ_QUESTIONS} per "
        'type and language), each cell "captions EN / ZH; questions EN / ZH". Forgetting: the same on Shapes '
        "World's held-out captions and questions at the last budget; the base reading LM: "
        f"{pct(base['en']['caption'])} / {pct(base['zh']['caption'])}; {pct(base['en']['questions'])} / "
        f"{pct(base['zh']['questions'])}.",
        "",
        f"| method | trainable (share) | adapter on disk | {heads} | Shapes World (forgetting) |",
        "|---|---|---|" + "---|" * len(budgets) + "---|",
    ]

    def cell(e: dict) -> str:
        return (f"{pct(e['en']['caption'])} / {pct(e['zh']['caption'])}; {pct(e['en']['questions'])} / "
                f"{pct(e['zh']['questions'])}")  # fmt: skip

    for m, r in res.items():
        cells = [f"{cell(e)} ({e['cpu_min']:.1f} min)" if (e := r["budgets"].get(b)) else "" for b in budgets]
        last = r["budgets"].get(budgets[-1]) or {}
        shapes = cell(last["shapes"]) if "shapes" in last else "(own vocabulary)"
        adapter = f"{r['adapter_mb']:.2f} MB" if r["adapter_mb"] else ""
        lines.append(f"| {m} | {r['trainable']:,} ({pct(r['share'])}) | {adapter} | {' | '.join(cells)} | {shapes} |")
    kinds = [k for k in next(iter(res.values()))["budgets"][budgets[-1]]["en"] if k not in ("caption", "questions")]
    worded = [m for m in res if any(o.startswith("finetune.new_words=") for o in READING_METHODS[m][1])]
    if plain := [m for m in res if m.startswith("lora") and m not in worded]:
        lines += ["", f"{', '.join(plain)}: LoRA trains the projections and the new labels' rows, while the output "
                  "head's text rows stay the base's, and the Shapes World tokenizer spells Emoji World's names in "
                  "letters and bytes: within about 20 minutes it does not learn to write them (the captions and the "
                  "'what' answers above), while counting, positions and relations carry over."]  # fmt: skip
    if worded:
        lines += ["", f"{', '.join(worded)}: with `finetune.new_words`: the words of the stream's questions and "
                  "answers that the Shapes World tokenizer spells in pieces become whole tokens, their rows train with "
                  "the labels' (low-rank under LoRA, `new_rows=lowrank`), and the LM writes the names. The `-10min` "
                  "runs' schedules end near a third of scratch's time (batch 32)."]  # fmt: skip
    if cut := [m for m in res if "finetune.new_words_cut=pieces" in READING_METHODS[m][1]]:
        lines += ["", f"{', '.join(cut)}: Chinese new words in pieces (`finetune.new_words_cut=pieces`: a name is one "
                  "token, cut by a byte-pair encoding learned from the stream's texts), rate 4e-3 with LoRA+ ratio 8, "
                  "and more captions in the mix (`data.caption_prob=0.6`); the recipes of the "
                  "finetune-emoji-reading-goal section."]  # fmt: skip
    if two := [m for m in res if "words2" in m]:
        lines += ["", f"{', '.join(two)}: new words of format 2 (`lvg/tokenizers/words.py`: Latin words as the base's "
                  "pre-tokenizer cuts them, one token each, and each one's twin without its space tied to its rows); the "
                  "rows before them used format 1 (Latin words as added tokens). `-e22h32`: the output head's rows at "
                  "rank 32 instead of 24."]  # fmt: skip
    lines += measured_note(res)
    lines += ["", f"Questions per type at {budgets[-1]:g} CPU minutes (or the run's last snapshot before it), EN / ZH:",
              "", "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]  # fmt: skip
    for m, r in res.items():
        e = r["budgets"].get(budgets[-1])
        if e:
            lines.append(f"| {m} | " + " | ".join(f"{100 * e['en'][k]:.0f} / {100 * e['zh'][k]:.0f}" for k in kinds)
                         + " |")  # fmt: skip
    return "\n".join(lines)


def painter_report(res: dict[str, dict], budgets: list[float], base_shapes: float) -> str:
    cats = list(CATEGORIES)
    heads = " | ".join(f"{b:g} min" for b in budgets)
    lines = [
        f"`python benchmarks/finetune_emoji.py --task painter` (about a minute to score a run; `--train` trains the "
        "runs): the shipped Shapes World GAN painter (`models/shapes-default`'s GAN painter, 14 label words) adapted to "
        "the Emoji World imagefolder `runs/emoji-data` by each method (`lvg train gan-painter --config configs/gan-"
        "painter-emoji.yaml finetune.base=models/shapes-default ...`, L1 only, no critic), against the same config "
        "from scratch (docs/painters.md's L1-only run: its schedule ends at 21 CPU minutes). The code painter is not "
        "adapted: it paints an image tokenizer's codes, and Emoji World art needs its own tokenizer. Budget: the "
        "training process's CPU minutes (one thread; a snapshot every 250 steps; validation time included). Score: "
        "painter only: the 450 benchmark prompts' true layouts (a real scene per spec) painted, image i with seed i, "
        "and judged by the Emoji World referee on the pixels. Forgetting: the share of "
        f"{SHAPES_SCENES} held-out Shapes World scenes painted from their layouts that Shapes World's judge passes, "
        f"at the last budget; the base GAN painter: {pct(base_shapes)}.",
        "",
        f"| method | trainable (share) | adapter on disk | {heads} | Shapes World (forgetting) |",
        "|---|---|---|" + "---|" * len(budgets) + "---|",
    ]
    for m, r in res.items():
        cells = [f"{pct(e['painter']['all'])} ({e['cpu_min']:.1f} min)" if (e := r["budgets"].get(b)) else ""
                 for b in budgets]  # fmt: skip
        last = r["budgets"].get(budgets[-1]) or {}
        shapes = pct(last["shapes"]) if "shapes" in last else "(own vocabulary)"
        adapter = f"{r['adapter_mb']:.2f} MB" if r["adapter_mb"] else ""
        lines.append(f"| {m} | {r['trainable']:,} ({pct(r['share'])}) | {adapter} | {' | '.join(cells)} | {shapes} |")
    lines += [*measured_note(res), "", f"Per category at {budgets[-1]:g} CPU minutes (or the run's last snapshot before it):", "",
              "| method | " + " | ".join(cats) + " |", "|---|" + "---|" * len(cats)]  # fmt: skip
    for m, r in res.items():
        e = r["budgets"].get(budgets[-1])
        if e:
            lines.append(f"| {m} | " + " | ".join(f"{100 * e['painter'].get(c, 0):.0f}" for c in cats) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
