"""``GenerationConfig``: validated once, frozen and hashable, keyword overrides the diffusers way."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

import lvg
from lvg.sampling import GenerationConfig, GenerationConfigError


def test_defaults_hash_and_equality():
    cfg = GenerationConfig()
    assert cfg.to_dict() == {"num_images": 1, "guidance_scale": 3.0, "temperature": 1.0, "label_temperature": None,
                             "refusal_threshold": None,
                             "top_k": 0, "top_p": 1.0, "painter_temperature": 0.0, "painter_steps": 1, "seed": None, "rerank": 1, "verify": 0, "allow_unsupported": False}  # fmt: skip
    assert GenerationConfig(verify=True).verify == 3 and GenerationConfig(verify=False).verify == 0
    a, b = GenerationConfig(guidance_scale=2, seed=np.int64(5)), GenerationConfig(guidance_scale=2.0, seed=5)
    assert a == b and hash(a) == hash(b) and len({a, b, cfg}) == 2
    assert isinstance(a.guidance_scale, float) and type(a.seed) is int
    with pytest.raises(AttributeError):
        cfg.temperature = 0.5  # frozen
    assert lvg.GenerationConfig is GenerationConfig


@pytest.mark.parametrize(
    ("name", "value"),
    [("num_images", 0), ("num_images", 65), ("num_images", True), ("num_images", 2.0), ("guidance_scale", -1),
     ("guidance_scale", math.inf), ("guidance_scale", "3"), ("temperature", -0.1), ("temperature", math.nan),
     ("top_k", -1), ("top_k", 1.5), ("top_p", 0), ("top_p", 1.01), ("seed", -1), ("seed", 2**63), ("seed", 1.0),
     ("painter_temperature", -1), ("painter_temperature", 1e-9), ("label_temperature", -1), ("label_temperature", 1e-9), ("painter_steps", 0), ("painter_steps", 65), ("rerank", 0), ("rerank", 17), ("rerank", True), ("verify", -1), ("verify", 17), ("verify", "2"), ("verify", 1.0)],
)  # fmt: skip
def test_bad_values_name_the_field(name, value):
    with pytest.raises(GenerationConfigError, match=name):
        GenerationConfig(**{name: value})
    with pytest.raises(ValueError, match=name):
        GenerationConfig().replace(**{name: value})


def test_from_kwargs_and_replace():
    base = GenerationConfig(guidance_scale=2.0, seed=1)
    assert GenerationConfig.from_kwargs() == GenerationConfig()
    assert GenerationConfig.from_kwargs(base) is base
    assert GenerationConfig.from_kwargs(base, temperature=0) == GenerationConfig(guidance_scale=2.0, seed=1,
                                                                                temperature=0.0)  # fmt: skip
    assert base.replace(seed=None).seed is None and base.seed == 1
    with pytest.raises(GenerationConfigError, match=r"\['colour', 'guidanse'\]"):
        GenerationConfig.from_kwargs(base, guidanse=1, colour=2)
    with pytest.raises(GenerationConfigError, match="config must be"):
        GenerationConfig.from_kwargs({"seed": 1})


# ---------------------------------------------------------------------- the fields, listed once

NOT_SERVED = {"rerank", "verify"}  # need components a served model may lack (clip/, reader/): not in the HTTP API
OPENAI_FIELDS = {"prompt", "response_format", "size", "model", "user"}


def test_cli_flags_are_generation_config_fields():
    """Every setting has its `lvg generate` flag, of the field's name; a field added in one place only fails here."""
    from lvg.cli import build_parser
    from lvg.sampling.config import FIELDS, SAMPLING_FIELDS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    generate, plan = sub.choices["generate"], sub.choices["plan"]
    flags = {o for a in generate._actions for o in a.option_strings}
    assert {f"--{name.replace('_', '-')}" for name in FIELDS} <= flags
    assert SAMPLING_FIELDS == ("guidance_scale", "temperature", "label_temperature", "refusal_threshold", "top_k",
                               "top_p", "painter_temperature", "painter_steps")  # fmt: skip
    args = plan.parse_args(
        ["two stars", "--top-k", "3", "--top-p", "0.5", "--temperature", "0", "--guidance-scale", "2"]
    )
    assert (args.top_k, args.top_p, args.temperature, args.guidance_scale) == (3, 0.5, 0.0, 2.0)


def test_server_schema_fields_are_generation_config_fields():
    from lvg.sampling.config import FIELDS, RANGES, api_name
    from lvg.serve.app import generation_request_model

    props = generation_request_model(8).model_json_schema()["properties"]
    assert set(props) - OPENAI_FIELDS == {api_name(f) for f in FIELDS if f not in NOT_SERVED}
    assert api_name("num_images") == "n" and props["n"]["maximum"] == 8
    assert props["allow_unsupported"]["type"] == "boolean" and props["allow_unsupported"]["default"] is False
    for name in set(FIELDS) - NOT_SERVED - {"num_images", "allow_unsupported"}:  # bounds from the one declaration
        number = next(t for t in props[name]["anyOf"] if t.get("type") in ("integer", "number"))
        bounds = {k: number[k] for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in number}
        want = {
            {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}[k]: v
            for k, v in RANGES[name].pydantic().items()
        }
        assert bounds == want, name


def test_seed_span_is_checked_up_front():
    from lvg.sampling.config import MAX_SEED

    assert GenerationConfig(seed=MAX_SEED - 2, num_images=3).seed == MAX_SEED - 2  # seeds MAX_SEED-2 .. MAX_SEED
    with pytest.raises(GenerationConfigError, match=rf"^seed must be at most {MAX_SEED - 2} for 3 images"):
        GenerationConfig(seed=MAX_SEED - 1, num_images=3)
