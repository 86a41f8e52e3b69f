"""Train the reading half of a planned model: the reader (image -> layout) and the reading LM (layout -> text).

    lvg train reader --config configs/reader-shapes.yaml [--resume] [key.sub=value ...]
    lvg train reading-lm --config configs/reading-lm-shapes.yaml [--resume] [key.sub=value ...]

The two are independent (the LM trains on true layouts), so they run side by side, one per core.

- **Reader**: each batch renders scenes from the contract's training distribution (the renderer is the
  data source, never part of the reader), some passed through the image tokenizer and back so the reader
  also reads what the painter's decoder draws, plus a little pixel noise. Validation: the fraction of
  held-out renders read exactly (every object's shape, colour, size and cell, and the background).
- **Reading LM**: captions and visual questions from :mod:`lvg.worlds.shapes.reading`, loss on the answer.
  Validation: caption exact match and question accuracy per type, from true held-out layouts.

Results: ``OUT/detector`` (reader) and ``OUT/reading_lm`` (``lm/``, ``text_tokenizer/``, ``plan_vocab.json``);
``lvg assemble --reader`` puts them together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lvg.data.imagefolder import batch_indices
from lvg.data.imagefolder import chunks as batch_chunks
from lvg.data.layout import Layout, reading_order
from lvg.models.adapters import FinetuneConfig, param_groups, start_from_base
from lvg.models.planner import (
    PlannerSize,
    PlanVocab,
    build_planner_lm,
    init_layout_embeddings,
    save_lm_folder,
)
from lvg.models.reader import Reader, ReaderConfig
from lvg.models.reading_lm import ReadingTokens, reading_batch, reading_prompt
from lvg.ranges import bounded, check_ranges
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.heldout import held_out_samples, images_tensor
from lvg.worlds.shapes.reading import ReadingDataConfig, make_reading_sample
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS, layout_from_scene
from lvg.worlds.shapes.world import CANVAS

from .common import TrainConfig
from .config import config_to_dict
from .folder import Folder, captions, held_out_loss
from .folder import images_tensor as folder_images
from .loop import WEIGHT, Shard, Task, full_precision, run
from .painter import scenes_for
from .planner import LM_ROWS_PER_CHUNK, folder_layout_config, lm_loss, shapes_world_layout_config

WORD_SAMPLES = 8000  # reading samples whose questions and answers finetune.new_words looks in

HELD_OUT = "lvg-reader-val"


# ----------------------------------------------------------------------------- the reader (detector)


@dataclass
class ReaderModelConfig:
    stride: int = 4
    width: int = 64
    blocks: int = 3


@dataclass
class ReaderTrainingConfig:
    model: ReaderModelConfig = field(default_factory=ReaderModelConfig)
    image_tokenizer: str | None = "models/shapes-default/image_tokenizer"  # None: renders only
    roundtrip_prob: float = 0.3  # share of each batch read after an image tokenizer round trip
    noise: float = 6.0  # pixel noise: each image gets Gaussian noise of std uniform in [0, noise]
    # share of each batch damaged first, each image one way (:func:`damage`): heavy noise, blur or JPEG, so the
    # reader reads what restore gives it (holes are not among them: restore knows their mask and fills them before
    # reading, which hole_prob teaches); 0: none
    damage_prob: float = bounded(0.0, 1.0, default=0.0)
    # share of each batch given one square hole (side 8-28 px) filled from its border as restore fills a masked hole
    # before reading (:func:`holes`), objects more than half inside it left out of the targets: the reader learns to
    # read objects a hole cuts into without seeing objects in the smooth fill; 0: none
    hole_prob: float = bounded(0.0, 1.0, default=0.0)
    data_seed: int = 0
    eval_scenes: int = 500
    imagefolder: str | None = None  # train on a user imagefolder whose metadata.jsonl rows carry layouts instead
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/reader"))

    def __post_init__(self) -> None:
        check_ranges(self)


DAMAGES = ("noise", "blur", "jpeg")


def damage(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """uint8 images [B, 3, S, S], each with probability ``prob`` damaged one way, its strength uniform in a range:
    Gaussian noise of std 10-70 grey levels, Gaussian blur of sigma 0.5-3 px, or JPEG at quality 5-60. Seeded by
    ``gen``."""
    import torch.nn.functional as F

    from lvg.images import jpeg

    out = x.clone()
    for i in (torch.rand(len(x), generator=gen) < prob).nonzero().flatten().tolist():
        kind = DAMAGES[int(torch.randint(len(DAMAGES), (1,), generator=gen))]
        u = float(torch.rand(1, generator=gen))
        img = out[i].float()  # [3, S, S]
        if kind == "noise":
            img = img + torch.randn(img.shape, generator=gen) * (10 + 60 * u)
        elif kind == "blur":
            sigma = 0.5 + 2.5 * u
            r = int(3 * sigma + 0.999)
            k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
            k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)  # [3, 1, 1, K]: separable, per channel
            img = F.conv2d(F.pad(img[None], (r, r, 0, 0), mode="replicate"), k, groups=3)
            img = F.conv2d(F.pad(img, (0, 0, r, r), mode="replicate"), k.transpose(2, 3), groups=3)[0]
        else:
            img = torch.tensor(jpeg(out[i].permute(1, 2, 0).numpy(), int(5 + 55 * u))).permute(2, 0, 1).float()
        out[i] = img.round().clamp(0, 255).to(torch.uint8)
    return out


def holes(
    x: torch.Tensor, layouts: list[Layout], prob: float, gen: torch.Generator
) -> tuple[torch.Tensor, list[Layout]]:
    """uint8 images [B, 3, S, S] and their layouts, each image with probability ``prob`` given one square hole (side
    uniform in 8-28 px, anywhere) filled from its border (:func:`lvg.pipelines.restore.fill_holes`); an object whose
    box is more than half inside the hole leaves that image's layout. Seeded by ``gen``."""
    from lvg.pipelines.restore import fill_holes

    lays, size = list(layouts), x.shape[-1]
    hole = torch.zeros(len(x), size, size, dtype=torch.bool)
    for i in (torch.rand(len(x), generator=gen) < prob).nonzero().flatten().tolist():
        side = min(int(8 + 21 * float(torch.rand(1, generator=gen))), size)
        x0, y0 = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
        hole[i, y0 : y0 + side, x0 : x0 + side] = True
        square = (x0, y0, x0 + side, y0 + side)
        lays[i] = replace(lays[i], objects=tuple(o for o in lays[i].objects if not _mostly_inside(o.box, square)))
    return fill_holes(x, hole), lays  # (one batched fill: each image as alone)


