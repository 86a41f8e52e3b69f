"""Painters compared at equal CPU minutes: the GAN painter (its training snapshots) against the code painter.

    python benchmarks/painters.py --world shapes --gan-run "GAN=runs/gan-painter-shapes" [--minutes 15 30 60]
    python benchmarks/painters.py --world emoji --planner runs/planner-emoji/planner \
        --gan-run "GAN=runs/gan-painter-emoji" "L1 only=runs/gan-painter-emoji-l1"

Each ``--gan-run LABEL=RUN`` is a ``lvg train gan-painter`` run (e.g. one with the critic and one without); for each
budget, its painter is the EMA generator of the last snapshot the run took within that many CPU minutes of its
training process (``OUT/snapshots/step-N`` and ``cpu.txt``, written with ``train.keep_snapshots=true``).
Each painter paints the layouts the same planner writes for the world's public benchmark (prompt ``i`` with seed
``i``, EN and ZH), and the world's referee judges the pixels (whole prompt right, per category). Shapes World: the
shipped planner (and its code painter, the reference row); Emoji World: ``--planner``. Also measured per painter:
- Shapes World: the 3-4-object prompts (every colour and size stated, 100 per language:
  ``lvg.worlds.shapes.prompt_sets.multi_object_prompts``), whole prompt right;
- painter only: the benchmark prompts' true layouts (a real scene drawn for each spec, Emoji World) painted and
  judged, so the planner's mistakes do not count against the painter;
- diversity: 16 seeds of one layout, the share of distinct images and the mean pairwise RMS pixel distance;
- speed: layouts -> images per second at batch 1 and 64 (one thread), and parameters;
- Shapes World: the soft IoU of coverage of every object of 1,200 held-out scenes painted from their layouts
  (``lvg.eval.object_iou.painted_object_iou``), worst kind's share >= 0.9 (target 99%) and the small stars' mean;
  and FID / KID (x1000) of 1,000 held-out layouts painted against their renders, in the shipped CLIP's image
  features, beside real-vs-real (1,000 other renders).
Writes BENCHMARKS.md's "painters-WORLD" section.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _report import write_section
from safetensors.torch import load_file

from lvg.data.layout import Layout
from lvg.eval.object_iou import painted_object_iou
from lvg.eval.shapes import evaluate_generation
from lvg.models.gan import GanPainter
from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
from lvg.pipelines.utils import decode_images, resolve_seeds
from lvg.sampling.config import GenerationConfig
from lvg.worlds import get_world

ROOT = Path(__file__).resolve().parents[1]
SHAPES_MODEL = ROOT / "models" / "shapes-default"
EMOJI_SAMPLING = {"temperature": 0.3, "guidance_scale": 1.0, "top_k": 0, "top_p": 1.0}


@dataclass
class Output:
    images: list
    prompts: list[str]
    seeds: list[int]
    unsupported: list


class PlanAndPaint:
    """A text -> image pipeline of a planner and any painter (a GAN painter needs no image tokenizer here)."""

    def __init__(self, planner: LayoutPlanner, paint, config: GenerationConfig):
        self.planner, self.paint, self.generation_config = planner, paint, config

    def __call__(self, prompt, config=None, *, seeds=None, batch_size=64, **settings) -> Output:
        cfg = GenerationConfig.from_kwargs(config or self.generation_config, **settings)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        seeds = resolve_seeds(len(prompts), cfg.seed, seeds, None)
        layouts = self.planner.plan_tokens(self.planner.tokenize(prompts), seeds, cfg.guidance_scale,
                                           cfg.temperature, cfg.top_k, cfg.top_p, batch_size)  # fmt: skip
        return Output(self.paint(layouts, seeds), prompts, seeds, [])


def gan_paint(g: GanPainter):
    def paint(layouts: list[Layout], seeds: list[int]) -> list[np.ndarray]:
        return list(g.paint(layouts, seeds).permute(0, 2, 3, 1).numpy())

    return paint


def code_paint(pipe: PlannedPipeline):
    def paint(layouts: list[Layout], seeds: list[int]) -> list:
        return [np.asarray(im) for im in decode_images(pipe.painter.paint(layouts), pipe.image_tokenizer)]

    return paint


def snapshots(run: Path) -> list[tuple[int, float]]:
    """(step, CPU minutes) of every snapshot the run kept."""
    rows = []
    for line in (run / "snapshots" / "cpu.txt").read_text().splitlines():
        step, cpu, _ = line.split()
        rows.append((int(step), float(cpu) / 60))
    return sorted(set(rows))


def gan_at(run: Path, step: int) -> GanPainter:
    """The EMA generator of snapshot ``step`` of a GAN painter run (its architecture from ``OUT/painter``)."""
    g = GanPainter.from_pretrained(run / "painter")
    state = load_file(run / "snapshots" / f"step-{step}" / "ema.safetensors")
    g.load_state_dict({k.removeprefix("module."): v for k, v in state.items() if k.startswith("module.")})
    return g.eval()


def accuracy(pipe, prompts: list[dict], referee) -> dict:
    """Whole-prompt accuracy per language, with the model's own sampling settings (seed 0 for prompt 0)."""
    out = {}
    for lang in ("en", "zh"):
        res = evaluate_generation(pipe, prompts, lang, pipe.generation_config.replace(seed=0), referee=referee,
                                  batch_size=64)  # fmt: skip
        out[lang] = res
    return out


