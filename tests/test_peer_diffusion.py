"""The peer diffusion baseline (``lvg.models.diffusion``, ``lvg.pipelines.diffusion``) and its benchmark script."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import torch

from lvg.eval.shapes import evaluate_generation
from lvg.models.diffusion import PeerDiffusionConfig
from lvg.pipelines.diffusion import PeerDiffusionPipeline
from lvg.tokenizers.text import load_text_tokenizer
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts
from lvg.worlds.shapes.dataset import make_sample

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"
PROMPTS = ["a small red circle to the left of a large blue square", "三个黄色星形，黑色背景"]


@pytest.fixture(scope="module")
def tok():
    return load_text_tokenizer(TEXT_TOKENIZER)


@pytest.fixture(scope="module")
def peer(tok) -> PeerDiffusionPipeline:
    torch.manual_seed(0)
    return PeerDiffusionPipeline.build(PeerDiffusionConfig.preset("tiny", sampling_steps=2), tok)


def _bytes(out) -> list[bytes]:
    return [im.tobytes() for im in out.images]


def test_overfits_a_fixed_batch(tok):
    torch.manual_seed(0)
    model = PeerDiffusionPipeline.build(PeerDiffusionConfig.preset("tiny"), tok).model.train()
    samples = [make_sample(i) for i in range(2)]
    x0 = torch.stack([torch.from_numpy(s.image) for s in samples]).permute(0, 3, 1, 2).float() / 127.5 - 1
    ids, mask = PeerDiffusionPipeline(model, tok).tokenize([s.text for s in samples])
    model.train()
    g = torch.Generator().manual_seed(0)
    noise, t = torch.randn(x0.shape, generator=g), torch.tensor([100, 600])  # fixed: a pure overfitting problem
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model.training_loss(x0, ids, mask, noise=noise, timesteps=t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses
    # random noise and timesteps, with caption dropout: still a finite scalar with gradients
    loss = model.training_loss(x0, ids, mask, drop=torch.tensor([True, False]))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad


def test_text_encoder_masks_padding_and_drops_to_null(peer):
    enc = peer.model.text_encoder
    ids, mask = peer.tokenize(["a red circle", PROMPTS[0]])  # the first is padded
    alone_ids, alone_mask = peer.tokenize(["a red circle"])
    n = int(alone_mask.sum())
    with torch.no_grad():
        states, keys = enc(ids, mask)  # [2, T, D]
        alone, _ = enc(alone_ids, alone_mask)
        dropped, dkeys = enc(ids, mask, torch.tensor([False, True]))
    torch.testing.assert_close(states[0, :n], alone[0, :n])  # padding does not leak into real tokens
    assert keys.tolist() == mask.tolist()
    assert torch.equal(dropped[1, 0], enc.null[0]) and dropped[1, 1:].abs().sum() == 0
    assert dkeys[1].tolist() == [1] + [0] * (ids.shape[1] - 1)
    torch.testing.assert_close(dropped[0], states[0])


def test_pipeline_images_seeds_and_save_load(peer, tmp_path):
    out = peer(PROMPTS, num_images=2, seed=7, batch_size=3, temperature=1.0, top_k=0)  # LM-only args at defaults
    assert len(out.images) == 4 and out.seeds == [7, 8, 9, 10] and out.prompts == [PROMPTS[0]] * 2 + [PROMPTS[1]] * 2
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in out.images)
    assert _bytes(peer(PROMPTS, num_images=2, seed=7, batch_size=3)) == _bytes(out)  # same seed: same bytes
    other = _bytes(peer(PROMPTS, num_images=2, seed=8, batch_size=3))
    assert other[0] != _bytes(out)[0]  # a different seed gives a different image ...
    assert other[0] == _bytes(out)[1]  # ... and image j's bytes depend on its own seed (8 here), not its batch slot
    peer.save_pretrained(tmp_path / "peer")
    assert (tmp_path / "peer" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = PeerDiffusionPipeline.from_pretrained(tmp_path / "peer")
    assert loaded.config == peer.config
    assert _bytes(loaded(PROMPTS, num_images=2, seed=7, batch_size=3)) == _bytes(out)
    # strict loading: a config that no longer matches the weights is refused, naming the file
    cfg = json.loads((tmp_path / "peer" / "config.json").read_text())
    cfg["text_width"] = 64
    (tmp_path / "peer" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unet"):
        PeerDiffusionPipeline.from_pretrained(tmp_path / "peer")


def test_pickles_beside_the_peer_are_never_unpickled(peer, tmp_path):
    from test_reliability import plant_pickles

    folder = peer.save_pretrained(tmp_path / "peer")
    plant_pickles(folder, tmp_path / "UNPICKLED")
    PeerDiffusionPipeline.from_pretrained(folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="only pickle weights"):
        PeerDiffusionPipeline.from_pretrained(folder)
    assert not (tmp_path / "UNPICKLED").exists()


def test_pipeline_rejects_bad_input(peer):
    with pytest.raises(ValueError, match="at most 96"):
        peer(["a red circle and " * 40])
    with pytest.raises(ValueError, match="rerank"):
        peer(PROMPTS, rerank=2)
    with pytest.raises(ValueError, match="num_images"):
        peer(PROMPTS, num_images=0)
    for setting in (dict(temperature=0.5), dict(top_k=3), dict(top_p=0.9)):  # LM-only settings: refused, not ignored
        with pytest.raises(ValueError, match=f"cannot honour.*{next(iter(setting))}"):
            peer(PROMPTS, **setting)
    with pytest.raises(ValueError, match="unknown peer preset"):
        PeerDiffusionConfig.preset("huge")


def test_evaluate_generation_runs_on_the_peer(peer):
    rows = load_prompts(ROOT / "benchmarks" / "shapes_prompts.jsonl")[::150]  # 3 categories
    res = evaluate_generation(peer, rows, "zh", seed=0, batch_size=8)
    assert res["num_prompts"] == 3 and 0 <= res["overall"] <= 1
    assert set(res["categories"]) == {r["category"] for r in rows}


def test_only_the_peer_module_imports_diffusers():
    """``import lvg`` (and every module but the diffusion models' own) never imports diffusers at import time;
    ``lvg.pipelines.diffusion`` imports the model module only when a peer is built or loaded. The diffusion
    painter's modules (its model, which calls diffusers only when one is built, and its trainer) are imported only
    by name, through the component registry and the CLI's trainer table."""
    own = {("models", "diffusion.py"), ("models", "diffusion_painter.py"), ("train", "diffusion_painter.py")}
    for file in (ROOT / "lvg").rglob("*.py"):
        if (file.parent.name, file.name) in own:
            continue
        for node in ast.parse(file.read_text(encoding="utf-8")).body:  # module-level statements only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            bad = [n for n in names if n.split(".")[0] == "diffusers" or n.startswith("lvg.models.diffusion")]
            assert not bad, f"{file.relative_to(ROOT)} imports {bad} at module level"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import peer_diffusion

    return peer_diffusion


def test_recorded_training_time(bench, tmp_path):
    rows = [
        {"step": 50, "time": 10.0},
        {"step": 100, "time": 20.0},
        {"step": 100, "time": 3.0},
        {"step": 150, "time": 12.5},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    assert bench.recorded_wall_s(tmp_path / "metrics.jsonl") == (32.5, 150)  # two segments: 20 + 12.5
    assert bench.recorded_wall_s(tmp_path / "missing.jsonl") is None
    card = "## Unified LM\n\n| hardware, time | 1 H100, 1,234.5 s of training |\n\n## CLIP\n| x | 99 s of training |\n"
    (tmp_path / "README.md").write_text(card)
    assert bench.card_wall_s(tmp_path) == 1234.5


def test_benchmark_script_end_to_end(bench, tiny_pipeline_dir, tmp_path):
    # an lvg "run folder" like runs/llm-shapes: pipeline/ + metrics.jsonl, whose time sets the peer's budget
    run = tmp_path / "llm-run"
    shutil.copytree(tiny_pipeline_dir, run / "pipeline")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 40, "time": 1.5}) + "\n")
    (run / "config.json").write_text(json.dumps({"train": {"batch_size": 8}}))
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nkept\n")
    tiny = ["--preset", "tiny", "--batch-size", "2", "--max-steps", "2", "--num-workers", "0", "--val-size", "2",
            "--num-prompts", "1", "--sampling-steps", "1", "--eval-batch-size", "9", "--no-progress",
            "--out", str(tmp_path / "peer"), "--benchmarks-file", str(md)]  # fmt: skip
    res = bench.main([*tiny, "--lvg-model", str(run / "pipeline"), "--langs", "en", "--guidance-sweep", "1,3",
                      "--sweep-prompts", "1", "--notes", "tried nothing"])  # fmt: skip
    meta, results = res["meta"], res["results"]
    assert meta["budget_s"] == 1.5 and "metrics.jsonl" in meta["budget_source"]
    assert set(results) == {"lvg", "peer"} and set(meta["sweep"]) == {"lvg", "peer"}
    assert meta["num_prompts"] == 9 and meta["peer_train"]["steps"] >= 1
    for r in results.values():
        assert 0 <= r["en"]["overall"] <= 1 and r["images_per_s"] > 0 and set(r["en"]["categories"]) == set(CATEGORIES)
    text = md.read_text()
    assert "kept" in text and "<!-- BEGIN peer-diffusion -->" in text and "tried nothing" in text
    assert "lvg (LM + image tokenizer)" in text and "peer diffusion (UNet + text encoder)" in text
    assert (tmp_path / "peer" / "pipeline" / "config.json").is_file()
    assert json.loads((tmp_path / "peer" / "results.json").read_text())["meta"]["num_prompts"] == 9

    # resuming a run whose budget is spent goes straight to evaluation; --peer-only needs no lvg model
    res2 = bench.main([*tiny, "--resume", "--peer-only", "--budget-s", "0.5", "--langs", "zh", "--guidance-sweep", ""])
    assert set(res2["results"]) == {"peer"} and res2["meta"]["peer_train"]["steps"] == meta["peer_train"]["steps"]
    assert "lvg model not evaluated" in md.read_text()
    assert md.read_text().count("<!-- BEGIN peer-diffusion -->") == 1


def test_benchmark_script_refuses_a_missing_lvg_model(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--lvg-model", str(tmp_path / "nope"), "--budget-s", "1", "--out", str(tmp_path / "peer")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "cannot load the lvg model" in err and "--peer-only" in err
    assert not (tmp_path / "peer").exists()
