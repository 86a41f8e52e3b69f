"""Image tokenizer benchmark: reconstruction quality on held-out data and CPU speed.

    python benchmarks/image_tokenizer.py [--model DIR] [--num 1000] [--name NAME] [--threads 1]

Quality (``lvg.eval.recon.evaluate_tokenizer``): PSNR / SSIM and codebook usage on ``--num``
held-out Shapes World images, and the pixel judge's acceptance after a round trip through the
tokenizer on the benchmark prompts. Speed: encode and decode images/s on the CPU at batch 1 and
256 (warm-up, then the median of several timed repeats under ``torch.inference_mode()``), with one
torch thread by default: on small shared machines torch's default thread count can be 10-100x
slower at batch 1 (``--threads 0`` keeps torch's default).

Writes the "image-tokenizer:<model>" section of BENCHMARKS.md (machine and date included) and
prints it. ``<model>`` is the model folder's name, or its parent's when the folder is the
standard ``image_tokenizer`` sub-folder of a model (``models/shapes-default/image_tokenizer``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _report import write_section

from lvg.eval.object_iou import GOOD_IOU, PixelNoise, object_iou
from lvg.eval.recon import HELD_OUT_SEED, PSNR_CAP, evaluate_tokenizer, held_out_images
from lvg.tokenizers.image import CONFIG_NAME, WEIGHTS_NAME, ImageTokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "shapes-default" / "image_tokenizer"
BIG_BATCH = 256


def images_per_s(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, calls: int, repeats: int) -> float:
    """Median images/s of ``fn(x)`` over ``repeats`` timings of ``calls`` calls each (after ``calls`` warm-up calls)."""
    with torch.inference_mode():
        for _ in range(calls):
            fn(x)
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(calls):
                fn(x)
            runs.append(calls * x.shape[0] / (time.perf_counter() - t))
    return statistics.median(runs)


def model_label(model: Path) -> str:
    """The folder's name, or its parent's for a model's standard ``image_tokenizer`` sub-folder."""
    folder = model.resolve()
    return folder.parent.name if folder.name == "image_tokenizer" else folder.name


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def measure_speed(tok: ImageTokenizer, repeats: int) -> dict:
    """Encode/decode images/s at batch 1 and BIG_BATCH."""
    x = held_out_images(BIG_BATCH)  # [256, 3, 64, 64] uint8
    codes = tok.encode(x)  # [256, h, w]
    return {
        (what, b): images_per_s(fn, inp[:b], calls=20 if b == 1 else 1, repeats=repeats)
        for what, fn, inp in (("encode", tok.encode, x), ("decode", tok.decode, codes))
        for b in (1, BIG_BATCH)
    }


def speed_table(speed: dict, repeats: int) -> str:
    return f"""CPU speed, images/s, median of {repeats} repeats after warm-up, `torch.inference_mode()`,
{torch.get_num_threads()} torch thread(s); batch 1 timed over 20 calls per repeat, warm-up calls excluded:

| stage | batch 1 | batch {BIG_BATCH} |
|---|---|---|
| encode (uint8 images -> codes) | {speed["encode", 1]:,.1f} | {speed["encode", BIG_BATCH]:,.1f} |
| decode (codes -> float images) | {speed["decode", 1]:,.1f} | {speed["decode", BIG_BATCH]:,.1f} |
"""


def iou_table(r: dict, ref: dict) -> str:
    """Markdown table of :func:`lvg.eval.object_iou.object_iou` per shape and size, beside ``ref``: the same scenes
    after one grey level of noise (:class:`~lvg.eval.object_iou.PixelNoise`)."""
    rows = "\n".join(
        f"| {k} | {v['n']} | {v['mean_iou']:.3f} | {v['share_good']:.1%} | {ref['per_kind'][k]['share_good']:.1%} |"
        for k, v in r["per_kind"].items()
    )
    return f"""Crisp small shapes: per-object mask IoU between each render and its round trip ({r["objects"]:,} objects of
{r["scenes"]:,} held-out scenes; mask = pixels, inside the object's box grown by 1 px, more than half the object's
colour against the background; target: IoU >= {GOOD_IOU} for >= 99% of the objects of every kind). Lowest share
over kinds: **{r["min_share_good"]:.1%}**. The last column is the same measure when the "round trip" only adds
Gaussian noise of one grey level (sigma 1/255, about 50 dB, invisible): pixels whose alpha in the render is 0.5 (the
diagonal edges of diamonds) flip either way, so no reconstruction short of exact is sure to reach the target there
(lowest share over kinds: {ref["min_share_good"]:.1%}).

| kind | objects | mean IoU | IoU >= {GOOD_IOU} | IoU >= {GOOD_IOU}, render + 1 grey level of noise |
|---|---|---|---|---|
{rows}
"""


def soft_iou_table(r: dict, ref: dict) -> str:
    """Markdown table of the soft IoU of coverage per shape and size, beside the one-grey-level noise reference."""
    rows = "\n".join(
        f"| {k} | {v['n']} | {v['mean_iou']:.3f} | {v['share_good']:.1%} | {ref['per_kind'][k]['mean_iou']:.3f} | "
        f"{ref['per_kind'][k]['share_good']:.1%} |"
        for k, v in r["per_kind"].items()
    )
    return f"""Soft IoU of coverage (the crispness measure of the painter issue, fair to diamond edges): per object, each
pixel's fraction of the object's colour against the background, clipped to [0, 1], inside its box grown by 1 px;
``sum(min) / sum(max)`` between render and round trip. Lowest share >= {GOOD_IOU} over kinds:
**{r["min_share_good"]:.1%}** (target: >= 99% for every kind); the render + one grey level of noise:
{ref["min_share_good"]:.1%}.

| kind | objects | mean soft IoU | soft IoU >= {GOOD_IOU} | noise reference mean | noise reference >= {GOOD_IOU} |
|---|---|---|---|---|---|
{rows}
"""


