"""Reading off the 3x3 grid and "how many objects are there?" (issue 23): the data the reading LM learns them from,
and the benchmark that measures them."""

from __future__ import annotations

import random

import pytest

from lvg.data.layout import reading_order
from lvg.eval.reading import evaluate_off_grid, off_grid_items
from lvg.worlds.shapes.heldout import HELD_OUT_SEED
from lvg.worlds.shapes.reading import (
    OFF_GRID_SIDES,
    QUESTION_TYPES,
    TOTAL_ASK,
    ReadingDataConfig,
    make_question,
    make_reading_sample,
    off_grid_boxes,
    off_grid_layout,
    off_grid_question,
)
from lvg.worlds.shapes.world import CANVAS, GRID, sample_scene


def test_off_grid_boxes_stay_in_their_cell_and_size_band_and_never_overlap():
    rng = random.Random(0)
    step = CANVAS / GRID
    for _ in range(500):
        scene = sample_scene(rng)
        boxes = off_grid_boxes(scene, rng)
        for o, (x0, y0, x1, y1) in boxes.items():
            lo, hi = OFF_GRID_SIDES[o.size]
            assert 0 <= x0 < x1 <= CANVAS and 0 <= y0 < y1 <= CANVAS
            assert lo <= x1 - x0 <= hi and lo <= y1 - y0 <= hi or (x1 - x0, y1 - y0) in ((10, 10), (16, 16))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            assert (int(cy // step), int(cx // step)) == o.cell
        layout, objs = off_grid_layout(scene, boxes)  # a Layout refuses overlapping boxes
        assert layout == reading_order(layout) and len(objs) == len(scene.objects)


def test_the_default_reading_stream_draws_no_off_grid_layout_and_no_total_question():
    cfg = ReadingDataConfig()
    assert cfg.weights()[QUESTION_TYPES.index("total")] == 0
    assert {make_reading_sample(i, cfg).kind for i in range(400)} <= set(QUESTION_TYPES) - {"total"} | {"caption"}


def test_the_off_grid_stream_mixes_both_and_its_captions_name_cell_and_size_from_the_box():
    cfg = ReadingDataConfig(off_grid_prob=1.0, caption_prob=1.0)
    for i in range(50):
        s = make_reading_sample(i, cfg)
        for o in s.layout.objects:
            side = max(o.box[2] - o.box[0], o.box[3] - o.box[1])
            size = ("small" if side <= 12 else "large") if s.lang == "en" else ("小的" if side <= 12 else "大的")
            assert size in s.answer  # (every object's size is stated)
    s = make_reading_sample(0, ReadingDataConfig(off_grid_prob=0.5, question_weights={"total": 1}))
    assert s == make_reading_sample(0, ReadingDataConfig(off_grid_prob=0.5, question_weights={"total": 1}))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_how_many_objects_counts_every_object_with_its_working(lang):
    rng = random.Random(3)
    for _ in range(50):
        scene = sample_scene(rng)
        q = make_question(scene, "total", lang, rng)
        assert q.answer == str(len(scene.objects)) and q.text in TOTAL_ASK[lang]
        assert len(q.work.split(";")) == len(scene.objects)
    layout, q = off_grid_question("total", lang, rng, held_out=True)
    assert q.answer == str(len(layout.objects))


def test_evaluate_off_grid_scores_a_perfect_reader_100_and_a_wrong_one_0():
    truth = {lay.to_json(): cap for lay, cap in off_grid_items(20, "en")}
    answers = {}  # the benchmark's questions come from their own seeds: draw them again to know the answers
    for kind in QUESTION_TYPES:
        rng = random.Random(f"lvg-offgrid-vqa:{HELD_OUT_SEED}:en:{kind}")
        answers.update({(lay.to_json(), q.text): q.answer
                        for lay, q in (off_grid_question(kind, "en", rng, held_out=True) for _ in range(2))})  # fmt: skip
    perfect = evaluate_off_grid(lambda lays, lang: [truth[lay.to_json()] for lay in lays],
                                lambda lays, qs: [answers[(lay.to_json(), q)] for lay, q in zip(lays, qs)], 20, "en")  # fmt: skip
    assert perfect["captions"] == 1.0 and perfect["questions"] == 1.0
    wrong = evaluate_off_grid(lambda lays, lang: ["a red circle"] * len(lays), lambda lays, qs: ["?"] * len(qs), 20)
    assert wrong["captions"] == 0.0 and wrong["questions"] == 0.0 and wrong["fails"]
