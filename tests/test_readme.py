"""The README's Python examples run as written (the default model is a tiny untrained stand-in)."""

import re
from pathlib import Path

import torch

from lvg.models.unified import VocabLayout, build_lm
from lvg.pipelines.pipeline import Pipeline
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
from lvg.tokenizers.text import load_text_tokenizer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    text_tok = load_text_tokenizer(ROOT / "models" / "shapes-default" / "text_tokenizer")
    img_tok = ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4]))
    layout = VocabLayout.from_tokenizers(text_tok, img_tok.codebook_size, 64)
    torch.manual_seed(0)
    Pipeline(build_lm(layout, "tiny"), img_tok, text_tok, layout).save_pretrained(tmp_path / "model")
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(tmp_path / "model"))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "circle.png").is_file() and (tmp_path / "my-model" / "model_index.json").is_file()
