"""Emoji World's edit stream (lvg.worlds.emoji.edits) on the fake sprite cache (no npm, no network): what an editor
LM learns from. (An editor trained on it from an imagefolder runs in tests/test_emoji_script.py.)"""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from test_emoji_cli import lvg_home  # noqa: F401  (the fixture: a fake $LVG_HOME)

from lvg.data.text import EDIT_REFUSAL_REASONS


@pytest.fixture()
def emoji(lvg_home, monkeypatch):  # noqa: F811
    from lvg.worlds.emoji.analysis import outside_names
    from lvg.worlds.emoji.plugin import load_emoji_world

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    w = load_emoji_world()
    return w, outside_names(w.assets, w.table)


def test_every_edit_type_changes_what_it_says_and_leaves_the_rest(emoji):
    from lvg.worlds.emoji.edits import EDIT_TYPES, make_edit_sample
    from lvg.worlds.emoji.scenes import pool_choices

    w, outside = emoji
    pool = set(pool_choices(w.table, "train"))
    for kind in EDIT_TYPES:
        for i in range(30):
            s = make_edit_sample(i, w.table, outside, kind=kind)
            assert s == make_edit_sample(i, w.table, outside, kind=kind)  # a pure function of (seed, index)
            b, a = s.before.objects, s.after.objects
            assert s.refusal is None and s.kinds == (kind,) and s.instruction.strip()
            assert {(o.emoji, o.style) for o in a} <= pool  # labels the planner's grammar knows
            same = sum(x == y for x, y in zip(b, a))
            if kind == "background":
                assert s.after.bg != s.before.bg and a == b
            elif kind == "add":
                assert a[:-1] == b and len(a) == len(b) + 1  # the old objects first, the new one last
            elif kind == "remove":
                assert len(a) == len(b) - 1 and all(o in b for o in a)
            elif kind == "swap":
                assert same == len(b) - 2 and sorted(o.cell for o in a) == sorted(o.cell for o in b)
            else:  # one object edited in place
                assert len(a) == len(b) and same == len(b) - 1
                ((x, y),) = [(x, y) for x, y in zip(b, a) if x != y]
                changed = {k for k in ("emoji", "style", "size", "cell") if getattr(x, k) != getattr(y, k)}
                assert changed == {"restyle": {"style"}, "resize": {"size"}, "move": {"cell"}}.get(kind, changed)
                assert kind != "replace" or "emoji" in changed
            assert [o.label for o in s.before_layout.objects] == [f"{o.emoji} ({o.style})" for o in b]


def test_the_stream_refuses_for_every_reason_and_mixes_languages_and_pairs(emoji):
    from lvg.worlds.emoji.edits import EmojiEditConfig, make_edit_sample

    w, outside = emoji
    got = [make_edit_sample(i, w.table, outside, EmojiEditConfig(seed=1, combo_prob=0.5, refusal_prob=0.3))
           for i in range(400)]  # fmt: skip
    reasons = Counter(s.refusal for s in got if s.refusal)
    assert set(reasons) == set(EDIT_REFUSAL_REASONS) - {"contradiction"}
    assert {s.lang for s in got} == {"en", "zh"} and any(len(s.kinds) == 2 for s in got)
    assert all((s.after is None) == (s.refusal is not None) for s in got)
    for s in got:
        if s.refusal == "unknown":  # an emoji outside the world, or a colour this world has no edit for
            assert any(c.en in s.instruction or c.zh in s.instruction for c in outside.train) or any(
                x in s.instruction for x in ("red", "blue", "green", "purple", "golden", "pink", "orange", "grey",
                                             "色"))  # fmt: skip
        if s.refusal == "zero":
            assert len(s.before.objects) == 1
        if s.refusal == "count":
            assert len(s.before.objects) == 4
    with pytest.raises(ValueError, match="refusal_prob"):
        EmojiEditConfig(refusal_prob=1.5)


