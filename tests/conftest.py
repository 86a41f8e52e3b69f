"""Test-wide settings and shared fixtures."""

from pathlib import Path

import pytest
import torch

# Tests use tiny models: one thread is faster for them, and immune to OpenMP oversubscription
# when other processes share the machine's cores.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"


def overfit(module: torch.nn.Module, loss_fn, steps: int, lr: float = 3e-3) -> float:
    """``steps`` AdamW steps on ``loss_fn()`` (a scalar tensor) over ``module``'s parameters; returns the last loss."""
    opt = torch.optim.AdamW(module.parameters(), lr=lr)
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def lm_batch_loss(lm, batch: dict) -> torch.Tensor:
    """Next-token loss of a planner-style right-padded batch (input_ids, attention_mask, position_ids, labels)."""
    from lvg.models.planner import planner_loss

    logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"]).logits  # fmt: skip
    return planner_loss(logits, batch["labels"])


def make_tiny_pipeline(path: Path) -> Path:
    """Save a tiny untrained pipeline (shipped text tokenizer, 16-code image tokenizer, 2-layer LM) to ``path``."""
    from lvg.models.unified import VocabLayout, build_lm
    from lvg.pipelines.pipeline import Pipeline
    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
    from lvg.tokenizers.text import load_text_tokenizer

    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    img_tok = ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4]))
    layout = VocabLayout.from_tokenizers(text_tok, img_tok.codebook_size, 64, max_text_tokens=64)
    torch.manual_seed(0)
    return Pipeline(build_lm(layout, "tiny"), img_tok, text_tok, layout).save_pretrained(path)


def make_tiny_planned(path: Path, reader: bool = True, refusals: tuple[str, ...] = (), editor: bool = False) -> Path:
    """Save a tiny untrained planned pipeline (planner LM, painter, 16-code image tokenizer, and a reader unless
    ``reader=False``; the planner's vocabulary with ``refusals``; an untrained editor when ``editor``) to ``path``."""
    from lvg.models.painter import Painter
    from lvg.models.planner import PlannerSize, PlanVocab, build_planner_lm
    from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
    from lvg.tokenizers.text import load_text_tokenizer
    from lvg.train.painter import PainterModelConfig, shapes_world_painter_config
    from lvg.train.planner import shapes_world_layout_config

    torch.manual_seed(0)
    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(1, refusals))
    planner = LayoutPlanner(build_planner_lm(vocab, PlannerSize(32, 1, 2, 64)).eval(), text_tok, vocab)
    img_tok = ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4])).eval()
    painter = Painter(shapes_world_painter_config(8, [4, 4], PainterModelConfig(8, 16, 1))).eval()
    tiny_reader = make_tiny_reader(vocab, text_tok) if reader else None
    tiny_editor = None
    if editor:
        from lvg.worlds.shapes.edits import EDIT_REFUSALS

        edit_vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(1, EDIT_REFUSALS))
        tiny_editor = LayoutPlanner(
            build_planner_lm(edit_vocab, PlannerSize(32, 1, 2, 64)).eval(), text_tok, edit_vocab
        )
    return PlannedPipeline(planner, painter, img_tok, reader=tiny_reader, editor=tiny_editor).save_pretrained(path)


def write_layout_folder(path: Path, prompts: dict[str, tuple[str, list[int]]], rows: int = 8) -> Path:
    """A user imagefolder at ``path`` of ``rows`` white 64x64 images, cycling through ``prompts`` (text -> (label,
    box)): one object each, on a white background (what the fine-tuning tests adapt a planner to)."""
    import json

    from PIL import Image

    path.mkdir(parents=True)
    lines = []
    for i in range(rows):
        text, (label, box) = list(prompts.items())[i % len(prompts)]
        Image.new("RGB", (64, 64), "white").save(path / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "text": text, "background": "white", "canvas": 64,
                                 "objects": [{"label": label, "box": box}]}) + "\n")  # fmt: skip
    (path / "metadata.jsonl").write_text("".join(lines), encoding="utf-8")
    return path


def make_tiny_reader(vocab, text_tok):
    """A tiny untrained reader whose detector always sees objects (a high objectness bias), so every caption and
    answer path runs; the words it writes are noise."""
    from lvg.models.planner import PlannerSize, build_planner_lm
    from lvg.models.reader import Reader, ReaderConfig
    from lvg.pipelines.reading import ImageReader
    from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS

    detector = Reader(ReaderConfig(labels=list(SHAPES_WORLD_LABELS), backgrounds=list(SHAPES_WORLD_BACKGROUNDS),
                                   width=8, blocks=0)).eval()  # fmt: skip
    with torch.no_grad():
        detector.cls.bias[0] = 20.0
    return ImageReader(detector, build_planner_lm(vocab, PlannerSize(32, 1, 2, 64)).eval(), text_tok, vocab)


def make_tiny_hf_lm(path: Path) -> dict:
    """Save a tiny Hugging Face Llama with a character-level tokenizer (no lvg tokens) to ``path``; returns its vocab."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<|endoftext|>": 1, **{c: i + 2 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ")}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<|endoftext|>").save_pretrained(path)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=256)).save_pretrained(path)  # fmt: skip
    return vocab


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipe"))
