"""``lvg serve``: the HTTP API over a fake pipeline (fast), a tiny real one, and a real ``lvg serve`` process."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import lvg.serve.app as serve_app
from lvg.cli import main
from lvg.pipelines.pipeline import Pipeline, PipelineOutput
from lvg.sampling import GenerationConfig
from lvg.serve.app import ServeSettings, create_app
from lvg.serve.auth import ApiKeys, RateLimiter
from lvg.serve.batching import Batcher, ClientDisconnected, DeadlineExceeded
from lvg.serve.safety import PromptFilter

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"
GEN = "/v1/images/generations"


class WordTokenizer:
    """Test double of the HF tokenizer: one token per word."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": text.split()}


class FakePipeline:
    """Solid-colour 64x64 images, the colour a pure function of (prompt, seed); optionally slow; counts calls."""

    generation_config = GenerationConfig()
    can_caption = True
    can_edit = True

    def __init__(self, delay: float = 0.0, max_text_tokens: int = 16) -> None:
        self.delay = delay
        self.text_tokenizer = WordTokenizer()
        self.max_prompt_tokens = max_text_tokens
        self.calls: list[dict] = []
        self.started = threading.Event()
        self.finished = threading.Event()

    @staticmethod
    def colour(prompt: str, seed: int) -> tuple[int, int, int]:
        h = zlib.crc32(f"{prompt}|{seed}".encode())
        return h & 255, (h >> 8) & 255, (h >> 16) & 255

    def __call__(self, prompts, config=None, batch_size=32, seeds=None, **settings) -> PipelineOutput:
        cfg = GenerationConfig.from_kwargs(config, **settings)  # the pipeline protocol: a config and/or keywords
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        jobs = [p for p in prompts for _ in range(cfg.num_images)]
        seeds = list(seeds) if seeds is not None else [cfg.seed + j for j in range(len(jobs))]
        self.calls.append(
            dict(prompts=jobs, seeds=seeds, temperature=cfg.temperature, guidance_scale=cfg.guidance_scale)
        )
        self.started.set()
        time.sleep(self.delay)
        images = [Image.new("RGB", (64, 64), self.colour(p, s)) for p, s in zip(jobs, seeds, strict=True)]
        self.finished.set()
        return PipelineOutput(images, torch.zeros(len(jobs), 8, 8), jobs, seeds)

    def caption(self, images, lang="en"):
        return [f"{lang} caption of a {im.size[0]}x{im.size[1]} image" for im in images]

    def edit(self, image, instruction, seed=0, allow_unsupported=False):
        from lvg.pipelines.edit import EditOutput

        return EditOutput([Image.new("RGB", (64, 64), self.colour(instruction, seed))], [])


@contextmanager
def serve(pipeline=None, **settings):
    """A TestClient (lifespan run) over an app with these settings."""
    app = create_app(ServeSettings(**settings), pipeline=FakePipeline() if pipeline is None else pipeline)
    with TestClient(app) as client:
        client.app_state = app.state.lvg
        yield client


