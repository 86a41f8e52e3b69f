"""Where lvg finds its shipped files: declared locations only, never a walk up from ``__file__``.

The default model folder is, in this order: ``$LVG_DEFAULT_MODEL`` (the folder itself), else
``$LVG_HOME/models/shapes-default``, else the copy shipped inside the package (``lvg/default_model``, package
data that a wheel carries; in a source checkout it links to ``models/shapes-default``). An explicit path
(``--model DIR``, ``Pipeline.from_pretrained(DIR)``) always wins; the short names ``shapes`` and ``emoji`` name the
shipped models (``lvg/default_model``, ``lvg/emoji_model`` -> ``models/emoji-default``). The benchmark prompts ship the same way
(``lvg/eval/shapes_prompts.jsonl``, linking to ``benchmarks/shapes_prompts.jsonl``). Nothing here checks that a
file exists: the code that reads it raises an error naming the path, and says where the path came from.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DEFAULT_MODEL_ENV = "LVG_DEFAULT_MODEL"
HOME_ENV = "LVG_HOME"
DEFAULT_MODEL_NAME = "shapes-default"


def _package_path(package: str, *parts: str) -> Path:
    return Path(str(resources.files(package).joinpath(*parts)))


def default_model_dir() -> Path:
    """The default model folder: ``$LVG_DEFAULT_MODEL``, else ``$LVG_HOME/models/shapes-default``, else the
    package's shipped copy."""
    if os.environ.get(DEFAULT_MODEL_ENV):
        return Path(os.environ[DEFAULT_MODEL_ENV])
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]) / "models" / DEFAULT_MODEL_NAME
    return _package_path("lvg", "default_model")


def default_model_source() -> str:
    """Where :func:`default_model_dir` came from, for error messages."""
    if os.environ.get(DEFAULT_MODEL_ENV):
        return f"${DEFAULT_MODEL_ENV}"
    if os.environ.get(HOME_ENV):
        return f"${HOME_ENV}"
    return "the lvg package"


SHIPPED_MODELS = {"shapes": "default_model", "emoji": "emoji_model"}  # short name -> the package's folder


def model_dir(path: str | os.PathLike | None = None) -> Path:
    """``path`` when given, else :func:`default_model_dir`. A short name of :data:`SHIPPED_MODELS` (``"shapes"``,
    ``"emoji"``) names the shipped model of that world, unless a folder of that name exists (a path always wins)."""
    if path is None:
        return default_model_dir()
    if str(path) in SHIPPED_MODELS and not Path(path).exists():
        return _package_path("lvg", SHIPPED_MODELS[str(path)])
    return Path(path)


def default_component_dir(name: str) -> Path:
    """A component folder of the default model, e.g. ``default_component_dir("text_tokenizer")``."""
    return default_model_dir() / name


def emoji_prompts_file() -> Path:
    """The Emoji World benchmark prompts (450 rows, see :mod:`lvg.worlds.emoji.benchmark`), shipped with the package."""
    return _package_path("lvg.eval", "emoji_prompts.jsonl")


def benchmark_prompts_file() -> Path:
    """The Shapes World benchmark prompts (450 rows, see :mod:`lvg.worlds.shapes.benchmark`), shipped with the package."""
    return _package_path("lvg.eval", "shapes_prompts.jsonl")
