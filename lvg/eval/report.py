"""A self-contained evaluation report: ``index.html`` (everything inline) and ``report.md`` (+ PNG files).

The HTML page embeds every image and plot as a base64 PNG data URL and uses inline CSS only: no
scripts, fonts or links to other hosts, so it opens offline and can be mailed as one file. The
Markdown report carries the same tables, with its images written as PNG files beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lvg.eval.results import GenerationResult
from lvg.eval.shapes import eval_config, evaluate_generation
from lvg.images import tensor_to_images
from lvg.pipelines.protocols import TextToImagePipeline
from lvg.sampling.config import SAMPLING_FIELDS, GenerationConfig
from lvg.worlds.shapes.benchmark import CATEGORIES

SCALE = 2  # nearest-neighbour upscaling of 64x64 images in the report
SWEEPABLE = SAMPLING_FIELDS  # GenerationConfig's token-sampling settings
SWEEP_LABELS = {"guidance_scale": "guidance scale"}  # axis labels (others: the field's name)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; background: #fff; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; padding: 6px; border: 1px solid #ddd; border-radius: 4px; max-width: 420px; }
figcaption { font-size: 0.85em; margin-bottom: 4px; }
figure img { image-rendering: pixelated; margin: 2px; }
.reason { color: #a00; font-size: 0.8em; }
.plots img { max-width: 480px; margin-right: 12px; }
"""


