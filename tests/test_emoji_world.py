"""Emoji World's data side on a fake cache: sprites the test draws itself and small JSON files shaped like the real
packages', so neither npm nor network is needed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import stat
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.worlds.emoji import assets as A
from lvg.worlds.emoji.captions import EmojiCaptionError, describe, normalize_spec, parse_caption, spec_to_text
from lvg.worlds.emoji.concepts import assign_splits, build_concepts, plural_en
from lvg.worlds.emoji.imagefolder import write_imagefolder
from lvg.worlds.emoji.scenes import SIZES, EmojiSceneError, SceneConfig, pool_choices, sample_scene
from lvg.worlds.emoji.world import HELD_OUT_SEED, EmojiWorld, EmojiWorldConfig

# (emoji-data unified, emojibase hexcode, category, subcategory, en, zh, has twitter art, has google art)
EMOJI = [
    ("1F408", "1F408", "Animals & Nature", "animal-mammal", "cat", "猫", True, True),
    ("1F415", "1F415", "Animals & Nature", "animal-mammal", "dog", "狗", True, True),
    ("1F401", "1F401", "Animals & Nature", "animal-mammal", "mouse", "老鼠", True, True),
    ("1F41F", "1F41F", "Animals & Nature", "animal-marine", "fish", "鱼", True, True),
    ("1F40D", "1F40D", "Animals & Nature", "animal-reptile", "snake", "蛇", True, True),
    ("1F54A-FE0F", "1F54A", "Animals & Nature", "animal-bird", "dove", "鸽", True, True),  # FE0F only in emoji-data
    ("1F355", "1F355", "Food & Drink", "food-prepared", "pizza", "披萨", True, True),
    ("1F347", "1F347", "Food & Drink", "food-fruit", "grapes", "葡萄", True, True),
    ("1F95B", "1F95B", "Food & Drink", "drink", "glass of milk", "一杯奶", True, True),
    ("1F374", "1F374", "Food & Drink", "dishware", "fork and knife", "刀叉", True, True),
    ("1F34E", "1F34E", "Food & Drink", "food-fruit", "red apple", "红苹果", True, True),
    ("1F9C0", "1F9C0", "Food & Drink", "food-prepared", "cheese wedge", "芝士", True, False),  # no Noto art
    ("1F950", "1F950", "Food & Drink", "food-prepared", "croissant", None, True, True),  # no ZH label
    ("1F4F1", "1F4F1", "Objects", "phone", "mobile phone", "手机", True, True),  # another category
]
DEFAULT_SET = {"cat", "dog", "mouse", "fish", "snake", "dove", "pizza", "grapes", "glass of milk", "fork and knife",
               "red apple"}  # fmt: skip


def _sprite(k: int, vendor: str) -> bytes:
    """A drawn 64x64 RGBA sprite: a shape and colour per emoji, outlined differently per vendor."""
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    rng = random.Random(k)
    fill = (rng.randrange(30, 230), rng.randrange(30, 230), rng.randrange(30, 230), 255)
    box = (4 + k % 5, 6, 58, 60 - k % 7)
    [d.ellipse, d.rectangle, d.polygon][k % 3](box if k % 3 < 2 else [(32, 4), (60, 60), (4, 60)], fill=fill)
    d.line((8, 32, 56, 32 + (k % 9) * 3), fill=(0, 0, 0, 255) if vendor == "twitter" else (255, 255, 255, 255), width=3)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _art_tarball(path: Path, vendor: str, bad_png: bool = False) -> None:
    rows = []
    for k, (uni, _, cat, sub, en, _, tw, go) in enumerate(EMOJI):
        rows.append({"name": en.upper(), "unified": uni, "image": uni.lower() + ".png", "category": cat,
                     "subcategory": sub, "sort_order": k, "has_img_twitter": tw, "has_img_google": go})  # fmt: skip
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "package/LICENSE", b"MIT\n")
        _add(tar, "package/package.json", json.dumps({"name": f"emoji-datasource-{vendor}"}).encode())
        _add(tar, "package/emoji.json", json.dumps(rows).encode())
        _add(tar, "package/README.md", b"not extracted\n")
        for k, row in enumerate(rows):
            if row[f"has_img_{vendor}"]:
                data = b"\x89PNG\r\n\x1a\nbroken" if bad_png and k == 3 else _sprite(k, vendor)
                _add(tar, f"package/img/{vendor}/64/{row['image']}", data)
        link = tarfile.TarInfo(f"package/img/{vendor}/64/1f999.png")  # a symlink member: never extracted
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        _add(tar, "package/../evil.png", _sprite(0, vendor))  # path traversal: never extracted


def _labels_tarball(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "package/LICENSE", b"MIT\n")
        _add(tar, "package/package.json", b"{}")
        for lang, col in (("en", 4), ("zh", 5)):
            rows = [{"hexcode": e[1], "label": e[col], "group": 1} for e in EMOJI if e[col]]
            _add(tar, f"package/{lang}/compact.json", json.dumps(rows, ensure_ascii=False).encode())


def _sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _tarballs(folder: Path, bad_png: bool = False) -> tuple[A.Package, ...]:
    """Fake tarballs named like the real ones in ``folder``, and packages pinned to their checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    pkgs = []
    for p in A.PACKAGES:
        path = folder / p.tarball_name
        _labels_tarball(path) if p.key == "labels" else _art_tarball(path, p.key, bad_png and p.key == "google")
        pkgs.append(replace(p, sha512=_sha(path)))
    return tuple(pkgs)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> EmojiWorld:
    home = tmp_path_factory.mktemp("emoji")
    pkgs = _tarballs(home / "tarballs")
    return EmojiWorld(A.ensure_assets(home, pkgs))


