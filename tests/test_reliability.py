"""Reliability promises (docs/reliability.md): untrusted model folders, mutated files, the defects an adversarial pass
found, no network, determinism, and kill -9 during training."""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch
from conftest import ROOT, make_tiny_planned
from safetensors.torch import load_file, save_file

from lvg.cli import main

DEFAULT_MODEL = ROOT / "models" / "shapes-default"
PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.ckpt", "weights.pkl")


def run_cli(capsys, *argv) -> tuple[int, str]:
    """``lvg ARGV``: (exit code, stderr); any error must be exactly one ``lvg: error:`` line."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    if rc != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lvg: error: "), err
    return rc, err


# ---------------------------------------------------------------------- 1. untrusted folders


class Sentinel:
    """Unpickling this creates the file ``path`` (what a malicious pickle could do, harmlessly)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def plant_pickles(folder: Path, sentinel: Path) -> None:
    """A sentinel pickle under every pickle name in ``folder`` and in each of its sub-folders."""
    blob = pickle.dumps(Sentinel(sentinel))
    for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        for name in PICKLE_NAMES:
            (d / name).write_bytes(blob)


@pytest.fixture(scope="module")
def trapped(tmp_path_factory, tiny_pipeline_dir) -> dict[str, Path]:
    """Copies of a one-stage and a planned model with sentinel pickles beside every weights file."""
    root = tmp_path_factory.mktemp("trapped")
    sentinel = root / "UNPICKLED"
    one_stage = shutil.copytree(tiny_pipeline_dir, root / "one-stage")
    planned = make_tiny_planned(root / "planned")
    for folder in (one_stage, planned):
        plant_pickles(folder, sentinel)
    pickle.loads(pickle.dumps(Sentinel(root / "proof")))  # the pickle does work when unpickled
    assert (root / "proof").exists()
    return {"one_stage": one_stage, "planned": planned, "sentinel": sentinel, "root": root}


def test_pickles_are_never_unpickled_by_generate_or_from_pretrained(trapped, capsys):
    from lvg.eval.inception import check_weights
    from lvg.pipelines.pipeline import Pipeline

    for name in ("one_stage", "planned"):
        out = trapped["root"] / f"{name}.png"
        assert run_cli(capsys, "generate", "a red circle", "-o", out, "--model", trapped[name])[0] == 0
        assert out.is_file()
        Pipeline.from_pretrained(trapped[name])
    with pytest.raises(ValueError):
        check_weights(trapped["planned"] / "painter" / "model.pt")  # the Inception loader reads headers only
    assert not trapped["sentinel"].exists()


def test_pickles_are_never_unpickled_by_the_server(trapped):
    from fastapi.testclient import TestClient

    from lvg.serve.app import ServeSettings, create_app

    app = create_app(ServeSettings(model_dir=trapped["planned"]))  # what `lvg serve --model DIR` runs
    with TestClient(app) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline and app.state.lvg.load_error is None, app.state.lvg.load_error
            time.sleep(0.05)
        assert c.post("/v1/images/generations", json={"prompt": "a red circle", "seed": 1}).status_code == 200
    assert not trapped["sentinel"].exists()


@pytest.mark.parametrize("weights", ["planner/lm/model.safetensors", "painter/model.safetensors",
                                     "image_tokenizer/model.safetensors"])  # fmt: skip
def test_a_folder_with_only_pickle_weights_is_refused_saying_what_to_do(trapped, tmp_path, capsys, weights):
    model = shutil.copytree(trapped["planned"], tmp_path / "m")
    (model / weights).unlink()
    rc, err = run_cli(capsys, "generate", "a red circle", "-o", tmp_path / "x.png", "--model", model)
    assert rc == 2 and weights in err and "pickle" in err and "convert them to model.safetensors" in err
    assert not trapped["sentinel"].exists()


def test_no_loader_can_unpickle():
    """Static: lvg never calls pickle/torch.load, and every transformers from_pretrained is local safetensors."""
    for file in (ROOT / "lvg").rglob("*.py"):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in ("torch.load", "pickle.load", "pickle.loads", "joblib.load"), f"{file}: {name}"
                if name.startswith("Auto") and name.endswith(".from_pretrained"):
                    kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    assert kw.get("local_files_only") == "True", f"{file}: {name} may download"
                    if "Model" in name:
                        assert kw.get("use_safetensors") == "True", f"{file}: {name} may unpickle"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("huggingface_hub"):
                assert node.module == "huggingface_hub.errors", f"{file}: imports {node.module}"


