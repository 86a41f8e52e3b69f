"""Editing by instruction (issue 22): the edit stream, the masked repaint, and a tiny editor through API, CLI, server."""

from __future__ import annotations

import base64
import io
import random

import numpy as np
import pytest
import torch
from conftest import lm_batch_loss, make_tiny_planned, overfit
from PIL import Image

from lvg.cli import main
from lvg.data.layout import Layout, LayoutObject
from lvg.pipelines.edit import changed_mask, settle
from lvg.worlds.shapes.edits import EDIT_REFUSALS, EDIT_TYPES, make_edit_sample, one_edit
from lvg.worlds.shapes.world import sample_scene

BEFORE = Layout(
    "white", (LayoutObject("red circle", (5, 5, 21, 21)), LayoutObject("blue square", (43, 43, 53, 53))), 64
)
AFTER = Layout(
    "white", (LayoutObject("green circle", (5, 5, 21, 21)), LayoutObject("blue square", (43, 43, 53, 53))), 64
)
ROWS = {"make the circle green": AFTER, "remove the yellow star": "missing", "turn the circle into a dragon": "unknown"}


@pytest.mark.parametrize("kind", EDIT_TYPES)
def test_every_edit_type_changes_what_it_says_and_nothing_else(kind):
    for i in range(30):
        e = make_edit_sample(i, kind=kind)
        assert e.refusal is None and e.kinds == (kind,)
        before, after = e.before.objects, e.after.objects
        if kind == "background":
            assert before == after and e.before.bg != e.after.bg
        elif kind == "add":
            assert after[:-1] == before and len(after) == len(before) + 1
        elif kind == "remove":
            assert len(after) == len(before) - 1 and set(after) < set(before)
        elif kind == "swap":
            assert sum(a != b for a, b in zip(before, after)) == 2
        else:
            assert sum(a != b for a, b in zip(before, after)) == 1


def test_the_edit_stream_is_reproducible_and_refuses_for_every_reason():
    a = [make_edit_sample(i) for i in range(800)]
    assert [s.instruction for s in a] == [make_edit_sample(i).instruction for i in range(800)]
    assert {s.refusal for s in a} == {None, "missing", "unknown", "count", "zero"} <= {None, *EDIT_REFUSALS}
    assert {s.lang for s in a} == {"en", "zh"} and any(len(s.kinds) == 2 for s in a)


