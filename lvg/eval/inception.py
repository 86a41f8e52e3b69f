"""Inception-v3 with the user's own weights, for standard FID and Inception Score (IS) through torchmetrics.

Nothing is downloaded: lvg ships the Inception-v3 *architecture* only (written from Szegedy et al. 2016,
"Rethinking the Inception Architecture for Computer Vision", with torchvision's parameter names), and loads
weights the user converts once, on their own machine, to a safetensors file (lvg never unpickles):

.. code-block:: python

    # pytorch-fid's FID Inception (the TF FID graph ported; 1008 classes) -> --inception-variant fid
    from pytorch_fid.inception import fid_inception_v3
    from safetensors.torch import save_file
    save_file(fid_inception_v3().state_dict(), "pt_inception.safetensors")

    # torchvision's ImageNet Inception-v3 (1000 classes) -> --inception-variant torchvision
    from torchvision.models import inception_v3
    save_file(inception_v3(weights="IMAGENET1K_V1").state_dict(), "inception_v3_imagenet.safetensors")

Loading is strict (:func:`load_inception`): every tensor of the network must be in the file with its exact
shape, and nothing else may be; the error names the missing, unexpected and mis-shaped keys. Two kinds of
keys are tolerated because the exports above carry or lack them: BatchNorm ``num_batches_tracked`` counters
(unused in eval mode; may be absent) and torchvision's training-only auxiliary classifier ``AuxLogits.*``
(ignored). The number of classes comes from the file's ``fc.weight`` shape (1008: the TF FID graph, 1000:
torchvision).

Two variants, which a file cannot tell apart (same keys and shapes), so the caller says which
(``variant="fid"`` by default):

* ``fid``: pytorch-fid's port of the TF graph that defines FID: the pool branches of Mixed_5b-5d, 6b-6e and
  7b average with ``count_include_pad=False``, and the pool branch of Mixed_7c max-pools;
* ``torchvision``: the plain architecture (``count_include_pad=True`` average pools everywhere).

Input: float images [N, 3, H, W] in [0, 1] or uint8 [N, 3, H, W] in [0, 255], resized bilinearly
(``align_corners=False``, like pytorch-fid) to 299x299 and mapped to [-1, 1] by ``2 x - 1``. Both variants
expect exactly that: pytorch-fid normalises so, and torchvision's ``transform_input`` maps ImageNet-normalised
input ``(x - mean_c) / std_c`` back to ``(x - 0.5) / 0.5 = 2 x - 1`` per channel, so feeding ``2 x - 1`` to the
trunk (which this module does, with no ``transform_input`` step) is the same computation.

Features are the 2048-d global average pool after Mixed_7c (pytorch-fid's ``pool3``); IS uses the logits
*without* the fc bias, as the original IS code and torchmetrics' default ``logits_unbiased`` feature do.
Numbers are close to, but not bit-identical with, TF-computed FIDs (TF resizes differently).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_SIZE = 299
NUM_FEATURES = 2048
VARIANTS = ("fid", "torchvision")
IGNORED_PREFIXES = ("AuxLogits.",)  # torchvision's training-only auxiliary classifier
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}

PoolKind = Literal["avg", "avg_exclude_pad", "max"]


class InceptionWeightsError(ValueError):
    """The Inception-v3 weights file is missing, not safetensors, or does not match the architecture."""


@dataclass(frozen=True)
class InceptionConfig:
    """``num_classes``: fc outputs (1008 for the TF FID graph, 1000 for torchvision); ``fid_variant``: the
    pytorch-fid pool branches (see the module docstring)."""

    num_classes: int = 1008
    fid_variant: bool = True


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool3x3(x: Tensor, kind: PoolKind) -> Tensor:
    """The stride-1, padding-1 3x3 pool of a pool branch."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=kind == "avg")


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1 -> 224 + ``pool_features`` channels."""

    def __init__(self, in_ch: int, pool_features: int, pool: PoolKind = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_ch, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_ch, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_ch, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_pool3x3(x, self.pool))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 480 + ``in_ch`` channels."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (``c7`` inner channels) -> 768 channels."""

    def __init__(self, in_ch: int, c7: int, pool: PoolKind = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(_pool3x3(x, self.pool))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 512 + ``in_ch`` channels."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3 / 3x1 filter banks -> 2048 channels."""

    def __init__(self, in_ch: int, pool: PoolKind = "avg") -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_ch, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_ch, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(_pool3x3(x, self.pool))
        return torch.cat([b1, b3, bd, bp], 1)


def preprocess(images: Tensor) -> Tensor:
    """uint8 [N, 3, H, W] in [0, 255] or float in [0, 1] -> float32 [N, 3, 299, 299] in [-1, 1] (bilinear)."""
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"Inception-v3 expects images [N, 3, H, W], got {getattr(images, 'shape', type(images))}")
    if images.dtype == torch.uint8:
        x = images.float() / 255
    elif images.is_floating_point():
        x = images.float()
        if x.numel() and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
            raise ValueError("float images for Inception-v3 must lie in [0, 1] (or pass uint8 in [0, 255])")
    else:
        raise ValueError(f"Inception-v3 expects uint8 or float images, got {images.dtype}")
    if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


