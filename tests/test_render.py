"""Contract geometry, to the pixel (docs/shapes-world.md: Canvas, Objects, Layout)."""

import math
import random

import numpy as np
import pytest

from lvg.worlds.shapes.render import object_alpha, object_box, render
from lvg.worlds.shapes.world import (
    BACKGROUNDS,
    CANVAS,
    CELLS,
    COLORS,
    SHAPES,
    SIZES,
    Obj,
    Scene,
    cell_center,
    sample_scene,
)

RED = COLORS["red"]
WHITE = BACKGROUNDS["white"]


def one(shape, size="large", color="red", cell=(1, 1), jitter=(0, 0), bg="white"):
    return render(Scene((Obj(shape, color, size, cell, jitter),), bg))


def test_canvas_and_backgrounds():
    for bg, rgb in BACKGROUNDS.items():
        img = one("circle", bg=bg)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert tuple(img[0, 0]) == rgb and tuple(img[63, 63]) == rgb


def test_cell_centres_follow_the_grid():
    assert cell_center((0, 0)) == pytest.approx((64 / 6, 64 / 6))
    assert cell_center((1, 1)) == (32.0, 32.0)
    assert cell_center((2, 1)) == pytest.approx((32.0, 5 * 64 / 6))


def test_large_square_exact_pixels():
    img = one("square")  # centre (32, 32), side 16: covers [24, 40) exactly
    assert (img[24:40, 24:40] == RED).all()
    assert (img[23, 20:44] == WHITE).all() and (img[40, 20:44] == WHITE).all()
    assert (img[20:44, 23] == WHITE).all() and (img[20:44, 40] == WHITE).all()


def test_small_square_partial_coverage_at_fractional_centre():
    # cell (0, 0): centre (10.67, 10.67), side 10: [5.67, 15.67) -> pixel 5 is 1/3 covered, 15 is 2/3
    a, (x0, y0) = object_alpha(Obj("square", "red", "small", (0, 0)))
    full = np.zeros((64, 64), np.float32)
    full[y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a
    assert full[10, 6:15] == pytest.approx(1.0)
    assert full[10, 5] == pytest.approx(1 / 3, abs=1 / 16)  # 16x16 supersampling resolution
    assert full[10, 15] == pytest.approx(2 / 3, abs=1 / 16)
    img = render(Scene((Obj("square", "red", "small", (0, 0)),), "white"))
    assert tuple(img[10, 10]) == RED
    expected = np.rint(255 + (2 / 3) * (np.array(RED) - 255))
    assert np.abs(img[10, 15].astype(int) - expected).max() <= 255 / 16  # anti-aliased edge


def test_circle_geometry():
    img = one("circle")  # radius 8 around (32, 32)
    assert tuple(img[31, 31]) == RED and tuple(img[32, 25]) == RED  # pixel spanning x 25..26 is inside
    assert tuple(img[24, 24]) == WHITE  # bounding-box corner is outside the disk
    assert tuple(img[32, 41]) == WHITE


def test_triangle_apex_up():
    img = one("triangle")  # apex (32, 24); base y = 40 from x = 24 to 40
    assert tuple(img[39, 25]) == RED and tuple(img[39, 38]) == RED  # wide base row
    assert tuple(img[25, 24]) == WHITE and tuple(img[25, 39]) == WHITE  # narrow top
    assert tuple(img[40, 31]) == WHITE  # nothing below the base
    a, _ = object_alpha(Obj("triangle", "red", "large", (1, 1)))
    assert a[0].sum() < a[-1].sum()  # narrow at the top, wide at the bottom


def test_diamond_and_cross():
    img = one("diamond")
    assert tuple(img[31, 31]) == RED and tuple(img[24, 24]) == WHITE and tuple(img[39, 39]) == WHITE
    img = one("cross")  # arms 16/3 = 5.33 px thick: centre band rows 29.33..34.67
    assert (img[30:34, 24:40] == RED).all() and (img[24:40, 30:34] == RED).all()
    assert tuple(img[25, 25]) == WHITE and tuple(img[38, 38]) == WHITE


def test_star_point_up():
    a, (x0, y0) = object_alpha(Obj("star", "red", "large", (1, 1)))
    full = np.zeros((64, 64), np.float32)
    full[y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a
    assert full[31:33, 31:33].min() == pytest.approx(1.0)
    assert full[24, 31:33].sum() > 0.1  # top point reaches y = 24
    assert full[39, 31:33].sum() < 0.05  # no bottom point: between the two lower legs
    assert full[24, 24] == 0 and full[24, 39] == 0


ANALYTIC_AREA = {
    "circle": lambda s: math.pi * s * s / 4,
    "square": lambda s: s * s,
    "triangle": lambda s: s * s / 2,
    "diamond": lambda s: s * s / 2,
    "star": lambda s: 5 * (s / 2) * (0.4 * s / 2) * math.sin(math.radians(36)),
    "cross": lambda s: 5 / 9 * s * s,
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", list(SIZES))
def test_areas_match_the_geometry(shape, size):
    for cell, jitter in [((0, 0), (0, 0)), ((2, 2), (-2, 1)), ((1, 0), (2, -2))]:
        a, _ = object_alpha(Obj(shape, "red", size, cell, jitter))
        assert a.sum() == pytest.approx(ANALYTIC_AREA[shape](SIZES[size]), rel=0.02)


def test_every_colour_is_exact_in_the_interior():
    for name, rgb in COLORS.items():
        for bg in BACKGROUNDS:
            assert tuple(one("square", color=name, bg=bg)[32, 32]) == rgb


def test_objects_never_overlap_or_touch_the_edge():
    for cell in CELLS:
        for size, s in SIZES.items():
            for jx in (-2, 2):
                for jy in (-2, 2):
                    cx, cy = Obj("square", "red", size, cell, (jx, jy)).center
                    assert cx - s / 2 > 0 and cy - s / 2 > 0 and cx + s / 2 < CANVAS and cy + s / 2 < CANVAS
    rng = random.Random(0)
    for _ in range(500):
        scene = sample_scene(rng)
        owner = np.zeros((64, 64), int)
        for k, o in enumerate(scene.objects, 1):
            x0, y0, x1, y1 = object_box(o.center, SIZES[o.size])
            assert (owner[y0:y1, x0:x1] == 0).all()  # pixel boxes are disjoint
            owner[y0:y1, x0:x1] = k


def test_training_distribution():
    rng = random.Random(1)
    scenes = [sample_scene(rng) for _ in range(20000)]
    counts = np.bincount([len(s.objects) for s in scenes], minlength=5)[1:] / len(scenes)
    assert counts == pytest.approx([0.35, 0.35, 0.15, 0.15], abs=0.015)
    assert np.mean([s.bg == "white" for s in scenes]) == pytest.approx(0.75, abs=0.015)
    jit = {o.jitter for s in scenes for o in s.objects}
    assert jit == {(x, y) for x in range(-2, 3) for y in range(-2, 3)}


def test_invalid_scenes_are_refused():
    with pytest.raises(ValueError):
        Scene((), "white")
    with pytest.raises(ValueError):
        Scene((Obj("circle", "red", "small", (0, 0)), Obj("star", "red", "small", (0, 0))), "white")
    with pytest.raises(ValueError):
        Scene((Obj("hexagon", "red", "small", (0, 0)),), "white")
    with pytest.raises(ValueError):
        Scene((Obj("circle", "red", "small", (0, 0), (3, 0)),), "white")
