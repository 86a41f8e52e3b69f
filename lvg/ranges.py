"""Config ranges, declared once next to the field they bound.

Every config dataclass bounds its numeric fields the same way: the field's ``metadata`` holds a :class:`Range`
(:func:`bounded` builds the field), and ``__post_init__`` calls :func:`check_ranges`::

    @dataclass
    class PainterConfig:
        canvas: int = bounded(8, 1024, default=64)
        margin: float = bounded(0.0, 8.0, default=1.0, note="pixels")
        channels: list[int] = bounded(4, 4096, default_factory=lambda: [64, 128])  # each item

        def __post_init__(self) -> None:
            check_ranges(self)

The range also gives the server's pydantic bounds (:meth:`Range.pydantic`) and a field's help text
(``metadata["help"]``), so a bound is written once. No torch import: ``lvg.sampling.config`` uses it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any

__all__ = ["Range", "bounded", "check_ranges", "check_weights", "declared_ranges", "field_help"]


@dataclass(frozen=True)
class Range:
    """``lo <= value <= hi`` (``None``: unbounded on that side; ``lo_open``/``hi_open``: strict).

    ``integer``: the value must be an int (numpy and 0-d torch integers too; never a bool); otherwise any finite real
    number. ``note`` is appended to the error message (e.g. ``"1 means off"``)."""

    lo: int | float | None = None
    hi: int | float | None = None
    integer: bool = True
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""

    def describe(self) -> str:
        """``"an integer in [1, 64]"``, ``"a number in (0, 1]"``, ``"a number >= 0"``, ..."""
        kind = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            text = f"{kind} in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"{kind} {'>' if self.lo_open else '>='} {self.lo}"
        elif self.hi is not None:
            text = f"{kind} {'<' if self.hi_open else '<='} {self.hi}"
        else:
            text = kind
        return f"{text} ({self.note})" if self.note else text

    def contains(self, v: int | float) -> bool:
        """Whether the (already typed) value ``v`` lies inside the range (NaN never does)."""
        if v != v:
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def check(self, name: str, value: Any, error: type[ValueError] = ValueError) -> int | float:
        """``value`` as an int (``integer``) or a finite float, inside the range; else ``error`` naming ``name``
        and the bad value."""
        typed: int | float | None = None
        if not isinstance(value, bool):
            if self.integer:
                try:
                    typed = operator.index(value)
                except TypeError:
                    pass
            elif isinstance(value, numbers.Real) and math.isfinite(value):
                typed = float(value)
        if typed is None or not self.contains(typed):
            raise error(f"{name} must be {self.describe()}, got {value!r}")
        return typed

    def pydantic(self) -> dict[str, int | float]:
        """The range as pydantic ``Field`` keyword arguments (``ge``/``gt``/``le``/``lt``)."""
        out: dict[str, int | float] = {}
        if self.lo is not None:
            out["gt" if self.lo_open else "ge"] = self.lo
        if self.hi is not None:
            out["lt" if self.hi_open else "le"] = self.hi
        return out


def bounded(
    lo: int | float | None,
    hi: int | float | None,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    integer: bool | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    note: str = "",
    help: str = "",
    **metadata: Any,
) -> Any:  # noqa: A002
    """A dataclass field bounded by :class:`Range` ``(lo, hi)`` (a list field: each item). ``integer`` defaults to
    "neither bound is a float". ``help`` (and any other ``metadata``) is kept for the CLI and the server."""
    if integer is None:
        integer = not any(isinstance(b, float) for b in (lo, hi))
    rng = Range(lo, hi, integer, lo_open, hi_open, note)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"range": rng, "help": help, **metadata})  # fmt: skip


def declared_ranges(cls_or_config: Any) -> dict[str, Range]:
    """The :class:`Range` of every bounded field of a dataclass (or of an instance's class), by field name."""
    return {f.name: f.metadata["range"] for f in dataclasses.fields(cls_or_config) if "range" in f.metadata}


def field_help(cls_or_config: Any, name: str) -> str:
    """The ``help`` text declared next to the field ``name``."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls_or_config) if f.name == name)


def check_ranges(config: Any, ranges: dict[str, Range | tuple[int | float, int | float]] | None = None,
                 error: type[ValueError] = ValueError, prefix: str = "") -> None:  # fmt: skip
    """Raise ``error`` naming the first field of ``config`` outside its declared :class:`Range` (a list or tuple
    field's items are checked one by one, ``"channels[1]"``); ``None`` passes only a field whose default is None.

    ``ranges`` adds bounds that depend on other fields (``{"pad_id": (0, vocab - 1)}``; a tuple ``(lo, hi)`` is an
    integer range unless a bound is a float). ``prefix`` starts each message (e.g. ``"layout tokenizer: "``).
    """
    checks = declared_ranges(config)
    optional = {f.name for f in dataclasses.fields(config) if f.default is None}
    for name, r in (ranges or {}).items():
        checks[name] = r if isinstance(r, Range) else Range(*r, integer=not any(isinstance(b, float) for b in r))
    for name, rng in checks.items():
        value = getattr(config, name)
        if value is None and name in optional:
            continue
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                rng.check(f"{prefix}{name}[{i}]", item, error)
        else:
            rng.check(f"{prefix}{name}", value, error)


def check_weights(weights: Any, keys: tuple[str, ...] | None, name: str, what: str = "edit types") -> None:
    """Raise ValueError naming ``name`` unless ``weights`` maps names (of ``keys``, when given) to finite numbers
    >= 0, not all 0 over ``keys`` (a key left out weighs 1). An empty mapping passes (uniform)."""
    if not isinstance(weights, dict) or not all(isinstance(k, str) for k in weights):
        raise ValueError(f"{name}: give a mapping of {what} to weights, got {weights!r}")
    unknown = sorted(set(weights) - set(keys)) if keys is not None else []
    if unknown:
        raise ValueError(f"{name}: {unknown} are not {what}; they are {list(keys or ())}")
    if any(not isinstance(w, numbers.Real) or isinstance(w, bool) or not 0 <= w < math.inf for w in weights.values()):
        raise ValueError(f"{name}: every weight must be a finite number >= 0, got {weights}")
    if weights and keys is not None and not any(weights.get(k, 1.0) > 0 for k in keys):
        raise ValueError(f"{name}: at least one of the {what} needs a weight above 0")
