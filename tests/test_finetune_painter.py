"""Fine-tuning the code painter on new labels with peft LoRA (lvg.models.painter_adapters), and applying painter
adapters beside planner adapters."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_planned

from lvg.data.layout import Layout, LayoutError
from lvg.models.painter import Painter
from lvg.models.painter_adapters import load_painter_adapter
from lvg.train.config import load_config
from lvg.train.painter import PainterTrainingConfig, train_painter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from sun_and_moon import write_folder  # noqa: E402

SUN = Layout.from_json(json.dumps({"background": "black", "objects": [{"label": "golden sun", "box": [8, 8, 32, 32]}]}))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_planned(tmp_path_factory.mktemp("base") / "model", reader=False)


@pytest.fixture(scope="module")
def adapted(base, tmp_path_factory) -> Path:
    """A LoRA painter run on 24 sun-and-moon images (new words golden, sun, moon; purple is the base's)."""
    tmp = tmp_path_factory.mktemp("painter")
    data = write_folder(tmp / "sun-moon", 24)
    out = tmp / "run"
    train_painter(load_config(PainterTrainingConfig, None, [
        f"imagefolder={data}", f"image_tokenizer={base / 'image_tokenizer'}", f"finetune.base={base}",
        "finetune.method=lora", "finetune.lora.rank=4", f"train.out_dir={out}", "train.steps=40", "train.batch_size=8",
        "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=20", "train.log_every=5", "train.ckpt_every=1000",
        "train.progress=false", "val_fraction=0.25"]))  # fmt: skip
    return out


def test_a_painter_lora_run_learns_writes_a_peft_adapter_that_folds_into_its_base(base, adapted):
    rows = [json.loads(x) for x in (adapted / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert losses[-1] < 0.8 * losses[0]  # it learns the new images
    folder = adapted / "painter_adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "lvg_adapter.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert json.loads((folder / "lvg_adapter.json").read_text())["role"] == "painter"
    base_painter = Painter.from_pretrained(base / "painter").eval()
    before = {k: v.clone() for k, v in base_painter.state_dict().items()}
    folded = load_painter_adapter(base_painter, folder)
    saved = Painter.from_pretrained(adapted / "painter").eval()
    assert folded.config == saved.config and {"golden", "sun", "moon"} <= set(saved.config.label_words)
    for k, v in saved.state_dict().items():
        torch.testing.assert_close(folded.state_dict()[k], v, msg=k)
    assert all(torch.equal(v, before[k]) for k, v in base_painter.state_dict().items())  # the base is untouched
    n = len(base_painter.config.label_words)  # the base's words keep their rows; the new ones moved
    torch.testing.assert_close(saved.words.weight[:n], before["words.weight"])
    with torch.no_grad():
        base_painter.head.weight.add_(0.01)
    with pytest.raises(ValueError, match="another base painter"):
        load_painter_adapter(base_painter, folder)


def test_a_pipeline_paints_new_labels_only_with_the_painter_adapter(base, adapted, tmp_path, capsys):
    from lvg.cli import main
    from lvg.pipelines import load_pipeline

    pipe = load_pipeline(base)
    with pytest.raises(LayoutError, match="golden"):
        pipe(layout=SUN)
    pipe.load_adapter(adapted / "painter_adapter")
    painted = pipe(layout=SUN, seed=0).images[0]
    assert painted.size == (64, 64)
    merged = load_pipeline(pipe.save_pretrained(tmp_path / "merged"))  # export: a plain model folder, adapter folded in
    assert merged(layout=SUN, seed=0).images[0].tobytes() == painted.tobytes()
    layout = tmp_path / "sun.json"
    layout.write_text(SUN.to_json(), encoding="utf-8")
    out = tmp_path / "sun.png"
    assert main(["generate", "--layout", str(layout), "--model", str(base), "--adapter",
                 str(adapted / "painter_adapter"), "-o", str(out)]) == 0 and out.is_file()  # fmt: skip
    with pytest.raises(ValueError, match="for the .painter., not the planner"):  # no planner adapter
        from lvg.models.adapters import load_adapter

        p = pipe.planner
        load_adapter(p.lm, p.vocab, p.text_tokenizer, adapted / "painter_adapter")


def test_painter_finetune_settings_are_checked_once(base, tmp_path):
    def cfg(*extra: str) -> PainterTrainingConfig:
        return load_config(PainterTrainingConfig, None, [f"finetune.base={base}", *extra])

    with pytest.raises(ValueError, match="finetune.method must be one of full, lora"):
        cfg("finetune.method=prefix")
    with pytest.raises(ValueError, match="target_modules"):
        cfg("finetune.method=lora", "finetune.lora.target_modules=[words]")
    with pytest.raises(ValueError, match="needs finetune.base"):
        load_config(PainterTrainingConfig, None, ["finetune.method=lora"])
