"""``BasePipeline``: components loaded by the class ``model_index.json`` declares, save/load round trips of every
pipeline kind, ``to()`` over every component, and the one image <-> tensor helper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_planned
from PIL import Image
from safetensors import safe_open

from lvg.data.layout import Layout, LayoutObject
from lvg.images import images_to_tensor, tensor_to_arrays, tensor_to_images
from lvg.models.adapters import lm_folder_of
from lvg.models.painter import Painter
from lvg.models.planner import load_lm_folder
from lvg.pipelines import load_pipeline
from lvg.pipelines.base import BasePipeline
from lvg.pipelines.components import COMPONENTS, register_component
from lvg.pipelines.pipeline import Pipeline
from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
from lvg.pipelines.reading import ImageReader


class FakePainter(Painter):
    """A painter class of this test module (a GAN painter would be registered the same way)."""


@pytest.fixture(scope="module")
def planned_dir(tmp_path_factory) -> Path:
    return make_tiny_planned(tmp_path_factory.mktemp("planned"))


def _files(folder: Path) -> dict[str, object]:
    """Every file's bytes; for weights, the tensors' bytes and the metadata (safetensors orders its header freely)."""
    out: dict[str, object] = {}
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        if p.suffix == ".safetensors":
            with safe_open(p, "pt") as f:
                out[str(p.relative_to(folder))] = (f.metadata(), {k: (str(f.get_tensor(k).dtype),
                                                   f.get_tensor(k).numpy().tobytes()) for k in f.keys()})  # fmt: skip
        else:
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


def _round_trips(pipe, cls, tmp_path: Path) -> None:
    """Save, load as ``cls``, save again: the two folders hold the same files, the same bytes, the same tensors."""
    first = pipe.save_pretrained(tmp_path / "a")
    again = cls.from_pretrained(first)
    assert type(again) is type(pipe)
    second = again.save_pretrained(tmp_path / "b")
    assert _files(first) == _files(second) and _files(first)


def _classes(folder: Path) -> dict[str, str]:
    comps = json.loads((folder / "model_index.json").read_text())["components"]
    return {k: v["class"] for k, v in comps.items()}


def test_a_registered_component_class_loads_by_its_declared_name(planned_dir, tmp_path, monkeypatch):
    pipe = load_pipeline(planned_dir)
    fake = FakePainter(pipe.painter.config)
    fake.load_state_dict(pipe.painter.state_dict())
    pipe.painter = fake.eval()
    monkeypatch.setitem(COMPONENTS, "FakePainter", "")
    register_component("FakePainter", f"{__name__}:FakePainter")  # one entry, no pipeline code
    out = pipe.save_pretrained(tmp_path / "fake")
    assert _classes(out)["painter"] == "FakePainter" and _classes(out)["planner"] == "LayoutPlanner"
    loaded = load_pipeline(out)
    assert type(loaded.painter) is FakePainter
    layout = pipe.plan("a red circle", seed=0)
    assert torch.equal(loaded.paint(layout)[1], load_pipeline(planned_dir).paint(layout)[1])
    del COMPONENTS["FakePainter"]  # a folder that declares a class nobody registered
    with pytest.raises(ValueError, match=r"model_index.json: component 'painter': unknown component class "
                                         r"'FakePainter'; registered: \[.*'Painter'"):  # fmt: skip
        load_pipeline(out)
    with pytest.raises(ValueError, match="module:Class"):
        register_component("Bad", "no_colon")


def test_assemble_takes_the_painter_class_from_the_registry(planned_dir, tmp_path, capsys, monkeypatch):
    from lvg.cli import main

    args = ["assemble", str(tmp_path / "out"), "--planner", str(planned_dir / "planner"), "--painter",
            str(planned_dir / "painter"), "--image-tokenizer", str(planned_dir / "image_tokenizer"), "--dtype", "float32"]  # fmt: skip
    assert main([*args, "--painter-class", "Mystery"]) == 2
    assert "--painter-class: unknown component class 'Mystery'" in capsys.readouterr().err
    monkeypatch.setitem(COMPONENTS, "FakePainter", f"{__name__}:FakePainter")
    assert main([*args, "--painter-class", "FakePainter"]) == 0
    assert _classes(tmp_path / "out")["painter"] == "FakePainter"
    assert type(load_pipeline(tmp_path / "out").painter) is FakePainter


def test_one_lm_in_two_roles_is_stored_once_and_loads_as_one_object(planned_dir, tmp_path):
    from lvg.cli import main

    args = ["assemble", str(tmp_path / "out"), "--planner", str(planned_dir / "planner"), "--painter",
            str(planned_dir / "painter"), "--image-tokenizer", str(planned_dir / "image_tokenizer"), "--editor",
            str(planned_dir / "planner" / "."), "--dtype", "float32"]  # fmt: skip
    assert main(args) == 0
    comps = json.loads((tmp_path / "out" / "model_index.json").read_text())["components"]
    assert comps["editor"] == {"class": "LayoutPlanner", "folder": "planner"} == comps["planner"]
    assert not (tmp_path / "out" / "editor").exists()
    pipe = load_pipeline(tmp_path / "out")
    assert pipe.editor is pipe.planner and pipe.can_edit is False  # (no reader here: it cannot read an image)
    _round_trips(pipe, PlannedPipeline, tmp_path)
    # two objects with the same weights stay two folders
    pipe.editor = LayoutPlanner.from_pretrained(planned_dir / "planner")
    out = pipe.save_pretrained(tmp_path / "two")
    assert json.loads((out / "model_index.json").read_text())["components"]["editor"]["folder"] == "editor"
    again = load_pipeline(out)
    assert again.editor is not again.planner


def test_one_lm_that_plans_and_reads_is_stored_once_and_read_with(planned_dir, tmp_path):
    from lvg.cli import main

    args = ["assemble", str(tmp_path / "out"), "--planner", str(planned_dir / "planner"), "--painter",
            str(planned_dir / "painter"), "--image-tokenizer", str(planned_dir / "image_tokenizer"), "--reader",
            str(planned_dir / "reader" / "detector"), "--reading-lm", str(planned_dir / "planner" / "."),
            "--dtype", "float32"]  # fmt: skip
    assert main(args) == 0
    out = tmp_path / "out"
    comps = json.loads((out / "model_index.json").read_text())["components"]
    assert comps["reading_lm"] == {"class": "LayoutPlanner", "folder": "planner"} == comps["planner"]
    assert sorted(p.name for p in (out / "reader").iterdir()) == ["detector"]  # the LM is planner/, stored once
    pipe = load_pipeline(out)
    assert pipe.reading_lm is pipe.planner and pipe.reader.lm is pipe.planner.lm and pipe.reader.lm_shared
    assert pipe.reader.vocab == pipe.planner.vocab
    layout = Layout("white", (LayoutObject("red circle", (5, 5, 21, 21)),), 64)
    assert pipe.reader.caption_each([layout]) == ImageReader(pipe.reader.detector, *load_lm_folder(
        planned_dir / "planner", "planner")).caption_each([layout])  # it reads with the planner's weights  # fmt: skip
    _round_trips(pipe, PlannedPipeline, tmp_path)
    assert lm_folder_of(out, "reading LM") == out / "planner"  # what a reading-LM fine-tune of this folder starts from
    assert lm_folder_of(planned_dir, "reading LM") == planned_dir / "reader"  # (a folder with a reader's own LM)
    with pytest.raises(ValueError, match="give a reader built on it"):
        PlannedPipeline(pipe.planner, pipe.painter, pipe.image_tokenizer,
                        reader=load_pipeline(planned_dir).reader, reading_lm=pipe.planner)  # fmt: skip
    with pytest.raises(ValueError, match="give that component as reading_lm"):
        PlannedPipeline(pipe.planner, pipe.painter, pipe.image_tokenizer, reader=pipe.reader)
    index = json.loads((out / "model_index.json").read_text())
    del index["components"]["reader"]
    (out / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="model_index.json: reading_lm is the LM the reader reads with, and no reader"):
        load_pipeline(out)


def test_an_unknown_component_class_names_the_file_and_the_component(tiny_pipeline_dir, tmp_path):
    folder = shutil.copytree(tiny_pipeline_dir, tmp_path / "m")
    index = json.loads((folder / "model_index.json").read_text())
    index["components"]["image_tokenizer"] = {"class": "Mystery", "folder": "image_tokenizer"}
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"m/model_index.json: component 'image_tokenizer': unknown component class "
                                         r"'Mystery'"):  # fmt: skip
        load_pipeline(folder)
    index["components"]["image_tokenizer"] = {"class": "ImageTokenizer"}  # no folder
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="model_index.json: components must map names to"):
        load_pipeline(folder)


def test_folders_without_declared_classes_load_with_the_default_mapping(tiny_pipeline_dir, tmp_path):
    assert _classes(tiny_pipeline_dir) == {"text_tokenizer": "TextTokenizer", "image_tokenizer": "ImageTokenizer",
                                           "lm": "CausalLM"}  # fmt: skip
    folder = shutil.copytree(tiny_pipeline_dir, tmp_path / "old")
    index = json.loads((folder / "model_index.json").read_text())
    index["components"] = {k: v["folder"] for k, v in index["components"].items()}  # as written before classes
    (folder / "model_index.json").write_text(json.dumps(index))
    old, new = Pipeline.from_pretrained(folder), Pipeline.from_pretrained(tiny_pipeline_dir)
    assert old(["a red circle"], seed=3).images[0].tobytes() == new(["a red circle"], seed=3).images[0].tobytes()


def test_every_pipeline_kind_round_trips(tiny_pipeline_dir, planned_dir, tmp_path):
    _round_trips(Pipeline.from_pretrained(tiny_pipeline_dir), Pipeline, tmp_path / "one-stage")
    planned = load_pipeline(planned_dir)
    _round_trips(planned, PlannedPipeline, tmp_path / "planned")
    _round_trips(planned.planner, LayoutPlanner, tmp_path / "planner")
    _round_trips(planned.reader, ImageReader, tmp_path / "reader")
    assert not (tmp_path / "planner" / "a" / "model_index.json").exists()  # a part's layout is fixed by its class
    pytest.importorskip("diffusers")
    from lvg.models.diffusion import PeerDiffusionConfig
    from lvg.pipelines.diffusion import PeerDiffusionPipeline

    torch.manual_seed(0)
    tok = Pipeline.from_pretrained(tiny_pipeline_dir).text_tokenizer
    peer = PeerDiffusionPipeline.build(PeerDiffusionConfig.preset("tiny", sampling_steps=1), tok)
    _round_trips(peer, PeerDiffusionPipeline, tmp_path / "peer")
    assert isinstance(BasePipeline.from_pretrained(tmp_path / "peer" / "a"), PeerDiffusionPipeline)


def test_only_the_base_and_the_one_stage_class_load_any_class(tiny_pipeline_dir, planned_dir):
    assert isinstance(BasePipeline.from_pretrained(planned_dir), PlannedPipeline)
    assert isinstance(Pipeline.from_pretrained(planned_dir), PlannedPipeline)  # backward compatible
    with pytest.raises(ValueError, match="holds a Pipeline, not a PlannedPipeline"):
        PlannedPipeline.from_pretrained(tiny_pipeline_dir)


def test_to_moves_every_component(planned_dir, tiny_pipeline_dir):
    planned = load_pipeline(planned_dir).to("meta")  # (no accelerator needed to see every tensor move)
    modules = [planned.planner.lm, planned.painter, planned.image_tokenizer, planned.reader.lm, planned.reader.detector]
    one_stage = Pipeline.from_pretrained(tiny_pipeline_dir).to("meta")
    for m in [*modules, one_stage.lm, one_stage.image_tokenizer]:
        assert {t.device.type for t in [*m.parameters(), *m.buffers()]} == {"meta"}, type(m).__name__
    assert planned.device.type == planned.reader.device.type == one_stage.device.type == "meta"


def test_a_part_without_its_detector_cannot_be_saved(planned_dir, tmp_path):
    reader = load_pipeline(planned_dir).reader
    reader.detector = None
    with pytest.raises(ValueError, match=r"ImageReader folder needs its \['detector'\]"):
        reader.save_pretrained(tmp_path / "r")


def test_one_image_tensor_conversion():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x = images_to_tensor([arr, Image.fromarray(arr)])
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.uint8 and torch.equal(x[0], x[1])
    assert np.array_equal(np.asarray(tensor_to_images(x)[0]), arr)
    up = Image.fromarray(arr).resize((256, 256), Image.NEAREST)  # a saved 4x upscale reads back exactly
    assert torch.equal(images_to_tensor([up], size=64)[0], x[0])
    with pytest.raises(ValueError, match="different sizes"):
        images_to_tensor([arr, up])
    with pytest.raises(ValueError, match="integer upscale"):
        images_to_tensor([arr[:, :32]], size=64)
    pixels = torch.rand(3, 3, 8, 8)
    pixels[0, 0, 0, :4] = torch.tensor([0.5 / 255, 1.5 / 255, 2.5 / 255, 1.0])
    expected = (pixels.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # the decoders' old formula
    assert np.array_equal(tensor_to_arrays(pixels), expected)


def test_a_one_stage_pipeline_refuses_the_planned_models_sampling_settings(tiny_pipeline_dir):
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    for name, value in (("painter_temperature", 1.0), ("painter_steps", 2), ("label_temperature", 0.5),
                        ("refusal_threshold", 0.3)):  # fmt: skip
        with pytest.raises(ValueError, match=f"^{name} .*one-stage pipeline"):  # named, never silently ignored
            pipe("a red circle", **{name: value})
    assert pipe("a red circle", seed=0, temperature=0.7, label_temperature=0.7).images  # (the same: nothing to refuse)
