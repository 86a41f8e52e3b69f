"""``lvg.component``: config.json + model.safetensors components, typed config loading, clear errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from lvg.component import Component, ConfigError, config_from_dict


@dataclass
class Inner:
    sizes: tuple[int, ...] = (2, 3)
    scale: float | None = None


@dataclass
class ToyConfig:
    width: int = 4
    mode: str = "a"
    inner: Inner = field(default_factory=Inner)
    pair: tuple[int, str] = (1, "x")
    extra: list[int] | None = None

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


class Toy(Component, nn.Module):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.width, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


def test_save_load_round_trip_and_dtype(tmp_path):
    torch.manual_seed(0)
    toy = Toy(ToyConfig(width=3, inner=Inner((4,), 0.5), extra=[1]))
    toy.save_pretrained(tmp_path / "full")
    half = toy.save_pretrained(tmp_path / "half", dtype=torch.float16)
    assert (half / "config.json").is_file() and (half / "model.safetensors").is_file()
    back = Toy.from_pretrained(tmp_path / "full")
    assert back.config == toy.config and not back.training
    assert isinstance(back.config.inner.sizes, tuple) and back.config.pair == (1, "x")
    assert torch.equal(back.lin.weight, toy.lin.weight) and back.steps.dtype == torch.long
    h = Toy.from_pretrained(half)
    assert h.lin.weight.dtype == torch.float32  # computes in float32 whatever the storage
    torch.testing.assert_close(h.lin.weight, toy.lin.weight, atol=1e-3, rtol=1e-3)
    assert toy.lin.weight.dtype == torch.float32  # the module in memory is untouched


def test_bad_files_are_errors_naming_file_and_field(tmp_path):
    Toy(ToyConfig()).save_pretrained(tmp_path)
    cfg_file = tmp_path / "config.json"
    good = json.loads(cfg_file.read_text())
    cases = {
        "{": "not valid JSON",
        json.dumps({**good, "widht": 3}): "widht",
        json.dumps({**good, "width": "3"}): "'width'",
        json.dumps({**good, "width": True}): "'width'",
        json.dumps({**good, "width": 0}): "width must be >= 1",
        json.dumps({**good, "inner": {"sizes": [1, "a"]}}): r"inner\.sizes\[1\]",
        json.dumps({**good, "pair": [1, 2, 3]}): "'pair'",
        json.dumps([1]): "mapping",
    }
    for text, match in cases.items():
        cfg_file.write_text(text)
        with pytest.raises(ConfigError, match=match) as e:
            Toy.from_pretrained(tmp_path)
        assert "config.json" in str(e.value)
    cfg_file.write_text(json.dumps({**good, "width": 5}))
    with pytest.raises(ValueError, match="does not match"):
        Toy.from_pretrained(tmp_path)
    cfg_file.write_text(json.dumps({**good, "_class_name": "Toy"}))  # metadata keys are skipped
    Toy.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="safetensors"):
        Toy.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        Toy.from_pretrained(tmp_path)
    cfg_file.unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        Toy.from_pretrained(tmp_path)


def test_config_from_dict_unions_optionals_and_strings():
    assert config_from_dict(ToyConfig, {}) == ToyConfig()
    cfg = config_from_dict(ToyConfig, {"inner": {"scale": 2}, "extra": None})
    assert cfg.inner.scale == 2.0 and isinstance(cfg.inner.scale, float) and cfg.extra is None
    with pytest.raises(ConfigError, match="'inner.scale'"):
        config_from_dict(ToyConfig, {"inner": {"scale": "big"}})
    # command-line style: strings spell numbers and lists
    cfg = config_from_dict(ToyConfig, {"width": "7", "inner": {"scale": "3e-4"}, "extra": "[1, 2]"}, strings=True)
    assert cfg.width == 7 and cfg.inner.scale == pytest.approx(3e-4) and cfg.extra == [1, 2]
    with pytest.raises(ConfigError, match="unknown"):
        config_from_dict(ToyConfig, {"inner": {"nope": 1}})

    @dataclass
    class Needs:
        a: int
        b: int | str = 0

    with pytest.raises(ConfigError, match="missing"):
        config_from_dict(Needs, {})
    assert config_from_dict(Needs, {"a": 1, "b": "x"}).b == "x"
    assert config_from_dict(Needs, {"a": 1, "b": "5"}, strings=True).b == 5  # the first member that fits
