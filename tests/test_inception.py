"""Inception-v3 (random weights) from safetensors, strict loading, and FID/IS through torchmetrics."""

import math

import pytest
import torch
from safetensors.torch import save_file

from lvg.cli import main
from lvg.eval.inception import (
    InceptionConfig,
    InceptionEvaluator,
    InceptionV3,
    InceptionWeightsError,
    load_inception,
    preprocess,
)


@pytest.fixture(scope="module")
def net() -> InceptionV3:
    torch.manual_seed(0)
    model = InceptionV3(InceptionConfig(num_classes=1000, fid_variant=True))
    model.fc.weight.data *= 30  # peaked class probabilities, so IS is clearly above 1
    return model


@pytest.fixture(scope="module")
def state(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory, state) -> str:
    path = tmp_path_factory.mktemp("inception") / "inception.safetensors"
    save_file(state, str(path))
    return str(path)


def _images(n: int, seed: int, lo: int = 0, hi: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, (n, 3, 64, 64), generator=g, dtype=torch.uint8)  # [n, 3, 64, 64]


def test_parameter_count():
    # torchvision's inception_v3 has 27,161,264 parameters with its AuxLogits head (3,326,696 of them: 1x1 conv
    # 768->128 + BN, 5x5 conv 128->768 + BN, fc 768->1000); without it 23,834,568, plus 8 * 2049 for 1008 classes
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        assert count(InceptionV3(InceptionConfig(num_classes=1000))) == 23_834_568
        assert count(InceptionV3(InceptionConfig(num_classes=1008))) == 23_834_568 + 8 * 2049


def test_save_load_roundtrip_is_bit_identical(net, weights):
    loaded = load_inception(weights, "fid")
    assert loaded.num_classes == 1000 and loaded.config.fid_variant and not loaded.training
    x = _images(2, 0)
    feats = net.features(x)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert torch.equal(feats, loaded.features(x))
    logits = loaded.logits(x[:1])
    assert logits.shape == (1, 1000)
    assert torch.allclose(logits, net.fc(feats[:1]), atol=1e-4)
    # the variant only changes the pool branches: same weights, different features
    tv = load_inception(weights, "torchvision")
    assert not tv.config.fid_variant and not torch.allclose(tv.features(x[:1]), feats[:1])


def test_preprocess_matches_torchvision_transform_input():
    x = torch.rand(2, 3, 299, 299)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    normed = (x - mean[:, None, None]) / std[:, None, None]  # torchvision's ImageNet preprocessing
    transformed = normed * (std / 0.5)[:, None, None] + ((mean - 0.5) / 0.5)[:, None, None]  # its transform_input
    assert torch.allclose(preprocess(x), transformed, atol=1e-5)
    u8 = preprocess(_images(1, 0))
    assert u8.shape == (1, 3, 299, 299) and -1 <= u8.min() and u8.max() <= 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess(torch.full((1, 3, 8, 8), 255.0))


def test_fid_and_is_through_torchmetrics(net):
    real, other = _images(4, 1), _images(4, 2, 0, 96)  # other: darker images
    ev = InceptionEvaluator(net, batch_size=3, splits=2)  # what inception_metrics runs, keeping the real features
    ev.add_real(real)
    same, diff = ev.evaluate(real), ev.evaluate(other)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3) and diff["fid"] > 1.0
    for m in (same, diff):
        assert math.isfinite(m["is_mean"]) and math.isfinite(m["is_std"]) and m["is_mean"] > 1.0


def _expect_error(path, match: str) -> None:
    with pytest.raises(InceptionWeightsError, match=match):
        load_inception(path)


def test_strict_loading_errors(tmp_path, state):
    missing = {k: v for k, v in state.items() if k != "Mixed_6b.branch7x7_2.conv.weight"}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    _expect_error(tmp_path / "missing.safetensors", r"missing keys: Mixed_6b\.branch7x7_2\.conv\.weight$")

    save_file(state | {"head.extra": torch.zeros(3)}, str(tmp_path / "extra.safetensors"))
    _expect_error(tmp_path / "extra.safetensors", r"unexpected keys: head\.extra$")

    wrong = state | {"Mixed_5b.branch1x1.conv.weight": torch.zeros(64, 192, 3, 3)}
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    _expect_error(
        tmp_path / "wrong.safetensors",
        r"Mixed_5b\.branch1x1\.conv\.weight \[64, 192, 3, 3\] \(expected \[64, 192, 1, 1\]\)",
    )

    _expect_error(tmp_path / "nope.safetensors", "not found")
    (tmp_path / "garbage.pth").write_bytes(b"\x80\x02not a safetensors file at all")
    _expect_error(tmp_path / "garbage.pth", "is not a safetensors file")
    with pytest.raises(ValueError, match="variant"):
        load_inception(tmp_path / "wrong.safetensors", "tf")


def test_optional_keys_tolerated(tmp_path, state):
    # exports may lack BatchNorm counters, and torchvision's carry the AuxLogits head
    trimmed = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    save_file(trimmed | {"AuxLogits.fc.weight": torch.zeros(1000, 768)}, str(tmp_path / "tv.safetensors"))
    loaded = load_inception(tmp_path / "tv.safetensors", "torchvision")
    assert torch.equal(loaded.fc.weight, state["fc.weight"])


def test_cli_bad_weights_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    argv = ["eval", "shapes", "--inception-weights", str(bad), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvg: error: ") and "is not a safetensors file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv[:3], str(tmp_path / "absent.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # failed before generating anything
