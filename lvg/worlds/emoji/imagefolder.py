"""Write Emoji World to disk as a Hugging Face ``imagefolder``: PNGs, ``metadata.jsonl``, concepts and attribution."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from lvg.data.imagefolder import prepare_output_folder, write_metadata

from .assets import ATTRIBUTION, write_atomic
from .world import EmojiWorld


def write_imagefolder(
    out: str | os.PathLike, num: int, seed: int = 0, world: EmojiWorld | None = None, overwrite: bool = False
) -> Path:
    """Render items ``0..num-1`` of seed ``seed`` to ``out``.

    ``metadata.jsonl`` rows: ``file_name``, ``text`` (canonical English), ``text_zh`` (canonical Chinese), ``spec``
    (what ``text`` states), ``background``, ``canvas`` and ``objects: [{"label", "box", "style"}]`` in caption order
    (label: the emoji's EN name; a valid :class:`~lvg.data.layout.Layout` without ``style``). Next to them:
    ``concepts.jsonl`` (the concept table with splits) and ``ATTRIBUTION.md`` (sources and licences). Item ``i`` is a
    pure function of ``(seed, i)`` and the world's config; ``metadata.jsonl`` is written last and atomically.
    """
    out = prepare_output_folder(out, num, overwrite)
    world = world or EmojiWorld.load()
    width = max(5, len(str(num - 1)))
    rows = []
    for i in range(num):
        s = world.sample(i, seed)
        name = f"{i:0{width}d}.png"
        Image.fromarray(s.image).save(out / name)
        rows.append({"file_name": name, "text": s.en, "text_zh": s.zh, "spec": s.spec, "background": s.scene.bg,
                     "canvas": s.scene.canvas, "objects": s.objects()})  # fmt: skip
    write_atomic(out / "ATTRIBUTION.md", ATTRIBUTION)
    write_atomic(out / "concepts.jsonl", world.table.to_jsonl())
    write_metadata(out, rows)
    return out
