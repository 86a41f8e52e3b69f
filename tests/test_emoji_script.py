"""scripts/train_emoji_default.sh runs its data, train and export stages with tiny configs on the fake sprite cache
(no npm, no network), resumes nothing twice, and the folder it assembles loads by path and generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from forkserver import warm_python
from test_emoji_world import _tarballs
from test_train_script import TINY_LM, write_tiny_configs

import lvg
from lvg.pipelines.planned import LayoutPlanner
from lvg.worlds.emoji import assets as A

ROOT = Path(__file__).resolve().parent.parent
SHRINK = {
    "planner-emoji.yaml": {"model": {"size": TINY_LM}},
    "gan-painter-emoji.yaml": {"model": {"width": 16, "embed_dim": 8, "noise_dim": 4, "sprite": 8},
                               "eval": {"scenes": 4}, "train": {"keep_snapshots": False}},
    "tokenizer-emoji.yaml": {"model": {"channels": [8], "decoder_res_blocks": 1}, "eval": {"num_images": 4}},
    "reading-lm-emoji.yaml": {"size": TINY_LM, "eval_captions": 2, "eval_questions": 1},
    "reader-emoji-robust.yaml": {"model": {"width": 8, "blocks": 1}},
    "painter-emoji.yaml": {"model": {"width": 8, "blocks": 1, "embed_dim": 8}},
    "restorer-emoji.yaml": {"model": {"width": 4, "levels": 2}, "val_images": 4},
    "restorer-emoji-more.yaml": {"val_images": 4},  # (a further round: the first round's size)
    "restorer-emoji-mse.yaml": {"val_images": 4},
    "planner-emoji-analysis.yaml": {},  # (a fine-tune: the base's size)
    "planner-emoji-more.yaml": {},
    "editor-emoji.yaml": {},  # (fine-tunes: the base's size; the deep one grows by one layer, not four)
    "editor-emoji-deep.yaml": {"finetune": {"add_layers": 1}},
    "planner-editor-emoji.yaml": {},
    "planner-editor-emoji-noise.yaml": {},
    "planner-editor-emoji-lines.yaml": {},
    # (the first round validates, as the test checks; the later ones skip it: an untrained LM writing captions to
    # their full length took 2.4 s of each round's 3)
    "reading-lm-emoji-more.yaml": {"eval_captions": 0, "eval_questions": 0},
    "reading-lm-emoji-deep.yaml": {"eval_captions": 0, "eval_questions": 0},
    "reading-lm-emoji-work.yaml": {"eval_captions": 0, "eval_questions": 0},
    "reading-lm-emoji-relations.yaml": {"eval_captions": 0, "eval_questions": 0},
    "reading-lm-emoji-relations2.yaml": {"eval_captions": 0, "eval_questions": 0},
    "clip-emoji.yaml": {"model": {"image_channels": [8, 8], "text_width": 16, "text_layers": 1, "text_heads": 2,
                                  "embed_dim": 8}},
}  # fmt: skip


def test_the_emoji_training_script_runs_its_stages_on_the_fake_cache(tmp_path, monkeypatch):
    home = tmp_path / "home"
    A.ensure_assets(home / "emoji", _tarballs(home / "emoji" / "tarballs"))
    configs = write_tiny_configs(tmp_path / "configs", SHRINK)
    env = {**os.environ, "CONFIGS": str(configs), "RUNS": str(tmp_path / "runs"), "OUT": str(tmp_path / "model"),
           "NUM": "24", "TEXT_SCENES": "200", "LVG_HOME": str(home)}  # fmt: skip

    def run(*stages: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/train_emoji_default.sh", *stages], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)  # fmt: skip

    with warm_python(tmp_path / "py", ROOT, env) as python:  # each `$PYTHON ...` a fork of one warm interpreter
        env["PYTHON"] = python
        r = run("data", "train", "export")
        env["PYTHON"] = sys.executable
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    walls = (tmp_path / "runs" / "wall_times.tsv").read_text().split("\n")
    assert {line.split("\t")[0] for line in walls if line} == {
        "data", "text-tokenizer", "planner", "reading-lm", "gan-painter", "tokenizer", "painter", "reader", "clip",
        "restorer", "stage data", "stage train", "stage export"}  # fmt: skip
    assert (tmp_path / "model" / "ATTRIBUTION.md").is_file()
    monkeypatch.setenv("LVG_HOME", str(home))  # the folder's world (its referee, its grammar) is the fake cache's
    pipe = lvg.load_pipeline(tmp_path / "model")
    assert type(pipe.painter).__name__ == "GanPainter" and type(pipe.code_painter).__name__ == "Painter"
    assert type(pipe.restorer).__name__ == "Restorer"  # restore runs it first
    gen = pipe.generation_config  # labels at 1 (an unasked style is a coin toss), boxes at 0.3
    assert (gen.temperature, gen.label_temperature) == (0.3, 1.0)
    label = pipe.planner.vocab.layout.labels[0].split(" (")[0]
    image = pipe(f"a {label}", seed=0, allow_unsupported=True).images[0]  # (a 2-step planner may refuse it)
    assert image.size == (64, 64)
    assert pipe.can_caption and isinstance(pipe.caption(image), str)  # the reader and reading LM are in the folder
    assert pipe.clip is not None and pipe.planner.vocab.layout.refusals  # its CLIP, and a planner that refuses
    # one LM plans and edits: grown by the deep editor round, stored once (planner/), refusing an edit's reasons too
    assert pipe.editor is pipe.planner and "missing" in pipe.planner.vocab.layout.refusals
    assert not (tmp_path / "model" / "editor").exists()
    base = LayoutPlanner.from_pretrained(tmp_path / "runs" / "planner-emoji-more2" / "planner")
    assert pipe.planner.lm.config.num_hidden_layers == base.lm.config.num_hidden_layers + 1
    third = json.loads((tmp_path / "runs" / "planner-editor-emoji3" / "config.json").read_text())
    assert third["data"]["edit_group_prob"] == 0.7 and third["finetune"]["base"].endswith(
        "planner-editor-emoji2/planner"
    )
    fourth = json.loads((tmp_path / "runs" / "planner-editor-emoji4" / "config.json").read_text())
    assert fourth["data"]["edit_box_noise"] == 0.15 and fourth["finetune"]["base"].endswith(
        "planner-editor-emoji3/planner"
    )
    assert fourth["imagefolder"].endswith("runs/emoji-data") and str(tmp_path) in fourth["imagefolder"]
    fifth = json.loads((tmp_path / "runs" / "planner-editor-emoji5" / "config.json").read_text())
    assert fifth["finetune"]["base"].endswith("planner-editor-emoji4/planner") and fifth["data"]["seed"] == 10
    assert fifth["data"]["edit_box_noise"] == 0.2 and fifth["data"]["edit_type_weights"] == {"replace": 2, "swap": 2}
    seventh = json.loads((tmp_path / "runs" / "planner-editor-emoji7" / "config.json").read_text())
    assert seventh["finetune"]["base"].endswith("planner-editor-emoji6/planner") and seventh["data"]["seed"] == 12
    assert seventh["data"]["edit_order"] == "lines" and pipe.planner.vocab.layout.order == "lines"
    base = "planner-editor-emoji8"
    for n, folder, seed, varied in ((10, 1, 15, 0.0), (11, 2, 16, 0.0), (13, 3, 18, 0.4)):  # each on a fresh folder
        late = json.loads((tmp_path / "runs" / f"planner-editor-emoji{n}" / "config.json").read_text())
        assert late["imagefolder"].endswith(f"runs/emoji-data-s{folder}") and late["data"]["seed"] == seed
        assert late["data"]["edit_varied_prob"] == varied  # (the last: repeated emoji differ in style or size)
        assert late["finetune"]["base"].endswith(f"{base}/planner") and late["train"]["lr"] == 2e-4
        base = f"planner-editor-emoji{n}"
    shipped = LayoutPlanner.from_pretrained(tmp_path / "runs" / "planner-editor-emoji13" / "planner")
    for name, w in shipped.lm.state_dict().items():  # the folder's LM is the thirteenth round's, in fp16
        assert torch.equal(pipe.planner.lm.state_dict()[name].float(), w.to(torch.float16).float()), name
    for job, keys in (("planner-emoji-analysis", ('"val/refused"', '"val/accepted"')),  # validated as they train
                      ("planner-editor-emoji", ('"val/refused"', '"val/edit_loss"', '"val/loss"')),
                      ("reading-lm-emoji", ('"val/caption_en"', '"val/zh_relation"', '"val/vqa_en"'))):  # fmt: skip
        metrics = (tmp_path / "runs" / job / "metrics.jsonl").read_text(encoding="utf-8")
        assert all(k in metrics for k in keys), job
    assert pipe.world == "emoji" and pipe.entails is not None  # the folder names its world: verify reads with it
    check_eval_emoji_reads(tmp_path, home)
    before = len(walls)
    again = run("data", "train")  # everything is there: nothing is made or trained again
    assert again.returncode == 0, again.stderr[-2000:]
    trained = (tmp_path / "runs" / "wall_times.tsv").read_text().split("\n")[before - 1 :]
    assert [line for line in trained if line and not line.startswith("stage ")] == []
    assert run("editor").returncode == 2  # (the editor is part of train now)


def check_eval_emoji_reads(tmp_path: Path, home: Path) -> None:
    """``lvg eval emoji`` on the tiny folder, with prompts of the fake cache's emoji: generation, and the reading
    section (reader, captions, questions per type, closed loop) in results.json and the printed report."""
    import json

    from lvg.cli import main
    from lvg.worlds.emoji.benchmark import make_prompts
    from lvg.worlds.emoji.plugin import load_emoji_world

    rows = make_prompts(load_emoji_world(home=home / "emoji").table, per_category=1)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "eval"
    assert main(["eval", "emoji", "--model", str(tmp_path / "model"), "--prompts", str(prompts), "--captions", "4",
                 "--questions", "1", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    reading = res["reading"]
    assert {"reader", "captions_en", "captions_zh", "vqa_en", "vqa_zh", "cycle_en", "cycle_zh"} <= set(reading)
    assert set(reading["vqa_en"]["types"]) == {"count", "what", "where", "relation"}
    assert "Closed loop (zh" in (out / "results.md").read_text(encoding="utf-8")