def _leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if p.name != "tarballs")


# ----------------------------------------------------------------------------- assets


def test_cache_is_complete_and_works_offline(tmp_path, monkeypatch):
    home = tmp_path / "emoji"
    pkgs = _tarballs(home / "tarballs")
    got = A.ensure_assets(home, pkgs)
    assert A.is_complete(home, pkgs)
    assert {p.name for p in got.sprites["twitter"].iterdir()} == {e[0].lower() + ".png" for e in EMOJI}
    assert "cheese wedge" not in {p.name for p in got.sprites["google"].iterdir()}
    assert not (home / "evil.png").exists() and not (tmp_path / "evil.png").exists()
    assert not (got.sprites["twitter"] / "1f999.png").exists()  # the symlink member
    assert not (home / pkgs[0].stem / "README.md").exists()  # only the listed members
    assert "CC-BY 4.0" in got.attribution.read_text() and "Apache" in got.attribution.read_text()
    for t in (home / "tarballs").iterdir():
        t.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no npm, no tarballs: the complete cache is enough
    assert A.ensure_assets(home, pkgs) == got


def test_wrong_checksum_is_refused_and_leaves_nothing(tmp_path):
    home = tmp_path / "emoji"
    pkgs = _tarballs(home / "tarballs")
    bad = home / "tarballs" / pkgs[1].tarball_name
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(A.EmojiAssetError, match=r"emoji-datasource-google-16\.0\.0\.tgz: sha512 .* refused"):
        A.ensure_assets(home, pkgs)
    assert not (home / pkgs[1].stem).exists()
    assert not [p for p in home.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert not A.is_complete(home, pkgs)


def test_truncated_tarball_and_undecodable_png_are_refused(tmp_path):
    home = tmp_path / "emoji"
    pkgs = _tarballs(home / "tarballs")
    t = home / "tarballs" / pkgs[2].tarball_name
    t.write_bytes(t.read_bytes()[: t.stat().st_size // 2])
    cut = tuple(replace(p, sha512=_sha(t)) if p.key == "labels" else p for p in pkgs)  # checksum of the cut file
    with pytest.raises(A.EmojiAssetError, match="emojibase-data-17.0.0.tgz: not a complete gzip tar archive"):
        A.ensure_assets(home, cut)
    assert not (home / pkgs[2].stem).exists()

    home2 = tmp_path / "emoji2"
    pkgs2 = _tarballs(home2 / "tarballs", bad_png=True)
    with pytest.raises(A.EmojiAssetError, match=r"img/google/64/1f41f\.png does not decode as a PNG"):
        A.ensure_assets(home2, pkgs2)
    assert not (home2 / pkgs2[1].stem).exists()
    assert not [p for p in home2.iterdir() if p.name.startswith(".")]


def test_missing_npm_gives_one_line_saying_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(A.EmojiAssetError) as e:
        A.ensure_assets(tmp_path / "emoji")
    msg = str(e.value)
    assert "\n" not in msg
    assert "npm not found" in msg and "npm pack emoji-datasource-twitter@16.0.0" in msg
    assert str(tmp_path / "emoji" / "tarballs") in msg


@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script npm")
def test_npm_pack_fetch_checks_the_registry_integrity(tmp_path, monkeypatch):
    src = tmp_path / "registry"
    pkgs = _tarballs(src)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"  # a stand-in for `npm pack --json --pack-destination DIR NAME@VERSION`
    answers = {p.spec: {"filename": p.tarball_name, "integrity": p.integrity} for p in pkgs}
    npm.write_text(
        f"#!{sys.executable}\nimport json, shutil, sys\nanswers = {answers!r}\n"
        "dest, spec = sys.argv[4], sys.argv[5]\n"
        f"shutil.copy({str(src)!r} + '/' + answers[spec]['filename'], dest)\n"
        "print(json.dumps([answers[spec]]))\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    home = tmp_path / "emoji"
    A.ensure_assets(home, pkgs)
    assert A.is_complete(home, pkgs)
    assert _leftovers(home) == sorted(["ATTRIBUTION.md", *(p.stem for p in pkgs)])  # downloads deleted

    other = tmp_path / "emoji-other"  # a registry answer that is not the pinned version is refused
    tampered = (replace(pkgs[0], sha512=base64.b64encode(b"x" * 64).decode()),)
    with pytest.raises(A.EmojiAssetError, match="is not the pinned"):
        A.ensure_assets(other, tampered)
    assert _leftovers(other) == []


# ----------------------------------------------------------------------------- concepts


def test_concept_table(world):
    t = world.table
    assert {c.en for c in t} == DEFAULT_SET  # both vendors' art and both labels; FE0F matched; Objects left out
    assert t.get("dove").hexcode == "1F54A-FE0F" and t.get("鸽").en == "dove"
    measures = {c.en: c.measure for c in t}
    assert (measures["cat"], measures["fish"], measures["snake"], measures["pizza"], measures["grapes"]) == (
        "只", "条", "条", "块", "串")  # fmt: skip
    assert (measures["glass of milk"], measures["fork and knife"], measures["red apple"]) == ("杯", "副", "个")
    assert {c.en: c.en_plural for c in t if c.en in ("mouse", "fish", "grapes", "glass of milk")} == {
        "mouse": "mice", "fish": "fish", "grapes": "grapes", "glass of milk": "glasses of milk"}  # fmt: skip
    assert plural_en("fork and knife with plate") == "forks and knives with plate"
    objects = build_concepts(world.assets, ["Objects"])
    assert [c.en for c in objects] == ["mobile phone"]
    with pytest.raises(ValueError, match="unknown emoji category 'Pets'"):
        build_concepts(world.assets, ["Pets"])


def test_splits_are_seeded_and_sized():
    codes = [f"1F{k:03X}" for k in range(200)]
    a, b = assign_splits(codes, 19), assign_splits(list(reversed(codes)), 19)
    assert a == b  # a function of the set, not its order
    assert assign_splits(codes, 20) != a
    kinds = [s for s, _ in a.values()]
    assert (kinds.count("unseen"), kinds.count("style-held-out"), kinds.count("train")) == (20, 20, 160)
    seen = [st for s, st in a.values() if s == "style-held-out"]
    assert seen.count("twemoji") == seen.count("noto") == 10


def test_training_pool_keeps_held_out_emoji_and_styles_out(world):
    t = world.table
    unseen = {c.en for c in t.split("unseen")}
    held = {c.en: c.seen_style for c in t.split("style-held-out")}
    assert len(unseen) == len(held) == 1
    pairs = set(pool_choices(t, "train"))
    assert not {e for e, _ in pairs} & unseen
    assert {(e, s) for e, s in pairs if e in held} == {(e, s) for e, s in held.items()}
    heldout_pairs = set(pool_choices(t, "style-held-out"))
    assert heldout_pairs == {(e, "noto" if s == "twemoji" else "twemoji") for e, s in held.items()}
    for i in range(200):
        sc = sample_scene(random.Random(i), t, SceneConfig(pool="train"))
        assert all((o.emoji, o.style) in pairs for o in sc.objects)


# ----------------------------------------------------------------------------- scenes, captions, files


def test_render_is_deterministic_and_draws_the_sprites(world):
    a, b, c = world.sample(7, seed=3), world.sample(7, seed=3), world.sample(8, seed=3)
    assert a.image.tobytes() == b.image.tobytes() and a.en == b.en and a.scene == b.scene
    assert a.image.tobytes() != c.image.tobytes()
    s = world.sample(0, seed=1)
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
    bg = np.array((255, 255, 255) if s.scene.bg == "white" else (0, 0, 0))
    for o in s.scene.objects:
        x0, y0, x1, y1 = o.box(64)
        assert x1 - x0 == SIZES[64][o.size]
        assert np.abs(s.image[y0:y1, x0:x1].astype(int) - bg).sum() > 0  # something was drawn in the box
    big = EmojiWorld(world.assets, EmojiWorldConfig(canvas=96)).sample(0)
    assert big.image.shape == (96, 96, 3)
    with pytest.raises(EmojiSceneError, match="canvas must be one of"):
        EmojiWorld(world.assets, EmojiWorldConfig(canvas=80))


def test_captions_round_trip_in_both_languages(world):
    t = world.table
    for i in range(300):
        rng = random.Random(i)
        spec = describe(sample_scene(rng, t, SceneConfig(pool="all")), rng, t)
        for lang in ("en", "zh"):
            assert parse_caption(spec_to_text(spec, t, lang), t) == spec
    spec = normalize_spec({"groups": [{"emoji": "cat", "size": "small", "style": "twemoji", "count": 2},
                                      {"emoji": "pizza", "style": "noto"}], "bg": "black"}, t)  # fmt: skip
    assert spec_to_text(spec, t, "en") == "two small Twemoji cats and a Noto pizza on a black background"
    assert spec_to_text(spec, t, "zh") == "两只小的推特风格的猫和一块谷歌风格的披萨，黑色背景"
    rel = {"groups": [{"emoji": "cat", "count": 1}, {"emoji": "pizza", "count": 1}], "relation": "left"}
    assert spec_to_text(rel, t, "en") == "a cat to the left of a pizza"
    assert spec_to_text(rel, t, "zh") == "一只猫在一块披萨的左边"
    assert parse_caption("a twitter-style cat to the left of a pizza in Noto style", t)["groups"][1]["style"] == "noto"
    assert parse_caption("grapes and a fork and knife", t)["groups"][1]["emoji"] == "fork and knife"
    assert parse_caption("一杯奶和两只谷歌风格的狗", t)["groups"][0]["emoji"] == "glass of milk"


def test_unknown_words_are_named(world):
    with pytest.raises(EmojiCaptionError, match="unknown emoji 'dragonfly'"):
        parse_caption("a cat to the left of a dragonfly", world.table)
    with pytest.raises(EmojiCaptionError, match="unknown emoji '蜻蜓'"):
        parse_caption("一只猫在一只蜻蜓的左边", world.table)
    with pytest.raises(EmojiCaptionError, match="unexpected text at 'in purple style'"):
        parse_caption("a cat in purple style", world.table)
    with pytest.raises(EmojiCaptionError, match="at most 4 emoji; counts are one to four .* at 'five dogs'"):
        parse_caption("a cat and five dogs", world.table)
    with pytest.raises(EmojiCaptionError, match="group 0: unknown emoji 'unicorn'"):
        normalize_spec({"groups": [{"emoji": "unicorn"}]}, world.table)


def test_imagefolder_rows(world, tmp_path):
    out = write_imagefolder(tmp_path / "a", 12, seed=5, world=world)
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    for r in rows:
        assert set(r) == {"file_name", "text", "text_zh", "spec", "background", "canvas", "objects"}
        assert Image.open(out / r["file_name"]).size == (64, 64)
        assert parse_caption(r["text"], world.table) == r["spec"] == parse_caption(r["text_zh"], world.table)
        objs = r["objects"]
        assert all(set(o) == {"label", "box", "style"} and o["style"] in ("twemoji", "noto") for o in objs)
        Layout.from_dict({"background": r["background"], "canvas": 64,
                          "objects": [{"label": o["label"], "box": o["box"]} for o in objs]})  # fmt: skip
        assert sum(g["count"] for g in r["spec"]["groups"]) == len(objs)
        assert [o["label"] for o in objs[: len(r["spec"]["groups"])]][0] == r["spec"]["groups"][0]["emoji"]
    assert (out / "ATTRIBUTION.md").is_file() and len((out / "concepts.jsonl").read_text().splitlines()) == 11
    again = write_imagefolder(tmp_path / "b", 12, seed=5, world=world)
    assert (again / "metadata.jsonl").read_bytes() == (out / "metadata.jsonl").read_bytes()
    assert (again / "00011.png").read_bytes() == (out / "00011.png").read_bytes()
    with pytest.raises(FileExistsError, match="is not empty"):
        write_imagefolder(out, 2, world=world)


def test_layouts_map_back_to_scenes(world):
    for i in range(100):
        s = world.sample(i, seed=2)
        assert world.layout_to_scene(s.scene.layout(with_style=True)) == s.scene
        assert world.layout_to_scene(s.scene.layout(), styles=[o.style for o in s.scene.objects]) == s.scene
    bad = Layout("white", (LayoutObject("dragonfly", (1.0, 1.0, 15.0, 15.0)),), 64)
    with pytest.raises(LayoutError, match="object 0: field 'label': unknown emoji 'dragonfly'"):
        world.layout_to_scene(bad)
    odd = Layout("white", (LayoutObject("cat", (1.0, 1.0, 18.0, 18.0)),), 64)
    with pytest.raises(LayoutError, match="must be a square of side"):
        world.layout_to_scene(odd)


def test_held_out_streams_and_corpus(world):
    unseen = {c.en for c in world.table.split("unseen")}
    held = world.held_out_samples(20, pool="unseen")
    assert all(o.emoji in unseen for s in held for o in s.scene.objects)
    assert world.held_out_samples(3)[2].en == world.sample(2, HELD_OUT_SEED, "all").en
    corpus = list(world.caption_corpus(10, seed=1))
    assert len(corpus) == 20 and corpus == list(world.caption_corpus(10, seed=1))
    assert all(parse_caption(t, world.table) for t in corpus)


def test_caption_order_backtracks_where_a_general_mention_would_take_the_specific_one_s_emoji():
    """Found by benchmarks/augment_lift.py --world emoji: item 1,187 of the held-out stream (training pool) mentions "an
    ant" before "a small ant", and taking the first ant for "an ant" left none small (StopIteration)."""
    from lvg.worlds.emoji.captions import caption_order
    from lvg.worlds.emoji.scenes import EmojiObj, EmojiScene

    scene = EmojiScene((EmojiObj("shaved ice", "twemoji", "small", (0, 2)), EmojiObj("parrot", "noto", "small", (0, 0)),
                        EmojiObj("ant", "noto", "small", (2, 0)), EmojiObj("ant", "twemoji", "large", (0, 1))),
                       "white")  # fmt: skip
    spec = {"groups": [{"emoji": "parrot", "size": "small", "count": 1}, {"emoji": "shaved ice", "size": "small",
            "count": 1}, {"emoji": "ant", "count": 1}, {"emoji": "ant", "size": "small", "count": 1}], "bg": "white"}  # fmt: skip
    assert caption_order(scene, spec) == [1, 0, 3, 2]
    # where the first fit works, it is kept (the same order as before the fix)
    spec["groups"][2:] = [{"emoji": "ant", "size": "small", "count": 1}, {"emoji": "ant", "count": 1}]
    assert caption_order(scene, spec) == [1, 0, 2, 3]
    with pytest.raises(ValueError, match="does not describe"):
        caption_order(scene, {"groups": [{"emoji": "cat", "count": 1}], "bg": "white"})
