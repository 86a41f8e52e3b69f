"""The README's before -> after pictures of editing and restoring, drawn by the shipped default model.

    python benchmarks/application_grids.py

- ``docs/images/edit_grid.png``: one row per instruction (EN and ZH; recolour, move, resize, add, remove, swap,
  background, two at once): the generated image, then the edited one (``pipe.edit``, seed 0).
- ``docs/images/restore_grid.png``: one row per damage (Gaussian noise 35, blur sigma 1.8, JPEG quality 15, a 20-px
  hole; the middle levels of ``benchmarks/restore.py``): the clean render of a held-out scene, the damaged image,
  ``pipe.restore`` guided by nothing, and guided by the scene's caption.
- ``docs/images/restore_grid_emoji.png``: the same for ``models/emoji-default`` at the strongest levels (noise 60,
  blur sigma 2.6, JPEG quality 5, a 28-px hole) on held-out Emoji World scenes: the clean render, the damaged image,
  the folder without its restorer (read, paint again), and ``pipe.restore`` (its restorer).
Prints each row's description (the README's tables list them). Cells are 64x64 images shown at 2x.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from restore import damage, without_restorer

from lvg import UnsupportedPromptError, load_pipeline
from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_samples

EDITS = [
    ("a red circle to the left of a blue square", "make the circle green"),
    ("a red circle to the left of a blue square", "把正方形移到左上角"),
    ("a small yellow star", "make the star large"),
    ("a green triangle", "add a pink diamond at the bottom right"),
    ("two blue crosses and a red square", "remove the square"),
    ("a purple circle above an orange star", "swap the circle and the star"),
    ("a cyan square", "把背景换成黑色"),
    ("a red triangle on the left and a blue circle on the right", "make the triangle yellow and the circle small"),
]
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
DAMAGES = [("noise", 35), ("blur", 1.8), ("jpeg", 15), ("holes", 20)]
EMOJI_DAMAGES = [("noise", 60), ("blur", 2.6), ("jpeg", 5), ("holes", 28)]


def sheet(rows: list[list[np.ndarray | Image.Image]], cell: int = 128) -> Image.Image:
    out = Image.new("RGB", (cell * max(len(r) for r in rows), cell * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            im = im if isinstance(im, Image.Image) else Image.fromarray(im)
            out.paste(im.convert("RGB").resize((cell, cell), Image.NEAREST), (cell * j, cell * i))
    return out


def main() -> None:
    pipe = load_pipeline()
    rows = []
    for prompt, instruction in EDITS:
        before = pipe(prompt, seed=0).images[0]
        try:
            after = pipe.edit(before, instruction, seed=0).image
            said = "edited"
        except UnsupportedPromptError as e:
            after, said = Image.new("RGB", before.size, "gray"), f"refused ({e.reason})"
        rows.append([before, after])
        print(f"| {prompt} | {instruction} | {said} |")
    sheet(rows).save(IMAGES / "edit_grid.png")
    samples = held_out_samples(len(DAMAGES), seed=HELD_OUT_SEED)
    rng = np.random.default_rng(0)
    rows = []
    for (kind, level), sample in zip(DAMAGES, samples, strict=True):
        clean, caption = np.asarray(sample.image, dtype=np.uint8), sample.full_text
        hurt, mask = damage(clean, kind, level, rng)
        blind = pipe.restore(hurt, mask=mask).images[0]
        guided = pipe.restore(hurt, prompt=caption, mask=mask).images[0]
        rows.append([clean, hurt, blind, guided])
        print(f"| {kind} {level:g} | {caption} |")
    sheet(rows).save(IMAGES / "restore_grid.png")
    emoji_restore_grid()


def emoji_restore_grid() -> None:
    from lvg.worlds.emoji.plugin import load_emoji_world

    pipe = load_pipeline(IMAGES.parents[1] / "models" / "emoji-default")
    repaint = without_restorer(pipe)  # read, paint again
    ew = load_emoji_world()
    rng = np.random.default_rng(0)
    rows = []
    for (kind, level), sample in zip(EMOJI_DAMAGES, ew.held_out_samples(len(EMOJI_DAMAGES), pool="train"), strict=True):
        clean = np.asarray(sample.image, dtype=np.uint8)
        hurt, mask = damage(clean, kind, level, rng)
        rows.append([clean, hurt, repaint.restore(hurt, mask=mask).images[0], pipe.restore(hurt, mask=mask).images[0]])
        print(f"| {kind} {level:g} | {ew.text(sample.full_spec(ew.table), 'en')} |")
    sheet(rows).save(IMAGES / "restore_grid_emoji.png")


if __name__ == "__main__":
    main()
