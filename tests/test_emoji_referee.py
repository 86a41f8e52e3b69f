"""Emoji World's pixel referee and benchmark prompts, on the fake cache of test_emoji_world (sprites the test draws)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from test_emoji_world import _tarballs

from lvg.worlds.emoji import assets as A
from lvg.worlds.emoji.benchmark import CATEGORIES, load_prompts, make_prompts, scene_from_spec
from lvg.worlds.emoji.captions import parse_caption
from lvg.worlds.emoji.classifier import (
    ClassifierConfig,
    ClassifierError,
    load_classifier,
    save_classifier,
    train_classifier,
)
from lvg.worlds.emoji.referee import Referee, RefereeInputError, scene_satisfies
from lvg.worlds.emoji.referee_check import validate_referee
from lvg.worlds.emoji.scenes import EmojiObj, EmojiScene, pool_choices
from lvg.worlds.emoji.world import EmojiWorld
from lvg.worlds.shapes.benchmark import write_prompts


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> EmojiWorld:
    home = tmp_path_factory.mktemp("emoji")
    return EmojiWorld(A.ensure_assets(home, _tarballs(home / "tarballs")))


@pytest.fixture(scope="module")
def referee(world) -> Referee:
    return Referee.for_world(world)


def _scene() -> EmojiScene:
    return EmojiScene(
        (
            EmojiObj("cat", "twemoji", "large", (0, 0), (1, 1)),
            EmojiObj("pizza", "noto", "small", (1, 2), (-2, 2)),
            EmojiObj("cat", "noto", "small", (2, 1)),
        ),
        "black",
    )


def test_referee_reads_what_was_drawn(world, referee):
    scene = _scene()
    reading = referee.read(world.render(scene))
    assert reading.bg == "black"
    seen = [(o.emoji, o.style, o.size, o.cell) for o in reading.objects]
    assert seen == [(o.emoji, o.style, o.size, o.cell) for o in sorted(scene.objects, key=lambda o: o.cell)]


def test_referee_passes_captions_in_both_languages_and_names_what_fails(world, referee):
    img = world.render(_scene())
    for text in ("a large Twemoji cat in the top left, a Noto pizza on the right and a cat at the bottom",
                 "两只猫和一块谷歌风格的披萨，黑色背景"):  # fmt: skip
        v = referee.judge(img, text)
        assert v.passed, (text, v.reason)
    for text, why in (
        ("two cats and a pizza on a white background", "background is black"),
        ("three cats and a pizza", "found 3 emoji, expected 4"),
        ("two Twemoji cats and a pizza", "no assignment"),  # one cat is Noto
        ("two cats and a large pizza", "no assignment"),
        ("a pizza in the top right and two cats", "no assignment"),
        ("a cat below a Noto cat", "found 3 emoji, expected 2"),
        ("two dogs and a pizza", "no assignment"),
    ):
        v = referee.judge(img, text)
        assert not v.passed and why in v.reason, (text, v.reason)
    assert referee.judge(np.kron(img, np.ones((2, 2, 1), np.uint8)), "两只猫和一块披萨").passed  # integer upscale
    assert referee.judge(img.transpose(2, 0, 1).astype(np.float32) / 255.0, "two cats and a pizza").passed  # CHW 0..1


def test_referee_refuses_what_is_not_an_image(referee):
    for bad, why in ((np.zeros((64, 48, 3), np.uint8), "64x64"), (np.zeros((64, 64), np.uint8), "RGB"),
                     (np.full((64, 64, 3), np.nan, np.float32), "NaN")):  # fmt: skip
        with pytest.raises(RefereeInputError, match=why):
            referee.read(bad)


def test_referee_validation_on_renders_of_random_prompts(world, referee):
    specs = [s.spec for s in world.held_out_samples(80)]
    clean = validate_referee(referee, specs, seed=1)
    assert clean["correct_pass_rate"] >= 0.97, clean["failures"]
    assert clean["mismatched_false_accepts"] == 0
    assert clean["mismatched_fail_rate"] >= 0.9
    assert all(m["emoji"] >= 0.97 for m in clean["objects"].values()), clean["objects"]
    assert clean["near_miss_agreement"] >= 0.95 and clean["near_miss_false_accepts"] <= 1, clean
    soft = validate_referee(referee, specs, seed=1, noise=6.0, blur=0.8)
    assert soft["correct_pass_rate"] >= 0.9, soft["failures"]
    assert soft["mismatched_false_accepts"] == 0


def test_scene_from_spec_satisfies_the_spec_and_the_truth_rule(world):
    rng = random.Random(0)
    for row in make_prompts(world.table, 6, seed=3):
        scene = scene_from_spec(row["spec"], rng)
        assert scene_satisfies(scene, row["spec"]), row
    scene = _scene()
    assert scene_satisfies(scene, parse_caption("a cat above a Noto cat", world.table)) is False  # three emoji
    assert scene_satisfies(scene, parse_caption("两只猫和一块披萨", world.table))


def test_benchmark_prompts_are_seeded_and_cover_the_categories(world, tmp_path):
    rows = make_prompts(world.table, 8, seed=0)
    assert rows == make_prompts(world.table, 8, seed=0)
    assert rows != make_prompts(world.table, 8, seed=1)
    assert [r["category"] for r in rows] == [c for c in CATEGORIES for _ in range(8)]
    held = set(pool_choices(world.table, "style-held-out"))
    seen = set(pool_choices(world.table, "train"))
    for r in rows:
        assert parse_caption(r["en"], world.table) == r["spec"] == parse_caption(r["zh"], world.table)
        stated = {(g["emoji"], g["style"]) for g in r["spec"]["groups"] if "style" in g}
        if r["category"] == "style_held_out":
            assert stated and stated <= held
        else:
            assert stated <= seen and (r["category"] != "style") == (not stated)
    path = write_prompts(tmp_path / "p.jsonl", rows)
    assert load_prompts(path, world.table) == rows
    path.write_text(path.read_text(encoding="utf-8").replace('"single"', '"nonsense"', 1), encoding="utf-8")
    with pytest.raises(ValueError, match=r"p.jsonl:1: .*unknown category 'nonsense'"):
        load_prompts(path, world.table)


@pytest.mark.skipif(not A.is_complete(A.emoji_home()), reason="needs the real emoji cache (npm, once)")
def test_committed_benchmark_file_is_the_generators_output():
    table = EmojiWorld(A.assets_from(A.emoji_home())).table
    assert load_prompts(
        Path(__file__).resolve().parents[1] / "benchmarks" / "emoji_prompts.jsonl", table
    ) == make_prompts(table, 50, seed=0)


def test_referee_with_a_classifier_trained_on_the_sprites(world, referee, tmp_path):
    cfg = ClassifierConfig(width=12, samples=2000, steps=250, batch=64)
    folder = save_classifier(train_classifier(world.bank, referee.pairs, cfg), referee.pairs, cfg, tmp_path / "clf")
    assert (folder / "classifier.safetensors").stat().st_size < 100_000
    with_net = Referee.for_world(world, folder)
    r = validate_referee(with_net, [s.spec for s in world.held_out_samples(40)], seed=2, noise=6.0, blur=0.8)
    assert r["correct_pass_rate"] >= 0.95 and r["mismatched_false_accepts"] == 0, r["failures"]
    net, pairs = load_classifier(folder)
    with pytest.raises(RefereeInputError, match="do not match the concept table"):
        Referee(world.bank, 64, (net, pairs[:-1]))
    (folder / "classifier.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="classifier.safetensors"):
        load_classifier(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ClassifierError, match="config.json"):
        load_classifier(folder)


def test_shipped_classifier_loads_strictly():
    from lvg.worlds.emoji.referee import SHIPPED_CLASSIFIER

    net, pairs = load_classifier(SHIPPED_CLASSIFIER)
    assert len(pairs) == len(set(pairs)) == 580 and {s for _, s in pairs} == {"twemoji", "noto"}
    assert (SHIPPED_CLASSIFIER / "classifier.safetensors").stat().st_size < 2_000_000
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 580)


def test_referee_for_a_world_falls_back_to_the_matcher_when_the_shipped_classifier_does_not_fit(world):
    from lvg.worlds.emoji.referee import referee_for

    ref = referee_for(world)  # the fake table is not the shipped classifier's
    assert ref.net is None and ref.judge(world.render(_scene()), "两只猫和一块披萨").passed
