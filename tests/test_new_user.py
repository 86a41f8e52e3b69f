"""Issue 23, "what a new user hit": eval progress and partial results, seeds on the web page, --threads,
the README's list of what a prompt may ask for, and the unknown-label error."""

import json

import pytest
from conftest import ROOT

from lvg.cli import main
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts, write_prompts


@pytest.fixture
def few_prompts(tmp_path):
    rows = load_prompts(ROOT / "benchmarks" / "shapes_prompts.jsonl")
    subset = [r for c in CATEGORIES for r in [p for p in rows if p["category"] == c][:1]]
    write_prompts(tmp_path / "p.jsonl", subset)
    return tmp_path / "p.jsonl"


def test_eval_shapes_shows_progress_and_says_how_long(tiny_pipeline_dir, few_prompts, tmp_path, capsys):
    argv = ["eval", "shapes", "--model", str(tiny_pipeline_dir), "--prompts", str(few_prompts), "--captions", "3",
            "--lang", "en", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "generate + judge (en)" in err and "caption (en)" in err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["meta"]["status"] == "complete"
    assert main([*argv, "--no-progress"]) == 0
    assert "generate + judge" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "shapes", "--help"])
    assert "2-core CPU" in " ".join(capsys.readouterr().out.split())


def test_eval_shapes_interrupted_writes_what_finished(tiny_pipeline_dir, few_prompts, tmp_path, capsys, monkeypatch):
    import lvg.eval.shapes

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lvg.eval.shapes, "evaluate_captioning", interrupt)
    argv = ["eval", "shapes", "--model", str(tiny_pipeline_dir), "--prompts", str(few_prompts), "--captions", "3",
            "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted; wrote the finished sections" in capsys.readouterr().err
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["meta"]["status"] == "interrupted" and res["captioning"] == []
    assert [g["lang"] for g in res["generation"]] == ["en", "zh"]
    assert "overall" in (tmp_path / "out" / "results.md").read_text()


def test_chunked_generation_keeps_each_prompts_seed(tiny_pipeline_dir, few_prompts):
    from lvg.eval.shapes import evaluate_generation
    from lvg.pipelines import load_pipeline

    pipe = load_pipeline(tiny_pipeline_dir)
    prompts = load_prompts(few_prompts)
    one = evaluate_generation(pipe, prompts, "en", seed=3, batch_size=64, keep_images=True)
    chunked = evaluate_generation(pipe, prompts, "en", seed=3, batch_size=2, keep_images=True)
    assert [r["image"].tobytes() for r in one.rows] == [r["image"].tobytes() for r in chunked.rows]
    shifted = evaluate_generation(pipe, prompts, "en", seed=4, batch_size=2, keep_images=True)
    assert [r["image"].tobytes() for r in one.rows] != [r["image"].tobytes() for r in shifted.rows]
