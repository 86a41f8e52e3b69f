"""``lvg serve`` with several models side by side: routing by ``model``, ``/v1/models``, the official ``openai``
client, batches that never mix models, ``--model NAME=DIR``, one model failing to load (fake pipelines: fast), and
``--adapter NAME=DIR``: planner adapters served beside their base (a tiny real pipeline and adapter)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import make_tiny_planned, write_layout_folder
from fastapi.testclient import TestClient
from PIL import Image
from test_finetune import finetune
from test_serve import GEN, FakePipeline, png_bytes, wait_until

import lvg.serve.app as serve_app
import lvg.serve.server as serve_server
from lvg.cli import main
from lvg.pipelines.pipeline import PipelineOutput
from lvg.serve.app import ServeSettings, create_app

RED, BLUE = (255, 0, 0), (0, 0, 255)
NOT_FOUND = {"type": "invalid_request_error", "param": "model", "code": "model_not_found"}


class Tinted(FakePipeline):
    """A fake pipeline whose images are all one colour of its own and whose captions name it; with ``gate``, its
    first generation call waits for the gate."""

    def __init__(self, name: str, fill: tuple[int, int, int], gate: threading.Event | None = None) -> None:
        super().__init__()
        self.name, self.fill, self.gate = name, fill, gate

    def __call__(self, prompts, config=None, **kwargs) -> PipelineOutput:
        if self.gate is not None and not self.calls:
            self.started.set()
            assert self.gate.wait(10)
        out = super().__call__(prompts, config, **kwargs)
        return PipelineOutput([Image.new("RGB", (64, 64), self.fill) for _ in out.images], out.codes, out.prompts,
                              out.seeds)  # fmt: skip

    def caption(self, images, lang="en"):
        return [f"{self.name} caption ({lang})" for _ in images]


def two_models(**settings):
    a, b = Tinted("a", RED), Tinted("b", BLUE)
    return a, b, create_app(ServeSettings(**settings), pipelines={"a": a, "b": b})


def colour(item: dict) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))).convert("RGB").getpixel((0, 0))


def assert_not_found(r: httpx.Response, name: str) -> None:
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert {k: err[k] for k in NOT_FOUND} == NOT_FOUND and repr(name) in err["message"]


# ---------------------------------------------------------------------- routing, /v1/models, 404


def test_requests_go_to_the_model_they_name_and_the_first_is_the_default():
    a, b, app = two_models()
    with TestClient(app) as c:
        assert colour(c.post(GEN, json={"prompt": "a red circle", "seed": 1}).json()["data"][0]) == RED
        assert colour(c.post(GEN, json={"prompt": "a red circle", "model": None}).json()["data"][0]) == RED
        r = c.post(GEN, json={"prompt": "a red circle", "model": "b", "n": 2, "seed": 3})
        assert r.status_code == 200 and [colour(d) for d in r.json()["data"]] == [BLUE, BLUE]
        assert [d["seed"] for d in r.json()["data"]] == [3, 4]
        assert colour(c.post(GEN, json={"prompt": "a red circle", "model": "a"}).json()["data"][0]) == RED
        upload = {"file": ("x.png", png_bytes(), "image/png")}
        assert c.post("/v1/captions", files=upload).json()["caption"] == "a caption (en)"
        r = c.post("/v1/captions", files=upload, data={"model": "b", "lang": "zh"})
        assert r.json() == {"caption": "b caption (zh)", "lang": "zh"}
        text = c.get("/metrics").text
    assert [len(call["prompts"]) for call in a.calls] == [1, 1, 1] and [len(call["prompts"]) for call in b.calls] == [2]
    assert "lvg_images_generated_total 5.0" in text  # the total over all models, as before
    assert 'lvg_model_images_generated_total{model="a"} 3.0' in text
    assert 'lvg_model_images_generated_total{model="b"} 2.0' in text
    assert 'lvg_model_ready{model="a"} 1.0' in text and 'lvg_model_ready{model="b"} 1.0' in text


def test_an_unknown_model_is_404_in_openais_error_shape():
    _, _, app = two_models()
    with TestClient(app) as c:
        assert_not_found(c.post(GEN, json={"prompt": "a red circle", "model": "dall-e-3"}), "dall-e-3")
        assert_not_found(c.post(GEN, json={"prompt": "a red circle", "model": ""}), "")
        upload = {"file": ("x.png", png_bytes(), "image/png")}
        assert_not_found(c.post("/v1/captions", files=upload, data={"model": "c"}), "c")
        assert_not_found(c.get("/v1/models/c"), "c")
        assert_not_found(c.get("/v1/models/%E7%8C%AB"), "猫")


def test_v1_models_lists_and_retrieves_in_openais_format():
    before = int(time.time())
    _, _, app = two_models()
    with TestClient(app) as c:
        listed = c.get("/v1/models").json()
        one = c.get("/v1/models/b").json()
        schema = c.get("/openapi.json").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["a", "b"]
    for m in listed["data"]:
        assert set(m) == {"id", "object", "created", "owned_by", "parent", "adapts"} and m["parent"] is None
        assert m["object"] == "model" and m["owned_by"] == "lvg" and isinstance(m["created"], int)
        assert before <= m["created"] <= int(time.time())  # the server's start, a Unix time in seconds
    assert one == listed["data"][1]
    assert {"/v1/models", "/v1/models/{model}"} <= set(schema["paths"])
    assert "code" in schema["components"]["schemas"]["ErrorBody"]["properties"]


def test_a_single_model_keeps_its_folder_name_and_old_construction():
    with TestClient(create_app(ServeSettings(), pipeline=FakePipeline())) as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["shapes-default"]
        assert c.post(GEN, json={"prompt": "a red circle", "model": "shapes-default"}).status_code == 200
    s = ServeSettings(model_dir="/somewhere/my model (v2)")
    assert s.models == {"my-model-v2": "/somewhere/my model (v2)"} and s.model_dir == "/somewhere/my model (v2)"
    assert ServeSettings(model_dir="runs/emoji/").models == {"emoji": "runs/emoji/"}
    s = ServeSettings(models={"x": "d1", "y": None}, port=9)
    assert s.model_dir == "d1" and dataclasses.replace(s, port=10).models == {"x": "d1", "y": None}
    for bad in ({}, {"": "d"}, {"a b": "d"}, {".hidden": "d"}, {"a/b": "d"}, {"a": 5}):
        with pytest.raises(ValueError, match="model"):
            ServeSettings(models=bad)
    assert ServeSettings(models={"x": "d1"}, adapters={"y": "a1"}).adapters == {"y": "a1"}
    assert ServeSettings().adapters == {}
    for bad in ({"a b": "a1"}, {"y": None}, {"x": "a1"}, ["a1"]):
        with pytest.raises(ValueError, match="model name|adapter"):
            ServeSettings(models={"x": "d1"}, adapters=bad)
    with pytest.raises(ValueError, match="not both"):
        ServeSettings(model_dir="d0", models={"x": "d1"})
    with pytest.raises(ValueError, match="not both"):
        create_app(ServeSettings(), pipeline=FakePipeline(), pipelines={"a": FakePipeline()})


# ---------------------------------------------------------------------- batching


def test_concurrent_requests_for_different_models_never_share_a_pipeline_call():
    """While a blocker runs, a1 b1 a2 b2 queue with equal settings: a gets one call with a1 a2, b one with b1 b2."""
    gate = threading.Event()
    a, b = Tinted("a", RED, gate), Tinted("b", BLUE)
    app = create_app(ServeSettings(max_batch_size=8, max_wait_ms=50), pipelines={"a": a, "b": b})
    with TestClient(app) as c, ThreadPoolExecutor(5) as pool:
        blocker = pool.submit(c.post, GEN, json={"prompt": "blocker", "model": "a", "temperature": 0.5})
        assert a.started.wait(10)
        bodies = [{"prompt": f"{m}{i}", "model": m, "seed": i} for i in (1, 2) for m in ("a", "b")]
        futures = []
        for body in bodies:  # in this order: a1 b1 a2 b2
            futures.append(pool.submit(c.post, GEN, json=body))
            wait_until(lambda: app.state.lvg.batcher.pending_images == len(futures), what="a queued request")
        gate.set()
        responses = [f.result(timeout=10) for f in futures]
        assert blocker.result(timeout=10).status_code == 200
    assert [r.status_code for r in responses] == [200] * 4
    assert [colour(r.json()["data"][0]) for r in responses] == [RED, BLUE, RED, BLUE]
    assert [sorted(call["prompts"]) for call in a.calls] == [["blocker"], ["a1", "a2"]]
    assert [sorted(call["prompts"]) for call in b.calls] == [["b1", "b2"]]


# ---------------------------------------------------------------------- loading


def test_one_model_failing_to_load_leaves_the_others_serving(monkeypatch, caplog):
    gate, loads = threading.Event(), []

    def load(folder):
        loads.append(folder)
        if folder == "slow-dir":
            assert gate.wait(10)
        if folder == "bad-dir":
            raise OSError("/secret/bad-dir/model_index.json is broken")
        return Tinted(folder, RED if folder == "good-dir" else BLUE)

    monkeypatch.setattr(serve_app, "load_pipeline", load)
    models = {"good": "good-dir", "alias": "good-dir", "slow": "slow-dir", "bad": "bad-dir"}
    with TestClient(create_app(ServeSettings(models=models))) as c:
        wait_until(lambda: app_state(c).models["alias"].pipeline is not None, what="the first models")
        assert c.get("/readyz").status_code == 503 and c.get("/readyz").json() == {"status": "loading"}
        assert colour(c.post(GEN, json={"prompt": "x"}).json()["data"][0]) == RED  # the default, good
        assert colour(c.post(GEN, json={"prompt": "x", "model": "alias"}).json()["data"][0]) == RED
        r = c.post(GEN, json={"prompt": "x", "model": "slow"})
        assert r.status_code == 503 and r.json()["error"]["message"] == "the model is still loading"
        assert "Retry-After" in r.headers
        gate.set()
        wait_until(lambda: c.get("/readyz").json()["status"] == "failed", what="the failed load")
        assert c.get("/readyz").status_code == 503 and "secret" not in c.get("/readyz").text
        assert colour(c.post(GEN, json={"prompt": "x", "model": "slow"}).json()["data"][0]) == BLUE
        r = c.post(GEN, json={"prompt": "x", "model": "bad"})
        assert r.status_code == 503 and r.json()["error"]["message"] == "the model failed to load"
        r = c.post("/v1/captions", files={"file": ("x.png", png_bytes(), "image/png")}, data={"model": "bad"})
        assert r.status_code == 503
        assert c.post(GEN, json={"prompt": "x", "model": "good"}).status_code == 200
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["good", "alias", "slow", "bad"]
        text = c.get("/metrics").text
    assert loads == ["good-dir", "slow-dir", "bad-dir"]  # a folder served under two names loads once
    assert 'lvg_model_ready{model="bad"} 0.0' in text and 'lvg_model_ready{model="slow"} 1.0' in text


def app_state(client: TestClient):
    return client.app.state.lvg


# ---------------------------------------------------------------------- the command line


def model_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": "Pipeline", "components": {}}))
    return path


@pytest.fixture
def served(monkeypatch):
    """The settings ``lvg serve`` would serve, captured instead of serving."""
    got: list[ServeSettings] = []
    monkeypatch.setattr(serve_server, "serve", got.append)
    return got


def test_cli_model_name_equals_dir(tmp_path, monkeypatch, served):
    shapes, emoji = model_folder(tmp_path / "shapes"), model_folder(tmp_path / "runs" / "lr=0.1")
    assert main(["serve", "--model", f"s={shapes}", "--model", str(emoji), "--model", f"again={shapes}"]) == 0
    assert served[-1].models == {"s": shapes, "lr-0.1": emoji, "again": shapes} and served[-1].model_dir == shapes
    assert main(["serve", "--model", str(shapes)]) == 0  # today's form: named after its folder
    assert served[-1].models == {"shapes": shapes}
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(model_folder(tmp_path / "default")))
    assert main(["serve"]) == 0
    assert served[-1].models == {"shapes-default": tmp_path / "default"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "a=x", "--model", "a=y"], "two models named 'a' (x and y)"),
        (["--model", "m/x", "--model", "n/x"], "two models named 'x'"),
        (["--model", "=x"], "the model name before '=' is empty"),
        (["--model", "a="], "no model folder after '='"),
        (["--model", "a b=x"], "model name 'a b' must be"),
        (["--model", ""], "the model folder is empty"),
    ],
)
def test_cli_model_errors_are_argparse_errors(argv, message, capsys, served):
    with pytest.raises(SystemExit) as e:
        main(["serve", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "lvg serve: error: argument --model: " in err and message in err, err
    assert "Traceback" not in err and not served


def test_cli_adapter_name_equals_dir(tmp_path, served):
    shapes = model_folder(tmp_path / "shapes")
    argv = ["serve", "--adapter", f"moons={tmp_path / 'lora' / 'adapter'}", "--model", f"s={shapes}",
            "--adapter", f"suns={tmp_path / 'lr=0.1'}"]  # fmt: skip
    assert main(argv) == 0
    assert served[-1].models == {"s": shapes}
    assert served[-1].adapters == {"moons": tmp_path / "lora" / "adapter", "suns": tmp_path / "lr=0.1"}
    assert main(["serve", "--model", f"s={shapes}"]) == 0 and served[-1].adapters == {}
    # one name twice: a planner and a painter adapter served together as one model
    assert main(["serve", "--model", f"s={shapes}", "--adapter", "both=p1", "--adapter", "both=p2"]) == 0
    assert served[-1].adapters == {"both": [Path("p1"), Path("p2")]}


@pytest.mark.parametrize(
    ("argv", "option", "message"),
    [
        (["--adapter", "runs/adapter"], "--adapter", "name the adapter, NAME=DIR"),
        (["--adapter", "=x"], "--adapter", "the model name before '=' is empty"),
        (["--adapter", "a="], "--adapter", "no model folder after '='"),
        (["--adapter", "a b=x"], "--adapter", "model name 'a b' must be"),
        (["--model", "a=x", "--adapter", "a=y"], "--adapter", "two models named 'a' (x and y)"),
        (["--adapter", "a=y", "--model", "a=x"], "--model", "two models named 'a' (y and x)"),
    ],
)
def test_cli_adapter_errors_are_argparse_errors(argv, option, message, capsys, served):
    with pytest.raises(SystemExit) as e:
        main(["serve", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"lvg serve: error: argument {option}: " in err and message in err, err
    assert "Traceback" not in err and not served


def test_cli_adapter_named_like_the_default_model_is_refused(tmp_path, monkeypatch, capsys, served):
    monkeypatch.setenv("LVG_DEFAULT_MODEL", str(model_folder(tmp_path / "default")))
    assert main(["serve", "--adapter", f"shapes-default={tmp_path}"]) == 2
    assert "has the name of a served model" in capsys.readouterr().err and not served


def test_cli_missing_folder_fails_before_serving(tmp_path, served):
    assert main(["serve", "--model", f"a={model_folder(tmp_path / 'a')}", "--model", f"b={tmp_path / 'nope'}"]) == 2
    assert not served


# ---------------------------------------------------------------------- the openai client, over HTTP


@contextmanager
def live_server(app):
    """``app`` served by uvicorn on a free 127.0.0.1 port in a background thread; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=20, what="the server")
        assert thread.is_alive(), "the server thread exited during startup"
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_the_openai_client_lists_retrieves_and_generates(tmp_path):
    openai = pytest.importorskip("openai")
    (tmp_path / "keys.txt").write_text("sk-test-key\n", encoding="utf-8")
    a, b, app = two_models(api_keys_file=tmp_path / "keys.txt")
    with live_server(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test-key", max_retries=0, timeout=30)
        assert [m.id for m in client.models.list()] == ["a", "b"]
        model = client.models.retrieve("b")
        assert (model.id, model.object, model.owned_by) == ("b", "model", "lvg") and isinstance(model.created, int)
        images = client.images.generate(model="b", prompt="a red circle", response_format="b64_json", n=2)
        assert [colour(d.model_dump()) for d in images.data] == [BLUE, BLUE] and not a.calls
        images = client.images.generate(prompt="a red circle", response_format="b64_json")  # no model: the default
        assert colour(images.data[0].model_dump()) == RED
        with pytest.raises(openai.NotFoundError) as e:
            client.models.retrieve("dall-e-3")
        assert (e.value.status_code, e.value.code, e.value.param) == (404, "model_not_found", "model")
        with pytest.raises(openai.NotFoundError):
            client.images.generate(model="dall-e-3", prompt="a red circle", response_format="b64_json")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()


# ---------------------------------------------------------------------- the web page's picker


def test_web_page_picks_the_model(tmp_path):
    """Headless Chromium (skipped without it): the picker lists both models, and generation and captioning use the
    picked one."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip(f"{chromium} not found")
    sync_api = pytest.importorskip("playwright.sync_api")
    a, b, app = two_models()
    upload = tmp_path / "x.png"
    upload.write_bytes(png_bytes())
    with live_server(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--headless=new", "--no-sandbox",
                                                                          "--disable-gpu"])  # fmt: skip
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(url + "/")
            page.locator("#model-picker").wait_for(state="visible")
            assert page.locator("#model option").all_inner_texts() == ["a (default)", "b"]
            page.select_option("#model", "b")
            page.fill("#prompt", "a red circle")
            page.fill("#num-images", "1")
            page.click("#generate")
            page.locator("#results img").first.wait_for()
            page.set_input_files("#caption-file", str(upload))
            page.click("#caption-button")
            page.locator("#caption-output", has_text="caption").wait_for()
            caption = page.locator("#caption-output").inner_text()
        finally:
            browser.close()
    assert caption == "b caption (en)" and len(b.calls) == 1 and not a.calls


# ---------------------------------------------------------------------- adapters (a tiny real pipeline)

# new labels made of words the tiny painter knows, so the adapted model can both plan and paint them
ADAPTED = {"a red blue circle": ("red blue circle", [8, 8, 40, 40]),
           "a pink green square": ("pink green square", [24, 20, 60, 56])}  # fmt: skip


@pytest.fixture(scope="module")
def adapter_setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny planned model, a LoRA adapter of its planner trained on :data:`ADAPTED`, and a copy of that adapter
    that names another base (one no server here serves)."""
    root = tmp_path_factory.mktemp("adapters")
    base = make_tiny_planned(root / "base", reader=False)
    data = write_layout_folder(root / "data", ADAPTED)
    finetune(base / "planner", data, root / "lora", "lora")
    orphan = root / "orphan"
    shutil.copytree(root / "lora" / "adapter", orphan)
    meta = json.loads((orphan / "lvg_adapter.json").read_text(encoding="utf-8"))
    (orphan / "lvg_adapter.json").write_text(json.dumps({**meta, "base_sha256": "0" * 64}), encoding="utf-8")
    return base, root / "lora" / "adapter", orphan


def test_an_adapter_is_served_beside_its_base_which_stays_unchanged(adapter_setup, caplog):
    from lvg.pipelines import load_pipeline

    base_dir, adapter, orphan = adapter_setup
    pipe = load_pipeline(base_dir)
    planner, body = pipe.planner, {"prompt": "a red circle", "seed": 5, "n": 2}
    with TestClient(create_app(ServeSettings(), pipelines={"shapes": pipe})) as c:
        before = c.post(GEN, json=body).json()["data"]
    settings = ServeSettings(adapters={"moons": adapter, "orphan": orphan})
    with TestClient(create_app(settings, pipelines={"shapes": pipe})) as c:
        wait_until(lambda: c.get("/readyz").json()["status"] == "failed", timeout=60, what="the adapters loading")
        state = app_state(c)
        moons = state.models["moons"].pipeline
        listed = c.get("/v1/models").json()["data"]
        assert [(m["id"], m["parent"]) for m in listed] == [("shapes", None), ("moons", "shapes"), ("orphan", None)]
        assert c.get("/v1/models/moons").json()["parent"] == "shapes"
        assert c.get("/v1/models/moons").json()["adapts"] == ["planner"] and listed[0]["adapts"] is None
        # the adapter plans its new labels, and paints them (the painter knows their words)
        got = moons.plan(list(ADAPTED), temperature=1e-4, seed=0)
        assert [lay.objects[0].label for lay in got] == [label for label, _ in ADAPTED.values()]  # see test_finetune
        r = c.post(GEN, json={"prompt": "a red blue circle", "model": "moons", "temperature": 0.0001, "seed": 1})
        assert r.status_code == 200, r.text
        # the base model: unchanged, byte for byte; only the planner is the adapter's own
        assert c.post(GEN, json=body).json()["data"] == before
        assert c.post(GEN, json={**body, "model": "shapes"}).json()["data"] == before
        assert pipe.planner is planner and state.models["shapes"].pipeline is pipe and moons is not pipe
        assert moons.planner is not planner
        assert moons.painter is pipe.painter and moons.image_tokenizer is pipe.image_tokenizer
        assert moons.reader is pipe.reader and moons.clip is pipe.clip
        # an adapter whose base is not served fails to load; the others keep serving
        r = c.post(GEN, json={"prompt": "a red circle", "model": "orphan"})
        assert r.status_code == 503 and r.json()["error"]["message"] == "the model failed to load"
        assert c.get("/readyz").json() == {"status": "failed", "error": serve_app.FAILED_LOAD}
        assert c.post(GEN, json={"prompt": "a red blue circle", "model": "moons"}).status_code == 200
    assert "no served model has the planner the adapter orphan" in caplog.text
