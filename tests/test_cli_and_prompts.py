"""The lvg command line, the public API and the committed benchmark prompts."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lvg
from lvg.cli import main
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts, make_prompts
from lvg.worlds.shapes.parse import parse_caption

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "benchmarks" / "shapes_prompts.jsonl"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["data"],
        ["data", "shapes"],
        ["data", "preview"],
        ["parse"],
        ["judge"],
        ["train"],
        ["train", "text-tokenizer"],
        ["train", "unified-lm"],
        ["data", "emoji"],
    ],
)
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: lvg" in capsys.readouterr().out


def test_train_commands_come_from_one_table(capsys):
    """`lvg train --help` lists every trainer; each row names a config class whose example config loads."""
    import dataclasses

    from lvg.cli.train import TRAINERS, _resolve
    from lvg.train.config import load_config

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listed = re.findall(r"^ {4}([a-z-]+)(?: |$)", capsys.readouterr().out, re.M)
    assert listed == ["text-tokenizer", "tokenizer", "planner", "painter", "gan-painter", "diffusion-painter", "reader", "restorer", "reading-lm", "unified-lm", "llm",
                      "clip"]  # fmt: skip
    assert [t.name for t in TRAINERS] == listed[1:]
    for t in TRAINERS:
        cls = _resolve(t.config)
        assert dataclasses.is_dataclass(cls) and callable(_resolve(t.train)), t.name
        assert isinstance(load_config(cls, ROOT / t.example_config, []), cls), t.name
    assert main(["train", "unified-lm", "no_such_field=1"]) == 2
    assert capsys.readouterr().err.startswith("lvg: error:")


def test_parse_and_judge_commands(tmp_path, capsys):
    assert main(["parse", "一个绿色十字形在右上角"]) == 0
    assert json.loads(capsys.readouterr().out) == parse_caption("a green cross in the top right")
    assert main(["data", "shapes", "--num", "3", "--out", str(tmp_path / "d"), "--seed", "1"]) == 0
    row = json.loads((tmp_path / "d" / "metadata.jsonl").read_text().splitlines()[0])
    capsys.readouterr()
    assert main(["judge", str(tmp_path / "d" / row["file_name"]), "--prompt", row["text_zh"]]) == 0
    assert capsys.readouterr().out.startswith("PASS")
    assert (
        main(
            [
                "judge",
                str(tmp_path / "d" / row["file_name"]),
                "--spec",
                json.dumps({"groups": [{"shape": "star", "count": 4}]}),
            ]
        )
        == 1
    )
    assert main(["data", "preview", "--out", str(tmp_path / "g.png"), "--num", "4", "--cols", "2"]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 2 * 64


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    from lvg.cli import main

    (tmp_path / "bad.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "small.png")
    r = subprocess.run([sys.executable, "-m", "lvg.cli", "parse", "a magenta circle"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("lvg: error:") and "Traceback" not in r.stderr, r.stderr
    for argv in (  # the same path in this process (a process each costs seconds of imports)
        ["judge", str(tmp_path / "bad.png"), "--prompt", "a circle"],
        ["judge", str(tmp_path / "small.png"), "--prompt", "a circle"],
        ["judge", str(tmp_path / "missing.png"), "--prompt", "a circle"],
        ["data", "shapes", "--num", "0", "--out", str(tmp_path / "x")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("lvg: error:") and len(err.splitlines()) == 1, err


def test_public_api():
    assert lvg.__version__
    for name in lvg.__all__:
        assert getattr(lvg, name) is not None
    with pytest.raises(AttributeError):
        lvg.no_such_thing  # noqa: B018


def test_committed_prompts_are_the_seeded_ones():
    rows = load_prompts(PROMPTS)
    assert rows == make_prompts(per_category=50, seed=0)
    counts = Counter(r["category"] for r in rows)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 50
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert parse_caption(r["en"]) == r["spec"] == parse_caption(r["zh"])


def test_bad_prompt_file(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "x", "category": "colors", "spec": {"groups": [{"shape": "blob"}]}}\n')
    with pytest.raises(ValueError, match="p.jsonl:1"):
        load_prompts(f)
