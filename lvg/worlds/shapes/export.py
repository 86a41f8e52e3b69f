"""Write Shapes World to disk as a Hugging Face ``imagefolder`` and draw preview grids."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from lvg.data.imagefolder import prepare_output_folder, write_metadata

from .dataset import ShapesWorldConfig, make_sample
from .plans import caption_order
from .scene_layout import layout_from_scene


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
    out = prepare_output_folder(out, num, overwrite)
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
    write_metadata(out, rows)
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
