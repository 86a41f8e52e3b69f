"""``PeerDiffusionPipeline``: prompts -> 64x64 images with the peer pixel-diffusion model (the baseline lvg's LM is
measured against), with the call signature of :class:`lvg.Pipeline`, so :func:`lvg.eval.shapes.evaluate_generation`
scores both with the same code.

A saved peer is a folder: ``model_index.json`` (``_class_name: PeerDiffusionPipeline``), ``text_tokenizer/`` and
the :class:`~lvg.models.diffusion.PeerDiffusion` component at the folder's top (``config.json``,
``text_encoder/``, ``unet/``). The model module (and through it ``diffusers``) is imported only when a peer is built
or loaded: ``import lvg`` never imports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from transformers import PreTrainedTokenizerBase

from lvg.images import tensor_to_images
from lvg.pipelines.base import BasePipeline
from lvg.pipelines.index import ModelIndex
from lvg.pipelines.utils import prompt_list, resolve_seeds
from lvg.sampling.config import GenerationConfig
from lvg.tokenizers.text import PAD

if TYPE_CHECKING:
    from lvg.models.diffusion import PeerDiffusion, PeerDiffusionConfig

TOKENIZER_DIR = "text_tokenizer"
# what a DDIM pixel sampler can honour; temperature / top-k / top-p are token-sampling settings of lvg's LM
SUPPORTED_SETTINGS = frozenset(
    {"num_images", "guidance_scale", "seed", "allow_unsupported"}
)  # (no analysis: it draws all)


@dataclass
class PeerDiffusionOutput:
    images: list[Image.Image]
    prompts: list[str] = field(default_factory=list)  # the prompt of each image
    seeds: list[int] = field(default_factory=list)  # the seed of each image's starting noise
    unsupported: list[str | None] = field(default_factory=list)  # (no prompt analysis: always empty)


class PeerDiffusionPipeline(BasePipeline):
    """Prompt -> 64x64 images with a :class:`PeerDiffusion`; duck-type compatible with :class:`lvg.Pipeline`."""

    component_classes = {"model": "PeerDiffusion", "text_tokenizer": "TextTokenizer"}
    component_folders = {"model": ".", "text_tokenizer": TOKENIZER_DIR}
    can_caption = False  # it only draws (the server answers 501 to a caption or edit request)
    can_edit = False

    def __init__(self, model: PeerDiffusion, text_tokenizer: PreTrainedTokenizerBase):
        if text_tokenizer.pad_token_id is None:
            raise ValueError(f"the text tokenizer has no {PAD} token")
        if model.config.vocab_size < len(text_tokenizer):
            raise ValueError(f"model vocab_size {model.config.vocab_size} < tokenizer's {len(text_tokenizer)}")
        self.model, self.text_tokenizer = model.eval(), text_tokenizer

    @classmethod
    def build(cls, config: PeerDiffusionConfig, text_tokenizer: PreTrainedTokenizerBase) -> PeerDiffusionPipeline:
        """A fresh (untrained) peer for ``text_tokenizer``; ``config.vocab_size`` 0 takes the tokenizer's."""
        from lvg.models.diffusion import PeerDiffusion, PeerDiffusionConfig

        if config.vocab_size == 0:
            config = PeerDiffusionConfig(**{**asdict(config), "vocab_size": len(text_tokenizer)})
        return cls(PeerDiffusion(config), text_tokenizer)

    @property
    def config(self) -> PeerDiffusionConfig:
        return self.model.config

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
    def __call__(self, prompt: str | list[str], config: GenerationConfig | None = None, *,
                 generator: torch.Generator | None = None, batch_size: int = 32, seeds: list[int] | None = None,
                 num_inference_steps: int | None = None, **settings: Any) -> PeerDiffusionOutput:  # fmt: skip
        """Generate ``num_images`` images per prompt with DDIM (``num_inference_steps``, default the config's).

        ``config`` / keyword settings as for :class:`lvg.Pipeline`. Image ``j`` (over prompts, then images) starts
        from noise seeded with ``seed + j`` (or ``seeds[j]``) and DDIM with eta 0 is deterministic, so a seed
        reproduces its image byte for byte on CPU for the same ``batch_size``. Settings this sampler cannot honour
        (``temperature``, ``top_k``, ``top_p``: token sampling; ``rerank``: it has no CLIP) must stay at their
        defaults: anything else is a ValueError naming them, never silently ignored.
        """
        cfg = GenerationConfig.from_kwargs(config, **settings)
        default = GenerationConfig()
        unsupported = {
            k: v for k, v in cfg.to_dict().items() if k not in SUPPORTED_SETTINGS and v != getattr(default, k)
        }
        if unsupported:
            raise ValueError(f"the peer diffusion pipeline cannot honour {unsupported} (rerank needs a CLIP; "
                             "temperature, top_k and top_p are token-sampling settings of lvg's LM)")  # fmt: skip
        prompts = prompt_list(prompt, batch_size)
        if num_inference_steps is not None and num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        jobs = [p for p in prompts for _ in range(cfg.num_images)]
        seeds = resolve_seeds(len(jobs), cfg.seed, seeds, generator)
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
            )  # fmt: skip  [b, 3, s, s]
            dev = self.device
            x = self.model.sample(ids.to(dev), mask.to(dev), noise.to(dev), cfg.guidance_scale, num_inference_steps)
            arr = ((x.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # [b, 3, s, s]
            images += tensor_to_images(arr)
        return PeerDiffusionOutput(images, jobs, seeds)

    # ------------------------------------------------------------------ persistence
    # (the model's own files, ``config.json``, ``text_encoder/`` and ``unet/``, lie at the folder's top)

    @classmethod
    def _from_index(cls, index: ModelIndex) -> PeerDiffusionPipeline:
        """Load a folder written by :meth:`save_pretrained`; every weight must match its config (strict)."""
        tok = cls.load_component(index, "text_tokenizer", required=[PAD])
        model_dir = index.component("model")
        config = cls.component_type(index, "model").load_config(model_dir)
        if config.vocab_size != len(tok):
            raise ValueError(f"{index.component('text_tokenizer')} has {len(tok)} tokens but "
                             f"{model_dir / 'config.json'} says {config.vocab_size}")  # fmt: skip
        return cls(cls.load_component(index, "model"), tok)
