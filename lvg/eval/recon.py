"""Reconstruction metrics for image tokenizers: PSNR/SSIM, codebook usage and a judge round trip.

Everything here runs on held-out data: images come from a Shapes World stream seed that training
never uses (:data:`lvg.worlds.shapes.heldout.HELD_OUT_SEED`), and the round trip renders fresh scenes for the benchmark's
prompts. A tokenizer is any object with ``config.grid``, ``codebook_size``, ``encode(images)``
(uint8 or float [0, 1] [B, 3, 64, 64] -> codes [B, h, w]) and ``decode(codes)`` (-> float [0, 1]).
"""

from __future__ import annotations

import math
import os
import random
from typing import Any

import torch
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from lvg.images import images_to_tensor, tensor_to_arrays, to_uint8
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import load_prompts
from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_images
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.spec import scene_from_spec

__all__ = ["HELD_OUT_SEED", "PSNR_CAP", "ReconInputError", "codebook_usage", "evaluate_tokenizer", "held_out_images",
           "judge_round_trip", "psnr_ssim", "reconstruct", "to_uint8"]  # fmt: skip

PSNR_CAP = 100.0  # dB given to identical images, so a mean over images stays finite
MAX_FAILURES = 20


class ReconInputError(ValueError):
    """Images or codes handed to a reconstruction metric have the wrong shape, dtype or range."""


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ReconInputError(f"{name} must be a uint8 tensor [N, 3, H, W], got {getattr(images, 'dtype', images)}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
        raise ReconInputError(f"{name} must be a non-empty uint8 tensor [N, 3, H, W], got {tuple(images.shape)}")


def reconstruct(tokenizer: Any, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode then decode ``images`` uint8 [N, 3, H, W] -> (recon uint8 [N, 3, H, W], codes long [N, h, w]).

    No gradients, batches of ``batch_size``, results on the CPU. An ``nn.Module`` tokenizer runs in
    eval mode and gets its previous mode back afterwards.
    """
    _check_images(images)
    if batch_size < 1:
        raise ReconInputError(f"batch_size must be at least 1, got {batch_size}")
    module = tokenizer if isinstance(tokenizer, nn.Module) else None
    was_training = module.training if module is not None else False
    recons, codes = [], []
    try:
        if module is not None:
            module.eval()
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                c = tokenizer.encode(images[start : start + batch_size])  # [b, h, w]
                recons.append(to_uint8(tokenizer.decode(c)).cpu())  # [b, 3, H, W]
                codes.append(c.long().cpu())
    finally:
        if module is not None:
            module.train(was_training)
    recon = torch.cat(recons)
    if recon.shape != images.shape:
        raise ReconInputError(f"tokenizer returned reconstructions {tuple(recon.shape)} for {tuple(images.shape)}")
    return recon, torch.cat(codes)


def psnr_ssim(recon: torch.Tensor, images: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    """(mean per-image PSNR in dB, capped at :data:`PSNR_CAP`; mean SSIM) of uint8 [N, 3, H, W] pairs."""
    _check_images(recon, "recon")
    _check_images(images)
    if recon.shape != images.shape:
        raise ReconInputError(f"recon {tuple(recon.shape)} and images {tuple(images.shape)} differ in shape")
    psnrs, ssims = [], []
    for start in range(0, images.shape[0], batch_size):
        p = recon[start : start + batch_size].float() / 255  # [b, 3, H, W] in [0, 1]
        t = images[start : start + batch_size].float() / 255
        psnr = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))  # [b]
        psnrs.append(torch.nan_to_num(psnr, posinf=PSNR_CAP).clamp(max=PSNR_CAP))
        ssims.append(structural_similarity_index_measure(p, t, data_range=1.0, reduction="none"))  # [b]
    return float(torch.cat(psnrs).mean()), float(torch.cat(ssims).mean())


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Usage of a codebook by ``codes`` (any shape): ``used`` distinct codes, ``fraction_used`` of
    ``codebook_size``, and ``perplexity`` = exp(entropy of the code histogram), from 1 to ``codebook_size``."""
    if codebook_size < 1:
        raise ReconInputError(f"codebook_size must be at least 1, got {codebook_size}")
    if codes.dtype.is_floating_point or codes.numel() == 0:
        raise ReconInputError(f"codes must be a non-empty integer tensor, got {codes.dtype} with {codes.numel()} items")
    flat = codes.reshape(-1).long().cpu()
    if int(flat.min()) < 0 or int(flat.max()) >= codebook_size:
        raise ReconInputError(f"codes must lie in [0, {codebook_size}), got {int(flat.min())}..{int(flat.max())}")
    hist = torch.bincount(flat, minlength=codebook_size).double()  # [K]
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * p.log()).sum())
    used = int((hist > 0).sum())
    return {"used": used, "fraction_used": used / codebook_size, "perplexity": math.exp(entropy)}


