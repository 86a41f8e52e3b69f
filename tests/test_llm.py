"""The unified LM: sequences, overfit-then-generate, pipeline, seeds, grow-from-HF, trainer, CLI."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_hf_lm
from PIL import Image

from lvg.models.unified import (
    VocabLayout,
    build_lm,
    grow_from_pretrained,
    position_ids,
    t2i_prefix,
    tokenize_texts,
    training_batch,
    weighted_lm_loss,
)  # fmt: skip
from lvg.pipelines.pipeline import Pipeline
from lvg.tokenizers.image import ImageTokenizer, ImageTokenizerConfig
from lvg.tokenizers.text import load_text_tokenizer
from lvg.train.common import TrainConfig
from lvg.train.llm import LLMDataConfig, LLMEvalConfig, LLMTrainingConfig, LMConfig, train_llm
from lvg.worlds.shapes.captions import describe_fully, spec_to_text
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.world import Obj, Scene

TEXT_TOKENIZER = Path(__file__).resolve().parents[1] / "models" / "shapes-default" / "text_tokenizer"


class PatchTokenizer(torch.nn.Module):
    """Test double: an exact VQ whose codebook is the distinct 8x8 patches of a few images."""

    def __init__(self, images: torch.Tensor):  # uint8 [N, 3, 64, 64]
        super().__init__()
        patches = images.unfold(2, 8, 8).unfold(3, 8, 8).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * 64)
        self.register_buffer("book", torch.unique(patches, dim=0))  # [K, 192]
        self.config = ImageTokenizerConfig(channels=[8, 16, 16])
        self.codebook_size = len(self.book)

    @property
    def device(self):
        return self.book.device

    def encode(self, images):
        if images.dtype != torch.uint8:
            images = (images * 255).round().to(torch.uint8)
        p = images.unfold(2, 8, 8).unfold(3, 8, 8).permute(0, 2, 3, 1, 4, 5).reshape(images.shape[0], 64, 1, 192)
        return (p.float() - self.book.float()[None, None]).abs().sum(-1).argmin(-1).view(-1, 8, 8)

    def decode(self, codes):
        p = self.book[codes.reshape(-1)].view(-1, 8, 8, 3, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(-1, 3, 64, 64)
        return p.float() / 255


SCENES = [
    Scene((Obj("circle", "red", "large", (1, 1)),), "white"),
    Scene((Obj("square", "blue", "small", (0, 0)), Obj("star", "yellow", "large", (2, 2))), "black"),
    Scene((Obj("triangle", "green", "large", (0, 2)), Obj("cross", "pink", "small", (2, 0))), "white"),
    Scene((Obj("diamond", "purple", "large", (1, 0)),), "black"),
]


@pytest.fixture(scope="module")
def overfit_pipe():
    torch.manual_seed(0)
    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    images = torch.from_numpy(np.stack([render(s) for s in SCENES])).permute(0, 3, 1, 2)
    img_tok = PatchTokenizer(images)
    layout = VocabLayout.from_tokenizers(text_tok, img_tok.codebook_size, 64, max_text_tokens=48)
    lm = build_lm(layout, "tiny")
    codes = img_tok.encode(images)
    rows = [(i, lang) for i in range(len(SCENES)) for lang in ("en", "zh")]
    texts = [spec_to_text(describe_fully(SCENES[i]), lang) for i, lang in rows]
    ids = tokenize_texts(text_tok, texts, layout.max_text_tokens)
    idx = [i for i, _ in rows]
    langs = [lang for _, lang in rows]
    n = len(rows)
    batch = training_batch(codes[idx].repeat(2, 1, 1), ids * 2, langs * 2, [True] * n + [False] * n, [False] * 2 * n,
                           layout)  # fmt: skip
    opt = torch.optim.AdamW(lm.parameters(), lr=4e-3)
    for _ in range(200):
        logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"]).logits  # fmt: skip
        loss, _ = weighted_lm_loss(logits, batch["labels"], batch["is_image"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05, loss.item()
    return Pipeline(lm.eval(), img_tok, text_tok, layout)


def test_training_batch_layout():
    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    layout = VocabLayout.from_tokenizers(text_tok, 1000, 64)
    codes = torch.randint(0, 1000, (3, 8, 8))
    ids = tokenize_texts(text_tok, ["a red circle", "一个红色圆形", "a star"], 64)
    b = training_batch(codes, ids, ["en", "zh", "en"], [True, True, False], [False, True, False], layout)
    L = len(ids[0])  # the longest caption of a text -> image row that keeps its caption
    assert (b["input_ids"][:2, L + 1] == layout.boi_id).all()  # images start at the same index
    assert b["input_ids"][1, L] == layout.bos_id  # dropped caption: <bos> <boi>
    assert torch.equal(b["labels"][0, L + 2 : L + 66] - layout.image_offset, codes[0].flatten())
    assert b["input_ids"][2, 67] == layout.en_id and b["labels"][2, 67] == -100  # language tag, no loss
    assert b["is_image"][:2].sum() == 2 * 65 and not b["is_image"][2].any()
    with pytest.raises(ValueError, match="at most 64"):
        tokenize_texts(text_tok, ["a red circle " * 40], 64)


def test_padding_amount_changes_no_real_logit():
    """Batches pad to their longest caption, generation pads to max_text_tokens: same logits either way."""
    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    layout = VocabLayout.from_tokenizers(text_tok, 1000, 64)
    lm = build_lm(layout, "tiny").eval()
    codes = torch.randint(0, 1000, (2, 8, 8))
    ids = tokenize_texts(text_tok, ["a red circle", "一个红色圆形在一个大的蓝色正方形的左边"], 64)
    pair = training_batch(codes, ids, ["en", "zh"], [True, True], [False, False], layout)
    alone = training_batch(codes[:1], ids[:1], ["en"], [True], [False], layout)
    assert alone["input_ids"].shape[1] < pair["input_ids"].shape[1] == len(ids[1]) + 64 + 3

    def real_logits(b, row):
        with torch.no_grad():
            out = lm(input_ids=b["input_ids"], attention_mask=b["attention_mask"], position_ids=b["position_ids"])
        return out.logits[row][b["attention_mask"][row].bool()]

    assert torch.allclose(real_logits(pair, 0), real_logits(alone, 0), atol=1e-5)
    # generation's prefix (padded to max_text_tokens) predicts the first image token like training does
    prefix_ids, prefix_mask = t2i_prefix([ids[0]], layout)
    with torch.no_grad():
        gen = lm(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=position_ids(prefix_mask)).logits
    assert torch.allclose(gen[0, -1], real_logits(alone, 0)[len(ids[0]) + 1], atol=1e-5)


def test_overfit_model_generates_its_scenes_and_the_judge_passes(overfit_pipe):
    for lang in ("en", "zh"):
        prompts = [spec_to_text(describe_fully(s), lang) for s in SCENES]
        out = overfit_pipe(prompts, guidance_scale=1.0, temperature=0.0, seed=0)
        for img, prompt in zip(out.images, prompts, strict=True):
            assert judge(img, prompt).passed, prompt


def test_overfit_model_captions_its_scenes(overfit_pipe):
    for lang in ("en", "zh"):
        caps = overfit_pipe.caption([render(s) for s in SCENES], lang=lang)
        assert caps == [spec_to_text(describe_fully(s), lang) for s in SCENES]
        assert overfit_pipe.caption(Image.fromarray(render(SCENES[0])).resize((256, 256), Image.NEAREST), lang=lang,
                                    num_beams=3) == caps[0]  # fmt: skip


def test_seeds_reproduce_and_batching_does_not_matter(overfit_pipe):
    p = "a red circle"
    a = overfit_pipe(p, num_images=3, seed=7, guidance_scale=2.0)
    b = overfit_pipe(p, num_images=3, seed=7, guidance_scale=2.0, batch_size=1)
    assert [x.tobytes() for x in a.images] == [x.tobytes() for x in b.images] and a.seeds == [7, 8, 9]
    c = overfit_pipe(["a blue square", p], seed=6, guidance_scale=2.0)
    assert c.images[1].tobytes() == a.images[0].tobytes()  # image j uses seed + j, whoever shares the batch
    assert torch.equal(overfit_pipe(p, seed=1).codes, overfit_pipe(p, seed=1).codes)


def test_free_text_still_generates(overfit_pipe):
    out = overfit_pipe(["a purple hippo riding a bicycle 🚲", "一只戴帽子的猫"], seed=0)
    assert len(out.images) == 2 and out.images[0].size == (64, 64)


@pytest.mark.parametrize("kwargs", [dict(guidance_scale=-1.0), dict(num_images=0), dict(num_images=10_000),
                                    dict(top_p=0.0), dict(temperature=-1.0), dict(prompt="")])  # fmt: skip
def test_invalid_arguments(overfit_pipe, kwargs):
    kwargs = {"prompt": "a red circle", **kwargs}
    with pytest.raises(ValueError):
        overfit_pipe(**kwargs)


def test_bad_model_dirs_and_images(overfit_pipe, tmp_path):
    with pytest.raises(FileNotFoundError):
        Pipeline.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        Pipeline.from_pretrained(tmp_path)
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        overfit_pipe.caption(str(tmp_path / "x.png"))
    with pytest.raises(ValueError):
        overfit_pipe.caption(np.zeros((64, 32, 3), np.uint8))
    with pytest.raises(ValueError):
        overfit_pipe.caption(render(SCENES[0]), lang="fr")


def test_save_and_load_pipeline(tiny_pipeline_dir):
    a = Pipeline.from_pretrained(tiny_pipeline_dir)
    b = Pipeline.from_pretrained(tiny_pipeline_dir)
    assert torch.equal(a("a star", seed=3).codes, b("a star", seed=3).codes)
    index = json.loads((tiny_pipeline_dir / "model_index.json").read_text())
    assert set(index["components"]) == {"text_tokenizer", "image_tokenizer", "lm"}
    assert (tiny_pipeline_dir / "lm" / "model.safetensors").is_file()


def test_truncated_lm_weights_are_a_clear_error(tiny_pipeline_dir, tmp_path):
    import shutil

    d = tmp_path / "p"
    shutil.copytree(tiny_pipeline_dir, d)
    w = d / "lm" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(ValueError):
        Pipeline.from_pretrained(d)


def test_cli_generate_and_caption(tiny_pipeline_dir, tmp_path, capsys):
    from lvg.cli import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n一个蓝色正方形\nfree text\n", encoding="utf-8")
    # once as its own process (``python -m lvg.cli``), the rest in this one (each process costs seconds of imports)
    r = subprocess.run([sys.executable, "-m", "lvg.cli", "generate", "--prompts", str(prompts), "--out-dir",
                        str(tmp_path / "o"), "--model", str(tiny_pipeline_dir)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert main(["generate", "a star", "-o", str(tmp_path / "s.png"), "--num-images", "2", "--model",
                 str(tiny_pipeline_dir), "--scale", "2"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "s-1.png").size == (128, 128)
    capsys.readouterr()
    assert main(["caption", str(tmp_path / "o" / "00000.png"), str(tmp_path / "o" / "00001.png"), "--model",
                 str(tiny_pipeline_dir), "--lang", "zh"]) == 0  # fmt: skip
    assert len(capsys.readouterr().out.splitlines()) == 2
    for bad in (["generate", "x", "-o", str(tmp_path / "y.png"), "--model", str(tmp_path / "none")],
                ["generate", "x", "-o", str(tmp_path / "y.png"), "--guidance-scale", "-2", "--model", str(tiny_pipeline_dir)],
                ["generate", "x", "-o", str(tmp_path / "y.png"), "--num-images", "10000", "--model", str(tiny_pipeline_dir)],
                ["caption", str(tmp_path / "missing.png"), "--model", str(tiny_pipeline_dir)]):  # fmt: skip
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("lvg: error:") and len(err.splitlines()) == 1, err


def tiny_llm_config(tmp_path, tok_dir, steps=6, **model):
    return LLMTrainingConfig(
        model=LMConfig(preset="tiny", max_text_tokens=64, **model), image_tokenizer=str(tok_dir),
        text_tokenizer=str(TEXT_TOKENIZER), data=LLMDataConfig(seed=0),
        eval=LLMEvalConfig(prompts_per_category=1, captions=4, guidance_scale=2.0),
        train=TrainConfig(steps=steps, batch_size=8, lr=1e-3, warmup_steps=2, eval_every=1000, ckpt_every=1000,
                          log_every=2, out_dir=str(tmp_path), progress=False),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_image_tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgtok")
    ImageTokenizer(ImageTokenizerConfig(channels=[8, 16, 16], fsq_levels=[4, 4])).save_pretrained(d)
    return d


def test_trainer_runs_resumes_exactly_and_saves_a_pipeline(tmp_path, tiny_image_tokenizer):
    straight = train_llm(tiny_llm_config(tmp_path / "a", tiny_image_tokenizer))
    cfg = tiny_llm_config(tmp_path / "b", tiny_image_tokenizer)
    train_llm(cfg, stop_after=2)
    resumed = train_llm(cfg, resume=True)
    a, b = Pipeline.from_pretrained(straight), Pipeline.from_pretrained(resumed)
    for x, y in zip(a.lm.state_dict().values(), b.lm.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("val/acc_en" in r for r in rows) and any("val/caption_exact_en" in r for r in rows)


def test_grow_from_a_local_hf_model(tmp_path, tiny_image_tokenizer):
    hf = tmp_path / "hf"
    vocab = make_tiny_hf_lm(hf)
    lm, tok, layout = grow_from_pretrained(hf, codebook_size=16, image_tokens=64)
    assert layout.text_vocab_size == len(vocab) + 7 and lm.config.vocab_size == layout.vocab_size
    assert tok.convert_tokens_to_ids("<boi>") == layout.boi_id
    path = train_llm(tiny_llm_config(tmp_path / "run", tiny_image_tokenizer, steps=3, init_from=str(hf)))
    pipe = Pipeline.from_pretrained(path)
    assert len(pipe("abc", seed=0).images) == 1
    with pytest.raises(FileNotFoundError):
        grow_from_pretrained(tmp_path / "nothing", 16, 64)


def test_unconditional_prefix_is_the_text_free_prompt():
    layout = VocabLayout(552, 16, 64, 0, 1, 2, 3, 4, 5, 6, max_text_tokens=8)
    ids, mask = t2i_prefix([[9, 10], None], layout)
    assert ids[0, -4:].tolist() == [1, 9, 10, 3] and ids[1, -2:].tolist() == [1, 3] and mask[1].sum() == 2
    rng = random.Random(0)
    assert rng  # (kept simple: prefixes are plain tensors)


def test_export_fp16_keeps_memory_weights_and_reloads(tiny_pipeline_dir, tmp_path):
    from lvg.cli import main

    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    before = {k: v.clone() for k, v in pipe.lm.state_dict().items()}
    pipe.save_pretrained(tmp_path / "half", dtype=torch.float16)
    assert all(torch.equal(before[k], v) for k, v in pipe.lm.state_dict().items())  # in memory: untouched
    size = lambda d: sum(f.stat().st_size for f in d.rglob("*.safetensors"))  # noqa: E731
    assert size(tmp_path / "half") < 0.6 * size(tiny_pipeline_dir)
    assert main(["export", str(tiny_pipeline_dir), str(tmp_path / "cli"), "--dtype", "bfloat16"]) == 0
    half = Pipeline.from_pretrained(tmp_path / "half")
    assert half("a red circle", seed=0).codes.shape == (1, 8, 8)
