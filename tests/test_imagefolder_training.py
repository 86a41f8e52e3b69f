"""Every trainer trains on a user imagefolder (metadata.jsonl + images) and validates on its held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

import golden_train
import numpy as np
import pytest
from PIL import Image

from lvg.data.imagefolder import batch_indices, read_images, read_rows, split_rows
from lvg.train.config import load_config
from lvg.worlds.shapes.export import write_imagefolder

MODEL = golden_train.MODEL
COMMON = ["train.steps=2", "train.eval_every=2", "train.ckpt_every=2", "train.log_every=1", "train.progress=false",
          "train.device=cpu", "train.batch_size=4", "val_fraction=0.2"]  # fmt: skip
LM = [f"{x}" for x in golden_train.LM]


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory) -> Path:
    """A tiny Shapes World export: 64x64 images, EN + ZH captions and layouts."""
    return write_imagefolder(tmp_path_factory.mktemp("data") / "shapes", 10, seed=5, progress=False)


def drawn_folder(path: Path, sizes: list[int]) -> Path:
    """A hand-drawn folder: a coloured square on grey per image (``sizes[i]`` pixels a side), English captions only."""
    path.mkdir(parents=True)
    rows = []
    for i, s in enumerate(sizes):
        arr = np.full((s, s, 3), 128, np.uint8)
        colour = ("red", "green", "blue")[i % 3]
        arr[s // 4 : s // 2, s // 4 : s // 2] = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}[colour]
        Image.fromarray(arr).save(path / f"img{i}.png")
        rows.append({"file_name": f"img{i}.png", "text": f"a {colour} square"})
    (path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _tokenizer(folder: Path, out: Path) -> Path:
    from lvg.train.tokenizer import TokenizerTrainingConfig, train_tokenizer

    return train_tokenizer(load_config(TokenizerTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", "model.channels=[8,16,16]", *COMMON]))  # fmt: skip


def _planner(folder: Path, out: Path) -> Path:
    from lvg.train.planner import PlannerTrainingConfig, train_planner

    return train_planner(load_config(PlannerTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"text_tokenizer={MODEL / 'text_tokenizer'}",
        *(f"model.size.{x}" for x in LM), *COMMON]))  # fmt: skip


def _painter(folder: Path, out: Path) -> Path:
    from lvg.train.painter import PainterTrainingConfig, train_painter

    return train_painter(load_config(PainterTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"image_tokenizer={MODEL / 'image_tokenizer'}",
        "model.width=16", "model.blocks=1", "model.embed_dim=8", *COMMON]))  # fmt: skip


def _reader(folder: Path, out: Path) -> Path:
    from lvg.train.reader import ReaderTrainingConfig, train_reader

    return train_reader(load_config(ReaderTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"image_tokenizer={MODEL / 'image_tokenizer'}",
        "model.width=16", "model.blocks=1", *COMMON]))  # fmt: skip


def _reading_lm(folder: Path, out: Path) -> Path:
    from lvg.train.reader import ReadingLMTrainingConfig, train_reading_lm

    return train_reading_lm(load_config(ReadingLMTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"text_tokenizer={MODEL / 'text_tokenizer'}",
        *(f"size.{x}" for x in LM), *COMMON]))  # fmt: skip


def _clip(folder: Path, out: Path) -> Path:
    from lvg.train.clip import ClipTrainingConfig, train_clip

    return train_clip(load_config(ClipTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"text_tokenizer={MODEL / 'text_tokenizer'}",
        "model.embed_dim=32", "model.image_channels=[8,16,16]", "model.text_width=32", "model.text_layers=1",
        "model.text_heads=2", *COMMON]))  # fmt: skip


def _llm(folder: Path, out: Path) -> Path:
    import torch

    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
    from lvg.train.llm import LLMTrainingConfig, train_llm

    torch.manual_seed(0)
    ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4])).save_pretrained(out / "imgtok")
    return train_llm(load_config(LLMTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out / 'run'}", f"image_tokenizer={out / 'imgtok'}",
        f"text_tokenizer={MODEL / 'text_tokenizer'}", "model.preset=tiny", *COMMON]))  # fmt: skip


def _unified_lm(folder: Path, out: Path) -> Path:
    from lvg.train.unified import UnifiedLMTrainingConfig, train_unified_lm

    return train_unified_lm(load_config(UnifiedLMTrainingConfig, None, [
        f"imagefolder={folder}", f"train.out_dir={out}", f"text_tokenizer={MODEL / 'text_tokenizer'}",
        "plan_batch_size=4", *(f"size.{x}" for x in LM), *COMMON]))  # fmt: skip


TRAINERS = {"tokenizer": (_tokenizer, ["val/loss", "val/psnr"]), "planner": (_planner, ["val/loss"]),
            "painter": (_painter, ["val/loss", "val/token_acc"]),
            "reader": (_reader, ["val/loss", "val/labels_exact"]),
            "reading_lm": (_reading_lm, ["val/loss", "val/caption_en", "val/caption_zh"]),
            "clip": (_clip, ["val/loss", "val/retrieval_top1"]), "llm": (_llm, ["val/loss", "val/caption_loss"]),
            "unified_lm": (_unified_lm, ["val/plan_loss", "val/read_loss", "val/caption_en"])}  # fmt: skip


def _metrics(out: Path) -> list[dict]:
    run = out / "run" if (out / "run").is_dir() else out
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", list(TRAINERS))
def test_every_trainer_trains_on_a_folder_and_validates_on_its_held_out_rows(shapes_folder, tmp_path, name):
    train, keys = TRAINERS[name]
    saved = train(shapes_folder, tmp_path / name)
    assert Path(saved).is_dir()
    rows = _metrics(tmp_path / name)
    assert [r["step"] for r in rows if "train/loss" in r] == [1, 2]
    val = [r for r in rows if keys[0] in r]
    assert [r["step"] for r in val] == [2]  # validated once, on the held-out rows
    assert all(k in val[0] for k in keys), val[0]
    assert np.isfinite(val[0][keys[0]]) and val[0][keys[0]] > 0


def test_a_folder_of_32px_images_sets_the_canvas_of_the_tokenizer_and_clip(tmp_path):
    folder = drawn_folder(tmp_path / "small", [32] * 8)
    tok = json.loads((Path(_tokenizer(folder, tmp_path / "tok")) / "config.json").read_text())
    assert tok["image_size"] == 32  # not the config's default 64
    clip = json.loads((Path(_clip(folder, tmp_path / "clip")) / "config.json").read_text())
    assert clip["image_size"] == 32
    assert "val/retrieval_top1" in _metrics(tmp_path / "clip")[-1]
    with pytest.raises(ValueError, match=r"images of .*small are 32x32, but the image tokenizer .* takes 64x64"):
        _painter(write_layouts(folder), tmp_path / "painter")


def write_layouts(folder: Path, canvas: int | None = 32) -> Path:
    """Give a drawn folder's rows layouts (on a ``canvas`` px canvas; None: no ``canvas`` field)."""
    meta = folder / "metadata.jsonl"
    rows = [json.loads(x) for x in meta.read_text().splitlines()]
    for r in rows:
        r.update(background="gray", objects=[{"label": r["text"].split()[1] + " square", "box": [8, 8, 16, 16]}])
        if canvas:
            r["canvas"] = canvas
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_a_folder_of_mixed_image_sizes_is_an_error_naming_the_file(tmp_path):
    folder = drawn_folder(tmp_path / "mixed", [32, 32, 48, 32])
    with pytest.raises(ValueError, match=r"image .*img2\.png is 48x48, but .*img0\.png is 32x32"):
        read_images(read_rows(folder))
    with pytest.raises(ValueError, match=r"img2\.png is 48x48"):
        _tokenizer(folder, tmp_path / "tok")
    Image.new("RGB", (32, 16)).save(folder / "img2.png")
    with pytest.raises(ValueError, match=r"img2\.png is 32x16; imagefolder images must be square"):
        _clip(folder, tmp_path / "clip")
    no_canvas = write_layouts(drawn_folder(tmp_path / "nocanvas", [32, 32]), canvas=None)  # layouts default to 64
    with pytest.raises(ValueError, match=r"img0\.png is 32x32, but its row's layout canvas is 64"):
        read_images(read_rows(no_canvas, layouts=True))


