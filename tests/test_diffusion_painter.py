"""The diffusion painter (lvg/models/diffusion_painter.py, lvg/train/diffusion_painter.py): its layout map says
where each object is, a seed reproduces its bytes in any batch, training lowers the loss on fixed layouts and
resumes exactly, and the folder loads strictly, through the component registry too."""

from __future__ import annotations

import pytest
import torch

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.models.diffusion_painter import DiffusionPainter, DiffusionPainterConfig, box_coverage
from lvg.pipelines.components import component_class
from lvg.train.config import load_config
from lvg.train.diffusion_painter import DiffusionPainterTrainingConfig, train_diffusion_painter
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS

pytest.importorskip("diffusers")

WORDS = sorted({w for lab in SHAPES_WORLD_LABELS for w in lab.split()})


def tiny(**kw) -> DiffusionPainter:
    torch.manual_seed(0)
    cfg = dict(label_words=WORDS, backgrounds=list(SHAPES_WORLD_BACKGROUNDS), embed_dim=8, map_dim=4,
               block_out_channels=[8, 16], norm_num_groups=4, sampling_steps=3)  # fmt: skip
    return DiffusionPainter(DiffusionPainterConfig(**(cfg | kw)))


def lay(*objects: tuple[str, list[float]], bg: str = "white") -> Layout:
    return Layout(bg, [LayoutObject(label, box) for label, box in objects], 64)


def test_box_coverage_is_exact_at_pixel_edges_and_fractional_between():
    cov = box_coverage(torch.tensor([[10.0, 20.0, 30.5, 36.0]]), 64)[0]  # [64, 64]
    assert cov[20:36, 10:30].min() == 1 and cov[20:36, 30].eq(0.5).all()
    cov[20:36, 10:31] = 0
    assert cov.abs().max() == 0


def test_the_layout_map_marks_each_object_and_tells_touching_boxes_apart():
    p = tiny()
    a = lay(("red circle", [0, 0, 32, 32]), ("red circle", [32, 0, 64, 32]), bg="black")
    t = p.encode_layouts([a])
    m = p.layout_map(t["boxes"], t["words"], t["valid"], t["bg"])[0]  # [map_dim + 3, 64, 64]
    assert m.shape == (4 + 3, 64, 64)
    feat, cover, u = m[:4], m[4], m[5]
    assert cover[:32].eq(1).all() and cover[32:].eq(0).all()
    assert torch.allclose(feat[:, 40, 10], p.bg_map.weight[p.bg_ids["black"]])  # the background outside boxes
    assert torch.allclose(feat[:, 10, 10], feat[:, 10, 50])  # one label, one feature ...
    assert u[10, 31] > 0.9 and u[10, 32] < -0.9  # ... but the position in the box changes at the boundary


def test_seeds_sample_and_a_seed_reproduces_its_bytes_in_any_batch():
    p = tiny().eval()
    a = lay(("red circle", [8, 8, 28, 28]), ("blue square", [36, 36, 56, 56]))
    b = lay(("green star", [20, 20, 44, 44]), bg="black")
    one = p.paint([a], [5])
    assert not torch.equal(one, p.paint([a], [6]))
    batch = p.paint([b, a, b], [1, 5, 2])
    assert torch.equal(batch[1], one[0])
    assert one.dtype == torch.uint8 and one.shape == (1, 3, 64, 64)


def test_bad_layouts_and_configs_are_named():
    p = tiny()
    with pytest.raises(LayoutError, match="unknown word 'dragon'"):
        p.paint([lay(("red dragon", [0, 0, 10, 10]))])
    with pytest.raises(ValueError, match="seeds"):
        p.paint([lay(("red circle", [0, 0, 10, 10]))], [1, 2])
    with pytest.raises(ValueError, match="norm_num_groups"):
        tiny(block_out_channels=[8, 10])
    with pytest.raises(ValueError, match="halve the canvas"):
        tiny(block_out_channels=[8, 8, 8, 8, 8, 8], patch=4)


def test_training_learns_fixed_layouts_and_resumes_exactly(tmp_path):
    def cfg(out, steps=6):
        return load_config(DiffusionPainterTrainingConfig, None, [
            f"train.out_dir={out}", f"train.steps={steps}", "train.batch_size=4", "train.eval_every=3",
            "train.log_every=1", "train.ckpt_every=2", "train.progress=false", "train.device=cpu",
            "train.precision=fp32", "train.ema_decay=0.9", "train.lr=3e-3", "train.warmup_steps=1", "eval.scenes=2",
            "eval.loss_rows=8", "eval.sampling_steps=2", "model.embed_dim=8", "model.map_dim=4",
            "model.block_out_channels=[8,16]", "model.norm_num_groups=4", "model.attention_levels=1"])  # fmt: skip

    straight = train_diffusion_painter(cfg(tmp_path / "a"))
    train_diffusion_painter(cfg(tmp_path / "b"), stop_after=2)  # killed after 2 steps (checkpointed)
    resumed = train_diffusion_painter(cfg(tmp_path / "b"), resume=True)
    a, b = DiffusionPainter.from_pretrained(straight), DiffusionPainter.from_pretrained(resumed)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    import json

    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val/loss"] for r in rows if "val/loss" in r]
    assert len(val) == 2 and val[1] < val[0]  # the EMA model's loss on the fixed held-out batch went down
    assert any("val/scene_pass" in r for r in rows)
    loaded = component_class("DiffusionPainter").from_pretrained(straight)
    layout = lay(("red circle", [8, 8, 28, 28]))
    assert torch.equal(loaded.paint([layout], [3]), a.paint([layout], [3]))


@pytest.mark.parametrize("world", ["shapes", "emoji"])
def test_the_shipped_configs_load_and_build(world):
    from pathlib import Path

    from lvg.train.diffusion_painter import painter_config
    from lvg.train.painter import shapes_world_vocabulary

    cfg = load_config(
        DiffusionPainterTrainingConfig, Path(__file__).parents[1] / f"configs/diffusion-painter-{world}.yaml"
    )
    assert cfg.train.keep_snapshots and (cfg.imagefolder is None) == (world == "shapes")
    p = DiffusionPainter(painter_config(shapes_world_vocabulary(), cfg.model))
    assert 0.5e6 < sum(q.numel() for q in p.parameters()) < 2e6
