"""Painters compared at equal CPU minutes: code, GAN and diffusion painters, and the one-stage LM.

    python benchmarks/painters.py --world shapes --run "gan:GAN painter=runs/cmp/gan-shapes" \
        "code:code painter=runs/cmp/code-shapes" "diffusion:diffusion painter=runs/cmp/diffusion-shapes" \
        "one-stage:one-stage LM=runs/cmp/one-stage-shapes" [--minutes 15 30 60]
    python benchmarks/painters.py --world emoji --planner runs/planner-emoji/planner \
        --run "gan:GAN=runs/gan-painter-emoji" "gan:L1 only=runs/gan-painter-emoji-l1"

Each ``--run KIND:LABEL=RUN`` is a training run folder with ``train.keep_snapshots=true`` (``OUT/snapshots/step-N``
and ``cpu.txt``, the training process's CPU seconds at each). KIND is ``gan`` (``lvg train gan-painter``: its EMA
generator), ``diffusion`` (``lvg train diffusion-painter``: its EMA weights, DDIM at the painter's own steps),
``code`` (``lvg train painter``: argmax codes, and a second row with every token drawn at temperature 1, decoded by
the image tokenizer the run trained on; a masked (MaskGIT) painter, ``model.masked=true``, paints both in 8 rounds) or ``one-stage`` (``lvg train llm``: the unified LM writes the image codes
itself from the prompt; guidance 3, temperature 1, as ``benchmarks/ablation.py``). For each budget, a run's entry is
its last snapshot within that many CPU minutes; a run that ended inside a budget is shown once.

Each painter paints the layouts the same planner writes for the world's public benchmark (prompt ``i`` with seed
``i``, EN and ZH), and the world's referee judges the pixels (whole prompt right, per category). Shapes World: the
shipped planner (and the shipped code painter, the reference row); Emoji World: ``--planner``. Also measured:
- Shapes World: the 3-4-object prompts (every colour and size stated, 100 per language:
  ``lvg.worlds.shapes.prompt_sets.multi_object_prompts``), whole prompt right;
- painter only: the benchmark prompts' true layouts (a real scene drawn for each spec, Emoji World) painted and
  judged, so the planner's mistakes do not count against the painter;
- diversity: 16 seeds of one layout (the one-stage LM: of one prompt), the share of distinct images and the mean
  pairwise RMS pixel distance;
- speed: layouts -> images per second at batch 1 and 64 (the one-stage LM: prompts -> images), one thread, measured
  in the final run for every row; and parameters;
- Shapes World: the soft IoU of coverage of every object of 1,200 held-out scenes painted from their layouts
  (``lvg.eval.object_iou.painted_object_iou``; not for the one-stage LM, which has no layout), worst kind's share
  >= 0.9 (target 99%) and the small stars' mean; and FID / KID (x1000) of 1,000 held-out scenes painted from their
  layouts (the one-stage LM: drawn from their full English captions) against their renders, in the shipped CLIP's image
  features, beside real-vs-real (1,000 other renders);
- Emoji World: FID / KID (x1000) of the row's images of the 450 English benchmark prompts (the whole text -> image
  path, prompt i with seed i) against renders of the same prompts, in the shipped Emoji CLIP's image features
  (``models/emoji-default/clip``), beside real-vs-real (a second set of renders); cached apart from the other figures.
Every row's quality figures are cached in ``--cache`` (one JSON per row), so rows can be measured by several
processes (``--no-write``) and the section written by a last run that measures only the speeds.
Writes BENCHMARKS.md's "painters-WORLD" section.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _report import write_section
from safetensors.torch import load_file

from lvg.data.layout import Layout
from lvg.eval.object_iou import painted_object_iou
from lvg.eval.shapes import evaluate_generation
from lvg.images import images_to_tensor
from lvg.models.diffusion_painter import DiffusionPainter
from lvg.models.gan import GanPainter
from lvg.models.painter import Painter
from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
from lvg.pipelines.utils import decode_images, resolve_seeds
from lvg.sampling.config import GenerationConfig
from lvg.tokenizers.image import ImageTokenizer
from lvg.worlds import get_world

ROOT = Path(__file__).resolve().parents[1]
SHAPES_MODEL = ROOT / "models" / "shapes-default"
EMOJI_SAMPLING = {"temperature": 0.3, "guidance_scale": 1.0, "top_k": 0, "top_p": 1.0}
ONE_STAGE_SAMPLING = {"temperature": 1.0, "guidance_scale": 3.0, "top_k": 0, "top_p": 1.0}  # as benchmarks/ablation.py
IOU_SCENES, FID_SCENES = 1200, 1000  # held-out scenes of the soft IoU and of FID / KID
KINDS = ("gan", "diffusion", "code", "one-stage")
EMOJI_CLIP = ROOT / "models" / "emoji-default" / "clip"
MASKED_STEPS = 8  # rounds of a masked (MaskGIT) code painter, as MaskGIT's 8-12
Paint = Callable[[list[Layout], list[int]], list[np.ndarray]]  # layouts, seeds -> uint8 [H, W, 3] images


@dataclass
class Output:
    images: list
    prompts: list[str]
    seeds: list[int]
    unsupported: list


class PlanAndPaint:
    """A text -> image pipeline of a planner and any painter (a pixel painter needs no image tokenizer here)."""

    def __init__(self, planner: LayoutPlanner, paint: Paint, config: GenerationConfig):
        self.planner, self.paint, self.generation_config = planner, paint, config

    def __call__(self, prompt, config=None, *, seeds=None, batch_size=64, **settings) -> Output:
        cfg = GenerationConfig.from_kwargs(config or self.generation_config, **settings)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        seeds = resolve_seeds(len(prompts), cfg.seed, seeds, None)
        layouts = self.planner.plan_tokens(self.planner.tokenize(prompts), seeds, cfg.guidance_scale,
                                           cfg.temperature, cfg.top_k, cfg.top_p, batch_size)  # fmt: skip
        return Output(self.paint(layouts, seeds), prompts, seeds, [])


@dataclass
class Row:
    """One line of the table: a painter (``paint``) behind the planner, or a text -> image model (``paint`` None)."""

    name: str
    key: str  # what the cached figures belong to (the run, step and mode)
    params: int
    pipe: object  # text -> image: ``pipe(prompts, config, seeds=, batch_size=)``, images as arrays or PIL
    config: GenerationConfig
    paint: Paint | None = None
    extra: dict = field(default_factory=dict)


def pixel_paint(g: GanPainter | DiffusionPainter) -> Paint:
    def paint(layouts: list[Layout], seeds: list[int]) -> list[np.ndarray]:
        return list(g.paint(layouts, seeds).permute(0, 2, 3, 1).numpy())

    return paint


def code_paint(painter: Painter, tokenizer: ImageTokenizer, temperature: float = 0.0, steps: int = 1) -> Paint:
    def paint(layouts: list[Layout], seeds: list[int]) -> list[np.ndarray]:
        codes = painter.paint(layouts, seeds, temperature, steps)
        return [np.asarray(im) for im in decode_images(codes, tokenizer)]

    return paint


def snapshots(run: Path) -> list[tuple[int, float]]:
    """(step, CPU minutes) of every snapshot the run kept."""
    rows = []
    for line in (run / "snapshots" / "cpu.txt").read_text().splitlines():
        step, cpu, _ = line.split()
        rows.append((int(step), float(cpu) / 60))
    return sorted(set(rows))


def architecture(kind: str, run: Path):
    """A GAN or diffusion painter of the run's architecture: ``OUT/painter`` when the run has ended, else (a run still
    training) what its trainer builds from the config it recorded (``OUT/config.json``)."""
    cls = GanPainter if kind == "gan" else DiffusionPainter
    if (run / "painter").is_dir():
        return cls.from_pretrained(run / "painter")
    from lvg.component import config_from_dict
    from lvg.train import diffusion_painter, gan
    from lvg.train.folder import Folder
    from lvg.train.painter import folder_vocabulary, shapes_world_vocabulary

    trainer = gan if kind == "gan" else diffusion_painter
    cfg_class = gan.GanPainterTrainingConfig if kind == "gan" else diffusion_painter.DiffusionPainterTrainingConfig
    cfg = config_from_dict(cfg_class, json.loads((run / "config.json").read_text()), str(run / "config.json"))
    if cfg.imagefolder:
        folder = Folder(cfg.imagefolder, cfg.val_fraction, layouts=True, images=False)
        vocab = folder_vocabulary(folder.train + folder.val)
    else:
        vocab = shapes_world_vocabulary()
    return cls(trainer.painter_config(vocab, cfg.model))


def ema_at(kind: str, run: Path, step: int):
    """The EMA weights of snapshot ``step`` of a GAN or diffusion painter run."""
    g = architecture(kind, run)
    state = load_file(run / "snapshots" / f"step-{step}" / "ema.safetensors")
    g.load_state_dict({k.removeprefix("module."): v for k, v in state.items() if k.startswith("module.")})
    return g.eval()


def code_at(run: Path, step: int) -> tuple[Painter, ImageTokenizer]:
    """The code painter of snapshot ``step`` of a painter run, and the image tokenizer it was trained on."""
    p = Painter.from_pretrained(run / "painter")
    p.load_state_dict(load_file(run / "snapshots" / f"step-{step}" / "painter.safetensors"))
    tok = json.loads((run / "config.json").read_text())["image_tokenizer"]
    return p.eval(), ImageTokenizer.from_pretrained(ROOT / tok).eval()


def one_stage_at(run: Path, step: int):
    """The one-stage pipeline (unified LM + its image tokenizer) of snapshot ``step`` of an ``lvg train llm`` run."""
    from lvg.models.unified import VocabLayout, build_lm
    from lvg.pipelines.pipeline import Pipeline
    from lvg.tokenizers.text import load_text_tokenizer
    from lvg.train.llm import component_dir

    cfg = json.loads((run / "config.json").read_text())
    if cfg["model"]["init_from"]:
        raise SystemExit(f"{run}: a one-stage LM grown from {cfg['model']['init_from']} is not supported here")
    text_tok = load_text_tokenizer(ROOT / component_dir(cfg["text_tokenizer"], "text_tokenizer"))
    image_tok = ImageTokenizer.from_pretrained(ROOT / component_dir(cfg["image_tokenizer"], "image_tokenizer"))
    layout = VocabLayout.from_tokenizers(text_tok, image_tok.codebook_size, image_tok.config.grid**2,
                                         cfg["model"]["max_text_tokens"])  # fmt: skip
    lm = build_lm(layout, cfg["model"]["preset"])
    lm.load_state_dict(load_file(run / "snapshots" / f"step-{step}" / "lm.safetensors"))
    return Pipeline(lm.eval(), image_tok, text_tok, layout), sum(p.numel() for p in lm.parameters())


def run_ended(run: Path, snaps: list[tuple[int, float]]) -> bool:
    """Whether the run reached the end of its schedule (its last snapshot ``snaps[-1]`` is at ``train.steps``)."""
    return snaps[-1][0] >= json.loads((run / "config.json").read_text())["train"]["steps"]


def rows_of_run(kind: str, label: str, run: Path, snaps: list[tuple[int, float]], ended: bool, minutes: list[float],
                planner, gen) -> list[Row]:  # fmt: skip
    """The table's rows of one run (its snapshots ``snaps``; ``ended``: whether it reached the end of its schedule)."""
    out = []
    for budget in minutes:
        within = [s for s in snaps if s[1] <= budget + 1e-9]
        if not within or (not ended and budget > snaps[-1][1]):
            continue  # nothing within the budget, or a run stopped before it (resume it to measure this budget)
        step, mins = within[-1]
        name = f"{label}, {budget:g} CPU min (step {step}, {mins:.1f} min)"
        key = f"{run.resolve()}|{step}|{kind}"
        if kind in ("gan", "diffusion"):
            g = ema_at(kind, run, step)
            paint = pixel_paint(g)
            out.append(Row(name, key, sum(p.numel() for p in g.parameters()), PlanAndPaint(planner, paint, gen), gen,
                           paint))  # fmt: skip
        elif kind == "code":
            painter, tok = code_at(run, step)
            params = sum(p.numel() for p in painter.parameters())
            steps = MASKED_STEPS if painter.config.masked else 1  # a masked painter paints in rounds
            rounds = f"{steps} rounds, " if steps > 1 else ""
            for t, mode in ((0.0, "argmax"), (1.0, "tokens sampled at temperature 1")):
                paint = code_paint(painter, tok, t, steps)
                out.append(Row(f"{name}, {rounds}{mode}", f"{key}|{t}" + (f"|{steps}" if steps > 1 else ""), params,
                               PlanAndPaint(planner, paint, gen), gen, paint))  # fmt: skip
        else:
            pipe, params = one_stage_at(run, step)
            cfg = GenerationConfig.from_kwargs(GenerationConfig(), **ONE_STAGE_SAMPLING)
            out.append(Row(name, key, params, pipe, cfg))
        if within[-1] == snaps[-1]:
            break  # the run ended within this budget: larger budgets would repeat it
    return out


