"""lvg augment: the LM invents scenes, describes them, the painter draws them; a labelled imagefolder."""

from __future__ import annotations

import json

import pytest
from conftest import make_tiny_planned

from lvg.cli import main
from lvg.data.imagefolder import read_rows
from lvg.pipelines import load_pipeline
from lvg.pipelines.augment import augment


@pytest.fixture(scope="module")
def tiny_planned_dir(tmp_path_factory):
    return make_tiny_planned(tmp_path_factory.mktemp("model") / "planned")


def test_augment_writes_a_reproducible_labelled_imagefolder_of_distinct_scenes(tiny_planned_dir, tmp_path, capsys):
    for out in ("a", "b"):
        assert main(["augment", "--num", "6", "--out", str(tmp_path / out), "--model", str(tiny_planned_dir),
                     "--seed", "3"]) == 0  # fmt: skip
    assert "wrote 6 examples" in capsys.readouterr().out
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "metadata.jsonl").read_bytes() == (b / "metadata.jsonl").read_bytes()
    assert [(a / f"{i:05d}.png").read_bytes() == (b / f"{i:05d}.png").read_bytes() for i in range(6)] == [True] * 6
    rows = read_rows(a, layouts=True)  # every trainer reads it: layouts, EN and ZH text
    assert len(rows) == 6 and all(r["layout"].objects and r["text_zh"] is not None for r in rows)
    raw = [json.loads(x) for x in (a / "metadata.jsonl").read_text().splitlines()]
    assert len({json.dumps(r["objects"]) + r["background"] for r in raw}) == 6  # no repeated scene
    assert [r["seed"] for r in raw] == sorted(r["seed"] for r in raw) and raw[0]["seed"] >= 3


def test_augment_refuses_bad_input_with_one_line(tiny_planned_dir, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert main(["augment", "--num", "2", "--out", str(tmp_path / "full"), "--model", str(tiny_planned_dir)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "full" / "x").read_text() == "keep me"
    assert main(["augment", "--num", "0", "--out", str(tmp_path / "o"), "--model", str(tiny_planned_dir)]) == 2
    assert main(["augment", "--num", "2", "--out", str(tmp_path / "o"), "--temperature", "-1",
                 "--model", str(tiny_planned_dir)]) == 2  # fmt: skip
    assert "temperature" in capsys.readouterr().err
    pipe = load_pipeline(tiny_planned_dir)
    pipe.reader = None
    with pytest.raises(ValueError, match="needs a planned model with a reader"):
        augment(pipe, 2)
