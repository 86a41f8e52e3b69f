"""Shapes World, pinned byte for byte: renders, captions (EN/ZH), the data stream and its imagefolder export, the
held-out split, the plan and reading streams, the benchmark prompts and the judge's verdicts.

The hashes below were computed on the code before Shapes World moved into ``lvg/worlds/shapes/`` (commit 5ee1416);
a world's behaviour must not change when code moves around it. If one of them changes on purpose, the change is a
new world version: say so in the commit and recompute them (``python tests/test_worlds.py`` prints them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

import lvg
from lvg.worlds.shapes.benchmark import make_prompts
from lvg.worlds.shapes.heldout import held_out_samples
from lvg.worlds.shapes.plans import make_plan_sample
from lvg.worlds.shapes.reading import make_reading_sample
from lvg.worlds.shapes.scene_layout import layout_from_scene

ROOT = Path(__file__).resolve().parents[1]
N = 40  # scenes per check


def _sha(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else json.dumps(p, ensure_ascii=False, default=str).encode())
    return h.hexdigest()


def _scenes() -> list:
    return [lvg.sample_scene(random.Random(f"golden:{i}")) for i in range(N)]


def _renders() -> str:
    return _sha(*[lvg.render(s) for s in _scenes()])


def _captions() -> str:
    rng = random.Random(7)
    caps = [lvg.caption(s, rng) for s in _scenes()]
    return _sha([[c.en, c.zh, c.spec] for c in caps])


def _parses() -> str:
    rng = random.Random(8)
    caps = [lvg.caption(s, rng) for s in _scenes()]
    return _sha([[lvg.parse_caption(c.en), lvg.parse_caption(c.zh)] for c in caps])


def _stream() -> str:
    samples = [lvg.make_sample(i, lvg.ShapesWorldConfig(seed=3, paraphrase_prob=0.5)) for i in range(N)]
    return _sha(*[s.image for s in samples], [[s.en, s.zh, s.lang, s.text, s.spec] for s in samples])


def _imagefolder(tmp: Path) -> str:
    out = lvg.write_imagefolder(tmp / "folder", 12, seed=5, progress=False)
    return _sha(*[(out / name).read_bytes().hex() for name in sorted(p.name for p in out.iterdir())])


def _held_out() -> str:
    samples = held_out_samples(N)
    return _sha(*[s.image for s in samples], [[s.en, s.zh, s.text, s.full_text] for s in samples])


def _layouts() -> str:
    return _sha([layout_from_scene(s).to_dict() for s in _scenes()])


def _plans() -> str:
    samples = [dataclasses.asdict(make_plan_sample(i)) for i in range(N)]
    # (fields added later: the default stream never refuses and never edits)
    assert all(s.pop("refusal") is None and s.pop("context") is None for s in samples)
    return _sha(samples)


def _reading() -> str:
    return _sha(
        [[r.layout.to_dict(), r.lang, r.question, r.answer, r.kind] for r in map(make_reading_sample, range(N))]
    )


def _prompts() -> str:
    return _sha(make_prompts(per_category=5, seed=11))


def _prompts_file() -> str:
    return hashlib.sha256((ROOT / "benchmarks" / "shapes_prompts.jsonl").read_bytes()).hexdigest()


def _verdicts() -> str:
    rows = make_prompts(per_category=2, seed=0)
    prompts = [r["en"] for r in rows] + [r["zh"] for r in rows] + [r["spec"] for r in rows[::3]]
    scenes = _scenes()[:12]
    rng = random.Random(9)
    prompts += [c for s in scenes for cap in [lvg.caption(s, rng)] for c in (cap.en, cap.zh)]  # each image's own
    images = [lvg.render(s) for s in scenes]
    noisy = [np.clip(im.astype(int) + np.random.default_rng(i).integers(-30, 31, im.shape), 0, 255).astype(np.uint8)
             for i, im in enumerate(images)]  # fmt: skip
    out = []
    for im in images + noisy:
        for p in prompts:
            v = lvg.judge(im, p)
            out.append([v.passed, v.reason])
    assert 0 < sum(p for p, _ in out) < len(out)  # both verdicts occur
    return _sha(out)


GOLDEN = {  # computed on the code before the move (commit 5ee1416); see the module docstring
    "renders": "8e0b2dc232541dfcc48c7c6abd0124457407aef236af905187493dc320a46987",
    "captions": "780ada552cac388056b37225aabefdd44698e2fd7f43e736ea36000c1cd58471",
    "parses": "1aa9282bec0af06fd7f089c5a2f7044546984e2295f3e5970917d8a8253befb7",
    "stream": "c5601d7f1160ffcd5f65bf8a5df686fa16ba0ac5edf718eb8bb928daceeff12e",
    "imagefolder": "b4c6f8cc01cb0e3ff12c377641b48defa840c8a7ec9b52e771c0965b5e3f0ca9",
    "held_out": "f1cab9106a52bb684c519d2f40735aef7942ecebd01a479874798d72743e2d9a",
    "layouts": "ee81c44ee6da5af915dcf9016c435efb4e7c66cba6a8ab65bdafa6c703ed1ea9",
    "plans": "0dee4e05bd0e5552063d834ff4672ef2a93b9bca660c4597890484f06ec5f62e",
    "reading": "793a3ff5c75f65a6a2401b89493f53f61d74a1a2d96bc70d2e178fb8f667b3aa",
    "prompts": "712a3a3af08b4cfdee5ec2a992ac6410c2022795effb1d3cd1b1362762ac395e",
    "prompts_file": "dca63693600a5f0cccaab746f2142e8b2a48265f9b4c6f5b5295f2cc7e90b710",
    "verdicts": "1c57d738058994d8a19b239884f08e646a03ac6a896106f3cb54ab342f662166",
}


def _all(tmp: Path) -> dict[str, str]:
    return {"renders": _renders(), "captions": _captions(), "parses": _parses(), "stream": _stream(),
            "imagefolder": _imagefolder(tmp), "held_out": _held_out(), "layouts": _layouts(), "plans": _plans(),
            "reading": _reading(), "prompts": _prompts(), "prompts_file": _prompts_file(), "verdicts": _verdicts()}  # fmt: skip


def test_shapes_world_is_unchanged_byte_for_byte(tmp_path):
    assert _all(tmp_path) == GOLDEN


def test_the_golden_check_can_fail():
    scene = _scenes()[0]
    moved = dataclasses.replace(
        scene.objects[0], jitter=(int(scene.objects[0].jitter[0] == 0), scene.objects[0].jitter[1])
    )
    other = dataclasses.replace(scene, objects=(moved, *scene.objects[1:]))
    assert _sha(lvg.render(other)) != _sha(lvg.render(scene))  # a one-pixel shift changes the hash


def test_shapes_world_is_a_registered_plug_in():
    from lvg.worlds import World, get_world, register_world
    from lvg.worlds.shapes.captions import describe_fully, spec_to_text

    world = get_world("shapes")
    assert isinstance(world, World) and world.name == "shapes" and world.canvas == 64
    assert len(world.labels) == 48 and world.backgrounds == ("white", "black") and world.langs == ("en", "zh")
    scene = world.sample_scene(random.Random(0))
    image = world.render(scene)
    assert image.shape == (world.canvas, world.canvas, 3) and image.dtype == np.uint8
    layout = world.layout_from_scene(scene)
    assert layout.canvas == world.canvas and {o.label for o in layout.objects} <= set(world.labels)
    assert world.layout_to_scene(layout) == scene
    cap = world.caption(scene, random.Random(1))
    assert world.parse(cap.en) == world.parse(cap.zh) and world.judge(image, cap.en).passed
    full = spec_to_text(describe_fully(scene), "en")
    assert world.entails(full, cap.en) is True and world.entails(None, cap.en) is False
    assert len(world.benchmark_prompts()) == 450 and next(world.caption_corpus(1)).strip()
    assert (
        world.held_out_samples(2)[0].image.tobytes()
        == world.make_sample(0, lvg.ShapesWorldConfig(seed=1_000_003)).image.tobytes()
    )
    with pytest.raises(ValueError, match="unknown world 'nope'"):
        get_world("nope")
    with pytest.raises(ValueError, match="module:ATTRIBUTE"):
        register_world("emoji", "lvg.worlds.emoji")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for k, v in _all(Path(d)).items():
            print(f'    "{k}": "{v}",')