def as_arrays(images: list) -> list[np.ndarray]:
    return [np.asarray(im.convert("RGB")) if hasattr(im, "convert") else np.asarray(im) for im in images]


def text_paint(row: Row) -> Callable[[list[str], list[int]], list[np.ndarray]]:
    """Texts, seeds -> images through the row's whole text -> image path."""

    def draw(texts: list[str], seeds: list[int]) -> list[np.ndarray]:
        return as_arrays(row.pipe(texts, row.config.replace(seed=None), seeds=seeds, batch_size=64).images)

    return draw


def accuracy(row: Row, prompts: list[dict], referee) -> dict:
    """Whole-prompt result per language, with the row's sampling settings (seed 0 for prompt 0)."""
    return {lang: evaluate_generation(row.pipe, prompts, lang, row.config.replace(seed=0), referee=referee,
                                      batch_size=64) for lang in ("en", "zh")}  # fmt: skip


def painter_only(paint: Paint, world_name: str, prompts: list[dict], referee) -> float | None:
    """Share of the benchmark's true layouts (a real scene per spec) painted so that the referee passes them."""
    if world_name != "emoji":
        return None
    from lvg.worlds.emoji.benchmark import scene_from_spec

    rng = random.Random(0)
    layouts = [scene_from_spec(r["spec"], rng).layout(with_style=True) for r in prompts]
    images = []
    for s in range(0, len(layouts), 64):
        images += paint(layouts[s : s + 64], list(range(s, min(len(layouts), s + 64))))
    return sum(bool(referee(im, r["spec"]).passed) for im, r in zip(images, prompts, strict=True)) / len(prompts)


