"""The package's layers: no module imports from a layer above its own (lazy imports inside functions included).

data, worlds < tokenizers < models < sampling < pipelines < eval, train < serve < cli (the ``lvg/cli/`` package).
Top-level helper modules (``lvg/weights.py``, ``lvg/component.py``, ``lvg/resources.py``, ...) are the lowest layer; ``lvg/__init__.py`` is
the top API (it may reach every layer, lazily). Worlds (``lvg/worlds/``) sit at the data level, and the generic
layers (:data:`GENERIC`: data, tokenizers, models, sampling, pipelines, serve) import no world at all; eval, train
and cli may. Imports under ``if TYPE_CHECKING:`` never run and are not counted.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lvg"
LAYERS = {"data": 1, "worlds": 1, "tokenizers": 2, "models": 3, "sampling": 4, "pipelines": 5, "eval": 6, "train": 6, "serve": 7,
          "cli": 8}  # fmt: skip
LOWEST = 0
TOP_API = "lvg"  # lvg/__init__.py
GENERIC = ("data", "tokenizers", "models", "sampling", "pipelines", "serve")  # they import no world


def layer_of(module: str) -> int:
    """Layer of the dotted module name ``lvg.x...`` (``lvg`` and its top-level helper modules: the lowest)."""
    parts = module.split(".")
    return LAYERS.get(parts[1], LOWEST) if len(parts) > 1 else LOWEST


def module_name(file: Path) -> str:
    rel = file.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports_of(file: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``lvg`` import in ``file``, at any depth, relative ones resolved."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module_name(file) if file.name == "__init__.py" else module_name(file).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from lvg import x` / `from lvg.pkg import mod`: the names may be submodules
            found += [(node.lineno, f"{mod}.{a.name}" if mod in ("lvg", *(f"lvg.{p}" for p in LAYERS)) else mod)
                      for a in node.names]  # fmt: skip
    return sorted({(line, m) for line, m in found if m == "lvg" or m.startswith("lvg.")})


def upward_imports() -> list[str]:
    bad = []
    for file in sorted(PACKAGE.rglob("*.py")):
        own = max(LAYERS.values()) + 1 if module_name(file) == TOP_API else layer_of(module_name(file))
        for line, mod in imports_of(file):
            if layer_of(mod) > own:
                bad.append(f"{file.relative_to(PACKAGE.parent)}:{line} imports {mod} (a higher layer)")
    return bad


def world_imports() -> list[str]:
    """Every import of ``lvg.worlds`` (any world, or the registry) by a module of a :data:`GENERIC` layer."""
    bad = []
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = module_name(file).split(".")
        if len(parts) > 1 and parts[1] in GENERIC:
            bad += [f"{file.relative_to(PACKAGE.parent)}:{line} imports {mod} (a world)"
                    for line, mod in imports_of(file) if mod == "lvg.worlds" or mod.startswith("lvg.worlds.")]  # fmt: skip
    return bad


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


def test_no_generic_layer_imports_a_world():
    assert world_imports() == []


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [("pipelines", "from lvg.worlds.shapes.reading import caption_entails\n", ["lvg.worlds.shapes.reading"]),
     ("data", "def f():\n    from lvg.worlds import get_world\n", ["lvg.worlds.get_world"]),  # lazy; the registry too
     ("tokenizers", "from ..worlds.shapes import captions\n", ["lvg.worlds.shapes"]),
     ("serve", "import lvg.worlds.shapes.judge\n", ["lvg.worlds.shapes.judge"]),
     ("eval", "from lvg.worlds.shapes.judge import judge\n", []),  # eval, train and cli may use a world
     ("pipelines", "from lvg.data.layout import Layout\n", [])],
)  # fmt: skip
def test_the_checker_sees_a_generic_layer_import_a_world(tmp_path, monkeypatch, layer, source, expected):
    pkg = tmp_path / "lvg" / layer
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "lvg")
    assert [b.split(" imports ")[1].removesuffix(" (a world)") for b in world_imports()] == expected


def test_the_cli_package_is_the_top_layer():
    files = sorted((PACKAGE / "cli").glob("*.py"))
    assert not (PACKAGE / "cli.py").exists() and {"__init__", "__main__", "train"} <= {f.stem for f in files}
    assert {layer_of(module_name(f)) for f in files} == {max(LAYERS.values())}


def test_worlds_sit_at_the_data_level():
    assert layer_of("lvg.worlds.shapes.judge") == layer_of("lvg.data.layout") < layer_of("lvg.tokenizers.text")
    assert layer_of("lvg.worlds.shapes.judge") > layer_of("lvg.resources")


@pytest.mark.parametrize(
    ("source", "expected"),
    [("from lvg.pipelines.pipeline import Pipeline\n", ["lvg.pipelines.pipeline"]),
     ("def f():\n    from lvg.serve.app import create_app\n", ["lvg.serve.app"]),  # lazy imports count
     ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lvg.cli import main\n", []),
     ("from .generate import x\n", ["lvg.sampling.generate"]), ("from ..eval import shapes\n", ["lvg.eval.shapes"]),
     ("import torch\nfrom lvg import __version__\n", ["lvg.__version__"])],
)  # fmt: skip
def test_the_checker_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    pkg = tmp_path / "lvg" / "sampling"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "lvg")
    assert [m for _, m in imports_of(pkg / "mod.py")] == expected
    assert layer_of("lvg.serve.app") > layer_of("lvg.sampling.mod") > layer_of("lvg.weights")
