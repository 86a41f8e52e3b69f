"""Image tokenizer: quantisers, API, save/load, training, exact resume, bad files."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from lvg.eval.recon import held_out_images, psnr_ssim, reconstruct
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
from lvg.tokenizers.quantizers import FSQ, L2VQ
from lvg.train.checkpoint import CheckpointError
from lvg.train.common import TrainConfig
from lvg.train.config import ConfigError, load_config
from lvg.train.tokenizer import TokenizerEvalConfig, TokenizerTrainingConfig, train_tokenizer
from lvg.worlds.shapes.dataset import ShapesWorldBatches

TINY = dict(channels=[8, 16, 16])
TINY_PATCH = dict(arch="patch", channels=[16], decoder_res_blocks=2)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [4, 4], [7, 6, 5]])
def test_fsq_codes_and_latents_agree(levels):
    q = FSQ(levels)
    z = torch.randn(4, len(levels), 8, 8) * 3
    z_q, codes, _ = q(z)
    assert codes.min() >= 0 and codes.max() < q.codebook_size
    assert torch.allclose(q.embed(codes), z_q)  # what the decoder sees == what the codes say
    grid = torch.arange(q.codebook_size).view(1, 1, -1)
    assert torch.unique(q.embed(grid).flatten(2), dim=2).shape[2] == q.codebook_size  # every code is distinct


def test_vq_codes_and_latents_agree():
    q = L2VQ(64, dim=4)
    z_q, codes, loss = q(torch.randn(2, 4, 8, 8))
    assert torch.allclose(q.embed(codes), z_q, atol=1e-6) and loss.item() > 0


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
@pytest.mark.parametrize("downsample,grid", [(8, 8), (4, 16)])
def test_encode_decode_shapes(quantizer, downsample, grid):
    ch = TINY["channels"][: {8: 3, 4: 2}[downsample]]
    tok = ImageTokenizer(ImageTokenizerConfig(channels=ch, downsample=downsample, quantizer=quantizer))
    imgs = held_out_images(3)
    codes = tok.encode(imgs)
    assert codes.shape == (3, grid, grid) and codes.dtype == torch.long
    out = tok.decode(codes)
    assert out.shape == (3, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError):
        tok.decode(torch.full((1, grid, grid), tok.codebook_size))
    with pytest.raises(ValueError):
        tok.encode(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
@pytest.mark.parametrize("downsample,grid", [(8, 8), (4, 16)])
def test_patch_arch_encode_decode_shapes(quantizer, downsample, grid):
    tok = ImageTokenizer(ImageTokenizerConfig(**TINY_PATCH, downsample=downsample, quantizer=quantizer)).eval()
    imgs = held_out_images(3)
    codes = tok.encode(imgs)
    assert codes.shape == (3, grid, grid) and codes.dtype == torch.long
    assert tok.decode(codes).shape == (3, 3, 64, 64)


def test_bad_configs():
    for bad in (dict(downsample=3), dict(downsample=8, channels=[8, 16]), dict(quantizer="lfq"), dict(arch="vit"),
                dict(arch="patch", channels=[8, 16]), dict(channels=[2, 16, 16])):  # fmt: skip
        with pytest.raises(ValueError):
            ImageTokenizerConfig(**bad)


@pytest.mark.parametrize("arch", [TINY, TINY_PATCH])
def test_save_load_bit_exact(tmp_path, arch):
    tok = ImageTokenizer(ImageTokenizerConfig(**arch))
    tok.save_pretrained(tmp_path)
    back = ImageTokenizer.from_pretrained(tmp_path)
    for (k, a), (k2, b) in zip(tok.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    imgs = held_out_images(4)
    assert torch.equal(tok.eval().encode(imgs), back.encode(imgs))
    codes = back.encode(imgs)
    assert torch.equal(tok.decode(codes), back.decode(codes))


def test_missing_truncated_and_mismatched_files(tmp_path):
    ImageTokenizer(ImageTokenizerConfig(**TINY)).save_pretrained(tmp_path)
    w = tmp_path / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="safetensors"):
        ImageTokenizer.from_pretrained(tmp_path)
    w.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError):
        ImageTokenizer.from_pretrained(tmp_path)
    w.write_bytes(data)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "channels": [8, 16, 32]}))
    with pytest.raises(ValueError, match="does not match"):
        ImageTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ValueError):
        ImageTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError):
        ImageTokenizer.from_pretrained(tmp_path)


def test_batches_do_not_depend_on_worker_count():
    def first(n_workers, start=0):
        dl = DataLoader(
            ShapesWorldBatches(4, start_batch=start, captions=False), batch_size=None, num_workers=n_workers
        )
        return [b["image"] for _, b in zip(range(4), dl)]

    a, b = first(0), first(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal(first(0, start=2)[0], a[2])


def tiny_config(tmp_path, steps, model=TINY, **train):
    return TokenizerTrainingConfig(
        model=ImageTokenizerConfig(**model),
        train=TrainConfig(
            steps=steps,
            batch_size=8,
            lr=2e-3,
            warmup_steps=2,
            eval_every=1000,
            ckpt_every=1000,
            log_every=2,
            out_dir=str(tmp_path),
            progress=False,
            **train,
        ),  # fmt: skip
        eval=TokenizerEvalConfig(num_images=8, round_trip_prompts=0),
    )


@pytest.mark.parametrize("arch", [TINY, TINY_PATCH])
def test_tiny_training_improves_reconstruction(tmp_path, arch):
    images = held_out_images(32)
    before = psnr_ssim(reconstruct(ImageTokenizer(ImageTokenizerConfig(**arch)), images)[0], images)[0]
    path = train_tokenizer(tiny_config(tmp_path, 60, model=arch))
    after = psnr_ssim(reconstruct(ImageTokenizer.from_pretrained(path), images)[0], images)[0]
    assert after > before + 3, (before, after)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("val/psnr" in r for r in rows) and (tmp_path / "tb").is_dir()


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    straight = ImageTokenizer.from_pretrained(train_tokenizer(tiny_config(tmp_path / "a", 8)))
    cfg = tiny_config(tmp_path / "b", 8)
    train_tokenizer(cfg, stop_after=3)
    with pytest.raises(FileExistsError):
        train_tokenizer(cfg)  # never silently overwrite a run
    resumed = ImageTokenizer.from_pretrained(train_tokenizer(cfg, resume=True))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError):
        train_tokenizer(tiny_config(tmp_path / "c", 8), resume=True)
    (tmp_path / "b" / "checkpoint" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        train_tokenizer(cfg, resume=True)


def test_config_loading(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  downsample: 4\n  channels: [8, 16]\ntrain:\n  lr: 1.0e-3\n")
    cfg = load_config(TokenizerTrainingConfig, f, ["train.steps=7", "model.quantizer=vq", "train.lr=3e-4"])
    assert cfg.model.downsample == 4 and cfg.train.steps == 7 and cfg.model.quantizer == "vq"
    assert cfg.train.lr == pytest.approx(3e-4)
    for bad in (["train.stepz=1"], ["train.steps=many"], ["nokey"], ["model.downsample=3"]):
        with pytest.raises(ConfigError):
            load_config(TokenizerTrainingConfig, f, bad)
    with pytest.raises(FileNotFoundError):
        load_config(TokenizerTrainingConfig, tmp_path / "missing.yaml")
    for shipped in ("configs/tokenizer-shapes.yaml", "configs/tokenizer-shapes-16x16.yaml"):
        from pathlib import Path

        load_config(TokenizerTrainingConfig, Path(__file__).resolve().parents[1] / shipped)


def test_edge_weight_weighs_the_edges_of_objects_only():
    from lvg.tokenizers.image import reconstruction_loss

    img = torch.ones(1, 3, 16, 16)
    img[:, :, 4:10, 4:10] = 0.0  # a black square on white

    def loss_with_error_at(y: int, x: int, edge_weight: float) -> float:
        recon = img * 2 - 1
        recon[0, 0, y, x] += 0.5
        return reconstruction_loss(recon, img, 10.0, edge_weight).item()

    ratio = [loss_with_error_at(4, 4, w) / loss_with_error_at(14, 14, w) for w in (1.0, 4.0)]  # edge / far background
    assert ratio[0] == pytest.approx(10.0) and ratio[1] == pytest.approx(40.0)
    inside = [loss_with_error_at(7, 7, w) / loss_with_error_at(14, 14, w) for w in (1.0, 4.0)]  # flat interior
    assert inside[0] == pytest.approx(10.0) and inside[1] == pytest.approx(10.0)
