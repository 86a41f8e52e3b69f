"""``ShapesClip``: a small CLIP (contrastive image/text embeddings) for Shapes World.

An image tower (strided conv net, 64x64 -> 4x4 -> linear, so positions survive) and a text tower
(pre-norm transformer over the lvg text tokenizer's ids, padding-masked, mean-pooled) map renders and
captions (English or Chinese) to l2-normalised embeddings compared by cosine similarity. Used to
rerank generated candidates (DALL-E recipe) and as a CLIPScore-style metric.

A saved CLIP is a folder with ``config.json``, ``model.safetensors`` and ``text_tokenizer/``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from lvg.component import CONFIG_NAME, Component
from lvg.ranges import bounded, check_ranges
from lvg.tokenizers.text import PAD, load_text_tokenizer, save_text_tokenizer

TOKENIZER_DIR = "text_tokenizer"
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learned temperature at 1/100


@dataclass
class ClipConfig:
    embed_dim: int = bounded(1, 4096, default=128)  # joint embedding size
    image_size: int = bounded(8, 1024, default=64)
    image_channels: list[int] = bounded(1, 4096, default_factory=lambda: [32, 64, 128, 128])  # one stride-2 stage each
    text_width: int = bounded(1, 4096, default=128)
    text_layers: int = bounded(1, 64, default=2)
    text_heads: int = bounded(1, 64, default=4)
    max_text_tokens: int = bounded(1, 4096, default=96)  # longer captions are truncated (4 objects: < 64 tokens)
    vocab_size: int = bounded(0, 1_000_000, default=0)  # 0: take it from the text tokenizer
    init_temperature: float = bounded(1e-6, 1.0, default=0.07)

    def __post_init__(self) -> None:
        check_ranges(self)
        if not self.image_channels or self.image_size % (2 ** len(self.image_channels)):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**len(image_channels)")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width {self.text_width} must be divisible by text_heads {self.text_heads}")


class _ImageTower(nn.Module):
    def __init__(self, cfg: ClipConfig):
        super().__init__()
        layers, c_in = [], 3
        for c in cfg.image_channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.GELU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(min(8, c), c), nn.GELU()]  # fmt: skip
            c_in = c
        self.convs = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.image_channels)
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, cfg.embed_dim * 2), nn.GELU(),
                                  nn.Linear(cfg.embed_dim * 2, cfg.embed_dim))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, 3, H, W] in [-1, 1]
        return self.proj(self.convs(x))


class _TextTower(nn.Module):
    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.pos = nn.Parameter(torch.randn(cfg.max_text_tokens, cfg.text_width) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.text_width, cfg.text_heads, 4 * cfg.text_width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.embed_dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # ids, mask [B, T]; mask 1 = token
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask.bool()))
        m = mask[..., None].to(h.dtype)
        return self.proj((h * m).sum(1) / m.sum(1).clamp(min=1))  # mean over real tokens


class ShapesClip(Component, nn.Module):
    """Contrastive image/text encoder. ``encode_image`` / ``encode_text`` return unit vectors [B, embed_dim].

    A :class:`~lvg.component.Component` whose folder also holds its ``text_tokenizer/``.
    """

    config_class = ClipConfig

    def __init__(self, config: ClipConfig, text_tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        if config.vocab_size == 0:
            config = ClipConfig(**{**asdict(config), "vocab_size": len(text_tokenizer)})
        if config.vocab_size < len(text_tokenizer):
            raise ValueError(
                f"vocab_size {config.vocab_size} is smaller than the text tokenizer's {len(text_tokenizer)}"
            )
        if text_tokenizer.pad_token_id is None:
            raise ValueError(f"the text tokenizer has no {PAD} token")
        self.config, self.text_tokenizer = config, text_tokenizer
        self.image_tower = _ImageTower(config)
        self.text_tower = _TextTower(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids, mask) LongTensors [B, T], right-padded, truncated at ``max_text_tokens``."""
        if isinstance(texts, str) or not texts:
            raise ValueError("texts must be a non-empty list of strings")
        enc = self.text_tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        enc = [e[: self.config.max_text_tokens] or [self.text_tokenizer.pad_token_id] for e in enc]
        t = max(len(e) for e in enc)
        ids = torch.full((len(enc), t), self.text_tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(enc), t), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        return ids, mask

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] uint8, or float in [0, 1] -> unit embeddings [B, D] (with gradients)."""
        s = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (s, s):
            raise ValueError(f"expected images [B, 3, {s}, {s}], got {tuple(images.shape)}")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        return F.normalize(self.image_tower(x.to(self.device) * 2 - 1).float(), dim=-1)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """captions -> unit embeddings [B, D] (with gradients)."""
        ids, mask = self.tokenize(texts)
        return F.normalize(self.text_tower(ids.to(self.device), mask.to(self.device)).float(), dim=-1)

    def forward(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Symmetric InfoNCE loss of matched (image i, text i) pairs against the rest of the batch.

        Identical caption strings in one batch (short partial captions repeat) are not used as
        negatives of each other.
        """
        img, txt = self.image_features(images), self.text_features(texts)
        logits = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * img @ txt.T  # [B, B]
        same = torch.tensor([[a == b for b in texts] for a in texts], device=logits.device)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
        labels = torch.arange(len(texts), device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_features(images)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.text_features(texts)

    @torch.no_grad()
    def score(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Cosine similarity of image i and text i -> float [B] on the CPU."""
        if len(texts) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(texts)} texts")
        return (self.encode_image(images) * self.encode_text(texts)).sum(-1).cpu()

    @torch.no_grad()
    def clip_score(self, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """CLIPScore convention: ``100 * max(cos, 0)`` per pair -> float [B]."""
        return 100 * self.score(images, texts).clamp(min=0)

    # ------------------------------------------------------------------ persistence

    def _save_files(self, path: Path, dtype: torch.dtype | None) -> None:
        """``model.safetensors`` and ``text_tokenizer/``."""
        super()._save_files(path, dtype)
        save_text_tokenizer(self.text_tokenizer, path / TOKENIZER_DIR)

    @classmethod
    def _from_folder(cls, config: ClipConfig, path: Path) -> ShapesClip:
        """The model for ``config`` with the folder's text tokenizer (whose size must be ``config.vocab_size``)."""
        tok_dir = path / TOKENIZER_DIR
        if not (tok_dir / "tokenizer.json").is_file():
            raise FileNotFoundError(f"CLIP file missing: {tok_dir / 'tokenizer.json'}")
        tok = load_text_tokenizer(tok_dir, required=[PAD])
        if config.vocab_size != len(tok):
            raise ValueError(f"{tok_dir} has {len(tok)} tokens but {path / CONFIG_NAME} says {config.vocab_size}")
        return cls(config, tok)
