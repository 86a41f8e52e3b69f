"""The README's Python examples run as written (the default model, a planned one, and the one-stage model the README
loads from ``one-stage-model`` are tiny untrained stand-ins)."""

import re
from pathlib import Path

from conftest import make_tiny_pipeline, make_tiny_planned

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    make_tiny_planned(tmp_path / "model", editor=True)
    make_tiny_pipeline(tmp_path / "one-stage-model")
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(tmp_path / "model"))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "circle.png").is_file() and (tmp_path / "my-model" / "model_index.json").is_file()
    assert (tmp_path / "stars.png").is_file() and (tmp_path / "painted.png").is_file()