def decode(item: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


def png_bytes(size=(64, 64), mode="RGB", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return buf.getvalue()


def wait_until(check, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------- generation


def test_generation_returns_png_images_with_their_seeds():
    with serve() as c:
        r = c.post(GEN, json={"prompt": "a red circle", "n": 3, "seed": 5, "size": "128x128"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body["created"], int) and [d["seed"] for d in body["data"]] == [5, 6, 7]
        for d in body["data"]:
            im = decode(d)
            assert im.format == "PNG" and im.size == (128, 128)
            assert im.convert("RGB").getpixel((100, 3)) == FakePipeline.colour("a red circle", d["seed"])
        r = c.post(GEN, json={"prompt": "a red circle", "model": "shapes-default", "user": "x"})  # OpenAI's fields
        assert r.status_code == 200 and decode(r.json()["data"][0]).size == (64, 64)
        r = c.post(GEN, json={"prompt": "a red circle", "model": "dall-e-3"})  # a model not served: 404
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_seeds_reproduce_and_a_request_gets_what_it_would_alone():
    with serve() as c:
        a = c.post(GEN, json={"prompt": "a blue star", "n": 2, "seed": 40}).json()["data"]
        b = c.post(GEN, json={"prompt": "a blue star", "n": 2, "seed": 40}).json()["data"]
        one = c.post(GEN, json={"prompt": "a blue star", "seed": 41}).json()["data"]
        assert [x["b64_json"] for x in a] == [x["b64_json"] for x in b]
        assert one[0]["b64_json"] == a[1]["b64_json"]  # image j uses seed + j
        rand = c.post(GEN, json={"prompt": "a blue star", "n": 2}).json()["data"]
        assert rand[1]["seed"] == rand[0]["seed"] + 1


def test_concurrent_requests_share_one_pipeline_call_grouped_by_parameters():
    fake = FakePipeline()
    with serve(fake, max_batch_size=4, max_wait_ms=2000) as c:
        bodies = [{"prompt": f"shape {i}", "seed": 100 * i} for i in range(4)]
        bodies.append({"prompt": "other", "seed": 7, "temperature": 0.5, "n": 4})  # different sampling: own call
        barrier = threading.Barrier(len(bodies))

        def post(body):
            barrier.wait(timeout=5)
            return c.post(GEN, json=body)

        with ThreadPoolExecutor(len(bodies)) as pool:
            responses = list(pool.map(post, bodies))
    assert [r.status_code for r in responses] == [200] * 5
    assert len(fake.calls) == 2, fake.calls
    merged = next(call for call in fake.calls if call["temperature"] == 1.0)
    assert sorted(zip(merged["prompts"], merged["seeds"])) == [(f"shape {i}", 100 * i) for i in range(4)]
    for body, r in zip(bodies, responses):
        for j, d in enumerate(r.json()["data"]):
            assert d["seed"] == body["seed"] + j
            assert decode(d).convert("RGB").getpixel((0, 0)) == FakePipeline.colour(body["prompt"], body["seed"] + j)


def test_no_batching_runs_each_request_alone():
    fake = FakePipeline(delay=0.2)
    with serve(fake, batching=False, max_wait_ms=1000) as c, ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda i: c.post(GEN, json={"prompt": f"p{i}", "seed": i}), range(3)))
    assert [r.status_code for r in rs] == [200] * 3 and len(fake.calls) == 3


def test_full_queue_is_429_with_retry_after():
    fake = FakePipeline(delay=0.5)
    with serve(fake, queue_size=2, max_batch_size=1, max_wait_ms=0) as c, ThreadPoolExecutor(2) as pool:
        first = pool.submit(c.post, GEN, json={"prompt": "first", "seed": 1})
        assert fake.started.wait(5)  # running: out of the queue
        second = pool.submit(c.post, GEN, json={"prompt": "second", "seed": 2, "n": 2})
        wait_until(lambda: c.app_state.batcher.pending_images == 2, what="a queued request")
        r = c.post(GEN, json={"prompt": "third", "seed": 3})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["type"] == "queue_full"
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_deadline_is_504_and_queued_work_is_dropped():
    fake = FakePipeline(delay=1.0)
    with serve(fake, request_timeout_s=0.3, max_batch_size=1, max_wait_ms=0) as c, ThreadPoolExecutor(1) as pool:
        running = pool.submit(c.post, GEN, json={"prompt": "slow", "seed": 1})
        assert fake.started.wait(5)
        queued = c.post(GEN, json={"prompt": "queued", "seed": 2})
        assert queued.status_code == 504 and "0.3 s" in queued.json()["error"]["message"]
        assert running.result().status_code == 504
        assert fake.finished.wait(5)
        time.sleep(0.1)
        assert [call["prompts"] for call in fake.calls] == [["slow"]]  # the queued one never ran
        assert c.app_state.batcher.pending_images == 0


def test_disconnected_client_cancels_its_queued_job():
    ran = []

    async def scenario():
        b = Batcher(lambda key, payloads: ran.append(payloads) or payloads, max_wait_s=0.5)
        job = b.submit("k", 1, "x", timeout_s=5)

        async def gone() -> bool:
            return True

        with pytest.raises(ClientDisconnected):
            await b.wait(job, gone, poll_s=0.01)
        assert b.pending_images == 0 and job.future.cancelled()
        job = b.submit("k", 1, "y", timeout_s=0.05)
        with pytest.raises(DeadlineExceeded):
            await b.wait(job)
        await asyncio.sleep(0.6)  # past the batching window: nothing left to run
        await b.stop()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert ran == []


def test_client_that_disconnects_over_http_leaves_nothing_to_run():
    import uvicorn

    fake = FakePipeline()
    app = create_app(ServeSettings(max_wait_ms=3000), fake)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: _status(url + "/readyz") == 200, what="the server")
        with pytest.raises(httpx.TimeoutException):  # gives up while its job waits in the batching window
            httpx.post(url + GEN, json={"prompt": "a red circle"}, timeout=0.3)
        wait_until(lambda: app.state.lvg.batcher.pending_images == 0, timeout=2, what="the job to be dropped")
        assert fake.calls == []
        wait_until(lambda: 'status="499"' in httpx.get(url + "/metrics").text, timeout=2, what="a 499")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.TransportError:
        return None


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 0), ("n", 9), ("guidance_scale", -1), ("temperature", -0.5), ("top_k", -1), ("top_p", 0), ("top_p", 1.5),
     ("painter_temperature", -1), ("size", "100x100"), ("response_format", "url"), ("seed", -1), ("prompt", ""), ("prompt", "   ")],
)  # fmt: skip
def test_bad_parameters_are_422_naming_the_field(field, value):
    with serve() as c:
        r = c.post(GEN, json={"prompt": "a red circle", field: value})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["param"] == field and err["message"].startswith(f"{field}:"), err


