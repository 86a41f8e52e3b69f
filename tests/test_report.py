"""End-to-end test of the HTML/Markdown evaluation report on the tiny untrained pipeline."""

import os
import re
from pathlib import Path

import pytest

from lvg.eval.metrics import PixelFeatures, diversity, frechet_distance, images_to_tensor
from lvg.eval.report import accuracy_sweep, category_table_from, failures_from, write_report
from lvg.eval.shapes import evaluate_generation
from lvg.pipelines.pipeline import Pipeline
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import CATEGORIES, load_prompts
from lvg.worlds.shapes.heldout import held_out_images

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tiny_pipeline_dir, tmp_path_factory) -> Path:
    pipe = Pipeline.from_pretrained(tiny_pipeline_dir)
    rows = load_prompts(benchmark_prompts_file())
    prompts = [next(r for r in rows if r["category"] == c) for c in CATEGORIES]  # one per category
    gens = [evaluate_generation(pipe, prompts, lang=lang, keep_images=True) for lang in ("en", "zh")]
    samples = pipe([p["en"] for p in prompts[:3]], num_images=2, seed=0)
    feats = PixelFeatures()(images_to_tensor(samples.images))
    real = PixelFeatures()(held_out_images(16))
    metrics = {"fid_pixel": frechet_distance(feats, real), "diversity": diversity(feats, [0, 0, 1, 1, 2, 2]),
               "captioning_exact_match": 0.0, "note": "tiny untrained model"}  # fmt: skip
    galleries = [{"prompt": p["en"], "images": samples.images[2 * i : 2 * i + 2]} for i, p in enumerate(prompts[:3])]
    sweeps = {
        "guidance_scale": accuracy_sweep(pipe, prompts[:3], "en", [1.0, 3.0]),
        "temperature": accuracy_sweep(pipe, prompts[:3], "en", [0.7, 1.0], param="temperature"),
    }
    out = tmp_path_factory.mktemp("report")
    return write_report(out, "Tiny <pipeline> report", category_table_from(gens), metrics, galleries,
                        failures_from(gens[0], limit=4), sweeps)  # fmt: skip


def test_report_files_and_content(report):
    out = report.parent
    assert report.name == "index.html" and (out / "report.md").is_file()
    page = report.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link)\b", page) and "@import" not in page and "url(" not in page
    assert "Tiny &lt;pipeline&gt; report" in page
    srcs = re.findall(r'<img src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    n_png = len(list((out / "images").glob("*.png")))
    assert len(srcs) == n_png >= 6 + 2  # gallery samples, failures (untrained: up to 4), two sweep plots
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| category | en | zh |" in md and "| overall |" in md and "## Sweeps" in md
    for name in re.findall(r"\]\((images/[^)]+)\)", md):
        assert (out / name).is_file()


def test_report_renders_in_chromium(report):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            shot = page.screenshot(path=str(report.parent.parent / "screenshot.png"), full_page=True)
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
        finally:
            browser.close()
    assert len(shot) > 1000 and widths and all(w > 0 for w in widths)
    assert len(widths) == len(list((report.parent / "images").glob("*.png")))
