"""The LM is a Component: config checked before anything is built, safetensors only, strict, errors name the field."""

import json

import pytest
import torch
from conftest import TEXT_TOKENIZER

from lvg.component import Component, ConfigError
from lvg.models.unified import CausalLM, VocabLayout, build_lm, load_lm, save_lm
from lvg.tokenizers.text import load_text_tokenizer


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    layout = VocabLayout.from_tokenizers(load_text_tokenizer(TEXT_TOKENIZER), 16, 64)
    torch.manual_seed(0)
    return save_lm(build_lm(layout, "tiny"), tmp_path_factory.mktemp("lm") / "lm", torch.float16)


def test_round_trip_is_strict_and_float32(lm_dir):
    lm = load_lm(lm_dir)
    assert isinstance(lm, CausalLM) and isinstance(lm, Component) and not lm.training
    assert all(p.dtype == torch.float32 for p in lm.parameters())
    again = load_lm(save_lm(lm, lm_dir.parent / "again"))
    assert all(torch.equal(a, b) for a, b in zip(lm.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize(
    "change, field",
    [
        ({}, "vocab_size"),  # an empty config: refused before transformers builds its default 6.7B model
        ({"hidden_size": "64"}, "hidden_size"),
        ({"num_hidden_layers": 1_000_000}, "num_hidden_layers"),
        ({"vocab_size": True}, "vocab_size"),
        ({"model_type": "gpt2"}, "model_type"),
    ],
)
def test_bad_configs_name_the_field_before_anything_is_built(lm_dir, tmp_path, change, field):
    bad = tmp_path / "lm"
    bad.mkdir()
    cfg = json.loads((lm_dir / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(change if not change else {**cfg, **change}))
    (bad / "model.safetensors").write_bytes((lm_dir / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match=field):
        load_lm(bad)


def test_pickled_weights_are_never_read(lm_dir, tmp_path):
    bad = tmp_path / "lm"
    bad.mkdir()
    (bad / "config.json").write_text((lm_dir / "config.json").read_text())
    (bad / "pytorch_model.bin").write_bytes(b"not even looked at")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_lm(bad)
