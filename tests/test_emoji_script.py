"""scripts/train_emoji_default.sh runs its data, train and export stages with tiny configs on the fake sprite cache
(no npm, no network), resumes nothing twice, and the folder it assembles loads by path and generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_emoji_world import _tarballs
from test_train_script import TINY_LM, write_tiny_configs

import lvg
from lvg.worlds.emoji import assets as A

ROOT = Path(__file__).resolve().parent.parent
SHRINK = {
    "planner-emoji.yaml": {"model": {"size": TINY_LM}},
    "gan-painter-emoji.yaml": {"model": {"width": 16, "embed_dim": 8, "noise_dim": 4, "sprite": 8},
                               "eval": {"scenes": 4}, "train": {"keep_snapshots": False}},
    "tokenizer-emoji.yaml": {"model": {"channels": [8], "decoder_res_blocks": 1}, "eval": {"num_images": 4}},
}  # fmt: skip


def test_the_emoji_training_script_runs_its_stages_on_the_fake_cache(tmp_path):
    home = tmp_path / "home"
    A.ensure_assets(home / "emoji", _tarballs(home / "emoji" / "tarballs"))
    configs = write_tiny_configs(tmp_path / "configs", SHRINK)
    env = {**os.environ, "PYTHON": sys.executable, "CONFIGS": str(configs), "RUNS": str(tmp_path / "runs"),
           "OUT": str(tmp_path / "model"), "NUM": "24", "TEXT_SCENES": "200", "LVG_HOME": str(home)}  # fmt: skip

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/train_emoji_default.sh", "data", "train", "export"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)  # fmt: skip

    r = run()
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    walls = (tmp_path / "runs" / "wall_times.tsv").read_text().split("\n")
    assert {line.split("\t")[0] for line in walls if line} == {
        "data", "text-tokenizer", "planner", "gan-painter", "tokenizer", "stage data", "stage train", "stage export"}  # fmt: skip
    assert (tmp_path / "model" / "ATTRIBUTION.md").is_file()
    pipe = lvg.load_pipeline(tmp_path / "model")
    assert type(pipe.painter).__name__ == "GanPainter"
    label = pipe.planner.vocab.layout.labels[0].split(" (")[0]
    assert pipe(f"a {label}", seed=0).images[0].size == (64, 64)
    before = len(walls)
    again = run()  # everything is there: nothing is trained again
    assert again.returncode == 0, again.stderr[-2000:]
    trained = (tmp_path / "runs" / "wall_times.tsv").read_text().split("\n")[before - 1 :]
    assert [line for line in trained if line and not line.startswith("stage ")] == []
