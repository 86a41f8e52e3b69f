"""Write Shapes World to disk as a Hugging Face ``imagefolder`` and draw preview grids."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from lvg.files import check_regular_file, inside, read_jsonl

from .dataset import ShapesWorldConfig, make_sample
from .layout import layout_from_scene
from .plans import caption_order


def write_imagefolder(
    out: str | os.PathLike, num: int, seed: int = 0, overwrite: bool = False, progress: bool = True
) -> Path:
    """Render items ``0..num-1`` of seed ``seed`` to ``out``: PNGs plus ``metadata.jsonl``.

    Each metadata row holds ``file_name``, ``text`` (canonical English), ``text_zh`` (canonical
    Chinese), ``spec`` (what ``text`` states) and the scene's layout: ``background`` and ``objects``
    (``[{"label", "box"}]``, in the order the caption mentions them; see :mod:`lvg.data.layout`).
    ``metadata.jsonl`` is written last and atomically, so an interrupted run never leaves a folder
    that looks complete.
    """
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to replace its metadata and images")
    out.mkdir(parents=True, exist_ok=True)
    cfg = ShapesWorldConfig(seed=seed)
    width = max(5, len(str(num - 1)))
    rows = []
    for i in tqdm(range(num), desc="rendering", unit="img", disable=not progress):
        s = make_sample(i, cfg)
        name = f"{i:0{width}d}.png"
        Image.fromarray(s.image).save(out / name)
        lay = layout_from_scene(s.scene, caption_order(s.scene, s.spec)).to_dict()
        rows.append({"file_name": name, "text": s.en, "text_zh": s.zh, "spec": s.spec,
                     "background": lay["background"], "objects": lay["objects"]})  # fmt: skip
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".metadata.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "metadata.jsonl")
    return out


def preview_grid(num: int = 12, seed: int = 0, cols: int = 4, scale: int = 3) -> Image.Image:
    """A grid of Shapes World samples, each with its canonical English caption underneath."""
    if num < 1 or cols < 1 or scale < 1:
        raise ValueError("num, cols and scale must be positive")
    font = ImageFont.load_default(size=11)
    cell_w, img_h, text_h, pad = 64 * scale, 64 * scale, 70, 8
    rows = (num + cols - 1) // cols
    grid = Image.new("RGB", (cols * (cell_w + pad) + pad, rows * (img_h + text_h + pad) + pad), (236, 236, 236))
    draw = ImageDraw.Draw(grid)
    cfg = ShapesWorldConfig(seed=seed)
    for i in range(num):
        s = make_sample(i, cfg)
        x = pad + (i % cols) * (cell_w + pad)
        y = pad + (i // cols) * (img_h + text_h + pad)
        grid.paste(Image.fromarray(s.image).resize((cell_w, img_h), Image.NEAREST), (x, y))
        lines = _wrap(s.en, font, cell_w)[:5]
        draw.multiline_text((x, y + img_h + 2), "\n".join(lines), fill=(20, 20, 20), font=font, spacing=1)
    return grid


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap to a pixel width."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def image_grid(images: list[Image.Image], cols: int | None = None, pad: int = 2) -> Image.Image:
    """Tile equally sized images into a grid (``cols`` defaults to a near-square layout)."""
    if not images:
        raise ValueError("no images to tile")
    n = len(images)
    cols = cols or max(1, int(n**0.5 + 0.999))
    rows = (n + cols - 1) // cols
    w, h = images[0].size
    grid = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), (128, 128, 128))
    for i, im in enumerate(images):
        grid.paste(im, (pad + (i % cols) * (w + pad), pad + (i // cols) * (h + pad)))
    return grid


def read_layout_rows(folder: str | os.PathLike) -> list[dict]:
    """Rows of ``folder/metadata.jsonl`` that carry layouts: ``{"file_name", "text", "layout"}`` with a
    validated :class:`~lvg.data.layout.Layout` (``background`` and ``objects: [{"label", "box"}]`` in the row).

    A missing file, bad JSON or a bad layout is a ``ValueError`` naming the line and the field; rows without
    ``objects`` are an error too (a folder either has layouts or is not for layout training), and so are rows of
    another canvas than the first and a ``file_name`` outside the folder (``..`` or absolute). The file is read by
    :func:`lvg.files.read_jsonl` (a regular UTF-8 file; a BOM is fine).
    """
    from .layout import Layout, LayoutError

    folder = Path(folder)
    meta = folder / "metadata.jsonl"
    check_regular_file(meta)
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found: an imagefolder needs a metadata.jsonl")
    rows = []
    for n, row in read_jsonl(meta):  # a regular file, UTF-8 (BOM or not); errors name the line
        if not isinstance(row, dict):
            raise ValueError(f"{meta} line {n}: a row must be a JSON object")
        for key in ("file_name", "text", "objects"):
            if key not in row:
                raise ValueError(f"{meta} line {n}: field {key!r} is missing")
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise ValueError(f"{meta} line {n}: field 'text' must be a non-empty string")
        try:
            lay = Layout.from_dict({"background": row.get("background", "white"), "objects": row["objects"],
                                    **({"canvas": row["canvas"]} if "canvas" in row else {})})  # fmt: skip
        except LayoutError as e:
            raise ValueError(f"{meta} line {n}: {e}") from None
        if rows and lay.canvas != rows[0]["layout"].canvas:  # one model paints one canvas size
            raise ValueError(f"{meta} line {n}: layout canvas {lay.canvas} differs from the first row's "
                             f"{rows[0]['layout'].canvas}; every row of a folder has the same canvas")  # fmt: skip
        if not isinstance(row["file_name"], str):
            raise ValueError(f"{meta} line {n}: field 'file_name' must be a string")
        file = inside(folder, row["file_name"], f"{meta} line {n}: field 'file_name'")  # never outside the folder
        rows.append({"file_name": file, "text": row["text"], "layout": lay})
    if not rows:
        raise ValueError(f"{meta} holds no rows")
    if not any(r["layout"].objects for r in rows):  # there would be no label words to learn
        raise ValueError(f"{meta}: no row has any objects; layout training needs labelled boxes")
    return rows
