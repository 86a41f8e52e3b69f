"""Restoration (issue 22): read the damaged image, paint it again; a mask keeps the known pixels; clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import make_tiny_planned
from PIL import Image

from lvg.cli import main
from lvg.pipelines.planned import PlannedPipeline
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.world import sample_scene


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path_factory.mktemp("restore") / "m"))


def _noisy(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((64, 64, 3), 255, np.uint8)
    img[20:36, 20:36] = (220, 30, 40)
    return np.clip(img + rng.normal(0, 30, img.shape), 0, 255).astype(np.uint8)


def test_restore_paints_what_it_reads_and_is_deterministic(pipe):
    out = pipe.restore([_noisy(0), _noisy(1)])
    assert len(out.images) == len(out.layouts) == 2 and out.sources == ["read", "read"]
    assert all(im.size == (64, 64) for im in out.images)
    again = pipe.restore([_noisy(0), _noisy(1)])
    assert [np.asarray(a).tobytes() for a in out.images] == [np.asarray(b).tobytes() for b in again.images]
    # the painting is the painter's picture of the layout it read
    painted, _ = pipe.paint(out.layouts)
    assert np.array_equal(np.asarray(painted[0]), np.asarray(out.images[0]))


def test_a_mask_keeps_every_known_pixel_and_repaints_only_the_hole(pipe):
    img = _noisy(2)
    mask = np.zeros((64, 64), bool)
    mask[10:30, 30:50] = True
    out = np.asarray(pipe.restore(img, mask=mask).images[0])
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])
    as_image = Image.fromarray((mask * 255).astype(np.uint8))  # a mask image: white = missing
    assert np.array_equal(np.asarray(pipe.restore(img, mask=as_image).images[0]), out)


def test_a_prompt_adds_candidates_and_the_closest_wins(pipe):
    out = pipe.restore(_noisy(3), prompt="a large red square", candidates=3)
    assert out.sources[0] in ("read", "prompt") and len(out.images) == 1


def test_bad_inputs_are_clear_errors(pipe, tmp_path):
    with pytest.raises(ValueError, match="a mask must be 64x64"):
        pipe.restore(_noisy(), mask=np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="one prompt and one mask each"):
        pipe.restore([_noisy(), _noisy()], prompt=["a", "b", "c"])
    with pytest.raises(ValueError, match="no images"):
        pipe.restore([])
    with pytest.raises(ValueError, match="candidates"):
        pipe.restore(_noisy(), prompt="a red circle", candidates=0)
    no_reader = PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "nr", reader=False))
    with pytest.raises(ValueError, match="needs a planned model with a reader"):
        no_reader.restore(_noisy())


def test_lvg_restore_writes_the_image_and_names_bad_files(pipe, tmp_path, capsys):
    model = tmp_path / "m"
    pipe.save_pretrained(model)
    src = tmp_path / "noisy.png"
    Image.fromarray(_noisy()).save(src)
    assert main(["restore", str(src), "-o", str(tmp_path / "out.png"), "--model", str(model)]) == 0
    assert Image.open(tmp_path / "out.png").size == (64, 64)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["restore", str(tmp_path / "bad.png"), "-o", str(tmp_path / "o2.png"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.png" in err[0]
    assert main(["restore", str(src), str(src), "-o", str(tmp_path / "o3.png"), "--model", str(model)]) == 2


def test_the_reader_s_damage_augmentation_is_seeded_and_damages_the_share_asked():
    """lvg.train.reader.damage: prob 0 leaves every image as it was, prob 1 damages every one, and a seed repeats it;
    a share outside [0, 1] is a config error naming the field."""
    from lvg.train.reader import ReaderTrainingConfig, damage

    x = torch.from_numpy(np.stack([render(sample_scene(random.Random(i))) for i in range(24)])).permute(0, 3, 1, 2)
    assert torch.equal(damage(x, 0.0, torch.Generator().manual_seed(0)), x)
    hit = damage(x, 1.0, torch.Generator().manual_seed(0))
    assert hit.dtype == torch.uint8 and hit.shape == x.shape  # (a black hole on a black background changes nothing)
    assert (hit != x).flatten(1).any(1).float().mean() > 0.9
    assert torch.equal(hit, damage(x, 1.0, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="damage_prob"):
        ReaderTrainingConfig(damage_prob=1.5)


def test_a_hole_is_filled_from_its_border_before_the_reader_sees_it():
    """fill_holes: the known pixels stay, and a hole in a flat background becomes that background (not black)."""
    from lvg.pipelines.restore import fill_holes

    img = torch.full((3, 64, 64), 255, dtype=torch.uint8)
    img[0, :, :32] = 40  # two flat halves
    hole = torch.zeros(64, 64, dtype=torch.bool)
    hole[20:40, 5:25] = True
    holed = img.clone()
    holed[:, hole] = 0
    filled = fill_holes(holed, hole)
    assert torch.equal(filled[:, ~hole], img[:, ~hole])
    assert (filled[:, hole].int() - img[:, hole].int()).abs().max() <= 3  # (300 smoothing rounds: within 3 levels)
    assert torch.equal(fill_holes(img, torch.zeros(64, 64, dtype=torch.bool)), img)
    two = torch.zeros(64, 64, dtype=torch.bool)
    two[0:6, 50:64] = two[40:44, 10:12] = True  # two holes, one at the image's edge: one bounding box
    batch = fill_holes(torch.stack([holed, img]), torch.stack([hole, two]))  # a batch: each image as alone
    assert torch.equal(batch[0], filled) and torch.equal(batch[1], fill_holes(img, two))
    assert torch.equal(batch[1][:, ~two], img[:, ~two])


def test_the_reader_s_hole_augmentation_fills_the_hole_and_drops_objects_mostly_inside_it():
    """lvg.train.reader.holes: one filled square hole per image picked (pixels outside it unchanged), objects more
    than half inside it leave the layout, the rest stay; seeded; prob 0 changes nothing."""
    from lvg.train.reader import ReaderTrainingConfig, holes
    from lvg.worlds.shapes.scene_layout import layout_from_scene

    scenes = [sample_scene(random.Random(i)) for i in range(32)]
    x = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2)
    lays = [layout_from_scene(s) for s in scenes]
    same, kept = holes(x, lays, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, x) and kept == lays
    hit, cut = holes(x, lays, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(hit, holes(x, lays, 1.0, torch.Generator().manual_seed(0))[0])
    changed = (hit != x).any(1)  # [B, H, W]: inside each image's hole only
    dropped = 0
    for i in range(len(x)):
        if not changed[i].any():
            continue  # (a hole over flat background filled back to that background)
        ys, xs = changed[i].nonzero(as_tuple=True)
        square = (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1)
        assert square[2] - square[0] <= 28 and square[3] - square[1] <= 28
        assert set(cut[i].objects) <= set(lays[i].objects)
        dropped += len(lays[i].objects) - len(cut[i].objects)
    assert dropped > 0 and sum(len(c.objects) for c in cut) > sum(len(la.objects) for la in lays) // 2
    with pytest.raises(ValueError, match="hole_prob"):
        ReaderTrainingConfig(hole_prob=-0.1)
