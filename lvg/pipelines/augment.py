"""Data augmentation: the LM writes new scenes and describes them, the painter draws them.

:func:`augment` samples layouts from the planner's prompt-free mode (the unconditional prompt ``<bos> <layout>``
that classifier-free guidance trains it on, so the scenes follow what it learned a world looks like), drops
repeats, lets the reading LM caption each in English and Chinese, and paints it. :func:`write_augmented` writes the
result as a labelled imagefolder (images, ``text``, ``text_zh``, layouts) that every trainer reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from lvg.data.imagefolder import prepare_output_folder, write_metadata
from lvg.data.layout import Layout

MAX_DRAWS_PER_SAMPLE = 8  # give up (with the reason) when the planner keeps repeating scenes


@dataclass
class AugmentedSample:
    """One generated training example: the image, its layout, and the reading LM's captions."""

    image: Image.Image
    layout: Layout
    text: str
    text_zh: str
    seed: int  # the planner's seed for this layout


def _key(layout: Layout) -> str:
    return layout.to_json()


@torch.inference_mode()
def augment(pipe, num: int, seed: int = 0, temperature: float = 1.0, batch_size: int = 64,
            progress: bool = False) -> list[AugmentedSample]:  # fmt: skip
    """``num`` distinct new examples from a planned model with a reader. Layout draws use seeds ``seed, seed + 1,
    ...`` in order and a repeat of an earlier layout is skipped, so the same arguments give the same examples."""
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    if not hasattr(pipe, "planner") or getattr(pipe, "reader", None) is None:
        raise ValueError("augment needs a planned model with a reader (the planner writes scenes, the reading LM "
                         "describes them)")  # fmt: skip
    from tqdm.auto import tqdm

    layouts: list[Layout] = []
    seeds: list[int] = []
    seen: set[str] = set()
    next_seed, limit = seed, seed + MAX_DRAWS_PER_SAMPLE * num
    bar = tqdm(total=num, desc="augment", unit="scene", disable=not progress)
    while len(layouts) < num:
        if next_seed >= limit:
            raise RuntimeError(f"the planner wrote only {len(layouts)} distinct scenes in {limit - seed} draws")
        draw = list(range(next_seed, min(next_seed + batch_size, limit)))
        next_seed = draw[-1] + 1
        for s, lay in zip(draw, pipe.planner.plan_tokens([None] * len(draw), draw, 1.0, temperature, 0, 1.0,
                                                         batch_size)):  # fmt: skip
            if lay.objects and _key(lay) not in seen and len(layouts) < num:
                seen.add(_key(lay))
                layouts.append(lay)
                seeds.append(s)
                bar.update(1)
    bar.close()
    texts = pipe.reader.caption(layouts, "en", batch_size=batch_size)
    texts_zh = pipe.reader.caption(layouts, "zh", batch_size=batch_size)
    images, _ = pipe.paint(layouts, batch_size)
    return [AugmentedSample(*row) for row in zip(images, layouts, texts, texts_zh, seeds)]


def write_augmented(samples: Iterable[AugmentedSample], out: str | os.PathLike, num: int,
                    overwrite: bool = False) -> Path:  # fmt: skip
    """Write samples as an imagefolder: ``00000.png, ...`` and ``metadata.jsonl`` (written last)."""
    out = prepare_output_folder(out, num, overwrite)
    rows = []
    for i, s in enumerate(samples):
        name = f"{i:05d}.png"
        s.image.save(out / name)
        rows.append({"file_name": name, "text": s.text, "text_zh": s.text_zh, "background": s.layout.background,
                     "canvas": s.layout.canvas, "seed": s.seed,
                     "objects": [{"label": o.label, "box": list(o.box)} for o in s.layout.objects]})  # fmt: skip
    write_metadata(out, rows)
    return out
