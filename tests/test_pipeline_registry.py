"""``model_index.json`` drives loading: the registry of pipeline classes, and where the default model is found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import lvg
from lvg.pipelines import PIPELINES, load_pipeline, pipeline_class, register_pipeline
from lvg.pipelines.index import ModelIndex
from lvg.pipelines.pipeline import Pipeline
from lvg.resources import benchmark_prompts_file, default_model_dir


class ToyPipeline:
    """A registered pipeline class of this test module."""

    def __init__(self, folder):
        self.folder = folder

    @classmethod
    def from_pretrained(cls, path, device="cpu"):
        return cls(ModelIndex.read(path).expect(cls.__name__).folder)


def _index(folder, **data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(data))
    return folder


def test_the_folder_declares_the_class(tiny_pipeline_dir, tmp_path, monkeypatch):
    assert isinstance(load_pipeline(tiny_pipeline_dir), Pipeline)
    assert isinstance(lvg.load_pipeline(tiny_pipeline_dir), Pipeline)  # the top API: the same, plus a world's referee
    monkeypatch.setitem(PIPELINES, "ToyPipeline", "")
    register_pipeline("ToyPipeline", f"{__name__}:ToyPipeline")  # adding a class is one entry
    toy = _index(tmp_path / "toy", _class_name="ToyPipeline", components={})
    assert isinstance(load_pipeline(toy), ToyPipeline) and pipeline_class("ToyPipeline") is ToyPipeline
    assert isinstance(Pipeline.from_pretrained(toy), ToyPipeline)  # like diffusers' DiffusionPipeline
    with pytest.raises(ValueError, match="holds a Pipeline, not a ToyPipeline"):
        ToyPipeline.from_pretrained(tiny_pipeline_dir)
    with pytest.raises(ValueError, match="module:Class"):
        register_pipeline("Bad", "no_colon")


def test_nothing_is_guessed(tiny_pipeline_dir, tmp_path):
    with pytest.raises(ValueError, match=r"unknown pipeline class 'Mystery'; registered: \[.*'Pipeline'"):
        load_pipeline(_index(tmp_path / "a", _class_name="Mystery", components={}))
    with pytest.raises(ValueError, match="_class_name"):
        load_pipeline(_index(tmp_path / "b", components={}))
    with pytest.raises(ValueError, match="not valid JSON"):
        (tmp_path / "b" / "model_index.json").write_text("{")
        load_pipeline(tmp_path / "b")
    broken = tmp_path / "c"
    shutil.copytree(tiny_pipeline_dir, broken)
    shutil.rmtree(broken / "image_tokenizer")
    with pytest.raises(FileNotFoundError, match="'image_tokenizer' component"):
        Pipeline.from_pretrained(broken)
    index = json.loads((broken / "model_index.json").read_text())
    del index["components"]["image_tokenizer"]
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="declares no 'image_tokenizer' component"):
        Pipeline.from_pretrained(broken)


def test_peer_folders_load_as_their_class(tiny_pipeline_dir, tmp_path):
    pytest.importorskip("diffusers")
    from lvg.models.diffusion import PeerDiffusionConfig
    from lvg.pipelines.diffusion import PeerDiffusionPipeline

    torch.manual_seed(0)
    peer = PeerDiffusionPipeline.build(PeerDiffusionConfig.preset("tiny", sampling_steps=1), Pipeline.from_pretrained(
        tiny_pipeline_dir).text_tokenizer)  # fmt: skip
    peer.save_pretrained(tmp_path / "peer")
    assert json.loads((tmp_path / "peer" / "model_index.json").read_text())["_class_name"] == "PeerDiffusionPipeline"
    loaded = Pipeline.from_pretrained(tmp_path / "peer")
    assert isinstance(loaded, PeerDiffusionPipeline) and loaded.config == peer.config
    with pytest.raises(ValueError, match="holds a Pipeline, not a PeerDiffusionPipeline"):
        PeerDiffusionPipeline.from_pretrained(tiny_pipeline_dir)


def test_default_model_location_is_declared(tmp_path, monkeypatch):
    monkeypatch.delenv("LVG_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("LVG_HOME", raising=False)
    shipped = default_model_dir()
    assert (shipped / "image_tokenizer" / "config.json").is_file() and shipped.parent.name == "lvg"
    assert benchmark_prompts_file().is_file()
    monkeypatch.setenv("LVG_HOME", str(tmp_path / "home"))
    assert default_model_dir() == tmp_path / "home" / "models" / "shapes-default"
    with pytest.raises(FileNotFoundError, match=r"\$LVG_HOME"):  # missing is an error naming where it looked
        Pipeline.from_pretrained()
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(tmp_path / "model"))
    assert default_model_dir() == tmp_path / "model"
    with pytest.raises(FileNotFoundError, match=r"\$LVG_DEFAULT_MODEL"):
        load_pipeline()


def test_shipped_models_have_short_names(tmp_path, monkeypatch):
    from lvg.resources import model_dir

    monkeypatch.chdir(tmp_path)
    assert model_dir("shapes").name == "default_model" and (model_dir("shapes") / "model_index.json").is_file()
    assert model_dir("emoji").name == "emoji_model" and (model_dir("emoji") / "model_index.json").is_file()
    (tmp_path / "emoji").mkdir()  # a folder of that name is a path, and a path always wins
    assert model_dir("emoji") == Path("emoji")