def diversity(images: list[np.ndarray]) -> tuple[float, float]:
    imgs = np.stack(images).astype(np.float64) / 255
    distinct = len({im.tobytes() for im in np.stack(images)}) / len(images)
    d = [np.sqrt(((imgs[i] - imgs[j]) ** 2).mean()) for i in range(len(imgs)) for j in range(i + 1, len(imgs))]
    return distinct, float(np.mean(d))


def fid_scenes(num: int = 1000) -> list:
    from lvg.worlds.shapes.world import sample_scene

    return [sample_scene(random.Random(f"lvg-painters-fid:{i}")) for i in range(num)]


def shapes_fid(row: Row, clip, num: int = 1000) -> tuple[float, float]:
    """FID and KID x1000 of ``num`` held-out Shapes World scenes, painted from their layouts (a text -> image model:
    drawn from their full English captions), against their own renders (CLIP image features of the shipped model)."""
    from lvg.eval.metrics import frechet_distance, kernel_inception_distance
    from lvg.worlds.shapes.captions import describe_fully, spec_to_text
    from lvg.worlds.shapes.render import render
    from lvg.worlds.shapes.scene_layout import layout_from_scene

    scenes = fid_scenes(num)
    real = torch.from_numpy(np.stack([render(sc) for sc in scenes])).permute(0, 3, 1, 2)
    if row.paint is not None:
        conds, draw = [layout_from_scene(sc) for sc in scenes], row.paint
    else:
        conds, draw = [spec_to_text(describe_fully(sc), "en") for sc in scenes], text_paint(row)
    fake = np.stack([im for s in range(0, num, 64) for im in draw(conds[s : s + 64], list(range(s, min(num, s + 64))))])
    fake = torch.from_numpy(fake).permute(0, 3, 1, 2)
    fr, ff = clip_features(clip, real), clip_features(clip, fake)
    return frechet_distance(fr, ff), 1000 * kernel_inception_distance(fr, ff)[0]


