"""``Pipeline``: prompt -> images and image -> caption with one unified LM.

A pipeline folder holds ``model_index.json`` (vocabulary layout, component names),
``text_tokenizer/``, ``image_tokenizer/`` and ``lm/`` (Hugging Face Llama, safetensors), and optionally
``clip/`` (a :class:`~lvg.models.clip.ShapesClip` used to rerank candidates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

from lvg.component import ConfigError, config_from_dict
from lvg.files import TextError, check_text
from lvg.images import open_image
from lvg.models.unified import CausalLM, VocabLayout, i2t_prefix, load_lm, save_lm, t2i_prefix, tokenize_texts
from lvg.pipelines import pipeline_class
from lvg.pipelines.index import MODEL_INDEX, ModelIndex, write_model_index
from lvg.sampling.config import MAX_IMAGES_PER_PROMPT, MAX_RERANK, GenerationConfig
from lvg.sampling.generate import generate_image_tokens, generate_text
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.text import load_text_tokenizer, save_text_tokenizer

__all__ = ["MAX_IMAGES_PER_PROMPT", "MAX_RERANK", "MODEL_INDEX", "Pipeline", "PipelineOutput", "candidate_seed",
           "prompt_list", "resolve_seeds"]  # fmt: skip

RERANK_SEED_STRIDE = 0x9E3779B97F4A7C15  # odd 64-bit constant spreading candidate seeds apart
LAYOUT_TOKENS = ["<pad>", "<bos>", "<eos>", "<boi>", "<eoi>", "<en>", "<zh>"]


@dataclass
class PipelineOutput:
    images: list[Image.Image]
    codes: torch.Tensor  # [N, h, w] image codes
    prompts: list[str] = field(default_factory=list)  # the prompt of each image
    seeds: list[int] = field(default_factory=list)  # the seed that reproduces each image (with rerank=1)
    clip_scores: list[float] = field(default_factory=list)  # CLIP cosine of each kept image (only when reranking)


def candidate_seed(seed: int, c: int) -> int:
    """Seed of reranking candidate ``c`` of the image whose seed is ``seed``.

    Candidate 0 is the image itself (``seed``), so reranking only ever adds candidates to what
    ``rerank=1`` would return; candidate ``c > 0`` uses ``(seed + c * RERANK_SEED_STRIDE) mod 2**63``.
    """
    return seed if c == 0 else (seed + c * RERANK_SEED_STRIDE) % 2**63


def _to_image_tensor(image: Any) -> torch.Tensor:
    """PIL image, path or HWC uint8 array -> uint8 [3, 64, 64] (integer upscales are averaged down)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)  # pixel limit checked before decoding
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
        w, h = image.size
        if (w, h) != (64, 64) and not (w == h and w % 64 == 0):
            image = image.resize((64, 64), Image.BICUBIC)
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] != arr.shape[1] or arr.shape[0] % 64:
        raise ValueError(f"expected an RGB image of 64x64 (or an integer upscale), got shape {arr.shape}")
    k = arr.shape[0] // 64
    if k > 1:
        arr = arr.reshape(64, k, 64, k, 3).mean(axis=(1, 3)).round()
    return torch.from_numpy(arr.astype(np.uint8)).permute(2, 0, 1)


def prompt_list(prompt: str | list[str], batch_size: int = 32) -> list[str]:
    """``prompt`` as a non-empty list of non-blank strings (and ``batch_size`` checked), else a ValueError."""
    if not isinstance(prompt, str | list | tuple):  # pipe(5)
        raise TextError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("prompt must be a non-empty string or a list of them")
    for p in prompts:
        check_text(p, "prompt")  # a lone surrogate (a non-UTF-8 byte on the command line) never reaches a tokenizer
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return prompts


def resolve_seeds(num_jobs: int, seed: int | None = None, seeds: list[int] | None = None,
                  generator: torch.Generator | None = None) -> list[int]:  # fmt: skip
    """One seed per image: ``seeds`` as given (checked), else ``seed + j`` (``seed`` drawn from ``generator``
    when None)."""
    if seeds is not None:
        seeds = [int(x) for x in seeds]
        if len(seeds) != num_jobs:
            raise ValueError(f"seeds must give one seed per image ({num_jobs}), got {len(seeds)}")
        return seeds
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return [seed + j for j in range(num_jobs)]


