"""Layouts: JSON round trip, validation errors, scene <-> layout exactness, layout tokens and the grammar."""

import json
import random
from dataclasses import replace

import pytest
import torch

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.sampling.layout import constrain, grammar_mask
from lvg.sampling.sample import sample
from lvg.tokenizers.layout import END, LayoutGrammar, LayoutTokenizer
from lvg.train.planner import folder_layout_config, shapes_world_layout_config
from lvg.worlds.shapes.plans import PlanDataConfig, caption_order, make_plan_sample
from lvg.worlds.shapes.scene_layout import layout_from_scene, layout_to_scene
from lvg.worlds.shapes.spec import scene_satisfies
from lvg.worlds.shapes.world import sample_scene


@pytest.fixture(scope="module")
def tok() -> LayoutTokenizer:
    return LayoutTokenizer(shapes_world_layout_config())


def test_scene_layout_round_trip_is_exact():
    rng = random.Random(0)
    for _ in range(2000):
        scene = sample_scene(rng)
        lay = layout_from_scene(scene)
        assert layout_to_scene(lay) == scene
        assert Layout.from_json(lay.to_json()) == lay
        assert layout_to_scene(Layout.from_json(json.dumps(lay.to_dict()))) == scene


def test_layout_tokens_round_trip(tok):
    for i in range(500):
        lay = make_plan_sample(i).layout
        ids = tok.encode(lay)
        assert ids[0] == 0 and ids[-1] == END and len(ids) <= tok.max_length
        assert tok.decode(ids) == lay


def test_plan_samples_list_objects_in_caption_order():
    for i in range(300):
        s = make_plan_sample(i, PlanDataConfig(typed_prob=0, paraphrase_prob=0))
        assert scene_satisfies(layout_to_scene(s.layout), s.spec)
        assert caption_order(layout_to_scene(s.layout), s.spec) == list(range(len(s.layout.objects)))


