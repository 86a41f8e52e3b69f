"""The package's layers: no module imports from a layer above its own (lazy imports inside functions included).

data < tokenizers < models < sampling < pipelines < eval, train < serve < cli. Top-level helper modules
(``lvg/__init__.py``, ``lvg/weights.py``, ``lvg/component.py``, ``lvg/resources.py``, ...) are the lowest layer.
Imports under ``if TYPE_CHECKING:`` never run and are not counted.
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
        own = layer_of(module_name(file))
        for line, mod in imports_of(file):
            if layer_of(mod) > own:
                bad.append(f"{file.relative_to(PACKAGE.parent)}:{line} imports {mod} (a higher layer)")
    return bad


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


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
