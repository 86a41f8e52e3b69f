"""``PlannedPipeline``: prompt -> planner LM -> layout -> painter -> image codes -> image tokenizer -> image.

LLM-grounded generation (LayoutGPT, LLM-grounded Diffusion): the planner, a causal LM, writes a
layout (background, labelled boxes) under a grammar that keeps it valid; the painter, a
layout-conditioned conv net, predicts every image code in one parallel step; the image tokenizer
decodes the codes. The prompt reaches the image only through the planner LM.

A folder holds ``model_index.json`` (``_class_name: PlannedPipeline``, the components and the
planner's vocabulary) and the component folders ``planner/`` (``lm/``, ``text_tokenizer/``),
``painter/``, ``image_tokenizer/`` and optionally ``clip/``.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import LlamaForCausalLM, PreTrainedTokenizerBase

from lvg.data.layout import Layout, LayoutError
from lvg.files import check_text
from lvg.models.gan import GanPainter
from lvg.models.painter import Painter
from lvg.models.planner import PlanVocab, load_lm_folder, plan_prefix, write_plan_vocab
from lvg.models.unified import tokenize_texts
from lvg.pipelines.base import BasePipeline, check_lm_vocab
from lvg.pipelines.index import ModelIndex
from lvg.pipelines.pipeline import PipelineOutput
from lvg.pipelines.reading import ImageReader
from lvg.pipelines.utils import (
    best_by_clip,
    candidate_seed,
    decode_images,
    prompt_list,
    resolve_seeds,
    tensor_to_images,
)
from lvg.sampling.config import REFUSAL_THRESHOLD, SAMPLING_FIELDS, GenerationConfig, check_value
from lvg.sampling.decode import prefill
from lvg.sampling.layout import generate_layout_tokens, layout_logprobs
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.layout import LAYOUT, LayoutGrammar, describe_labels

# What the planner samples with unless told otherwise (a folder's model_index.json may say otherwise).
DEFAULT_GENERATION = GenerationConfig(guidance_scale=1.0, temperature=1.0)


class PromptError(ValueError):
    """A prompt the planner cannot read (empty, too long)."""


# What each refusal of a planner trained to analyse prompts means (lvg.data.text.REFUSAL_REASONS).
REFUSAL_MESSAGES = {
    "unknown": "it names something outside what this model draws",
    "count": "it asks for more objects than fit in one picture",
    "contradiction": "it contradicts itself (one object with two colours, sizes or styles, or placed relative to "
    "itself)",
    "zero": "it asks for zero or a negative number of objects",
    "missing": "it names an object the image does not hold (or one that several objects fit)",
}


class UnsupportedPromptError(PromptError):
    """A prompt the planner refused to draw: ``reason`` is its refusal (``unknown``, ``count``, ``contradiction``,
    ``zero``); the message says why and what the model draws. ``allow_unsupported=True`` draws a best effort."""

    def __init__(self, prompt: str, reason: str, knows: str = "", action: str = "draw", detail: str | None = None
                 ) -> None:  # fmt: skip
        self.prompt, self.reason, self.detail = prompt, reason, detail
        shown = prompt if len(prompt) <= 80 else prompt[:77] + "..."
        why = REFUSAL_MESSAGES.get(reason, "the planner refused it")
        said = f" ({detail})" if detail else ""  # what the world's grammar makes of it, e.g. "unknown emoji 'guitar'"
        super().__init__(f"cannot {action} {shown!r}: {why} (reason: {reason}){said}" + (f"; {knows}" if knows else ""))


def normalize_prompt(text: str) -> str:
    """What the planner reads: control characters dropped, runs of white space folded to one space."""
    check_text(text, "prompt", PromptError)  # a string of valid Unicode (no lone surrogate)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch in "\t\n")
    return " ".join(text.split())


@dataclass
class PlannedPipelineOutput(PipelineOutput):
    layouts: list[Layout] = field(default_factory=list)  # the layout each image was painted from
    verified: list[bool | None] = field(default_factory=list)  # with verify: own caption agrees (None: unchecked)


def painter_mismatch(painter: Any, image_tokenizer: ImageTokenizer) -> str | None:
    """Why ``painter`` cannot be paired with ``image_tokenizer`` (None: it can). A code painter must predict the
    tokenizer's codes (same grid and codebook); a pixel painter must paint the tokenizer's image size."""
    tok = image_tokenizer.config
    if painter.paints == "codes":
        if (painter.config.codebook_size, painter.config.grid) != (image_tokenizer.codebook_size, tok.grid):
            return (f"(grid {painter.config.grid}, {painter.config.codebook_size} codes) does not match the image "
                    f"tokenizer (grid {tok.grid}, {image_tokenizer.codebook_size} codes)")  # fmt: skip
    elif painter.config.canvas != tok.image_size:
        return (
            f"paints {painter.config.canvas}x{painter.config.canvas} images, the image tokenizer takes {tok.image_size}"
        )
    return None


class LayoutPlanner(BasePipeline):
    """The planner LM with its text tokenizer and vocabulary: prompts -> layouts.

    Its folder (``planner/`` of a planned model) holds ``text_tokenizer/``, ``lm/`` and ``plan_vocab.json``.
    """

    component_classes = {"text_tokenizer": "TextTokenizer", "lm": "CausalLM"}
    has_index = False
    what = "planner"  # the folder's role, in errors

    def __init__(self, lm: LlamaForCausalLM, text_tokenizer: PreTrainedTokenizerBase, vocab: PlanVocab):
        check_lm_vocab(lm, vocab.vocab_size, f"{self.what} LM")
        self.lm, self.text_tokenizer, self.vocab = lm, text_tokenizer, vocab
        self.layout_tokenizer = vocab.layout_tokenizer
        self.grammar = LayoutGrammar(self.layout_tokenizer)

    def tokenize(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each normalised prompt; empty or too-long prompts raise a ``ValueError`` naming the prompt."""
        texts = [normalize_prompt(p) for p in prompts]
        for text in texts:
            if not text:
                raise PromptError("prompt is empty (or only white space / control characters)")
            if len(text) > 16 * self.vocab.max_text_tokens:  # refuse before tokenizing a huge string
                raise PromptError(f"prompt is {len(text)} characters long; this model reads at most "
                                  f"{self.vocab.max_text_tokens} tokens")  # fmt: skip
        return tokenize_texts(self.text_tokenizer, texts, self.vocab.max_text_tokens)

    @torch.inference_mode()
    def plan_tokens(self, text_ids: list[list[int]], seeds: list[int], guidance_scale: float = 1.0,
                    temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                    batch_size: int = 64, candidates: int = 1,
                    label_temperature: float | None = None) -> list[Layout]:  # fmt: skip
        """One layout per (prompt ids, seed); row ``i`` draws only from ``seeds[i]``. With ``candidates`` > 1 each
        row is the likeliest of that many layouts (:meth:`best_rows`). ``label_temperature`` (None: ``temperature``):
        the labels' own (:func:`~lvg.sampling.layout.generate_layout_tokens`)."""
        if candidates > 1:
            if guidance_scale != 1 or top_k or top_p != 1:
                raise ValueError("candidates > 1 ranks layouts by the LM's own likelihood: it takes guidance_scale 1, "
                                 f"top_k 0 and top_p 1, got {guidance_scale}, {top_k}, {top_p}")  # fmt: skip
            return [self.layout_tokenizer.decode(r) for r in self.best_rows(text_ids, seeds, candidates, temperature,
                                                                            batch_size, label_temperature)]  # fmt: skip
        return [self.layout_tokenizer.decode(r) for r in self._rows(text_ids, seeds, guidance_scale, temperature,
                                                                    top_k, top_p, batch_size, label_temperature)]  # fmt: skip

    def _rows(self, text_ids: list[list[int]], seeds: list[int], guidance_scale: float, temperature: float,
              top_k: int, top_p: float, batch_size: int, label_temperature: float | None = None
              ) -> list[list[int]]:  # fmt: skip
        """The sampled layout tokens (local ids after ``<layout>``) of each (prompt ids, seed)."""
        rows: list[list[int]] = []
        for s in range(0, len(text_ids), batch_size):
            chunk = text_ids[s : s + batch_size]
            ids, mask = plan_prefix(chunk, self.vocab)
            kw: dict[str, Any] = {}
            if guidance_scale != 1:
                u_ids, u_mask = plan_prefix([None] * len(chunk), self.vocab)
                kw = dict(uncond_input_ids=u_ids.to(self.device), uncond_attention_mask=u_mask.to(self.device))
            gens = [torch.Generator().manual_seed(x) for x in seeds[s : s + batch_size]]
            rows += generate_layout_tokens(
                self.lm, ids.to(self.device), mask.to(self.device), self.grammar, self.vocab.layout_offset,
                guidance_scale=guidance_scale, temperature=temperature, top_k=top_k, top_p=top_p,
                generators=gens, pad_id=self.vocab.pad_id, label_temperature=label_temperature, **kw,
            )  # fmt: skip
        return rows

    @torch.inference_mode()
    def best_rows(self, text_ids: list[list[int]], seeds: list[int], candidates: int, temperature: float,
                  batch_size: int = 64, label_temperature: float | None = None) -> list[list[int]]:  # fmt: skip
        """Per (prompt ids, seed), the likeliest of ``candidates`` layouts (sample and rank, a beam search's cheap
        cousin): the one drawn at ``temperature`` from the seed, as :meth:`plan_tokens` draws it, and
        ``candidates - 1`` drawn at temperature 1 from seeds derived from it; each scored by its log-probability under
        the LM and the grammar (:func:`~lvg.sampling.layout.layout_logprobs`); ties keep the first."""
        n = len(text_ids)
        first = self._rows(text_ids, seeds, 1.0, temperature, 0, 1.0, batch_size, label_temperature)
        more_ids = [t for t in text_ids for _ in range(candidates - 1)]
        more_seeds = [candidate_seed(x, j) for x in seeds for j in range(1, candidates)]
        more = self._rows(more_ids, more_seeds, 1.0, 1.0, 0, 1.0, batch_size)
        rows = [[first[i], *more[i * (candidates - 1) : (i + 1) * (candidates - 1)]] for i in range(n)]
        prompts = [[self.vocab.bos_id, *t, self.vocab.layout_offset + LAYOUT] for t in text_ids]
        flat_p = [p for p in prompts for _ in range(candidates)]
        flat_r = [r for group in rows for r in group]
        scores: list[float] = []
        for s in range(0, len(flat_r), batch_size):
            scores += layout_logprobs(self.lm, flat_p[s : s + batch_size], flat_r[s : s + batch_size], self.grammar,
                                      self.vocab.layout_offset, self.vocab.pad_id)  # fmt: skip
        best = []
        for i, group in enumerate(rows):
            sc = scores[i * candidates : (i + 1) * candidates]
            best.append(group[max(range(candidates), key=lambda j: (sc[j], -j))])
        return best

    @torch.inference_mode()
    def refusal_probabilities(self, text_ids: list[list[int]], batch_size: int = 64) -> list[tuple[float, str | None]]:
        """Per prompt, the probability the planner gives refusing it (the refusal tokens at the layout's first token,
        against the backgrounds, the only other tokens allowed there) and the likeliest refusal; ``(0.0, None)`` for
        a planner whose vocabulary has no refusals (trained before prompt analysis). One forward pass, no sampling."""
        tok = self.layout_tokenizer
        reasons = tok.config.refusals
        if not reasons:
            return [(0.0, None)] * len(text_ids)
        first = [*range(tok.bg_offset, tok.label_offset), *tok.refusal_ids()]
        first_ids = torch.tensor(first, device=self.device) + self.vocab.layout_offset
        n_bg = tok.label_offset - tok.bg_offset
        out: list[tuple[float, str | None]] = []
        for s in range(0, len(text_ids), batch_size):
            ids, mask = plan_prefix(text_ids[s : s + batch_size], self.vocab)
            logits = prefill(self.lm, ids.to(self.device), mask.to(self.device))[0]  # [b, V]
            refuse = logits[:, first_ids].float().softmax(-1)[:, n_bg:]  # [b, R]
            out += [(float(p.sum()), reasons[int(p.argmax())]) for p in refuse]
        return out

    def refusals(self, text_ids: list[list[int]], batch_size: int = 64,
                 threshold: float | None = None) -> list[str | None]:  # fmt: skip
        """Whether the planner refuses each prompt, and why: its :meth:`refusal_probabilities` above ``threshold``
        (None: one half) -> the likeliest refusal; None -> it draws the prompt. The same for every seed."""
        threshold = REFUSAL_THRESHOLD if threshold is None else check_value("refusal_threshold", threshold)
        return [why if p > threshold else None for p, why in self.refusal_probabilities(text_ids, batch_size)]

    def _save_extra(self, path: Path) -> None:
        write_plan_vocab(path, self.vocab)

    @classmethod
    def _from_index(cls, index: ModelIndex) -> LayoutPlanner:
        return cls(*load_lm_folder(index.folder, cls.what))


