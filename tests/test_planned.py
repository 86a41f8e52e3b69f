"""Planned generation with tiny models: a planner and a painter overfit a handful of scenes, the pixel judge
passes on their output, generation never touches the renderer or the rule-based parser, and seeds reproduce."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lm_batch_loss, make_tiny_hf_lm, overfit

from lvg.data.layout import Layout, LayoutError, LayoutObject
from lvg.models.painter import Painter
from lvg.models.planner import PlannerSize, PlanVocab, build_planner_lm, planner_batch
from lvg.pipelines import load_pipeline
from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline, PromptError
from lvg.tokenizers.image import ImageTokenizer
from lvg.tokenizers.layout import LayoutTokenizer
from lvg.tokenizers.text import load_text_tokenizer
from lvg.train.painter import PainterModelConfig, shapes_world_painter_config, targets
from lvg.train.planner import shapes_world_layout_config
from lvg.worlds.shapes.captions import describe_fully, spec_to_text
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.scene_layout import layout_from_scene
from lvg.worlds.shapes.world import Scene, sample_scene

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "shapes-default"


def _scenes() -> list[Scene]:
    rng = random.Random(3)
    return [sample_scene(rng) for _ in range(4)]


def _prompts(scenes: list[Scene]) -> list[str]:
    return [spec_to_text(describe_fully(s), "en") for s in scenes]


@pytest.fixture(scope="module")
def tiny_planned(tmp_path_factory) -> Path:
    """A tiny planner and painter overfit on four scenes (prompt = the full canonical caption), saved as a folder (the
    painter's trunk at half the token grid, ``upsample=2``: 15 s of overfitting instead of 23)."""
    torch.manual_seed(0)
    scenes = _scenes()
    text_tok = load_text_tokenizer(MODEL / "text_tokenizer")
    lay_cfg = shapes_world_layout_config()
    vocab = PlanVocab.from_tokenizer(text_tok, lay_cfg, 96)
    lm = build_planner_lm(vocab, PlannerSize(64, 2, 2, 176))
    lay_tok = LayoutTokenizer(lay_cfg)
    text_ids = [text_tok(p, add_special_tokens=False)["input_ids"] for p in _prompts(scenes)]
    batch = planner_batch(text_ids, [lay_tok.encode(layout_from_scene(s)) for s in scenes], vocab)
    assert overfit(lm, lambda: lm_batch_loss(lm, batch), 150) < 0.05
    image_tok = ImageTokenizer.from_pretrained(MODEL / "image_tokenizer")
    painter = Painter(shapes_world_painter_config(image_tok.config.grid, image_tok.config.fsq_levels,
                                                  PainterModelConfig(embed_dim=16, width=32, blocks=2, upsample=2)))  # fmt: skip
    codes = targets(scenes, image_tok)
    t = painter.encode_layouts([layout_from_scene(s) for s in scenes])
    overfit(painter, lambda: painter.loss(painter(t["boxes"], t["words"], t["valid"], t["bg"]), codes), 600)
    lm.eval()
    painter.eval()
    pipe = PlannedPipeline(LayoutPlanner(lm, text_tok, vocab), painter, image_tok)
    return pipe.save_pretrained(tmp_path_factory.mktemp("planned") / "model")


def test_tiny_planner_and_painter_overfit_and_the_judge_passes(tiny_planned):
    pipe = load_pipeline(tiny_planned)
    assert isinstance(pipe, PlannedPipeline)
    scenes = _scenes()
    layouts = pipe.plan(_prompts(scenes), temperature=0, seed=0)
    assert layouts == [layout_from_scene(s) for s in scenes]
    out = pipe(_prompts(scenes), temperature=0, seed=0)
    for im, s in zip(out.images, scenes):
        v = judge(im, describe_fully(s))
        assert v.passed, v.reason
    painted = pipe(layout=[layout_from_scene(s) for s in scenes])  # layout-to-image
    assert all(judge(im, describe_fully(s)).passed for im, s in zip(painted.images, scenes))


def test_generation_never_calls_the_renderer_or_the_rule_based_parser(tiny_planned, monkeypatch):
    import lvg.worlds.shapes.captions
    import lvg.worlds.shapes.parse
    import lvg.worlds.shapes.render
    import lvg.worlds.shapes.spec
    import lvg.worlds.shapes.world

    def forbidden(*a, **k):
        raise AssertionError("generation must not call the procedural renderer, parser or scene sampler")

    for mod, names in [
        (
            lvg.worlds.shapes.render,
            ["render", "render_pil", "inside", "star_polygon", "coverage", "object_alpha", "_patch"],
        ),
        (lvg.worlds.shapes.parse, ["parse_caption", "detect_language"]),
        (lvg.worlds.shapes.spec, ["scene_from_spec", "normalize_spec"]),
        (lvg.worlds.shapes.world, ["sample_scene"]),
    ]:
        for n in names:
            monkeypatch.setattr(mod, n, forbidden)
    pipe = load_pipeline(tiny_planned)
    out = pipe(["a red circle", "三个黄色星形，黑色背景"], num_images=2, seed=1, guidance_scale=2.0)
    assert len(out.images) == 4 and all(im.size == (64, 64) for im in out.images)


def test_seed_reproduces_bytes_and_batching_does_not_matter(tiny_planned):
    pipe = load_pipeline(tiny_planned)
    a = pipe(["a circle", "two stars"], num_images=3, seed=7)
    b = pipe(["a circle", "two stars"], num_images=3, seed=7, batch_size=1)
    alone = pipe("two stars", seeds=[a.seeds[4]])
    assert [np.asarray(x).tobytes() for x in a.images] == [np.asarray(x).tobytes() for x in b.images]
    assert np.asarray(alone.images[0]).tobytes() == np.asarray(a.images[4]).tobytes()
    assert a.layouts == b.layouts


def test_every_sampled_layout_is_valid_and_seeds_vary_it(tiny_planned):
    pipe = load_pipeline(tiny_planned)
    layouts = pipe.plan("a circle", num_images=16, seed=0, temperature=1.5)
    assert all(isinstance(x, Layout) and 1 <= len(x.objects) <= 4 for x in layouts)
    assert len({x.to_json() for x in layouts}) > 1


def test_labels_draw_at_their_own_temperature_and_boxes_at_the_other(tiny_planned, tmp_path):
    import json

    from lvg.sampling import GenerationConfig, GenerationConfigError

    pipe = load_pipeline(tiny_planned)

    def labels(lay: Layout) -> tuple[str, ...]:
        return tuple(o.label for o in lay.objects)

    greedy = pipe.plan("two stars", num_images=1, seed=0, temperature=0)[0]
    boxes_free = pipe.plan("two stars", num_images=16, seed=0, temperature=1.5, label_temperature=0)
    same_bg = [x for x in boxes_free if x.background == greedy.background]  # (the background: at temperature)
    assert same_bg and {labels(x)[0] for x in same_bg} == {labels(greedy)[0]}  # the first label: greedy given it
    assert len({x.to_json() for x in boxes_free}) > 1
    labels_free = pipe.plan("two stars", num_images=16, seed=0, temperature=0, label_temperature=3.0)
    by_labels: dict = {}
    for x in labels_free:  # boxes greedy given the labels: one layout per label sequence
        by_labels.setdefault(labels(x), set()).add(x.to_json())
    assert len(by_labels) > 1 and all(len(v) == 1 for v in by_labels.values())
    one_by_one = pipe.plan("two stars", num_images=16, seed=0, temperature=0, label_temperature=3.0, batch_size=1)
    assert one_by_one == labels_free  # a row's layout never depends on who shares its batch
    pipe.generation_config = pipe.generation_config.replace(label_temperature=1.0)
    saved = json.loads((pipe.save_pretrained(tmp_path / "m") / "model_index.json").read_text())
    assert saved["generation_config"]["label_temperature"] == 1.0
    assert "label_temperature" not in json.loads((tiny_planned / "model_index.json").read_text())["generation_config"]
    with pytest.raises(GenerationConfigError, match="label_temperature"):
        GenerationConfig(label_temperature=-1.0)
    with pytest.raises(GenerationConfigError, match="label_temperature must be 0 .greedy. or at least"):
        GenerationConfig(label_temperature=1e-40)


@pytest.mark.parametrize("prompt", ["", "   ", "\x00\x01", "x" * 10_000])
def test_bad_prompts_give_a_clear_error(tiny_planned, prompt):
    pipe = load_pipeline(tiny_planned)
    with pytest.raises(ValueError) as e:
        pipe(prompt, seed=0)
    assert "prompt" in str(e.value)


@pytest.mark.parametrize(
    "prompt", ["a purple elephant", "ein roter Kreis", "🙂🙂", "A  RED   CIRCLE.", "red\tcircle\n"]
)
def test_prompts_outside_the_grammar_still_give_an_image(tiny_planned, prompt):
    out = load_pipeline(tiny_planned)(prompt, seed=0)
    assert out.images[0].size == (64, 64)


def test_layouts_the_painter_cannot_express_name_the_object_and_field(tiny_planned):
    pipe = load_pipeline(tiny_planned)
    with pytest.raises(LayoutError, match="object 0: field 'label'"):
        pipe(layout=Layout("white", (LayoutObject("purple elephant", (3, 3, 13, 13)),)))
    with pytest.raises(ValueError, match="either prompt or layout"):
        pipe("a circle", layout=Layout("white", (LayoutObject("red circle", (3, 3, 13, 13)),)))
    assert issubclass(PromptError, ValueError)


def test_a_painter_trunk_can_run_coarser_than_the_token_grid():
    """upsample=2: the trunk runs at half the token grid and each cell's head predicts the 2x2 tokens it covers."""
    from lvg.models.painter import PainterConfig

    torch.manual_seed(0)
    image_tok = ImageTokenizer.from_pretrained(MODEL / "image_tokenizer")
    g = image_tok.config.grid
    painter = Painter(
        shapes_world_painter_config(g, image_tok.config.fsq_levels, PainterModelConfig(16, 64, 2, upsample=2))
    )
    scenes = _scenes()[:2]
    t = painter.encode_layouts([layout_from_scene(s) for s in scenes])
    trunk = []
    painter.body.register_forward_hook(lambda m, i, o: trunk.append(o.shape))
    codes = targets(scenes, image_tok)  # [2, g, g]
    overfit(painter, lambda: painter.loss(painter(t["boxes"], t["words"], t["valid"], t["bg"]), codes), 300)
    assert trunk[-1][2:] == (g // 2, g // 2)
    painted = painter.paint([layout_from_scene(s) for s in scenes])
    assert painted.shape == codes.shape and (painted == codes).float().mean() > 0.95
    with pytest.raises(ValueError, match="upsample 3 must divide grid 16"):
        PainterConfig(label_words=["red"], grid=16, upsample=3)


def test_planner_and_painter_train_on_a_user_imagefolder_with_layouts(tmp_path):
    from lvg.train.config import load_config
    from lvg.train.painter import PainterTrainingConfig, train_painter
    from lvg.train.planner import PlannerTrainingConfig, train_planner
    from lvg.worlds.shapes.export import write_imagefolder

    folder = write_imagefolder(tmp_path / "data", 12, seed=5, progress=False)
    common = ["train.steps=2", "train.batch_size=4", "train.eval_every=2", "train.progress=false", "train.device=cpu"]
    pcfg = load_config(PlannerTrainingConfig, None, [
        f"imagefolder={folder}", f"text_tokenizer={MODEL / 'text_tokenizer'}", f"train.out_dir={tmp_path / 'pl'}",
        "model.size.hidden_size=32", "model.size.num_hidden_layers=1", "model.size.num_attention_heads=2",
        "model.size.intermediate_size=64", *common])  # fmt: skip
    planner_dir = train_planner(pcfg)
    planner = LayoutPlanner.from_pretrained(planner_dir)
    from lvg.data.imagefolder import read_layout_rows

    folder_labels = {o.label for r in read_layout_rows(folder) for o in r["layout"].objects}
    assert set(planner.vocab.layout.labels) == folder_labels  # the vocabulary comes from the folder
    layouts = planner.plan_tokens(planner.tokenize(["a red circle"]), [0])
    assert all(o.label in planner.vocab.layout.labels for o in layouts[0].objects)
    qcfg = load_config(PainterTrainingConfig, None, [
        f"imagefolder={folder}", f"image_tokenizer={MODEL / 'image_tokenizer'}", f"train.out_dir={tmp_path / 'pa'}",
        "model.width=16", "model.blocks=1", "model.embed_dim=8", *common])  # fmt: skip
    painter = Painter.from_pretrained(train_painter(qcfg))
    assert painter.paint(layouts).shape[0] == 1
    (folder / "metadata.jsonl").write_text('{"file_name": "00000.png", "text": "x", "objects": [{"label": "a"}]}\n')
    with pytest.raises(ValueError, match="line 1: object 0: field 'box' is missing"):
        train_planner(load_config(PlannerTrainingConfig, None, [f"imagefolder={folder}",
                                                                f"train.out_dir={tmp_path / 'pl2'}"]))  # fmt: skip


def test_planned_quality_report_runs_end_to_end(tiny_planned):
    from lvg.eval.planned import planned_quality
    from lvg.resources import benchmark_prompts_file
    from lvg.worlds.shapes.benchmark import load_prompts

    prompts = load_prompts(benchmark_prompts_file())[::50]
    res = planned_quality(load_pipeline(tiny_planned), prompts, ("en",), extra_per_kind=4)
    en = res["en"]
    assert 0 <= en["benchmark"]["overall"] <= 1 and en["benchmark"]["num_prompts"] == len(prompts)
    assert set(en["multi_object"]["categories"]) == {"objects_3", "objects_4"}
    assert {d["images"] for d in en["diversity"]} == {16}
    assert en["fid_kid_clip"]["fid"] >= 0


def test_cli_generate_plan_layout_and_assemble(tiny_planned, tmp_path, capsys):
    import json as _json

    from lvg.cli import main

    assert main(["generate", "a red circle", "-o", str(tmp_path / "a.png"), "--model", str(tiny_planned),
                 "--seed", "3", "--scale", "2"]) == 0  # fmt: skip
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size == (128, 128)
    capsys.readouterr()
    assert main(["plan", "two stars", "--num-images", "3", "--model", str(tiny_planned)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    (tmp_path / "l.json").write_text(lines[0])
    assert main(["generate", "--layout", str(tmp_path / "l.json"), "-o", str(tmp_path / "l.png"),
                 "--model", str(tiny_planned)]) == 0  # fmt: skip
    out = tmp_path / "assembled"
    assert main(["assemble", str(out), "--planner", str(tiny_planned / "planner"), "--painter",
                 str(tiny_planned / "painter"), "--image-tokenizer", str(tiny_planned / "image_tokenizer")]) == 0  # fmt: skip
    assert _json.loads((out / "model_index.json").read_text())["_class_name"] == "PlannedPipeline"
    a = load_pipeline(out)("a red circle", seed=3)
    b = load_pipeline(tiny_planned)("a red circle", seed=3)
    assert a.layouts == b.layouts  # fp16 storage keeps this tiny planner's choices


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "a circle", "-o", "{tmp}"], "is a directory"),
        (["generate", "a circle", "-o", "{tmp}/x.foo"], "unknown image type"),
        (["generate", "--layout", "{tmp}/missing.json", "-o", "{tmp}/x.png"], "cannot read layout file"),
        (["generate", "a circle", "-o", "{tmp}/x.png", "--seed", str(2**70)], "seed"),
        (["generate", "a circle", "-o", "{tmp}/x.png", "--temperature", "nan"], "temperature"),
    ],
)
def test_cli_bad_arguments_fail_before_any_model_loads(tmp_path, capsys, argv, message):
    from lvg.cli import main

    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--model", str(tmp_path / "no-model")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvg: error:") and message in err and "Traceback" not in err