def emoji_renders(prompts: list[dict], key: str) -> torch.Tensor:
    """Renders of the benchmark prompts' own scenes (scene ``i`` drawn from ``{key}:{i}``), uint8 [N, 3, H, W]."""
    from lvg.worlds.emoji.benchmark import scene_from_spec

    world = get_world("emoji")
    return images_to_tensor([world.render(scene_from_spec(r["spec"], random.Random(f"{key}:{i}")))
                             for i, r in enumerate(prompts)])  # fmt: skip


def clip_features(clip, x: torch.Tensor) -> np.ndarray:
    """CLIP image features of uint8 images [N, 3, H, W], 250 at a time."""
    with torch.no_grad():
        return torch.cat([clip.image_features(x[s : s + 250]) for s in range(0, len(x), 250)]).numpy()


def emoji_fid(row: Row, clip, prompts: list[dict], real: np.ndarray) -> list[float]:
    """FID and KID x1000 of the row's images of the benchmark's English prompts (prompt i with seed i, the whole
    text -> image path) against ``real``, the Emoji CLIP's image features of renders of the same prompts."""
    from lvg.eval.metrics import frechet_distance, kernel_inception_distance

    draw = text_paint(row)
    texts = [r["en"] for r in prompts]
    n = len(texts)
    fake = [im for s in range(0, n, 64) for im in draw(texts[s : s + 64], list(range(s, min(n, s + 64))))]
    ff = clip_features(clip, images_to_tensor(fake))
    return [frechet_distance(real, ff), 1000 * kernel_inception_distance(real, ff, subset_size=200)[0]]