def test_a_reference_picks_out_one_emoji(emoji):
    from lvg.worlds.emoji.edits import _Words
    from lvg.worlds.emoji.scenes import EmojiObj, EmojiScene

    w, _ = emoji
    cat = w.table.get(next(iter(w.table)).en).en
    scene = EmojiScene((EmojiObj(cat, "twemoji", "small", (0, 0)), EmojiObj(cat, "noto", "small", (2, 2))))
    words = _Words(w.table, "en", random.Random(0))
    refs = {words.ref(scene, scene.objects[0], avoid="cell") for _ in range(20)}
    assert refs <= {f"Twemoji {cat}", f"Twitter {cat}"}  # the sizes match, the cell is what the edit changes
    assert words.ref(scene, scene.objects[0], avoid="style") == f"{cat} in the top left"
    zh = _Words(w.table, "zh", random.Random(0))
    assert zh.ref(scene, scene.objects[1], avoid="style") == f"右下角的{w.table.get(cat).zh}"


def test_the_world_plugs_its_edits_into_a_planners_training(lvg_home, monkeypatch, tmp_path):  # noqa: F811
    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig
    from lvg.worlds import EditStream, get_world
    from lvg.worlds.emoji.edits import EDIT_TYPES

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    world = get_world("emoji")
    edit = world.edit
    text, before, after, reason = edit(3, EditStream())
    assert text and before.objects and (after is None) == (reason is not None)
    assert edit(3, EditStream(group_prob=0.3)) == (text, before, after, reason)  # None: the world's own rate

    def repeats(group_prob: float) -> int:  # edits whose scene shows one emoji twice or more
        scenes = [edit(i, EditStream(group_prob=group_prob))[1] for i in range(120)]
        return sum(len({o.label for o in s.objects}) < len(s.objects) for s in scenes)

    assert repeats(0.0) < repeats(0.3) < repeats(0.9)  # group_prob: how often a scene repeats emoji
    assert world.edit_types == EDIT_TYPES

    def swaps(weights: dict) -> int:  # edits that trade two emoji's places: the same boxes and labels, paired anew
        def swapped(b, a) -> bool:
            return (a is not None and a.background == b.background and a.objects != b.objects
                    and sorted(o.box for o in a.objects) == sorted(o.box for o in b.objects)
                    and sorted(o.label for o in a.objects) == sorted(o.label for o in b.objects))  # fmt: skip

        rows = [edit(i, EditStream(refusal_prob=0.0, combo_prob=0.0, type_weights=weights)) for i in range(160)]
        return sum(swapped(b, a) for _t, b, a, _r in rows)

    assert swaps({"swap": 6}) > 2 * swaps({}) > 0 and swaps({"swap": 0}) == 0
    folder = world.write_imagefolder(tmp_path / "folder", 24, 0)
    with pytest.raises(ValueError, match=r"data.edit_type_weights: \['recolor'\] are not edit types"):
        PlannerTask(load_config(PlannerTrainingConfig, None, [f"imagefolder={folder}", "world=emoji", "data.edit_prob=1.0",
                                                              "data.edit_type_weights={recolor: 2}"]), None)  # fmt: skip
    with pytest.raises(ValueError, match="give imagefolder too"):
        PlannerTask(load_config(PlannerTrainingConfig, None, ["world=emoji", "data.edit_prob=1.0"]), None)


