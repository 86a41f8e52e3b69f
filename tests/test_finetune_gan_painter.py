"""Fine-tuning the GAN painter on new labels (``lvg train gan-painter`` with a ``finetune:`` section): LoRA on its
sprite decoder plus the new words' rows, an adapter folder that folds into its base, and the pipeline's GAN painter
adapted by ``load_adapter``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_planned

from lvg.data.layout import Layout, LayoutError
from lvg.models.gan import GanPainter, GanPainterConfig
from lvg.models.painter_adapters import load_painter_adapter
from lvg.pipelines.planned import PlannedPipeline
from lvg.train.config import load_config
from lvg.train.gan import GanPainterTask, GanPainterTrainingConfig, train_gan_painter
from lvg.worlds.shapes.scene_layout import SHAPES_WORLD_BACKGROUNDS, SHAPES_WORLD_LABELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from sun_and_moon import write_folder  # noqa: E402

WORDS = sorted({w for lab in SHAPES_WORLD_LABELS for w in lab.split()})
SUN = Layout.from_json(json.dumps({"background": "black", "objects": [{"label": "golden sun", "box": [8, 8, 32, 32]}]}))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny model folder whose gan_painter knows Shapes World's words only."""
    tmp = tmp_path_factory.mktemp("gan-base")
    code = PlannedPipeline.from_pretrained(make_tiny_planned(tmp / "m", reader=False))
    torch.manual_seed(0)
    gan = GanPainter(GanPainterConfig(label_words=WORDS, backgrounds=list(SHAPES_WORLD_BACKGROUNDS), embed_dim=16,
                                      noise_dim=4, sprite=8, width=16, refine_width=0)).eval()  # fmt: skip
    with torch.no_grad():  # its backgrounds' colours, as a trained one knows them (LoRA does not train them)
        gan.bg_colour.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    return PlannedPipeline(code.planner, code.painter, code.image_tokenizer, gan_painter=gan).save_pretrained(tmp / "b")


