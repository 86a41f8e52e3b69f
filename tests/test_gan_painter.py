"""The GAN painter (lvg/models/gan.py, lvg/train/gan.py): it learns layouts, samples with seeds, reproduces a seed
byte for byte whatever batch it shares, resumes exactly, and plugs into a planned pipeline through the registry."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import make_tiny_planned
from PIL import Image

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.models.gan import DiscriminatorConfig, GanPainter, GanPainterConfig, LayoutDiscriminator, place
from lvg.train.config import load_config
from lvg.train.gan import GanPainterTrainingConfig, train_gan_painter
from lvg.worlds.shapes.captions import describe_fully
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS, layout_from_scene
from lvg.worlds.shapes.world import sample_scene

WORDS = sorted({w for lab in SHAPES_WORLD_LABELS for w in lab.split()})


def tiny(**kw) -> GanPainter:
    torch.manual_seed(0)
    cfg = dict(label_words=WORDS, backgrounds=list(SHAPES_WORLD_BACKGROUNDS), embed_dim=32, noise_dim=8, sprite=16,
               width=32, refine_width=8)  # fmt: skip
    return GanPainter(GanPainterConfig(**(cfg | kw)))


def lay(*objects: tuple[str, list[float]], bg: str = "white") -> Layout:
    return Layout(bg, [LayoutObject(label, box) for label, box in objects], 64)


def test_place_puts_a_sprite_exactly_in_its_box():
    sprite = torch.ones(1, 4, 8, 8)
    out = place(sprite, torch.tensor([[10.0, 20.0, 30.0, 36.0]]), 64, 2)[0, 3]  # alpha [64, 64]
    inside = out[20:36, 10:30]
    assert torch.allclose(inside, torch.ones_like(inside))
    outside = out.clone()
    outside[20:36, 10:30] = 0
    assert outside.abs().max() == 0


def test_seeds_sample_and_a_seed_reproduces_its_bytes_in_any_batch():
    g = tiny().eval()
    a = lay(("red circle", [8, 8, 28, 28]), ("blue square", [36, 36, 56, 56]))
    b = lay(("green star", [20, 20, 44, 44]), bg="black")
    one = g.paint([a], [5])
    assert not torch.equal(one, g.paint([a], [6]))  # another seed: another image
    batch = g.paint([b, a, b], [1, 5, 2])
    assert torch.equal(batch[1], one[0])  # the same seed in another batch: the same bytes
    assert one.dtype == torch.uint8 and one.shape == (1, 3, 64, 64)


def test_bad_layouts_are_named():
    g = tiny()
    with pytest.raises(LayoutError, match="unknown word 'dragon'"):
        g.paint([lay(("red dragon", [8, 8, 28, 28]))])
    with pytest.raises(LayoutError, match="background"):
        g.paint([lay(("red circle", [8, 8, 28, 28]), bg="green")])
    with pytest.raises(ValueError, match="2 seeds for 1 layouts"):
        g.paint([lay(("red circle", [8, 8, 28, 28]))], [1, 2])


def test_discriminator_scores_images_and_every_object():
    g = tiny()
    d = LayoutDiscriminator(DiscriminatorConfig(width=8, crop=16), len(WORDS), 2, 64)
    t = g.encode_layouts([lay(("red circle", [8, 8, 28, 28]), ("blue square", [36, 36, 56, 56])),
                          lay(("green star", [20, 20, 44, 44]))])  # fmt: skip
    img, obj = d(torch.rand(2, 3, 64, 64), t["boxes"], t["words"], t["valid"], t["bg"])
    assert img.shape == (2,) and obj.shape == (3,)


def test_a_tiny_gan_painter_overfits_layouts_and_the_judge_passes_them():
    scenes = [sample_scene(random.Random(f"gan-test:{i}")) for i in range(40)]
    scenes = [s for s in scenes if len(s.objects) == 1 and s.objects[0].size == "large"][:3]
    assert len(scenes) == 3
    layouts = [layout_from_scene(s) for s in scenes]
    real = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2).float() / 255
    g = tiny(refine_width=0, width=64, sprite=32)
    t = g.encode_layouts(layouts)
    z = g.noise([0, 1, 2])
    opt = torch.optim.AdamW(g.parameters(), lr=3e-3)
    for _ in range(250):
        loss = (g(t["boxes"], t["words"], t["valid"], t["bg"], **z) - real).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    images = g.eval().paint(layouts, [0, 1, 2]).permute(0, 2, 3, 1).numpy()
    verdicts = [judge(im, describe_fully(s)) for im, s in zip(images, scenes, strict=True)]
    assert all(v.passed for v in verdicts), [v.reason for v in verdicts]


def test_training_resumes_exactly_and_the_folder_loads_in_a_planned_pipeline(tmp_path):
    def cfg(out):
        return load_config(GanPainterTrainingConfig, None, [
            f"train.out_dir={out}", "train.steps=4", "train.batch_size=4", "train.eval_every=4", "train.log_every=1",
            "train.ckpt_every=2", "train.progress=false", "train.device=cpu", "train.precision=fp32",
            "train.ema_decay=0.9", "loss.gan_start=1", "eval.scenes=4", "model.embed_dim=16", "model.noise_dim=4",
            "model.sprite=8", "model.width=16", "disc.width=8", "disc.crop=8"])  # fmt: skip

    straight = train_gan_painter(cfg(tmp_path / "a"))
    train_gan_painter(cfg(tmp_path / "b"), stop_after=2)  # killed after 2 steps (checkpointed)
    resumed = train_gan_painter(cfg(tmp_path / "b"), resume=True)
    a, b = GanPainter.from_pretrained(straight), GanPainter.from_pretrained(resumed)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert any('"train/d_loss"' in line for line in lines) and any('"val/scene_pass"' in line for line in lines)

    from lvg.pipelines.planned import PlannedPipeline

    folder = make_tiny_planned(tmp_path / "m", reader=False)
    pipe = PlannedPipeline.from_pretrained(folder)
    pipe.painter = a
    pipe.save_pretrained(tmp_path / "gan-model")
    assert '"GanPainter"' in (tmp_path / "gan-model" / "model_index.json").read_text()
    again = PlannedPipeline.from_pretrained(tmp_path / "gan-model")
    assert isinstance(again.painter, GanPainter)
    layout = lay(("red circle", [8, 8, 28, 28]))
    one = again(layout=layout, seed=3)
    two = again(layout=[layout, layout], seed=3)  # image j uses seed 3 + j
    assert np.array_equal(np.asarray(one.images[0]), np.asarray(two.images[0]))
    assert one.codes.shape == (1, 8, 8)  # the image tokenizer's codes of the painted image
    out = again("a red circle", seed=0, num_images=2)
    assert len(out.images) == 2 and out.images[0].size == (64, 64)


def test_the_code_painter_samples_at_a_temperature_through_generation_config(tmp_path):
    from lvg.pipelines.planned import PlannedPipeline

    pipe = PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "m", reader=False))
    layout = lay(("red circle", [8, 8, 28, 28]), ("blue square", [36, 36, 56, 56]))
    argmax = pipe(layout=layout, seed=0).codes
    assert torch.equal(argmax, pipe(layout=layout, seed=1).codes)  # painter_temperature=0: the seed does not matter
    hot = [pipe(layout=layout, seed=s, painter_temperature=1.0).codes for s in (0, 0, 1)]
    assert torch.equal(hot[0], hot[1]) and not torch.equal(hot[0], hot[2]) and not torch.equal(hot[0], argmax)
    with pytest.raises(ValueError, match="painter_temperature"):
        pipe(layout=layout, painter_temperature=-1.0)


def test_a_folder_offers_its_gan_painter_as_an_option(tmp_path, capsys):
    from lvg.cli import main
    from lvg.pipelines.planned import PlannedPipeline

    base = PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "m", reader=False))
    with pytest.raises(ValueError, match="no gan_painter"):
        base.use_painter("gan")
    with pytest.raises(ValueError, match="painter must be one of"):
        base.use_painter("diffusion")
    both = PlannedPipeline(base.planner, base.painter, base.image_tokenizer, gan_painter=tiny().eval())
    folder = both.save_pretrained(tmp_path / "both")
    loaded = PlannedPipeline.from_pretrained(folder)
    assert isinstance(loaded.gan_painter, GanPainter) and loaded.use_painter("default") is loaded
    layout = lay(("red circle", [8, 8, 28, 28]))
    code = np.asarray(loaded(layout=layout).images[0])
    gan = loaded.use_painter("gan")
    assert isinstance(gan.painter, GanPainter) and gan.planner is loaded.planner
    assert not np.array_equal(np.asarray(gan(layout=layout).images[0]), code)
    with pytest.raises(ValueError, match="paints pixels"):
        gan(layout=layout, painter_temperature=0.5)
    out = tmp_path / "gan.png"
    assert main(["generate", "a red circle", "-o", str(out), "--model", str(folder), "--painter", "gan"]) == 0
    assert out.is_file()
    assert main(["generate", "a red circle", "-o", str(out), "--model", str(tmp_path / "m"), "--painter", "gan"]) == 2
    assert "no gan_painter" in capsys.readouterr().err


def test_a_folder_that_paints_with_its_gan_painter_offers_its_code_painter(tmp_path, capsys):
    """The GAN painter as the folder's painter, the code painter kept as code_painter/ (--painter code)."""
    from lvg.cli import main
    from lvg.models.painter import Painter
    from lvg.pipelines.planned import PlannedPipeline

    base = PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "m", reader=False))
    assert base.use_painter("code") is base  # its painter is a code painter already
    gan_first = PlannedPipeline(base.planner, tiny().eval(), base.image_tokenizer, code_painter=base.painter)
    folder = gan_first.save_pretrained(tmp_path / "gan-first")
    index = json.loads((folder / "model_index.json").read_text())["components"]
    assert index["painter"]["class"] == "GanPainter" and index["code_painter"]["class"] == "Painter"
    loaded = PlannedPipeline.from_pretrained(folder)
    assert isinstance(loaded.painter, GanPainter) and loaded.use_painter("gan") is loaded
    code = loaded.use_painter("code")
    assert isinstance(code.painter, Painter) and code.planner is loaded.planner
    layout = lay(("red circle", [8, 8, 28, 28]))
    assert np.array_equal(np.asarray(code(layout=layout).images[0]), np.asarray(base(layout=layout).images[0]))
    with pytest.raises(ValueError, match="code_painter must be a code painter"):
        PlannedPipeline(base.planner, base.painter, base.image_tokenizer, code_painter=tiny().eval())
    with pytest.raises(ValueError, match="gan_painter must be a gan painter"):
        PlannedPipeline(base.planner, base.painter, base.image_tokenizer, gan_painter=base.painter)
    out = tmp_path / "code.png"
    assert main(["generate", "a red circle", "-o", str(out), "--model", str(folder), "--painter", "code"]) == 0
    same = tmp_path / "same.png"  # the folder the code painter came from, its own painter
    assert main(["generate", "a red circle", "-o", str(same), "--model", str(tmp_path / "m")]) == 0
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(same).convert("RGB")))
    only_gan = PlannedPipeline(base.planner, tiny().eval(), base.image_tokenizer).save_pretrained(tmp_path / "g")
    assert main(["generate", "a red circle", "-o", str(out), "--model", str(only_gan), "--painter", "code"]) == 2
    assert "no code_painter" in capsys.readouterr().err


