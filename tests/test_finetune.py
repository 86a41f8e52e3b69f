"""Fine-tuning a planner from a base with peft (lvg.models.adapters): new labels, LoRA, freezing, adapters as files."""

from __future__ import annotations

import json
from pathlib import Path

import golden_train
import pytest
import torch
from conftest import make_tiny_planned, write_layout_folder

from lvg.data.layout import Layout, LayoutObject
from lvg.models.adapters import load_adapter, transplant, weights_sha256
from lvg.models.planner import PlanVocab, load_lm_folder
from lvg.pipelines.planned import LayoutPlanner
from lvg.train.config import load_config
from lvg.train.planner import PlannerTrainingConfig, folder_layout_config, train_planner

MODEL = golden_train.MODEL
NEW = {"a purple moon": ("purple moon", [8, 8, 40, 40]), "a golden sun": ("golden sun", [24, 20, 60, 56])}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny untrained planned model (its planner: d=32, 1 layer) to adapt."""
    return make_tiny_planned(tmp_path_factory.mktemp("base") / "model", reader=False)


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> Path:
    """A user folder whose two labels the base never saw."""
    return write_layout_folder(tmp_path_factory.mktemp("data") / "moons", NEW)


def finetune(base: Path, data: Path, out: Path, method: str, steps: int = 60, *extra: str) -> Path:
    return train_planner(load_config(PlannerTrainingConfig, None, [
        f"imagefolder={data}", f"train.out_dir={out}", f"finetune.base={base}", f"finetune.method={method}",
        f"train.steps={steps}", "train.batch_size=8", "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=1000",
        "train.ckpt_every=1000", "train.log_every=1000", "train.progress=false", "val_fraction=0.25",
        "cond_dropout=0", "model.bins_per_px=1", *extra]))  # fmt: skip


def assert_same_lm(a, b, tok, vocab: PlanVocab, text: str = "a purple moon") -> None:
    """Two LMs give the same logits on ``text``."""
    ids = torch.tensor([[vocab.bos_id, *tok(text, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        torch.testing.assert_close(a(input_ids=ids).logits, b(input_ids=ids).logits, atol=1e-5, rtol=1e-4)


def greedy_layouts(planner_dir: Path, prompts: list[str]) -> list[Layout]:
    lm, tok, vocab = load_lm_folder(planner_dir)
    planner = LayoutPlanner(lm.eval(), tok, vocab)
    return planner.plan_tokens(planner.tokenize(prompts), [0] * len(prompts), 1.0, 1e-4, 0, 1.0, 8)


def test_transplant_keeps_the_rows_both_vocabularies_name_and_starts_new_labels_at_their_words(base, moons):
    from lvg.data.imagefolder import read_rows

    lm, tok, old = load_lm_folder(base / "planner")
    new = PlanVocab.from_tokenizer(tok, folder_layout_config(read_rows(moons, layouts=True), 1), old.max_text_tokens)
    out, new_ids = transplant(lm, old, new, tok)
    emb, base_emb = out.get_input_embeddings().weight, lm.get_input_embeddings().weight
    assert torch.equal(emb[: old.text_vocab_size], base_emb[: old.text_vocab_size])
    lay_old, lay_new = old.layout_tokenizer, new.layout_tokenizer
    for i in range(lay_new.num_locs):  # the same canvas: every location keeps its row
        assert torch.equal(emb[new.layout_offset + lay_new.loc_offset + i],
                           base_emb[old.layout_offset + lay_old.loc_offset + i])  # fmt: skip
    moon = new.layout_offset + lay_new.label_offset + list(new.layout.labels).index("purple moon")
    assert moon in new_ids and len(new_ids) == 2  # the two new labels; "white" was a base background
    words = tok("purple moon", add_special_tokens=False)["input_ids"]
    torch.testing.assert_close(emb[moon], base_emb[words].mean(0) * len(words) ** 0.5)


@pytest.mark.parametrize("method", ["lora", "freeze", "full"])
def test_a_finetuned_planner_learns_new_labels(base, moons, tmp_path, method):
    planner_dir = finetune(base / "planner", moons, tmp_path / method, method)
    got = greedy_layouts(planner_dir, list(NEW))
    # the first object is the one each prompt names (the base's grammar allows up to 4 objects, and a tiny random
    # base does not learn where to stop within these few steps under freeze or LoRA)
    assert [lay.objects[0].label for lay in got] == [label for label, _ in NEW.values()]
    assert (tmp_path / method / "adapter").is_dir() == (method == "lora")


def test_freeze_trains_only_the_chosen_layers_and_the_new_rows(tmp_path, moons):
    base = make_tiny_planned(tmp_path / "base2", reader=False)
    # two layers, so one stays frozen (make_tiny_planned's planner has one): grow a second
    lm, tok, vocab = load_lm_folder(base / "planner")
    from lvg.models.planner import PlannerSize, build_planner_lm

    torch.manual_seed(1)
    two = build_planner_lm(vocab, PlannerSize(32, 2, 2, 64))
    LayoutPlanner(two, tok, vocab).save_pretrained(tmp_path / "two")
    out = finetune(tmp_path / "two", moons, tmp_path / "frozen", "freeze", 5, "finetune.train_layers=[-1]")
    after, _, new = load_lm_folder(out)
    before = two.state_dict()
    for k, v in after.state_dict().items():
        if k.startswith("model.layers.0.") or k == "model.norm.weight":
            torch.testing.assert_close(v, before[k], msg=k)
    assert not torch.allclose(after.model.layers[1].mlp.down_proj.weight, two.model.layers[1].mlp.down_proj.weight)
    text = vocab.text_vocab_size
    torch.testing.assert_close(after.get_input_embeddings().weight[:text], two.get_input_embeddings().weight[:text])


def test_a_lora_adapter_loads_on_its_base_merges_to_the_same_planner_and_refuses_another_base(base, moons, tmp_path):
    planner_dir = finetune(base / "planner", moons, tmp_path / "lora", "lora", 20)
    adapter = tmp_path / "lora" / "adapter"
    assert {p.name for p in adapter.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors",
                                                  "lvg_adapter.json"}  # fmt: skip
    lm, tok, vocab = load_lm_folder(base / "planner")
    merged_lm, new_vocab, _ = load_adapter(lm, vocab, tok, adapter)
    saved, _, saved_vocab = load_lm_folder(planner_dir)
    assert new_vocab == saved_vocab
    ids = torch.tensor([[new_vocab.bos_id, *tok("a purple moon", add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        torch.testing.assert_close(merged_lm(input_ids=ids).logits, saved(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    other = make_tiny_planned(tmp_path / "other", reader=False)
    torch.manual_seed(7)
    lm2, tok2, vocab2 = load_lm_folder(other / "planner")
    with torch.no_grad():
        lm2.model.layers[0].mlp.up_proj.weight.add_(0.01)
    assert weights_sha256(lm2) != weights_sha256(lm)
    with pytest.raises(ValueError, match="another base"):
        load_adapter(lm2, vocab2, tok2, adapter)
    (adapter / "adapter_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="never unpickles"):
        load_adapter(lm, vocab, tok, adapter)


def test_finetune_settings_are_checked_once_with_clear_errors(base, moons, tmp_path):
    with pytest.raises(ValueError, match="finetune.method must be one of"):
        finetune(base, moons, tmp_path / "x", "dora")
    with pytest.raises(ValueError, match="needs finetune.base"):
        load_config(PlannerTrainingConfig, None, ["finetune.method=lora"])
    with pytest.raises(ValueError, match="target_modules"):
        finetune(base, moons, tmp_path / "y", "lora", 1, "finetune.lora.target_modules=[qkv]")
    with pytest.raises(FileNotFoundError, match="neither a planner folder nor a model folder"):
        finetune(tmp_path, moons, tmp_path / "z", "lora")
    with pytest.raises(ValueError, match="train_layers"):
        finetune(base, moons, tmp_path / "w", "freeze", 1, "finetune.train_layers=[5]")


def test_lvg_plan_with_an_adapter_plans_the_new_labels_and_a_wrong_base_is_refused(base, moons, tmp_path, capsys):
    from lvg.cli import main

    finetune(base / "planner", moons, tmp_path / "lora", "lora")
    adapter = tmp_path / "lora" / "adapter"
    capsys.readouterr()  # the trainer's own lines
    assert main(["plan", "a purple moon", "--model", str(base), "--adapter", str(adapter),
                 "--temperature", "0.0001"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0])["objects"][0]["label"] == "purple moon"
    warning = [ln for ln in captured.err.splitlines() if ln.startswith("lvg: warning:")]  # one line, like errors
    assert len(warning) == 1 and "cannot paint" in warning[0] and "golden" in warning[0], captured.err
    other = make_tiny_planned(tmp_path / "other", reader=False)
    with torch.no_grad():  # the same seed built the same untrained planner: change one weight
        lm, tok, vocab = load_lm_folder(other / "planner")
        lm.model.layers[0].mlp.up_proj.weight.add_(0.01)
        LayoutPlanner(lm, tok, vocab).save_pretrained(other / "planner")
    assert main(["plan", "a purple moon", "--model", str(other), "--adapter", str(adapter)]) == 2
    assert "trained on another base planner" in capsys.readouterr().err


def test_the_reading_lm_trains_a_lora_adapter_on_new_labels_that_loads_on_its_base(tmp_path, moons):
    """The reading LM of a model folder (reader/) adapts to captions of new labels; its adapter loads on that base."""
    from lvg.train.reader import ReadingLMTrainingConfig, train_reading_lm

    base = make_tiny_planned(tmp_path / "base", reader=True)
    out = train_reading_lm(load_config(ReadingLMTrainingConfig, None, [
        f"imagefolder={moons}", f"train.out_dir={tmp_path / 'rlm'}", f"finetune.base={base}", "finetune.method=lora",
        "train.steps=60", "train.batch_size=8", "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=1000",
        "train.ckpt_every=1000", "train.log_every=1000", "train.progress=false", "val_fraction=0.25",
        "bins_per_px=1"]))  # fmt: skip
    lm, tok, vocab = load_lm_folder(base / "reader", "reading LM")
    merged_lm, new_vocab, _ = load_adapter(lm, vocab, tok, tmp_path / "rlm" / "adapter", "reading LM")
    assert "purple moon" in new_vocab.layout.labels
    saved, _, _ = load_lm_folder(out, "reading LM")
    ids = torch.tensor([[new_vocab.bos_id, new_vocab.layout_offset + 3]])
    with torch.no_grad():
        torch.testing.assert_close(merged_lm(input_ids=ids).logits, saved(input_ids=ids).logits, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="adapter for the 'reading LM', not the planner"):
        load_adapter(lm, vocab, tok, tmp_path / "rlm" / "adapter", "planner")


def test_the_adapted_vocabulary_keeps_the_base_labels_and_adds_the_new_ones():
    from lvg.models.adapters import joint_layout
    from lvg.tokenizers.layout import LayoutTokenizerConfig

    base = LayoutTokenizerConfig(("red circle", "blue star"), ("white", "black"), 64, 1, 4, min_side=10)
    new = LayoutTokenizerConfig(("blue star", "purple moon"), ("white", "gray"), 64, 1, 2, min_side=6)
    joint = joint_layout(base, new)
    assert joint.labels == ("red circle", "blue star", "purple moon")
    assert joint.backgrounds == ("white", "black", "gray") and joint.max_objects == 4
    assert joint.min_side == 6  # the new data's smaller objects stay drawable
    other_canvas = LayoutTokenizerConfig(("purple moon",), ("gray",), 32, 1, 2)
    assert joint_layout(base, other_canvas) == other_canvas  # no shared locations: the new vocabulary alone


@pytest.mark.parametrize("damage", ["nan", "truncated", "deep-json", "bad-config", "bad-rows", "bad-layout-rows",
                                    "bom-meta", "bom-config"])  # fmt: skip
def test_a_damaged_adapter_folder_is_one_line_naming_the_file(base, moons, tmp_path, capsys, damage):
    """Issue 23, new surfaces: an adapter folder with NaN weights, a truncated weights file, JSON nested 100,000 deep,
    a config peft cannot use, or (harmless) a BOM: a one-line error naming the file, never a traceback."""
    import shutil

    from safetensors.torch import load_file, save_file

    from lvg.cli import main

    finetune(base / "planner", moons, tmp_path / "lora", "lora", 5)
    adapter = tmp_path / "adapter"
    shutil.copytree(tmp_path / "lora" / "adapter", adapter)
    weights, config = adapter / "adapter_model.safetensors", adapter / "adapter_config.json"
    if damage == "nan":
        state = load_file(str(weights))
        k = next(iter(state))
        state[k][..., 0] = float("nan")
        save_file(state, str(weights))
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "deep-json":
        config.write_text("[" * 100000 + "]" * 100000)
    elif damage == "bad-config":
        config.write_text(json.dumps({**json.loads(config.read_text()), "r": "eight"}))
    elif damage in ("bad-rows", "bad-layout-rows"):  # lvg's own settings, wrong
        meta = adapter / "lvg_adapter.json"
        field, value = ("low_rank_rows", {"embed_tokens": 2}) if damage == "bad-rows" else ("layout_rows", "yes")
        meta.write_text(json.dumps({**json.loads(meta.read_text()), field: value}))
    else:  # a BOM is read like any UTF-8 (peft alone would refuse one in its config)
        meta = adapter / ("lvg_adapter.json" if damage == "bom-meta" else "adapter_config.json")
        meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    rc = main(["plan", "a purple moon", "--model", str(base), "--adapter", str(adapter)])
    captured = capsys.readouterr()
    if damage.startswith("bom"):
        assert rc == 0, captured.err
        return
    err = captured.err.strip()
    assert rc == 2 and "\n" not in err and "Traceback" not in err, err
    assert str(adapter) in err


@pytest.mark.parametrize("method", ["adapter", "prefix"])
def test_bottleneck_adapters_and_prefixes_train_only_themselves_save_as_files_and_reload_to_the_same_model(
        base, moons, tmp_path, method):  # fmt: skip
    """Neither folds into the LM: the run writes OUT/adapter only; loaded on its base it gives the trained model's
    logits exactly; the base's own weights do not move; another base is refused; damaged weights are named."""
    from safetensors.torch import load_file, save_file

    from lvg.models.adapter_layers import PrefixTuned, has_bottlenecks
    from lvg.models.adapters import merged
    from lvg.train.planner import PlannerTask

    extra = ["finetune.adapter.rank=4"] if method == "adapter" else ["finetune.prefix.num_tokens=3"]
    out = finetune(base / "planner", moons, tmp_path / method, method, 30, *extra)
    assert out == tmp_path / method / "adapter" and not (tmp_path / method / "planner").exists()
    assert {"lvg_adapter.json", "lvg_modules.safetensors", "adapter_model.safetensors"} <= {
        p.name for p in out.iterdir()
    }
    lm, tok, vocab = load_lm_folder(base / "planner")
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    adapted, new_vocab, _ = load_adapter(lm, vocab, tok, out)
    assert isinstance(adapted, PrefixTuned) if method == "prefix" else has_bottlenecks(adapted)
    for k, v in lm.state_dict().items():  # the base is untouched
        assert torch.equal(v, before[k]), k
    # the trained model, rebuilt from the run's config and its final checkpoint
    cfg = load_config(PlannerTrainingConfig, None, [f"imagefolder={moons}", f"finetune.base={base / 'planner'}",
                                                    f"finetune.method={method}", "model.bins_per_px=1",
                                                    "val_fraction=0.25", *extra])  # fmt: skip
    task = PlannerTask(cfg, torch.device("cpu"))
    task.lm.load_state_dict(load_file(str(tmp_path / method / "checkpoint" / "lm.safetensors")))
    trained = task.lm.eval()
    assert new_vocab == task.vocab
    ids = torch.tensor([[new_vocab.bos_id, *tok("a purple moon", add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        torch.testing.assert_close(adapted(input_ids=ids).logits, trained(input_ids=ids).logits)
        assert not torch.allclose(
            adapted(input_ids=ids).logits[..., : vocab.text_vocab_size],
            lm(input_ids=ids).logits[..., : vocab.text_vocab_size],
        )  # it learned something
    with pytest.raises(ValueError, match="cannot be folded"):
        merged(adapted)
    with pytest.raises(ValueError, match="adapter folder"):  # never a plain LM folder that would drop it
        LayoutPlanner(adapted, tok, new_vocab).save_pretrained(tmp_path / "plain")
    planner = LayoutPlanner(adapted, tok, new_vocab)  # the KV-cached sampler runs it as it runs any LM
    assert len(planner.plan_tokens(planner.tokenize(list(NEW)), [0, 1], 1.0, 1.0, 0, 1.0, 8)) == 2
    from lvg.cli import main

    assert main(["plan", "a purple moon", "--model", str(base), "--adapter", str(out)]) == 0  # and so does the CLI
    with torch.no_grad():
        lm.model.layers[0].mlp.up_proj.weight.add_(0.01)
    with pytest.raises(ValueError, match="another base"):
        load_adapter(lm, vocab, tok, out)
    lm.load_state_dict(before)
    state = load_file(str(out / "lvg_modules.safetensors"))
    save_file({k: v for k, v in list(state.items())[1:]}, str(out / "lvg_modules.safetensors"))
    with pytest.raises(ValueError, match=r"lvg_modules.safetensors .*lvg_adapter.json.* does not fit"):
        load_adapter(lm, vocab, tok, out)


def test_adapter_and_prefix_settings_are_checked_once(base, moons, tmp_path):
    with pytest.raises(ValueError, match="finetune.adapter: rank"):
        finetune(base, moons, tmp_path / "x", "adapter", 1, "finetune.adapter.rank=0")
    with pytest.raises(ValueError, match="finetune.prefix: num_tokens"):
        finetune(base, moons, tmp_path / "x", "prefix", 1, "finetune.prefix.num_tokens=0")
    with pytest.raises(ValueError, match="train_layers"):
        finetune(base, moons, tmp_path / "x", "adapter", 1, "finetune.adapter.layers=[5]")


def test_lora_on_the_vocabulary_matrices_covers_the_new_rows_and_merges_to_the_saved_planner(base, moons, tmp_path):
    targets = "finetune.lora.target_modules=[q_proj,v_proj,embed_tokens,lm_head]"
    planner_dir = finetune(base / "planner", moons, tmp_path / "lv", "lora", 20, targets)
    cfg = load_config(PlannerTrainingConfig, None, [f"imagefolder={moons}", f"finetune.base={base / 'planner'}",
                                                    "finetune.method=lora", targets, "val_fraction=0.25"])  # fmt: skip
    from lvg.train.planner import PlannerTask

    names = [n for n, p in PlannerTask(cfg, torch.device("cpu")).lm.named_parameters() if p.requires_grad]
    assert names and not any("trainable_tokens" in n for n in names)  # no whole rows: LoRA's delta covers them
    assert any("embed_tokens.lora_embedding_A" in n for n in names) and any("lm_head.lora_A" in n for n in names)
    lm, tok, vocab = load_lm_folder(base / "planner")
    merged_lm, new_vocab, _ = load_adapter(lm, vocab, tok, tmp_path / "lv" / "adapter")
    saved, _, _ = load_lm_folder(planner_dir)
    ids = torch.tensor([[new_vocab.bos_id, *tok("a golden sun", add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        torch.testing.assert_close(merged_lm(input_ids=ids).logits, saved(input_ids=ids).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["prefix", "adapter"])
def test_a_killed_adapter_run_resumes_to_the_same_weights(base, moons, tmp_path, method):
    from safetensors.torch import load_file

    args = [f"imagefolder={moons}", f"finetune.base={base / 'planner'}", f"finetune.method={method}",
            "train.steps=6", "train.batch_size=4", "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=1000",
            "train.ckpt_every=1000", "train.progress=false", "val_fraction=0.25", "cond_dropout=0"]  # fmt: skip
    whole = train_planner(load_config(PlannerTrainingConfig, None, [*args, f"train.out_dir={tmp_path / 'a'}"]))
    cut = [*args, f"train.out_dir={tmp_path / 'b'}"]
    train_planner(load_config(PlannerTrainingConfig, None, cut), stop_after=3)  # "killed" after 3 steps
    resumed = train_planner(load_config(PlannerTrainingConfig, None, cut), resume=True)
    a, b = load_file(str(whole / "lvg_modules.safetensors")), load_file(str(resumed / "lvg_modules.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_frozen_new_rows_stay_at_their_words_and_the_adapter_reloads_to_the_trained_planner(base, moons, tmp_path,
                                                                                            method):  # fmt: skip
    from lvg.train.planner import PlannerTask

    cfg = load_config(PlannerTrainingConfig, None, [f"imagefolder={moons}", f"finetune.base={base / 'planner'}",
                                                    f"finetune.method={method}", "finetune.new_rows=frozen",
                                                    "val_fraction=0.25"])  # fmt: skip
    names = [n for n, p in PlannerTask(cfg, torch.device("cpu")).lm.named_parameters() if p.requires_grad]
    assert names and not any("trainable_tokens" in n for n in names)  # only the method's own weights train
    planner_dir = finetune(base / "planner", moons, tmp_path / method, method, 10, "finetune.new_rows=frozen")
    lm, tok, vocab = load_lm_folder(base / "planner")
    reloaded, new_vocab, _ = load_adapter(lm, vocab, tok, tmp_path / method / "adapter")
    started, _ = transplant(lm, vocab, new_vocab, tok)
    inner = reloaded.lm if hasattr(reloaded, "lm") else reloaded
    torch.testing.assert_close(inner.get_input_embeddings().weight, started.get_input_embeddings().weight)
    if method == "lora":  # a plain planner folder was saved too: the same model
        assert_same_lm(reloaded, load_lm_folder(planner_dir)[0], tok, new_vocab)
    with pytest.raises(ValueError, match="new_rows=frozen needs a method"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.new_rows=frozen"])
    with pytest.raises(ValueError, match="new_rows must be one of train, lowrank, frozen"):
        load_config(
            PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.method=lora", "finetune.new_rows=x"]
        )


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_low_rank_new_rows_learn_the_new_labels_and_the_adapter_reloads_to_the_trained_planner(base, moons, tmp_path,
                                                                                               method):  # fmt: skip
    from safetensors.torch import load_file

    from lvg.train.planner import PlannerTask

    rows = ["finetune.new_rows=lowrank", "finetune.new_rows_rank=2"]
    cfg = load_config(PlannerTrainingConfig, None, [f"imagefolder={moons}", f"finetune.base={base / 'planner'}",
                                                    f"finetune.method={method}", "val_fraction=0.25", *rows])  # fmt: skip
    task = PlannerTask(cfg, torch.device("cpu"))
    names = {n: p.shape for n, p in task.lm.named_parameters() if p.requires_grad}
    rows_u = {n: s for n, s in names.items() if n.endswith("parametrizations.weight.0.u")}
    assert len(rows_u) == 2 and all(s == (2, 2) for s in rows_u.values())  # two new labels, rank 2, both matrices
    assert not any("trainable_tokens" in n or "original" in n for n in names)  # no whole rows train
    from lvg.models.adapter_layers import low_rank_rows
    from lvg.models.adapters import merged

    if method == "lora":
        once, twice = merged(task.lm), merged(task.lm)  # folding a copy leaves the training model as it was
        assert not low_rank_rows(once) and len(low_rank_rows(task.lm)) == 2
        torch.testing.assert_close(once.get_input_embeddings().weight, twice.get_input_embeddings().weight)
    planner_dir = finetune(base / "planner", moons, tmp_path / method, method, 150, *rows)
    adapter = tmp_path / method / "adapter"
    assert json.loads((adapter / "lvg_adapter.json").read_text())["low_rank_rows"] == 2
    assert {k for k in load_file(str(adapter / "lvg_modules.safetensors")) if k.startswith("rows.")} == {
        f"rows.{m}.{x}" for m in ("embed_tokens", "lm_head") for x in "uv"}  # fmt: skip
    lm, tok, vocab = load_lm_folder(base / "planner")
    reloaded, new_vocab, _ = load_adapter(lm, vocab, tok, adapter)
    started, new_ids = transplant(lm, vocab, new_vocab, tok)
    inner = reloaded.lm if hasattr(reloaded, "lm") else reloaded
    emb, start = inner.get_input_embeddings().weight, started.get_input_embeddings().weight
    old = [i for i in range(new_vocab.vocab_size) if i not in new_ids]
    assert torch.equal(emb[old], start[old]) and not torch.allclose(emb[new_ids], start[new_ids])  # only new rows moved
    if method == "lora":  # it learns the labels (the tiny base's bottlenecks need more steps); folded into a plain
        # planner folder too: the same model
        planner = LayoutPlanner(reloaded.eval(), tok, new_vocab)
        got = planner.plan_tokens(planner.tokenize(list(NEW)), [0, 0], 1.0, 1e-4, 0, 1.0, 8)
        assert [lay.objects[0].label for lay in got] == [label for label, _ in NEW.values()]
        assert_same_lm(reloaded, load_lm_folder(planner_dir)[0], tok, new_vocab)
    with pytest.raises(ValueError, match="new_rows=lowrank needs a method"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.new_rows=lowrank"])
    with pytest.raises(ValueError, match="finetune.new_rows_rank"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.method=lora",
                                                  "finetune.new_rows=lowrank", "finetune.new_rows_rank=0"])  # fmt: skip


def test_chinese_new_words_in_pieces_make_a_name_one_token_and_leave_the_bases_ideographs_alone(base):
    from lvg.tokenizers.words import add_words, find_new_words, word_pieces

    tok = load_lm_folder(base / "planner")[1]
    texts = ["一个紫色的月亮", "两个紫色的月亮", "一个月亮在左边", "a purple moon"] * 5 + ["月"] * 3
    known = {ch for t in texts for ch in t if "\u4e00" <= ch <= "\u9fff" and len(word_pieces(tok, ch)) == 1}
    assert known, "the tiny base spells some ideographs of the texts as one token"
    chars = find_new_words(texts, tok, 100)
    pieces = find_new_words(texts, tok, 100, cut="pieces")
    assert pieces == find_new_words(texts, tok, 100, cut="pieces")  # the byte-pair training is deterministic
    assert "月亮" in pieces and "月" in chars and "月" not in pieces  # "月" alone 3 times: under 5
    assert " moon" in pieces and " moon" in chars  # Latin words are cut the same either way
    assert all(len(word_pieces(tok, w)) > 1 and not set(w) & known for w in pieces)
    ext = add_words(tok, pieces)
    assert ext.convert_tokens_to_ids("月亮") in ext("两个紫色的月亮", add_special_tokens=False)["input_ids"]
    for t in [*texts[:4], "月", "月亮月", "moon月亮"]:  # decoding gives the text back
        assert ext.decode(ext(t, add_special_tokens=False)["input_ids"]) == t
    lm, vocab = load_lm_folder(base / "planner")[::2]  # a piece's rows start at its bytes' rows, as a character's do
    new_vocab = PlanVocab.from_tokenizer(ext, vocab.layout, vocab.max_text_tokens)
    started, new_ids = transplant(lm, vocab, new_vocab, ext, tok)
    moon, bytes_ = ext.convert_tokens_to_ids("月亮"), word_pieces(tok, "月亮")
    assert moon in new_ids and len(bytes_) > 2  # two ideographs in byte-level pieces
    torch.testing.assert_close(started.get_output_embeddings().weight[moon],
                               lm.get_output_embeddings().weight[bytes_].mean(0) * len(bytes_) ** 0.5)  # fmt: skip
    with pytest.raises(ValueError, match="cut must be one of chars, pieces"):
        find_new_words(texts, tok, 100, cut="words")
    with pytest.raises(ValueError, match="finetune.new_words_cut must be one of chars, pieces"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.new_words_cut=runs"])


def test_a_base_that_is_not_a_byte_pair_encoding_gets_its_new_words_as_added_tokens():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lvg.tokenizers.words import add_words, find_new_words

    inner = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "sun": 2}, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="[UNK]")
    words = find_new_words(["a moon", "a sun"] * 5, tok, 10)
    assert words == ["moon"]  # its pre-tokenizer drops the spaces
    ext = add_words(tok, words)
    assert ext("a moon sun moonlight", add_special_tokens=False)["input_ids"] == [1, 3, 2, 0]


def test_new_words_become_whole_tokens_whose_rows_start_at_their_pieces_and_travel_with_the_adapter(base, moons,
                                                                                                   tmp_path):  # fmt: skip
    from safetensors.torch import load_file

    from lvg.tokenizers.words import WORDS_FORMAT, add_words, find_new_words, start_pieces, twin_ids, word_pieces

    lm, tok, vocab = load_lm_folder(base / "planner")
    texts = ["a purple moon", "一个紫色的月亮", "a golden sun", "purple moons", "a purple moonlight"] * 5
    words = find_new_words(texts, tok, 100)
    assert " moon" in words and "purple" in words and "月" in words  # "purple" starts a text: no space before it
    assert all(len(word_pieces(tok, w)) > 1 for w in words)
    assert "moon" in words and "golden" in words  # the twins without their space of " moon" and " golden"
    assert find_new_words(texts, tok, 1) == [words[0], words[0][1:]] and find_new_words(texts[:4], tok, 100) == []
    ext = add_words(tok, words)
    for t in texts[:5] + ["moonmoon moon", "月亮moon", "purple-moon purple"]:  # decoding gives the text back
        assert ext.decode(ext(t, add_special_tokens=False)["input_ids"]) == t
    [moon], [bare] = word_pieces(ext, " moon"), word_pieces(ext, "purple")  # each one token after the base's ids
    assert min(moon, bare) >= len(tok) and moon in ext("a moon", add_special_tokens=False)["input_ids"]
    assert bare in ext("purple-moon", add_special_tokens=False)["input_ids"]  # after a hyphen: no space either
    assert moon not in ext(" moonlight", add_special_tokens=False)["input_ids"]  # never inside a longer word
    assert ext(texts, add_special_tokens=False)["input_ids"] != tok(texts, add_special_tokens=False)["input_ids"]
    plain = ["a red circle", "two purple squares", "一个"]  # text with no new word keeps its tokens
    assert ext(plain, add_special_tokens=False)["input_ids"] == tok(plain, add_special_tokens=False)["input_ids"]
    assert start_pieces(tok, "purple") == word_pieces(tok, " purple") != word_pieces(tok, "purple")  # one row
    assert start_pieces(tok, " moon") == word_pieces(tok, " moon")  # its pieces: the base has no "moon" either
    # the head: its own rank, no rows for words (a planner writes none); the base's layout tokens move too
    extra = ["finetune.new_words=50", "finetune.new_rows=lowrank", "finetune.new_rows_rank=2",
             "finetune.new_rows_head_rank=3", "finetune.layout_rows=true"]  # fmt: skip
    data = write_layout_folder(tmp_path / "moons", NEW, rows=20)  # 15 prompts to train on: each word >= 5 times
    planner_dir = finetune(base / "planner", data, tmp_path / "w", "lora", 150, *extra)
    meta = json.loads((tmp_path / "w" / "adapter" / "lvg_adapter.json").read_text())
    assert meta["new_words"] and all(w in "a purple moon a golden sun" for w in meta["new_words"])
    assert meta["low_rank_rows"] == {"embed_tokens": 2, "lm_head": 3} and meta["layout_rows"] is True
    reloaded, new_vocab, new_tok = load_adapter(lm, vocab, tok, tmp_path / "w" / "adapter")
    rows = load_file(str(tmp_path / "w" / "adapter" / "lvg_modules.safetensors"))
    n_layout = new_vocab.vocab_size - new_vocab.layout_offset  # the base's layout tokens and the 2 new labels
    twins = twin_ids(new_tok, len(tok))  # "moon" takes " moon"'s row and a shift: no rows of its own
    said = {new_tok.decode([i]): new_tok.decode([t]) for i, t in twins.items()}
    assert said["moon"] == " moon" and all(t == " " + w for w, t in said.items())
    assert rows["rows.embed_tokens.u"].shape == (n_layout + len(meta["new_words"]) - len(twins), 2)
    assert rows["rows.lm_head.u"].shape == (n_layout, 3) and "rows.lm_head.shift" not in rows  # a planner writes none
    emb = reloaded.get_input_embeddings().weight
    torch.testing.assert_close(emb[list(twins)], emb[list(twins.values())] + rows["rows.embed_tokens.shift"])
    saved, saved_tok, _ = load_lm_folder(planner_dir)
    assert len(new_tok) == len(saved_tok) == len(tok) + len(meta["new_words"]) == new_vocab.text_vocab_size
    started, new_ids = transplant(lm, vocab, new_vocab, new_tok, tok)
    [w] = word_pieces(new_tok, meta["new_words"][0])
    assert w in new_ids and meta["new_words_format"] == WORDS_FORMAT
    pieces = start_pieces(tok, meta["new_words"][0])
    torch.testing.assert_close(started.get_input_embeddings().weight[w],
                               lm.get_input_embeddings().weight[pieces].mean(0) * len(pieces) ** 0.5)  # fmt: skip
    assert_same_lm(reloaded, saved, new_tok, new_vocab)
    planner = LayoutPlanner(reloaded.eval(), new_tok, new_vocab)
    got = planner.plan_tokens(planner.tokenize(list(NEW)), [0, 0], 1.0, 1e-4, 0, 1.0, 8)
    assert [lay.objects[0].label for lay in got] == [label for label, _ in NEW.values()]
    (tmp_path / "w" / "adapter" / "lvg_adapter.json").write_text(json.dumps({**meta, "new_words_format": None}))
    with pytest.raises(ValueError, match="new_words were added the way an earlier lvg added them"):
        load_adapter(lm, vocab, tok, tmp_path / "w" / "adapter")  # its words would cut text another way


def test_a_reading_lm_adapter_writes_its_new_words_and_the_pipeline_reads_with_it(tmp_path):
    """New words are text the reading LM writes (not special tokens): its captions use them, the head rows of
    words train, and ``load_adapter`` puts the adapter on a pipeline's reader."""
    from safetensors.torch import load_file

    from lvg.pipelines.planned import PlannedPipeline
    from lvg.train.reader import ReadingLMTrainingConfig, train_reading_lm

    base = make_tiny_planned(tmp_path / "base", reader=True)
    data = write_layout_folder(tmp_path / "moons", NEW, rows=20)
    train_reading_lm(load_config(ReadingLMTrainingConfig, None, [
        f"imagefolder={data}", f"train.out_dir={tmp_path / 'rlm'}", f"finetune.base={base}", "finetune.method=lora",
        "finetune.new_words=50", "finetune.new_rows=lowrank", "finetune.new_rows_rank=4", "train.steps=150",
        "finetune.new_rows_head_rank=4",  # head rows for the words it writes, none for the labels it reads
        "train.batch_size=8", "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=1000",
        "train.ckpt_every=1000", "train.log_every=1000", "train.progress=false", "val_fraction=0.25",
        "bins_per_px=1"]))  # fmt: skip
    adapter = tmp_path / "rlm" / "adapter"
    meta = json.loads((adapter / "lvg_adapter.json").read_text())
    assert " moon" in meta["new_words"] and meta["low_rank_rows"] == {"embed_tokens": 4, "lm_head": 4}
    rows = load_file(str(adapter / "lvg_modules.safetensors"))
    twins = sum(not w.startswith(" ") for w in meta["new_words"])  # "moon", tied to " moon" (a shift of its own)
    assert twins and rows["rows.lm_head.shift"].shape == rows["rows.embed_tokens.shift"].shape
    assert rows["rows.lm_head.u"].shape[0] == len(meta["new_words"]) - twins
    assert rows["rows.embed_tokens.u"].shape[0] == len(meta["new_words"]) - twins + 2  # and the 2 new labels
    pipe = PlannedPipeline.from_pretrained(base).load_adapter(adapter)
    tok = pipe.reader.text_tokenizer
    [moon] = tok(" moon", add_special_tokens=False)["input_ids"]
    assert moon in tok("a purple moon", add_special_tokens=False)["input_ids"] and pipe.reader.allowed[moon]
    layouts = [Layout("white", (LayoutObject(label, tuple(box)),), 64) for label, box in NEW.values()]
    assert pipe.reader.caption(layouts, "en") == list(NEW)


def test_lora_plus_trains_the_zero_started_factors_faster_and_resumes(base, moons, tmp_path):
    from safetensors.torch import load_file

    from lvg.train.common import set_lr
    from lvg.train.planner import PlannerTask

    args = [f"imagefolder={moons}", f"finetune.base={base / 'planner'}", "finetune.method=lora",
            "finetune.new_rows=lowrank", "finetune.new_rows_rank=2", "finetune.lr_ratio=16", "val_fraction=0.25"]  # fmt: skip
    task = PlannerTask(load_config(PlannerTrainingConfig, None, args), torch.device("cpu"))
    slow, fast = task.param_groups()
    names = {id(p): n for n, p in task.lm.named_parameters()}
    assert fast["lr_scale"] == 16 and fast["params"] and "lr_scale" not in slow
    assert all("lora_B" in names[id(p)] or names[id(p)].endswith(".u") for p in fast["params"])
    assert not any("lora_B" in names[id(p)] or names[id(p)].endswith(".u") for p in slow["params"])
    opt = torch.optim.AdamW([slow, fast], lr=1.0)
    set_lr(opt, 1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 16e-3]
    run = [*args, "train.steps=6", "train.batch_size=4", "train.warmup_steps=0", "train.eval_every=1000",
           "train.ckpt_every=1000", "train.progress=false", "cond_dropout=0"]  # fmt: skip
    whole = train_planner(load_config(PlannerTrainingConfig, None, [*run, f"train.out_dir={tmp_path / 'a'}"]))
    cut = [*run, f"train.out_dir={tmp_path / 'b'}"]
    train_planner(load_config(PlannerTrainingConfig, None, cut), stop_after=3)  # "killed" after 3 steps
    resumed = train_planner(load_config(PlannerTrainingConfig, None, cut), resume=True)
    a = load_file(str(whole.parent / "adapter" / "lvg_modules.safetensors"))
    b = load_file(str(resumed.parent / "adapter" / "lvg_modules.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="finetune.lr_ratio speeds up LoRA"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.method=adapter",
                                                  "finetune.lr_ratio=4"])  # fmt: skip


def test_block_expansion_starts_as_the_base_grows_a_deeper_planner_and_resumes(base, moons, tmp_path):
    from safetensors.torch import load_file

    from lvg.models.adapters import expand_layers

    lm, tok, vocab = load_lm_folder(base / "planner")
    for add in (1, 3):  # one new layer after the base's; three after its one layer (more new than old)
        grown = expand_layers(lm.eval(), add).eval()
        assert grown.config.num_hidden_layers == lm.config.num_hidden_layers + add
        assert [layer.self_attn.layer_idx for layer in grown.model.layers] == list(range(1 + add))
        assert_same_lm(lm, grown, tok, vocab)  # the new layers start as the identity
        planner, deep = LayoutPlanner(lm, tok, vocab), LayoutPlanner(grown, tok, vocab)
        ids = planner.tokenize(list(NEW))  # and sample the same layouts through the KV cache
        assert planner.plan_tokens(ids, [0, 1], 1.0, 1.0, 0, 1.0) == deep.plan_tokens(ids, [0, 1], 1.0, 1.0, 0, 1.0)
    args = ("finetune.add_layers=2",)
    whole = finetune(base / "planner", moons, tmp_path / "a", "full", 6, *args)
    after, _, _ = load_lm_folder(whole)
    assert after.config.num_hidden_layers == lm.config.num_hidden_layers + 2
    assert after.model.layers[1].mlp.down_proj.weight.abs().sum() > 0  # the new layers trained
    cut = load_config(PlannerTrainingConfig, None, [
        f"imagefolder={moons}", f"train.out_dir={tmp_path / 'b'}", f"finetune.base={base / 'planner'}",
        "finetune.method=full", "train.steps=6", "train.batch_size=8", "train.lr=1e-2", "train.warmup_steps=0",
        "train.eval_every=1000", "train.ckpt_every=1000", "train.log_every=1000", "train.progress=false",
        "val_fraction=0.25", "cond_dropout=0", "model.bins_per_px=1", *args])  # fmt: skip
    train_planner(cut, stop_after=3)  # "killed" after 3 steps
    resumed = train_planner(cut, resume=True)
    a, b = load_file(str(whole / "lm" / "model.safetensors")), load_file(str(resumed / "lm" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="add_layers .* needs finetune.method=full"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.method=lora",
                                                  "finetune.add_layers=2"])  # fmt: skip
    with pytest.raises(ValueError, match="add_layers"):
        load_config(PlannerTrainingConfig, None, [f"finetune.base={base}", "finetune.add_layers=-1"])