def decode_images(codes: torch.Tensor, image_tokenizer: ImageTokenizer) -> list[Image.Image]:
    """Image codes [N, h, w] -> N RGB images, decoded one at a time: a conv decoder's float rounding depends on
    the batch it runs in, and an image's pixels must depend on its codes alone (same seed -> same bytes,
    whoever shared the call)."""
    dev = image_tokenizer.device
    pixels = torch.cat([image_tokenizer.decode(c[None].to(dev)) for c in codes])  # [N, 3, H, W] in [0, 1]
    arr = (pixels.permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().astype(np.uint8)
    return [Image.fromarray(a) for a in arr]


def best_by_clip(clip: Any, images: list[Image.Image], prompts: list[str], k: int) -> tuple[list[int], list[float]]:
    """CLIP reranking: ``images`` come in runs of ``k`` candidates per job; return, per job, the index of the
    candidate whose CLIP score against its prompt is highest (the first on ties) and that score."""
    pix = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2).contiguous()
    scores = torch.cat([torch.as_tensor(clip.score(pix[s : s + 256], prompts[s : s + 256])).float().cpu()
                        for s in range(0, len(prompts), 256)]).view(-1, k)  # fmt: skip
    best = scores.argmax(1).tolist()  # first maximum on ties
    return [j * k + b for j, b in enumerate(best)], [scores[j, b].item() for j, b in enumerate(best)]


