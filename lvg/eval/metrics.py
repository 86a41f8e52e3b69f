"""Distribution and consistency metrics for generated Shapes World images.

Everything here is a pure function of its inputs (fixed seeds wherever randomness is involved):

* :func:`frechet_distance` and :func:`kernel_inception_distance`: FID and KID (torchmetrics) on any features;
* :class:`PixelFeatures`: lvg's own deterministic stand-in feature extractor (NOT Inception), used when
  no learned image tower (e.g. a CLIP image encoder) is available; any ``feature_fn`` can replace it;
* :func:`diversity` and :func:`distinct_fraction`: how different the samples of one prompt are;
* :func:`cycle_consistency`: text -> image -> caption -> spec round trip through a pipeline;
* :func:`sanity_checks`: the feature/FID combination separates real from pixel-shuffled images.

Images are uint8 tensors [N, 3, H, W] (64x64 in Shapes World) unless stated otherwise.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lvg.eval.progress import in_chunks
from lvg.eval.results import CycleResult
from lvg.eval.shapes import captions_of
from lvg.images import images_to_tensor  # noqa: F401  (re-exported: its old home)
from lvg.pipelines.protocols import UnifiedPipeline
from lvg.sampling.config import GenerationConfig
from lvg.worlds.shapes.parse import CaptionParseError, parse_caption
from lvg.worlds.shapes.reading import caption_objects
from lvg.worlds.shapes.spec import SpecError, explain

FeatureFn = Callable[[torch.Tensor], Any]  # uint8 [N, 3, H, W] -> feats [N, D] (tensor or array)


def _as_feats(feats: Any, name: str) -> np.ndarray:
    arr = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D array [N, D] with N >= 2, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


class _Precomputed(nn.Module):
    """torchmetrics' "feature extractor" over features lvg already extracted: the identity on [N, D]."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D] (the FID formula).

    Computed by torchmetrics' ``FrechetInceptionDistance`` (float64) on features from lvg's own extractor:
    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, clamped at 0 (rounding can make it slightly
    negative for identical sets).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    a, b = _as_feats(feats_a, "feats_a"), _as_feats(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    fid = FrechetInceptionDistance(feature=_Precomputed(a.shape[1])).double()
    fid.update(torch.from_numpy(a), real=True)
    fid.update(torch.from_numpy(b), real=False)
    return max(float(fid.compute()), 0.0)


def kernel_inception_distance(feats_a: Any, feats_b: Any, subsets: int = 10, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """KID: unbiased MMD^2 with the kernel ``k(x, y) = (x.y / D + 1)^3``, over random subsets.

    torchmetrics' ``KernelInceptionDistance`` on features from lvg's own extractor: ``subsets`` pairs of subsets
    of ``min(subset_size, N, M)`` rows each, drawn without replacement with torch's RNG seeded with ``seed`` (the
    global RNG is left as it was); returns (mean, std) of the per-subset estimates. The estimate is unbiased, so
    it can be slightly negative when the two sets come from the same distribution.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = _as_feats(feats_a, "feats_a"), _as_feats(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    with warnings.catch_warnings():  # "will save all extracted features": they are already in memory here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_Precomputed(a.shape[1]), subsets=subsets, subset_size=m)
    kid.update(torch.from_numpy(a), real=True)
    kid.update(torch.from_numpy(b), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


class PixelFeatures:
    """lvg's own deterministic stand-in image features: NOT Inception, and not comparable with published FIDs.

    For uint8 images [N, 3, H, W] it returns float32 features [N, proj_dim + 3 * bins + 2 * grid^2]:

    * layout: the image in [0, 1] average-pooled to ``pool`` x ``pool``, minus its per-channel mean (so the
      background colour does not swamp it), through a fixed Gaussian random projection to ``proj_dim``
      (``torch.Generator`` seeded with ``seed``, entries N(0, 1/K), K = 3 * pool^2);
    * palette: per-channel colour histograms with ``bins`` bins, as fractions of the pixels;
    * structure: the fraction of horizontally / vertically adjacent pixel pairs whose colours differ by more
      than 0.1 (max over channels) in each cell of a ``grid`` x ``grid`` partition of the image.

    Metrics computed with it are only meaningful relative to each other (same extractor, same image size).
    Any callable ``uint8 [N, 3, H, W] -> [N, D]`` (e.g. a CLIP image tower) can be used instead.
    """

    def __init__(self, pool: int = 8, proj_dim: int = 16, bins: int = 4, grid: int = 4, seed: int = 0) -> None:
        self.pool, self.proj_dim, self.bins, self.grid, self.seed = pool, proj_dim, bins, grid, seed
        g = torch.Generator().manual_seed(seed)
        k = 3 * pool * pool
        self.proj = torch.randn(k, proj_dim, generator=g, dtype=torch.float64) / k**0.5  # [K, P]

    @property
    def dim(self) -> int:
        return self.proj_dim + 3 * self.bins + 2 * self.grid**2

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("PixelFeatures expects a uint8 tensor [N, 3, H, W]")
        x = images.double() / 255  # [N, 3, H, W]
        pooled = F.adaptive_avg_pool2d(x, self.pool)  # [N, 3, pool, pool]
        pooled = pooled - pooled.mean((2, 3), keepdim=True)
        proj = pooled.flatten(1) @ self.proj  # [N, P]
        idx = (images.long() * self.bins // 256).flatten(2)  # [N, 3, H*W] bin per pixel
        hist = F.one_hot(idx, self.bins).double().mean(2).flatten(1)  # [N, 3 * bins]
        eh = ((x[..., 1:] - x[..., :-1]).abs().amax(1, keepdim=True) > 0.1).double()  # [N, 1, H, W-1]
        ev = ((x[..., 1:, :] - x[..., :-1, :]).abs().amax(1, keepdim=True) > 0.1).double()  # [N, 1, H-1, W]
        edges = [F.adaptive_avg_pool2d(e, self.grid).flatten(1) for e in (eh, ev)]  # 2 x [N, grid^2]
        return torch.cat([proj, hist, *edges], 1).float()  # [N, D]


def _groups(group_ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(group_ids):
        groups[g].append(i)
    return groups


def diversity(feats: Any, group_ids: Sequence[Hashable]) -> float:
    """Mean pairwise L2 distance between features [N, D] of images of the same prompt (``group_ids`` [N]),
    averaged over prompts with at least 2 images; NaN when there is no such prompt."""
    x = torch.as_tensor(np.asarray(feats.detach().cpu() if isinstance(feats, torch.Tensor) else feats),
                        dtype=torch.float64)  # fmt: skip
    if x.ndim != 2 or x.shape[0] != len(group_ids):
        raise ValueError(f"feats must be [N, D] with N = len(group_ids) = {len(group_ids)}, got {tuple(x.shape)}")
    per_group = []
    for idx in _groups(group_ids).values():
        if len(idx) < 2:
            continue
        d = torch.cdist(x[idx], x[idx])  # [k, k]
        k = len(idx)
        per_group.append(float(d.sum()) / (k * (k - 1)))  # the diagonal is 0
    return float(np.mean(per_group)) if per_group else float("nan")


def distinct_fraction(codes: torch.Tensor | Sequence[Sequence[int]], group_ids: Sequence[Hashable]) -> float:
    """Fraction of distinct token sequences within each prompt group, averaged over groups of >= 2 items.

    ``codes`` is a tensor [N, h, w] (or [N, L]) or a list of N sequences. A group of k identical sequences
    scores 1/k, k different ones score 1. NaN when no group has 2 or more items.
    """
    if isinstance(codes, torch.Tensor):
        seqs = [tuple(c.reshape(-1).tolist()) for c in codes]
    else:
        seqs = [tuple(int(t) for t in np.asarray(c).reshape(-1)) for c in codes]
    if len(seqs) != len(group_ids):
        raise ValueError(f"{len(seqs)} sequences for {len(group_ids)} group ids")
    fr = [len({seqs[i] for i in idx}) / len(idx) for idx in _groups(group_ids).values() if len(idx) >= 2]
    return float(np.mean(fr)) if fr else float("nan")


def cycle_consistency(pipe: UnifiedPipeline, prompts: list[dict], lang: str = "en",
                      config: GenerationConfig | None = None, *, batch_size: int = 64, progress: bool = False,
                      **settings: Any) -> CycleResult:  # fmt: skip
    """Text -> image -> caption -> spec round trip through ``pipe``.

    Prompt ``i`` is generated (one image, with ``config`` and ``settings`` as in
    :func:`lvg.eval.shapes.evaluate_generation`: seed ``seed + i``, seed 0 unless given), the image is captioned in ``lang`` and the
    caption parsed. The prompt is *consistent* when the caption parses, is complete (see
    :func:`caption_objects`: every object with shape, colour, size and cell, plus the background), and the
    scene it describes satisfies the prompt's spec (:func:`lvg.worlds.shapes.spec.satisfies`: exactly the stated
    objects, every stated attribute and relation). Returns ``rate`` (consistent fraction), ``parse_rate``,
    ``complete_rate`` and per-prompt ``rows`` ({id, category, prompt, caption, consistent, reason}).
    """
    if not prompts:
        raise ValueError("cycle_consistency needs at least one prompt row")
    cfg = GenerationConfig.from_kwargs(config if config is not None else GenerationConfig(seed=0), **settings)
    cfg = cfg.replace(num_images=1)

    def run(start: int, stop: int) -> list[str]:
        seed = None if cfg.seed is None else cfg.seed + start  # prompt i keeps seed + i whatever the chunking
        out = pipe(
            [r[lang] for r in prompts[start:stop]],
            config=cfg.replace(seed=seed, allow_unsupported=True),
            batch_size=batch_size,
        )  # (the closed loop measures reading; refusals are measured apart)
        return captions_of(pipe, list(out.images), lang, batch_size=batch_size)

    captions = in_chunks(run, len(prompts), batch_size, f"closed loop ({lang})", progress, "prompt")
    rows, parsed, complete = [], 0, 0
    for row, cap in zip(prompts, captions, strict=True):
        reason: str | None
        try:
            spec = parse_caption(cap, lang)
            parsed += 1
            seen = caption_objects(spec)
            if seen is None:
                reason = "caption is not a complete description"
            else:
                complete += 1
                reason = explain(seen[0], seen[1], row["spec"])
        except (CaptionParseError, SpecError) as e:
            reason = f"caption does not parse: {e}"
        rows.append({"id": row.get("id"), "category": row.get("category"), "prompt": row[lang], "caption": cap,
                     "consistent": reason is None, "reason": reason or ""})  # fmt: skip
    n = len(rows)
    return CycleResult(lang, sum(r["consistent"] for r in rows) / n, parsed / n, complete / n, n, rows)


def pixel_shuffle(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Shuffle pixel positions within each image [N, C, H, W] (one permutation per image, shared by channels)."""
    n, c, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(h * w, generator=g) for _ in range(n)])  # [N, H*W]
    flat = images.reshape(n, c, h * w)
    return torch.gather(flat, 2, perm[:, None, :].expand(n, c, h * w)).reshape(n, c, h, w)