def _mostly_inside(box: tuple[float, ...], square: tuple[int, ...]) -> bool:
    """Whether more than half of ``box`` (x0, y0, x1, y1) lies inside ``square``."""
    w = max(0.0, min(box[2], square[2]) - max(box[0], square[0]))
    h = max(0.0, min(box[3], square[3]) - max(box[1], square[1]))
    return w * h > 0.5 * (box[2] - box[0]) * (box[3] - box[1])


def reader_images(scenes: list, step_seed: str, cfg: ReaderTrainingConfig, image_tok) -> torch.Tensor:
    """Renders of ``scenes`` as uint8 [B, 3, S, S]: some round-tripped through the image tokenizer, all noised."""
    return augment(images_tensor([render(s) for s in scenes]), step_seed, cfg, image_tok)


def augment(x: torch.Tensor, step_seed: str, cfg: ReaderTrainingConfig, image_tok) -> torch.Tensor:
    """uint8 images [B, 3, S, S], some round-tripped through the image tokenizer, all noised (seeded by
    ``step_seed``)."""
    x = x.clone()
    gen = torch.Generator().manual_seed(random.Random(step_seed).getrandbits(62))
    if image_tok is not None and cfg.roundtrip_prob > 0:
        pick = (torch.rand(len(x), generator=gen) < cfg.roundtrip_prob).nonzero().flatten()
        if len(pick):
            with torch.inference_mode():
                back = image_tok.decode(image_tok.encode(x[pick].to(image_tok.device))).cpu()  # [n, 3, H, W] in [0, 1]
                x[pick] = (back * 255).round().to(torch.uint8)
    if cfg.damage_prob > 0:  # (no draw at 0: the stream stays as it was)
        x = damage(x, cfg.damage_prob, gen)
    std = torch.rand(len(x), 1, 1, 1, generator=gen) * cfg.noise
    return (x.float() + torch.randn(x.shape, generator=gen) * std).round().clamp(0, 255).to(torch.uint8)