def painter_only(paint, world_name: str, prompts: list[dict], referee) -> float | None:
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


def diversity(paint, layout: Layout) -> tuple[float, float]:
    imgs = np.stack(paint([layout] * 16, list(range(16)))).astype(np.float64) / 255
    distinct = len({im.tobytes() for im in (imgs * 255).round().astype(np.uint8)}) / 16
    d = [np.sqrt(((imgs[i] - imgs[j]) ** 2).mean()) for i in range(16) for j in range(i + 1, 16)]
    return distinct, float(np.mean(d))


def shapes_fid(paint, clip, num: int = 1000) -> tuple[float, float]:
    """FID and KID x1000 of ``num`` held-out Shapes World layouts painted, against their own renders (CLIP image
    features of the shipped model)."""
    from lvg.eval.metrics import frechet_distance, kernel_inception_distance
    from lvg.worlds.shapes.render import render
    from lvg.worlds.shapes.scene_layout import layout_from_scene
    from lvg.worlds.shapes.world import sample_scene

    scenes = [sample_scene(random.Random(f"lvg-painters-fid:{i}")) for i in range(num)]
    real = torch.from_numpy(np.stack([render(sc) for sc in scenes])).permute(0, 3, 1, 2)
    layouts = [layout_from_scene(sc) for sc in scenes]
    fake = torch.from_numpy(np.stack([im for s in range(0, num, 64)
                                      for im in paint(layouts[s : s + 64], list(range(s, min(num, s + 64))))]))  # fmt: skip
    fake = fake.permute(0, 3, 1, 2)
    with torch.no_grad():
        fr = torch.cat([clip.image_features(real[s : s + 250]) for s in range(0, num, 250)]).numpy()
        ff = torch.cat([clip.image_features(fake[s : s + 250]) for s in range(0, num, 250)]).numpy()
    return frechet_distance(fr, ff), 1000 * kernel_inception_distance(fr, ff)[0]


def real_vs_real(clip, num: int = 1000) -> tuple[float, float]:
    from lvg.worlds.shapes.render import render
    from lvg.worlds.shapes.world import sample_scene

    def feats(key: str) -> np.ndarray:
        x = torch.from_numpy(np.stack([render(sample_scene(random.Random(f"{key}:{i}"))) for i in range(num)]))
        with torch.no_grad():
            return clip.image_features(x.permute(0, 3, 1, 2)).numpy()

    from lvg.eval.metrics import frechet_distance, kernel_inception_distance

    a, b = feats("lvg-painters-fid"), feats("lvg-painters-fid-other")
    return frechet_distance(a, b), 1000 * kernel_inception_distance(a, b)[0]