# ---------------------------------------------------------------------- 2. mutated weights and configs


def test_mutated_model_files_fail_with_one_clear_line():
    """The fast subset of benchmarks/fuzz_models.py (one mutant of every kind and file type) through the real CLI."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_models.py"), "--quick", "--json"],
                       capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["failures"] == [], summary["failures"][:3]
    assert summary["mutants"] >= 25 and summary["counts"].get("ok-error", 0) >= 20, summary


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    return shutil.copytree(DEFAULT_MODEL, tmp_path_factory.mktemp("shipped") / "m")


def _edit_json(file: Path, change) -> None:
    data = json.loads(file.read_text())
    change(data)
    file.write_text(json.dumps(data))


def _generate(capsys, model: Path, *extra) -> tuple[int, str]:
    return run_cli(capsys, "generate", "two stars", "-o", model.parent / "out.png", "--model", model, *extra)


@pytest.mark.parametrize("value", ["missing", [], 5, None, {"planner": 3}, {"planner": "../../etc"}])
def test_model_index_components_of_any_type_name_the_file(shipped, tmp_path, capsys, value):
    model = shutil.copytree(shipped, tmp_path / "m")
    _edit_json(model / "model_index.json", lambda d: d.pop("components") if value == "missing" else
               d.__setitem__("components", value))  # fmt: skip
    rc, err = _generate(capsys, model)
    assert rc == 2 and "model_index.json" in err


@pytest.mark.parametrize(
    ("file", "key", "value", "named"),
    [("model_index.json", ("layout", "codebook_size"), "16", "layout.codebook_size"),
     ("model_index.json", ("layout", "image_tokens"), 65, "image_tokens"),  # was: crashed only after sampling
     ("model_index.json", ("layout", "image_tokens"), 1_000_000, "image_tokens"),  # was: hung
     ("image_tokenizer/config.json", ("fsq_levels",), "44", "fsq_levels"),
     ("lm/config.json", ("hidden_act",), 5, "hidden_act"),  # was: transformers' validation error, a traceback
     ("lm/config.json", ("return_dict",), None, "return_dict"),
     ("lm/config.json", ("hidden_size",), 16384, "model.safetensors"),  # a config that does not fit its weights
     ("lm/config.json", ("vocab_size",), 1_000_000, "model.safetensors")],  # fails on the header: no allocation
)  # fmt: skip
def test_one_stage_configs_are_typed_and_bounded_before_anything_is_built(tiny_pipeline_dir, tmp_path, capsys, file,
                                                                           key, value, named):  # fmt: skip
    model = shutil.copytree(tiny_pipeline_dir, tmp_path / "m")

    def change(d: dict) -> None:
        for k in key[:-1]:
            d = d[k]
        d[key[-1]] = value

    _edit_json(model / file, change)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    rc, err = _generate(capsys, model)
    assert rc == 2 and named in err and file.split("/")[0] in err, err
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib
    assert grown < 512 * 1024, f"the process's peak memory grew by {grown / 1024:.0f} MiB: something was allocated"


@pytest.mark.parametrize("component", ["painter", "planner/lm", "image_tokenizer", "clip"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused_at_load(shipped, tmp_path, capsys, component, value):
    model = shutil.copytree(shipped, tmp_path / "m")
    file = model / component / "model.safetensors"
    state = load_file(str(file))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name].view(-1)[0] = value
    save_file(state, str(file))
    rc, err = _generate(capsys, model)
    assert rc == 2 and f"{component}/model.safetensors" in err and name in err and "NaN or infinite" in err


def test_wrong_dtype_and_shape_in_the_header_are_one_line_errors(shipped, tmp_path, capsys):
    model = shutil.copytree(shipped, tmp_path / "m")
    file = model / "painter" / "model.safetensors"
    state = load_file(str(file))
    name = sorted(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2 and v.shape[0] != v.shape[1])[0]
    save_file({**state, name: state[name].to(torch.int16)}, str(file))
    rc, err = _generate(capsys, model)
    assert rc == 2 and name in err and "torch.int16" in err
    save_file({**state, name: state[name].t().contiguous()}, str(file))
    rc, err = _generate(capsys, model)
    assert rc == 2 and name in err and "shape" in err


# ---------------------------------------------------------------------- 6. input images and outputs


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but holds one tiny IDAT (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [8000, 20_000])
def test_judge_refuses_images_over_the_pixel_limit(tmp_path, capsys, side):
    f = tmp_path / "bomb.png"
    f.write_bytes(png_header(side, side))
    rc, err = run_cli(capsys, "judge", f, "--prompt", "two stars")
    assert rc == 2 and "bomb.png" in err and ("pixels" in err or "too large" in err)


def test_caption_checks_every_input_before_loading_and_names_folders(tiny_pipeline_dir, tmp_path, capsys):
    f = tmp_path / "bomb.png"
    f.write_bytes(png_header(8000, 8000))
    rc, err = run_cli(capsys, "caption", f, "--model", tmp_path / "no-such-model")
    assert rc == 2 and "bomb.png" in err and "pixels" in err  # refused before the (missing) model is looked at
    rc, err = run_cli(capsys, "caption", tmp_path, "--model", tiny_pipeline_dir)
    assert rc == 2 and "is a folder, not an image file" in err
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(tmp_path / "ok.png")
    assert run_cli(capsys, "caption", tmp_path / "ok.png", "--model", tiny_pipeline_dir)[0] == 0


def test_outputs_scale_and_seeds_are_checked_before_generation(tmp_path, capsys):
    nowhere = tmp_path / "no-such-model"  # each check fails before the model is looked for
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "x.png", "--scale", 100_000, "--model", nowhere)
    assert rc == 2 and "--scale" in err
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "x.png", "--seed", 2**70, "--model", nowhere)
    assert rc == 2 and "--seed" in err and str(2**63 - 1) in err
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path, "--model", nowhere)
    assert rc == 2 and "is a directory" in err


# ---------------------------------------------------------------------- 3 + 4. no network, determinism

CHILD = r"""
import hashlib, io, json, os, socket, sys, threading, time
import torch
torch.set_num_threads(int(sys.argv[1]))
import httpx, uvicorn
from lvg.cli import main
from lvg.pipelines import load_pipeline
from lvg.serve.app import ServeSettings, create_app

