"""The one training command, scripts/train_shapes_default.sh, runs its stages from a fresh checkout.

A copy of the checkout's files (what git tracks, plus untracked files it does not ignore: no ``runs/``, no
virtual environment) runs ``tokenizer plan export`` with tiny configs written here (the real ones, shrunk), so the
script's wiring (folders made before they are used, resume flags, which model folder each stage reads and writes,
the assembled folder loading and generating) cannot break unseen. Seconds of training per stage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from forkserver import warm_python

import lvg

ROOT = Path(__file__).resolve().parent.parent
TINY_LM = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
TRAIN = {"steps": 2, "batch_size": 4, "warmup_steps": 1, "log_every": 1, "eval_every": 2, "ckpt_every": 2,
         "progress": False, "num_workers": 0}  # fmt: skip
SHRINK = {  # config file -> changes (nested dicts merge into the real config's sections)
    "tokenizer-shapes-32x32.yaml": {
        "model": {"channels": [8], "decoder_res_blocks": 1},
        "eval": {"num_images": 4, "round_trip_prompts": 2},
    },
    "planner-shapes.yaml": {"model": {"size": TINY_LM}, "eval": {"prompts_per_category": 0}},
    "painter-shapes.yaml": {"model": {"width": 8, "blocks": 1, "embed_dim": 8}, "eval": {"scenes": 4}},
    "gan-painter-shapes.yaml": {
        "model": {"width": 16, "embed_dim": 8, "noise_dim": 4, "sprite": 8},
        "disc": {"width": 8, "crop": 8},
        "loss": {"gan_start": 1},
        "eval": {"scenes": 4},
        "train": {"keep_snapshots": False},
    },  # fmt: skip
    "reader-shapes-robust.yaml": {"model": {"width": 8, "blocks": 1}, "eval_scenes": 4},
    "reading-lm-shapes.yaml": {"size": TINY_LM, "eval_captions": 0, "eval_questions": 0},
    "planner-shapes-analysis.yaml": {"eval": {"prompts_per_category": 0}},  # (fine-tunes: the base's size)
    "planner-shapes-analysis2.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis3.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis4.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis5.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis6.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis7.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis8.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis9.yaml": {"eval": {"prompts_per_category": 0}},
    "planner-shapes-analysis10.yaml": {"eval": {"prompts_per_category": 0}},
    "reading-lm-shapes-offgrid.yaml": {"eval_captions": 0, "eval_questions": 0},
    "editor-shapes.yaml": {},
    "editor-shapes-swap.yaml": {},
    "editor-shapes-deep.yaml": {},
}


def merge(base: dict, changes: dict) -> dict:
    for k, v in changes.items():
        base[k] = merge(dict(base.get(k) or {}), v) if isinstance(v, dict) else v
    return base


def write_tiny_configs(dest: Path, shrink: dict) -> Path:
    """The real configs named in ``shrink``, with its changes and :data:`TRAIN` merged in, written to ``dest``."""
    dest.mkdir()
    for name, changes in shrink.items():
        cfg = merge(yaml.safe_load((ROOT / "configs" / name).read_text(encoding="utf-8")), changes)
        cfg["train"] = merge(cfg["train"], TRAIN)
        (dest / name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return dest


def checkout_copy(dest: Path) -> None:
    """The files a fresh clone would have (tracked + untracked-not-ignored), copied to ``dest``."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")  # fmt: skip
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file() and not src.is_symlink():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
        elif src.is_symlink():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / f)


def test_the_training_script_runs_every_stage_from_a_fresh_checkout(tmp_path):
    repo = tmp_path / "repo"
    checkout_copy(repo)
    assert not (repo / "runs").exists()  # as in a fresh clone: the script must make it
    tiny = write_tiny_configs(tmp_path / "tiny-configs", SHRINK)
    env = {**os.environ, "CONFIGS": str(tiny), "OUT": str(tmp_path / "model"), "EVAL_NUM": "4",
           "PYTHONPATH": str(repo)}  # fmt: skip
    env.pop("RUNS", None)
    with warm_python(tmp_path / "py", repo, env) as python:  # each `$PYTHON ...` a fork of one warm interpreter
        env["PYTHON"] = python
        r = subprocess.run(["bash", "scripts/train_shapes_default.sh", "tokenizer", "plan", "export", "refine"],
                           cwd=repo, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    env["PYTHON"] = sys.executable
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    walls = (repo / "runs" / "wall_times.tsv").read_text().split("\n")
    assert {line.split("\t")[0] for line in walls if line} == {
        "tokenizer",
        "planner",
        "painter",
        "gan-painter",
        "reader",
        "reading-lm",
        "stage tokenizer",
        "stage plan",
        "stage export",
        "stage refine",
    }
    assert json.loads((repo / "runs" / "tokenizer-shapes-32x32" / "eval.json").read_text(encoding="utf-8"))
    index = json.loads((tmp_path / "model" / "model_index.json").read_text(encoding="utf-8"))
    assert index["_class_name"] == "PlannedPipeline"
    gen = index["generation_config"]  # the shipped folder's own sampling settings
    assert (
        (gen["temperature"], gen["refusal_threshold"])
        == (0.3, 0.2)
        == tuple(
            json.loads((ROOT / "models" / "shapes-default" / "model_index.json").read_text())["generation_config"][k]
            for k in ("temperature", "refusal_threshold")
        )
    )
    # the assembled folder loads strictly and generates (with the tiny models, any picture will do)
    pipe = lvg.load_pipeline(tmp_path / "model")
    assert pipe("two red circles", seed=0, allow_unsupported=True).images[0].size == (64, 64)
    assert index["components"]["painter"]["class"] == "GanPainter"  # the GAN painter paints; the code painter is kept
    assert pipe.use_painter("gan") is pipe and type(pipe.code_painter).__name__ == "Painter"
    assert pipe.use_painter("code")("two red circles", seed=0, allow_unsupported=True).images[0].size == (64, 64)
    assert pipe.planner.vocab.layout.refusals and pipe.can_edit  # the refined planner refuses; an editor is there
    # a second run resumes nothing and retrains nothing: every stage's result is there
    again = subprocess.run(["bash", "scripts/train_shapes_default.sh", "plan"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    trained_again = (repo / "runs" / "wall_times.tsv").read_text().split("\n")[len(walls) - 1 :]
    assert [line for line in trained_again if line and not line.startswith("stage ")] == []