def to_pil(image: Any) -> Image.Image:
    """PIL image, HWC uint8 array or CHW uint8 / float [0, 1] tensor -> RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] in (1, 3):
        return tensor_to_images(image[None])[0].convert("RGB")
    if isinstance(image, torch.Tensor):  # [H, W] (or HWC): values as they are
        image = image.detach().cpu().numpy()
    return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


def _upscale(image: Any, scale: int = SCALE) -> Image.Image:
    im = to_pil(image)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def category_table_from(gens: list[GenerationResult]) -> dict[str, dict[str, float]]:
    """``{lang: {category: accuracy, ..., "overall": accuracy}}`` from ``evaluate_generation`` results."""
    return {g.lang: {**g.categories, "overall": g.overall} for g in gens}


def failures_from(gen: GenerationResult, limit: int = 24) -> list[dict]:
    """Up to ``limit`` failed rows of an ``evaluate_generation(..., keep_images=True)`` result."""
    return [{"prompt": r["prompt"], "reason": r["reason"], "image": r["image"]}
            for r in gen.rows if not r["passed"] and "image" in r][:limit]  # fmt: skip


def accuracy_sweep(pipe: TextToImagePipeline, prompts: list[dict], lang: str, values: list[float],
                   param: str = "guidance_scale", config: GenerationConfig | None = None,
                   **settings: Any) -> list[tuple[float, float]]:  # fmt: skip
    """Overall judged accuracy of ``pipe`` on ``prompts`` for each value of ``param`` (a setting of
    :class:`~lvg.sampling.GenerationConfig`: ``guidance_scale``, ``temperature``, ``top_k`` or ``top_p``), the
    other settings from ``config`` and ``settings`` as in :func:`lvg.eval.shapes.evaluate_generation`."""
    if param not in SWEEPABLE:
        raise ValueError(f"cannot sweep {param!r}; expected one of {', '.join(SWEEPABLE)}")
    cfg = eval_config(config, **settings)
    return [(float(v), evaluate_generation(pipe, prompts, lang, cfg.replace(**{param: v})).overall)
            for v in values]  # fmt: skip


def _sweep_plot(param: str, points: list[tuple[float, float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = zip(*sorted(points), strict=True)
    fig, ax = plt.subplots(figsize=(4.8, 3.2), dpi=100)
    try:
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel(SWEEP_LABELS.get(param, param))
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"accuracy vs {SWEEP_LABELS.get(param, param)}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _category_rows(table: dict[str, dict[str, float]]) -> tuple[list[str], list[list[str]]]:
    langs = list(table)
    cats = [c for c in CATEGORIES if any(c in t for t in table.values())]
    cats += sorted({c for t in table.values() for c in t} - set(cats) - {"overall"})
    if any("overall" in t for t in table.values()):
        cats.append("overall")
    return langs, [[c] + [_pct(table[lang].get(c)) for lang in langs] for c in cats]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


def write_report(out_dir: str | Path, title: str, category_table: dict[str, dict[str, float]], metrics: dict[str, Any],
                 galleries: list[dict], failures: list[dict], sweeps: dict | None = None) -> Path:  # fmt: skip
    """Write ``index.html`` and ``report.md`` (with PNGs in ``images/``) to ``out_dir``; return the HTML path.

    * ``category_table``: ``{lang: {category: accuracy}}`` (languages become columns; see
      :func:`category_table_from`);
    * ``metrics``: ``{name: value}`` (numbers or short strings);
    * ``galleries``: ``[{"prompt": str, "images": [image, ...]}]``: one row of samples per prompt;
    * ``failures``: ``[{"prompt": str, "reason": str, "image": image}]`` (see :func:`failures_from`);
    * ``sweeps``: optional ``{"guidance_scale": [(g, acc), ...], "temperature": [(t, acc), ...]}``,
      plotted with matplotlib (Agg).

    Images may be PIL images, HWC uint8 arrays or CHW tensors; they are upscaled ``SCALE``x (nearest).
    """
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    h: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    md: list[str] = [f"# {title}", ""]

    def add_image(image: Any, name: str, alt: str) -> tuple[str, str]:
        png = _png(_upscale(image))
        (img_dir / name).write_bytes(png)
        return (f'<img src="{_data_url(png)}" alt="{esc(alt, quote=True)}">',
                f"![{alt.replace(']', ')').replace('[', '(')}](images/{name})")  # fmt: skip

    # per-category accuracy
    langs, rows = _category_rows(category_table)
    h += ["<h2>Per-category accuracy</h2>", "<table><thead><tr><th>category</th>"]
    h += [f"<th>{esc(lang)}</th>" for lang in langs] + ["</tr></thead><tbody>"]
    h += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows] + ["</tbody></table>"]
    md += ["## Per-category accuracy", "", "| category | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    md += ["| " + " | ".join(r) + " |" for r in rows] + [""]

    # metrics
    h += ["<h2>Metrics</h2>", "<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>"]
    h += [f"<tr><td>{esc(str(k))}</td><td>{esc(_fmt(v))}</td></tr>" for k, v in metrics.items()]
    h += ["</tbody></table>"]
    md += ["## Metrics", "", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()] + [""]

    # sweeps
    if sweeps:
        h += ["<h2>Sweeps</h2>", '<div class="plots">']
        md += ["## Sweeps", ""]
        for param, points in sweeps.items():
            if not points:
                continue
            png = _sweep_plot(param, list(points))
            name = f"sweep-{_slug(param)}.png"
            (img_dir / name).write_bytes(png)
            label = SWEEP_LABELS.get(param, param)
            h.append(f'<img src="{_data_url(png)}" alt="accuracy vs {esc(label, quote=True)}">')
            md += [f"![accuracy vs {label}](images/{name})", "", f"| {label} | accuracy |", "|---|---|"]
            md += [f"| {_fmt(float(x))} | {_pct(y)} |" for x, y in points] + [""]
        h.append("</div>")

    # galleries
    h += ["<h2>Samples</h2>", '<div class="grid">']
    md += ["## Samples", ""]
    for gi, g in enumerate(galleries):
        h.append(f"<figure><figcaption>{esc(g['prompt'])}</figcaption>")
        tags = [add_image(im, f"sample-{gi:03d}-{j}.png", g["prompt"]) for j, im in enumerate(g["images"])]
        h += [t[0] for t in tags] + ["</figure>"]
        md += [f"**{g['prompt']}**", "", " ".join(t[1] for t in tags), ""]
    h.append("</div>")

    # failures
    h += ["<h2>Failures</h2>"]
    md += ["## Failures", ""]
    if not failures:
        h.append("<p>No failures.</p>")
        md += ["No failures.", ""]
    h.append('<div class="grid">')
    for fi, f in enumerate(failures):
        tag = add_image(f["image"], f"failure-{fi:03d}.png", f["prompt"])
        h += [f"<figure><figcaption>{esc(f['prompt'])}</figcaption>{tag[0]}",
              f'<div class="reason">{esc(str(f.get("reason", "")))}</div></figure>']  # fmt: skip
        md += [f"- **{f['prompt']}**: {f.get('reason', '')}", "", f"  {tag[1]}", ""]
    h += ["</div>", "</body></html>"]

    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    page = out / "index.html"
    page.write_text("\n".join(h) + "\n", encoding="utf-8")
    return page
