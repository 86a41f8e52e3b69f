"""Hugging Face ``imagefolder`` folders (``metadata.jsonl`` beside the images), read by any world, and image grids.

A world writes its own folders (Shapes World: :func:`lvg.worlds.shapes.export.write_imagefolder`).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from lvg.files import check_regular_file, inside, read_jsonl


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
