"""Emoji World through the registry and the CLI (``get_world("emoji")``, ``lvg data emoji``), on the fake sprite cache
of tests/test_emoji_world.py: neither npm nor network is needed."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_emoji_world import DEFAULT_SET, EMOJI, _tarballs

from lvg.cli import main
from lvg.cli.data import EMOJI_CATEGORIES, EMOJI_DEFAULT_CATEGORIES, EMOJI_POOLS
from lvg.worlds import World, get_world
from lvg.worlds.emoji import assets as A
from lvg.worlds.emoji.concepts import ALL_CATEGORIES, DEFAULT_CATEGORIES
from lvg.worlds.emoji.scenes import POOLS


@pytest.fixture(scope="module")
def lvg_home(tmp_path_factory) -> Path:
    """$LVG_HOME with a complete emoji cache built from the fake tarballs (then found as complete, never fetched)."""
    home = tmp_path_factory.mktemp("lvg-home")
    A.ensure_assets(home / "emoji", _tarballs(home / "emoji" / "tarballs"))
    return home


def test_data_emoji_writes_an_imagefolder(lvg_home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)  # nothing may be fetched
    out = tmp_path / "d"
    assert main(["data", "emoji", "--out", str(out), "--num", "3", "--seed", "2", "--canvas", "96"]) == 0
    assert "wrote 3 images of 11 emoji" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["file_name"] for r in rows] == ["00000.png", "00001.png", "00002.png"]
    assert {r["canvas"] for r in rows} == {96} and Image.open(out / rows[0]["file_name"]).size == (96, 96)
    assert {o["label"] for r in rows for o in r["objects"]} <= DEFAULT_SET
    assert "CC-BY 4.0" in (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    again = tmp_path / "again"
    assert main(["data", "emoji", "--out", str(again), "--num", "3", "--seed", "2", "--canvas", "96"]) == 0
    assert (again / "metadata.jsonl").read_bytes() == (out / "metadata.jsonl").read_bytes()  # seeded
    assert (again / "00002.png").read_bytes() == (out / "00002.png").read_bytes()

    assert main(["data", "emoji", "--out", str(tmp_path / "o"), "--num", "2", "--categories", "Objects"]) == 0
    concepts = [json.loads(line) for line in (tmp_path / "o" / "concepts.jsonl").read_text().splitlines()]
    assert [c["en"] for c in concepts] == ["mobile phone"]
    assert main(["data", "emoji", "--out", str(out), "--num", "1"]) == 2  # not empty, no --overwrite
    assert "not empty" in capsys.readouterr().err


def test_data_emoji_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LVG_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    assert main(["data", "emoji", "--out", str(tmp_path / "d"), "--num", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvg: error: npm not found") and "npm pack emoji-datasource-twitter@" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
    assert main(["data", "emoji", "--out", str(tmp_path / "d"), "--num", "0"]) == 2  # checked before any fetch
    assert "--num must be at least 1" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "lvg.cli", "data", "emoji", "--out", str(tmp_path / "d"), "--canvas", "80"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "invalid choice: 80" in r.stderr and "Traceback" not in r.stderr


def test_data_emoji_help_names_the_cache_and_licences(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "emoji", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("$LVG_HOME/emoji", "npm pack", "CC-BY 4.0", "Apache 2.0", "ATTRIBUTION.md", "--categories"):
        assert needle in text, needle


def test_the_cli_names_the_emoji_categories():
    assert EMOJI_CATEGORIES == ALL_CATEGORIES and EMOJI_DEFAULT_CATEGORIES == DEFAULT_CATEGORIES
    assert EMOJI_POOLS == POOLS


def test_emoji_world_is_a_registered_plug_in(lvg_home, monkeypatch):
    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    world = get_world("emoji")
    assert isinstance(world, World) and world.name == "emoji" and world.canvas == 64 and world.langs == ("en", "zh")
    assert set(world.labels) == DEFAULT_SET and world.backgrounds == ("white", "black")
    scene = world.sample_scene(random.Random(0))
    image = world.render(scene)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    layout = world.layout_from_scene(scene)
    assert {o.label for o in layout.objects} <= set(world.labels)
    assert world.layout_to_scene(layout, [o.style for o in scene.objects]) == scene
    cap = world.caption(scene, random.Random(1))
    assert world.parse(cap.en) == world.parse(cap.zh) == cap.spec
    assert world.held_out_samples(1)[0].en and next(world.caption_corpus(1)).strip()
    assert world.make_sample(3, 0).image.tobytes() == world.make_sample(3, 0).image.tobytes()
    verdict = world.judge(image, world.caption(scene, random.Random(2)).en)  # the referee sees only pixels
    assert verdict.passed, verdict.reason
    full = world.reading.caption(scene, "en")  # a complete caption entails every caption of its scene
    assert world.entails(full, cap.en) and world.entails(world.reading.caption(scene, "zh"), cap.zh)
    assert world.entails(full, "four dragons") is None and world.entails(None, cap.en) is False
    assert world.entails(cap.en if cap.en != full else "a cat", full) is False  # an incomplete caption
    assert get_world("emoji") is world  # loaded once per cache


def test_emoji_world_loads_only_when_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("LVG_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    import lvg.worlds.emoji.plugin  # noqa: F401  (importing reads nothing)

    assert not (tmp_path / "empty-home").exists()
    with pytest.raises(A.EmojiAssetError, match="npm not found"):
        get_world("emoji")
    assert len(EMOJI) == 14  # the fake cache's emoji (the imported helpers are the ones the fixture uses)


def test_data_emoji_pool_unseen_shows_only_unseen_emoji_and_the_folder_reads_with_styled_labels(
    lvg_home, tmp_path, monkeypatch, capsys
):
    from lvg.data.imagefolder import read_rows

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    out = tmp_path / "u"
    assert main(["data", "emoji", "--out", str(out), "--num", "12", "--pool", "unseen"]) == 0
    assert "(unseen pool)" in capsys.readouterr().out
    concepts = [json.loads(line) for line in (out / "concepts.jsonl").read_text(encoding="utf-8").splitlines()]
    unseen = {c["en"] for c in concepts if c["split"] == "unseen"}
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert unseen and {o["label"] for r in meta for o in r["objects"]} <= unseen
    # training reads the folder's layouts with each object's style in its label ("cat (noto)")
    rows = read_rows(out, layouts=True)
    for row, r in zip(rows, meta, strict=True):
        assert [o.label for o in row["layout"].objects] == [f"{o['label']} ({o['style']})" for o in r["objects"]]
    with pytest.raises(SystemExit):
        main(["data", "emoji", "--out", str(tmp_path / "x"), "--pool", "everything"])


def test_text_tokenizer_trains_on_emoji_captions(lvg_home, tmp_path, monkeypatch):
    from lvg.tokenizers.text import load_text_tokenizer

    monkeypatch.setenv("LVG_HOME", str(lvg_home))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    out = tmp_path / "tt"
    assert main(["train", "text-tokenizer", "--world", "emoji", "--out", str(out), "--num-scenes", "300",
                 "--vocab-size", "400"]) == 0  # fmt: skip
    tok = load_text_tokenizer(out)
    text = get_world("emoji").caption_corpus(1, 5)
    first = next(iter(text))
    assert tok.decode(tok(first, add_special_tokens=False)["input_ids"]) == first