def sanity_checks(real_images: torch.Tensor, feature_fn: FeatureFn | None = None, seed: int = 0) -> dict[str, Any]:
    """Check that FID with ``feature_fn`` (default :class:`PixelFeatures`) tells real images from broken ones.

    ``real_images`` uint8 [N, 3, H, W] is split into two halves A and B by a fixed random permutation.
    Returns ``fid_real_real`` (A vs B: should be small), ``fid_real_shuffled`` (A vs B with pixel positions
    shuffled: should be large), their ``ratio`` and ``passed`` = real-real < real-shuffled.
    """
    if real_images.shape[0] < 4:
        raise ValueError("sanity_checks needs at least 4 images")
    fn = feature_fn or PixelFeatures()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(real_images.shape[0], generator=g)
    half = real_images.shape[0] // 2
    a, b = real_images[perm[:half]], real_images[perm[half : 2 * half]]  # [n, 3, H, W] each
    fa, fb, fs = fn(a), fn(b), fn(pixel_shuffle(b, seed))  # [n, D] each
    rr, rs = frechet_distance(fa, fb), frechet_distance(fa, fs)
    return {"num_images": 2 * half, "fid_real_real": rr, "fid_real_shuffled": rs,
            "ratio": rs / rr if rr > 0 else float("inf"), "passed": rr < rs}  # fmt: skip
