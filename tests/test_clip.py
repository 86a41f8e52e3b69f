"""Shapes World CLIP: shapes, save/load, training and resume, held-out evals, reranking, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lvg.cli import main
from lvg.eval.clip_eval import held_out_pairs, retrieval_top1, zero_shot_accuracy
from lvg.models.clip import ClipConfig, ShapesClip
from lvg.pipelines.pipeline import Pipeline, candidate_seed
from lvg.tokenizers.text import load_text_tokenizer
from lvg.train.checkpoint import CheckpointError
from lvg.train.clip import ClipEvalConfig, ClipTrainingConfig, train_clip
from lvg.train.common import TrainConfig
from lvg.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"

TINY = dict(embed_dim=32, image_channels=[8, 16, 16, 16], text_width=32, text_layers=1, text_heads=2)


def tiny_clip(seed: int = 0) -> ShapesClip:
    torch.manual_seed(seed)
    return ShapesClip(ClipConfig(**TINY), load_text_tokenizer(TEXT_TOKENIZER))


def test_shapes_and_normalisation():
    clip = tiny_clip().eval()
    images, texts = held_out_pairs(4)
    img, txt = clip.encode_image(images), clip.encode_text(list(texts))
    assert img.shape == txt.shape == (4, 32)
    assert torch.allclose(img.norm(dim=-1), torch.ones(4)) and torch.allclose(txt.norm(dim=-1), torch.ones(4))
    assert torch.allclose(clip.encode_image(images.float() / 255), img, atol=1e-6)  # uint8 == float [0, 1]
    s = clip.score(images, list(texts))
    assert s.shape == (4,) and (s.abs() <= 1 + 1e-6).all()
    assert torch.allclose(clip.clip_score(images, list(texts)), 100 * s.clamp(min=0))
    assert clip.encode_text(["一个红色的圆形", "a red circle " * 50]).shape == (2, 32)  # Chinese; truncation
    # padding does not change a caption's embedding
    assert torch.allclose(
        clip.encode_text(["a red circle"]), clip.encode_text(["a red circle", texts[0]])[:1], atol=1e-5
    )
    with pytest.raises(ValueError):
        clip.encode_image(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError):
        clip.score(images, ["x"])
    assert clip(images, list(texts)).item() > 0  # the training loss


def test_save_load_bit_exact_and_bad_files(tmp_path):
    clip = tiny_clip().eval()
    clip.save_pretrained(tmp_path)
    back = ShapesClip.from_pretrained(tmp_path)
    for (k, a), (k2, b) in zip(clip.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    images, texts = held_out_pairs(4)
    assert torch.equal(clip.score(images, list(texts)), back.score(images, list(texts)))
    w = tmp_path / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="safetensors"):
        ShapesClip.from_pretrained(tmp_path)
    w.write_bytes(data)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "embed_dim": 16}))
    with pytest.raises(ValueError, match="does not match"):
        ShapesClip.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "vocab_size": cfg["vocab_size"] + 1}))
    with pytest.raises(ValueError, match="tokens"):
        ShapesClip.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ValueError):
        ShapesClip.from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError):
        ShapesClip.from_pretrained(tmp_path)


def test_learns_fixed_pairs():
    images, texts = held_out_pairs(8, seed=7)
    clip = tiny_clip()
    before = clip.eval().score(images, list(texts)).mean()
    opt = torch.optim.AdamW(clip.parameters(), lr=3e-3)
    clip.train()
    for _ in range(60):
        loss = clip(images, list(texts))
        opt.zero_grad()
        loss.backward()
        opt.step()
    clip.eval()
    sims = clip.encode_image(images) @ clip.encode_text(list(texts)).T
    acc = (sims.argmax(1) == torch.arange(8)).float().mean().item()
    assert acc >= 0.75, acc  # chance is 1/8
    assert clip.score(images, list(texts)).mean() > before


def tiny_config(out, steps, **eval_cfg):
    return ClipTrainingConfig(
        model=ClipConfig(**TINY),
        train=TrainConfig(
            steps=steps,
            batch_size=16,
            lr=3e-3,
            warmup_steps=3,
            eval_every=1000,
            ckpt_every=1000,
            log_every=1,
            out_dir=str(out),
            progress=False,
        ),  # fmt: skip
        eval=ClipEvalConfig(**{"num_images": 32, "num_candidates": 4, **eval_cfg}),
        text_tokenizer=str(TEXT_TOKENIZER),
    )


def test_tiny_training_lowers_loss_and_validates(tmp_path):
    path = train_clip(tiny_config(tmp_path, 40))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.05, losses
    val = [r for r in rows if "val/zero_shot_top1" in r]
    assert val and 0 <= val[-1]["val/retrieval_top1"] <= 1 and (tmp_path / "tb").is_dir()
    clip = ShapesClip.from_pretrained(path)
    zs, rt = zero_shot_accuracy(clip, 32, num_candidates=4), retrieval_top1(clip, 32)
    assert zs["accuracy"] == val[-1]["val/zero_shot_top1"] and zs["chance"] == 0.25 and rt["n"] == 32


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    straight = ShapesClip.from_pretrained(train_clip(tiny_config(tmp_path / "a", 6)))
    cfg = tiny_config(tmp_path / "b", 6)
    train_clip(cfg, stop_after=2)
    with pytest.raises(FileExistsError):
        train_clip(cfg)
    resumed = ShapesClip.from_pretrained(train_clip(cfg, resume=True))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (tmp_path / "b" / "checkpoint" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        train_clip(cfg, resume=True)


def test_shipped_config_loads():
    cfg = load_config(ClipTrainingConfig, ROOT / "configs" / "clip-shapes.yaml", ["train.steps=7"])
    assert cfg.train.steps == 7 and cfg.train.batch_size == 256


# ---------------------------------------------------------------- reranking


class StubClip:
    """Scores an image by its mean brightness (deterministic, easy to check by hand)."""

    def __init__(self):
        self.calls = []

    def score(self, images, texts):
        self.calls.append(list(texts))
        return images.float().mean(dim=(1, 2, 3)) / 255


def test_candidate_seeds():
    assert candidate_seed(5, 0) == 5 and candidate_seed(-3, 0) == -3
    seeds = {candidate_seed(s, c) for s in range(10) for c in range(16)}
    assert len(seeds) == 160 and all(0 <= x < 2**63 or x < 10 for x in seeds)


def test_rerank_keeps_best_candidate(tiny_pipeline_dir):
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    assert pipe.clip is None
    with pytest.raises(ValueError, match="CLIP"):
        pipe("a red circle", rerank=2, seed=0)
    pipe.clip = StubClip()
    for bad in (0, 17, 2.0):
        with pytest.raises(ValueError, match="rerank"):
            pipe("a red circle", rerank=bad, seed=0)
    opts = dict(num_images=2, seed=11, guidance_scale=1.0)
    plain = pipe("a red circle", **opts)
    one = pipe("a red circle", rerank=1, **opts)
    assert [np.asarray(a).tobytes() for a in plain.images] == [np.asarray(b).tobytes() for b in one.images]
    assert one.seeds == plain.seeds == [11, 12] and not pipe.clip.calls
    out = pipe("a red circle", rerank=3, **opts)
    assert len(out.images) == 2 and pipe.clip.calls == [["a red circle"] * 6]
    for j, s in enumerate([11, 12]):
        cands = [pipe("a red circle", num_images=1, seed=candidate_seed(s, c), guidance_scale=1.0).images[0]
                 for c in range(3)]  # fmt: skip
        means = [np.asarray(im, dtype=np.float64).mean() for im in cands]
        best = int(np.argmax(means))
        assert np.array_equal(np.asarray(out.images[j]), np.asarray(cands[best]))
        assert out.seeds[j] == candidate_seed(s, best)
        assert out.clip_scores[j] == pytest.approx(means[best] / 255, abs=1e-5)
    for j, img in enumerate(plain.images):  # candidate 0 is the plain image, so reranking never scores lower
        assert out.clip_scores[j] >= np.asarray(img, dtype=np.float64).mean() / 255 - 1e-6


def test_pipeline_bundles_clip(tiny_pipeline_dir, tmp_path):
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    pipe.clip = tiny_clip()
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["components"]["clip"] == {"class": "ShapesClip", "folder": "clip"}
    back = Pipeline.from_pretrained(tmp_path / "p")
    assert isinstance(back.clip, ShapesClip)
    out = back("a red circle", num_images=1, seed=0, rerank=2, guidance_scale=1.0)
    assert len(out.images) == 1 and len(out.clip_scores) == 1


def test_cli(tmp_path, tiny_pipeline_dir, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "clip", "--help"])
    assert e.value.code == 0 and "InfoNCE" in capsys.readouterr().out
    assert main(["generate", "a red circle", "-o", str(tmp_path / "x.png"), "--model", str(tiny_pipeline_dir),
                 "--rerank", "2"]) == 2  # fmt: skip
    assert "--clip" in capsys.readouterr().err
    clip_dir = tiny_clip().save_pretrained(tmp_path / "clip")
    assert main(["generate", "a red circle", "-o", str(tmp_path / "x.png"), "--model", str(tiny_pipeline_dir),
                 "--rerank", "2", "--clip", str(clip_dir), "--guidance-scale", "1"]) == 0  # fmt: skip
    assert (tmp_path / "x.png").is_file()
    assert main(["eval", "clip", "--model", str(clip_dir), "--num", "8", "--num-candidates", "3"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["zero_shot"]["n"] == 8


def test_shipped_clip_loads_and_matches_held_out_captions():
    from lvg.eval.clip_eval import zero_shot_accuracy
    from lvg.models.clip import ShapesClip

    clip = ShapesClip.from_pretrained(ROOT / "models" / "shapes-default" / "clip")
    assert zero_shot_accuracy(clip, n=200, num_candidates=10)["accuracy"] >= 0.95  # chance 0.10
