"""``Pipeline``: prompt -> images and image -> caption with one unified LM.

A pipeline folder holds ``model_index.json`` (vocabulary layout, component names),
``text_tokenizer/``, ``image_tokenizer/`` and ``lm/`` (Hugging Face Llama, safetensors), and optionally
``clip/`` (a :class:`~lvg.models.clip.ShapesClip` used to rerank candidates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

from lvg.component import ConfigError, config_from_dict
from lvg.images import images_to_tensor
from lvg.models.unified import CausalLM, VocabLayout, i2t_prefix, t2i_prefix, tokenize_texts
from lvg.pipelines.base import BasePipeline, check_lm_vocab
from lvg.pipelines.index import MODEL_INDEX, ModelIndex
from lvg.pipelines.utils import (  # (re-exported: their old home)
    RERANK_SEED_STRIDE,
    best_by_clip,
    candidate_seed,
    decode_images,
    prompt_list,
    resolve_seeds,
)
from lvg.sampling.config import MAX_IMAGES_PER_PROMPT, MAX_RERANK, GenerationConfig
from lvg.sampling.generate import generate_image_tokens, generate_text
from lvg.tokenizers.image import ImageTokenizer

__all__ = ["MAX_IMAGES_PER_PROMPT", "MAX_RERANK", "MODEL_INDEX", "RERANK_SEED_STRIDE", "Pipeline", "PipelineOutput",
           "best_by_clip", "candidate_seed", "decode_images", "prompt_list", "resolve_seeds"]  # fmt: skip

LAYOUT_TOKENS = ["<pad>", "<bos>", "<eos>", "<boi>", "<eoi>", "<en>", "<zh>"]


@dataclass
class PipelineOutput:
    images: list[Image.Image]
    codes: torch.Tensor  # [N, h, w] image codes
    prompts: list[str] = field(default_factory=list)  # the prompt of each image
    seeds: list[int] = field(default_factory=list)  # the seed that reproduces each image (with rerank=1)
    clip_scores: list[float] = field(default_factory=list)  # CLIP cosine of each kept image (only when reranking)
    # why the planner refused each image's prompt, drawn anyway with allow_unsupported (None: drawn as asked; empty:
    # a pipeline that does not analyse prompts)
    unsupported: list[str | None] = field(default_factory=list)


class Pipeline(BasePipeline):
    """Text-to-image and image-to-text with one unified causal LM.

    ``Pipeline.from_pretrained`` returns whatever class a folder declares (diffusers' ``DiffusionPipeline`` way,
    kept for backward compatibility); a :class:`Pipeline` folder takes ``dtype`` (default float32).
    """

    component_classes = {"text_tokenizer": "TextTokenizer", "image_tokenizer": "ImageTokenizer", "lm": "CausalLM",
                         "clip": "ShapesClip"}  # fmt: skip
    optional_components = frozenset({"clip"})
    _loads_any_class = True
    generation_config = GenerationConfig()  # the defaults of __call__ (guidance 3, temperature 1)
    can_caption = True  # this pipeline reads images (``caption``)
    can_edit = False  # it does not edit them (a planned model with an editor/ does)

    def __init__(self, lm: LlamaForCausalLM, image_tokenizer: ImageTokenizer, text_tokenizer: PreTrainedTokenizerBase,
                 layout: VocabLayout, clip: Any = None):  # fmt: skip
        check_lm_vocab(lm, layout.vocab_size, "LM")
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

    # ------------------------------------------------------------------ persistence

    @classmethod
    def _from_index(cls, index: ModelIndex, dtype: torch.dtype = torch.float32) -> Pipeline:
        """Build from the components ``index`` declares, each checked against the vocabulary layout before the
        next (and the LM's config before its weights) is loaded."""
        if "layout" not in index.data:
            raise ConfigError(f"{index.file}: missing field 'layout' (the vocabulary layout)")
        layout = config_from_dict(VocabLayout, index.data["layout"], str(index.file), prefix="layout.")
        text_dir = index.component("text_tokenizer")
        text_tok = cls.load_component(index, "text_tokenizer", required=LAYOUT_TOKENS)
        if VocabLayout.from_tokenizers(text_tok, layout.codebook_size, layout.image_tokens,
                                       layout.max_text_tokens) != layout:  # fmt: skip
            raise ValueError(f"{text_dir} does not match the vocabulary in {index.file}")
        image_tok = cls.load_component(index, "image_tokenizer")
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
        lm = cls.load_component(index, "lm", dtype=dtype)
        return cls(lm, image_tok, text_tok, layout, clip=cls.load_component(index, "clip"))

    def _index_fields(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict()}

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
        if cfg.painter_temperature:
            raise ValueError("painter_temperature samples a planned model's code painter; this one-stage pipeline "
                             "has no painter (its LM writes the image codes: use temperature)")  # fmt: skip
        if cfg.label_temperature is not None and cfg.label_temperature != cfg.temperature:
            raise ValueError("label_temperature samples a planned model's layout labels; this one-stage pipeline "
                             "writes no layout (its LM writes the image codes: use temperature)")  # fmt: skip
        if cfg.refusal_threshold is not None:
            raise ValueError("refusal_threshold sets when a planned model's planner refuses a prompt; this one-stage "
                             "pipeline has no planner and refuses nothing: leave it unset")  # fmt: skip
        if cfg.painter_steps != 1:
            raise ValueError("painter_steps sets a planned model's masked code painter's rounds; this one-stage "
                             "pipeline has no painter: leave it at 1")  # fmt: skip
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
            pix = images_to_tensor(images[s : s + batch_size], size=self.image_tokenizer.config.image_size)
            codes = self.image_tokenizer.encode(pix)
            ids = i2t_prefix(codes, self.layout, lang).to(self.device)
            seqs = generate_text(self.lm, ids, torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 allowed_ids=allowed, eos_id=self.layout.eos_id, num_beams=num_beams)  # fmt: skip
            # one line per caption, whatever bytes an undertrained model emits
            out += [" ".join(self.text_tokenizer.decode(q, skip_special_tokens=True).split()) for q in seqs]
        return out[0] if single else out
