"""Emoji World's prompts to refuse (lvg.worlds.emoji.analysis) and a planner that learns them from an imagefolder
(``world: emoji``), on the fake sprite cache (no npm, no network)."""

from __future__ import annotations

from collections import Counter

import pytest
from test_emoji_cli import lvg_home  # noqa: F401  (the fixture: a fake $LVG_HOME)

from lvg.data.text import REFUSAL_REASONS
from lvg.worlds import get_world
from lvg.worlds.emoji.analysis import is_held_out, outside_names


@pytest.fixture()
def world(lvg_home, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    return get_world("emoji")


def test_refusals_name_only_outside_emoji_and_hold_some_names_out(world):
    from lvg.worlds.emoji.plugin import load_emoji_world

    w = load_emoji_world()
    outside = outside_names(w.assets, w.table)
    inside = {c.en for c in w.table}
    assert outside.train and outside.held_out and not {c.en for c in outside.train + outside.held_out} & inside
    if len(outside.train) + len(outside.held_out) > 2:  # the fake cache has too few outside names to split by hash
        assert all(is_held_out(c.en) for c in outside.held_out) and not any(is_held_out(c.en) for c in outside.train)
    reasons = Counter()
    for i in range(200):
        text, reason = world.refusal(i, 0, False)
        reasons[reason] += 1
        assert text.strip() and reason in REFUSAL_REASONS
        assert world.refusal(i, 0, False) == (text, reason)  # seeded
        if reason == "unknown":  # the prompt names an outside emoji the world cannot parse
            with pytest.raises(ValueError):
                world.parse(text)
    assert set(reasons) == set(REFUSAL_REASONS)
    held = {world.refusal(i, 0, True) for i in range(50)}
    assert held != {world.refusal(i, 0, False) for i in range(50)}  # its own stream


def test_a_planners_world_needs_an_imagefolder():
    """(A planner learning Emoji World's refusals from an imagefolder runs in tests/test_emoji_script.py.)"""
    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig

    with pytest.raises(ValueError, match="give imagefolder too"):
        PlannerTask(load_config(PlannerTrainingConfig, None, ["world=emoji"]), None)


def test_a_folder_names_its_world_and_a_refusal_names_the_words_that_world_cannot_read(lvg_home, tmp_path,  # noqa: F811
                                                                                       monkeypatch):  # fmt: skip
    import json

    from conftest import make_tiny_planned

    import lvg
    from lvg.pipelines import load_pipeline as load_bare
    from lvg.pipelines.planned import PlannedPipeline

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    folder = make_tiny_planned(tmp_path / "m", reader=False)
    pipe = load_bare(folder)
    assert pipe.world is None  # folders written before worlds were declared: Shapes World
    pipe.world = "emoji"
    pipe.save_pretrained(tmp_path / "e")
    assert json.loads((tmp_path / "e" / "model_index.json").read_text())["world"] == "emoji"
    pipe = lvg.load_pipeline(tmp_path / "e")  # its world's checks attached (loaded on first use)
    assert pipe.world == "emoji"
    said = str(pipe._refused("a cat and a guitar", "unknown"))
    assert "(reason: unknown) (unknown emoji 'guitar')" in said, said
    assert "unknown emoji" not in str(pipe._refused("five cats", "count"))  # only unknown words are explained
    assert pipe.entails(None, "a cat") is False  # Emoji World's referee, not Shapes World's
    index = tmp_path / "e" / "model_index.json"
    index.write_text(index.read_text().replace('"world": "emoji"', '"world": 7'))
    with pytest.raises(ValueError, match="model_index.json: world must be a world's name"):
        PlannedPipeline.from_pretrained(tmp_path / "e")
    with pytest.raises(ValueError, match="unknown world 'atlantis'"):
        lvg.load_pipeline(folder, world="atlantis")
    index.write_text(index.read_text().replace('"world": 7', '"world": "atlantis"'))
    with pytest.raises(ValueError, match=r"model_index.json: world 'atlantis' is not a registered world"):
        lvg.load_pipeline(tmp_path / "e")  # a folder naming a world lvg does not have: the file is named


def test_the_shipped_emoji_model_generates_and_refuses_without_the_emoji_cache(tmp_path, monkeypatch):
    """Only the world's checks need Emoji World's data: generating and refusing work on a machine without the npm
    cache (CI), and a refusal there simply names no words."""
    import shutil

    import lvg
    from lvg.pipelines.planned import UnsupportedPromptError

    monkeypatch.setenv("LVG_HOME", str(tmp_path / "no-cache"))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)  # nothing may be fetched
    pipe = lvg.load_pipeline("emoji")
    assert pipe.world == "emoji" and pipe.can_caption and pipe.clip is not None
    out = pipe("two cats on a black background", seed=0)
    assert out.images[0].size == (64, 64) and [o.label.split(" (")[0] for o in out.layouts[0].objects] == ["cat"] * 2
    with pytest.raises(UnsupportedPromptError) as e:
        pipe("a red sports car", seed=0)
    assert e.value.reason == "unknown" and e.value.detail is None
    assert not [p for p in (tmp_path / "no-cache").rglob("*") if p.is_file()]  # nothing fetched, nothing half-written
