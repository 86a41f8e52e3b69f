"""``Component``: a torch module stored as a folder of ``config.json`` + ``model.safetensors``.

diffusers' ``ConfigMixin``/``ModelMixin`` pattern, kept small. A component class names its typed config
dataclass in ``config_class`` and is built as ``cls(config)``; the config's ``__post_init__`` validates it::

    class ImageTokenizer(Component, nn.Module):
        config_class = ImageTokenizerConfig

    tok.save_pretrained("out", dtype=torch.float16)  # config.json + model.safetensors (fp16 to ship)
    tok = ImageTokenizer.from_pretrained("out")  # strict, float32, eval mode

Loading never guesses: a missing file, unreadable JSON, a missing, unknown or mistyped config field, or
weights that do not match the config are errors (``FileNotFoundError`` or :class:`ConfigError`, a
``ValueError``) naming the file and the field. Keys starting with ``_`` are metadata (diffusers' convention)
and are skipped. Weights go through :mod:`lvg.weights` (safetensors only, never pickle).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import torch

from lvg.files import InputFileError, check_regular_file, read_json
from lvg.ranges import check_ranges  # noqa: F401  (re-exported: configs bound their fields with it)
from lvg.weights import check_header, load_weights, missing_weights_error, save_weights, symlink_note

T = TypeVar("T")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class ConfigError(ValueError):
    """A config file or mapping that does not fit its dataclass (the message names the file and the field)."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def convert(value: Any, tp: Any, source: str, key: str, strings: bool = False) -> Any:
    """``value`` checked (and converted: list -> tuple, int -> float) against the type hint ``tp``.

    Handles ``int``/``float``/``str``/``bool``, ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[K, V]``,
    ``Literal``, ``X | None`` and other unions (the first member that fits), nested dataclasses and ``Any``.
    ``bool`` is not an ``int``. With ``strings=True`` (YAML and command-line overrides) a string may also spell
    a number, a boolean or a list. Raises :class:`ConfigError` naming ``source`` and the field ``key``.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{source}: field {key!r}: expected {expected}, got {value!r}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for member in (a for a in args if a is not type(None)):
            try:
                return convert(value, member, source, key, strings)
            except ConfigError:
                continue
        raise fail(_type_name(tp))
    if origin is typing.Literal:
        if value in args:
            return value
        raise fail(f"one of {list(args)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise fail("a mapping")
        return config_from_dict(tp, value, source, strings, prefix=f"{key}.")
    if origin in (list, tuple):
        if strings and isinstance(value, str):
            import yaml  # an override such as "[8, 16]"

            value = yaml.safe_load(value)
        if not isinstance(value, list | tuple):
            raise fail("a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise fail(f"{len(args)} items")
            return tuple(convert(v, a, source, f"{key}[{i}]", strings) for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [convert(v, inner, source, f"{key}[{i}]", strings) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
        k_tp, v_tp = args or (Any, Any)
        return {convert(k, k_tp, source, key, strings): convert(v, v_tp, source, f"{key}.{k}", strings)
                for k, v in value.items()}  # fmt: skip
    if strings and isinstance(value, str) and tp in (int, float, bool):
        value = _from_string(value, tp)
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if strings and isinstance(value, float) and value.is_integer():
            return int(value)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer such as 10**400
            raise fail("a number in float range") from None
    if tp is str and (isinstance(value, str) or strings and isinstance(value, int | float)):
        return str(value)  # (YAML reads `name: 123` as a number)
    if tp not in (bool, int, float, str):
        if not isinstance(tp, type):
            return value  # an annotation this helper does not check (e.g. a Callable)
        if isinstance(value, tp):
            return value
    raise fail(_type_name(tp))


def _from_string(value: str, tp: type) -> Any:
    """``"true"``/``"3"``/``"3e-4"`` -> True/3/0.0003 for ``tp``; anything else is returned unchanged."""
    low = value.strip().lower()
    if tp is bool:
        return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}.get(low, value)
    try:
        return float(low) if tp is float else int(low, 0)
    except ValueError:
        return value


def config_from_dict(cls: type[T], data: dict, source: str | None = None, strings: bool = False,
                     prefix: str = "") -> T:  # fmt: skip
    """Build the dataclass ``cls`` from a JSON-like mapping, field by field (see :func:`convert`).

    Unknown keys (other than ``_``-prefixed metadata) and missing required fields are errors naming ``source``
    (a file name; default the class name) and the field; ``cls.__post_init__`` then validates the values.
    """
    source = source or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(prefix + str(k) for k in data if k not in fields and not str(k).startswith("_"))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; known: {sorted(prefix + k for k in fields)}")
    missing = sorted(prefix + n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)  # fmt: skip
    if missing:
        raise ConfigError(f"{source}: missing field(s) {missing}")
    kwargs = {k: convert(v, hints[k], source, prefix + k, strings) for k, v in data.items() if k in fields}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: invalid {prefix.rstrip('.') or cls.__name__}: {e}") from None


def read_json_object(file: str | os.PathLike) -> dict:
    """The JSON object in ``file`` (read by :func:`lvg.files.read_json`); a special file, unreadable text, bad JSON or
    another JSON type is a :class:`ConfigError` naming the file (a missing file is the caller's
    ``FileNotFoundError``)."""
    try:
        data = read_json(file)
    except InputFileError as e:  # not a regular file, too large, not UTF-8, bad or too deeply nested JSON
        raise ConfigError(str(e)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a JSON object (a mapping), got {type(data).__name__}")
    return data


class Component:
    """Mixin for ``nn.Module`` components saved as ``config.json`` + ``model.safetensors``.

    Subclasses set ``config_class``, keep their config in ``self.config`` and are built by ``cls(config)``.
    A component with extra files (e.g. a text tokenizer) or another weights layout overrides
    :meth:`_save_files` / :meth:`_from_folder` / :meth:`_load_weights`.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and the weights to ``path``; floating tensors are stored as ``dtype`` if given
        (e.g. ``torch.float16`` to ship; the module in memory is untouched, loading computes in float32)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self._config_dict(), indent=2, ensure_ascii=False, allow_nan=False)
        (path / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")
        self._save_files(path, dtype)
        return path

    def _config_dict(self) -> dict:
        """What ``config.json`` holds (override for a config that is not a dataclass)."""
        return dataclasses.asdict(self.config)

    def _save_files(self, path: Path, dtype: torch.dtype | None) -> None:
        """Write the weights (and any other files) of this component to ``path``."""
        save_weights(self, path / WEIGHTS_NAME, dtype, {"lvg": type(self).__name__})  # type: ignore[arg-type]

    @classmethod
    def load_config(cls, path: str | os.PathLike) -> Any:
        """Read and validate ``path/config.json`` into ``cls.config_class``."""
        file = Path(path) / CONFIG_NAME
        check_regular_file(file)  # a FIFO or a device is named as such, not as a missing file
        if not file.is_file():
            raise FileNotFoundError(f"{cls.__name__} file missing: {file}{symlink_note(file)}")
        return config_from_dict(cls.config_class, read_json_object(file), str(file))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Self:
        """Load a folder written by :meth:`save_pretrained`: strict weights, float32, eval mode, on ``device``."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{cls.__name__} folder not found: {path}")
        config = cls.load_config(path)
        with torch.device("meta"):  # sizes checked against the weights' headers before anything is allocated
            try:
                probe = cls._from_folder(config, path)
            except (KeyError, TypeError, ValueError, RuntimeError) as e:  # a config its class cannot build
                raise ConfigError(f"{path / CONFIG_NAME}: cannot build a {cls.__name__} from it: "
                                  f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None  # fmt: skip
            probe._check_weights(path)
        model = cls._from_folder(config, path)
        model._load_weights(path)
        return model.float().to(device).eval()  # type: ignore[attr-defined]

    @classmethod
    def _from_folder(cls, config: Any, path: Path) -> Self:
        """The (untrained) component for ``config``; override to read other files of the folder."""
        return cls(config)  # type: ignore[call-arg]

    def _check_weights(self, path: Path) -> None:
        """Check the weights files' headers (names, shapes, dtypes) against this (meta-device) module."""
        file = path / WEIGHTS_NAME
        if not file.is_file():
            raise missing_weights_error(type(self).__name__, file)
        check_header(file, self.state_dict(), path / CONFIG_NAME)  # type: ignore[attr-defined]

    def _load_weights(self, path: Path) -> None:
        """Load the weights strictly from ``path`` (override for another file layout)."""
        file = path / WEIGHTS_NAME
        if not file.is_file():
            raise missing_weights_error(type(self).__name__, file)
        load_weights(self, file, path / CONFIG_NAME)  # type: ignore[arg-type]
