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

:class:`PeerDiffusion` is a :class:`~lvg.component.Component`: a folder with ``config.json``,
``text_encoder/model.safetensors`` and ``unet/`` (diffusers' own ``config.json`` +
``diffusion_pytorch_model.safetensors``); loading is strict. Its pipeline (prompts -> images, the call signature of
:class:`lvg.Pipeline`) is :class:`lvg.pipelines.diffusion.PeerDiffusionPipeline`. Only this module imports
``diffusers`` (an optional dependency: ``pip install 'lvg[peer]'``), and only when a model is built;
``import lvg`` never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lvg.component import CONFIG_NAME, Component, read_json_object
from lvg.ranges import bounded, check_ranges
from lvg.weights import check_header, load_weights, missing_weights_error, save_weights

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

    image_size: int = bounded(8, 1024, default=64)
    # one level each, 64 -> 16 px
    block_out_channels: list[int] = bounded(1, 4096, default_factory=lambda: [64, 128, 192])
    layers_per_block: int = bounded(1, 16, default=1)
    first_attention_level: int = bounded(0, 16, default=1)  # levels from this one down (and the middle) have attention
    norm_num_groups: int = bounded(1, 256, default=32)
    attention_heads: int = bounded(1, 64, default=4)  # per attention layer (diffusers' ``attention_head_dim``: heads)
    text_width: int = bounded(1, 4096, default=256)  # text encoder width = UNet cross-attention dim
    text_layers: int = bounded(1, 64, default=2)
    text_heads: int = bounded(1, 64, default=4)
    max_text_tokens: int = bounded(1, 4096, default=96)  # the planner's limit: the stream's longest captions are ~70
    vocab_size: int = bounded(0, 1_000_000, default=0)  # 0: the text tokenizer's
    num_train_timesteps: int = bounded(1, 100_000, default=1000)
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    sampling_steps: int = bounded(1, 10_000, default=50)  # DDIM steps when a call does not say

    def __post_init__(self) -> None:
        check_ranges(self)
        if not 1 <= len(self.block_out_channels) <= 8:
            raise ValueError(f"block_out_channels needs 1..8 levels, got {self.block_out_channels}")
        if not self.block_out_channels or self.image_size % 2 ** (len(self.block_out_channels) - 1):
            raise ValueError(
                f"image_size {self.image_size} must halve cleanly {len(self.block_out_channels) - 1} times"
            )
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"block_out_channels {self.block_out_channels} must be multiples of norm_num_groups")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width {self.text_width} must divide by text_heads {self.text_heads}")
        if not 0 <= self.first_attention_level < len(self.block_out_channels):
            raise ValueError(f"first_attention_level must be in [0, {len(self.block_out_channels)})")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")

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


class PeerDiffusion(Component, nn.Module):
    """Text encoder + ``UNet2DConditionModel`` with its DDPM training loss and DDIM sampler."""

    config_class = PeerDiffusionConfig

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

    # ------------------------------------------------------------------ persistence (Component hooks)

    def _save_files(self, path: Path, dtype: torch.dtype | None) -> None:
        """``text_encoder/model.safetensors`` and ``unet/`` in diffusers' own layout, so
        ``UNet2DConditionModel.from_pretrained(path / "unet")`` works too."""
        (path / TEXT_ENCODER_FILE).parent.mkdir(parents=True, exist_ok=True)
        save_weights(self.text_encoder, path / TEXT_ENCODER_FILE, dtype, {"lvg": "peer-text-encoder"})
        self.unet.save_config(path / UNET_DIR)
        save_weights(self.unet, path / UNET_DIR / UNET_WEIGHTS, dtype)

    def _check_weights(self, path: Path) -> None:
        """Check that ``unet/config.json`` is what ``config.json`` implies, then both weights files' headers against
        this (meta-device) module."""
        for f in (path / TEXT_ENCODER_FILE, path / UNET_DIR / CONFIG_NAME, path / UNET_DIR / UNET_WEIGHTS):
            if not f.is_file():
                raise missing_weights_error("peer diffusion", f)
        saved_unet = read_json_object(path / UNET_DIR / CONFIG_NAME)
        for k, v in self.config.unet_kwargs().items():
            if (list(v) if isinstance(v, tuple) else v) != saved_unet.get(k):
                raise ValueError(
                    f"{path / UNET_DIR / CONFIG_NAME}: {k} = {saved_unet.get(k)!r} but {CONFIG_NAME} implies {v!r}"
                )
        check_header(path / TEXT_ENCODER_FILE, self.text_encoder.state_dict(), path / CONFIG_NAME)
        check_header(path / UNET_DIR / UNET_WEIGHTS, self.unet.state_dict(), path / UNET_DIR / CONFIG_NAME)

    def _load_weights(self, path: Path) -> None:
        """Strictly load both parts (:meth:`_check_weights` has checked the files and their headers)."""
        load_weights(self.text_encoder, path / TEXT_ENCODER_FILE, path / CONFIG_NAME)
        load_weights(self.unet, path / UNET_DIR / UNET_WEIGHTS, path / UNET_DIR / CONFIG_NAME)
