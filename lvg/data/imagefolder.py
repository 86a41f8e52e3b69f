"""Hugging Face ``imagefolder`` folders (``metadata.jsonl`` beside the images), read by any world, and image grids.

A world writes its own folders (Shapes World: :func:`lvg.worlds.shapes.export.write_imagefolder`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lvg.files import check_regular_file, inside, read_jsonl, shorten


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
    """Rows of ``folder/metadata.jsonl`` that carry layouts: :func:`read_rows` with ``layouts=True``."""
    return read_rows(folder, layouts=True)


def styled(objects: Any) -> Any:
    """Metadata objects with their optional ``style`` folded into the label (``"cat (noto)"``); anything that is not
    a list of objects is returned as it is, for the layout's own check to name."""
    if not isinstance(objects, list):
        return objects
    out = []
    for i, o in enumerate(objects):
        if isinstance(o, dict) and "style" in o:
            style, label = o["style"], o.get("label")
            if not isinstance(style, str) or not style.strip():
                raise ValueError(f"object {i}: field 'style' must be a non-empty string, got {shorten(repr(style))}")
            o = {k: v for k, v in o.items() if k != "style"}
            if isinstance(label, str):
                o["label"] = f"{label} ({style})"
        out.append(o)
    return out


def read_rows(folder: str | os.PathLike, layouts: bool = False) -> list[dict]:
    """Rows of ``folder/metadata.jsonl``: ``{"file_name" (the path), "name" (as written), "text", "text_zh" (or
    None), "layout"}``, ``layout`` a validated :class:`~lvg.data.layout.Layout` (``background`` and
    ``objects: [{"label", "box"}]`` in the row) or None where the row has no ``objects``. An object's optional
    ``style`` (e.g. an art style) is part of what a model must plan and paint, so it joins the label:
    ``{"label": "cat", "style": "noto"}`` is the layout label ``"cat (noto)"``.

    With ``layouts=True`` every row needs ``objects`` (a folder either has layouts or is not for layout training)
    and some row must have at least one object. A missing file, bad JSON or a bad layout is a ``ValueError``
    naming the line and the field, and so are rows of another canvas than the first and a ``file_name`` outside
    the folder (``..`` or absolute). The file is read by :func:`lvg.files.read_jsonl` (a regular UTF-8 file; a
    BOM is fine). Images are not opened here (:func:`read_images` does).
    """
    from .layout import Layout

    folder = Path(folder)
    meta = folder / "metadata.jsonl"
    check_regular_file(meta)
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found: an imagefolder needs a metadata.jsonl")
    rows: list[dict] = []
    for n, row in read_jsonl(meta):  # a regular file, UTF-8 (BOM or not); errors name the line
        if not isinstance(row, dict):
            raise ValueError(f"{meta} line {n}: a row must be a JSON object")
        for key in ("file_name", "text", "objects") if layouts else ("file_name", "text"):
            if key not in row:
                raise ValueError(f"{meta} line {n}: field {key!r} is missing")
        for key in ("text", "text_zh"):
            if key in row and (not isinstance(row[key], str) or not row[key].strip()):
                raise ValueError(f"{meta} line {n}: field {key!r} must be a non-empty string")
        lay = None
        if "objects" in row:
            try:
                lay = Layout.from_dict({"background": row.get("background", "white"), "objects": styled(row["objects"]),
                                        **({"canvas": row["canvas"]} if "canvas" in row else {})})  # fmt: skip
            except ValueError as e:  # a LayoutError, or a bad style
                raise ValueError(f"{meta} line {n}: {e}") from None
            first = next((r["layout"] for r in rows if r["layout"] is not None), None)
            if first is not None and lay.canvas != first.canvas:  # one model paints one canvas size
                raise ValueError(f"{meta} line {n}: layout canvas {lay.canvas} differs from the first row's "
                                 f"{first.canvas}; every row of a folder has the same canvas")  # fmt: skip
        if not isinstance(row["file_name"], str):
            raise ValueError(f"{meta} line {n}: field 'file_name' must be a string")
        file = inside(folder, row["file_name"], f"{meta} line {n}: field 'file_name'")  # never outside the folder
        rows.append({"file_name": file, "name": row["file_name"], "text": row["text"], "text_zh": row.get("text_zh"),
                     "layout": lay})  # fmt: skip
    if not rows:
        raise ValueError(f"{meta} holds no rows")
    if layouts and not any(r["layout"].objects for r in rows):  # there would be no label words to learn
        raise ValueError(f"{meta}: no row has any objects; layout training needs labelled boxes")
    return rows