def overrides(base: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [f"imagefolder={data}", f"finetune.base={base}", f"train.out_dir={out}", "train.batch_size=8",
            "train.lr=1e-2", "train.warmup_steps=0", "train.log_every=5", "train.ckpt_every=1000", "train.ema_decay=0",
            "train.progress=false", "val_fraction=0.25", "loss.adv_weight=0", "eval.scenes=4", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def adapted(base, tmp_path_factory) -> Path:
    """A LoRA GAN-painter run on 24 sun-and-moon images (new words golden, sun, moon; purple is the base's)."""
    tmp = tmp_path_factory.mktemp("gan-ft")
    data = write_folder(tmp / "sun-moon", 24)
    out = tmp / "run"
    train_gan_painter(load_config(GanPainterTrainingConfig, None, overrides(
        base, data, out, "finetune.method=lora", "finetune.lora.rank=4", "train.steps=30", "train.eval_every=30")))  # fmt: skip
    return out


def test_a_gan_painter_lora_run_learns_and_its_adapter_folds_into_the_base(base, adapted, tmp_path):
    rows = [json.loads(x) for x in (adapted / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert losses[-1] < 0.8 * losses[0]  # it learns the new images
    cfg = load_config(GanPainterTrainingConfig, adapted / "config.json", [])
    task = GanPainterTask(cfg, torch.device("cpu"))  # what trained: LoRA weights and the new words' rows only
    trainable = [n for n, p in task.painter.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)
    assert any("trainable_tokens" in n for n in trainable) and any("c1.lora_A" in n for n in trainable)
    folder = adapted / "painter_adapter"
    meta = json.loads((folder / "lvg_adapter.json").read_text())
    assert meta["role"] == "gan painter" and (folder / "adapter_model.safetensors").is_file()
    base_gan = GanPainter.from_pretrained(base / "gan_painter").eval()
    before = {k: v.clone() for k, v in base_gan.state_dict().items()}
    folded = load_painter_adapter(base_gan, folder)
    saved = GanPainter.from_pretrained(adapted / "painter").eval()
    assert folded.config == saved.config and {"golden", "sun", "moon"} <= set(saved.config.label_words)
    for k, v in saved.state_dict().items():
        torch.testing.assert_close(folded.state_dict()[k], v, msg=k)
    assert all(torch.equal(v, before[k]) for k, v in base_gan.state_dict().items())  # the base is untouched
    n = len(base_gan.config.label_words)  # the base's words keep their rows
    torch.testing.assert_close(saved.words.weight[:n], before["words.weight"])
    with torch.no_grad():
        base_gan.to_rgba.weight.add_(0.01)
    with pytest.raises(ValueError, match="another base painter"):
        load_painter_adapter(base_gan, folder)


def test_the_pipeline_paints_new_labels_with_its_gan_painter_adapted(base, adapted, tmp_path):
    from lvg.cli import main

    pipe = PlannedPipeline.from_pretrained(base)
    with pytest.raises(LayoutError, match="golden"):
        pipe.use_painter("gan")(layout=SUN)
    code_painter = pipe.painter
    pipe.load_adapter(adapted / "painter_adapter")
    assert pipe.painter is code_painter  # the code painter is not the adapter's
    painted = pipe.use_painter("gan")(layout=SUN, seed=0).images[0]
    expected = GanPainter.from_pretrained(adapted / "painter").eval().paint([SUN], [0])  # uint8 [1, 3, H, W]
    assert np.array_equal(np.asarray(painted), expected[0].permute(1, 2, 0).numpy())
    gan_pipe = PlannedPipeline.from_pretrained(base).use_painter("gan").load_adapter(adapted / "painter_adapter")
    assert np.asarray(gan_pipe(layout=SUN, seed=0).images[0]).tobytes() == np.asarray(painted).tobytes()
    with pytest.raises(ValueError, match="no gan_painter"):
        PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "plain", reader=False)).load_adapter(
            adapted / "painter_adapter"
        )
    layout = tmp_path / "sun.json"
    layout.write_text(SUN.to_json(), encoding="utf-8")
    out = tmp_path / "sun.png"
    assert main(["generate", "--layout", str(layout), "--model", str(base), "--painter", "gan", "--adapter",
                 str(adapted / "painter_adapter"), "-o", str(out)]) == 0 and out.is_file()  # fmt: skip


def test_a_full_gan_painter_finetune_and_its_settings(base, tmp_path):
    data = write_folder(tmp_path / "sun-moon", 8)
    saved = train_gan_painter(load_config(GanPainterTrainingConfig, None, overrides(
        base, data, tmp_path / "full", "finetune.method=full", "train.steps=2", "train.eval_every=2")))  # fmt: skip
    assert {"golden", "sun", "moon"} <= set(GanPainter.from_pretrained(saved).config.label_words)
    assert not (tmp_path / "full" / "painter_adapter").exists()
    with pytest.raises(ValueError, match="target_modules"):
        load_config(GanPainterTrainingConfig, None, [f"finetune.base={base}", "finetune.method=lora",
                                                     "finetune.lora.target_modules=[head]"])  # fmt: skip
    with pytest.raises(ValueError, match="needs finetune.base"):
        load_config(GanPainterTrainingConfig, None, ["finetune.method=lora"])
    with pytest.raises(FileNotFoundError, match="gan_painter/"):
        GanPainterTask(load_config(GanPainterTrainingConfig, None, overrides(
            tmp_path / "nothing", data, tmp_path / "x")), torch.device("cpu"))  # fmt: skip


def test_the_server_serves_a_gan_painter_adapter_on_the_model_it_was_trained_on(base, adapted):
    """On a folder's gan_painter, or on a model that paints with that GAN painter (as models/emoji-default does); the
    served adapter paints with the adapted GAN painter either way."""
    from fastapi.testclient import TestClient
    from test_serve import wait_until
    from test_serve_models import app_state

    from lvg.serve.app import ServeSettings, create_app

    folder = PlannedPipeline.from_pretrained(base)
    paints_gan = PlannedPipeline(folder.planner, folder.gan_painter, folder.image_tokenizer)
    settings = ServeSettings(adapters={"sun": adapted / "painter_adapter"})
    for pipe, component in ((folder, "gan_painter"), (paints_gan, "painter")):
        before = getattr(pipe, component)
        with TestClient(create_app(settings, pipelines={"tiny": pipe})) as c:
            wait_until(lambda c=c: c.get("/readyz").json()["status"] == "ready", timeout=60, what="the adapter")
            sun = app_state(c).models["sun"]
            assert (sun.parent, sun.adapts) == ("tiny", ["gan painter"])
            assert c.get("/v1/models/sun").json()["adapts"] == ["gan painter"]
            assert "golden" in sun.pipeline.painter.config.label_words
            assert getattr(pipe, component) is before and "golden" not in before.config.label_words  # base unchanged
