"""``model_index.json``: which pipeline class a folder holds and where its components are.

``{"_class_name": "Pipeline", "lvg_version": "...", "components": {"lm": {"class": "CausalLM", "folder": "lm"}, ...},
...}``: each component names its class (a name in :data:`lvg.pipelines.components.COMPONENTS`) and its folder.
Folders written before classes were declared give the folder alone (``"lm": "lm"``); their pipeline class then
supplies the class (its ``component_classes``, see :mod:`lvg.pipelines.base`). Other keys (e.g. the vocabulary
``layout``) belong to the pipeline class. Reading it never guesses: a missing folder or file, bad JSON, a missing
``_class_name`` or ``components``, or a declared component that is not on disk are errors naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvg import __version__
from lvg.component import read_json_object
from lvg.files import check_regular_file
from lvg.resources import default_model_source, model_dir
from lvg.weights import symlink_note

MODEL_INDEX = "model_index.json"


@dataclass(frozen=True)
class ModelIndex:
    """A parsed ``model_index.json`` of the pipeline folder ``folder``."""

    folder: Path
    class_name: str
    components: dict[str, str]  # name -> folder (relative to ``folder``)
    data: dict[str, Any] = field(default_factory=dict)  # the whole file
    classes: dict[str, str] = field(default_factory=dict)  # name -> declared class (only where the file says)

    @property
    def file(self) -> Path:
        return self.folder / MODEL_INDEX

    @classmethod
    def read(cls, path: str | os.PathLike | None = None) -> ModelIndex:
        """Read ``path/model_index.json`` (``path`` None: the default model, see :mod:`lvg.resources`)."""
        folder = model_dir(path)
        where = "" if path is not None else f" (the default model, from {default_model_source()}; pass --model DIR)"
        if not folder.is_dir():
            raise FileNotFoundError(f"model directory not found: {folder}{where}")
        file = folder / MODEL_INDEX
        check_regular_file(file)
        if not file.is_file():
            hint = where and f"{where}; the default model is not trained yet (see its README.md)"
            raise FileNotFoundError(f"{folder} is not an lvg model folder (no {MODEL_INDEX}){hint}")
        data = read_json_object(file)
        name, comps = data.get("_class_name"), data.get("components")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{file} does not say which pipeline it holds (no _class_name)")
        if not isinstance(comps, dict) or not all(isinstance(k, str) and _entry_ok(v) for k, v in comps.items()):
            raise ValueError(f"{file}: components must map names to {{\"class\": ..., \"folder\": ...}} (or to a "
                             f"folder), got {comps!r}")  # fmt: skip
        folders = {k: v if isinstance(v, str) else v["folder"] for k, v in comps.items()}
        classes = {k: v["class"] for k, v in comps.items() if isinstance(v, dict)}
        return cls(folder, name, folders, data, classes)

    def component(self, name: str) -> Path:
        """The folder of the declared component ``name`` (an error if it is not declared or not on disk)."""
        if name not in self.components:
            raise ValueError(f"{self.file} declares no {name!r} component (it has {sorted(self.components)})")
        rel = self.components[name]
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"{self.file}: component {name!r} must be a folder inside the model folder, got {rel!r}")
        path = self.folder / rel
        if not path.is_dir():
            raise FileNotFoundError(f"{self.file} declares the {name!r} component at {path}, which does not exist"
                                    f"{symlink_note(path)}")  # fmt: skip
        if not path.resolve().is_relative_to(self.folder.resolve()):  # a symlink may not lead out of the folder
            raise ValueError(f"{self.file}: component {name!r} at {path} is a link to {path.resolve()}, outside the "
                             f"model folder; copy it into the folder instead")  # fmt: skip
        return path

    def optional(self, name: str) -> Path | None:
        """:meth:`component` when ``name`` is declared, else None."""
        return self.component(name) if name in self.components else None

    def expect(self, class_name: str) -> ModelIndex:
        """Self, when the folder holds ``class_name``; else an error naming both."""
        if self.class_name != class_name:
            raise ValueError(f"{self.file} holds a {self.class_name}, not a {class_name}")
        return self


def _entry_ok(entry: Any) -> bool:
    """A component entry: a folder name, or ``{"class": name, "folder": folder}``."""
    if isinstance(entry, dict):
        return set(entry) == {"class", "folder"} and all(isinstance(v, str) and v for v in entry.values())
    return isinstance(entry, str)


def write_model_index(folder: str | os.PathLike, class_name: str, components: dict[str, str],
                      classes: dict[str, str] | None = None, **extra: Any) -> Path:  # fmt: skip
    """Write ``folder/model_index.json`` for a ``class_name`` pipeline with ``components`` (name -> folder),
    each with its class from ``classes`` when given, and ``extra`` keys."""
    classes = classes or {}
    comps = {k: {"class": classes[k], "folder": v} if k in classes else v for k, v in components.items()}
    index = {"_class_name": class_name, "lvg_version": __version__, **extra, "components": comps}
    file = Path(folder) / MODEL_INDEX
    file.write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return file
