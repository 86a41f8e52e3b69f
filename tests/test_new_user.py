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


# ---------------------------------------------------------------------- seeds on the web page

STATIC = ROOT / "lvg" / "serve" / "static"


def test_server_hands_each_image_its_exact_seed_as_a_string():
    from test_serve import serve

    with serve() as c:
        for body in ({"prompt": "a red circle", "n": 3, "seed": 2**62}, {"prompt": "a red circle", "n": 3}):
            r = c.post("/v1/images/generations", json=body)
            assert r.status_code == 200, r.text
            data = json.loads(r.text, parse_int=str)  # read the digits as sent, the way the page must
            first = int(data["data"][0]["seed_string"])
            assert [d["seed_string"] for d in data["data"]] == [str(first + j) for j in range(3)]
            assert [d["seed"] for d in data["data"]] == [d["seed_string"] for d in data["data"]]
            if "seed" in body:
                assert first == 2**62


def test_page_keeps_seeds_exact_above_2_53():
    import shutil
    import subprocess

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node not found (the page's seed helpers are plain functions it can run)")
    script = """
    const s = require(process.argv[1]);
    const out = {
      big: s.parseSeed(" 9007199254740993 "), max: s.parseSeed("9223372036854775807"),
      over: s.parseSeed("9223372036854775808"), frac: s.parseSeed("1.5"), neg: s.parseSeed("-5"), empty: s.parseSeed(""),
      body: s.requestJson({prompt: 'say "seed":null', n: 2}, "9007199254740993"),
      random: s.requestJson({prompt: "x"}, null),
      seeds: s.imageSeeds([{seed: 9007199254740993, seed_string: "9007199254740993"},
                           {seed: 9007199254740994, seed_string: "9007199254740994"}, {seed: 7}]),
    };
    process.stdout.write(JSON.stringify(out));
    """
    res = subprocess.run([node, "-e", script, str(STATIC / "app.js")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["big"] == {"seed": "9007199254740993"} and out["max"] == {"seed": str(2**63 - 1)}
    assert all("error" in out[k] for k in ("over", "frac", "neg")) and out["empty"] == {"seed": None}
    assert json.loads(out["body"]) == {"seed": 2**53 + 1, "prompt": 'say "seed":null', "n": 2}  # exact digits
    assert json.loads(out["random"]) == {"seed": None, "prompt": "x"}
    assert out["seeds"] == ["9007199254740993", "9007199254740994", "7"]  # each card its own seed


def test_page_css_hides_the_empty_preview_fits_download_and_falls_back_to_cjk_fonts():
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    compact = "".join(css.split())
    assert "[hidden]{display:none!important;}" in compact  # beats .caption-preview-box img { display: block }
    assert 'id="caption-preview"' in html and "hidden>" in html.split('id="caption-preview"', 1)[1].split("\n")[0]
    figcaption = compact.split(".tilefigcaption{", 1)[1].split("}", 1)[0]
    assert "flex-wrap:wrap" in figcaption
    assert "white-space:nowrap" in compact.split(".tilefigcaptiona{", 1)[1].split("}", 1)[0]
    for font in ("Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "Source Han Sans SC"):
        assert f'"{font}"' in css
    assert 'lang="zh-CN"' in html and ":lang(zh)" in css
    assert 'type="number"' not in html.split('id="seed"', 1)[1].split(">", 1)[0]  # typed seeds stay exact text


# ---------------------------------------------------------------------- --threads


def test_generate_threads_flag_sets_torch_threads(tiny_pipeline_dir, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        argv = ["generate", "a red circle", "-o", str(tmp_path / "a.png"), "--model", str(tiny_pipeline_dir)]
        assert main([*argv, "--threads", "2"]) == 0 and torch.get_num_threads() == 2
        assert main(argv) == 0 and torch.get_num_threads() == 1  # the documented default
        assert main([*argv, "--threads", "0"]) == 2
        assert "--threads must be an integer in [1, 1024], got 0" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "0.19-0.23 s with 1 thread" in " ".join(capsys.readouterr().out.split())


def test_serve_threads_flag_reaches_the_server(tiny_pipeline_dir, monkeypatch, capsys):
    import torch

    import lvg.serve.server as server
    from lvg.serve.app import ServeSettings

    seen = []

    class FakeServer:
        def __init__(self, settings):
            self.lvg_state = type("S", (), {"keys": None})()
            seen.append((settings.threads, self))

        def run(self):
            seen.append(torch.get_num_threads())

    monkeypatch.setattr(server, "build_server", FakeServer)
    before = torch.get_num_threads()
    try:
        assert main(["serve", "--model", str(tiny_pipeline_dir), "--threads", "3"]) == 0
        assert seen[0][0] == 3 and seen[1] == 3  # set before the server runs
        assert main(["serve", "--model", str(tiny_pipeline_dir)]) == 0 and seen[2][0] == 1 and seen[3] == 1
    finally:
        torch.set_num_threads(before)
    assert main(["serve", "--model", str(tiny_pipeline_dir), "--threads", "0"]) == 2
    assert "threads" in capsys.readouterr().err
    assert ServeSettings().threads == 1


# ---------------------------------------------------------------------- what a prompt may ask for


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"### {title}" in text
    return text.split(f"### {title}", 1)[1].split("\n#", 1)[0]


def test_readme_lists_every_word_the_world_has():
    from lvg.worlds.shapes.captions import NUM_EN, NUM_ZH, REL_EN, REL_ZH
    from lvg.worlds.shapes.world import (
        BACKGROUNDS,
        BG_ZH,
        CELL_EN,
        CELL_ZH,
        COLOR_ZH,
        COLORS,
        SHAPE_ZH,
        SHAPES,
        SIZE_ZH,
        SIZES,
    )

    section = _readme_section("What you can ask for")
    words = [*COLORS, *COLOR_ZH.values(), *SHAPES, *SHAPE_ZH.values(), *SIZES, *SIZE_ZH.values(), *BACKGROUNDS,
             *BG_ZH.values(), *CELL_EN.values(), *CELL_ZH.values(), *REL_EN.values(), *REL_ZH.values(),
             *NUM_EN.values(), *NUM_ZH.values()]  # fmt: skip
    missing = [w for w in words if w not in section]
    assert not missing, f"README 'What you can ask for' lacks {missing}"
    assert f"colours ({len(COLORS)})" in section and f"shapes ({len(SHAPES)})" in section
    assert f"sizes ({len(SIZES)})" in section


def test_readme_examples_parse():
    import re

    from lvg.worlds.shapes.parse import parse_caption

    section = _readme_section("What you can ask for")
    examples = re.findall(r'"([^"]+)"', section.split("For example", 1)[1].split("Layout files", 1)[0])
    assert len(examples) >= 4
    for text in examples:
        parse_caption(text)  # raises if the README suggests a prompt outside the grammar


# ---------------------------------------------------------------------- unknown layout labels


def test_unknown_layout_label_lists_the_valid_words_and_names_the_file(tmp_path, capsys):
    from conftest import make_tiny_planned

    from lvg.tokenizers.layout import describe_labels
    from lvg.worlds.shapes.world import COLORS, SHAPES

    model = make_tiny_planned(tmp_path / "m", reader=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"background": "black", "objects": [{"label": "white cross", "box": [8, 8, 24, 24]}]}')
    assert main(["generate", "--layout", str(bad), "-o", str(tmp_path / "x.png"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lvg: error: {bad}: object 0: field 'label' 'white cross' is not a label this model knows")
    assert all(c in err for c in COLORS) and all(s in err for s in SHAPES) and len(err.splitlines()) == 1
    assert describe_labels(["a", "b"]) == "it knows 'a', 'b'"
    many = [f"thing {i}" for i in range(20)]  # not every pair of words: the first ones and the count
    assert describe_labels(many[:-1] + ["odd"]).startswith("it knows 20 labels: 'thing 0', 'thing 1'")


def test_another_worlds_referee_judges_the_generated_images(tiny_pipeline_dir, few_prompts):
    from types import SimpleNamespace

    from lvg.eval.shapes import evaluate_generation
    from lvg.pipelines import load_pipeline

    pipe = load_pipeline(tiny_pipeline_dir)
    prompts = load_prompts(few_prompts)
    seen = []

    def referee(image, spec):  # stands for a world's judge: it gets every image and its prompt's spec
        seen.append(spec)
        return SimpleNamespace(passed=len(seen) % 2 == 1, reason="odd")

    r = evaluate_generation(pipe, prompts, "en", seed=0, referee=referee)
    assert seen == [p["spec"] for p in prompts]
    assert [row["passed"] for row in r.rows] == [i % 2 == 0 for i in range(len(prompts))]