class InceptionV3(nn.Module):
    """Inception-v3 without the auxiliary head, always in eval mode. Parameter names follow torchvision.

    Built directly it has random weights (tests only); use :func:`load_inception` for real ones.
    """

    def __init__(self, config: InceptionConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or InceptionConfig()
        pool: PoolKind = "avg_exclude_pad" if cfg.fid_variant else "avg"
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, pool)
        self.Mixed_5c = InceptionA(256, 64, pool)
        self.Mixed_5d = InceptionA(288, 64, pool)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, pool)
        self.Mixed_6c = InceptionC(768, 160, pool)
        self.Mixed_6d = InceptionC(768, 160, pool)
        self.Mixed_6e = InceptionC(768, 192, pool)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool)
        self.Mixed_7c = InceptionE(2048, "max" if cfg.fid_variant else "avg")
        self.fc = nn.Linear(NUM_FEATURES, cfg.num_classes)
        for m in self.modules() if not self.fc.weight.is_meta else ():  # random init (tests); see load_inception
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=NUM_FEATURES**-0.5)
                nn.init.zeros_(m.bias)
        self.eval()

    def train(self, mode: bool = True) -> InceptionV3:
        """Always stays in eval mode (BatchNorm uses the loaded running statistics)."""
        return super().train(False)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    def pool_features(self, x: Tensor) -> Tensor:
        """Preprocessed input [N, 3, 299, 299] in [-1, 1] -> pooled features [N, 2048]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # [N, 64, 147, 147]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # [N, 192, 71, 71]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 192, 35, 35]
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # [N, 288, 35, 35]
        x = self.Mixed_6a(x)  # [N, 768, 17, 17]
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # [N, 768, 17, 17]
        x = self.Mixed_7a(x)  # [N, 1280, 8, 8]
        x = self.Mixed_7c(self.Mixed_7b(x))  # [N, 2048, 8, 8]
        return x.mean((2, 3))  # [N, 2048]

    def forward(self, images: Tensor) -> Tensor:
        """Images (see :func:`preprocess`) -> logits [N, num_classes], one batch, on the model's device."""
        return self.fc(self.pool_features(preprocess(images.to(self.device))))

    def _batched(self, images: Tensor, head: Literal["pool", "logits", "logits_unbiased"], batch_size: int) -> Tensor:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        outs = []
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                f = self.pool_features(preprocess(images[i : i + batch_size].to(self.device)))  # [b, 2048]
                if head == "logits":
                    f = self.fc(f)
                elif head == "logits_unbiased":
                    f = f @ self.fc.weight.T
                outs.append(f)
        if not outs:
            width = NUM_FEATURES if head == "pool" else self.num_classes
            return images.new_zeros((0, width), dtype=torch.float32)
        return torch.cat(outs).to(images.device)

    def features(self, images: Tensor, batch_size: int = 32) -> Tensor:
        """Images (see :func:`preprocess`) -> pool features float32 [N, 2048], on the images' device."""
        return self._batched(images, "pool", batch_size)

    def logits(self, images: Tensor, batch_size: int = 32, bias: bool = True) -> Tensor:
        """Images -> logits float32 [N, num_classes] on the images' device (``bias=False``: IS's logits)."""
        return self._batched(images, "logits" if bias else "logits_unbiased", batch_size)


