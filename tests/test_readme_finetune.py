"""The README's "Adapt the shipped model to your own labels" commands run as written, on a tiny base model (the
steps cut to a few; the README's figures come from the full run)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import make_tiny_planned

from lvg.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_block() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- adapt-example -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md lost its adapt-example block"
    cmds = []
    for line in block.group(1).splitlines():
        line = line.split("  #")[0].strip()
        if line:
            cmds.append(shlex.split(line))
    return cmds


def test_the_readme_adapts_the_default_model_to_a_new_folder_and_generates_its_labels(tmp_path, monkeypatch):
    base = make_tiny_planned(tmp_path / "tiny", reader=False)
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(base))
    monkeypatch.chdir(tmp_path)
    cmds = readme_block()
    assert [c[:3] for c in cmds] == [["python", "examples/sun_and_moon.py", "runs/sun-moon"],
                                     ["lvg", "train", "planner"], ["lvg", "train", "painter"],
                                     ["lvg", "generate", "a golden sun left of a purple moon"]]  # fmt: skip
    fast = ["train.steps=3", "train.eval_every=3", "train.batch_size=4", f"finetune.base={base}"]
    for cmd in cmds:
        cmd = [str(ROOT / a) if a.startswith(("configs/", "examples/")) else a for a in cmd]
        if cmd[0] == "python":
            subprocess.run([sys.executable, *cmd[1:], "--num", "12"], check=True)
        elif cmd[1] == "train":
            extra = [f"image_tokenizer={base / 'image_tokenizer'}"] if cmd[2] == "painter" else []
            assert main([*cmd[1:], *fast, *extra]) == 0
        else:
            assert main(cmd[1:]) in (0, 2)  # a tiny base trained 3 steps may plan or refuse; it must not fail
    assert (tmp_path / "runs" / "sun-moon-planner" / "adapter" / "lvg_adapter.json").is_file()
    assert (tmp_path / "runs" / "sun-moon-painter" / "painter_adapter" / "lvg_adapter.json").is_file()
    sun = tmp_path / "sun.json"
    sun.write_text('{"background": "black", "objects": [{"label": "golden sun", "box": [8, 8, 32, 32]}]}')
    assert main(["generate", "--layout", str(sun), "--adapter", "runs/sun-moon-painter/painter_adapter",
                 "-o", "sun.png"]) == 0  # fmt: skip
    check_served_together(base, tmp_path / "runs")


def check_served_together(base: Path, runs: Path) -> None:
    """``lvg serve --adapter NAME=PLANNER_ADAPTER --adapter NAME=PAINTER_ADAPTER`` serves both as one model on its base,
    which stays as it was; two adapters for one component are refused when they load."""
    from fastapi.testclient import TestClient
    from test_serve import wait_until
    from test_serve_models import app_state

    from lvg.pipelines import load_pipeline
    from lvg.serve.app import ServeSettings, create_app

    planner, painter = runs / "sun-moon-planner" / "adapter", runs / "sun-moon-painter" / "painter_adapter"
    pipe = load_pipeline(base)
    settings = ServeSettings(adapters={"sun-moon": [planner, painter], "twice": [painter, painter]})
    with TestClient(create_app(settings, pipelines={"tiny": pipe})) as c:
        wait_until(lambda: c.get("/readyz").json()["status"] == "failed", timeout=60, what="the adapters loading")
        served = app_state(c).models
        both = served["sun-moon"].pipeline
        assert served["sun-moon"].parent == "tiny" and served["sun-moon"].adapts == ["painter", "planner"]
        assert "two folders for one component" in served["twice"].load_error
        assert both.planner is not pipe.planner and both.painter is not pipe.painter  # each adapted, on a copy
        assert {"golden", "sun", "moon"} <= set(both.painter.config.label_words) - set(pipe.painter.config.label_words)
        assert both.image_tokenizer is pipe.image_tokenizer and served["tiny"].pipeline is pipe
        r = c.post("/v1/images/generations", json={"prompt": "a golden sun", "model": "sun-moon", "seed": 0})
        assert r.status_code in (200, 422), r.text  # (a 3-step planner may refuse; it must not fail)
