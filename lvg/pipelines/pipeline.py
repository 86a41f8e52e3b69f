"""``Pipeline``: prompt -> images and image -> caption with one unified LM.

A pipeline folder holds ``model_index.json`` (vocabulary layout, component names),
``text_tokenizer/``, ``image_tokenizer/`` and ``lm/`` (Hugging Face Llama, safetensors), and optionally
``clip/`` (a :class:`~lvg.models.clip.ShapesClip` used to rerank candidates).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

from lvg import __version__
from lvg.models.unified import VocabLayout, i2t_prefix, t2i_prefix, tokenize_texts
from lvg.sampling import generate_image_tokens, generate_text
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.text import load_text_tokenizer, save_text_tokenizer

MODEL_INDEX = "model_index.json"
MAX_IMAGES_PER_PROMPT = 64
MAX_RERANK = 16  # most candidates generated per returned image
RERANK_SEED_STRIDE = 0x9E3779B97F4A7C15  # odd 64-bit constant spreading candidate seeds apart
LAYOUT_TOKENS = ["<pad>", "<bos>", "<eos>", "<boi>", "<eoi>", "<en>", "<zh>"]
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "shapes-default"


def default_model_dir() -> Path:
    """The shipped default model (``$LVG_DEFAULT_MODEL`` overrides its location)."""
    return Path(os.environ.get("LVG_DEFAULT_MODEL", DEFAULT_MODEL_DIR))


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


def _load_lm(path: Path, dtype: torch.dtype) -> LlamaForCausalLM:
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"language model files missing in {path}")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        lm, info = LlamaForCausalLM.from_pretrained(path, dtype=dtype, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise ValueError(f"cannot load the language model from {path}: {e}") from None
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ValueError(f"{path}: weights do not match config.json: {bad}")
    return lm.eval()


def _to_image_tensor(image: Any) -> torch.Tensor:
    """PIL image, path or HWC uint8 array -> uint8 [3, 64, 64] (integer upscales are averaged down)."""
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                image = im.convert("RGB")
        except (OSError, Image.DecompressionBombError) as e:
            raise ValueError(f"cannot read image {image}: {e}") from None
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


def check_generation_args(
    prompts: list[str],
    num_images: int = 1,
    guidance_scale: float = 3.0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 32,
) -> None:
    """Raise ValueError naming the first invalid generation argument."""
    if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("prompt must be a non-empty string or a list of them")
    if not 1 <= num_images <= MAX_IMAGES_PER_PROMPT:
        raise ValueError(f"num_images must be between 1 and {MAX_IMAGES_PER_PROMPT}, got {num_images}")
    if guidance_scale < 0:
        raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


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


class Pipeline:
    """Text-to-image and image-to-text with one unified causal LM."""

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

    def to(self, device: str | torch.device) -> Pipeline:
        self.lm.to(device)
        self.image_tokenizer.to(device)
        if isinstance(self.clip, torch.nn.Module):
            self.clip.to(device)
        return self

    # ------------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> Pipeline:  # fmt: skip
        """Load a pipeline folder; ``None`` loads the shipped default model."""
        path = Path(path) if path is not None else default_model_dir()
        index_file = path / MODEL_INDEX
        if not path.is_dir():
            raise FileNotFoundError(f"model directory not found: {path}")
        if not index_file.is_file():
            hint = ""
            if path.resolve() == DEFAULT_MODEL_DIR.resolve():
                hint = "; the default model is not trained yet (see models/shapes-default/README.md), pass --model DIR"
            raise FileNotFoundError(f"{path} is not an lvg model folder (no {MODEL_INDEX}){hint}")
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
            layout = VocabLayout(**index["layout"])
            comp = index["components"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{index_file} is malformed: {e}") from None
        text_tok = load_text_tokenizer(path / comp["text_tokenizer"], required=LAYOUT_TOKENS)
        if VocabLayout.from_tokenizers(text_tok, layout.codebook_size, layout.image_tokens,
                                       layout.max_text_tokens) != layout:  # fmt: skip
            raise ValueError(f"{path / comp['text_tokenizer']} does not match the vocabulary in {index_file}")
        image_tok = ImageTokenizer.from_pretrained(path / comp["image_tokenizer"])
        lm = _load_lm(path / comp["lm"], dtype)
        clip = None
        if comp.get("clip"):
            from lvg.models.clip import ShapesClip

            clip = ShapesClip.from_pretrained(path / comp["clip"])
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
        state = None
        if dtype is not None:
            state = {k: v.detach().to(dtype) if v.is_floating_point() else v for k, v in self.lm.state_dict().items()}
        self.lm.save_pretrained(path / "lm", state_dict=state, safe_serialization=True)
        index = {"_class_name": "Pipeline", "lvg_version": __version__, "layout": self.layout.to_dict(),
                 "components": {"text_tokenizer": "text_tokenizer", "image_tokenizer": "image_tokenizer", "lm": "lm"}}  # fmt: skip
        if self.clip is not None and hasattr(self.clip, "save_pretrained"):
            self.clip.save_pretrained(path / "clip", dtype=dtype)
            index["components"]["clip"] = "clip"
        (path / MODEL_INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return path

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def __call__(self, prompt: str | list[str], num_images: int = 1, guidance_scale: float = 3.0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                 generator: torch.Generator | None = None, batch_size: int = 32,
                 seeds: list[int] | None = None, rerank: int = 1) -> PipelineOutput:  # fmt: skip
        """Generate ``num_images`` images per prompt.

        Image ``j`` (counting over prompts, then images) uses seed ``seed + j``, so the same seed
        reproduces the same images byte for byte on CPU, however the work is batched. Without a
        seed, seeds are drawn from ``generator`` (or torch's global RNG). ``seeds`` (one per image)
        overrides ``seed``: image ``j`` uses ``seeds[j]``, so unrelated requests can share one call.

        ``rerank=K > 1`` (needs ``self.clip``) generates K candidates per image, candidate ``c`` of image
        ``j`` with seed :func:`candidate_seed` ``(seeds[j], c)``, and keeps the one whose CLIP score against
        its prompt is highest (the first on ties); the output's ``seeds`` are the kept candidates' seeds,
        each reproducing its image with ``rerank=1``. ``rerank=1`` is plain generation.
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        check_generation_args(prompts, num_images, guidance_scale, temperature, top_k, top_p, batch_size)
        if isinstance(rerank, bool) or not isinstance(rerank, int) or not 1 <= rerank <= MAX_RERANK:
            raise ValueError(f"rerank must be an integer between 1 and {MAX_RERANK}, got {rerank!r}")
        if rerank > 1 and self.clip is None:
            raise ValueError("rerank > 1 needs a CLIP model: load a pipeline with a clip/ component or pass --clip DIR")
        texts = tokenize_texts(self.text_tokenizer, prompts, self.layout.max_text_tokens)
        jobs = [(i, t) for i, t in enumerate(texts) for _ in range(num_images)]
        seeds = resolve_seeds(len(jobs), seed, seeds, generator)
        if rerank > 1:
            return self._rerank(prompts, jobs, seeds, rerank, guidance_scale=guidance_scale, temperature=temperature,
                                top_k=top_k, top_p=top_p, batch_size=batch_size)  # fmt: skip
        all_codes = []
        g = self.layout.image_tokens
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            ids, mask = t2i_prefix([t for _, t in chunk], self.layout)
            kwargs = {}
            if guidance_scale != 1:
                u_ids, u_mask = t2i_prefix([None] * len(chunk), self.layout)
                kwargs = dict(uncond_input_ids=u_ids.to(self.device), uncond_attention_mask=u_mask.to(self.device))
            gens = [torch.Generator(device="cpu").manual_seed(x) for x in seeds[s : s + batch_size]]
            tokens = generate_image_tokens(
                self.lm, ids.to(self.device), mask.to(self.device), num_tokens=g, token_range=self.layout.image_range,
                guidance_scale=guidance_scale, temperature=temperature, top_k=top_k, top_p=top_p, generators=gens,
                **kwargs,
            )  # fmt: skip
            all_codes.append(tokens.cpu() - self.layout.image_offset)
        side = int(round(g**0.5))
        codes = torch.cat(all_codes).view(-1, side, side)
        # one image at a time: a conv decoder's float rounding depends on the batch it runs in, and an image's
        # pixels must depend on its codes alone (same seed -> same bytes, whoever shared the call)
        dev = self.image_tokenizer.device
        pixels = torch.cat([self.image_tokenizer.decode(c[None].to(dev)) for c in codes])  # [N, 3, 64, 64] in [0, 1]
        arr = (pixels.permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().astype(np.uint8)
        images = [Image.fromarray(a) for a in arr]
        return PipelineOutput(images, codes, [prompts[i] for i, _ in jobs], seeds)

    def _rerank(self, prompts: list[str], jobs: list, seeds: list[int], k: int, **opts: Any) -> PipelineOutput:
        """Generate ``k`` candidates per job (see :meth:`__call__`) and keep the best by CLIP score."""
        cand_seeds = [candidate_seed(s, c) for s in seeds for c in range(k)]
        cand_prompts = [prompts[i] for i, _ in jobs for _ in range(k)]
        out = self(cand_prompts, num_images=1, seeds=cand_seeds, **opts)
        pix = torch.from_numpy(np.stack([np.asarray(im) for im in out.images])).permute(0, 3, 1, 2).contiguous()
        scores = torch.cat([torch.as_tensor(self.clip.score(pix[s : s + 256], cand_prompts[s : s + 256])).float().cpu()
                            for s in range(0, len(cand_prompts), 256)]).view(len(jobs), k)  # fmt: skip
        best = scores.argmax(1).tolist()  # first maximum on ties
        keep = [j * k + b for j, b in enumerate(best)]
        return PipelineOutput([out.images[i] for i in keep], out.codes[keep], [cand_prompts[i] for i in keep],
                              [cand_seeds[i] for i in keep], [scores[j, b].item() for j, b in enumerate(best)])  # fmt: skip

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