def test_server_generates_with_a_planned_model_and_says_it_cannot_caption(tiny_planned):
    import base64
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from lvg.serve.app import ServeSettings, create_app

    pipe = load_pipeline(tiny_planned)
    app = create_app(ServeSettings(model_dir=tiny_planned, rate_limit_per_minute=0), pipeline=pipe)
    with TestClient(app) as c:
        r = c.post("/v1/images/generations", json={"prompt": "a red circle", "n": 2, "seed": 5})
        assert r.status_code == 200
        imgs = [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))).convert("RGB") for d in r.json()["data"]]
        solo = pipe("a red circle", num_images=2, seed=5)  # the model's own defaults, as the server uses
        assert [a.tobytes() for a in imgs] == [b.tobytes() for b in solo.images]
        buf = io.BytesIO()
        imgs[0].save(buf, format="PNG")
        r = c.post("/v1/captions", files={"file": ("a.png", buf.getvalue(), "image/png")})
        assert r.status_code == 501 and "cannot caption" in r.json()["error"]["message"]


def test_planner_grows_from_a_local_hf_model(tmp_path):

    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTrainingConfig, train_planner

    hf = tmp_path / "hf"
    vocab = make_tiny_hf_lm(hf)
    cfg = load_config(PlannerTrainingConfig, None, [f"model.init_from={hf}", f"train.out_dir={tmp_path / 'run'}",
                                                    "train.steps=2", "train.batch_size=4", "train.progress=false",
                                                    "eval.prompts_per_category=1", "train.eval_every=2"])  # fmt: skip
    planner = LayoutPlanner.from_pretrained(train_planner(cfg))
    assert planner.vocab.text_vocab_size == len(vocab) + 3  # <pad> <bos> <eos> added
    assert planner.lm.config.vocab_size == planner.vocab.vocab_size
    lay = planner.plan_tokens(planner.tokenize(["a red circle"]), [0])[0]
    assert 1 <= len(lay.objects) <= 4


