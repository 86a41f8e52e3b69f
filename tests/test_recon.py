"""Reconstruction metrics and the PatchGAN discriminator: known answers on hand-made inputs."""

import math
from types import SimpleNamespace

import pytest
import torch

from lvg.eval.recon import (
    PSNR_CAP,
    ReconInputError,
    codebook_usage,
    evaluate_tokenizer,
    judge_round_trip,
    psnr_ssim,
    reconstruct,
)
from lvg.resources import benchmark_prompts_file
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
from lvg.train.discriminator import (
    DiscriminatorConfig,
    DiscriminatorConfigError,
    PatchDiscriminator,
    hinge_d_loss,
    hinge_g_loss,
)
from lvg.worlds.shapes.benchmark import load_prompts
from lvg.worlds.shapes.dataset import ShapesWorldConfig, make_sample
from lvg.worlds.shapes.heldout import held_out_images


class IdentityTokenizer:
    """Test double: codes are all zeros; decode returns the images that encode last saw."""

    config = SimpleNamespace(grid=8)
    codebook_size = 16

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.last = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        return torch.zeros(images.shape[0], 8, 8, dtype=torch.long)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.last


class WhiteTokenizer(IdentityTokenizer):
    """Test double whose decoder only ever draws a blank white canvas."""

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.ones(codes.shape[0], 3, 64, 64)


@pytest.fixture(scope="module")
def prompts():
    return load_prompts(benchmark_prompts_file())[::20]  # 23 rows spread over all nine categories


def test_psnr_ssim_identical_images():
    images = held_out_images(4)
    psnr, ssim = psnr_ssim(images.clone(), images)
    assert psnr == PSNR_CAP
    assert ssim == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("d", [1, 5, 40])
def test_psnr_of_a_constant_offset_is_analytic(d):
    images = torch.randint(0, 256 - d, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(d))
    psnr, ssim = psnr_ssim(images + d, images)
    assert psnr == pytest.approx(20 * math.log10(255 / d), abs=0.01)
    assert ssim < 1.0


def test_psnr_mean_is_per_image():
    images = torch.full((2, 3, 64, 64), 100, dtype=torch.uint8)
    recon = images.clone()
    recon[1] += 10  # image 0 identical (capped), image 1 offset by 10
    psnr, _ = psnr_ssim(recon, images)
    assert psnr == pytest.approx((PSNR_CAP + 20 * math.log10(25.5)) / 2, abs=0.01)


def test_psnr_ssim_rejects_bad_input():
    images = held_out_images(2)
    with pytest.raises(ReconInputError, match="uint8"):
        psnr_ssim(images.float(), images)
    with pytest.raises(ReconInputError, match="differ in shape"):
        psnr_ssim(images[:1], images)


def test_codebook_usage_uniform_and_collapsed():
    k = 16
    uniform = codebook_usage(torch.arange(k).repeat(5).view(5, 4, 4), k)
    assert uniform["fraction_used"] == 1.0 and uniform["used"] == k
    assert uniform["perplexity"] == pytest.approx(k)
    collapsed = codebook_usage(torch.full((5, 4, 4), 3), k)
    assert collapsed["fraction_used"] == pytest.approx(1 / k)
    assert collapsed["perplexity"] == pytest.approx(1.0)
    with pytest.raises(ReconInputError, match="codes must lie"):
        codebook_usage(torch.tensor([0, k]), k)


def test_held_out_images_are_deterministic_and_not_training_data():
    a, b = held_out_images(8), held_out_images(8)
    assert a.dtype == torch.uint8 and a.shape == (8, 3, 64, 64)
    assert torch.equal(a, b)
    train = torch.stack([torch.from_numpy(make_sample(i, ShapesWorldConfig(seed=0)).image) for i in range(8)])
    train = train.permute(0, 3, 1, 2)
    assert not any(torch.equal(x, y) for x in a for y in train)


def test_round_trip_identity_keeps_every_scene(prompts):
    rt = judge_round_trip(IdentityTokenizer(), prompts, batch_size=7)
    assert rt["scenes"] == len(prompts)
    assert rt["accepted_before"] == len(prompts)  # clean renders of scenes built from the spec
    assert rt["accepted_after"] == rt["accepted_before"]
    assert rt["rate"] == 1.0 and rt["failures"] == []


def test_round_trip_blank_decoder_loses_every_scene(prompts):
    rt = judge_round_trip(WhiteTokenizer(), prompts)
    assert rt["accepted_before"] == len(prompts)
    assert rt["accepted_after"] == 0 and rt["rate"] == 0.0
    assert len(rt["failures"]) == min(20, len(prompts))
    assert set(rt["failures"][0]) == {"id", "en"} and rt["failures"][0]["id"] == prompts[0]["id"]


def test_reconstruct_and_evaluate_a_tiny_real_tokenizer(prompts):
    torch.manual_seed(0)
    tok = ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16]))
    images = held_out_images(5)
    recon, codes = reconstruct(tok, images, batch_size=2)
    assert recon.dtype == torch.uint8 and recon.shape == images.shape
    assert codes.dtype == torch.long and codes.shape == (5, 8, 8)
    assert tok.training  # the mode is restored
    res = evaluate_tokenizer(tok, num=16, prompts=prompts[:6])
    keys = {"num_images", "psnr", "ssim", "codebook_size", "tokens_per_image", "codes_used", "fraction_used"}
    assert keys | {"perplexity", "round_trip"} == set(res)
    assert all(math.isfinite(res[k]) for k in keys | {"perplexity"})
    assert res["tokens_per_image"] == 64 and res["codebook_size"] == 1000
    rt = res["round_trip"]
    assert rt["scenes"] == 6 and rt["accepted_before"] == 6 and math.isfinite(rt["rate"])


def test_patch_discriminator_shapes():
    disc = PatchDiscriminator(DiscriminatorConfig(channels=8, layers=3))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert disc(x).shape == (2, 1, 6, 6)
    assert PatchDiscriminator(DiscriminatorConfig(channels=8, layers=2))(x).shape == (2, 1, 14, 14)
    with pytest.raises(DiscriminatorConfigError, match="layers"):
        DiscriminatorConfig(layers=5)
    with pytest.raises(ValueError, match="expected images"):
        disc(torch.zeros(2, 64, 64))


def test_hinge_losses_on_hand_made_logits():
    real, fake = torch.full((2, 1, 6, 6), 2.0), torch.full((2, 1, 6, 6), -2.0)
    assert hinge_d_loss(real, fake).item() == 0.0  # both beyond the margin
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(1.0)
    assert hinge_d_loss(real, -fake).item() == pytest.approx(1.5)  # fake scored +2: 0.5 * (0 + 3)
    assert hinge_g_loss(torch.zeros(2, 1, 6, 6)).item() == 0.0
    assert hinge_g_loss(torch.full((3,), 1.5)).item() == pytest.approx(-1.5)
