"""``lvg.ranges``: config bounds declared once on the field, checked by ``check_ranges``, read by the server."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest

from lvg.component import ConfigError, config_from_dict
from lvg.models.painter import PainterConfig
from lvg.models.reader import ReaderConfig
from lvg.ranges import Range, bounded, check_ranges, declared_ranges
from lvg.tokenizers.layout import LayoutTokenizerConfig
from lvg.train.common import TrainConfig


class ToyError(ValueError):
    pass


@dataclass
class Toy:
    width: int = bounded(1, 64, default=8)
    rate: float = bounded(0.0, 1.0, lo_open=True, default=0.5, note="1 means off")
    levels: list[int] = bounded(2, 16, default_factory=lambda: [4, 4])
    limit: int | None = bounded(0, None, default=None)
    name: str = "toy"

    def __post_init__(self) -> None:
        check_ranges(self, error=ToyError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"width": 0}, "width must be an integer in [1, 64], got 0"),
     ({"width": 65}, "width must be an integer in [1, 64], got 65"),
     ({"width": True}, "width must be an integer in [1, 64], got True"),
     ({"width": 2.0}, "width must be an integer in [1, 64], got 2.0"),
     ({"rate": 0}, "rate must be a number in (0.0, 1.0] (1 means off), got 0"),
     ({"rate": math.nan}, "rate must be a number in (0.0, 1.0] (1 means off), got nan"),
     ({"rate": "0.5"}, "rate must be a number in (0.0, 1.0] (1 means off), got '0.5'"),
     ({"levels": [4, 1]}, "levels[1] must be an integer in [2, 16], got 1"),
     ({"limit": -1}, "limit must be an integer >= 0, got -1"),
     ({"limit": math.inf}, "limit must be an integer >= 0, got inf")],
)  # fmt: skip
def test_a_field_out_of_range_names_the_field_and_the_value(changes, message):
    with pytest.raises(ToyError) as e:
        Toy(**changes)
    assert str(e.value) == message


def test_values_inside_the_ranges_pass_and_are_kept_as_given():
    toy = Toy(width=np.int64(64), rate=1, levels=[2, 16], limit=None)
    assert toy.width == 64 and toy.rate == 1 and toy.limit is None
    assert declared_ranges(Toy) == {"width": Range(1, 64), "rate": Range(0.0, 1.0, False, True, False, "1 means off"),
                                    "levels": Range(2, 16), "limit": Range(0, None)}  # fmt: skip
    with pytest.raises(ValueError, match="name must be an integer in \\[0, 3\\], got 'toy'"):  # given at the call
        check_ranges(toy, {"name": (0, 3)})


def test_a_bad_value_in_a_config_file_names_the_file_and_the_field():
    with pytest.raises(ConfigError, match=r"painter/config.json: .*margin must be a number in \[0.0, 8.0\]"):
        config_from_dict(PainterConfig, {"label_words": ["red"], "margin": 9.0}, "painter/config.json")


@pytest.mark.parametrize(
    ("build", "field"),
    [(lambda: PainterConfig(label_words=["red"], blocks=-1), "blocks"),
     (lambda: PainterConfig(label_words=["red"], fsq_levels=[8, 1]), "fsq_levels[1]"),
     (lambda: ReaderConfig(labels=["red circle"], threshold=1.0), "threshold"),
     (lambda: LayoutTokenizerConfig(labels=("a",), backgrounds=("b",), canvas=0), "layout tokenizer: canvas"),
     (lambda: TrainConfig(lr=0.0), "lr"),
     (lambda: TrainConfig(steps=0), "steps")],
)  # fmt: skip
def test_every_config_declares_its_ranges_the_same_way(build, field):
    with pytest.raises(ValueError, match=rf"^{re.escape(field)} must be "):
        build()


def test_range_as_pydantic_bounds():
    assert Range(0.0, 1.0, integer=False, lo_open=True).pydantic() == {"gt": 0.0, "le": 1.0}
    assert Range(1, None).pydantic() == {"ge": 1}
