"""Test-wide settings and shared fixtures."""

from pathlib import Path

import pytest
import torch

# Tests use tiny models: one thread is faster for them, and immune to OpenMP oversubscription
# when other processes share the machine's cores.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"


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


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipe"))
