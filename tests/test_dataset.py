"""Training stream determinism and sharding; the imagefolder writer."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lvg.data.layout import Layout
from lvg.worlds.shapes import dataset as ds
from lvg.worlds.shapes.dataset import ShapesWorldConfig, ShapesWorldDataset, make_sample
from lvg.worlds.shapes.export import write_imagefolder
from lvg.worlds.shapes.parse import parse_caption
from lvg.worlds.shapes.scene_layout import layout_to_scene
from lvg.worlds.shapes.spec import scene_satisfies


def test_items_are_pure_functions_of_seed_and_index():
    a, b = make_sample(17), make_sample(17)
    assert np.array_equal(a.image, b.image) and a.text == b.text and a.spec == b.spec
    c = make_sample(17, ShapesWorldConfig(seed=1))
    assert not (np.array_equal(a.image, c.image) and a.text == c.text)
    assert scene_satisfies(a.scene, a.spec) and parse_caption(a.en) == a.spec == parse_caption(a.zh)


def test_stream_reproduces_and_resumes():
    first = [x["index"] for _, x in zip(range(20), ShapesWorldDataset())]
    assert first == list(range(20))
    resumed = next(iter(ShapesWorldDataset(start=10)))
    assert resumed["text"] == list(zip(range(11), ShapesWorldDataset()))[10][1]["text"]
    item = next(iter(ShapesWorldDataset()))
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.uint8
    assert item["lang"] in ("en", "zh") and json.loads(item["spec"])["groups"]


def test_workers_get_disjoint_reproducible_streams():
    def run():
        loader = DataLoader(ShapesWorldDataset(limit=64), batch_size=8, num_workers=2)
        return [(int(i), t) for b in loader for i, t in zip(b["index"], b["text"])]

    one, two = run(), run()
    assert one == two
    assert sorted(i for i, _ in one) == list(range(64))


def test_ranks_get_disjoint_streams(monkeypatch):
    seen = []
    for rank in range(2):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        seen.append([x["index"] for x in ShapesWorldDataset(limit=10)])
    assert seen == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert ds._shard  # the helper the stream uses


def test_languages_and_paraphrases_mix():
    cfg = ShapesWorldConfig(paraphrase_prob=0.5)
    items = [make_sample(i, cfg) for i in range(400)]
    assert {s.lang for s in items} == {"en", "zh"}
    assert any(s.text not in (s.en, s.zh) for s in items)
    only_en = [make_sample(i, ShapesWorldConfig(langs=("en",))) for i in range(50)]
    assert all(s.text == s.en for s in only_en)


def test_imagefolder(tmp_path):
    out = write_imagefolder(tmp_path / "shapes", 25, seed=3, progress=False)
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 25
    assert set(rows[0]) == {"file_name", "text", "text_zh", "spec", "background", "objects"}
    for i, row in enumerate(rows):
        img = np.asarray(Image.open(out / row["file_name"]))
        ref = make_sample(i, ShapesWorldConfig(seed=3))
        assert np.array_equal(img, ref.image)
        assert parse_caption(row["text"]) == row["spec"] == parse_caption(row["text_zh"])
        layout = Layout.from_dict({"background": row["background"], "objects": row["objects"]})
        scene = layout_to_scene(layout)  # the same objects, listed in caption order
        assert sorted(map(repr, scene.objects)) == sorted(map(repr, ref.scene.objects)) and scene.bg == ref.scene.bg
    with pytest.raises(FileExistsError):
        write_imagefolder(out, 5, progress=False)
    write_imagefolder(out, 5, overwrite=True, progress=False)
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 5
    with pytest.raises(ValueError):
        write_imagefolder(tmp_path / "x", 0, progress=False)
