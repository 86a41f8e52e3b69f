"""``GenerationConfig``: validated once, frozen and hashable, keyword overrides the diffusers way."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lvg
from lvg.sampling import GenerationConfig, GenerationConfigError


def test_defaults_hash_and_equality():
    cfg = GenerationConfig()
    assert cfg.to_dict() == {"num_images": 1, "guidance_scale": 3.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                             "seed": None, "rerank": 1, "verify": 0}  # fmt: skip
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
     ("rerank", 0), ("rerank", 17), ("rerank", True), ("verify", -1), ("verify", 17), ("verify", "2"), ("verify", 1.0)],
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
