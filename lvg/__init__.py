"""lvg: LLM visual generation.

The public API is re-exported here and imported lazily, so ``import lvg`` (and ``lvg --help``)
stays fast and does not pull in torch until a torch-backed name is used. This is the top API, not a layer of
the library: for convenience it re-exports Shapes World (``lvg.sample_scene``, ``lvg.judge``, ...) and its
:func:`load_pipeline` hands the loaded pipeline the world's referee.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # worlds (the names below them are Shapes World's)
    "World": "lvg.worlds",
    "get_world": "lvg.worlds",
    "Scene": "lvg.worlds.shapes.world",
    "Obj": "lvg.worlds.shapes.world",
    "sample_scene": "lvg.worlds.shapes.world",
    "render": "lvg.worlds.shapes.render",
    "render_pil": "lvg.worlds.shapes.render",
    "caption": "lvg.worlds.shapes.captions",
    "describe": "lvg.worlds.shapes.captions",
    "spec_to_text": "lvg.worlds.shapes.captions",
    "CaptionConfig": "lvg.worlds.shapes.captions",
    "parse_caption": "lvg.worlds.shapes.parse",
    "CaptionParseError": "lvg.worlds.shapes.parse",
    "normalize_spec": "lvg.worlds.shapes.spec",
    "scene_from_spec": "lvg.worlds.shapes.spec",
    "scene_satisfies": "lvg.worlds.shapes.spec",
    "SpecError": "lvg.worlds.shapes.spec",
    "ShapesWorldDataset": "lvg.worlds.shapes.dataset",
    "ShapesWorldConfig": "lvg.worlds.shapes.dataset",
    "make_sample": "lvg.worlds.shapes.dataset",
    "write_imagefolder": "lvg.worlds.shapes.export",
    # layouts (planned generation)
    "Layout": "lvg.data.layout",
    "LayoutObject": "lvg.data.layout",
    "LayoutError": "lvg.data.layout",
    "layout_from_scene": "lvg.worlds.shapes.scene_layout",
    "layout_to_scene": "lvg.worlds.shapes.scene_layout",
    # model
    "PlannedPipeline": "lvg.pipelines.planned",
    "UnsupportedPromptError": "lvg.pipelines.planned",
    "Pipeline": "lvg.pipelines.pipeline",
    "PipelineOutput": "lvg.pipelines.pipeline",
    "GenerationConfig": "lvg.sampling.config",
    "GenerationConfigError": "lvg.sampling.config",
    # evaluation
    "judge": "lvg.worlds.shapes.judge",
    "read_image": "lvg.worlds.shapes.judge",
    "make_prompts": "lvg.worlds.shapes.benchmark",
    "load_prompts": "lvg.worlds.shapes.benchmark",
    # tokenizers
    "train_text_tokenizer": "lvg.tokenizers.text",
    "load_text_tokenizer": "lvg.tokenizers.text",
    "save_text_tokenizer": "lvg.tokenizers.text",
}
__all__ = ["__version__", "load_pipeline", *_EXPORTS]


def load_pipeline(path: str | os.PathLike | None = None, world: str | None = None, **kwargs: Any) -> Any:
    """:func:`lvg.pipelines.load_pipeline` (the folder ``path``, default the default model) with ``world``'s
    referee attached (default: the world the folder declares, else Shapes World), so ``verify`` works and refusals
    name what the world cannot read (:func:`lvg.worlds.attach_world`)."""
    from lvg.pipelines import load_pipeline as load
    from lvg.worlds import attach_world

    return attach_world(load(path, **kwargs), world)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lvg' has no attribute {name!r}")


if TYPE_CHECKING:  # for type checkers and IDEs
    from lvg.data.layout import Layout, LayoutError, LayoutObject  # noqa: F401
    from lvg.pipelines.pipeline import Pipeline, PipelineOutput  # noqa: F401
    from lvg.pipelines.planned import PlannedPipeline  # noqa: F401
    from lvg.sampling.config import GenerationConfig, GenerationConfigError  # noqa: F401
    from lvg.tokenizers.text import load_text_tokenizer, save_text_tokenizer, train_text_tokenizer  # noqa: F401
    from lvg.worlds import World, get_world  # noqa: F401
    from lvg.worlds.shapes.benchmark import load_prompts, make_prompts  # noqa: F401
    from lvg.worlds.shapes.captions import CaptionConfig, caption, describe, spec_to_text  # noqa: F401
    from lvg.worlds.shapes.dataset import ShapesWorldConfig, ShapesWorldDataset, make_sample  # noqa: F401
    from lvg.worlds.shapes.export import write_imagefolder  # noqa: F401
    from lvg.worlds.shapes.judge import judge, read_image  # noqa: F401
    from lvg.worlds.shapes.parse import CaptionParseError, parse_caption  # noqa: F401
    from lvg.worlds.shapes.render import render, render_pil  # noqa: F401
    from lvg.worlds.shapes.scene_layout import layout_from_scene, layout_to_scene  # noqa: F401
    from lvg.worlds.shapes.spec import SpecError, normalize_spec, scene_from_spec, scene_satisfies  # noqa: F401
    from lvg.worlds.shapes.world import Obj, Scene, sample_scene  # noqa: F401