def test_the_server_never_hands_out_a_seed_it_refuses():
    """image j uses seed + j: seed + n - 1 beyond MAX_SEED is refused up front, naming seed; the last seed handed
    out is accepted back."""
    from lvg.sampling.config import MAX_SEED

    with serve() as c:
        r = c.post(GEN, json={"prompt": "a red circle", "seed": MAX_SEED - 1, "n": 3})
        ok = c.post(GEN, json={"prompt": "a red circle", "seed": MAX_SEED - 2, "n": 3})
        last = ok.json()["data"][-1]["seed"]
        again = c.post(GEN, json={"prompt": "a red circle", "seed": last})
        drawn = [c.post(GEN, json={"prompt": "a red circle", "n": 8}).json()["data"] for _ in range(3)]
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["param"] == "seed" and err["message"].startswith(
        f"seed: Value error, seed must be at most {MAX_SEED - 2}"
    )
    assert ok.status_code == 200 and last == MAX_SEED and again.status_code == 200
    assert again.json()["data"][0]["b64_json"] == ok.json()["data"][-1]["b64_json"]
    assert all(0 <= d["seed"] <= MAX_SEED for data in drawn for d in data)


@pytest.mark.parametrize("seeds", [[-5], [1.5], [True], ["3"], [3], 7])
def test_a_seeds_list_is_422_naming_seeds(seeds):
    """Per-image seeds are not part of the API: never silently ignored; a bad item is named."""
    with serve() as c:
        r = c.post(GEN, json={"prompt": "a red circle", "seeds": seeds})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["param"] == "seeds" and err["message"].startswith("seeds: "), err
    if seeds in ([-5], [1.5]):
        assert "seeds[0] must be an integer in [0, " in err["message"] and str(seeds[0]) in err["message"]


def test_pipeline_seed_lists_are_checked():
    from lvg.pipelines.pipeline import resolve_seeds
    from lvg.sampling.config import MAX_SEED

    assert resolve_seeds(2, seeds=[0, MAX_SEED]) == [0, MAX_SEED]
    for bad in ([-5, 1], [1, 1.5], [True, 1], [1, MAX_SEED + 1]):
        with pytest.raises(ValueError, match=r"seeds\[\d\] must be an integer in \[0, "):
            resolve_seeds(2, seeds=bad)
    with pytest.raises(ValueError, match="^seed must be at most"):
        resolve_seeds(3, seed=MAX_SEED - 1)  # (3 images over all prompts: seed + 2 > MAX_SEED)


