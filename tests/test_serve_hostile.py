"""``lvg serve`` under hostile input and load: strict types, odd bodies, exact 429 counts, auth everywhere,
constant-time keys, a /readyz that leaks nothing, and bounded schemathesis fuzzing of every route (0 5xx)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_serve import GEN, FakePipeline, png_bytes, serve, wait_until

import lvg.serve.app as serve_app
import lvg.serve.auth as auth
from lvg.serve.app import ServeSettings, create_app
from lvg.serve.auth import ApiKeys

ROOT = Path(__file__).resolve().parents[1]


STRICT = [("n", "2"), ("n", True), ("n", 2.0), ("n", 10**6), ("n", 2**70), ("seed", 2**70), ("seed", "3"),
          ("seed", 1.5), ("top_k", "4"), ("temperature", "0.5"), ("size", "64x65"), ("size", 64), ("size", "0x0"),
          ("prompt", 5), ("prompt", ["a"]), ("prompt", None), ("guidance_scale", True)]  # fmt: skip
MALFORMED = [b'{"prompt": "a red circle", "temperature": NaN}', b'{"prompt": "a red circle", "temperature": Infinity}',
             b'{"prompt": "a red circle", "guidance_scale": -Infinity}', b'{"prompt": "a red circle", "top_p": 1e999}',
             b'{"prompt": ', b"not json at all", b"[]", b"null", b'"a red circle"', b""]  # fmt: skip


def test_types_are_strict_and_bounds_name_the_field():
    with serve() as c:
        for field, value in STRICT:
            r = c.post(GEN, json={"prompt": "a red circle", field: value})
            assert r.status_code == 422 and r.json()["error"]["param"] == field, (field, value, r.text)


def test_malformed_json_and_non_finite_numbers_are_4xx():
    with serve() as c:
        for raw in MALFORMED:
            r = c.post(GEN, content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 422 and "error" in r.json(), (raw, r.text)
        r = c.post(GEN, content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "error" in r.json()  # undecodable bytes


def test_big_bodies_nul_bytes_and_emoji_never_5xx():
    with serve() as c:
        five_mb = json.dumps({"prompt": "a" * 5_000_000}).encode()
        assert c.post(GEN, content=five_mb, headers={"content-type": "application/json"}).status_code == 413
        assert c.post(GEN, json={"prompt": "a red\x00 circle", "seed": 1}).status_code == 200
        assert c.post(GEN, json={"prompt": "a red circle 🔴🟦👍🏽", "seed": 1}).status_code == 200
        assert c.post(GEN, json={"prompt": "\x00" * 10}).status_code in (200, 400, 422)
        assert c.post(GEN, json={"prompt": "a red circle", "extra": "\x00" * 1000}).status_code == 200
        r = c.post("/v1/captions", files={"file": ("x.png", b"\x00" * 100, "image/png")})
        assert r.status_code == 422
        r = c.post("/v1/captions", files={"file": ("x.png", png_bytes(), "image/png")}, data={"lang": "\x00"})
        assert r.status_code == 422


def test_a_real_pipeline_takes_nul_bytes_emoji_and_huge_seeds(tiny_pipeline_dir):
    from lvg.pipelines import load_pipeline

    with serve(load_pipeline(tiny_pipeline_dir)) as c:
        for prompt in ("a red\x00 circle", "🔴🟦", "红色\u200b圆形", "a" * 60):
            r = c.post(GEN, json={"prompt": prompt, "seed": 2**62})
            assert r.status_code in (200, 422), r.text
        assert c.post(GEN, json={"prompt": "a red circle", "seed": 2**70}).status_code == 422


class GatedPipeline(FakePipeline):
    """The first call waits for ``gate``; later calls return at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, prompts, config=None, **kwargs):
        if not self.calls:
            self.calls.append({})
            self.started.set()
            assert self.gate.wait(30)
            self.calls.clear()
        return super().__call__(prompts, config, **kwargs)