@pytest.mark.parametrize(
    "doc, field",
    [
        ("[1, 2]", "JSON object"),
        ('{"objects": []}', "'background' is missing"),
        ('{"background": "white", "objects": {}}', "'objects' must be a list"),
        ('{"background": "white", "objects": [{"box": [1, 1, 5, 5]}]}', "object 0: field 'label' is missing"),
        ('{"background": "white", "objects": [{"label": "red star"}]}', "object 0: field 'box' is missing"),
        (
            '{"background": "white", "objects": [{"label": "red star", "box": [1, 1, 5]}]}',
            "object 0 (red star): field 'box'",
        ),
        ('{"background": "white", "objects": [{"label": "a", "box": [1, 1, 70, 5]}]}', "inside the canvas"),
        ('{"background": "white", "objects": [{"label": "a", "box": [5, 1, 1, 5]}]}', "object 0 (a): field 'box'"),
        ('{"background": "white", "objects": [{"label": "a", "box": ["1", 1, 5, 5]}]}', "4 finite numbers"),
        (
            '{"background": "white", "objects": [{"label": "a", "box": [0, 0, 10, 10]}, {"label": "b", "box": [5, 5, 15, 15]}]}',
            "object 1 (b): field 'box' [5.0, 5.0, 15.0, 15.0] overlaps object 0 (a)",
        ),
        ('{"background": "white", "objects": [{"label": "a", "box": [0, 0, 1, 1], "colour": 3}]}', "unknown fields"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_layouts_name_the_object_and_field(doc, field):
    with pytest.raises(LayoutError) as e:
        Layout.from_json(doc)
    assert field in str(e.value)


def test_touching_boxes_are_fine_and_file_errors_name_the_file(tmp_path):
    lay = Layout("white", (LayoutObject("a", (0, 0, 10, 10)), LayoutObject("b", (10, 0, 20, 10))))
    f = tmp_path / "l.json"
    f.write_text(lay.to_json())
    assert Layout.from_file(f) == lay
    with pytest.raises(LayoutError, match="cannot read layout file"):
        Layout.from_file(tmp_path / "missing.json")


def test_model_vocabulary_errors_name_the_field(tok):
    too_many = Layout("white", tuple(LayoutObject("red star", (i * 12, 0, i * 12 + 10, 10)) for i in range(5)))
    with pytest.raises(LayoutError, match="1 to 4 objects"):
        tok.encode(too_many)
    with pytest.raises(LayoutError, match="object 0: field 'label' 'pink elephant'"):
        tok.encode(Layout("white", (LayoutObject("pink elephant", (0, 0, 10, 10)),)))
    with pytest.raises(LayoutError, match="field 'background'"):
        tok.encode(Layout("grey", (LayoutObject("red star", (0, 0, 10, 10)),)))
    # boxes off the 1/3-px grid are quantised to the nearest bin (sizes to even bins), like Pix2Seq
    q = tok.decode(tok.encode(Layout("white", (LayoutObject("red star", (0.1, 0, 10, 10.2)),))))
    assert q.objects[0].box == pytest.approx((0.0, 0.0, 10.0, 10.0), abs=0.34)


def test_grammar_allows_the_true_sequences(tok):
    g = LayoutGrammar(tok)
    for i in range(300):
        body = tok.encode(make_plan_sample(i).layout)[1:]
        for t in range(len(body)):
            assert g.allowed(body[:t])[body[t]]


@pytest.mark.parametrize("min_side", [0, 10])
def test_grammar_constrained_sampling_never_yields_an_invalid_layout(min_side):
    """Property test: whatever the logits (random, peaked, adversarial), every sampled layout is valid, and no box
    side is under the config's ``min_side``."""
    tok = LayoutTokenizer(replace(shapes_world_layout_config(), min_side=min_side))
    g = LayoutGrammar(tok)
    torch.manual_seed(0)
    B = 64
    for trial in range(6):
        prefixes: list[list[int]] = [[] for _ in range(B)]
        gens = [torch.Generator().manual_seed(trial * B + i) for i in range(B)]
        while not all(p and p[-1] == END for p in prefixes):
            logits = torch.randn(B, tok.vocab_size) * (1 + 10 * (trial % 3))
            if trial >= 3:  # adversarial: push towards overlapping, out-of-range boxes and early ends
                logits[:, tok.loc_offset] += 20
                logits[:, -1] += 20
                logits[:, END] += 5
            token = sample(constrain(logits, grammar_mask(g, prefixes)), gens, temperature=1.0)
            for p, t in zip(prefixes, token.tolist()):
                if not p or p[-1] != END:
                    p.append(t)
        for p in prefixes:
            lay = tok.decode(p)  # raises LayoutError if invalid
            assert 1 <= len(lay.objects) <= 4
            assert all(
                min(x1 - x0, y1 - y0) >= max(min_side, 1 / 3) - 1e-3 for x0, y0, x1, y1 in (o.box for o in lay.objects)
            )


def test_min_side_keeps_a_box_from_being_squeezed_into_a_sliver():
    """The shipped planner's 3-4-object failures: after a box at x 48..58, rows 25..35, a large star started at
    x0 = 47, y0 = 25 could only end at x1 = 48 (a 1 px sliver, painted as nothing). With ``min_side`` 10 (Shapes
    World's small size) that corner is not allowed, and every x1 leaves a box at least 10 px wide."""
    for min_side, squeezed in ((0, True), (10, False)):
        t = LayoutTokenizer(replace(shapes_world_layout_config(bins_per_px=1), min_side=min_side))
        g = LayoutGrammar(t)
        first = t.encode(Layout("white", (LayoutObject("yellow diamond", (48, 25, 58, 35)),)))[1:-1]
        star = [*first, t._label_ids["yellow star"], t.loc_offset + 47]  # BG, the diamond, then the star's x0
        assert bool(g.allowed(star)[t.loc_offset + 25]) is squeezed  # y0 = 25, beside the diamond
        if squeezed:
            x1 = g.allowed([*star, t.loc_offset + 25])
            assert x1[t.loc_offset + 48] and not x1[t.loc_offset + 49]  # the sliver was the only box there
        ok = g.allowed([*star, t.loc_offset + 0])  # y0 = 0: room above the diamond
        assert ok[t.loc_offset + 47 + max(min_side, 1)] and not ok[t.loc_offset + 47 + max(min_side, 1) - 1]
    cfg = shapes_world_layout_config()
    assert type(cfg)(**cfg.to_dict()) == cfg and cfg.to_dict()["min_side"] == 10
    assert "min_side" not in replace(cfg, min_side=0).to_dict()  # folders written before it stay byte-identical
    with pytest.raises(ValueError, match="min_side 65 is larger than the canvas 64"):
        replace(cfg, min_side=65)


def test_a_folder_min_side_is_its_smallest_box():
    rows = [
        {"layout": Layout("white", (LayoutObject("cat", (0, 0, 20, 12.4)),))},
        {"layout": Layout("black", (LayoutObject("dog", (30, 30, 60, 60)), LayoutObject("cat", (1, 40, 18, 58))))},
    ]
    assert folder_layout_config(rows, bins_per_px=1).min_side == 12
    assert folder_layout_config(rows, bins_per_px=3).min_side == 12  # 12.4 px is 37 bins: 12 whole pixels


def test_whole_pixel_location_tokens_keep_every_object_and_cell():
    """The shipped planner writes whole-pixel coordinates: a box moves by at most half a pixel, and the scene read
    back within 1 px has the same objects, sizes and cells (jitter may differ by one pixel)."""
    t = LayoutTokenizer(shapes_world_layout_config(bins_per_px=1))
    assert t.num_locs == 65
    rng = random.Random(1)
    for _ in range(2000):
        scene = sample_scene(rng)
        lay = t.decode(t.encode(layout_from_scene(scene)))
        for a, b in zip(lay.objects, layout_from_scene(scene).objects):
            assert max(abs(u - v) for u, v in zip(a.box, b.box)) <= 0.5
        back = layout_to_scene(lay, tolerance=1.0)
        assert [(o.shape, o.color, o.size, o.cell) for o in back.objects] == [
            (o.shape, o.color, o.size, o.cell) for o in scene.objects
        ]
    with pytest.raises(LayoutError):
        layout_to_scene(lay)  # exact by default: whole pixels are not the 1/3-px grid


def test_line_order_reads_objects_beside_each_other_left_to_right():
    """Found on Emoji World's captions (2026-12-06): a small emoji whose centre sits a pixel above a large neighbour's
    came first in reading order; the caption lists cells row by row, and the reading LM swapped the two names."""
    from lvg.data.layout import line_order, reading_order

    big_left = LayoutObject("cat", (2.0, 2.0, 22.0, 22.0))  # centre y 12
    small_right = LayoutObject("dog", (45.0, 4.0, 59.0, 18.0))  # centre y 11, 1 px higher
    below = LayoutObject("fox", (24.0, 23.0, 38.0, 37.0))  # the next row (centre y 30)
    lay = Layout("white", (below, small_right, big_left), 64)
    assert [o.label for o in reading_order(lay).objects] == ["dog", "cat", "fox"]
    assert [o.label for o in line_order(lay).objects] == ["cat", "dog", "fox"]
    stacked = Layout(
        "white", (LayoutObject("a", (2.0, 20.0, 16.0, 34.0)), LayoutObject("b", (30.0, 2.0, 44.0, 16.0))), 64
    )
    assert [o.label for o in line_order(stacked).objects] == ["b", "a"]  # 18 px apart: two lines, top first


def test_order_indices_give_a_worlds_scene_the_layout_orders():
    """Worlds order their own scenes (Emoji World's edits, Shapes World's editor) by these indices: the same orders
    as reading_order and line_order give a layout, and an unknown order refused by name."""
    from lvg.data.layout import in_layout_order, line_order, order_indices, reading_order

    objs = (
        LayoutObject("fox", (24.0, 23.0, 38.0, 37.0)),
        LayoutObject("dog", (45.0, 4.0, 59.0, 18.0)),
        LayoutObject("cat", (2.0, 2.0, 22.0, 22.0)),
    )
    boxes = [o.box for o in objs]
    assert order_indices(boxes) == [1, 2, 0] and order_indices(boxes, "lines") == [2, 1, 0]
    for order, in_order in (("reading", reading_order), ("lines", line_order)):
        lay = Layout("white", objs, 64)
        assert tuple(objs[i] for i in order_indices(boxes, order)) == in_order(lay).objects
        assert in_layout_order(lay, order) == in_order(lay)
    with pytest.raises(ValueError, match="order must be one of"):
        order_indices(boxes, "centre")


def test_edit_box_noise_moves_the_given_boxes_and_the_kept_objects_with_them():
    from lvg.data.layout import jitter_edit_boxes

    def lay(*objs, bg="white"):
        return Layout(bg, tuple(LayoutObject(label, tuple(map(float, box))) for label, box in objs), 64)

    before = lay(("cat", (2, 2, 22, 22)), ("dog", (30, 30, 50, 50)))
    after = lay(("cat", (2, 2, 22, 22)), ("fox", (30, 30, 50, 50)), ("owl", (2, 40, 16, 54)))  # kept, replaced, added
    assert jitter_edit_boxes(before, after, 0.0, random.Random(0)) == (before, after)  # nothing drawn: unchanged
    for seed in range(40):
        b, a = jitter_edit_boxes(before, after, 1.0, random.Random(seed), min_side=14)
        assert [o.label for o in b.objects] == ["cat", "dog"]
        for old, new in zip(before.objects, b.objects):
            assert all(abs(x - y) == 1 for x, y in zip(old.box, new.box))  # every coordinate 1 px off
        # the kept cat and the fox on the dog's box moved with them; the added owl stayed where the edit put it
        assert [o.box for o in a.objects] == [b.objects[0].box, b.objects[1].box, after.objects[2].box]
    # noise that would leave the canvas, overlap or shrink a side under min_side leaves the pair as it was
    edge = lay(("cat", (0, 0, 20, 20)), ("dog", (20, 0, 40, 20)))
    outcomes = {jitter_edit_boxes(edge, None, 1.0, random.Random(s)) == (edge, None) for s in range(30)}
    assert outcomes == {True, False}
    small = lay(("cat", (2, 2, 16, 16)))
    for s in range(30):
        b, _ = jitter_edit_boxes(small, None, 1.0, random.Random(s), min_side=14)
        x0, y0, x1, y1 = b.objects[0].box
        assert x1 - x0 >= 14 and y1 - y0 >= 14


def test_a_planners_edit_rows_carry_box_noise_only_when_asked_and_the_same_at_every_draw():
    from lvg.train.config import load_config
    from lvg.train.loop import Shard
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig

    tiny = ["model.size.hidden_size=32", "model.size.num_hidden_layers=1", "model.size.num_attention_heads=2",
            "model.size.intermediate_size=64", "eval.prompts_per_category=0", "train.batch_size=16",
            "data.edit_prob=1.0"]  # fmt: skip
    clean = PlannerTask(load_config(PlannerTrainingConfig, None, tiny), torch.device("cpu"))
    noisy = PlannerTask(load_config(PlannerTrainingConfig, None, [*tiny, "data.edit_box_noise=0.3"]),
                        torch.device("cpu"))  # fmt: skip
    for step in (0, 1):
        a, b = clean.batch(step, Shard()), noisy.batch(step, Shard())
        assert torch.equal(b["input_ids"], noisy.batch(step, Shard())["input_ids"])  # a pure function of the step
        assert not torch.equal(a["input_ids"], b["input_ids"])
        assert a["input_ids"].shape[0] == b["input_ids"].shape[0] == 16
    with pytest.raises(ValueError, match="edit_box_noise"):
        PlanDataConfig(edit_box_noise=1.5)


def test_a_layout_order_is_part_of_the_layout_vocabulary_and_noise_keeps_it():
    from lvg.data.layout import jitter_edit_boxes, line_order
    from lvg.tokenizers.layout import LayoutTokenizer, LayoutTokenizerConfig

    def lay(*boxes):
        return Layout("white", tuple(LayoutObject(f"o{i}", tuple(map(float, b))) for i, b in enumerate(boxes)), 64)

    # a row of two read a pixel apart: by centre the right one (a pixel higher) comes first; in lines, the left one
    row = lay((2, 3, 22, 23), (30, 2, 50, 22), (2, 40, 16, 54))
    cfg = LayoutTokenizerConfig(("o0", "o1", "o2"), ("white",))
    assert cfg.order == "reading" and "order" not in cfg.to_dict()  # folders written before stay byte-identical
    reading, lines = LayoutTokenizer(cfg), LayoutTokenizer(LayoutTokenizerConfig(**{**cfg.to_dict(), "order": "lines"}))
    assert [o.label for o in reading.ordered(row).objects] == ["o1", "o0", "o2"]
    assert [o.label for o in lines.ordered(row).objects] == [o.label for o in line_order(row).objects]
    assert [o.label for o in lines.ordered(row).objects] == ["o0", "o1", "o2"]
    assert lines.config.to_dict()["order"] == "lines"
    with pytest.raises(ValueError, match="order must be one of"):
        LayoutTokenizerConfig(("o0",), ("white",), order="columns")
    # noise that reorders a row by centre (but not its lines) is drawn in lines and left out by centre
    level = lay((2, 2, 22, 22), (30, 2, 50, 22))
    by_centre = [jitter_edit_boxes(level, None, 1.0, random.Random(s))[0] for s in range(60)]
    in_lines = [jitter_edit_boxes(level, None, 1.0, random.Random(s), order="lines")[0] for s in range(60)]
    assert sum(b != level for b in in_lines) > sum(b != level for b in by_centre)
    assert all(line_order(b).objects == b.objects for b in in_lines)
