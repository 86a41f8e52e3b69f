"""A standard text-conditioned pixel-space diffusion model: the peer baseline lvg's LM is measured against.

Built from ``diffusers`` parts: a :class:`diffusers.UNet2DConditionModel` on 64x64 RGB pixels (self- and
cross-attention to the text at the 32x32 and 16x16 levels and in the middle block, none at 64x64), trained with
:class:`diffusers.DDPMScheduler` and sampled with :class:`diffusers.DDIMScheduler` (eta 0, classifier-free guidance
by batch doubling). The text encoder is small and trained from scratch: token embedding + learned positions +
pre-norm transformer encoder layers over lvg's own text tokenizer ids, padding-masked; a learned null token stands
for the empty prompt.

Defaults: v-prediction on the cosine ("squaredcos_cap_v2") schedule. The cosine schedule is the usual choice for
64x64 pixel diffusion (Nichol & Dhariwal 2021); at its almost-zero-SNR end an epsilon-predictor's x0 estimate is
ill-conditioned, and that end is where the background colour and the layout are decided, so the model predicts
v (Salimans & Ho 2022), which is well-behaved at both ends. Training uses Min-SNR-5 loss weights (Hang et al.
2023), as diffusers' own text-to-image example offers.

:class:`PeerDiffusionPipeline` has the call signature of :class:`lvg.Pipeline` (``pipe(prompts, num_images=1,
guidance_scale=3.0, seed=0, batch_size=...)`` -> ``.images`` as 64x64 PIL images), so
:func:`lvg.eval.shapes.evaluate_generation` scores both with the same code. A saved peer is a folder:
``config.json``, ``text_tokenizer/``, ``text_encoder/model.safetensors`` and ``unet/`` (diffusers' own
``config.json`` + ``diffusion_pytorch_model.safetensors``); loading is strict. Only this module imports
``diffusers`` (an optional dependency: ``pip install 'lvg[peer]'``); ``import lvg`` never does.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import PreTrainedTokenizerBase

from lvg import __version__
from lvg.pipelines.pipeline import check_generation_args, resolve_seeds
from lvg.tokenizers.text import PAD, load_text_tokenizer, save_text_tokenizer
from lvg.weights import load_weights, save_weights

CONFIG_NAME = "config.json"
TOKENIZER_DIR = "text_tokenizer"
TEXT_ENCODER_FILE = "text_encoder/model.safetensors"
UNET_DIR = "unet"
UNET_WEIGHTS = "diffusion_pytorch_model.safetensors"
PREDICTION_TYPES = ("epsilon", "v_prediction")

# Named sizes. "base" is in the ballpark of lvg's shipped generator (LM "base" 10.9M + image tokenizer ~3.7M).
PRESETS: dict[str, dict] = {
    # ~0.3M with attention at 16x16 only: for tests
    "tiny": dict(
        block_out_channels=[16, 16, 32],
        first_attention_level=2,
        norm_num_groups=8,
        attention_heads=2,
        text_width=32,
        text_layers=1,
        text_heads=2,
    ),
    "base": {},  # the defaults below: UNet 11.2M + text encoder 1.7M
}


def _diffusers() -> Any:
    """The ``diffusers`` module, with a clear error when the optional dependency is missing."""
    try:
        import diffusers
    except ImportError as e:
        raise ImportError("the peer diffusion model needs diffusers: pip install 'lvg[peer]'") from e
    return diffusers


@dataclass
class PeerDiffusionConfig:
    """Architecture, noise schedule and sampler of a :class:`PeerDiffusion` (saved as ``config.json``)."""

    image_size: int = 64
    block_out_channels: list[int] = field(default_factory=lambda: [64, 128, 192])  # one level each, 64 -> 16 px
    layers_per_block: int = 1
    first_attention_level: int = 1  # levels from this one down (and the middle block) have attention
    norm_num_groups: int = 32
    attention_heads: int = 4  # per attention layer (diffusers' ``attention_head_dim`` means heads)
    text_width: int = 256  # text encoder width = UNet cross-attention dim
    text_layers: int = 2
    text_heads: int = 4
    max_text_tokens: int = 64  # same limit as lvg's LM
    vocab_size: int = 0  # 0: the text tokenizer's
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    sampling_steps: int = 50  # DDIM steps when a call does not say

    def __post_init__(self) -> None:
        if not self.block_out_channels or self.image_size % 2 ** (len(self.block_out_channels) - 1):
            raise ValueError(
                f"image_size {self.image_size} must halve cleanly {len(self.block_out_channels) - 1} times"
            )
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"block_out_channels {self.block_out_channels} must be multiples of norm_num_groups")
        if self.text_width % self.text_heads or self.text_layers < 1 or self.layers_per_block < 1:
            raise ValueError("text_width must divide by text_heads; text_layers and layers_per_block must be >= 1")
        if not 0 <= self.first_attention_level < len(self.block_out_channels):
            raise ValueError(f"first_attention_level must be in [0, {len(self.block_out_channels)})")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if self.sampling_steps < 1 or self.max_text_tokens < 1 or self.vocab_size < 0:
            raise ValueError("sampling_steps and max_text_tokens must be positive, vocab_size >= 0")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PeerDiffusionConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown peer preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def unet_kwargs(self) -> dict[str, Any]:
        """Arguments of ``UNet2DConditionModel``: plain ResNet levels, then self- + cross-attention levels."""
        n, a = len(self.block_out_channels), self.first_attention_level
        return dict(
            sample_size=self.image_size, in_channels=3, out_channels=3,
            block_out_channels=tuple(self.block_out_channels), layers_per_block=self.layers_per_block,
            down_block_types=("DownBlock2D",) * a + ("CrossAttnDownBlock2D",) * (n - a),
            up_block_types=("CrossAttnUpBlock2D",) * (n - a) + ("UpBlock2D",) * a,
            cross_attention_dim=self.text_width, attention_head_dim=self.attention_heads,
            norm_num_groups=self.norm_num_groups,
        )  # fmt: skip

    def scheduler_kwargs(self) -> dict[str, Any]:
        return dict(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
                    prediction_type=self.prediction_type)  # fmt: skip


class TextEncoder(nn.Module):
    """Caption ids -> per-token states [B, T, D] for the UNet's cross-attention, plus a learned null prompt."""

    def __init__(self, cfg: PeerDiffusionConfig):
        super().__init__()
        d = cfg.text_width
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.pos = nn.Parameter(torch.randn(cfg.max_text_tokens, d) * 0.02)  # [Tmax, D]
        layer = nn.TransformerEncoderLayer(d, cfg.text_heads, 4 * d, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.null = nn.Parameter(torch.randn(1, d) * 0.02)  # [1, D] the empty prompt's single state

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, drop: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """ids, mask [B, T] (mask 1 = token), drop bool [B] (rows that get the null prompt).

        Returns states [B, T, D] and the key mask [B, T] to hand to the UNet; a dropped (or empty) row is the
        null state at position 0 and masked padding after it.
        """
        mask = mask.bool()
        empty = ~mask.any(1)  # [B]
        drop = empty if drop is None else drop.to(mask.device).bool() | empty
        safe = mask | (torch.arange(mask.shape[1], device=mask.device) == 0)  # attend somewhere in every row
        h = self.embed(ids) + self.pos[: ids.shape[1]]  # [B, T, D]
        h = self.norm(self.encoder(h, src_key_padding_mask=~safe))
        null = torch.zeros_like(h)
        null[:, 0] = self.null.to(h.dtype)
        first = torch.zeros_like(mask)
        first[:, 0] = True
        states = torch.where(drop[:, None, None], null, h)  # [B, T, D]
        keys = torch.where(drop[:, None], first, mask)  # [B, T]
        return states, keys.long()


class PeerDiffusion(nn.Module):
    """Text encoder + ``UNet2DConditionModel`` with its DDPM training loss and DDIM sampler."""

    def __init__(self, config: PeerDiffusionConfig):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError("PeerDiffusionConfig.vocab_size must be set (the text tokenizer's length)")
        d = _diffusers()
        self.config = config
        self.text_encoder = TextEncoder(config)
        self.unet = d.UNet2DConditionModel(**config.unet_kwargs())
        self.noise_scheduler = d.DDPMScheduler(**config.scheduler_kwargs())
        alphas = self.noise_scheduler.alphas_cumprod.float()  # [num_train_timesteps]
        self.register_buffer("alphas_cumprod", alphas, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.text_encoder.pos.device

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts: ``unet``, ``text_encoder`` and ``total``."""
        unet = sum(p.numel() for p in self.unet.parameters())
        text = sum(p.numel() for p in self.text_encoder.parameters())
        return {"unet": unet, "text_encoder": text, "total": unet + text}

    def denoise(self, x: torch.Tensor, t: torch.Tensor, states: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """UNet output (epsilon or v) for noisy images x [B, 3, H, W] at timesteps t [B]."""
        return self.unet(x, t, encoder_hidden_states=states, encoder_attention_mask=keys).sample

    def training_loss(self, x0: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, drop: torch.Tensor | None = None,
                      snr_gamma: float = 5.0, noise: torch.Tensor | None = None,
                      timesteps: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """DDPM loss on clean images x0 [B, 3, H, W] in [-1, 1] for captions (ids, mask [B, T]).

        ``drop`` [B] marks rows trained on the null prompt (classifier-free guidance). Noise and timesteps are
        drawn from torch's RNG unless given. ``snr_gamma > 0`` weights each row by Min-SNR-gamma (Hang et al.
        2023); 0 is the plain mean squared error.
        """
        b = x0.shape[0]
        if noise is None:
            noise = torch.randn_like(x0)
        if timesteps is None:
            timesteps = torch.randint(0, self.config.num_train_timesteps, (b,), device=x0.device)
        sched = self.noise_scheduler
        noisy = sched.add_noise(x0, noise, timesteps)  # [B, 3, H, W]
        v = self.config.prediction_type == "v_prediction"
        target = sched.get_velocity(x0, noise, timesteps) if v else noise
        states, keys = self.text_encoder(ids, mask, drop)
        pred = self.denoise(noisy, timesteps, states, keys).float()
        per_row = F.mse_loss(pred, target.float(), reduction="none").mean((1, 2, 3))  # [B]
        if snr_gamma > 0:
            ab = self.alphas_cumprod.to(x0.device)[timesteps]  # [B]
            snr = ab / (1 - ab)
            clipped = snr.clamp(max=snr_gamma)
            per_row = per_row * (clipped / (snr + 1) if v else clipped / snr.clamp(min=1e-8))
        return per_row.mean()

    def ddim(self, steps: int) -> Any:
        """A fresh DDIM sampler (eta 0, trailing timesteps, x0 clipped to [-1, 1]) set to ``steps`` steps."""
        sched = _diffusers().DDIMScheduler(**self.config.scheduler_kwargs(), timestep_spacing="trailing",
                                           clip_sample=True)  # fmt: skip
        sched.set_timesteps(steps)
        return sched

    @torch.no_grad()
    def sample(self, ids: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, guidance_scale: float = 3.0,
               steps: int | None = None) -> torch.Tensor:  # fmt: skip
        """DDIM from ``noise`` [B, 3, H, W] for captions (ids, mask [B, T]) -> images [B, 3, H, W] in [-1, 1].

        ``guidance_scale != 1`` runs the conditional and null-prompt rows in one doubled batch and mixes them
        as ``uncond + g * (cond - uncond)``.
        """
        sched = self.ddim(steps or self.config.sampling_steps)
        b = noise.shape[0]
        states, keys = self.text_encoder(ids, mask)  # [B, T, D], [B, T]
        if guidance_scale != 1:
            u_states, u_keys = self.text_encoder(ids, mask, torch.ones(b, dtype=torch.bool, device=ids.device))
            states, keys = torch.cat([states, u_states]), torch.cat([keys, u_keys])  # [2B, T, D], [2B, T]
        x = noise
        for t in sched.timesteps:
            inp = torch.cat([x, x]) if guidance_scale != 1 else x  # [B or 2B, 3, H, W]
            tt = torch.full((inp.shape[0],), int(t), device=x.device)
            out = self.denoise(inp, tt, states, keys).float()
            if guidance_scale != 1:
                cond, uncond = out.chunk(2)
                out = uncond + guidance_scale * (cond - uncond)
            x = sched.step(out, t, x, eta=0.0).prev_sample
        return x.clamp(-1, 1)


@dataclass
class PeerDiffusionOutput:
    images: list[Image.Image]
    prompts: list[str] = field(default_factory=list)  # the prompt of each image
    seeds: list[int] = field(default_factory=list)  # the seed of each image's starting noise


class PeerDiffusionPipeline:
    """Prompt -> 64x64 images with a :class:`PeerDiffusion`; duck-type compatible with :class:`lvg.Pipeline`."""

    def __init__(self, model: PeerDiffusion, text_tokenizer: PreTrainedTokenizerBase):
        if text_tokenizer.pad_token_id is None:
            raise ValueError(f"the text tokenizer has no {PAD} token")
        if model.config.vocab_size < len(text_tokenizer):
            raise ValueError(f"model vocab_size {model.config.vocab_size} < tokenizer's {len(text_tokenizer)}")
        self.model, self.text_tokenizer = model.eval(), text_tokenizer

    @classmethod
    def build(cls, config: PeerDiffusionConfig, text_tokenizer: PreTrainedTokenizerBase) -> PeerDiffusionPipeline:
        """A fresh (untrained) peer for ``text_tokenizer``; ``config.vocab_size`` 0 takes the tokenizer's."""
        if config.vocab_size == 0:
            config = PeerDiffusionConfig(**{**asdict(config), "vocab_size": len(text_tokenizer)})
        return cls(PeerDiffusion(config), text_tokenizer)

    @property
    def config(self) -> PeerDiffusionConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: str | torch.device) -> PeerDiffusionPipeline:
        self.model.to(device)
        return self

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> right-padded (ids, mask) LongTensors [B, T]; too long a caption is a ValueError."""
        enc = self.text_tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        limit = self.config.max_text_tokens
        for e, t in zip(enc, texts):
            if len(e) > limit:
                raise ValueError(f"prompt is {len(e)} tokens long; the model accepts at most {limit}: {t[:60]!r}")
        t_max = max(1, max(len(e) for e in enc))
        ids = torch.full((len(enc), t_max), self.text_tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(enc), t_max), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[i, : len(e)] = 1
        return ids, mask

    @torch.inference_mode()
    def __call__(self, prompt: str | list[str], num_images: int = 1, guidance_scale: float = 3.0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                 generator: torch.Generator | None = None, batch_size: int = 32, seeds: list[int] | None = None,
                 rerank: int = 1, num_inference_steps: int | None = None) -> PeerDiffusionOutput:  # fmt: skip
        """Generate ``num_images`` images per prompt with DDIM (``num_inference_steps``, default the config's).

        Image ``j`` (over prompts, then images) starts from noise seeded with ``seed + j`` (or ``seeds[j]``) and
        DDIM with eta 0 is deterministic, so a seed reproduces its image byte for byte on CPU for the same
        ``batch_size``. ``temperature``, ``top_k`` and ``top_p`` are token-sampling settings of lvg's LM: they
        are validated and ignored here. ``rerank`` > 1 needs a CLIP, which this pipeline has not.
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        check_generation_args(prompts, num_images, guidance_scale, temperature, top_k, top_p, batch_size)
        if rerank != 1:
            raise ValueError("rerank is not supported by the peer diffusion pipeline (it has no CLIP)")
        if num_inference_steps is not None and num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        jobs = [p for p in prompts for _ in range(num_images)]
        seeds = resolve_seeds(len(jobs), seed, seeds, generator)
        self.tokenize(prompts)  # validate every prompt's length before any work
        s = self.config.image_size
        images: list[Image.Image] = []
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            ids, mask = self.tokenize(chunk)
            noise = torch.stack(
                [
                    torch.randn(3, s, s, generator=torch.Generator().manual_seed(x))
                    for x in seeds[start : start + batch_size]
                ]
            )  # [b, 3, s, s]
            dev = self.device
            x = self.model.sample(ids.to(dev), mask.to(dev), noise.to(dev), guidance_scale, num_inference_steps)
            arr = ((x.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # [b, 3, s, s]
            images += [Image.fromarray(a) for a in arr.permute(0, 2, 3, 1).numpy().astype(np.uint8)]
        return PeerDiffusionOutput(images, jobs, seeds)

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json``, ``text_tokenizer/``, ``text_encoder/model.safetensors`` and ``unet/``."""
        path = Path(path)
        (path / TEXT_ENCODER_FILE).parent.mkdir(parents=True, exist_ok=True)
        meta = {"_class_name": "PeerDiffusionPipeline", "lvg_version": __version__, **asdict(self.config)}
        (path / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        save_text_tokenizer(self.text_tokenizer, path / TOKENIZER_DIR)
        save_weights(self.model.text_encoder, path / TEXT_ENCODER_FILE, dtype, {"lvg": "peer-text-encoder"})
        unet = self.model.unet  # diffusers' own layout, so UNet2DConditionModel.from_pretrained(path / "unet") works
        unet.save_config(path / UNET_DIR)
        save_weights(unet, path / UNET_DIR / UNET_WEIGHTS, dtype)
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> PeerDiffusionPipeline:
        """Load a folder written by :meth:`save_pretrained`; every weight must match its config (strict)."""
        path = Path(path)
        files = (path / CONFIG_NAME, path / TOKENIZER_DIR / "tokenizer.json", path / TEXT_ENCODER_FILE,
                 path / UNET_DIR / CONFIG_NAME, path / UNET_DIR / UNET_WEIGHTS)  # fmt: skip
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"peer diffusion file missing: {f}")
        try:
            meta = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
            if meta.pop("_class_name", None) != "PeerDiffusionPipeline":
                raise ValueError("not a PeerDiffusionPipeline config")
            meta.pop("lvg_version", None)
            cfg = PeerDiffusionConfig(**meta)
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise ValueError(f"{path / CONFIG_NAME} is not a valid peer diffusion config: {e}") from None
        tok = load_text_tokenizer(path / TOKENIZER_DIR, required=[PAD])
        if cfg.vocab_size != len(tok):
            raise ValueError(
                f"{path / TOKENIZER_DIR} has {len(tok)} tokens but {path / CONFIG_NAME} says {cfg.vocab_size}"
            )
        model = PeerDiffusion(cfg)
        saved_unet = json.loads((path / UNET_DIR / CONFIG_NAME).read_text(encoding="utf-8"))
        for k, v in cfg.unet_kwargs().items():
            if (list(v) if isinstance(v, tuple) else v) != saved_unet.get(k):
                raise ValueError(
                    f"{path / UNET_DIR / CONFIG_NAME}: {k} = {saved_unet.get(k)!r} but config.json implies {v!r}"
                )
        load_weights(model.text_encoder, path / TEXT_ENCODER_FILE, path / CONFIG_NAME)
        load_weights(model.unet, path / UNET_DIR / UNET_WEIGHTS, path / UNET_DIR / CONFIG_NAME)
        return cls(model, tok).to(device)