@torch.inference_mode()
def validate_reader(reader: Reader, images: torch.Tensor, scenes: list) -> dict[str, float]:
    from lvg.eval.reading import layout_is_scene

    was = reader.training
    reader.eval()
    layouts = [lay for i in range(0, len(images), 128) for lay in reader.detect(images[i : i + 128])]
    reader.train(was)
    return {"val/exact": sum(layout_is_scene(lay, s) for lay, s in zip(layouts, scenes)) / len(scenes)}


@torch.inference_mode()
def labels_exact(reader: Reader, images: torch.Tensor, layouts: list) -> float:
    """The share of images whose read layout has the true background and the true labels (as a multiset)."""
    was = reader.training
    reader.eval()
    read = [lay for i in range(0, len(images), 128) for lay in reader.detect(images[i : i + 128])]
    reader.train(was)
    key = lambda lay: (lay.background, sorted(o.label for o in lay.objects))  # noqa: E731
    return sum(key(a) == key(b) for a, b in zip(read, layouts)) / len(layouts)


class ReaderTask(Task):
    """Image -> layout (a detector), on renders some of which went through the image tokenizer and back."""

    name = "reader"

    def __init__(self, cfg: ReaderTrainingConfig, device: torch.device):
        from lvg.tokenizers.image import ImageTokenizer

        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.image_tok = None
        if cfg.image_tokenizer and cfg.roundtrip_prob > 0:
            self.image_tok = ImageTokenizer.from_pretrained(cfg.image_tokenizer, device=device)
        m = cfg.model
        self.folder = None
        if cfg.imagefolder:  # a user folder: its images, layouts (labels, backgrounds) and canvas
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction, layouts=True)
            if self.image_tok is not None:
                self.folder.check_canvas(self.image_tok.config.image_size, f"the image tokenizer {cfg.image_tokenizer}")
            lays = [r["layout"] for r in self.folder.train + self.folder.val]
            labels, backgrounds = (
                sorted({o.label for lay in lays for o in lay.objects}),
                sorted({la.background for la in lays}),
            )
            canvas, max_objects = self.folder.canvas, max(1, max(len(lay.objects) for lay in lays))
        else:
            labels, backgrounds, canvas, max_objects = (
                list(SHAPES_WORLD_LABELS),
                list(SHAPES_WORLD_BACKGROUNDS),
                CANVAS,
                4,
            )
        self.reader = Reader(ReaderConfig(labels=labels, backgrounds=backgrounds, canvas=canvas, stride=m.stride,
                                          width=m.width, blocks=m.blocks, max_objects=max_objects)).to(device).train()  # fmt: skip
        self.modules = {"reader": self.reader}
        if self.folder is None:
            val_samples = held_out_samples(cfg.eval_scenes)
            self.val_images = images_tensor([s.image for s in val_samples])
            self.val_scenes = [s.scene for s in val_samples]

    def batch(self, step: int, shard: Shard) -> dict:
        B = self.cfg.train.batch_size
        if self.folder is not None:
            idx = self.folder.indices(step, shard, B, f"lvg-reader-folder:{self.cfg.data_seed}")
            seed = f"lvg-reader-aug:{self.cfg.data_seed}:{step}" + ("" if shard.count == 1 else f":{shard.index}")
            return {"images": folder_images(self.folder.train_images, idx), "seed": seed,
                    "layouts": [self.folder.train[i]["layout"] for i in idx]}  # fmt: skip
        scenes = [scenes_for(f"lvg-reader:{self.cfg.data_seed}", step * B + j, 1)[0] for j in shard.rows(B)]
        seed = f"lvg-reader-aug:{self.cfg.data_seed}:{step}"  # each shard draws its own augmentation
        return {"scenes": scenes, "seed": seed if shard.count == 1 else f"{seed}:{shard.index}"}

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        if "scenes" in batch:
            with full_precision(self.device):
                images = reader_images(batch["scenes"], batch["seed"], self.cfg, self.image_tok)
            layouts = [layout_from_scene(s) for s in batch["scenes"]]
        else:  # a user folder's images (augmented unless held out: seed None) and layouts
            with full_precision(self.device):
                images = batch["images"] if batch["seed"] is None else augment(batch["images"], batch["seed"], self.cfg,
                                                                               self.image_tok)  # fmt: skip
            layouts = batch["layouts"]
        if self.cfg.hole_prob > 0 and batch["seed"] is not None:  # (no draw at 0: the stream stays as it was)
            gen = torch.Generator().manual_seed(random.Random(f"{batch['seed']}:holes").getrandbits(62))
            images, layouts = holes(images.cpu(), layouts, self.cfg.hole_prob, gen)
        t = self.reader.targets(layouts)
        o = self.reader(images)
        return self.reader.loss({k: v.float() for k, v in o.items()}, t)

    def validate(self) -> dict[str, float]:
        if self.folder is None:
            return validate_reader(self.reader, self.val_images, self.val_scenes)
        if not self.folder.val:  # a user folder: the loss on its held-out rows and how many were read right
            return {}
        val, images = self.folder.val, self.folder.val_images
        chunks = self.folder.val_chunks(self.cfg.train.batch_size)
        loss = held_out_loss(self, (({"images": folder_images(images, c), "seed": None,
                                      "layouts": [val[i]["layout"] for i in c]}, len(c)) for c in chunks))  # fmt: skip
        return {"val/loss": loss, "val/labels_exact": labels_exact(self.reader, folder_images(images, range(len(val))),
                                                                   [r["layout"] for r in val])}  # fmt: skip

    def summary(self, metrics: dict[str, float]) -> str:
        return f"exact {metrics['val/exact']:.3f}" if self.folder is None else super().summary(metrics)

    def save(self, out: Path) -> Path:
        return self.reader.save_pretrained(out / "detector")