def real_vs_real(clip, num: int = 1000) -> tuple[float, float]:
    from lvg.eval.metrics import frechet_distance, kernel_inception_distance
    from lvg.worlds.shapes.render import render
    from lvg.worlds.shapes.world import sample_scene

    def feats(key: str) -> np.ndarray:
        x = torch.from_numpy(np.stack([render(sample_scene(random.Random(f"{key}:{i}"))) for i in range(num)]))
        with torch.no_grad():
            return clip.image_features(x.permute(0, 3, 1, 2)).numpy()

    a, b = feats("lvg-painters-fid"), feats("lvg-painters-fid-other")
    return frechet_distance(a, b), 1000 * kernel_inception_distance(a, b)[0]


def speed(draw: Callable, conds: list) -> tuple[float, float]:
    """Images/s of ``draw(conds, seeds)`` one at a time (16 calls) and 64 at once, after a warm-up call."""
    draw(conds[:2], [0, 1])
    t = time.perf_counter()
    for i in range(16):
        draw(conds[i : i + 1], [i])
    b1 = 16 / (time.perf_counter() - t)
    t = time.perf_counter()
    draw(conds[:64], list(range(64)))
    return b1, 64 / (time.perf_counter() - t)


def quality(row: Row, world: str, prompts: list[dict], referee, layout: Layout, clip) -> dict:
    """Every figure of a row but its speed (what the cache keeps)."""
    acc = accuracy(row, prompts, referee)
    q: dict = {"en": acc["en"].overall, "zh": acc["zh"].overall,
               "categories": {lang: r.categories for lang, r in acc.items()}}  # fmt: skip
    if world == "shapes":
        from lvg.worlds.shapes.prompt_sets import multi_object_prompts

        m = accuracy(row, multi_object_prompts(), referee)
        q["multi"] = [m["en"].overall, m["zh"].overall]
        q["fid"] = list(shapes_fid(row, clip, FID_SCENES))
        if row.paint is not None:
            iou = painted_object_iou(row.paint, num=IOU_SCENES)
            worst = min(iou["per_kind"], key=lambda k: iou["per_kind"][k]["share_good"])
            q["iou"] = [iou["min_share_good"], worst, iou["per_kind"]["small star"]["mean_iou"]]
    if row.paint is not None:
        q["painter_only"] = painter_only(row.paint, world, prompts, referee)
        q["diversity"] = list(diversity(row.paint([layout] * 16, list(range(16)))))
    else:
        q["diversity"] = list(diversity(text_paint(row)([prompts[0]["en"]] * 16, list(range(16)))))
    return q