class PlannedPipeline(BasePipeline):
    """Text-to-image by planning: the planner LM writes a layout, the painter paints it.

    The painter is whatever class ``model_index.json`` declares for it (the registry of
    :mod:`lvg.pipelines.components`); folders that declare no classes use :attr:`component_classes`.

    ``entails(caption, prompt)`` is the world's check that a caption satisfies a prompt (True / False / None when
    the prompt is outside its grammar), which ``verify`` needs; a pipeline knows no world, so whoever loads it sets
    it (``lvg.load_pipeline`` and the CLI attach the world's, see :func:`lvg.worlds.attach_world`).
    """

    component_classes = {"planner": "LayoutPlanner", "painter": "Painter", "image_tokenizer": "ImageTokenizer",
                         "clip": "ShapesClip", "reading_lm": "LayoutPlanner", "reader": "ImageReader",
                         "editor": "LayoutPlanner", "gan_painter": "GanPainter", "code_painter": "Painter",
                         "restorer": "Restorer"}  # fmt: skip
    optional_components = frozenset({"clip", "reading_lm", "reader", "editor", "gan_painter", "code_painter",
                                     "restorer"})  # fmt: skip
    # use_painter(): the folder's painter, or the painter of that kind (the painter itself when it is one, else the
    # folder's gan_painter / code_painter: a second painter it offers)
    painter_options = ("default", "code", "gan")
    painter_slots = {"code": ("code_painter", "codes"), "gan": ("gan_painter", "pixels")}  # kind -> (slot, paints)
    painter_roles = {Painter.adapter_role: "code", GanPainter.adapter_role: "gan"}  # an adapter's role -> its kind
    entails: Callable[[str | None, str], bool | None] | None = None
    # the world's reading of a prompt it cannot parse ("unknown emoji 'guitar'"), named in a refusal's message
    # (attached with ``entails`` by :func:`lvg.worlds.attach_world`); the decision to refuse stays the planner's
    explain: Callable[[str], str | None] | None = None
    # the world's canonical caption of a layout, (layout, lang) -> str or None (attached likewise): restore checks a
    # restored image's read layout against a prompt with it, no LM in between
    describe: Callable[[Layout, str], str | None] | None = None

    def __init__(self, planner: LayoutPlanner, painter: Painter, image_tokenizer: ImageTokenizer, clip: Any = None,
                 generation_config: GenerationConfig = DEFAULT_GENERATION,
                 reader: ImageReader | None = None, editor: LayoutPlanner | None = None,
                 gan_painter: Any = None, world: str | None = None, code_painter: Any = None,
                 restorer: Any = None, reading_lm: LayoutPlanner | None = None):  # fmt: skip
        """``reading_lm``: the LM the reader reads with when it is another component's (one LM that plans and reads:
        the planner itself), so the folder stores it once; the reader must then be built on it
        (``ImageReader(detector, reading_lm.lm, reading_lm.text_tokenizer, reading_lm.vocab, lm_shared=True)``)."""
        if reading_lm is not None and (reader is None or reader.lm is not reading_lm.lm):
            raise ValueError(
                "reading_lm is the LM the reader reads with: give a reader built on it (ImageReader("
                "detector, reading_lm.lm, reading_lm.text_tokenizer, reading_lm.vocab, lm_shared=True))"
            )
        if reader is not None and reader.lm_shared and reading_lm is None:
            raise ValueError(
                "the reader shares its LM (lm_shared=True), which is saved as the pipeline's reading_lm: "
                "give that component as reading_lm"
            )
        for name, p in (("painter", painter), ("gan_painter", gan_painter), ("code_painter", code_painter)):
            problem = None if p is None else painter_mismatch(p, image_tokenizer)
            if problem:
                raise ValueError(f"the {name} {problem}")
        canvas = planner.vocab.layout.canvas
        if restorer is not None and restorer.config.canvas != canvas:
            raise ValueError(f"the restorer takes {restorer.config.canvas}x{restorer.config.canvas} images, but the "
                             f"planner's canvas is {canvas}x{canvas}")  # fmt: skip
        seconds = {"gan_painter": gan_painter, "code_painter": code_painter}
        for kind, (slot, paints) in self.painter_slots.items():
            second = seconds[slot]
            if second is not None and second.paints != paints:
                raise ValueError(f"the {slot} must be a {kind} painter (one that paints {paints}), got a "
                                 f"{type(second).__name__}")  # fmt: skip
        self.planner, self.painter, self.image_tokenizer, self.clip = planner, painter, image_tokenizer, clip
        self.generation_config = generation_config  # the defaults of __call__ and plan
        self.reader = reader  # image -> layout -> text (captions, answers, verify); None: this folder cannot read
        self.reading_lm = reading_lm  # the reader's LM where another component holds it (the planner); None: its own
        self.editor = editor  # instruction + layout -> edited layout (pipe.edit); None: this folder cannot edit
        self.gan_painter = gan_painter  # a second painter the folder offers (use_painter("gan")); None: none
        self.code_painter = code_painter  # the same for a code painter (use_painter("code")); None: none
        self.restorer = restorer  # damaged image -> clean image, run first by restore(); None: read and paint again
        if world is not None and (not isinstance(world, str) or not world):
            raise ValueError(f"world must be a world's name (e.g. 'emoji'), got {world!r}")
        self.world = world  # the world its models were trained on (model_index.json "world"); None: Shapes World
        self.world_source: Path | None = None  # the model_index.json that declared it

    def use_painter(self, which: str = "default") -> PlannedPipeline:
        """This pipeline painting with ``which`` painter: ``"default"`` (the folder's ``painter``: this pipeline),
        ``"gan"`` or ``"code"`` (this pipeline when its painter is of that kind, else a new pipeline sharing every
        other component whose painter is the folder's ``gan_painter`` / ``code_painter``)."""
        if which not in self.painter_options:
            raise ValueError(f"painter must be one of {list(self.painter_options)}, got {which!r}")
        if which == "default":
            return self
        second = self.painter_of(which)
        if second is self.painter:
            return self
        if second is None:
            slot = self.painter_slots[which][0]
            raise ValueError(f"this model folder paints with a {type(self.painter).__name__} and has no {slot} "
                             "(model_index.json lists none): paint with the default painter, or add one with "
                             f"`lvg assemble --{slot.replace('_', '-')} DIR`")  # fmt: skip
        out = PlannedPipeline(self.planner, second, self.image_tokenizer, self.clip, self.generation_config,
                              self.reader, self.editor, world=self.world, restorer=self.restorer,
                              reading_lm=self.reading_lm)  # fmt: skip
        out.entails, out.explain, out.describe = self.entails, self.explain, self.describe
        return out

    def painter_of(self, which: str) -> Any:
        """The folder's ``which`` (``"code"`` or ``"gan"``) painter: its ``painter`` when it is of that kind, else its
        ``code_painter`` / ``gan_painter`` (None: it has none). What :meth:`use_painter`, :meth:`load_adapter` and the
        server's adapter matching all mean by "the code painter" and "the GAN painter"."""
        slot, paints = self.painter_slots[which]
        return self.painter if self.painter.paints == paints else getattr(self, slot)

    @classmethod
    def painter_of_adapters(cls, paths: list[str | os.PathLike]) -> str | None:
        """``"code"`` or ``"gan"``: the kind of painter the painter adapters among ``paths`` adapt (their
        ``lvg_adapter.json`` role), None when none is a painter adapter. A model given such an adapter paints with
        that painter (:meth:`use_painter`), so the words it learned are painted; adapters of both kinds are an
        error."""
        from lvg.models.adapter_files import adapter_json

        roles = {(adapter_json(p) or {}).get("role") for p in paths}
        kinds = {cls.painter_roles[role] for role in roles if role in cls.painter_roles}
        if len(kinds) > 1:
            raise ValueError(f"{', '.join(map(str, paths))}: a code-painter and a GAN-painter adapter together; a model "
                             "paints with one painter, so give the adapter of that one")  # fmt: skip
        return kinds.pop() if kinds else None

    @classmethod
    def painter_folder(cls, path: str | os.PathLike, which: str) -> Path:
        """The folder of the ``which`` (``"code"`` or ``"gan"``) painter ``path`` names: ``path`` itself when it is a
        painter folder (``config.json`` + ``model.safetensors``), else a planned model folder's painter of that kind
        as its ``model_index.json`` declares it (``painter/`` when it is one, else ``code_painter/`` /
        ``gan_painter/``). What a fine-tuning ``base`` names."""
        path = Path(path)
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return path
        slot, _ = cls.painter_slots[which]
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(f"{path} is neither a painter folder (no config.json + model.safetensors) nor a "
                                    f"model folder (no model_index.json) with a {which} painter (painter/ or {slot}/)")  # fmt: skip
        index = ModelIndex.read(path)
        for name in ("painter", slot):
            if name in index.components and index.classes.get(name, cls.component_classes[name]) == \
                    cls.component_classes[slot]:  # fmt: skip
                return index.component(name)
        raise FileNotFoundError(f"{index.file} declares no {which} painter (neither painter/ nor {slot}/ is a "
                                f"{cls.component_classes[slot]})")  # fmt: skip

    def load_adapter(self, *paths: str | os.PathLike) -> PlannedPipeline:
        """Apply adapters to this pipeline, in place; returns the pipeline. Each one's ``lvg_adapter.json`` names its
        role: a reading-LM adapter (``lvg train reading-lm`` with ``finetune.method=lora``) goes on the reader's LM, a
        planner adapter (``lvg train planner`` with ``finetune.method`` lora, adapter or prefix:
        ``OUT/adapter``) goes on the planner (LoRA folded into its weights; bottleneck adapters and a prefix
        attached), a painter adapter (``lvg train painter`` with ``finetune.method=lora``: ``OUT/painter_adapter``) is
        folded into the painter, a GAN-painter adapter (``lvg train gan-painter``, the same) into the painter when it
        is a GAN painter, else into the ``gan_painter`` (a code-painter adapter likewise into the ``code_painter`` of a
        folder that paints with its GAN painter). Each must have been trained on this model's component (else a
        ValueError). Labels whose words the painter lacks can be planned but not painted (a warning names them: adapt
        the painter too)."""
        from lvg.models.adapter_files import adapter_json
        from lvg.models.adapters import load_adapter
        from lvg.models.painter_adapters import load_painter_adapter

        planner_adapters = []
        for path in paths:
            role = (adapter_json(path) or {}).get("role")
            if role == "reading LM":  # (a reader that shared the planner's LM reads with its own adapted copy)
                self.reader, self.reading_lm = self._adapted_reader(path), None
            elif role not in self.painter_roles:
                planner_adapters.append(path)
            else:  # the folder's painter of the adapter's kind: its painter, or the second painter of that kind
                kind = self.painter_roles[role]
                target, slot = self.painter_of(kind), self.painter_slots[kind][0]
                if target is None:
                    raise ValueError(f"{path} is a {'GAN' if kind == 'gan' else 'code'}-painter adapter; this model "
                                     f"paints with a {type(self.painter).__name__} and has no {slot}")  # fmt: skip
                adapted = load_painter_adapter(target, path).to(self.device)
                setattr(self, "painter" if target is self.painter else slot, adapted)
        for path in planner_adapters:
            lm, vocab, tok = load_adapter(self.planner.lm, self.planner.vocab, self.planner.text_tokenizer, path,
                                          "planner")  # fmt: skip
            self.planner = LayoutPlanner(lm.to(self.device), tok, vocab)
        unknown = sorted({w for label in self.planner.vocab.layout.labels for w in label.split()}
                         - set(self.painter.config.label_words))  # fmt: skip
        if planner_adapters and unknown:  # planning works; painting such a label is a LayoutError naming the word
            some = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
            warnings.warn(f"{', '.join(map(str, planner_adapters))} plans labels with words this model's painter cannot "
                          f"paint ({some}): adapt the painter to them too (lvg train painter with "
                          "finetune.method=lora) to generate images of them", stacklevel=2)  # fmt: skip
        return self

    def _adapted_reader(self, path: str | os.PathLike) -> ImageReader:
        """This pipeline's reader with the reading-LM adapter at ``path`` (its words and labels added)."""
        from lvg.models.adapters import load_adapter

        if self.reader is None:
            raise ValueError(f"{path} is a reading-LM adapter; this model folder has no reader")
        r = self.reader
        lm, vocab, tok = load_adapter(r.lm, r.vocab, r.text_tokenizer, path, "reading LM")
        return ImageReader(r.detector, lm.to(self.device), tok, vocab)

    @property
    def can_edit(self) -> bool:
        """Whether this pipeline edits images by instruction (it has an editor; the server answers 501 otherwise)."""
        return self.editor is not None and self.reader is not None

    @property
    def can_caption(self) -> bool:
        """Whether this pipeline reads images (the server answers 501 and eval skips captions otherwise)."""
        return self.reader is not None

    @property
    def text_tokenizer(self) -> PreTrainedTokenizerBase:
        """The planner's text tokenizer (prompts are read with it)."""
        return self.planner.text_tokenizer

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt, in text tokens, the planner reads."""
        return self.planner.vocab.max_text_tokens

    # ------------------------------------------------------------------ persistence

    @classmethod
    def component_kwargs(cls, name: str, loaded: dict[str, Any]) -> dict[str, Any]:
        """The reader of a folder that declares a ``reading_lm`` reads with it (its ``reader/`` holds the detector)."""
        return {"reading_lm": loaded["reading_lm"]} if name == "reader" and loaded.get("reading_lm") else {}

    @classmethod
    def _from_index(cls, index: ModelIndex) -> PlannedPipeline:
        """Build from the components ``index`` declares, with its ``generation_config`` (sampling defaults)."""
        parts = cls.load_components(index)
        gen = index.data.get("generation_config", {})
        try:
            gen = GenerationConfig.from_kwargs(DEFAULT_GENERATION, **gen)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{index.file}: generation_config: {e}") from None
        for name in ("painter", "gan_painter", "code_painter"):
            problem = None if parts[name] is None else painter_mismatch(parts[name], parts["image_tokenizer"])
            if problem:
                raise ValueError(f"{index.component(name) / 'config.json'}: the {name} {problem} "
                                 f"({index.component('image_tokenizer')})")  # fmt: skip
        world = index.data.get("world")
        if world is not None and (not isinstance(world, str) or not world):
            raise ValueError(f'{index.file}: world must be a world\'s name (e.g. "emoji"), got {world!r}')
        if parts["reading_lm"] is not None and parts["reader"] is None:
            raise ValueError(f"{index.file}: reading_lm is the LM the reader reads with, and no reader is declared")
        pipe = cls(**parts, generation_config=gen, world=world)
        pipe.world_source = index.file  # where the world was declared (named when it is not a registered world)
        return pipe

    def _index_fields(self) -> dict[str, Any]:
        gen = {k: v for k, v in self.generation_config.to_dict().items() if k in SAMPLING_FIELDS and v is not None}
        return {"generation_config": gen} | ({"world": self.world} if self.world else {})

    # ------------------------------------------------------------------ generation

    def analyse(self, prompt: str | list[str], batch_size: int = 64,
                refusal_threshold: float | None = None) -> list[UnsupportedPromptError | None]:  # fmt: skip
        """What the planner makes of each prompt before drawing: None where it draws it, else the
        :class:`UnsupportedPromptError` it refuses it with (``.reason``: ``unknown`` words, ``count``,
        ``contradiction``, ``zero``). Deterministic: one forward pass per prompt. ``refusal_threshold`` (None: the
        model's own, ``generation_config.refusal_threshold``) as for generation."""
        prompts = prompt_list(prompt, batch_size)
        if refusal_threshold is None:
            refusal_threshold = self.generation_config.refusal_threshold
        reasons = self.planner.refusals(self.planner.tokenize(prompts), batch_size, refusal_threshold)
        return [None if r is None else self._refused(p, r) for p, r in zip(prompts, reasons, strict=True)]

    def _refused(self, prompt: str, reason: str) -> UnsupportedPromptError:
        lay = self.planner.vocab.layout
        knows = f"this model {describe_labels(lay.labels).removeprefix('it ')}, at most {lay.max_objects} per image"
        # the words the world cannot read, for a refusal of unknown words (its other reasons speak for themselves);
        # a world whose data is missing here explains nothing (the refusal itself is the planner's)
        detail = None
        if self.explain is not None and reason == "unknown":
            try:
                detail = self.explain(prompt)
            except (ValueError, OSError):
                detail = None
        return UnsupportedPromptError(prompt, reason, knows, detail=detail)

    def _supported(self, prompts: list[str], text_ids: list[list[int]], cfg: GenerationConfig,
                   batch_size: int) -> list[str | None]:  # fmt: skip
        """Each prompt's refusal (None: drawn); without ``cfg.allow_unsupported`` the first refusal is raised."""
        reasons = self.planner.refusals(text_ids, batch_size, cfg.refusal_threshold)
        if not cfg.allow_unsupported:
            for p, r in zip(prompts, reasons, strict=True):
                if r is not None:
                    raise self._refused(p, r)
        return reasons

    def plan(self, prompt: str | list[str], config: GenerationConfig | None = None, *, batch_size: int = 64,
             seeds: list[int] | None = None, generator: torch.Generator | None = None,
             **settings: Any) -> list[Layout]:  # fmt: skip
        """``num_images`` layouts per prompt; layout ``j`` uses seed ``seed + j`` (or ``seeds[j]``).

        Settings as for :meth:`__call__` (``guidance_scale``, ``temperature``, ``top_k``, ``top_p``, ``seed``).
        """
        cfg = GenerationConfig.from_kwargs(config or self.generation_config, **settings)
        prompts = prompt_list(prompt, batch_size)
        text_ids = self.planner.tokenize(prompts)
        self._supported(prompts, text_ids, cfg, batch_size)
        jobs = [t for t in text_ids for _ in range(cfg.num_images)]
        seeds = resolve_seeds(len(jobs), cfg.seed, seeds, generator)
        return self.planner.plan_tokens(jobs, seeds, cfg.guidance_scale, cfg.temperature, cfg.top_k, cfg.top_p,
                                        batch_size, label_temperature=cfg.label_temperature)  # fmt: skip

    @torch.inference_mode()
    def paint(self, layouts: list[Layout], batch_size: int = 64, seeds: list[int] | None = None,
              temperature: float = 0.0, steps: int = 1) -> tuple[list[Image.Image], torch.Tensor]:  # fmt: skip
        """Paint layouts -> (images, codes [N, h, w]); a layout the painter cannot express raises LayoutError.

        A code painter's codes (argmax, or drawn at ``temperature`` from ``seeds[i]``: ``painter_temperature``; a
        masked one in ``steps`` rounds: ``painter_steps``) are decoded by the image tokenizer; a pixel painter (the GAN painter) paints image ``i`` with the noise of
        ``seeds[i]`` (default 0), and ``codes`` are then the image tokenizer's codes of its images."""
        for lay in layouts:
            if not isinstance(lay, Layout):
                raise LayoutError(f"expected a Layout, got {type(lay).__name__}")
            try:
                self.planner.layout_tokenizer.check(lay)
            except LayoutError:  # a label the planner cannot plan may still be one a (painter-adapted) painter paints
                words = getattr(self.painter.config, "label_words", ())
                known = all(w in words for o in lay.objects for w in o.label.split())
                if not known or lay.canvas != self.planner.vocab.layout.canvas:
                    raise
        seeds = [0] * len(layouts) if seeds is None else seeds
        if temperature and self.painter.paints != "codes":  # never silently ignored
            raise ValueError(f"painter_temperature={temperature:g} samples a code painter's tokens; this painter paints "
                             "pixels and samples with its noise (the seed): leave painter_temperature at 0")  # fmt: skip
        if steps != 1 and not getattr(self.painter.config, "masked", False):
            raise ValueError(f"painter_steps={steps} needs a masked (MaskGIT) code painter; this one paints in one "
                             "step: leave painter_steps at 1")  # fmt: skip
        if self.painter.paints == "codes":
            codes = torch.cat([self.painter.paint(layouts[s : s + batch_size], seeds[s : s + batch_size],
                                                  temperature, steps).cpu()
                               for s in range(0, len(layouts), batch_size)])  # fmt: skip
            return decode_images(codes, self.image_tokenizer), codes
        pixels = torch.cat([self.painter.paint(layouts[s : s + batch_size], seeds[s : s + batch_size])
                            for s in range(0, len(layouts), batch_size)])  # fmt: skip  # uint8 [N, 3, H, W]
        tok = self.image_tokenizer
        codes = torch.cat([tok.encode(pixels[s : s + batch_size].to(tok.device)).cpu()
                           for s in range(0, len(pixels), batch_size)])  # fmt: skip
        return tensor_to_images(pixels.float() / 255), codes

    @torch.inference_mode()
    def __call__(self, prompt: str | list[str] | None = None, config: GenerationConfig | None = None, *,
                 layout: Layout | list[Layout] | None = None, generator: torch.Generator | None = None,
                 batch_size: int = 64, seeds: list[int] | None = None, **settings: Any) -> PlannedPipelineOutput:  # fmt: skip
        """Generate ``num_images`` images per prompt (image ``j`` with seed ``seed + j``), or paint ``layout``.

        ``config`` is a :class:`~lvg.sampling.GenerationConfig` (default: this folder's); its fields can also be
        given as keyword arguments: ``pipe(prompt, num_images=2, guidance_scale=1.0, seed=0)``. The seed picks the
        layout (the planner samples what the prompt leaves open: cells, unstated colours and sizes, jitter);
        painting is deterministic, so a seed reproduces its image byte for byte. ``rerank=K`` plans K candidate
        layouts per image and keeps the one CLIP scores highest against the prompt. A prompt the planner refuses
        (:meth:`analyse`) raises :class:`UnsupportedPromptError` with the reason, unless ``allow_unsupported=True``:
        then it is drawn as well as the planner can and ``output.unsupported`` names the reason.
        """
        cfg = GenerationConfig.from_kwargs(config or self.generation_config, **settings)
        if layout is not None:
            if prompt is not None:
                raise ValueError("give either prompt or layout, not both")
            if cfg.verify or cfg.rerank > 1:  # never silently ignored
                raise ValueError(f"verify={cfg.verify} and rerank={cfg.rerank} check images against their prompt; a "
                                 f"painted layout has none (paint with verify=0 and rerank=1)")  # fmt: skip
            layouts = [layout] if isinstance(layout, Layout) else list(layout)
            if not layouts:
                raise LayoutError("no layout given")
            seeds = resolve_seeds(len(layouts), cfg.seed, seeds, generator)  # a pixel painter's noise
            images, codes = self.paint(layouts, batch_size, seeds, cfg.painter_temperature, cfg.painter_steps)
            return PlannedPipelineOutput(images, codes, ["" for _ in layouts], seeds, [], layouts=layouts)
        if prompt is None:
            raise PromptError("give a prompt (or a layout to paint)")
        prompts = prompt_list(prompt, batch_size)
        if cfg.rerank > 1 and self.clip is None:
            raise ValueError("rerank > 1 needs a CLIP model: load a pipeline with a clip/ component")
        if cfg.verify and self.reader is None:  # before any planning
            raise ValueError("verify needs a reader (image -> text); this model folder has none")
        if cfg.verify and self.entails is None:
            raise ValueError("verify needs the world's caption check: set pipe.entails (lvg.load_pipeline does)")
        text_ids = self.planner.tokenize(prompts)
        reasons = self._supported(prompts, text_ids, cfg, batch_size)
        k = cfg.rerank
        jobs = [i for i in range(len(prompts)) for _ in range(cfg.num_images)]
        seeds = resolve_seeds(len(jobs), cfg.seed, seeds, generator)
        cand = [candidate_seed(s, c) for s in seeds for c in range(k)]
        cand_jobs = [i for i in jobs for _ in range(k)]
        layouts = self.planner.plan_tokens([text_ids[i] for i in cand_jobs], cand, cfg.guidance_scale,
                                           cfg.temperature, cfg.top_k, cfg.top_p, batch_size,
                                           label_temperature=cfg.label_temperature)  # fmt: skip
        images, codes = self.paint(layouts, batch_size, cand, cfg.painter_temperature, cfg.painter_steps)
        cand_prompts = [prompts[i] for i in cand_jobs]
        if k == 1:
            out = PlannedPipelineOutput(images, codes, cand_prompts, cand, [], layouts=layouts)
        else:
            keep, scores = best_by_clip(self.clip, images, cand_prompts, k)
            out = PlannedPipelineOutput([images[i] for i in keep], codes[keep], [cand_prompts[i] for i in keep],
                                        [cand[i] for i in keep], scores, layouts=[layouts[i] for i in keep])  # fmt: skip
        out.unsupported = [reasons[i] for i in jobs]
        if cfg.verify:
            self._verify(out, [text_ids[i] for i in jobs], seeds, cfg, batch_size)
        return out

    def _verify(self, out: PlannedPipelineOutput, text_ids: list[list[int]], seeds: list[int],
                cfg: GenerationConfig, batch_size: int) -> None:  # fmt: skip
        """Regenerate, up to ``cfg.verify`` more tries, each image whose own caption contradicts its prompt (try ``t``
        of image ``i`` uses candidate seed ``rerank - 1 + t`` of ``seeds[i]``); ``out`` is updated in place."""
        out.verified = self.agrees(out.images, out.prompts, batch_size)
        for t in range(1, cfg.verify + 1):
            redo = [i for i, ok in enumerate(out.verified) if ok is False]
            if not redo:
                break
            new_seeds = [candidate_seed(seeds[i], cfg.rerank - 1 + t) for i in redo]
            layouts = self.planner.plan_tokens([text_ids[i] for i in redo], new_seeds, cfg.guidance_scale,
                                               cfg.temperature, cfg.top_k, cfg.top_p, batch_size,
                                               label_temperature=cfg.label_temperature)  # fmt: skip
            images, codes = self.paint(layouts, batch_size, new_seeds, cfg.painter_temperature, cfg.painter_steps)
            for j, ok in enumerate(self.agrees(images, [out.prompts[i] for i in redo], batch_size)):
                if ok:
                    i = redo[j]
                    out.images[i], out.codes[i], out.seeds[i], out.layouts[i] = (
                        images[j],
                        codes[j],
                        new_seeds[j],
                        layouts[j],
                    )
                    out.verified[i] = True

    def agrees(self, images: list[Any], prompts: list[str], batch_size: int = 64) -> list[bool | None]:
        """Whether each image's own caption (read by this folder's reader) satisfies its prompt by :attr:`entails`;
        None where the prompt is outside the world's grammar (the check then cannot judge)."""
        reader = self._reader()
        if self.entails is None:
            raise ValueError("agrees needs the world's caption check: set pipe.entails (lvg.load_pipeline does)")
        caps = reader.caption_each(reader.read(images, batch_size), "en", batch_size=batch_size)
        return [self.entails(c, p) for c, p in zip(caps, prompts, strict=True)]

    def edit(
        self,
        image: Any,
        instruction: str | list[str],
        *,
        layout: Layout | None = None,
        seed: int = 0,
        temperature: float | None = None,
        allow_unsupported: bool = False,
        batch_size: int = 64,
        candidates: int | None = None,
    ) -> Any:
        """Edit an image by instruction (EN or ZH): "make the circle blue", "把正方形移到左上角". The reader reads its
        layout (or give ``layout``), the editor LM writes the edited layout, and the painter repaints only what
        changed: every object the edit leaves alone keeps its pixels. An instruction it cannot carry out (an object
        the image does not hold, words outside its world, a fifth object) raises :class:`UnsupportedPromptError`
        naming the reason, unless ``allow_unsupported``. A list of instructions is applied in turn (chained edits).
        ``candidates``: layouts the editor writes per edit, of which the likeliest is kept (default
        :data:`~lvg.pipelines.edit.EDIT_CANDIDATES`). Returns an :class:`~lvg.pipelines.edit.EditOutput`."""
        from lvg.pipelines.edit import edit

        return edit(self, image, instruction, layout=layout, seed=seed, temperature=temperature,
                    allow_unsupported=allow_unsupported, batch_size=batch_size, candidates=candidates)  # fmt: skip

    def restore(self, image: Any, prompt: str | list[str] | None = None, mask: Any = None, candidates: int = 8,
                seed: int = 0, batch_size: int = 64) -> Any:  # fmt: skip
        """Restore noisy, blurred, JPEG-damaged or holed image(s): the folder's restorer restores each pixel for
        pixel (without one, the reader reads what each shows and the painter paints it again); a ``prompt`` guides
        it, a ``mask`` (nonzero = missing) keeps the pixels outside it. Returns a
        :class:`~lvg.pipelines.restore.RestoreOutput` (``images``, ``layouts``, ``sources``)."""
        from lvg.pipelines.restore import restore

        return restore(self, image, prompt, mask, candidates, seed, batch_size)

    # ------------------------------------------------------------------ reading

    def _reader(self) -> ImageReader:
        if self.reader is None:
            raise ValueError(f"this {type(self).__name__} has no reader (image -> text); its folder has no reader/")
        return self.reader

    def read(self, image: Any, batch_size: int = 64) -> Layout | list[Layout]:
        """Image(s) (PIL, path or HWC uint8 array; a list for many) -> the layout the reader sees in each."""
        images = image if isinstance(image, (list, tuple)) else [image]
        layouts = self._reader().read(list(images), batch_size)
        return layouts if isinstance(image, (list, tuple)) else layouts[0]

    def caption(self, image: Any, lang: str = "en", num_beams: int = 1, max_new_tokens: int = 128,
                batch_size: int = 64) -> str | list[str]:  # fmt: skip
        """Caption one image or a list of them in the canonical grammar of ``lang`` ("en" or "zh")."""
        images = image if isinstance(image, (list, tuple)) else [image]
        if not images:
            raise ValueError("no images to caption")
        reader = self._reader()
        caps = reader.caption(reader.read(list(images), batch_size), lang, num_beams, max_new_tokens, batch_size)
        return caps if isinstance(image, (list, tuple)) else caps[0]

    def answer(self, image: Any, question: str | list[str], batch_size: int = 64) -> str | list[str]:
        """Answer a question (EN or ZH) about an image; a list of questions about one image, or a list of images
        with one question each. Questions outside what the reader knows get "cannot answer" / "无法回答"."""
        many_q, many_i = isinstance(question, (list, tuple)), isinstance(image, (list, tuple))
        questions = list(question) if many_q else [question]
        if many_i and not many_q:
            questions = questions * len(image)
        reader = self._reader()
        layouts = reader.read(list(image), batch_size) if many_i else reader.read([image]) * len(questions)
        if not layouts or len(layouts) != len(questions):
            raise ValueError(f"{len(layouts)} images for {len(questions)} questions")
        answers = reader.answer(layouts, questions, batch_size=batch_size)
        return answers if (many_q or many_i) else answers[0]
