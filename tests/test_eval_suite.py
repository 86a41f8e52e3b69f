"""``lvg eval shapes --report``: the whole evaluation and report on a tiny model."""

import json

from conftest import ROOT

from lvg.cli import main
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts, write_prompts


def test_eval_shapes_with_report(tiny_pipeline_dir, tmp_path, capsys):
    rows = load_prompts(ROOT / "benchmarks" / "shapes_prompts.jsonl")
    subset = [r for c in CATEGORIES for r in [p for p in rows if p["category"] == c][:1]]
    write_prompts(tmp_path / "p.jsonl", subset)
    argv = ["eval", "shapes", "--model", str(tiny_pipeline_dir), "--prompts", str(tmp_path / "p.jsonl"),
            "--captions", "5", "--out", str(tmp_path / "out"), "--report", str(tmp_path / "report")]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    for key in ("FID (en)", "FID (zh)", "KID x1000", "sanity: FID real vs real", "diversity", "cycle consistency",
                "tokenizer PSNR", "PixelFeatures"):  # fmt: skip
        assert key in text, key
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {g["lang"] for g in res["generation"]} == {"en", "zh"} and len(res["captioning"]) == 2
    html = (tmp_path / "report" / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and html.count("<img") > 20
    assert (tmp_path / "report" / "report.md").is_file()