def test_prompt_limit_is_in_tokens():
    with serve(FakePipeline(max_text_tokens=4)) as c:
        assert c.post(GEN, json={"prompt": "one two three four"}).status_code == 200
        r = c.post(GEN, json={"prompt": "one two three four five"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "prompt"
    assert "5 tokens" in r.json()["error"]["message"]


def test_huge_body_is_413_by_header_and_by_stream():
    with serve(max_body_bytes=1000) as c:
        r = c.post(GEN, content=b'{"prompt": "' + b"a" * 5000 + b'"}', headers={"content-type": "application/json"})
        assert r.status_code == 413
        chunks = iter([b'{"prompt": "', b"a" * 3000, b'"}'])  # no Content-Length: counted while streamed
        r = c.post(GEN, content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert c.post(GEN, json={"prompt": "a red circle"}).status_code == 200


# ---------------------------------------------------------------------- captions


def test_caption_upload_ok_wrong_type_too_large_undecodable_and_bomb():
    with serve(max_upload_bytes=50_000, max_upload_pixels=1_000_000) as c:
        r = c.post("/v1/captions", files={"file": ("a.png", png_bytes((128, 128)), "image/png")}, data={"lang": "zh"})
        assert r.status_code == 200 and r.json() == {"caption": "zh caption of a 128x128 image", "lang": "zh"}
        r = c.post("/v1/captions", files={"file": ("a.jpg", png_bytes(fmt="JPEG"), "image/jpeg")})
        assert r.status_code == 200 and r.json()["lang"] == "en"
        r = c.post("/v1/captions", files={"file": ("a.txt", b"hello", "text/plain")})
        assert r.status_code == 415
        r = c.post("/v1/captions", files={"file": ("a.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")})
        assert r.status_code == 422 and r.json()["error"]["param"] == "file"
        r = c.post("/v1/captions", files={"file": ("a.png", os.urandom(60_000), "image/png")})
        assert r.status_code == 413
        bomb = png_bytes((5000, 5000), mode="1")  # 25 M pixels in a few kB
        assert len(bomb) < 50_000
        r = c.post("/v1/captions", files={"file": ("bomb.png", bomb, "image/png")})
        assert r.status_code == 422 and "pixels" in r.json()["error"]["message"]
        r = c.post("/v1/captions", files={"file": ("a.png", png_bytes(), "image/png")}, data={"lang": "fr"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "lang"


# ---------------------------------------------------------------------- auth, readiness, rate limit


@pytest.fixture
def keys_file(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# API keys\n\nkey-one\n  key-two  \n", encoding="utf-8")
    return f


def test_auth_required_except_health_and_page(keys_file):
    with serve(api_keys_file=keys_file) as c:
        r = c.post(GEN, json={"prompt": "a red circle"})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        r = c.post(GEN, json={"prompt": "a red circle"}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]
        for key in ("key-one", "key-two"):
            r = c.post(GEN, json={"prompt": "a red circle"}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/").status_code in (200, 404) and c.get("/").status_code != 401
        assert c.get("/metrics").status_code == 401 and c.get("/openapi.json").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer key-one"}).status_code == 200
    keys = ApiKeys.from_file(keys_file)
    assert len(keys) == 2 and keys.identify("key-one") and keys.identify("key-three") is None
    assert "key-one" not in repr(vars(keys))  # only hashes are kept


def test_per_key_rate_limit(keys_file):
    with serve(api_keys_file=keys_file, rate_limit_per_minute=2) as c:
        one, two = ({"Authorization": f"Bearer {k}"} for k in ("key-one", "key-two"))
        assert [c.post(GEN, json={"prompt": "a"}, headers=one).status_code for _ in range(2)] == [200, 200]
        r = c.post(GEN, json={"prompt": "a"}, headers=one)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert c.post(GEN, json={"prompt": "a"}, headers=two).status_code == 200  # its own bucket
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(60)] == [0.0] * 60 and limiter.acquire("k") > 0
    now[0] = 1.0
    assert limiter.acquire("k") == 0.0  # refilled one token per second


def test_readiness_is_503_until_the_model_loads(monkeypatch):
    gate = threading.Event()

    def slow_load(model_dir):
        assert gate.wait(10)
        return FakePipeline()

    monkeypatch.setattr(serve_app, "load_pipeline", slow_load)
    with TestClient(create_app(ServeSettings(model_dir="unused"))) as c:
        assert c.get("/readyz").status_code == 503 and c.get("/readyz").json() == {"status": "loading"}
        assert c.get("/healthz").status_code == 200
        r = c.post(GEN, json={"prompt": "a red circle"})
        assert r.status_code == 503 and "Retry-After" in r.headers
        gate.set()
        wait_until(lambda: c.get("/readyz").status_code == 200, what="readiness")
        assert c.get("/readyz").json() == {"status": "ready"}
        assert c.post(GEN, json={"prompt": "a red circle"}).status_code == 200

    def broken(model_dir):
        raise FileNotFoundError("no such model")

    monkeypatch.setattr(serve_app, "load_pipeline", broken)
    with TestClient(create_app(ServeSettings(model_dir="unused"))) as c:
        wait_until(lambda: c.get("/readyz").json()["status"] == "failed", what="a failed load")
        assert c.get("/readyz").status_code == 503


def test_draining_refuses_new_requests():
    with serve() as c:
        c.app_state.begin_drain()
        assert c.post(GEN, json={"prompt": "a red circle"}).status_code == 503
        assert c.get("/readyz").status_code == 503 and c.get("/healthz").status_code == 200


# ---------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "prompt",
    [
        "KILL the red circle",
        "a k i l l scene",
        "ｋｉｌｌ",
        "s.u.i.c.i.d.e",
        "Self-Harm",
        "一个杀人的圆",
        "自 杀",
        "血，腥",
    ],
)
def test_blocklisted_prompts_are_refused(prompt):
    with serve() as c:
        r = c.post(GEN, json={"prompt": prompt})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "content_policy" and "list, category:" in err["message"] and prompt not in err["message"]


@pytest.mark.parametrize(
    "prompt", ["a red circle", "a skill", "the therapist", "一个蓝色正方形", "三个黄色星形，黑色背景"]
)
def test_benign_prompts_pass(prompt):
    assert PromptFilter.from_files().check(prompt) is None
    with serve() as c:
        assert c.post(GEN, json={"prompt": prompt}).status_code == 200


def test_blocklists_are_configurable(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("# custom\n[shapes]\nhexagon\n", encoding="utf-8")
    with serve(blocklist_files=[f]) as c:
        r = c.post(GEN, json={"prompt": "a big HEXAGON"})
        assert r.status_code == 400 and "mine list, category: shapes" in r.json()["error"]["message"]
        assert c.post(GEN, json={"prompt": "kill"}).status_code == 200  # the shipped lists were replaced


# ---------------------------------------------------------------------- metrics, logs, schema


def test_metrics_and_openapi():
    with serve() as c:
        c.post(GEN, json={"prompt": "a red circle", "n": 2})
        c.post(GEN, json={"prompt": "a red circle", "n": 0})
        text = c.get("/metrics").text
        schema = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 404 and c.get("/redoc").status_code == 404
    assert 'lvg_requests_total{route="/v1/images/generations",status="200"} 1.0' in text
    assert 'lvg_requests_total{route="/v1/images/generations",status="422"} 1.0' in text
    assert "lvg_images_generated_total 2.0" in text and "lvg_queue_depth 0.0" in text
    assert 'lvg_request_latency_seconds_count{route="/v1/images/generations"} 2.0' in text
    assert "lvg_batch_size_count 1.0" in text
    assert {GEN, "/v1/captions", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    req = schema["components"]["schemas"]["ImageGenerationRequest"]["properties"]
    top_p = next(t for t in req["top_p"]["anyOf"] if t.get("type") == "number")  # number, or null: the model's own
    assert req["n"]["maximum"] == 8 and top_p["exclusiveMinimum"] == 0


def test_prompts_stay_out_of_logs_unless_asked(caplog):
    caplog.set_level(logging.INFO, logger="lvg.serve")
    with serve() as c:
        c.post(GEN, json={"prompt": "a secret purple hexagon", "n": 2})
    lines = [r.getMessage() for r in caplog.records if r.name == "lvg.serve"]
    assert any(line.startswith(f"POST {GEN} 200 ") and line.endswith("n=2") for line in lines), lines
    assert not any("secret" in line for line in lines)
    caplog.clear()
    with serve(log_prompts=True) as c:
        c.post(GEN, json={"prompt": "a secret purple hexagon"})
    assert any("secret purple hexagon" in r.getMessage() for r in caplog.records if r.name == "lvg.serve")


def test_settings_and_keys_are_checked(tmp_path):
    with pytest.raises(ValueError, match="max_batch_size"):
        ServeSettings(max_batch_size=0)
    with pytest.raises(ValueError, match="max_images_per_request"):
        ServeSettings(max_images_per_request=65)
    empty = tmp_path / "keys.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no keys"):
        create_app(ServeSettings(api_keys_file=empty), FakePipeline())
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2


# ---------------------------------------------------------------------- the tiny real pipeline


class CountingPipeline:
    """Wraps a real pipeline and counts its generation calls."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe, self.calls = pipe, 0
        self.text_tokenizer, self.max_prompt_tokens = pipe.text_tokenizer, pipe.max_prompt_tokens
        self.generation_config, self.can_caption = pipe.generation_config, pipe.can_caption

    def __call__(self, prompts, seeds=None, **kw):
        self.calls += 1
        return self.pipe(prompts, seeds=seeds, **kw)

    def caption(self, images, lang="en"):
        return self.pipe.caption(images, lang=lang)


def test_pipeline_per_image_seeds(tiny_pipeline_dir):
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    both = pipe(["a red circle", "一个蓝色正方形"], seeds=[5, 9], guidance_scale=2.0)
    assert both.seeds == [5, 9]
    assert both.images[0].tobytes() == pipe("a red circle", seed=5, guidance_scale=2.0).images[0].tobytes()
    assert both.images[1].tobytes() == pipe("一个蓝色正方形", seed=9, guidance_scale=2.0).images[0].tobytes()
    with pytest.raises(ValueError, match="one seed per image"):
        pipe(["a", "b"], seeds=[1])


def test_real_pipeline_merged_requests_match_solo_runs(tiny_pipeline_dir):
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    counting = CountingPipeline(pipe)
    bodies = [{"prompt": "a red circle", "n": 2, "seed": 3}, {"prompt": "一个蓝色正方形", "seed": 11}]
    with serve(counting, max_batch_size=3, max_wait_ms=2000) as c:
        barrier = threading.Barrier(2)

        def post(body):
            barrier.wait(timeout=5)
            return c.post(GEN, json=body)

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(post, bodies))
        r = c.post("/v1/captions", files={"file": ("a.png", base64.b64decode(responses[0].json()["data"][0]["b64_json"]),
                                                   "image/png")})  # fmt: skip
        assert r.status_code == 200 and isinstance(r.json()["caption"], str)
    assert counting.calls == 1  # both requests in one pipeline call
    for body, resp in zip(bodies, responses):
        assert resp.status_code == 200
        solo = pipe(body["prompt"], num_images=body.get("n", 1), seed=body["seed"])
        for d, im in zip(resp.json()["data"], solo.images, strict=True):
            assert decode(d).convert("RGB").tobytes() == im.tobytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lvg_serve_drains_on_sigterm(tiny_pipeline_dir):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lvg.cli", "serve", "--model", str(tiny_pipeline_dir), "--port",
                             str(port), "--max-wait-ms", "1500", "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a bound against a hang, not a speed target (a loaded machine is slow)
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("lvg serve did not become ready in 120 s")
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(httpx.post, url + GEN, json={"prompt": "a red circle", "seed": 1}, timeout=30)
            wait_until(lambda: "lvg_queue_depth 1.0" in httpx.get(url + "/metrics", timeout=2).text, what="queued")
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            try:
                late = httpx.post(url + GEN, json={"prompt": "a red circle"}, timeout=5).status_code
            except httpx.TransportError:
                late = "refused"
            assert late in (503, "refused")
            r = slow.result(timeout=30)
        assert r.status_code == 200 and r.json()["data"][0]["seed"] == 1
        assert proc.wait(timeout=20) == 0
        log = proc.stdout.read().decode()
        assert f"POST {GEN} 200" in log and "a red circle" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