def test_the_split_is_by_file_name_and_batches_are_a_pure_function_of_the_step(shapes_folder):
    rows = read_rows(shapes_folder)
    train, val = split_rows(rows, 0.2)
    assert len(val) == 2 and len(train) == 8 and not {r["name"] for r in val} & {r["name"] for r in train}
    again = split_rows(list(reversed(rows)), 0.2)[1]
    assert {r["name"] for r in again} == {r["name"] for r in val}  # the order of the rows does not matter
    assert split_rows(rows, 0.0) == (rows, []) and len(split_rows(rows, 0.01)[1]) == 1
    assert split_rows(rows[:1], 0.5) == (rows[:1], [])  # a single row is never held out
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_rows(rows, 1.0)
    # every epoch visits each row once; a shard's rows are those of the whole batch
    first = [i for s in range(5) for i in batch_indices(8, s, 8, "k")]
    assert sorted(first[:8]) == list(range(8)) and sorted(first[8:16]) == list(range(8)) and first[:8] != first[8:16]
    assert batch_indices(8, 3, 4, "k", [1, 3]) == [batch_indices(8, 3, 4, "k")[j] for j in (1, 3)]
    assert batch_indices(8, 3, 4, "k") != batch_indices(8, 3, 4, "other")


def test_an_object_style_joins_its_label_and_a_bad_style_names_the_line(tmp_path):
    Image.new("RGB", (64, 64), "white").save(tmp_path / "a.png")
    row = {"file_name": "a.png", "text": "a cat", "objects": [{"label": "cat", "box": [0, 0, 20, 20], "style": "noto"},
                                                              {"label": "dog", "box": [30, 30, 50, 50]}]}  # fmt: skip
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    [r] = read_rows(tmp_path, layouts=True)
    assert [o.label for o in r["layout"].objects] == ["cat (noto)", "dog"]
    row["objects"][0]["style"] = 5
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"metadata.jsonl line 1: object 0: field 'style' must be a non-empty string"):
        read_rows(tmp_path)


def test_lvg_eval_tokenizer_measures_a_folder(tmp_path, capsys):
    from lvg.cli import main
    from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig

    folder = write_imagefolder(tmp_path / "f", 6, seed=3)
    ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4])).save_pretrained(tmp_path / "tok")
    assert (
        main(["eval", "tokenizer", "--model", str(tmp_path / "tok"), "--imagefolder", str(folder), "--num", "4"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["num_images"] == 4 and out["imagefolder"] == str(folder) and "round_trip" not in out
    assert 0 < out["psnr"] < 60 and 0 < out["codes_used"] <= out["codebook_size"]


def test_the_planner_learns_a_folders_english_and_chinese_captions(shapes_folder):
    from lvg.train.planner import folder_samples

    rows = read_rows(shapes_folder, layouts=True)
    samples = folder_samples(rows)
    assert [s.text for s in samples] == [r["text"] for r in rows] + [r["text_zh"] for r in rows]
    assert [s.layout for s in samples] == [r["layout"] for r in rows] * 2