def speed(paint, layouts: list[Layout]) -> tuple[float, float]:
    paint(layouts[:2], [0, 1])  # warm up
    t = time.perf_counter()
    for i in range(16):
        paint(layouts[i : i + 1], [i])
    b1 = 16 / (time.perf_counter() - t)
    t = time.perf_counter()
    paint(layouts[:64], list(range(64)))
    return b1, 64 / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=["shapes", "emoji"], required=True)
    ap.add_argument(
        "--gan-run",
        nargs="+",
        required=True,
        metavar="LABEL=RUN",
        help="GAN painter runs (their OUT folders, trained with train.keep_snapshots=true)",
    )
    ap.add_argument("--planner", type=Path, help="the planner folder (Emoji World; Shapes World: the shipped one)")
    ap.add_argument("--minutes", type=float, nargs="+", default=[15, 30, 60])
    ap.add_argument("--prompts", type=int, default=0, help="use only the first N benchmark prompts (0: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    world = get_world(args.world)
    prompts = world.benchmark_prompts()
    if args.prompts:
        prompts = prompts[: args.prompts]
    referee = world.judge
    rows: list[tuple[str, object]] = []
    if args.world == "shapes":
        shipped = PlannedPipeline.from_pretrained(SHAPES_MODEL)
        planner, gen = shipped.planner, shipped.generation_config
        rows.append(("code painter (shipped, 16x16 FSQ)", code_paint(shipped)))
        params = {rows[0][0]: sum(p.numel() for p in shipped.painter.parameters())}
    else:
        if args.planner is None:
            ap.error("--world emoji needs --planner")
        planner = LayoutPlanner.from_pretrained(args.planner)
        gen = GenerationConfig.from_kwargs(GenerationConfig(), **EMOJI_SAMPLING)
        params = {}
    for spec in args.gan_run:
        label, sep, run = spec.partition("=")
        if not sep:
            ap.error(f"--gan-run takes LABEL=RUN, got {spec!r}")
        snaps = snapshots(Path(run))
        for budget in args.minutes:
            within = [s for s in snaps if s[1] <= budget + 1e-9]
            if not within:
                continue
            step, minutes = within[-1]
            g = gan_at(Path(run), step)
            name = f"{label}, {budget:g} CPU min (step {step}, {minutes:.1f} min)"
            rows.append((name, gan_paint(g)))
            params[name] = sum(p.numel() for p in g.parameters())
            if within[-1] == snaps[-1]:
                break  # the run ended within this budget: larger budgets would repeat it
    layout = planner.plan_tokens(planner.tokenize([prompts[0]["en"]]), [0], 1.0, 0.0, 0, 1.0, 1)[0]
    speed_layouts = [planner.plan_tokens(planner.tokenize([r["en"]]), [i], **_plan_kw(gen))[0]
                     for i, r in enumerate(prompts[:64])]  # fmt: skip
    speed_layouts = [speed_layouts[i % len(speed_layouts)] for i in range(64)]
    lines = [f"World: {args.world}; {len(prompts)} benchmark prompts per language, prompt i with seed i, one image each; "
             f"the world's referee judges the pixels. Diversity: 16 seeds of the layout of '{prompts[0]['en']}'.", "",
             "| painter | whole prompt EN | ZH | 3-4 objects EN | ZH | painter only (true layouts) | soft IoU >= 0.9, worst kind | "
             "small star soft IoU | FID | KID x1000 | distinct / 16 | mean pairwise RMS | img/s batch 1 | batch 64 | "
             "parameters |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    cats: dict[str, dict] = {}
    for name, paint in rows:
        pipe = PlanAndPaint(planner, paint, gen)
        acc = accuracy(pipe, prompts, referee)
        cats[name] = {lang: r.categories for lang, r in acc.items()}
        po = painter_only(paint, args.world, prompts, referee)
        multi = "- | -"
        if args.world == "shapes":
            from lvg.worlds.shapes.prompt_sets import multi_object_prompts

            m = accuracy(pipe, multi_object_prompts(), referee)
            multi = f"{m['en'].overall:.1%} | {m['zh'].overall:.1%}"
        iou = painted_object_iou(paint, num=1200) if args.world == "shapes" else None
        worst = (
            "-"
            if iou is None
            else f"{iou['min_share_good']:.1%} ({min(iou['per_kind'], key=lambda k: iou['per_kind'][k]['share_good'])})"
        )
        star = "-" if iou is None else f"{iou['per_kind']['small star']['mean_iou']:.3f}"
        fid, kid = shapes_fid(paint, shipped.clip) if args.world == "shapes" else (None, None)
        fid_s = "-" if fid is None else f"{fid:.4f} | {kid:.3f}"
        dist, rms = diversity(paint, layout)
        b1, b64 = speed(paint, speed_layouts)
        lines.append(f"| {name} | {acc['en'].overall:.1%} | {acc['zh'].overall:.1%} | {multi} | "
                     f"{'-' if po is None else f'{po:.1%}'} | {worst} | {star} | {fid_s if fid is not None else '- | -'} | {dist * 16:.0f} | {rms:.4f} | {b1:.1f} | {b64:.1f} | "
                     f"{params[name] / 1e6:.2f}M |")  # fmt: skip
        print(lines[-1], flush=True)
    if args.world == "shapes":
        rf, rk = real_vs_real(shipped.clip)
        lines.append(f"\nReal vs real (1,000 renders against 1,000 others, same features): FID {rf:.4f}, KID x1000 "
                     f"{rk:.3f}.")  # fmt: skip
    names = list(cats)
    cat_names = list(next(iter(cats.values()))["en"])
    lines += ["", "Per category, whole prompt right (EN / ZH):", "",
              "| category | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for c in cat_names:
        lines.append(f"| {c} | " + " | ".join(f"{cats[n]['en'][c]:.0%} / {cats[n]['zh'][c]:.0%}" for n in names) + " |")
    body = "\n".join(lines)
    print(body)
    write_section(f"painters-{args.world}", body)


def _plan_kw(gen: GenerationConfig) -> dict:
    return {"guidance_scale": gen.guidance_scale, "temperature": gen.temperature, "top_k": gen.top_k,
            "top_p": gen.top_p, "batch_size": 1}  # fmt: skip


if __name__ == "__main__":
    main()
