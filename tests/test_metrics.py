"""Known-answer tests for lvg.eval.metrics."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lvg.eval.metrics import (
    PixelFeatures,
    cycle_consistency,
    distinct_fraction,
    diversity,
    frechet_distance,
    kernel_inception_distance,
    pixel_shuffle,
    sanity_checks,
)
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import load_prompts
from lvg.worlds.shapes.captions import describe_fully, spec_to_text
from lvg.worlds.shapes.heldout import held_out_images
from lvg.worlds.shapes.parse import parse_caption
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.spec import scene_from_spec


def test_identical_sets_have_zero_fid_and_kid():
    x = np.random.default_rng(0).normal(size=(500, 8)) * 3.0
    scale = float(np.trace(np.cov(x, rowvar=False)))
    assert frechet_distance(x, x) < 1e-6 * scale
    mean, std = kernel_inception_distance(x, x, subsets=5, subset_size=200)
    far, _ = kernel_inception_distance(x, x + 3.0, subsets=5, subset_size=200)
    assert abs(mean) < 0.01 * far and std >= 0


def test_fid_matches_analytic_gaussians():
    rng = np.random.default_rng(1)
    m = np.array([2.0, -1.0, 0.5, 0.0])
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) + m
    assert frechet_distance(a, b) == pytest.approx(float(m @ m), rel=0.01)
    # identity vs 4 * identity covariance, equal means: Tr(I + 4I - 2 * 2I) = D
    c = rng.normal(size=(20000, 4)) * 2.0
    assert frechet_distance(a, c) == pytest.approx(4.0, rel=0.03)


def test_disjoint_sets_are_far_apart():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) + 10
    assert frechet_distance(a, b) > 500
    near, _ = kernel_inception_distance(a, rng.normal(size=(300, 6)), subsets=5, subset_size=100)
    far, _ = kernel_inception_distance(a, b, subsets=5, subset_size=100)
    assert far > 100 * max(abs(near), 1e-3)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :3])


def test_pixel_features_are_deterministic():
    imgs = held_out_images(6)
    f1, f2 = PixelFeatures()(imgs), PixelFeatures()(imgs)
    assert f1.shape == (6, PixelFeatures().dim) and torch.equal(f1, f2)
    assert torch.allclose(f1[:, 16:28].reshape(6, 3, 4).sum(-1), torch.ones(6, 3))  # histogram fractions


def test_diversity_and_distinct_fraction():
    same = torch.ones(6, 5)
    assert diversity(same, [0, 0, 0, 1, 1, 1]) == 0.0
    assert diversity(torch.randn(6, 5), [0, 0, 0, 1, 1, 1]) > 0
    assert np.isnan(diversity(torch.randn(2, 5), [0, 1]))
    eq = torch.zeros(8, 2, 2, dtype=torch.long)
    assert distinct_fraction(eq, [0] * 4 + [1] * 4) == pytest.approx(0.25)
    diff = torch.arange(32).reshape(8, 2, 2)
    assert distinct_fraction(diff, [0] * 4 + [1] * 4) == 1.0
    assert distinct_fraction([[1, 2], [1, 2], [3], [4]], ["a", "a", "b", "b"]) == pytest.approx(0.75)


def test_sanity_checks_on_held_out_renders():
    imgs = held_out_images(200)
    res = sanity_checks(imgs)
    assert res["passed"] and res["fid_real_shuffled"] > 3 * res["fid_real_real"]
    shuffled = pixel_shuffle(imgs[:2])
    assert torch.equal(shuffled.flatten(2).sort(-1).values, imgs[:2].flatten(2).sort(-1).values)


class RenderDouble:
    """A pipeline double: draws a scene satisfying the prompt, renders it, captions it canonically."""

    def __init__(self, garbage: bool = False) -> None:
        self.garbage, self.scenes = garbage, {}

    def __call__(self, prompts, num_images=1, seed=0, **kw):
        images = []
        for i, p in enumerate(prompts):
            scene = scene_from_spec(parse_caption(p), random.Random(seed + i))
            img = Image.fromarray(render(scene))
            self.scenes[id(img)] = scene
            images.append(img)
        return SimpleNamespace(images=images, codes=None, seeds=list(range(seed, seed + len(prompts))))

    def caption(self, images, lang="en", **kw):
        if self.garbage:
            return ["purple elephants " * (i % 3) for i in range(len(images))]
        return [spec_to_text(describe_fully(self.scenes[id(im)]), lang) for im in images]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_cycle_consistency_with_doubles(lang):
    prompts = load_prompts(benchmark_prompts_file())[::25]
    good = cycle_consistency(RenderDouble(), prompts, lang=lang)
    assert good["rate"] == 1.0 and good["complete_rate"] == 1.0 and len(good["rows"]) == len(prompts)
    bad = cycle_consistency(RenderDouble(garbage=True), prompts, lang=lang)
    assert bad["rate"] == 0.0 and bad["parse_rate"] == 0.0
    assert all(not r["consistent"] and r["reason"] for r in bad["rows"])