def test_edits_in_lines_keep_a_rows_order_and_the_editor_learns_it(lvg_home, monkeypatch, tmp_path):  # noqa: F811
    from lvg.data.layout import line_order, reading_order
    from lvg.train.config import load_config
    from lvg.train.loop import Shard
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig
    from lvg.worlds import EditStream, get_world

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    world = get_world("emoji")
    rows = [world.edit(i, EditStream(group_prob=0.9, order="lines")) for i in range(200)]
    assert all(line_order(b).objects == b.objects for _t, b, _a, _r in rows)
    for _t, b, a, _r in rows:  # the objects an edit keeps stay in the order they came in
        if a is not None:
            assert [o for o in b.objects if o in a.objects] == [o for o in a.objects if o in b.objects]
    # the default stream is the one drawn before: by box centre, which puts an emoji a pixel higher first in its row
    old = [world.edit(i, EditStream(group_prob=0.9)) for i in range(200)]
    assert all(reading_order(b).objects == b.objects for _t, b, _a, _r in old)
    assert any(line_order(b).objects != b.objects for _t, b, _a, _r in old)
    folder = world.write_imagefolder(tmp_path / "folder", 24, 0)
    tiny = [f"imagefolder={folder}", "world=emoji", "data.edit_prob=1.0", "model.size.hidden_size=32",
            "model.size.num_hidden_layers=1", "model.size.num_attention_heads=2", "model.size.intermediate_size=64",
            "train.batch_size=8", "data.edit_box_noise=0.3"]  # fmt: skip
    lines = PlannerTask(load_config(PlannerTrainingConfig, None, [*tiny, "data.edit_order=lines"]), None)
    assert lines.vocab.layout.order == "lines" and lines.vocab.layout.to_dict()["order"] == "lines"  # saved with it
    assert lines.planner.layout_tokenizer.config.order == "lines"
    b = lines.batch(0, Shard())
    assert torch.equal(b["input_ids"], lines.batch(0, Shard())["input_ids"])
    reading = PlannerTask(load_config(PlannerTrainingConfig, None, tiny), None)
    assert reading.vocab.layout.order == "reading" and "order" not in reading.vocab.layout.to_dict()
    with pytest.raises(ValueError, match=r"edit_order must be one of \[.lines., .reading.\]"):
        load_config(PlannerTrainingConfig, None, [*tiny, "data.edit_order=columns"])
    with pytest.raises(ValueError, match="Shapes World's edit stream draws in reading order only"):
        PlannerTask(load_config(PlannerTrainingConfig, None, ["data.edit_prob=1.0", "data.edit_order=lines"]), None)


def test_varied_twins_teach_naming_an_emoji_by_the_style_or_size_an_earlier_edit_gave_it(emoji, monkeypatch):
    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig
    from lvg.worlds.emoji.edits import STYLE_WORDS_EN, EmojiEditConfig, make_edit_sample, vary_twin
    from lvg.worlds.emoji.scenes import EmojiObj, EmojiScene, SceneConfig, pool_choices

    w, outside = emoji
    cat, other = [e for e, s in pool_choices(w.table, "train") if s == "twemoji"][:2]
    twins = EmojiScene((EmojiObj(cat, "twemoji", "small", (0, 0)), EmojiObj(cat, "twemoji", "small", (2, 2))))
    changes = Counter()
    for seed in range(40):  # one copy changes, in style or in size, and nothing else does
        got = vary_twin(twins, random.Random(seed), w.table)
        ((x, y),) = [(x, y) for x, y in zip(twins.objects, got.objects, strict=True) if x != y]
        changes[next(k for k in ("emoji", "style", "size", "cell") if getattr(x, k) != getattr(y, k))] += 1
        assert sum(getattr(x, k) != getattr(y, k) for k in ("emoji", "style", "size", "cell")) == 1
    assert set(changes) <= {"style", "size"} and changes["size"] > 0
    lone = EmojiScene((EmojiObj(cat, "twemoji", "small", (0, 0)), EmojiObj(other, "twemoji", "small", (2, 2))))
    assert vary_twin(lone, random.Random(0), w.table) is lone

    def named_by_style_or_size(varied_prob: float) -> int:  # English edits naming an emoji "small cat", "Twitter cat"
        cfg = EmojiEditConfig(seed=2, refusal_prob=0.0, varied_prob=varied_prob)
        n = 0
        for i in range(200):
            s = make_edit_sample(i, w.table, outside, cfg, scenes=SceneConfig(group_prob=0.9))
            held = Counter(o.emoji for o in s.before.objects)
            names = {w.table.get(e).en for e, k in held.items() if k > 1}  # (not "add a small cat")
            words = ["small", "large", *(x for ws in STYLE_WORDS_EN.values() for x in ws)]
            n += s.lang == "en" and any(f"{x} {name}" in s.instruction for x in words for name in names)
        return n

    assert named_by_style_or_size(0.0) <= 4 < 15 < named_by_style_or_size(1.0)  # (2 and 31 of ~100 English edits)
    with pytest.raises(ValueError, match="varied_prob"):
        EmojiEditConfig(varied_prob=-0.1)
    with pytest.raises(ValueError, match="Shapes World's edit stream does not draw it"):
        PlannerTask(load_config(PlannerTrainingConfig, None, ["data.edit_prob=1.0", "data.edit_varied_prob=0.5"]), None)
