"""The pixel judge: validation against ground truth, input forms, junk, bad input."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from lvg.worlds.shapes.judge import JudgeInputError, judge, read_image
from lvg.worlds.shapes.judge_check import validate_judge
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.world import Obj, Scene


@pytest.fixture(scope="module")
def validation():
    return validate_judge(num=800, seed=0, noise=10.0, blur=0.8)  # (the benchmark runs more; 800 miss nothing here)


def test_passes_correct_scenes_under_noise_and_blur(validation):
    assert validation["correct_pass_rate"] >= 0.995


def test_mismatched_pairs_pass_no_more_often_than_chance(validation):
    # chance = how often the random scene really satisfies the random spec (same pairs)
    assert validation["mismatched_judge_pass_rate"] <= validation["mismatched_truth_rate"]
    assert validation["mismatched_false_accepts"] == 0


def test_near_misses_are_caught(validation):
    # one attribute changed: the judge must agree with the symbolic truth in both directions
    assert 0.1 < validation["near_miss_truth_rate"] < 0.9  # both outcomes are well represented
    assert validation["near_miss_false_accepts"] == 0
    assert validation["near_miss_agreement"] >= 0.995


def test_reads_clean_scenes_exactly():
    rng = random.Random(4)
    from lvg.worlds.shapes.world import sample_scene

    for _ in range(300):
        scene = sample_scene(rng)
        r = read_image(render(scene))
        assert r.bg == scene.bg
        assert sorted((o.shape, o.color, o.size, o.cell) for o in r.objects) == sorted(
            (o.shape, o.color, o.size, o.cell) for o in scene.objects
        )


def test_input_forms_and_upscales():
    scene = Scene((Obj("star", "pink", "small", (0, 2), (1, -1)), Obj("cross", "cyan", "large", (2, 0))), "black")
    img = render(scene)
    prompt = "a small pink star in the top right and a large cyan cross in the bottom left on a black background"
    big = np.kron(img, np.ones((4, 4, 1), np.uint8))  # 256x256 nearest upscale
    for form in (
        img,
        Image.fromarray(img),
        Image.fromarray(big),
        big,
        torch.from_numpy(img).permute(2, 0, 1),
        torch.from_numpy(img).permute(2, 0, 1).float() / 255,
    ):
        assert judge(form, prompt).passed
    assert not judge(img, "a small pink star in the top left and a large cyan cross in the bottom left").passed
    assert not judge(img, "a small pink star and a large cyan cross on a white background").passed


def test_junk_is_an_unknown_object():
    img = render(Scene((Obj("circle", "red", "large", (1, 1)),), "white")).copy()
    rng = np.random.default_rng(0)
    img[4:16, 4:16] = rng.integers(0, 255, (12, 12, 3))  # a noisy blob in cell (0, 0)
    v = judge(img, "a red circle")
    assert not v.passed and "2 objects" in v.reason
    blob = next(o for o in v.reading.objects if o.cell == (0, 0))
    assert blob.shape is None
    # a circle cut in half by moving it across a cell border is not a circle
    img = render(Scene((Obj("square", "blue", "large", (1, 1)),), "white"))
    shifted = np.full_like(img, 255)
    shifted[:, :-11] = img[:, 11:]
    assert not judge(shifted, "a blue square").passed


@pytest.mark.parametrize(
    "bad", [np.zeros((64, 64)), np.zeros((63, 63, 3)), np.zeros((64, 128, 3)), np.full((64, 64, 3), np.nan)]
)
def test_bad_images_raise_a_clear_error(bad):
    with pytest.raises(JudgeInputError):
        judge(bad, "a red circle")


def test_the_touching_set_states_what_its_scenes_hold_and_its_boxes_nearly_touch():
    """Each touching prompt parses to its row's spec in both languages, its own (tightest) scene passes the judge
    on that spec, and every scene's closest boxes are 1.3-3.3 px apart (neighbouring cells, jittered inwards)."""
    from lvg.worlds.shapes.parse import parse_caption
    from lvg.worlds.shapes.prompt_sets import touching_prompts
    from lvg.worlds.shapes.scene_layout import layout_from_scene

    rows = touching_prompts()
    assert len(rows) == 200 and rows == touching_prompts()  # seeded
    assert {r["category"] for r in rows} == {"touching_2", "touching_3", "touching_4"}
    gaps = []
    for r in rows:
        assert parse_caption(r["en"]) == r["spec"] == parse_caption(r["zh"])
        scene = Scene.from_dict(r["scene"])
        assert all(o.size == "large" for o in scene.objects) and judge(render(scene), r["spec"]).passed
        b = [o.box for o in layout_from_scene(scene).objects]
        gaps.append(
            min(max(q[0] - p[2], p[0] - q[2], q[1] - p[3], p[1] - q[3]) for i, p in enumerate(b) for q in b[i + 1 :])
        )
    assert 1.3 <= min(gaps) and max(gaps) <= 3.34 and sum(g < 1.4 for g in gaps) > 150