@pytest.mark.parametrize("which", ["planner", "painter", "reader", "reading-lm"])
def test_training_resumes_to_the_same_weights(tmp_path, which):
    """Stopping after 2 steps and resuming gives bit-identical weights to 4 straight steps (data, optimizer, RNG)."""
    from safetensors.torch import load_file

    from lvg.train.config import load_config
    from lvg.train.painter import PainterTrainingConfig, train_painter
    from lvg.train.planner import PlannerTrainingConfig, train_planner
    from lvg.train.reader import ReaderTrainingConfig, ReadingLMTrainingConfig, train_reader, train_reading_lm

    if which == "reader":
        cls, fn, size = ReaderTrainingConfig, train_reader, ["model.width=16", "model.blocks=1", "eval_scenes=4",
                                                               f"image_tokenizer={MODEL / 'image_tokenizer'}"]  # fmt: skip
    elif which == "reading-lm":
        cls, fn, size = ReadingLMTrainingConfig, train_reading_lm, ["size.hidden_size=32", "size.num_hidden_layers=1",
                                                                      "size.num_attention_heads=2",
                                                                      "size.intermediate_size=64", "eval_captions=2",
                                                                      "eval_questions=1"]  # fmt: skip
    elif which == "planner":
        cls, fn, size = PlannerTrainingConfig, train_planner, ["model.size.hidden_size=32", "model.size.num_hidden_layers=1",
                                                                 "model.size.num_attention_heads=2",
                                                                 "model.size.intermediate_size=64", "eval.prompts_per_category=1"]  # fmt: skip
    else:
        cls, fn, size = PainterTrainingConfig, train_painter, ["model.width=16", "model.blocks=1", "model.embed_dim=8",
                                                                 "eval.scenes=4", f"image_tokenizer={MODEL / 'image_tokenizer'}"]  # fmt: skip

    def cfg(out):
        return load_config(cls, None, [f"train.out_dir={out}", "train.steps=4", "train.batch_size=4", "train.eval_every=2",
                                       "train.ckpt_every=2", "train.progress=false", "train.device=cpu", *size])  # fmt: skip

    straight = fn(cfg(tmp_path / "a"))
    fn(cfg(tmp_path / "b"), stop_after=2)
    resumed = fn(cfg(tmp_path / "b"), resume=True)
    weights = "lm/model.safetensors" if which in ("planner", "reading-lm") else "model.safetensors"
    a, b = load_file(str(straight / weights)), load_file(str(resumed / weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_keep_snapshots_keeps_every_checkpoint_with_cpu_seconds(tmp_path):
    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTrainingConfig, train_planner

    cfg = load_config(PlannerTrainingConfig, None, [f"train.out_dir={tmp_path / 'run'}", "train.steps=4",
                                                    "train.batch_size=4", "train.ckpt_every=2", "train.eval_every=4",
                                                    "train.progress=false", "train.keep_snapshots=true",
                                                    "eval.prompts_per_category=0", "model.size.hidden_size=32",
                                                    "model.size.num_hidden_layers=1", "model.size.num_attention_heads=2",
                                                    "model.size.intermediate_size=64"])  # fmt: skip
    train_planner(cfg)
    snaps = tmp_path / "run" / "snapshots"
    assert sorted(p.name for p in snaps.glob("step-*")) == ["step-2", "step-4"]
    rows = [line.split() for line in (snaps / "cpu.txt").read_text().splitlines()]
    assert [r[0] for r in rows] == ["2", "4"] and float(rows[1][1]) >= float(rows[0][1]) > 0


def test_layout_embeddings_start_at_their_words_and_on_a_smooth_curve():
    """init_layout_embeddings: a label's rows are its words' mean (rescaled), in both the input and the output
    matrix; near locations start nearer than far ones; text rows are untouched."""
    from lvg.models.planner import init_layout_embeddings

    torch.manual_seed(0)
    text_tok = load_text_tokenizer(MODEL / "text_tokenizer")
    vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(1))
    lm = build_planner_lm(vocab, PlannerSize(32, 1, 2, 64))
    before = lm.get_input_embeddings().weight[: vocab.text_vocab_size].clone()
    init_layout_embeddings(lm, vocab, text_tok)
    lay = vocab.layout_tokenizer
    words = text_tok("red circle", add_special_tokens=False)["input_ids"]
    label = vocab.layout_offset + lay.label_offset + list(vocab.layout.labels).index("red circle")
    for matrix in (lm.get_input_embeddings().weight, lm.get_output_embeddings().weight):
        torch.testing.assert_close(matrix[label], matrix[words].mean(0) * len(words) ** 0.5)
    emb = lm.get_input_embeddings().weight
    assert torch.equal(emb[: vocab.text_vocab_size], before)
    locs = emb[vocab.layout_offset + lay.loc_offset :][: lay.num_locs]
    cos = torch.nn.functional.cosine_similarity
    assert cos(locs[30], locs[31], 0) > cos(locs[30], locs[40], 0) > cos(locs[30], locs[60], 0)
