"""Pipelines, and the registry that turns a folder's ``model_index.json`` into the pipeline it declares.

``model_index.json`` names its pipeline class in ``_class_name``; :data:`PIPELINES` maps that name to an import
string ``"module:Class"``, imported only when a folder of that class is loaded (so this registry imports nothing
and no import cycle can arise). Adding a pipeline class is one entry::

    register_pipeline("PlannedPipeline", "lvg.pipelines.planned:PlannedPipeline")  # or a line in PIPELINES

A registered class has ``from_pretrained(path, device="cpu", ...)``; lvg's own subclass
:class:`~lvg.pipelines.base.BasePipeline`, which loads each component with the class ``model_index.json`` declares
for it (the component registry, :mod:`lvg.pipelines.components`). :func:`load_pipeline` (and
``BasePipeline.from_pretrained`` or ``Pipeline.from_pretrained``, diffusers' ``DiffusionPipeline`` way) returns
whatever class the folder declares; an unknown or missing ``_class_name`` is an error, never a guess.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

PIPELINES: dict[str, str] = {
    "Pipeline": "lvg.pipelines.pipeline:Pipeline",
    "PeerDiffusionPipeline": "lvg.pipelines.diffusion:PeerDiffusionPipeline",
    "PlannedPipeline": "lvg.pipelines.planned:PlannedPipeline",
}


def register_pipeline(name: str, target: str) -> None:
    """Register ``_class_name`` ``name`` as the class at ``target`` (``"package.module:Class"``, imported lazily)."""
    module, sep, attr = target.partition(":")
    if not (name and module and sep and attr):
        raise ValueError(f"register_pipeline needs a name and a 'module:Class' target, got {name!r}, {target!r}")
    PIPELINES[name] = target


def pipeline_class(name: str) -> type:
    """The pipeline class registered as ``name`` (imported now)."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline class {name!r}; registered: {sorted(PIPELINES)}")
    module, _, attr = PIPELINES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ImportError(f"pipeline class {name!r} ({PIPELINES[name]}) cannot be imported: {e}") from e


def load_pipeline(path: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Load the folder ``path`` (default: the default model) as the pipeline class its ``model_index.json``
    declares; ``kwargs`` (e.g. ``device``) go to that class's ``from_pretrained``."""
    from lvg.pipelines.index import ModelIndex

    index = ModelIndex.read(path)
    return pipeline_class(index.class_name).from_pretrained(index.folder, **kwargs)


_EXPORTS = {
    "BasePipeline": "lvg.pipelines.base",
    "COMPONENTS": "lvg.pipelines.components",
    "register_component": "lvg.pipelines.components",
    "Pipeline": "lvg.pipelines.pipeline",
    "PipelineOutput": "lvg.pipelines.pipeline",
    "PeerDiffusionPipeline": "lvg.pipelines.diffusion",
    "PlannedPipeline": "lvg.pipelines.planned",
    "ModelIndex": "lvg.pipelines.index",
    "TextToImagePipeline": "lvg.pipelines.protocols",
    "CaptioningPipeline": "lvg.pipelines.protocols",
}
__all__ = ["PIPELINES", "load_pipeline", "pipeline_class", "register_pipeline", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from lvg.pipelines.base import BasePipeline  # noqa: F401
    from lvg.pipelines.components import COMPONENTS, register_component  # noqa: F401
    from lvg.pipelines.diffusion import PeerDiffusionPipeline  # noqa: F401
    from lvg.pipelines.index import ModelIndex  # noqa: F401
    from lvg.pipelines.pipeline import Pipeline, PipelineOutput  # noqa: F401
    from lvg.pipelines.protocols import CaptioningPipeline, TextToImagePipeline  # noqa: F401
