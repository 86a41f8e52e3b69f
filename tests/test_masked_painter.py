"""The masked (MaskGIT) code painter: it fills masked codes from known ones, paints in rounds, keeps what it
decided, reproduces a seed, trains and resumes with the shared loop, and a one-step painter refuses rounds."""

import random
from pathlib import Path

import pytest
import torch
from conftest import overfit

from lvg.models.painter import Painter
from lvg.tokenizers.image import ImageTokenizer
from lvg.train.painter import PainterModelConfig, shapes_world_painter_config, targets
from lvg.worlds.shapes.captions import describe_fully
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.scene_layout import layout_from_scene
from lvg.worlds.shapes.world import sample_scene

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "models" / "shapes-default" / "image_tokenizer"


def _painter(masked: bool = True) -> tuple[Painter, ImageTokenizer]:
    torch.manual_seed(0)
    tok = ImageTokenizer.from_pretrained(TOKENIZER)
    m = PainterModelConfig(embed_dim=16, width=32, blocks=2, masked=masked)
    return Painter(shapes_world_painter_config(tok.config.grid, tok.config.fsq_levels, m)), tok


@pytest.fixture(scope="module")
def overfit_masked():
    """A tiny masked painter overfit on three scenes with random masks (all ratios), as it is trained."""
    painter, tok = _painter()
    scenes = [sample_scene(random.Random(f"masked:{i}")) for i in range(3)]
    codes = targets(scenes, tok)  # [3, g, g]
    t = painter.encode_layouts([layout_from_scene(s) for s in scenes])
    gen = torch.Generator().manual_seed(0)

    def loss() -> torch.Tensor:
        known = torch.rand(codes.shape, generator=gen) >= torch.rand(3, 1, 1, generator=gen)
        logits = painter(t["boxes"], t["words"], t["valid"], t["bg"], codes, known)
        return painter.loss(logits, codes, ~known)

    overfit(painter, loss, 400)
    return painter.eval(), tok, scenes, codes


def test_a_masked_painter_paints_in_rounds_and_the_judge_passes(overfit_masked):
    painter, tok, scenes, codes = overfit_masked
    layouts = [layout_from_scene(s) for s in scenes]
    for steps in (1, 8):
        painted = painter.paint(layouts, steps=steps)
        assert painted.shape == codes.shape and (painted == codes).float().mean() > 0.95
    images = tok.decode(painter.paint(layouts, steps=8).to(tok.device))
    from lvg.images import tensor_to_images

    for im, s in zip(tensor_to_images(images), scenes):
        v = judge(im, describe_fully(s))
        assert v.passed, v.reason


def test_known_codes_steer_the_prediction(overfit_masked):
    """What the painter reads matters: given another scene's codes as known, its logits change."""
    painter, _, scenes, codes = overfit_masked
    t = painter.encode_layouts([layout_from_scene(scenes[0])])
    args = (t["boxes"], t["words"], t["valid"], t["bg"])
    none = painter(*args)
    half = torch.zeros_like(codes[:1], dtype=torch.bool)
    half[..., ::2] = True
    other = painter(*args, codes[1:2], half)
    assert not torch.allclose(none, other)


def test_rounds_reproduce_a_seed_in_any_batch_and_seeds_differ(overfit_masked):
    painter, _, scenes, _ = overfit_masked
    a, b = layout_from_scene(scenes[0]), layout_from_scene(scenes[1])
    one = painter.paint([a], [5], temperature=3.0, steps=4)
    batch = painter.paint([b, a], [1, 5], temperature=3.0, steps=4)
    assert torch.equal(one[0], batch[1])
    assert not torch.equal(one, painter.paint([a], [6], temperature=3.0, steps=4))
    assert torch.equal(painter.paint([a], [1], steps=4), painter.paint([a], [2], steps=4))  # argmax: no seed


def test_a_one_step_painter_refuses_rounds_and_codes():
    painter, _ = _painter(masked=False)
    lay = layout_from_scene(sample_scene(random.Random(0)))
    with pytest.raises(ValueError, match="masked"):
        painter.paint([lay], steps=2)
    t, g = painter.encode_layouts([lay]), painter.config.grid
    with pytest.raises(ValueError, match="not masked"):
        painter(t["boxes"], t["words"], t["valid"], t["bg"], torch.zeros(1, g, g, dtype=torch.long))


def test_the_pipeline_takes_painter_steps_from_the_generation_config(overfit_masked, tmp_path):
    from lvg.pipelines.planned import PlannedPipeline

    painter, tok, scenes, _ = overfit_masked
    pipe = PlannedPipeline.from_pretrained(ROOT / "models" / "shapes-default")
    masked = PlannedPipeline(pipe.planner, painter, tok)
    layout = layout_from_scene(scenes[0])
    assert torch.equal(masked(layout=layout, painter_steps=8).codes, painter.paint([layout], steps=8))
    with pytest.raises(ValueError, match="painter_steps=8 needs a masked"):
        pipe(layout=layout, painter_steps=8)  # the shipped GAN painter paints pixels in one step


def test_masked_training_resumes_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    from lvg.train.config import load_config
    from lvg.train.painter import PainterTrainingConfig, train_painter

    args = [f"image_tokenizer={TOKENIZER}", "model.width=16", "model.blocks=1", "model.embed_dim=8",
            "model.masked=true", "train.steps=4", "train.batch_size=4", "train.eval_every=4", "train.ckpt_every=2",
            "train.progress=false", "train.device=cpu", "eval.scenes=4", "eval.steps=2"]  # fmt: skip
    whole = train_painter(load_config(PainterTrainingConfig, None, [*args, f"train.out_dir={tmp_path / 'a'}"]))
    cfg = load_config(PainterTrainingConfig, None, [*args, f"train.out_dir={tmp_path / 'b'}"])
    train_painter(cfg, stop_after=2)
    halves = train_painter(cfg, resume=True)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(halves / "model.safetensors"))
    assert a.keys() == b.keys() and "tokens.weight" in a
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert Painter.from_pretrained(whole).config.masked
