"""``GenerationConfig``: every text -> image sampling setting, validated once and carried everywhere.

transformers' ``GenerationConfig`` idea, kept small: one frozen, hashable dataclass that the CLI, the server
(whose batching key it is), eval and the trainers' validation build, and that every pipeline takes, either
as ``pipe(prompts, config=cfg)`` or as the same names as keyword arguments (the diffusers way)::

    cfg = GenerationConfig(guidance_scale=2.0, seed=0)
    pipe(prompts, config=cfg, temperature=0.7)  # keyword arguments override the config's fields

The per-field rules live here once (:data:`RULES`); the pure sampling functions check the plain values they
receive with :func:`check_value` (no second copy of the rules). No torch import: ``import lvg`` stays light.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_IMAGES_PER_PROMPT = 64
MAX_RERANK = 16  # most candidates generated per returned image
MAX_SEED = 2**63 - 1
DEFAULT_VERIFY_TRIES = 3  # what verify=True means
MIN_TEMPERATURE = 1e-6  # below it (but above 0) logits / temperature overflows float32 and sampling draws garbage


class GenerationConfigError(ValueError):
    """A generation setting of the wrong type or out of range (the message names the field)."""


def _integer(name: str, value: Any) -> int:
    """``value`` as an int (numpy and 0-d torch integers too); bools and floats are refused."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise GenerationConfigError(f"{name} must be an integer, got {value!r}")


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float; bools, strings, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise GenerationConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _rule(kind: Callable[[str, Any], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        value = kind(name, value)
        if not ok(value):
            raise GenerationConfigError(f"{name} must be {what}, got {value!r}")
        return value

    return check


RULES: dict[str, Callable[[str, Any], Any]] = {
    "num_images": _rule(_integer, lambda v: 1 <= v <= MAX_IMAGES_PER_PROMPT, f"between 1 and {MAX_IMAGES_PER_PROMPT}"),
    "guidance_scale": _rule(_number, lambda v: v >= 0, ">= 0 (1 means no guidance)"),
    "temperature": _rule(
        _number,
        lambda v: v == 0 or v >= MIN_TEMPERATURE,
        f"0 (greedy) or at least {MIN_TEMPERATURE:g} (smaller ones overflow float32)",
    ),
    "top_k": _rule(_integer, lambda v: v >= 0, "an integer >= 0 (0 means off)"),
    "top_p": _rule(_number, lambda v: 0 < v <= 1, "in (0, 1] (1 means off)"),
    "seed": _rule(_integer, lambda v: 0 <= v <= MAX_SEED, f"in [0, {MAX_SEED}] or None"),
    "rerank": _rule(_integer, lambda v: 1 <= v <= MAX_RERANK, f"an integer between 1 and {MAX_RERANK}"),
    "verify": lambda name, v: (
        (DEFAULT_VERIFY_TRIES if v else 0)
        if isinstance(v, bool)
        else _rule(_integer, lambda t: 0 <= t <= MAX_RERANK, f"True, False or a number of tries in [0, {MAX_RERANK}]")(
            name, v
        )
    ),
}


def check_value(name: str, value: Any, error: type[ValueError] = GenerationConfigError) -> Any:
    """``value`` checked (and normalised: int or float) by the rule of the generation setting ``name``;
    raises ``error`` (a ``ValueError`` subclass) whose message names ``name``."""
    try:
        return RULES[name](name, value)
    except GenerationConfigError as e:
        if error is GenerationConfigError:
            raise
        raise error(str(e)) from None


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings of text -> image generation (frozen and hashable: equal configs batch together).

    ``num_images`` per prompt; classifier-free ``guidance_scale`` (1 = off); ``temperature`` (0 = greedy),
    ``top_k`` (0 = off) and ``top_p`` (1 = off) for the image tokens; ``seed`` of the first image (image ``j``
    uses ``seed + j``; None draws one); ``rerank`` CLIP candidates per image (1 = off); ``verify``: how many more
    tries an image gets whose own caption contradicts its prompt (``True`` = 3, 0/False = off; needs a reader).
    """

    num_images: int = 1
    guidance_scale: float = 3.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    rerank: int = 1
    verify: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "seed" and value is None:
                continue
            object.__setattr__(self, f.name, check_value(f.name, value))

    def replace(self, **changes: Any) -> GenerationConfig:
        """A copy with ``changes`` applied (validated; unknown names are an error naming them)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_kwargs(cls, config: GenerationConfig | None = None, **kwargs: Any) -> GenerationConfig:
        """``config`` (default: the defaults) with ``kwargs`` overriding its fields, the diffusers way."""
        if config is not None and not isinstance(config, GenerationConfig):
            raise GenerationConfigError(f"config must be a GenerationConfig, got {type(config).__name__}")
        _check_names(kwargs)
        base = config if config is not None else cls()
        return dataclasses.replace(base, **kwargs) if kwargs else base

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(GenerationConfig))


def _check_names(kwargs: dict[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in FIELDS)
    if unknown:
        raise GenerationConfigError(f"unknown generation setting(s) {unknown}; known: {list(FIELDS)}")