def speed_only(args: argparse.Namespace) -> None:
    """Speed of the architecture in a config, with untrained weights (no quality numbers)."""
    from lvg.train.config import load_config
    from lvg.train.tokenizer import TokenizerTrainingConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(TokenizerTrainingConfig, args.speed_only).model
    tok = ImageTokenizer(cfg).eval()
    params = sum(p.numel() for p in tok.parameters())
    body = f"""## Image tokenizer speed, architecture of `{args.speed_only}` (`python benchmarks/image_tokenizer.py --speed-only {args.speed_only}`)

Untrained weights (speed does not depend on them; no quality is claimed here): {cfg.quantizer.upper()},
{cfg.grid}x{cfg.grid} = {cfg.grid**2} tokens per image, channels {cfg.channels}, {params:,} parameters.

{speed_table(measure_speed(tok, args.repeats), args.repeats)}"""
    write_section(args.name or f"image-tokenizer-speed:{Path(args.speed_only).stem}", body)
    print(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="image tokenizer folder (save_pretrained)")
    ap.add_argument("--num", type=int, default=1000, help="held-out images for PSNR / SSIM / codebook usage")
    ap.add_argument("--name", help="BENCHMARKS.md section name (default: image-tokenizer:<model>)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0: torch's own choice)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per speed measurement")
    ap.add_argument("--speed-only", type=Path, metavar="CONFIG",
                    help="only time encode/decode of an UNTRAINED tokenizer built from CONFIG's model section "
                    "(e.g. configs/tokenizer-shapes.yaml): speed does not depend on the weights")  # fmt: skip
    args = ap.parse_args()
    if args.speed_only:
        speed_only(args)
        return
    if args.num < 1:
        sys.exit(f"error: --num must be at least 1, got {args.num}")
    missing = [f for f in (args.model / CONFIG_NAME, args.model / WEIGHTS_NAME) if not f.is_file()]
    if missing:
        sys.exit(
            f"error: no image tokenizer at {args.model} ({missing[0].name} missing); train one or pass --model DIR"
        )
    try:
        tok = ImageTokenizer.from_pretrained(args.model, device="cpu")
    except ValueError as e:
        sys.exit(f"error: cannot load {args.model}: {e}")
    if args.threads < 0:
        sys.exit(f"error: --threads must be 0 (torch's default) or more, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.name or f"image-tokenizer:{model_label(args.model)}"

    t0 = time.perf_counter()
    q = evaluate_tokenizer(tok, num=args.num)
    eval_s = time.perf_counter() - t0
    rt = q["round_trip"]
    ious = object_iou(tok, num=args.num)
    noise_ref = object_iou(PixelNoise(1.0), num=args.num)
    soft, soft_ref = object_iou(tok, num=args.num, soft=True), object_iou(PixelNoise(1.0), num=args.num, soft=True)

    speed = measure_speed(tok, args.repeats)
    params = sum(p.numel() for p in tok.parameters())
    cfg = tok.config
    grid = cfg.grid
    failures = ", ".join(f"`{f['id']}` ({f['en']})" for f in rt["failures"][:5]) or "none"

    body = f"""## Image tokenizer `{name.removeprefix("image-tokenizer:")}` (`python benchmarks/image_tokenizer.py`)

Model `{display_path(args.model)}`: {cfg.quantizer.upper()} ({"levels " + str(cfg.fsq_levels) if cfg.quantizer == "fsq" else f"dim {cfg.vq_dim}"}),
codebook {q["codebook_size"]:,}, {grid}x{grid} = **{grid * grid} tokens per image**, channels {cfg.channels},
{params:,} parameters ({params * 4 / 2**20:.1f} MiB float32).

Quality on {q["num_images"]:,} held-out Shapes World images (stream seed {HELD_OUT_SEED:,}; training uses small seeds):

| metric | value |
|---|---|
| PSNR (mean of per-image PSNR, identical images capped at {PSNR_CAP:g} dB) | **{q["psnr"]:.2f} dB** |
| SSIM (mean) | **{q["ssim"]:.4f}** |
| codebook used | {q["codes_used"]:,} / {q["codebook_size"]:,} ({q["fraction_used"]:.1%}) |
| code perplexity (exp entropy of the code histogram) | {q["perplexity"]:,.1f} |
| pixel judge after a round trip (benchmark prompts) | **{rt["rate"]:.2%}** ({rt["accepted_after"]} of the {rt["accepted_before"]} renders it accepted before the round trip; {rt["scenes"]} prompts) |

Round-trip failures (first 5 of {rt["accepted_before"] - rt["accepted_after"]}): {failures}.

{iou_table(ious, noise_ref)}

{soft_iou_table(soft, soft_ref)}

{speed_table(speed, args.repeats)}
(quality evaluation took {eval_s:.0f} s)
"""
    write_section(name, body)
    print(body)


if __name__ == "__main__":
    main()
