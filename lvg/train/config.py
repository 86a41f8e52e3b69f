"""Typed configs: nested dataclasses <- YAML file <- ``key.sub=value`` command-line overrides.

Unknown keys and values of the wrong type are errors that name the key, never silently ignored. The typed
conversion (``X | None`` and other unions, nested dataclasses, lists, tuples) is :func:`lvg.component.convert`,
the same code that reads component ``config.json`` files; here strings may also spell numbers, booleans and
lists (YAML 1.1 reads ``3e-4`` as a string, and overrides are strings).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lvg.component import ConfigError, config_from_dict
from lvg.files import InputFileError, read_yaml

T = TypeVar("T")
__all__ = ["ConfigError", "config_to_dict", "load_config"]


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    """Build ``cls`` from defaults, then the YAML file at ``path``, then ``a.b=value`` overrides."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = read_yaml(path) or {}  # a regular file, size-capped, UTF-8 (BOM too), nesting bounded
        except InputFileError as e:
            raise ConfigError(str(e)) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping at the top level")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw else raw
    return config_from_dict(cls, data, str(path) if path is not None else cls.__name__, strings=True)