def judge_round_trip(tokenizer: Any, prompts: list[dict], seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Does the pixel judge still accept a scene after it goes through the tokenizer?

    For prompt row ``i`` a scene satisfying ``row["spec"]`` is drawn with
    ``random.Random(f"lvg-roundtrip:{seed}:{i}")`` and rendered. Returns ``scenes``,
    ``accepted_before`` (renders the judge accepts), ``accepted_after`` (of those, how many it still
    accepts after encode/decode), ``rate`` = after / before (NaN if none was accepted before) and
    up to 20 ``failures`` ({"id", "en"}) accepted before but rejected after.
    """
    if not prompts:
        raise ReconInputError("judge_round_trip needs at least one prompt row")
    specs = [row["spec"] for row in prompts]
    renders = [
        render(scene_from_spec(spec, random.Random(f"lvg-roundtrip:{seed}:{i}"))) for i, spec in enumerate(specs)
    ]
    before = [judge(img, spec).passed for img, spec in zip(renders, specs)]
    images = images_to_tensor(renders)  # [N, 3, 64, 64]
    recon, _ = reconstruct(tokenizer, images, batch_size)
    after, failures = 0, []
    recon_arrays = tensor_to_arrays(recon)
    for i, ok in enumerate(before):
        if not ok:
            continue
        if judge(recon_arrays[i], specs[i]).passed:
            after += 1
        elif len(failures) < MAX_FAILURES:
            failures.append({"id": prompts[i].get("id", str(i)), "en": prompts[i].get("en", "")})
    a = sum(before)
    return {
        "scenes": len(prompts),
        "accepted_before": a,
        "accepted_after": after,
        "rate": after / a if a else float("nan"),
        "failures": failures,
    }


def evaluate_tokenizer(
    tokenizer: Any,
    num: int = 1000,
    prompts_path: str | os.PathLike | None = None,
    prompts: list[dict] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """PSNR, SSIM and codebook usage on ``num`` held-out images, plus the judge round trip on the
    benchmark prompts (``prompts`` rows if given, else those read from ``prompts_path``, default the shipped
    benchmark prompts)."""
    rows = prompts if prompts is not None else load_prompts(prompts_path or benchmark_prompts_file())
    metrics = reconstruction_metrics(tokenizer, held_out_images(num), batch_size)  # [N, 3, 64, 64] renders
    return {**metrics, "round_trip": judge_round_trip(tokenizer, rows, batch_size=batch_size)}


def reconstruction_metrics(tokenizer: Any, images: torch.Tensor, batch_size: int = 256) -> dict[str, Any]:
    """PSNR, SSIM and codebook usage of a round trip of uint8 ``images`` [N, 3, H, W] (any world, any folder)."""
    recon, codes = reconstruct(tokenizer, images, batch_size)
    psnr, ssim = psnr_ssim(recon, images, batch_size)
    usage = codebook_usage(codes, tokenizer.codebook_size)
    return {
        "num_images": int(images.shape[0]),
        "psnr": psnr,
        "ssim": ssim,
        "codebook_size": tokenizer.codebook_size,
        "tokens_per_image": int(codes[0].numel()),
        "codes_used": usage["used"],
        "fraction_used": usage["fraction_used"],
        "perplexity": usage["perplexity"],
    }