def cached_quality(cache: Path, row: Row, compute: Callable[[], dict]) -> dict:
    f = cache / (hashlib.sha256(row.key.encode()).hexdigest()[:16] + ".json")
    if f.is_file():
        return json.loads(f.read_text())["quality"]
    q = compute()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": row.key, "name": row.name, "quality": q}, indent=1))
    tmp.replace(f)
    return q


def table_line(row: Row, q: dict, b1: float, b64: float) -> str:
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    multi = " | ".join(pct(v) for v in q["multi"]) if "multi" in q else "- | -"
    iou = q.get("iou")
    worst = "-" if iou is None else f"{iou[0]:.1%} ({iou[1]})"
    star = "-" if iou is None else f"{iou[2]:.3f}"
    fid = "- | -" if "fid" not in q else f"{q['fid'][0]:.4f} | {q['fid'][1]:.3f}"
    dist, rms = q["diversity"]
    return (f"| {row.name} | {pct(q['en'])} | {pct(q['zh'])} | {multi} | {pct(q.get('painter_only'))} | {worst} | "
            f"{star} | {fid} | {dist * 16:.0f} | {rms:.4f} | {b1:.1f} | {b64:.1f} | {row.params / 1e6:.2f}M |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=["shapes", "emoji"], required=True)
    ap.add_argument(
        "--run",
        nargs="+",
        default=[],
        metavar="KIND:LABEL=RUN",
        help=f"training runs with snapshots (train.keep_snapshots=true); KIND: {', '.join(KINDS)}",
    )
    ap.add_argument("--planner", type=Path, help="the planner folder (Emoji World; Shapes World: the shipped one)")
    ap.add_argument("--minutes", type=float, nargs="+", default=[15, 30, 60])
    ap.add_argument("--prompts", type=int, default=0, help="use only the first N benchmark prompts (0: all)")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "painters-cache",
                    help="folder of per-row quality figures (default runs/painters-cache)")  # fmt: skip
    ap.add_argument("--no-write", action="store_true", help="measure (and cache) but do not write BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    world = get_world(args.world)
    prompts = world.benchmark_prompts()
    if args.prompts:
        prompts = prompts[: args.prompts]
    referee = world.judge
    rows: list[Row] = []
    runs: list[str] = []
    clip = None
    if args.world == "shapes":
        shipped = PlannedPipeline.from_pretrained(SHAPES_MODEL)
        planner, gen, clip = shipped.planner, shipped.generation_config, shipped.clip
        code = shipped.use_painter("code")
        paint = code_paint(code.painter, code.image_tokenizer)
        weights = b"".join(
            (SHAPES_MODEL / d / "model.safetensors").read_bytes() for d in ("code_painter", "image_tokenizer")
        )
        grid = code.image_tokenizer.config.grid  # the key names the weights: a retrained folder is measured anew
        rows.append(Row(f"code painter (shipped `code_painter/`, {grid}x{grid} FSQ), argmax",
                        f"{SHAPES_MODEL}|code|{hashlib.sha256(weights).hexdigest()[:16]}",
                        sum(p.numel() for p in code.painter.parameters()), PlanAndPaint(planner, paint, gen), gen,
                        paint))  # fmt: skip
    else:
        if args.planner is None:
            ap.error("--world emoji needs --planner")
        planner = LayoutPlanner.from_pretrained(args.planner)
        gen = GenerationConfig.from_kwargs(GenerationConfig(), **EMOJI_SAMPLING)
        from lvg.models.clip import ShapesClip

        clip = ShapesClip.from_pretrained(EMOJI_CLIP).eval()  # FID / KID features: the shipped Emoji CLIP
    for spec in args.run:
        kind, sep1, rest = spec.partition(":")
        label, sep2, run = rest.partition("=")
        if not (sep1 and sep2) or kind not in KINDS:
            ap.error(f"--run takes KIND:LABEL=RUN with KIND one of {', '.join(KINDS)}, got {spec!r}")
        if not (Path(run) / "snapshots" / "cpu.txt").is_file():
            ap.error(f"{run}: no snapshots/cpu.txt (train with train.keep_snapshots=true)")
        snaps = snapshots(Path(run))
        ended = run_ended(Path(run), snaps)
        rows += rows_of_run(kind, label, Path(run), snaps, ended, args.minutes, planner, gen)
        step, mins = snaps[-1]
        state = "its end" if ended else "stopped there, to be resumed"
        runs.append(f"{label}: `{run}` ({kind}; last snapshot: step {step}, {mins:.1f} CPU min, {state})")
    layout = planner.plan_tokens(planner.tokenize([prompts[0]["en"]]), [0], 1.0, 0.0, 0, 1.0, 1)[0]
    speed_layouts = [planner.plan_tokens(planner.tokenize([r["en"]]), [i], **_plan_kw(gen))[0]
                     for i, r in enumerate(prompts[:64])]  # fmt: skip
    speed_layouts = [speed_layouts[i % len(speed_layouts)] for i in range(64)]
    speed_prompts = [prompts[i % len(prompts)]["en"] for i in range(64)]
    cache = args.cache / f"{args.world}-{len(prompts)}"
    lines = [f"World: {args.world}; {len(prompts)} benchmark prompts per language, prompt i with seed i, one image each; "
             f"the world's referee judges the pixels. Diversity: 16 seeds of the layout of '{prompts[0]['en']}' (the "
             f"one-stage LM: of the prompt). Planner: `{args.planner or SHAPES_MODEL.relative_to(ROOT) / 'planner'}`.",
             *([f"Runs: {'; '.join(runs)}."] if runs else []), "",
             "| painter | whole prompt EN | ZH | 3-4 objects EN | ZH | painter only (true layouts) | soft IoU >= 0.9, worst kind | "
             "small star soft IoU | FID | KID x1000 | distinct / 16 | mean pairwise RMS | img/s batch 1 | batch 64 | "
             "parameters |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    cats: dict[str, dict] = {}
    # Emoji World's FID references: the Emoji CLIP's features of two sets of renders of the benchmark prompts
    emoji_real = None if args.world != "emoji" else [clip_features(clip, emoji_renders(prompts, f"lvg-real:{k}"))
                                                     for k in (0, 1)]  # fmt: skip
    for row in rows:
        q = cached_quality(cache, row, lambda r=row: quality(r, args.world, prompts, referee, layout, clip))
        if emoji_real is not None:  # cached apart from the rest, under a key of its own
            fid_row = dataclasses.replace(row, key=f"{row.key}|emoji-fid")
            q = q | cached_quality(cache, fid_row, lambda r=row: {"fid": emoji_fid(r, clip, prompts, emoji_real[0])})
        cats[row.name] = q["categories"]
        b1, b64 = speed(row.paint, speed_layouts) if row.paint is not None else speed(text_paint(row), speed_prompts)
        lines.append(table_line(row, q, b1, b64))
        print(lines[-1], flush=True)
    if args.world == "shapes":
        rf, rk = real_vs_real(clip)
        lines.append(f"\nReal vs real (1,000 renders against 1,000 others, same features): FID {rf:.4f}, KID x1000 "
                     f"{rk:.3f}.")  # fmt: skip
    else:
        from lvg.eval.metrics import frechet_distance, kernel_inception_distance

        a, b = emoji_real
        lines.append(f"\nFID / KID x1000 (Emoji World): each row's images of the {len(prompts)} English benchmark prompts "
                     f"against renders of the same prompts, in the shipped Emoji CLIP's image features "
                     f"(`{EMOJI_CLIP.relative_to(ROOT)}`); real vs real (a second set of renders): FID "
                     f"{frechet_distance(a, b):.4f}, KID x1000 {1000 * kernel_inception_distance(a, b, subset_size=200)[0]:.3f}.")  # fmt: skip
    names = list(cats)
    cat_names = list(next(iter(cats.values()))["en"])
    lines += ["", "Per category, whole prompt right (EN / ZH):", "",
              "| category | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for c in cat_names:
        lines.append(f"| {c} | " + " | ".join(f"{cats[n]['en'][c]:.0%} / {cats[n]['zh'][c]:.0%}" for n in names) + " |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(f"painters-{args.world}", body)


def _plan_kw(gen: GenerationConfig) -> dict:
    return {"guidance_scale": gen.guidance_scale, "temperature": gen.temperature, "top_k": gen.top_k,
            "top_p": gen.top_p, "batch_size": 1}  # fmt: skip


if __name__ == "__main__":
    main()