def test_fine_tuning_and_adapters_find_the_painter_of_their_kind_in_a_folder(tmp_path):
    """model_index.json, not a folder name, says where a folder's code and GAN painters are."""
    from lvg.pipelines.planned import PlannedPipeline

    code_first = make_tiny_planned(tmp_path / "m", reader=False)
    base = PlannedPipeline.from_pretrained(code_first)
    gan_first = PlannedPipeline(base.planner, tiny().eval(), base.image_tokenizer, code_painter=base.painter)
    gan_first = gan_first.save_pretrained(tmp_path / "gan-first")
    assert PlannedPipeline.painter_folder(code_first, "code") == code_first / "painter"
    assert PlannedPipeline.painter_folder(gan_first, "code") == gan_first / "code_painter"
    assert PlannedPipeline.painter_folder(gan_first, "gan") == gan_first / "painter"
    assert PlannedPipeline.painter_folder(gan_first / "painter", "gan") == gan_first / "painter"  # a painter folder
    with pytest.raises(FileNotFoundError, match="declares no gan painter"):
        PlannedPipeline.painter_folder(code_first, "gan")
    with pytest.raises(FileNotFoundError, match="neither a painter folder"):
        PlannedPipeline.painter_folder(tmp_path, "code")
    roles = {}
    for name, role in (("code", "painter"), ("gan", "gan painter"), ("planner", "planner")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lvg_adapter.json").write_text(json.dumps({"role": role}))
        roles[name] = tmp_path / name
    assert PlannedPipeline.painter_of_adapters([roles["planner"], roles["code"]]) == "code"
    assert PlannedPipeline.painter_of_adapters([roles["gan"]]) == "gan"
    assert PlannedPipeline.painter_of_adapters([roles["planner"]]) is None
    with pytest.raises(ValueError, match="a code-painter and a GAN-painter adapter together"):
        PlannedPipeline.painter_of_adapters([roles["code"], roles["gan"]])