@pytest.mark.parametrize("queue_size", [1, 4])
def test_overload_gives_exactly_the_excess_as_429_with_retry_after(queue_size):
    """A burst of 10 single-image requests while one runs: exactly ``10 - queue_size`` are 429, each with Retry-After."""
    fake = GatedPipeline()
    burst = 10
    with serve(fake, queue_size=queue_size, max_batch_size=1, max_wait_ms=0) as c, ThreadPoolExecutor(burst) as pool:
        first = pool.submit(c.post, GEN, json={"prompt": "first", "seed": 0})
        assert fake.started.wait(10)  # running, so out of the queue
        futures = [pool.submit(c.post, GEN, json={"prompt": f"p{i}", "seed": i}) for i in range(burst)]
        wait_until(lambda: sum(f.done() for f in futures) == burst - queue_size, timeout=10, what="the refusals")
        fake.gate.set()
        codes = [f.result().status_code for f in futures]
        refused = [f.result() for f in futures if f.result().status_code == 429]
        assert first.result().status_code == 200
    assert codes.count(429) == burst - queue_size and codes.count(200) == queue_size, codes
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)


@pytest.fixture
def keys_file(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# keys\nsecret-one\nsecret-two\n")
    return f


def test_every_protected_route_is_401_without_a_key(keys_file):
    with serve(api_keys_file=keys_file) as c:
        app_paths = {getattr(r, "path", "") for r in c.app.routes}
        protected = sorted(p for p in app_paths if p and p not in ("/", "/healthz", "/readyz") and "{" not in p)
        protected += ["/docs", "/redoc", "/docs/oauth2-redirect", "/nowhere"]
        assert {"/metrics", "/openapi.json", GEN, "/v1/captions"} <= set(protected)
        for path in protected:
            for method in ("GET", "POST"):
                r = c.request(method, path)
                assert r.status_code == 401, (method, path, r.status_code)
                r = c.request(method, path, headers={"Authorization": "Bearer wrong"})
                assert r.status_code == 401, (method, path, r.status_code)
        ok = {"Authorization": "Bearer secret-two"}
        assert c.get("/metrics", headers=ok).status_code == 200
        assert c.get("/docs", headers=ok).status_code == 404  # no CDN-based docs page: 404 once authenticated
        assert c.get("/readyz").status_code == 200 and c.get("/healthz").status_code == 200


def test_keys_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((len(a), len(b))) or real(a, b))
    keys = ApiKeys([f"key-{i}" for i in range(5)])
    for presented in ("key-0", "key-4", "nope", "x" * 10_000, ""):
        calls.clear()
        keys.identify(presented)
        assert len(calls) == 5 and set(calls) == {(32, 32)}  # every key, fixed-length digests: no early exit


def test_readyz_says_not_ready_without_paths_or_exception_text(monkeypatch, caplog):
    def broken(model_dir):
        raise FileNotFoundError("/very/secret/path/model_index.json is missing")

    monkeypatch.setattr(serve_app, "load_pipeline", broken)
    with caplog.at_level(logging.ERROR, logger="lvg.serve"):
        with serve_client(ServeSettings(model_dir="unused")) as c:
            wait_until(lambda: c.get("/readyz").json()["status"] == "failed", what="a failed load")
            r = c.get("/readyz")
    assert r.status_code == 503 and "not ready" in r.text
    assert "secret" not in r.text and "FileNotFoundError" not in r.text and "/" not in r.json()["error"]
    assert "/very/secret/path" in caplog.text  # the details go to the log


def serve_client(settings):
    from fastapi.testclient import TestClient

    return TestClient(create_app(settings))


def test_schemathesis_finds_no_5xx_on_any_route(keys_file):
    """Bounded schema fuzzing of every route in /openapi.json, on a real server bound to 127.0.0.1."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from reliability import schema_fuzz

    result = schema_fuzz(max_examples=25)
    assert result["server_errors"] == 0, result
    assert result["requests"] >= 50 and len(result["operations"]) >= 5, result