class Pipeline:
    """Text-to-image and image-to-text with one unified causal LM."""

    generation_config = GenerationConfig()  # the defaults of __call__ (guidance 3, temperature 1)
    can_caption = True  # this pipeline reads images (``caption``)

    def __init__(self, lm: LlamaForCausalLM, image_tokenizer: ImageTokenizer, text_tokenizer: PreTrainedTokenizerBase,
                 layout: VocabLayout, clip: Any = None):  # fmt: skip
        if lm.config.vocab_size < layout.vocab_size:
            raise ValueError(f"LM vocabulary {lm.config.vocab_size} is smaller than the layout's {layout.vocab_size}")
        if image_tokenizer.codebook_size != layout.codebook_size:
            raise ValueError("image tokenizer codebook does not match the vocabulary layout")
        self.lm, self.image_tokenizer, self.text_tokenizer, self.layout = lm, image_tokenizer, text_tokenizer, layout
        self.clip = clip  # optional ShapesClip (or anything with ``score(images, texts)``) for reranking

    @property
    def device(self) -> torch.device:
        return self.lm.device

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt, in text tokens, this model reads."""
        return self.layout.max_text_tokens

    def to(self, device: str | torch.device) -> Pipeline:
        self.lm.to(device)
        self.image_tokenizer.to(device)
        if isinstance(self.clip, torch.nn.Module):
            self.clip.to(device)
        return self

    # ------------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                        **kwargs: Any) -> Any:  # fmt: skip
        """Load a pipeline folder (``None``: the default model) as the class its ``model_index.json`` declares.

        Like diffusers' ``DiffusionPipeline``: a folder of another registered class (e.g. the peer diffusion
        pipeline) comes back as that class, with ``device`` and ``kwargs`` handed to its ``from_pretrained``.
        A :class:`Pipeline` folder takes ``dtype`` (default float32).
        """
        index = ModelIndex.read(path)
        target = pipeline_class(index.class_name)
        if not issubclass(target, Pipeline):
            return target.from_pretrained(index.folder, device=device, **kwargs)
        if not issubclass(target, cls):
            raise ValueError(f"{index.file} holds a {index.class_name}, not a {cls.__name__}")
        return target._from_index(index, device, **kwargs)

    @classmethod
    def _from_index(cls, index: ModelIndex, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> Pipeline:  # fmt: skip
        """Build from the components ``index`` declares (the optional ``clip`` only when declared)."""
        if "layout" not in index.data:
            raise ConfigError(f"{index.file}: missing field 'layout' (the vocabulary layout)")
        layout = config_from_dict(VocabLayout, index.data["layout"], str(index.file), prefix="layout.")
        text_dir = index.component("text_tokenizer")
        text_tok = load_text_tokenizer(text_dir, required=LAYOUT_TOKENS)
        if VocabLayout.from_tokenizers(text_tok, layout.codebook_size, layout.image_tokens,
                                       layout.max_text_tokens) != layout:  # fmt: skip
            raise ValueError(f"{text_dir} does not match the vocabulary in {index.file}")
        image_tok = ImageTokenizer.from_pretrained(index.component("image_tokenizer"))
        grid = image_tok.config.grid
        if (layout.codebook_size, layout.image_tokens) != (image_tok.codebook_size, grid * grid):
            raise ConfigError(f"{index.file}: layout.codebook_size = {layout.codebook_size} and layout.image_tokens = "
                              f"{layout.image_tokens} do not match {index.component('image_tokenizer')} "
                              f"({image_tok.codebook_size} codes on a {grid}x{grid} grid)")  # fmt: skip
        lm_dir = index.component("lm")
        lm_config = CausalLM.load_config(lm_dir)
        need = 2 + layout.max_text_tokens + layout.image_tokens + 2
        if lm_config.vocab_size < layout.vocab_size or lm_config.max_position_embeddings < need:
            raise ConfigError(f"{lm_dir / 'config.json'}: vocab_size {lm_config.vocab_size} and max_position_embeddings "
                              f"{lm_config.max_position_embeddings} do not fit {index.file}'s layout (vocab_size "
                              f"{layout.vocab_size}, sequences of {need} tokens)")  # fmt: skip
        lm = load_lm(lm_dir, dtype)
        clip = None
        if (clip_dir := index.optional("clip")) is not None:
            from lvg.models.clip import ShapesClip

            clip = ShapesClip.from_pretrained(clip_dir)
        return cls(lm, image_tok, text_tok, layout, clip=clip).to(device)

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write the whole folder: text tokenizer, image tokenizer, LM (safetensors) and ``model_index.json``.

        ``dtype`` (e.g. ``torch.float16``) stores the weights in that precision to ship small; the
        models in memory are left untouched, and loading always computes in float32 unless asked.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_text_tokenizer(self.text_tokenizer, path / "text_tokenizer")
        self.image_tokenizer.save_pretrained(path / "image_tokenizer", dtype=dtype)
        save_lm(self.lm, path / "lm", dtype)
        components = {"text_tokenizer": "text_tokenizer", "image_tokenizer": "image_tokenizer", "lm": "lm"}
        if self.clip is not None and hasattr(self.clip, "save_pretrained"):
            self.clip.save_pretrained(path / "clip", dtype=dtype)
            components["clip"] = "clip"
        write_model_index(path, "Pipeline", components, layout=self.layout.to_dict())
        return path

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def __call__(self, prompt: str | list[str], config: GenerationConfig | None = None, *,
                 generator: torch.Generator | None = None, batch_size: int = 32, seeds: list[int] | None = None,
                 **settings: Any) -> PipelineOutput:  # fmt: skip
        """Generate ``config.num_images`` images per prompt.

        ``config`` is a :class:`~lvg.sampling.GenerationConfig`; its fields can also be given (or overridden)
        as keyword arguments, the diffusers way: ``pipe(prompts, num_images=2, guidance_scale=3.0, seed=0)``.
        Image ``j`` (counting over prompts, then images) uses seed ``seed + j``, so the same seed
        reproduces the same images byte for byte on CPU, however the work is batched. Without a
        seed, seeds are drawn from ``generator`` (or torch's global RNG). ``seeds`` (one per image)
        overrides ``seed``: image ``j`` uses ``seeds[j]``, so unrelated requests can share one call.

        ``rerank=K > 1`` (needs ``self.clip``) generates K candidates per image, candidate ``c`` of image
        ``j`` with seed :func:`candidate_seed` ``(seeds[j], c)``, and keeps the one whose CLIP score against
        its prompt is highest (the first on ties); the output's ``seeds`` are the kept candidates' seeds,
        each reproducing its image with ``rerank=1``. ``rerank=1`` is plain generation.
        """
        cfg = GenerationConfig.from_kwargs(config, **settings)
        prompts = prompt_list(prompt, batch_size)
        if cfg.rerank > 1 and self.clip is None:
            raise ValueError("rerank > 1 needs a CLIP model: load a pipeline with a clip/ component or pass --clip DIR")
        if cfg.verify:
            raise ValueError("verify needs a planned model with a reader; this one-stage pipeline cannot verify")
        texts = tokenize_texts(self.text_tokenizer, prompts, self.layout.max_text_tokens)
        jobs = [(i, t) for i, t in enumerate(texts) for _ in range(cfg.num_images)]
        seeds = resolve_seeds(len(jobs), cfg.seed, seeds, generator)
        if cfg.rerank > 1:
            return self._rerank(prompts, jobs, seeds, cfg, batch_size)
        all_codes = []
        g = self.layout.image_tokens
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            ids, mask = t2i_prefix([t for _, t in chunk], self.layout)
            kwargs = {}
            if cfg.guidance_scale != 1:
                u_ids, u_mask = t2i_prefix([None] * len(chunk), self.layout)
                kwargs = dict(uncond_input_ids=u_ids.to(self.device), uncond_attention_mask=u_mask.to(self.device))
            gens = [torch.Generator(device="cpu").manual_seed(x) for x in seeds[s : s + batch_size]]
            tokens = generate_image_tokens(
                self.lm, ids.to(self.device), mask.to(self.device), num_tokens=g, token_range=self.layout.image_range,
                guidance_scale=cfg.guidance_scale, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                generators=gens, **kwargs,
            )  # fmt: skip
            all_codes.append(tokens.cpu() - self.layout.image_offset)
        side = int(round(g**0.5))
        codes = torch.cat(all_codes).view(-1, side, side)
        images = decode_images(codes, self.image_tokenizer)
        return PipelineOutput(images, codes, [prompts[i] for i, _ in jobs], seeds)

    def _rerank(self, prompts: list[str], jobs: list, seeds: list[int], cfg: GenerationConfig,
                batch_size: int) -> PipelineOutput:  # fmt: skip
        """Generate ``cfg.rerank`` candidates per job (see :meth:`__call__`) and keep the best by CLIP score."""
        k = cfg.rerank
        cand_seeds = [candidate_seed(s, c) for s in seeds for c in range(k)]
        cand_prompts = [prompts[i] for i, _ in jobs for _ in range(k)]
        one = cfg.replace(num_images=1, rerank=1, seed=None)
        out = self(cand_prompts, one, seeds=cand_seeds, batch_size=batch_size)
        keep, scores = best_by_clip(self.clip, out.images, cand_prompts, k)
        return PipelineOutput([out.images[i] for i in keep], out.codes[keep], [cand_prompts[i] for i in keep],
                              [cand_seeds[i] for i in keep], scores)  # fmt: skip

    @torch.inference_mode()
    def caption(self, image: Any, lang: str = "en", num_beams: int = 1, max_new_tokens: int = 64,
                batch_size: int = 64) -> str | list[str]:  # fmt: skip
        """Caption one image (PIL, path or array) or a list of them, in the canonical grammar of ``lang``."""
        single = not isinstance(image, (list, tuple))
        images = [image] if single else list(image)
        if not images:
            raise ValueError("no images to caption")
        if num_beams < 1 or max_new_tokens < 1:
            raise ValueError("num_beams and max_new_tokens must be at least 1")
        self.layout.lang_id(lang)  # validates lang
        out: list[str] = []
        allowed = self.layout.caption_allowed().to(self.device)
        for s in range(0, len(images), batch_size):
            pix = torch.stack([_to_image_tensor(x) for x in images[s : s + batch_size]])
            codes = self.image_tokenizer.encode(pix)
            ids = i2t_prefix(codes, self.layout, lang).to(self.device)
            seqs = generate_text(self.lm, ids, torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 allowed_ids=allowed, eos_id=self.layout.eos_id, num_beams=num_beams)  # fmt: skip
            # one line per caption, whatever bytes an undertrained model emits
            out += [" ".join(self.text_tokenizer.decode(q, skip_special_tokens=True).split()) for q in seqs]
        return out[0] if single else out