def train_reader(cfg: ReaderTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) reader training; returns the saved reader folder ``OUT/detector``."""
    return run(cfg.train, lambda device: ReaderTask(cfg, device), resume, stop_after)


# ----------------------------------------------------------------------------- the reading LM


@dataclass
class ReadingLMTrainingConfig:
    size: PlannerSize = field(default_factory=lambda: PlannerSize(128, 4, 4, 384))
    text_tokenizer: str = "models/shapes-default/text_tokenizer"
    bins_per_px: int = 1  # must match the planner's (the reader's layouts are written in the same tokens)
    max_text_tokens: int = 96
    # start the layout tokens' embeddings at their words (labels, backgrounds) and on a smooth curve (locations):
    # lvg.models.planner.init_layout_embeddings; False: the Llama's random init
    init_layout_from_words: bool = False
    # start from a trained reading LM (a model folder or its reader/) and adapt it: full, freeze or lora
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    data: ReadingDataConfig = field(default_factory=ReadingDataConfig)
    eval_captions: int = 100  # held-out layouts captioned per language at each validation
    eval_questions: int = 20  # held-out questions per type and language
    # a user imagefolder whose rows carry layouts: the LM learns layout -> the row's caption (text: EN, text_zh: ZH);
    # captions only (a folder's questions cannot be derived without a world's grammar)
    imagefolder: str | None = None
    val_fraction: float = 0.1  # share of the imagefolder's rows held out for validation
    # a world whose plug-in provides a reading stream (lvg.worlds.Reading), e.g. "emoji": captions and questions of
    # its scenes instead of Shapes World's (data.seed and data.caption_prob apply; the other data fields do not)
    world: str | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/reading-lm"))

    def __post_init__(self) -> None:
        if self.world is not None and self.imagefolder is not None:
            raise ValueError("give a reading LM either world or imagefolder, not both")


@torch.inference_mode()
def validate_reading_lm(lm, text_tok, vocab: PlanVocab, cfg: ReadingLMTrainingConfig) -> dict[str, float]:
    from lvg.eval.reading import evaluate_vqa
    from lvg.eval.shapes import score_captions
    from lvg.pipelines.reading import ImageReader

    was = lm.training
    lm.eval()
    reader = ImageReader(None, lm, text_tok, vocab)  # the LM alone: it reads true layouts
    out: dict[str, float] = {}
    samples = held_out_samples(cfg.eval_captions) if cfg.eval_captions else []
    layouts = [reading_order(layout_from_scene(s.scene)) for s in samples]
    for lang in ("en", "zh"):
        if samples:
            out[f"val/caption_{lang}"] = score_captions(reader.caption(layouts, lang), samples, lang)["exact_match"]
        if cfg.eval_questions:
            ask = lambda scenes, qs: reader.answer([reading_order(layout_from_scene(s)) for s in scenes], qs)  # noqa: E731
            r = evaluate_vqa(ask, cfg.eval_questions, lang, images=False)
            out[f"val/vqa_{lang}"] = r["overall"]
            out.update({f"val/{lang}_{k}": v for k, v in r["types"].items()})
    lm.train(was)
    return out


@torch.inference_mode()
def validate_world_reading(lm, text_tok, vocab: PlanVocab, reading, cfg: ReadingLMTrainingConfig) -> dict[str, float]:
    """A world's reading stream, held out: caption exact match per language and question accuracy per type (the LM
    alone, on true layouts)."""
    from lvg.pipelines.reading import ImageReader

    was = lm.training
    lm.eval()
    reader = ImageReader(None, lm, text_tok, vocab)
    out: dict[str, float] = {}
    caps = [reading.sample(i, reading.held_out_seed, 1.0) for i in range(2 * cfg.eval_captions)]
    for lang in ("en", "zh"):
        mine = [s for s in caps if s.lang == lang]
        if mine:
            said = reader.caption([s.layout for s in mine], lang)
            out[f"val/caption_{lang}"] = sum(a.strip() == s.answer for a, s in zip(said, mine)) / len(mine)
        if cfg.eval_questions:
            items = reading.held_out_questions(cfg.eval_questions, lang)
            said = reader.answer([reading.layout(scene) for scene, _ in items], [q.text for _, q in items])
            for kind in reading.question_types:
                right = [a == q.answer for a, (_, q) in zip(said, items) if q.kind == kind]
                out[f"val/{lang}_{kind}"] = sum(right) / len(right)
            out[f"val/vqa_{lang}"] = sum(a == q.answer for a, (_, q) in zip(said, items)) / len(items)
    lm.train(was)
    return out


class ReadingLMTask(Task):
    """Layout -> caption, question + layout -> answer (loss on the answer tokens, weighted by their number)."""

    name = "reading LM"
    rows_per_chunk = LM_ROWS_PER_CHUNK  # rows per forward pass (see lm_loss); benchmarks/train_speed.py varies it

    def __init__(self, cfg: ReadingLMTrainingConfig, device: torch.device):
        self.cfg, self.device, self.config = cfg, device, config_to_dict(cfg)
        self.adapted = None
        self.folder = self.reading = None
        if cfg.imagefolder:  # captions of a user folder's layouts (no images needed)
            self.folder = Folder(cfg.imagefolder, cfg.val_fraction, layouts=True, images=False)
            lay_cfg = folder_layout_config(self.folder.train + self.folder.val, cfg.bins_per_px)
            self.train_captions, self.val_captions = captions(self.folder.train), captions(self.folder.val)
        elif cfg.world:  # a world plug-in's reading stream
            from lvg.tokenizers.layout import LayoutTokenizerConfig
            from lvg.worlds import get_world

            self.reading = get_world(cfg.world).reading
            if self.reading is None:
                raise ValueError(f"world {cfg.world!r} has no reading stream (lvg.worlds.World.reading)")
            r = self.reading
            lay_cfg = LayoutTokenizerConfig(r.labels, r.backgrounds, r.canvas, cfg.bins_per_px, 4)
        else:
            lay_cfg = shapes_world_layout_config(cfg.bins_per_px)
        if cfg.finetune.base:  # the base's layers and text tokenizer (cfg.size and text_tokenizer are not used)
            # the base's labels stay readable; finetune.new_words looks in the texts the LM reads and writes
            texts = self.texts(WORD_SAMPLES) if cfg.finetune.new_words else []
            self.adapted = start_from_base(cfg.finetune, "reading LM", lay_cfg, texts)
            lm, self.text_tok, self.vocab = self.adapted.lm, self.adapted.text_tokenizer, self.adapted.vocab
        else:
            self.text_tok = load_text_tokenizer(cfg.text_tokenizer)
            self.vocab = PlanVocab.from_tokenizer(self.text_tok, lay_cfg, cfg.max_text_tokens)
            lm = build_planner_lm(self.vocab, cfg.size)
            if cfg.init_layout_from_words:
                init_layout_embeddings(lm, self.vocab, self.text_tok)
        self.tasks = ReadingTokens.from_tokenizer(self.text_tok)
        self.lm = lm.to(device).train()
        self.modules = {"lm": self.lm}

    def texts(self, n: int) -> list[str]:
        """The texts the LM reads and writes: a folder's captions, or the questions and answers of the first ``n``
        samples of the reading stream."""
        if self.folder is not None:
            return [c for _, _, c in self.train_captions]
        if self.reading is not None:
            samples = [self.reading.sample(i, self.cfg.data.seed, self.cfg.data.caption_prob) for i in range(n)]
        else:
            samples = [make_reading_sample(i, self.cfg.data) for i in range(n)]
        return [t for s in samples for t in (s.question, s.answer) if t]

    def batch(self, step: int, shard: Shard) -> list[dict[str, torch.Tensor]]:
        """Captions are longer than questions: each kind is padded on its own (the same loss, less padding)."""
        B, L, vocab, tok = self.cfg.train.batch_size, self.vocab.max_text_tokens, self.vocab, self.text_tok
        if self.folder is not None:
            idx = batch_indices(
                len(self.train_captions), step, B, f"lvg-read-folder:{self.cfg.data.seed}", shard.rows(B)
            )
            return [self.caption_batch(self.folder.train, [self.train_captions[i] for i in idx])]
        if self.reading is not None:
            samples = [self.reading.sample(step * B + j, self.cfg.data.seed, self.cfg.data.caption_prob)
                       for j in shard.rows(B)]  # fmt: skip
        else:
            samples = [make_reading_sample(step * B + j, self.cfg.data) for j in shard.rows(B)]
        q_ids = tok([s.question or "" for s in samples], add_special_tokens=False)["input_ids"]
        a_ids = tok([s.answer for s in samples], add_special_tokens=False)["input_ids"]
        enc = vocab.layout_tokenizer.encode
        prompts = [reading_prompt(vocab, self.tasks, enc(s.layout), lang=s.lang) if s.question is None
                   else reading_prompt(vocab, self.tasks, enc(s.layout), question_ids=q[:L])
                   for s, q in zip(samples, q_ids)]  # fmt: skip
        groups = ([i for i, s in enumerate(samples) if (s.question is None) == cap] for cap in (True, False))
        return [reading_batch([prompts[i] for i in g], [a_ids[i] for i in g], vocab) for g in groups if g]

    def caption_batch(self, rows: list[dict], items: list[tuple[int, str, str]]) -> dict[str, torch.Tensor]:
        """Layout -> caption rows of a user folder's ``(row, lang, caption)`` items (layouts in reading order)."""
        enc = self.vocab.layout_tokenizer.encode
        prompts = [reading_prompt(self.vocab, self.tasks, enc(reading_order(rows[i]["layout"])), lang=lang)
                   for i, lang, _ in items]  # fmt: skip
        answers = self.text_tok([c for _, _, c in items], add_special_tokens=False)["input_ids"]
        return reading_batch(prompts, answers, self.vocab)

    def validate_folder(self) -> dict[str, float]:
        """The loss on the held-out rows' captions and, per language, the share written exactly."""
        from lvg.pipelines.reading import ImageReader

        rows, items = self.folder.val, self.val_captions
        if not items:
            return {}
        chunks = batch_chunks(len(items), self.cfg.train.batch_size)
        out = {"val/loss": held_out_loss(self, (([self.caption_batch(rows, items[c.start : c.stop])], len(c))
                                                for c in chunks))}  # fmt: skip
        was = self.lm.training
        self.lm.eval()
        reader = ImageReader(None, self.lm, self.text_tok, self.vocab)  # the LM alone: it reads true layouts
        for lang in ("en", "zh"):
            mine = [(i, c) for i, la, c in items if la == lang and rows[i]["layout"].objects]
            if mine:
                said = reader.caption([reading_order(rows[i]["layout"]) for i, _ in mine], lang)
                out[f"val/caption_{lang}"] = sum(a.strip() == c.strip() for a, (_, c) in zip(said, mine)) / len(mine)
        self.lm.train(was)
        return out

    def loss(self, batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        loss_sum, tokens = torch.zeros((), device=self.device), 0
        for part in batch:
            lm = lm_loss(self.lm, part, self.device, self.rows_per_chunk)
            loss_sum, tokens = loss_sum + lm["loss"] * int(lm[WEIGHT]), tokens + int(lm[WEIGHT])
        return {"loss": loss_sum / tokens, WEIGHT: tokens}  # the mean over every answer token of the batch

    def validate(self) -> dict[str, float]:
        if self.folder is not None:
            return self.validate_folder()
        if self.reading is not None:
            return validate_world_reading(self.lm, self.text_tok, self.vocab, self.reading, self.cfg)
        return validate_reading_lm(self.lm, self.text_tok, self.vocab, self.cfg)

    def summary(self, metrics: dict[str, float]) -> str:
        return ", ".join(f"{k[4:]} {v:.3f}" for k, v in metrics.items() if k[4:].startswith(("caption", "vqa")))

    def param_groups(self) -> list:
        """Under fine-tuning, LoRA's B and low-rank rows may train faster (``finetune.lr_ratio``, LoRA+)."""
        return param_groups(self.lm, self.cfg.finetune) if self.adapted else super().param_groups()

    def save(self, out: Path) -> Path:
        """``OUT/reading_lm`` (any LoRA merged in) and, for LoRA, bottleneck adapters and prefixes, the adapter alone
        in ``OUT/adapter``; the last two cannot be merged, so they write no ``OUT/reading_lm`` (returns the adapter)."""
        lm = self.adapted.save(self.lm, out, "reading LM") if self.adapted else self.lm
        if lm is None:
            return out / "adapter"
        return save_lm_folder(out / "reading_lm", lm, self.text_tok, self.vocab)


def train_reading_lm(cfg: ReadingLMTrainingConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Run (or resume) reading-LM training; returns the saved folder ``OUT/reading_lm``."""
    return run(cfg.train, lambda device: ReadingLMTask(cfg, device), resume, stop_after)
