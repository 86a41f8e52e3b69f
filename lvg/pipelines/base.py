"""``BasePipeline``: what every lvg pipeline (and the planner and reader inside a planned one) shares.

diffusers' ``DiffusionPipeline`` pattern, kept small. A subclass lists its components and the class each one has
by default, and builds itself from them::

    class PlannedPipeline(BasePipeline):
        component_classes = {"planner": "LayoutPlanner", "painter": "Painter", ...}
        optional_components = frozenset({"clip", "reader"})

The base then owns the folder: ``save_pretrained`` writes each component with the class it is registered as
(:mod:`lvg.pipelines.components`) and ``model_index.json`` declaring every component's class and folder;
``from_pretrained`` reads ``model_index.json`` and loads each component with the class it declares, through the
registry, so a new painter class is one registry entry and no pipeline code changes. Loading stays strict (each
component is built on the meta device and checked against its weights' headers, :mod:`lvg.component`).

**The documented default mapping.** A ``model_index.json`` written before classes were declared (the shipped
``models/shapes-default`` among them) gives each component's folder alone; its classes are the pipeline class's
``component_classes``. A class declared in the file always wins; an unknown one is an error naming the file and
the component.

``BasePipeline.from_pretrained`` (and, for backward compatibility, the one-stage ``Pipeline.from_pretrained``)
returns whatever class the folder declares, like ``DiffusionPipeline``; any other subclass loads only a folder of
its own class (or a subclass). Parts stored inside another pipeline's folder (the planner, the reader) set
``has_index = False``: their folder layout is fixed by their class, with no ``model_index.json`` of their own.

**One object, two roles.** A component object given under two names (the planned pipeline's ``planner`` and
``editor``, one LM that plans and edits) is written once: both names declare its folder. Loading builds each
declared (folder, class) once, so the two names hold the same object again. A part may also keep one of its own parts
in another component (a reader whose LM is the planner's): it saves the rest (``_saved_components``), and loading
hands it that component (``component_kwargs``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from lvg.pipelines import pipeline_class
from lvg.pipelines.components import component_class, component_name, save_component
from lvg.pipelines.index import ModelIndex, write_model_index

__all__ = ["BasePipeline", "check_lm_vocab"]


def check_lm_vocab(lm: Any, vocab_size: int, what: str) -> None:
    """An LM whose vocabulary cannot hold ``vocab_size`` tokens is a ValueError naming ``what`` it is."""
    if lm.config.vocab_size < vocab_size:
        raise ValueError(f"{what} vocabulary {lm.config.vocab_size} is smaller than {vocab_size}")


class BasePipeline:
    """Components by name, saved to and loaded from one folder; see the module docstring."""

    component_classes: ClassVar[dict[str, str]] = {}  # component -> its default class (registry name), in order
    optional_components: ClassVar[frozenset[str]] = frozenset()  # may be None (left out of the folder)
    component_folders: ClassVar[dict[str, str]] = {}  # component -> folder, where it is not the component's name
    has_index: ClassVar[bool] = True  # False: a part with a fixed layout inside another pipeline's folder
    # from_pretrained returns a folder of any class as that class; read from the class's own __dict__, so only a
    # class that sets it (this one, and the one-stage Pipeline for backward compatibility) dispatches
    _loads_any_class: ClassVar[bool] = True

    # ------------------------------------------------------------------ components

    @property
    def components(self) -> dict[str, Any]:
        """The components present (not None), in declaration order."""
        found = {name: getattr(self, name, None) for name in self.component_classes}
        return {name: c for name, c in found.items() if c is not None}

    @property
    def device(self) -> torch.device:
        """The device of the first component with weights."""
        for c in self.components.values():
            if isinstance(c, BasePipeline):
                return c.device
            if isinstance(c, torch.nn.Module):
                return next(c.parameters()).device
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> BasePipeline:
        """Move every component with weights (modules and nested pipelines) to ``device``; returns self."""
        for c in self.components.values():
            if isinstance(c, (torch.nn.Module, BasePipeline)):
                c.to(device)
        return self

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write every component to its folder under ``path`` (floating weights stored as ``dtype`` when given, e.g.
        ``torch.float16`` to ship; the models in memory are untouched) and ``model_index.json``.

        An optional component that cannot be saved (no ``save_pretrained``, e.g. a test double) is left out.
        """
        path = Path(path)
        missing = [n for n in self.component_classes if n not in self.optional_components and n not in self.components]
        if missing:
            raise ValueError(f"a {type(self).__name__} folder needs its {missing} component(s)")
        path.mkdir(parents=True, exist_ok=True)
        folders, classes = {}, {}
        written: dict[tuple[int, str], str] = {}  # (object, class) -> its folder: an object in two roles is one folder
        for name, obj in self._saved_components().items():
            cls_name = component_name(obj, self.component_classes[name])
            savable = hasattr(obj, "save_pretrained") or hasattr(component_class(cls_name), "save_component")
            if name in self.optional_components and not savable:
                continue
            classes[name] = cls_name
            if (id(obj), cls_name) in written:
                folders[name] = written[id(obj), cls_name]
                continue
            folders[name] = written[id(obj), cls_name] = self.component_folders.get(name, name)
            save_component(obj, cls_name, path / folders[name], dtype)
        self._save_extra(path)
        if self.has_index:
            write_model_index(path, type(self).__name__, folders, classes, **self._index_fields())
        return path

    def _saved_components(self) -> dict[str, Any]:
        """The components ``save_pretrained`` writes into this folder (all of them, unless a class keeps some in
        another's folder)."""
        return self.components

    def _save_extra(self, path: Path) -> None:
        """Write this class's own files besides the components (e.g. a vocabulary)."""

    def _index_fields(self) -> dict[str, Any]:
        """This class's own keys of ``model_index.json`` (e.g. its vocabulary layout, sampling defaults)."""
        return {}

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                        **kwargs: Any) -> Any:  # fmt: skip
        """Load the folder ``path`` (``None``: the default model, see :mod:`lvg.resources`) on ``device``.

        ``kwargs`` go to the class's ``_from_index`` (e.g. the one-stage pipeline's ``dtype``). A folder of another
        class is loaded as that class when this class loads any (``BasePipeline``, ``Pipeline``), else an error.
        """
        index = cls.read_index(path)
        target: Any = cls
        if cls.has_index:
            target = pipeline_class(index.class_name)
            if not (isinstance(target, type) and issubclass(target, cls)):
                if cls.__dict__.get("_loads_any_class", False):
                    return target.from_pretrained(index.folder, device=device, **kwargs)
                raise ValueError(f"{index.file} holds a {index.class_name}, not a {cls.__name__}")
        return target._from_index(index, **kwargs).to(device)

    @classmethod
    def read_index(cls, path: str | os.PathLike | None) -> ModelIndex:
        """``path``'s ``model_index.json``; for a part without one (``has_index = False``), its fixed layout."""
        if cls.has_index:
            return ModelIndex.read(path)
        if path is None:
            raise ValueError(f"a {cls.__name__} is loaded from its folder; none given")
        folders = {name: cls.component_folders.get(name, name) for name in cls.component_classes}
        return ModelIndex(Path(path), cls.__name__, folders)

    @classmethod
    def _from_index(cls, index: ModelIndex, **kwargs: Any) -> BasePipeline:
        """Build from the components ``index`` declares (override to check them against each other)."""
        return cls(**cls.load_components(index), **kwargs)

    @classmethod
    def component_type(cls, index: ModelIndex, name: str) -> type:
        """The class ``index`` declares for the component ``name`` (by default, this class's default mapping)."""
        if name not in cls.component_classes:
            raise ValueError(f"a {cls.__name__} has no {name!r} component (it has {list(cls.component_classes)})")
        where = f"{index.file}: component {name!r}"
        return component_class(index.classes.get(name, cls.component_classes[name]), where)

    @classmethod
    def load_component(cls, index: ModelIndex, name: str, **kwargs: Any) -> Any:
        """Load the component ``name`` from the folder ``index`` declares, with its declared class (``kwargs`` go
        to that class's ``from_pretrained``); an optional component the index does not declare is None."""
        if name in cls.optional_components and name not in index.components:
            return None
        klass = cls.component_type(index, name)
        folder = index.component(name) if cls.has_index else index.folder / index.components[name]
        return klass.from_pretrained(folder, **kwargs)

    @classmethod
    def component_kwargs(cls, name: str, loaded: dict[str, Any]) -> dict[str, Any]:
        """What loading the component ``name`` is given besides its folder, from the components ``loaded`` before it
        (a planned pipeline's reader gets the LM it shares)."""
        return {}

    @classmethod
    def load_components(cls, index: ModelIndex) -> dict[str, Any]:
        """Every component, in declaration order (see :meth:`load_component`); components that declare the same
        folder and class are one object (loaded once)."""
        out: dict[str, Any] = {}
        loaded: dict[tuple[str, type], str] = {}  # (folder, class) -> the first component loaded from it
        for name in cls.component_classes:
            key = None
            if name in index.components:
                key = (os.path.normpath(index.components[name]), cls.component_type(index, name))
            out[name] = (
                out[loaded[key]]
                if key in loaded
                else cls.load_component(index, name, **cls.component_kwargs(name, out))
            )
            if key is not None:
                loaded.setdefault(key, name)
        return out