tiny, shipped, tmp = sys.argv[2], sys.argv[3], sys.argv[4]

def png(im):
    buf = io.BytesIO(); im.save(buf, format="PNG"); return hashlib.sha256(buf.getvalue()).hexdigest()

out = {"threads": torch.get_num_threads()}
try:  # the outside world is unreachable here
    socket.create_connection(("1.1.1.1", 443), timeout=2).close()
    out["net"] = "reachable"
except OSError:
    out["net"] = "blocked"
for name, model in (("tiny", tiny), ("shipped", shipped)):
    pipe = load_pipeline(model)
    out[name] = [png(im) for im in pipe(["two stars", "a red circle"], seeds=[5, 9]).images]
# the CLI commands, with no network at all
assert main(["generate", "two stars", "-o", f"{tmp}/g.png", "--model", shipped, "--seed", "5"]) == 0
assert main(["caption", f"{tmp}/g.png", "--model", tiny]) == 0
assert main(["eval", "shapes", "--model", tiny, "--prompts", f"{tmp}/prompts.jsonl", "--captions", "2",
             "--out", f"{tmp}/eval"]) == 0
app = create_app(ServeSettings(model_dir=shipped))
sock = socket.socket(); sock.bind(("127.0.0.1", 0))
url = f"http://127.0.0.1:{sock.getsockname()[1]}"
server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
for _ in range(600):
    try:
        if httpx.get(url + "/readyz", timeout=2).status_code == 200: break
    except httpx.TransportError: pass
    time.sleep(0.05)
r = httpx.post(url + "/v1/images/generations", json={"prompt": "two stars", "seed": 5}, timeout=60)
out["serve"] = r.status_code
server.should_exit = True
with open(f"{tmp}/g.png", "rb") as f:
    out["cli_png"] = hashlib.sha256(f.read()).hexdigest()
print("RESULT " + json.dumps(out))
"""


def _offline_command() -> tuple[list[str], str]:
    """A fresh network namespace (``unshare -n``, loopback up) where that works, else in-process socket blocking."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'], "netns"
    return [], "blocked"


BLOCK = r"""
import socket
_connect = socket.socket.connect
def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError("network blocked by the test")
    return _connect(self, address)
socket.socket.connect = _loopback_only
"""


