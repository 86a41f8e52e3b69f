"""The web page at ``/``, driven end to end in headless Chromium against the real server and a tiny real model.

Uses Debian's Chromium (``/usr/bin/chromium``) through Playwright; no browser is downloaded. Without Chromium
the test is skipped, unless ``CI`` is set, where that is a failure. ``LVG_UPDATE_SCREENSHOT=1`` copies the
full-page screenshot to ``docs/web_page.png`` (generated with ``models/shapes-default`` when it is a complete
model folder, else with the tiny untrained model).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import make_tiny_pipeline

from lvg.pipelines.pipeline import Pipeline
from lvg.worlds.shapes.render import render_pil
from lvg.worlds.shapes.world import Obj, Scene

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENIZER = ROOT / "models" / "shapes-default" / "text_tokenizer"
DEFAULT_MODEL = ROOT / "models" / "shapes-default"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
UPDATE_SCREENSHOT = os.environ.get("LVG_UPDATE_SCREENSHOT") == "1"
TIMEOUT_MS = 20_000
API_KEY = "lvg-test-key-0123456789"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found (install Debian's chromium package to run the browser test)",
                allow_module_level=True)  # fmt: skip

sync_api = pytest.importorskip("playwright.sync_api")


CAN_CAPTION = {"value": True}  # whether the served model reads images (set by the server fixture)


def _model_dir(tmp: Path) -> Path:
    """A tiny untrained model folder, or the shipped model when refreshing the README screenshot."""
    if UPDATE_SCREENSHOT and (DEFAULT_MODEL / "model_index.json").is_file():
        return DEFAULT_MODEL
    return make_tiny_pipeline(tmp / "model")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    """The real app (``create_app``) served by uvicorn on a free 127.0.0.1 port in a background thread."""
    import uvicorn

    from lvg.serve.app import ServeSettings, create_app

    tmp = tmp_path_factory.mktemp("web")
    model = _model_dir(tmp)
    (tmp / "keys.txt").write_text(f"# test key\n{API_KEY}\n", encoding="utf-8")
    settings = ServeSettings(model_dir=model, api_keys_file=tmp / "keys.txt")
    pipe = Pipeline.from_pretrained(model)
    CAN_CAPTION["value"] = pipe.can_caption
    app = create_app(settings, pipeline=pipe)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # bounded: about 20 s
            try:
                if httpx.get(url + "/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not thread.is_alive():
                raise RuntimeError("the server thread exited during startup")
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not become ready in 20 s")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _poll(page, check, what: str):
    """Poll ``check()`` from Python (the page's CSP forbids the eval that ``wait_for_function`` needs)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if check():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def _decoded_images(page) -> list[int]:
    return page.locator("#results img").evaluate_all("imgs => imgs.map(i => (i.complete ? i.naturalWidth : 0))")


def test_web_page_generates_captions_and_stays_same_origin(server_url, tmp_path):
    """Key handling, generation, download links, captioning, error display; no request leaves the origin."""
    origin = urlsplit(server_url)
    requests: list[str] = []
    problems: list[str] = []
    upload = tmp_path / "scene.png"
    render_pil(Scene((Obj("circle", "red", "large", (0, 1)), Obj("square", "blue", "small", (2, 1))), "white"),
               scale=2).save(upload)  # fmt: skip
    shot = tmp_path / "web_page.png"

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))

            page.goto(server_url + "/")
            assert page.title().startswith("lvg")
            for sel in ("#prompt", "#num-images", "#seed", "#guidance", "#temperature", "#top-k", "#top-p", "#size",
                        "#caption-file", "#caption-lang"):  # fmt: skip
                assert page.locator(f"label[for='{sel[1:]}']").count() == 1, f"{sel} has no <label for>"

            # an example prompt fills the box; without the API key the server's 401 message is shown
            page.get_by_role("button", name="三个黄色星形，黑色背景").click()
            assert page.input_value("#prompt") == "三个黄色星形，黑色背景"
            page.click("#generate")
            page.locator("#error").wait_for(state="visible")
            assert "401" in page.locator("#error").inner_text() and "API key" in page.locator("#error").inner_text()

            # the key is kept in sessionStorage (survives a reload) and sent as a Bearer token
            page.get_by_text("API key", exact=True).click()
            page.fill("#api-key", API_KEY)
            page.reload()
            assert page.input_value("#api-key") == API_KEY

            # generate two images with a fixed seed
            page.fill("#prompt", "a small red circle to the left of a large blue square")
            page.fill("#num-images", "2")
            page.fill("#seed", "7")
            page.select_option("#size", "256x256")
            page.click("#generate")
            _poll(page, lambda: len(w := _decoded_images(page)) == 2 and min(w) > 0, "2 decoded result images")
            assert page.locator("#error").is_hidden()
            links = page.locator("#results a[download]")
            assert [links.nth(i).get_attribute("download") for i in range(2)] == ["lvg-7.png", "lvg-8.png"]
            assert all(links.nth(i).get_attribute("href").startswith("data:image/png;base64,") for i in range(2))
            img = page.locator("#results img").first
            assert img.evaluate("i => getComputedStyle(i).imageRendering") == "pixelated"
            assert img.evaluate("i => i.naturalWidth") == 256

            # caption an uploaded image (a model without a reader answers 501, and the page shows why)
            page.set_input_files("#caption-file", str(upload))
            page.select_option("#caption-lang", "en")
            page.click("#caption-button")
            if CAN_CAPTION["value"]:
                _poll(page, lambda: page.locator("#caption-output").text_content().strip(), "a caption")
                assert page.locator("#error").is_hidden()
            else:
                page.locator("#error").wait_for(state="visible")
                assert "cannot caption" in page.locator("#error").inner_text()
                page.evaluate("document.getElementById('error').hidden = true")

            page.screenshot(path=str(shot), full_page=True)

            # a server-side validation error is shown, naming the field
            page.fill("#guidance", "-1")
            page.click("#generate")
            page.locator("#error").wait_for(state="visible")
            assert "guidance" in page.locator("#error").inner_text()
            assert page.locator("#generate").is_enabled()  # busy state cleared
        finally:
            browser.close()

    assert shot.is_file() and shot.stat().st_size > 20_000, shot.stat().st_size
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if UPDATE_SCREENSHOT:
        shutil.copyfile(shot, ROOT / "docs" / "web_page.png")
    other = [u for u in requests if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u)[:2] != origin[:2]]
    assert not other, f"requests to other origins: {other}"
    assert any(urlsplit(u).path == "/v1/images/generations" for u in requests)
    assert any(urlsplit(u).path == "/v1/captions" for u in requests)
    # the 401 and 422 show up as console "Failed to load resource" messages; anything else is a bug
    expected = ("status of 401", "status of 422") + (() if CAN_CAPTION["value"] else ("status of 501",))
    assert not [p for p in problems if not any(e in p for e in expected)], problems