def read_images(rows: list[dict]) -> np.ndarray:
    """The rows' images as uint8 ``[N, S, S, 3]``. Every image of a folder is square and of one size (it defines
    the canvas); another size, a non-square image or one that does not match its row's layout canvas is a
    ``ValueError`` naming the file."""
    from lvg.images import open_image

    out: list[np.ndarray] = []
    for r in rows:
        arr = np.asarray(open_image(r["file_name"]))
        h, w = arr.shape[:2]
        if h != w:
            raise ValueError(f"image {r['file_name']} is {w}x{h}; imagefolder images must be square")
        if out and arr.shape != out[0].shape:
            raise ValueError(f"image {r['file_name']} is {w}x{h}, but {rows[0]['file_name']} is "
                             f"{out[0].shape[1]}x{out[0].shape[0]}; every image of a folder must have one size")  # fmt: skip
        lay = r.get("layout")
        if lay is not None and lay.canvas != w:
            raise ValueError(f"image {r['file_name']} is {w}x{h}, but its row's layout canvas is {lay.canvas}; "
                             f'give the rows "canvas": {w}')  # fmt: skip
        out.append(arr)
    return np.stack(out)


def split_rows(rows: list[dict], val_fraction: float) -> tuple[list[dict], list[dict]]:
    """(training rows, held-out rows): ``round(len(rows) * val_fraction)`` rows (at least one, and at least one
    left to train on; none when ``val_fraction`` is 0 or there is a single row) are held out. Which rows is a pure
    function of their file names (the smallest SHA-256 of each name), so the split never depends on the seed or
    on the order of the rows, and adding rows moves few of them."""
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n = len(rows)
    k = 0 if val_fraction == 0 or n < 2 else min(n - 1, max(1, round(n * val_fraction)))
    by_hash = sorted(range(n), key=lambda i: (hashlib.sha256(str(rows[i].get("name", i)).encode()).hexdigest(), i))
    held = set(by_hash[:k])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


@functools.lru_cache(maxsize=8)
def _epoch_order(n: int, key: str, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"{key}:{epoch}").shuffle(order)
    return tuple(order)


def batch_indices(n: int, step: int, batch_size: int, key: str, rows: Iterable[int] | None = None) -> list[int]:
    """Indices (into ``n`` items) of the rows ``rows`` (default: all ``batch_size``) of batch ``step``: the items are
    visited in epochs, each a permutation seeded by ``key`` and the epoch, so a batch is a pure function of
    ``step`` (resume and sharding need no data state)."""
    if n < 1:
        raise ValueError("no rows to draw batches from")
    out = []
    for j in range(batch_size) if rows is None else rows:
        epoch, i = divmod(step * batch_size + j, n)
        out.append(_epoch_order(n, key, epoch)[i])
    return out


def chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive ranges of at most ``size`` (held-out rows, validated a batch at a time)."""
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def prepare_output_folder(out: str | os.PathLike, num: int, overwrite: bool = False) -> Path:
    """The folder an imagefolder of ``num`` items is written to: made if missing; a file, or a non-empty folder
    without ``overwrite``, is an error naming it."""
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to replace its metadata and images")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_metadata(out: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write ``out/metadata.jsonl`` (one JSON row per line) atomically: written last, a folder whose writing was
    interrupted never looks complete."""
    path = Path(out) / "metadata.jsonl"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metadata.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