def _list(keys: list[str], limit: int = 6) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def read_header(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{key: (shape, dtype)}`` from a safetensors file's header (no tensor data is read)."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.exists():
        raise InceptionWeightsError(f"Inception-v3 weights file not found: {p}")
    if not p.is_file():
        raise InceptionWeightsError(f"Inception-v3 weights path is not a file: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            out = {}
            for k in f.keys():
                s = f.get_slice(k)
                out[k] = (tuple(s.get_shape()), s.get_dtype())
            return out
    except (SafetensorError, OSError) as e:
        raise InceptionWeightsError(
            f"{p} is not a safetensors file ({e}); convert the weights with safetensors.torch.save_file "
            "(see docs/evaluation.md)"
        ) from None


def check_weights(path: str | Path, variant: str = "fid") -> InceptionConfig:
    """Validate a weights file against the architecture from its header alone; returns the config to build.

    Raises :class:`InceptionWeightsError` naming missing, unexpected and mis-shaped keys.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Inception-v3 variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    header = {k: v for k, v in read_header(path).items() if not k.startswith(IGNORED_PREFIXES)}
    fc = header.get("fc.weight", ((0, 0), ""))[0]
    num_classes = fc[0] if len(fc) == 2 and fc[0] > 0 else 1008
    cfg = InceptionConfig(num_classes=num_classes, fid_variant=variant == "fid")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in InceptionV3(cfg).state_dict().items()}
    optional = {k for k in expected if k.endswith(".num_batches_tracked")}
    missing = [k for k in expected if k not in header and k not in optional]
    unexpected = [k for k in header if k not in expected]
    wrong = []
    for k, shape in expected.items():
        if k in header and header[k][0] != shape:
            wrong.append(f"{k} {list(header[k][0])} (expected {list(shape)})")
        elif k in header and k not in optional and header[k][1] not in _FLOAT_DTYPES:
            wrong.append(f"{k} dtype {header[k][1]} (expected a float)")
    kinds = (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes/dtypes", wrong))
    problems = [f"{name}: {_list(keys)}" for name, keys in kinds if keys]
    if problems:
        raise InceptionWeightsError(f"{path} does not hold Inception-v3 weights: " + "; ".join(problems))
    return cfg


def load_inception(path: str | Path, variant: str = "fid", device: str | torch.device = "cpu") -> InceptionV3:
    """Load user weights from a safetensors file, strictly (see the module docstring), as float32 on ``device``."""
    from safetensors.torch import load_file

    cfg = check_weights(path, variant)
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith(IGNORED_PREFIXES)}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InceptionWeightsError(f"{path}: tensor {bad[0]!r} holds NaN or infinite values (corrupt weights)")
    with torch.device("meta"):
        net = InceptionV3(cfg)
    net = net.to_empty(device="cpu")
    for k, v in net.state_dict().items():
        if k.endswith(".num_batches_tracked") and k not in tensors:
            tensors[k] = torch.zeros_like(v)
    net.load_state_dict(tensors, strict=True)
    return net.float().to(device)


class _PoolHead(nn.Module):
    """FID's ``feature`` module: images -> pool features [N, 2048], batched; keeps the last output for IS."""

    num_features = NUM_FEATURES

    def __init__(self, net: InceptionV3, batch_size: int) -> None:
        super().__init__()
        self.net, self.batch_size = net, batch_size
        self.last: Tensor | None = None

    def forward(self, images: Tensor) -> Tensor:
        self.last = self.net.features(images, self.batch_size)
        return self.last


class _UnbiasedLogitsHead(nn.Module):
    """IS's ``feature`` module: pool features [N, 2048] -> logits without the fc bias, float64 [N, num_classes].

    float64 keeps IS finite when a class probability underflows float32 (``0 * log 0`` would give NaN)."""

    def __init__(self, net: InceptionV3) -> None:
        super().__init__()
        self.net = net

    def forward(self, pooled: Tensor) -> Tensor:
        return pooled.to(self.net.device).double() @ self.net.fc.weight.detach().double().T


class InceptionEvaluator:
    """FID against one fixed real set, and IS, of any number of image sets, through torchmetrics.

    ``torchmetrics.image.fid.FrechetInceptionDistance`` gets this module's network (images -> pool features)
    as its custom ``feature`` module, so torch-fidelity is not needed; ``InceptionScore`` gets the bias-free fc
    layer, applied to the pool features FID has just computed, so every image goes through the network once.
    Real features are kept between :meth:`evaluate` calls (``reset_real_features=False``).
    """

    def __init__(self, net: InceptionV3, batch_size: int = 32, splits: int = 10, seed: int = 0) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.net, self.batch_size, self.splits, self.seed = net, batch_size, splits, seed
        self._pool = _PoolHead(net, batch_size)
        self.fid = FrechetInceptionDistance(feature=self._pool, reset_real_features=False).to(net.device)
        self.num_real = 0

    def _batches(self, images: Tensor) -> list[Tensor]:
        return [images[i : i + self.batch_size].to(self.net.device) for i in range(0, images.shape[0], self.batch_size)]

    def add_real(self, images: Tensor) -> None:
        """Add real images (see :func:`preprocess`) to the reference set."""
        for batch in self._batches(images):
            self.fid.update(batch, real=True)
        self.num_real += images.shape[0]

    def evaluate(self, fake: Tensor) -> dict[str, float]:
        """``{"fid", "is_mean", "is_std"}`` of ``fake`` [N >= 2, 3, H, W] (IS over ``min(splits, N // 2)`` splits;
        ``is_std`` is NaN for a single split)."""
        from torchmetrics.image.inception import InceptionScore

        if fake.shape[0] < 2 or self.num_real < 2:
            raise ValueError(
                f"Inception FID needs at least 2 real and 2 generated images, got {self.num_real} and {fake.shape[0]}"
            )
        splits = max(1, min(self.splits, fake.shape[0] // 2))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            inception_score = InceptionScore(feature=_UnbiasedLogitsHead(self.net), splits=splits).to(self.net.device)
        self.fid.reset()  # drops the previous generated set only
        for batch in self._batches(fake):
            self.fid.update(batch, real=False)
            inception_score.update(self._pool.last)
        fid = float(self.fid.compute())
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():  # IS shuffles with torch.randperm
            warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # std of a single split
            torch.manual_seed(self.seed)
            mean, std = inception_score.compute()
        # torchmetrics' FID can come out a hair below 0 for identical sets (eigenvalue round-off)
        return {"fid": max(fid, 0.0), "is_mean": float(mean), "is_std": float(std) if splits > 1 else float("nan")}


def inception_metrics(real: Tensor, fake: Tensor, weights: str | Path | InceptionV3, variant: str = "fid",
                      batch_size: int = 32, device: str | torch.device = "cpu", splits: int = 10,
                      seed: int = 0) -> dict[str, float]:  # fmt: skip
    """Inception-v3 FID of ``fake`` against ``real`` and IS of ``fake`` (images: see :func:`preprocess`).

    ``weights``: a safetensors file (loaded with :func:`load_inception`) or an already built network.
    Returns ``{"fid", "is_mean", "is_std"}``.
    """
    net = weights if isinstance(weights, InceptionV3) else load_inception(weights, variant, device)
    ev = InceptionEvaluator(net, batch_size=batch_size, splits=splits, seed=seed)
    ev.add_real(real)
    return ev.evaluate(fake)
