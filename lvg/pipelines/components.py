"""The component registry: the class name a ``model_index.json`` declares for a component -> the class that loads it.

:data:`COMPONENTS` maps a name to an import string ``"module:Class"``, imported only when a component of that class
is loaded or saved (so this registry imports nothing). A registered class loads a folder with
``Class.from_pretrained(folder, **kwargs)`` and saves with ``Class.save_component(obj, folder, dtype)`` when it has
that static method, else with ``obj.save_pretrained(folder, dtype=dtype)``. Adding a component class (a GAN
painter, say) is one entry::

    register_component("GanPainter", "lvg.models.gan:GanPainter")

A pipeline holding a ``GanPainter`` then saves ``"painter": {"class": "GanPainter", ...}`` and loads it back as
one. The LM and the text tokenizer are Hugging Face objects, so their entries are small adapters
(:class:`LanguageModel`, :class:`TextTokenizer`) that load and save them lvg's strict way.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch

COMPONENTS: dict[str, str] = {
    "CausalLM": "lvg.pipelines.components:LanguageModel",
    "TextTokenizer": "lvg.pipelines.components:TextTokenizer",
    "ImageTokenizer": "lvg.tokenizers.image:ImageTokenizer",
    "Painter": "lvg.models.painter:Painter",
    "GanPainter": "lvg.models.gan:GanPainter",
    "ShapesClip": "lvg.models.clip:ShapesClip",
    "Reader": "lvg.models.reader:Reader",
    "Restorer": "lvg.models.restorer:Restorer",
    "PeerDiffusion": "lvg.models.diffusion:PeerDiffusion",
    "DiffusionPainter": "lvg.models.diffusion_painter:DiffusionPainter",
    "LayoutPlanner": "lvg.pipelines.planned:LayoutPlanner",
    "ImageReader": "lvg.pipelines.reading:ImageReader",
}


def register_component(name: str, target: str) -> None:
    """Register the component class ``name`` as the class at ``target`` (``"package.module:Class"``, imported
    lazily)."""
    module, sep, attr = target.partition(":")
    if not (name and module and sep and attr):
        raise ValueError(f"register_component needs a name and a 'module:Class' target, got {name!r}, {target!r}")
    COMPONENTS[name] = target


def component_class(name: str, where: str = "") -> type:
    """The component class registered as ``name`` (imported now); ``where`` (e.g. ``"m/model_index.json: component
    'painter'"``) prefixes the error for an unknown name."""
    if name not in COMPONENTS:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}unknown component class {name!r}; registered: {sorted(COMPONENTS)}")
    module, _, attr = COMPONENTS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"component class {name!r} ({COMPONENTS[name]}) cannot be imported: {e}") from e


def component_name(obj: Any, default: str) -> str:
    """The registered name of ``obj``'s class (or of the nearest registered base class), else ``default``.

    Found from the import strings alone, so nothing is imported: a subclass registered on its own (e.g. a GAN
    painter) is saved under its own name; an object of an unregistered class under its slot's default.
    """
    targets = {target: name for name, target in COMPONENTS.items()}
    for klass in type(obj).__mro__:
        name = targets.get(f"{klass.__module__}:{klass.__qualname__}")
        if name is not None:
            return name
    return default


def save_component(obj: Any, name: str, path: Path, dtype: torch.dtype | None = None) -> None:
    """Write ``obj``, a component of the registered class ``name``, to the folder ``path``."""
    klass = component_class(name)
    saver = getattr(klass, "save_component", None)
    if saver is not None:
        saver(obj, path, dtype)
    else:
        obj.save_pretrained(path, dtype=dtype)


class LanguageModel:
    """Registry entry of the LM (:class:`lvg.models.unified.CausalLM`, or any Llama, saved as one)."""

    @staticmethod
    def from_pretrained(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Any:
        from lvg.models.unified import load_lm

        return load_lm(path, dtype)

    @staticmethod
    def save_component(lm: Any, path: Path, dtype: torch.dtype | None = None) -> None:
        from lvg.models.unified import save_lm

        save_lm(lm, path, dtype)


class TextTokenizer:
    """Registry entry of a text tokenizer folder (``tokenizer.json`` + ``tokenizer_config.json``)."""

    @staticmethod
    def from_pretrained(path: str | os.PathLike, required: list[str] | None = None) -> Any:
        from lvg.tokenizers.text import load_text_tokenizer

        return load_text_tokenizer(path, required=required)

    @staticmethod
    def save_component(tok: Any, path: Path, dtype: torch.dtype | None = None) -> None:
        from lvg.tokenizers.text import save_text_tokenizer

        save_text_tokenizer(tok, path)