def test_no_network_and_the_same_seed_gives_the_same_bytes(tiny_pipeline_dir, tmp_path):
    """generate, caption, eval and serve in a process with no network (its own namespace), with 2 threads; the PNGs
    it makes are byte-identical to this process's (1 thread), alone or batched with other prompts."""
    from lvg.pipelines import load_pipeline

    rows = [json.loads(line) for line in (ROOT / "benchmarks" / "shapes_prompts.jsonl").open()][:2]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prefix, how = _offline_command()
    script = (BLOCK if how == "blocked" else "") + CHILD
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    # offline only by the namespace; PASSIVE: two spinning OpenMP threads crawl when another process holds a core
    env.update(OMP_NUM_THREADS="2", OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="0")
    r = subprocess.run([*prefix, sys.executable, "-c", script, "2", str(tiny_pipeline_dir), str(DEFAULT_MODEL),
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    child = json.loads(r.stdout.split("RESULT ", 1)[1])
    assert child["threads"] == 2 and child["serve"] == 200 and child["net"] == "blocked"

    def png(im) -> str:
        import hashlib

        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return hashlib.sha256(buf.getvalue()).hexdigest()

    assert torch.get_num_threads() == 1
    for name, model in (("tiny", tiny_pipeline_dir), ("shipped", DEFAULT_MODEL)):
        pipe = load_pipeline(model)
        alone = [png(pipe("two stars", seeds=[5]).images[0]), png(pipe("a red circle", seeds=[9]).images[0])]
        batched = [
            png(im)
            for im in pipe(["a blue square", "two stars", "三个黄色星形", "a red circle"], seeds=[1, 5, 2, 9]).images
        ]
        assert alone == batched[1::2], f"{name}: batch composition changed the image"
        assert alone == child[name], f"{name}: another process with 2 threads made other bytes"
    assert child["cli_png"] == child["shipped"][0]  # the CLI writes the same PNG the library makes


# ---------------------------------------------------------------------- 5. kill -9 during training


PLANNER = ["model.size.hidden_size=32", "model.size.num_hidden_layers=1", "model.size.num_attention_heads=2",
           "model.size.intermediate_size=64", "eval.prompts_per_category=1", "train.steps=12", "train.batch_size=4",
           "train.eval_every=1000", "train.ckpt_every=1", "train.log_every=1", "train.progress=false",
           "train.device=cpu"]  # fmt: skip


def test_kill_9_at_a_random_step_then_resume_gives_bit_identical_weights(tmp_path, capsys):
    """A real `lvg train planner` process is SIGKILLed at a random step (it checkpoints every step, so the kill may
    land mid-write); `--resume` then reaches the weights of an uninterrupted run bit for bit (optimizer, schedule,
    step-keyed data and dropout RNG)."""
    assert main(["train", "planner", f"train.out_dir={tmp_path / 'a'}", *PLANNER]) == 0
    out = tmp_path / "b"
    kill_at = random.Random(time.time_ns()).randint(2, 10)  # a random step (named on failure)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lvg.cli", "train", "planner", f"train.out_dir={out}", *PLANNER],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = sum(1 for line in metrics.read_text().splitlines() if '"train/loss"' in line) if metrics.exists() else 0
        if done >= kill_at:
            proc.send_signal(signal.SIGKILL)  # no handler runs: whatever was being written stays half-written
            break
        time.sleep(0.002)
    assert proc.wait(timeout=60) == -signal.SIGKILL, f"the run ended before its kill at step {kill_at}"
    assert main(["train", "planner", "--resume", f"train.out_dir={out}", *PLANNER]) == 0
    a, b = (load_file(str(tmp_path / d / "planner" / "lm" / "model.safetensors")) for d in ("a", "b"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after a kill at step {kill_at}"
    assert not [p for p in out.glob(".checkpoint-*")], "a temporary checkpoint folder was left behind"
    capsys.readouterr()


def test_a_kill_between_the_checkpoint_renames_loses_nothing(tmp_path):
    from lvg.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 3, {"m": model}, {})
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint-old")  # killed after the first rename of the swap
    assert has_checkpoint(tmp_path) and load_checkpoint(tmp_path, {"m": model}, {})["step"] == 3


@pytest.mark.parametrize("folder", ["planner", "reader"])
def test_a_plan_vocab_that_does_not_fit_its_lm_names_the_file(shipped, tmp_path, capsys, folder):
    """Found by the fuzz on the folder with a reader: a missing `layout.bins_per_px` (default 3) made a vocabulary
    larger than the LM's, and the error did not name the file."""
    model = shutil.copytree(shipped, tmp_path / "m")
    _edit_json(model / folder / "plan_vocab.json", lambda d: d["layout"].pop("bins_per_px"))
    rc, err = _generate(capsys, model)
    assert rc == 2 and f"{folder}/plan_vocab.json" in err and "vocab_size" in err and "Traceback" not in err
