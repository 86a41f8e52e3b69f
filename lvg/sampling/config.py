"""``GenerationConfig``: every text -> image sampling setting, validated once and carried everywhere.

transformers' ``GenerationConfig`` idea, kept small: one frozen, hashable dataclass that the CLI, the server
(whose batching key it is), eval and the trainers' validation build, and that every pipeline takes, either
as ``pipe(prompts, config=cfg)`` or as the same names as keyword arguments (the diffusers way)::

    cfg = GenerationConfig(guidance_scale=2.0, seed=0)
    pipe(prompts, config=cfg, temperature=0.7)  # keyword arguments override the config's fields

Each field declares its range and help text once (:func:`lvg.ranges.bounded`); the CLI flags, the server's
request schema and the report derive theirs from these fields, and the pure sampling functions check the plain
values they receive with :func:`check_value` (no second copy of the rules). No torch import (``lvg.sampling``
imports its other modules lazily), so the command line reads these fields without loading torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lvg.ranges import Range, bounded, declared_ranges

MAX_IMAGES_PER_PROMPT = 64
MAX_RERANK = 16  # most candidates generated per returned image
MAX_SEED = 2**63 - 1
DEFAULT_VERIFY_TRIES = 3  # what verify=True means
REFUSAL_THRESHOLD = 0.5  # what refusal_threshold None means: refuse when refusing is the likelier
MIN_TEMPERATURE = 1e-6  # below it (but above 0) logits / temperature overflows float32 and sampling draws garbage


class GenerationConfigError(ValueError):
    """A generation setting of the wrong type or out of range (the message names the field)."""


def check_value(name: str, value: Any, error: type[ValueError] = GenerationConfigError) -> Any:
    """``value`` checked (and normalised: int or float) against the range declared on the generation setting
    ``name``; raises ``error`` (a ``ValueError`` subclass) whose message names ``name``."""
    if name == "verify" and isinstance(value, bool):  # True/False: the default number of tries, or off
        return DEFAULT_VERIFY_TRIES if value else 0
    if name == "allow_unsupported":
        if not isinstance(value, bool):
            raise error(f"allow_unsupported must be true or false, got {value!r}")
        return value
    value = RANGES[name].check(name, value, error)
    if name in ("temperature", "label_temperature", "painter_temperature") and 0 < value < MIN_TEMPERATURE:
        raise error(f"{name} must be 0 (greedy) or at least {MIN_TEMPERATURE:g} (smaller ones overflow float32), "
                    f"got {value!r}")  # fmt: skip
    return value


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings of text -> image generation (frozen and hashable: equal configs batch together).

    ``num_images`` per prompt; classifier-free ``guidance_scale`` (1 = off); ``temperature`` (0 = greedy),
    ``top_k`` (0 = off) and ``top_p`` (1 = off) for the image tokens (a planned model: the layout tokens);
    ``label_temperature``: a planned model's labels (and where its objects end) at this temperature instead (None:
    ``temperature``); ``refusal_threshold``: a planned model refuses a prompt whose refusal probability is above
    it (None: 0.5);
    ``painter_temperature``: a code painter's per-token sampling temperature (0 = argmax); ``painter_steps``: the
    rounds a masked code painter paints in (MaskGIT; 1 = one step); ``seed`` of the first image (image ``j``
    uses ``seed + j``; None draws one); ``rerank`` CLIP candidates per image (1 = off); ``verify``: how many more
    tries an image gets whose own caption contradicts its prompt (``True`` = 3, 0/False = off; needs a reader);
    ``allow_unsupported``: draw (and flag) a prompt the planner refuses instead of raising.
    """

    # Each field declares its range (``bounded``) and help text once; ``sampling=True`` marks the token-sampling
    # settings a model folder may give its own defaults for (``model_index.json``), which the CLI (``--top-k``)
    # and the server (``"top_k"``) expose as they are; ``api`` renames a field in the server's JSON.
    num_images: int = bounded(1, MAX_IMAGES_PER_PROMPT, default=1, help="images per prompt", api="n")
    guidance_scale: float = bounded(0.0, 100.0, default=3.0, note="1 means no guidance", sampling=True,
                                    help="classifier-free guidance scale, 1 = off")  # fmt: skip
    temperature: float = bounded(0.0, 10.0, default=1.0, note="0 means greedy", sampling=True,
                                 help="sampling temperature, 0 = greedy")  # fmt: skip
    # a planned model's object labels (and whether another object follows) at their own temperature, its boxes at
    # ``temperature``: what to draw is content, where is precision (an unasked style is the LM's coin to toss)
    label_temperature: float | None = bounded(0.0, 10.0, default=None, note="0 means greedy", sampling=True,
                                              help="a planned model draws each object's label, and whether another "
                                                   "follows, at this temperature (default: temperature)")  # fmt: skip
    # a planned model refuses a prompt when the probability its planner gives the refusals (against drawing) at the
    # layout's first token is above this (None: one half, the likelier of the two); lower refuses more of what it
    # is unsure of, at the cost of some prompts it would have drawn
    refusal_threshold: float | None = bounded(0.0, 1.0, lo_open=True, hi_open=True, default=None,
                                              note="default 0.5", sampling=True,
                                              help="a planned model refuses a prompt when its planner gives refusing "
                                                   "more than this probability (default 0.5)")  # fmt: skip
    top_k: int = bounded(0, None, default=0, note="0 means off", sampling=True,
                         help="keep the k most likely tokens, 0 = off")  # fmt: skip
    top_p: float = bounded(0.0, 1.0, lo_open=True, default=1.0, note="1 means off", sampling=True,
                           help="nucleus sampling threshold, 1 = off")  # fmt: skip
    painter_temperature: float = bounded(0.0, 10.0, default=0.0, note="0 means argmax", sampling=True,
                                         help="the code painter draws each image token at this temperature, 0 = "
                                              "argmax (a GAN painter samples with its noise)")  # fmt: skip
    painter_steps: int = bounded(1, 64, default=1, note="1 means one step", sampling=True,
                                 help="rounds a masked (MaskGIT) code painter paints in, 1 = one step")  # fmt: skip
    seed: int | None = bounded(0, MAX_SEED, default=None, help="seed of the first image (image j uses seed + j)")
    rerank: int = bounded(1, MAX_RERANK, default=1, help="CLIP candidates per image, 1 = off")
    verify: int = bounded(0, MAX_RERANK, default=0, note="or True/False",
                          help="more tries for an image whose caption contradicts its prompt, 0 = off")  # fmt: skip
    # a prompt the planner refuses (outside its world, too many objects, a contradiction, zero objects): False
    # raises UnsupportedPromptError naming the reason; True draws a best effort and flags it (output.unsupported)
    allow_unsupported: bool = dataclasses.field(
        default=False, metadata={"help": "draw a best effort for a prompt the model refuses, and flag it"}
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:  # (seed: drawn; label_temperature: the temperature; ...)
                continue
            object.__setattr__(self, f.name, check_value(f.name, value))
        if self.seed is not None:
            check_seed_span(self.seed, self.num_images)

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
RANGES: dict[str, Range] = declared_ranges(GenerationConfig)
# the token-sampling settings (a model folder's own defaults; CLI flags and server fields as they are)
SAMPLING_FIELDS = tuple(f.name for f in dataclasses.fields(GenerationConfig) if f.metadata.get("sampling"))


def api_name(name: str) -> str:
    """The server's JSON name of the generation setting ``name`` (``num_images`` -> ``n``)."""
    return next(f.metadata.get("api", f.name) for f in dataclasses.fields(GenerationConfig) if f.name == name)


def check_seeds(seeds: Any, error: type[ValueError] = GenerationConfigError) -> list[int]:
    """A per-image seed list: each an integer in [0, MAX_SEED] (never a bool or a float); ``error`` names
    ``seeds[i]`` and the bad value."""
    if isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__"):
        raise error(f"seeds must be a list of integers, got {seeds!r}")
    return [RANGES["seed"].check(f"seeds[{i}]", x, error) for i, x in enumerate(seeds)]


def check_seed_span(seed: int, count: int, error: type[ValueError] = GenerationConfigError) -> None:
    """Raise ``error`` naming ``seed`` unless ``seed + count - 1 <= MAX_SEED`` (``count`` images, image j uses
    ``seed + j``)."""
    if seed + count - 1 > MAX_SEED:
        raise error(f"seed must be at most {MAX_SEED - count + 1} for {count} images (image j uses seed + j, "
                    f"at most {MAX_SEED}), got {seed}")  # fmt: skip


def _check_names(kwargs: dict[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in FIELDS)
    if unknown:
        raise GenerationConfigError(f"unknown generation setting(s) {unknown}; known: {list(FIELDS)}")