def test_edit_type_weights_draw_a_type_more_often_and_bad_weights_are_named():
    from lvg.train.config import load_config
    from lvg.train.planner import PlannerTask, PlannerTrainingConfig
    from lvg.worlds.shapes.edits import EditDataConfig
    from lvg.worlds.shapes.plans import PlanDataConfig

    def swaps(cfg):
        return sum(make_edit_sample(i, cfg).kinds[0] == "swap" for i in range(600))

    assert swaps(EditDataConfig(type_weights={"swap": 4})) > 1.5 * swaps(EditDataConfig())
    assert swaps(EditDataConfig(type_weights={"swap": 0})) == 0
    for bad, says in (({"swop": 1}, "'swop'] are not edit types"), ({"swap": -1}, "finite number >= 0"),
                      ({k: 0 for k in EDIT_TYPES}, "at least one of the edit types")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            EditDataConfig(type_weights=bad)
    with pytest.raises(ValueError, match="edit_type_weights: every weight must be a finite number"):
        PlanDataConfig(edit_type_weights={"swap": float("nan")})  # (the names: checked by the world that draws)
    with pytest.raises(ValueError, match=r"data.edit_type_weights: \['swop'\] are not edit types"):
        PlannerTask(load_config(PlannerTrainingConfig, None, ["data.edit_prob=1.0", "data.edit_type_weights={swop: 1}"]),
                    None)  # fmt: skip


def test_edit_group_prob_repeats_objects_in_edit_scenes_and_is_bounded():
    from lvg.worlds.shapes.edits import EditDataConfig
    from lvg.worlds.shapes.plans import PlanDataConfig, make_plan_sample

    def repeats(group_prob: float) -> int:  # edit scenes with two objects alike (the editor must pick by place)
        lays = [make_edit_sample(i, EditDataConfig(group_prob=group_prob)).before_layout for i in range(300)]
        return sum(len({o.label for o in lay.objects}) < len(lay.objects) for lay in lays)

    assert repeats(0.0) < repeats(0.3) < repeats(0.9)
    assert [make_edit_sample(i).instruction for i in range(60)] == [  # None: the world's own rate (0.3)
        make_edit_sample(i, EditDataConfig(group_prob=0.3)).instruction for i in range(60)
    ]
    grouped = PlanDataConfig(edit_prob=1.0, edit_group_prob=0.9)  # the planner's stream draws its edits so
    assert [make_plan_sample(i, grouped).context for i in range(40)] == [
        make_edit_sample(i, EditDataConfig(group_prob=0.9)).before_layout for i in range(40)
    ]
    for field_name in ("edit_group_prob", "edit_prob", "refusal_prob"):
        with pytest.raises(ValueError, match=field_name):
            PlanDataConfig(**{field_name: 1.5})
    with pytest.raises(ValueError, match="group_prob"):
        EditDataConfig(group_prob=-0.1)


def test_one_edit_leaves_an_object_an_earlier_edit_touched_alone():
    rng = random.Random(0)
    for _ in range(100):
        scene = sample_scene(rng)
        got = one_edit(scene, "recolor", "en", rng, busy=set(range(len(scene.objects))) - {0})
        if got is not None:
            assert all(a == b for a, b in zip(scene.objects[1:], got[1].objects[1:]))


def test_the_repaint_mask_covers_changed_objects_old_and_new_places_only():
    m = changed_mask(BEFORE, AFTER, 64)
    assert m[10, 10] and not m[48, 48] and not m[30, 30]
    moved = Layout("white", (LayoutObject("red circle", (27, 27, 43, 43)), BEFORE.objects[1]), 64)
    m = changed_mask(BEFORE, moved, 64)
    assert m[10, 10] and m[35, 35] and not m[48, 48]
    assert changed_mask(BEFORE, Layout("black", BEFORE.objects, 64), 64).all()
    assert not changed_mask(BEFORE, BEFORE, 64).any()


def test_the_repaint_never_reaches_within_a_pixel_of_a_kept_box():
    """A changed box and its 1 px ring are repainted (anti-aliased edges), but no pixel within 1 px of a kept
    object's box: that box is the reader's, right to about a pixel. In a diagnosis of Emoji World's edits (EN, 40 per
    type: 313 kept emoji, 21 of which lost pixels) the ring had repainted 5 kept emoji; with this rule, 1."""
    before = Layout(
        "white", (LayoutObject("red circle", (10, 10, 20, 20)), LayoutObject("blue square", (21, 10, 31, 20))), 64
    )
    after = Layout("white", (LayoutObject("green circle", (10, 10, 20, 20)), before.objects[1]), 64)
    m = changed_mask(before, after, 64)
    assert m[10:20, 10:20].all()  # the changed box
    assert m[9, 15] and m[15, 9] and m[20, 15]  # its ring where nothing is kept
    assert not m[9:21, 20:32].any()  # the kept square's box and the pixel around it (its ring reaches column 20)
    assert not m[30, 30]


def test_an_object_written_back_a_pixel_off_is_the_object_it_was_given():
    """The reader reads a 16 px box as 15 px (or an emoji's 14 px as 16); the editor writes the box it expects. That
    object is unchanged (its box as given, not repainted) when every side is within 2 px; a resize (3 px a side in both
    worlds: sides 10 / 16 and 14 / 20) or a move is a change, and so is a new label."""
    read = Layout("white", (LayoutObject("blue circle", (4, 24, 19, 40)), LayoutObject("red star", (45, 45, 55, 55))))
    back = Layout("white", (LayoutObject("blue circle", (4, 24, 20, 40)), LayoutObject("red star", (42, 42, 58, 58))))
    settled = settle(read, back)
    assert settled.objects == (read.objects[0], back.objects[1])
    two_off = Layout(
        "white", (LayoutObject("blue circle", (4, 24, 17, 38)), LayoutObject("red star", (45, 45, 55, 55)))
    )
    assert settle(read, two_off) == read
    assert changed_mask(read, settled, 64)[50, 50] and not changed_mask(read, settled, 64)[30, 10]
    recoloured = Layout("white", (LayoutObject("pink circle", (4, 24, 20, 40)),))
    assert settle(read, recoloured) == recoloured
    moved_next_to = Layout("white", (LayoutObject("blue circle", (4, 24, 20, 40)),
                                     LayoutObject("red star", (20, 24, 30, 34))))  # fmt: skip
    near = Layout("white", (LayoutObject("blue circle", (4, 24, 21, 40)),))
    assert settle(near, moved_next_to) == moved_next_to  # the old box would overlap the star: left as written


@pytest.fixture(scope="module")
def editing_model(tmp_path_factory):
    from lvg.models.planner import PlannerSize, PlanVocab, build_planner_lm, edit_prompt, planner_batch
    from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline
    from lvg.train.planner import shapes_world_layout_config

    folder = make_tiny_planned(tmp_path_factory.mktemp("edit") / "m")
    pipe = PlannedPipeline.from_pretrained(folder)
    torch.manual_seed(0)
    tok = pipe.planner.text_tokenizer
    vocab = PlanVocab.from_tokenizer(tok, shapes_world_layout_config(1, EDIT_REFUSALS))
    editor = LayoutPlanner(build_planner_lm(vocab, PlannerSize(32, 1, 2, 64)), tok, vocab)
    lay = editor.layout_tokenizer
    text = [edit_prompt(t, lay.encode(BEFORE), vocab) for t in editor.tokenize(list(ROWS))]
    targets = [lay.encode_refusal(v) if isinstance(v, str) else lay.encode(v) for v in ROWS.values()]
    batch = planner_batch(text, targets, vocab)
    assert overfit(editor.lm, lambda: lm_batch_loss(editor.lm, batch), 200, lr=1e-2) < 0.02
    editor.lm.eval()
    pipe.editor = editor
    pipe.save_pretrained(folder)
    return folder


def test_an_edit_repaints_only_what_changed(editing_model):
    from lvg.pipelines.planned import PlannedPipeline

    pipe = PlannedPipeline.from_pretrained(editing_model)
    assert pipe.can_edit
    start = np.asarray(pipe(layout=BEFORE).images[0])
    out = pipe.edit(start, "make the circle green", layout=BEFORE, temperature=0)
    assert out.layouts == [BEFORE, AFTER] and out.unsupported == [None]
    edited = np.asarray(out.image)
    mask = changed_mask(BEFORE, AFTER, 64)
    assert np.array_equal(edited[~mask], start[~mask])  # the square's pixels (and all others) untouched
    chained = pipe.edit(start, ["make the circle green", "make the circle green"], layout=BEFORE, temperature=0)
    assert len(chained.images) == 2 and len(chained.layouts) == 3


def test_the_editor_keeps_the_likeliest_of_its_candidates_scored_as_the_sampler_draws(editing_model):
    from lvg.models.planner import edit_prompt, plan_prefix
    from lvg.pipelines.planned import PlannedPipeline
    from lvg.sampling.decode import decode_one_token, extend_mask, prefill
    from lvg.sampling.layout import constrain, grammar_mask, layout_logprobs
    from lvg.tokenizers.layout import LAYOUT

    pipe = PlannedPipeline.from_pretrained(editing_model)
    ed = pipe.editor
    ids = edit_prompt(ed.tokenize(["make the circle green"])[0], ed.layout_tokenizer.encode(BEFORE), ed.vocab)
    off = ed.vocab.layout_offset
    rows = ed._rows([ids] * 6, list(range(6)), 1.0, 3.0, 0, 1.0, 64)  # hot: several different layouts
    assert len({tuple(r) for r in rows}) > 1
    prompt = [ed.vocab.bos_id, *ids, off + LAYOUT]
    scores = layout_logprobs(ed.lm, [prompt] * 6, rows, ed.grammar, off, ed.vocab.pad_id)
    # the same log-probabilities, step by step through the KV cache as the sampler computes them
    for row, score in zip(rows, scores):
        x, m = plan_prefix([ids], ed.vocab)
        logits, cache, pos = prefill(ed.lm, x, m)
        total = 0.0
        for j, t in enumerate(row):
            lg = constrain(logits[:, off : off + ed.grammar.tok.vocab_size], grammar_mask(ed.grammar, [row[:j]]))
            total += float(lg.float().log_softmax(-1)[0, t])
            m, pos = extend_mask(m), pos + 1
            logits = decode_one_token(ed.lm, torch.tensor([off + t]), pos, m, cache)
        assert score == pytest.approx(total, abs=1e-3)
    # one candidate is the plain draw; more keep the likeliest, and the first draw is always among them
    one = ed.plan_tokens([ids], [3], 1.0, 3.0, 0, 1.0, 64)
    assert ed.plan_tokens([ids], [3], 1.0, 3.0, 0, 1.0, 64, candidates=1) == one
    with pytest.raises(ValueError, match="guidance_scale 1"):
        ed.plan_tokens([ids], [3], 2.0, 3.0, 0, 1.0, 64, candidates=2)
    best = ed.best_rows([ids], [3], 6, 3.0)[0]
    first = ed._rows([ids], [3], 1.0, 3.0, 0, 1.0, 64)[0]
    score_of = lambda r: layout_logprobs(ed.lm, [prompt], [r], ed.grammar, off, ed.vocab.pad_id)[0]  # noqa: E731
    assert score_of(best) >= score_of(first) - 1e-6
    start = pipe(layout=BEFORE).images[0]
    out = pipe.edit(start, "make the circle green", layout=BEFORE, candidates=4)
    assert out.layouts[-1] == AFTER
    with pytest.raises(ValueError, match="candidates must be an integer from 1 to 64"):
        pipe.edit(start, "make the circle green", layout=BEFORE, candidates=0)


def test_the_editor_is_given_the_layout_in_the_order_it_learned(editing_model, tmp_path):
    from dataclasses import replace

    from lvg.data.layout import line_order, reading_order
    from lvg.pipelines.planned import LayoutPlanner, PlannedPipeline

    # a row of two read a pixel apart: by box centre the right one (a pixel higher) comes first
    row = Layout(
        "white", (LayoutObject("red circle", (5, 6, 21, 22)), LayoutObject("blue square", (43, 5, 59, 21))), 64
    )
    assert reading_order(row).objects != line_order(row).objects == row.objects
    pipe = PlannedPipeline.from_pretrained(editing_model)
    start = pipe(layout=row).images[0]
    assert pipe.edit(start, "make the circle green", layout=row).layouts[0] == reading_order(row)  # as before
    ed = pipe.editor
    vocab = replace(ed.vocab, layout=replace(ed.vocab.layout, order="lines"))
    pipe.editor = LayoutPlanner(ed.lm, ed.text_tokenizer, vocab)
    pipe.save_pretrained(tmp_path / "lines")  # the order is saved with the editor and comes back with it
    again = PlannedPipeline.from_pretrained(tmp_path / "lines")
    assert again.editor.layout_tokenizer.config.order == "lines"
    out = again.edit(start, ["make the circle green", "make the circle green"], layout=reading_order(row))
    assert all(line_order(lay).objects == lay.objects for lay in out.layouts) and out.layouts[0] == row


def test_an_edit_it_cannot_carry_out_names_the_reason(editing_model):
    from lvg.pipelines.planned import PlannedPipeline, UnsupportedPromptError

    pipe = PlannedPipeline.from_pretrained(editing_model)
    start = pipe(layout=BEFORE).images[0]
    with pytest.raises(UnsupportedPromptError, match="cannot carry out 'remove the yellow star'.*reason: missing"):
        pipe.edit(start, "remove the yellow star", layout=BEFORE)
    with pytest.raises(UnsupportedPromptError, match="reason: unknown"):
        pipe.edit(start, "turn the circle into a dragon", layout=BEFORE)
    out = pipe.edit(start, "remove the yellow star", layout=BEFORE, allow_unsupported=True)
    assert out.unsupported == ["missing"]
    no_editor = PlannedPipeline.from_pretrained(make_tiny_planned(editing_model.parent / "plain"))
    with pytest.raises(ValueError, match="no editor"):
        no_editor.edit(start, "make the circle green")


def test_lvg_edit_and_the_server_route(editing_model, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from lvg.pipelines.planned import PlannedPipeline
    from lvg.serve.app import ServeSettings, create_app

    pipe = PlannedPipeline.from_pretrained(editing_model)
    src = tmp_path / "in.png"
    pipe(layout=BEFORE).images[0].save(src)
    rc = main(["edit", str(src), "make the circle green", "-o", str(tmp_path / "out.png"), "--model",
               str(editing_model), "--allow-unsupported"])  # fmt: skip
    assert rc == 0 and Image.open(tmp_path / "out.png").size == (64, 64), capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main(["edit", str(tmp_path / "bad.png"), "x", "-o", str(tmp_path / "o.png"), "--model",
                 str(editing_model)]) == 2  # fmt: skip
    assert "bad.png" in capsys.readouterr().err
    png = src.read_bytes()
    with TestClient(create_app(ServeSettings(), pipeline=pipe)) as client:
        r = client.post("/v1/images/edits", files={"image": ("a.png", png, "image/png")},
                        data={"prompt": "make the circle green", "allow_unsupported": "true"})  # fmt: skip
        assert r.status_code == 200
        assert Image.open(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"]))).size == (64, 64)
        r = client.post("/v1/images/edits", files={"image": ("a.txt", b"hello", "text/plain")}, data={"prompt": "x"})
        assert r.status_code == 415
    plain = PlannedPipeline.from_pretrained(make_tiny_planned(tmp_path / "plain"))
    with TestClient(create_app(ServeSettings(), pipeline=plain)) as client:
        r = client.post("/v1/images/edits", files={"image": ("a.png", png, "image/png")}, data={"prompt": "x"})
        assert r.status_code == 501


def test_guidance_dropout_drops_plain_prompts_only(monkeypatch):
    """A planner trained on plans and edits drops plain prompts for guidance, never an edit's instruction and layout
    (nor a refusal's prompt)."""
    from types import SimpleNamespace

    from conftest import TEXT_TOKENIZER

    import lvg.train.planner as tp
    from lvg.models.planner import PlanVocab
    from lvg.tokenizers.layout import LayoutTokenizer
    from lvg.tokenizers.text import load_text_tokenizer
    from lvg.train.planner import PlannerTask, _FolderSample, shapes_world_layout_config
    from lvg.worlds.shapes.edits import EDIT_REFUSALS

    text_tok = load_text_tokenizer(TEXT_TOKENIZER)
    vocab = PlanVocab.from_tokenizer(text_tok, shapes_world_layout_config(1, EDIT_REFUSALS))
    task = SimpleNamespace(vocab=vocab, text_tok=text_tok, layout_tok=LayoutTokenizer(vocab.layout))
    seen = {}
    monkeypatch.setattr(tp, "planner_batch", lambda text, lay, v, drop: seen.setdefault("drop", drop))
    samples = [_FolderSample("a red circle", BEFORE), _FolderSample("make the circle green", AFTER, None, BEFORE),
               _FolderSample("a golden dragon", None, "unknown")]  # fmt: skip
    PlannerTask.encode(task, samples, [True, True, True])
    assert seen["drop"] == [True, False, False]
