"""Editing by instruction: read the image's layout, let the editor LM rewrite it, repaint only what changed.

The editor is a planner LM trained on ``<bos> instruction <layout> OLD </layout>`` -> the edited layout (or a
refusal), so the instruction reaches the image only through the LM, as a prompt does (LLM-grounded Diffusion edits
the same way, over several rounds). The repaint is masked: the boxes of the objects that changed (their old and new
places) are painted by the painter, every other pixel stays the input's, so the objects the edit leaves alone keep
their pixels exactly; a new background repaints everything. An object the editor writes back with its label and a box
at most :data:`KEEP_WITHIN` px from the one it was given is that object, unchanged (:func:`settle`): the reader reads
a box to about a pixel, and the editor, which learned the world's boxes, writes the box it expects (a 15 px side
read from a 16 px object comes back as 16, an emoji read 1-2 px off its jittered place comes back on it); no edit of a
world moves or resizes an object by so little (a resize moves a side 3 px in both worlds: sides 10 / 16 and 14 / 20).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from lvg.data.layout import Layout, boxes_overlap
from lvg.images import boxes_mask, images_to_tensor
from lvg.models.planner import edit_prompt

MARGIN = 1  # pixels around a changed box that are repainted too (the painter's anti-aliased edges)
KEEP_WITHIN = 2.0  # pixels: an object written back with its label and every box side this close is unchanged
EDIT_CANDIDATES = 1  # layouts the editor writes per edit, the likeliest kept (LayoutPlanner.best_rows); 1: one draw

if TYPE_CHECKING:
    from lvg.pipelines.planned import PlannedPipeline


@dataclass
class EditOutput:
    """The edited image after the last instruction, every round's layout (``layouts[0]`` the one read), and why an
    instruction was refused where ``allow_unsupported`` drew it anyway (None: carried out)."""

    images: list[Image.Image]
    layouts: list[Layout]
    unsupported: list[str | None] = field(default_factory=list)

    @property
    def image(self) -> Image.Image:
        return self.images[-1]


def changed_mask(before: Layout, after: Layout, canvas: int, margin: int = MARGIN) -> np.ndarray:
    """Bool [canvas, canvas]: the pixels an edit from ``before`` to ``after`` repaints. All of them when the
    background changes; else the boxes of the objects not in both layouts with the same label and box, each with a
    ``margin`` ring for the painter's anti-aliased edges; but nothing within ``margin`` px of the box of an object
    kept: that box is the reader's, right to about a pixel, and a kept object keeps every pixel of its own."""
    if before.background != after.background:
        return np.ones((canvas, canvas), bool)
    old = {(o.label, o.box) for o in before.objects}
    new = {(o.label, o.box) for o in after.objects}
    changed = [*(o.box for o in before.objects if (o.label, o.box) not in new),
               *(o.box for o in after.objects if (o.label, o.box) not in old)]  # fmt: skip
    kept = [o.box for o in after.objects if (o.label, o.box) in old]
    return boxes_mask(changed, canvas, margin) & ~boxes_mask(kept, canvas, margin)


def settle(before: Layout, after: Layout, within: float = KEEP_WITHIN) -> Layout:
    """``after`` with each object that is not in ``before`` as it stands, but has an object there with its label and
    every box coordinate at most ``within`` px away, given that object's box exactly (one object of ``before`` per
    object of ``after``; not where the old box would overlap another object of ``after``)."""
    given = {(o.label, o.box) for o in before.objects}
    written = {(o.label, o.box) for o in after.objects}
    spare = [o for o in before.objects if (o.label, o.box) not in written]
    objs = list(after.objects)
    for i, o in enumerate(objs):
        if (o.label, o.box) in given:
            continue
        for p in spare:
            others = [q.box for j, q in enumerate(objs) if j != i]
            if (p.label == o.label and max(abs(a - b) for a, b in zip(p.box, o.box, strict=True)) <= within
                    and not any(boxes_overlap(p.box, q) for q in others)):  # fmt: skip
                objs[i] = replace(o, box=p.box)
                spare.remove(p)
                break
    return Layout(after.background, tuple(objs), after.canvas)


@torch.inference_mode()
def edit(pipe: PlannedPipeline, image: Any, instruction: str | list[str], *, layout: Layout | None = None, seed: int = 0,
         temperature: float | None = None, allow_unsupported: bool = False, batch_size: int = 64,
         candidates: int | None = None) -> EditOutput:  # fmt: skip
    """See :meth:`lvg.PlannedPipeline.edit`."""
    from lvg.pipelines.planned import UnsupportedPromptError

    editor = pipe.editor
    if editor is None:
        raise ValueError(
            "this model cannot edit: its folder has no editor/ (train one: configs/editor-shapes.yaml, or "
            "configs/editor-emoji.yaml for Emoji World)"
        )
    candidates = EDIT_CANDIDATES if candidates is None else candidates
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= 64:
        raise ValueError(f"candidates must be an integer from 1 to 64, got {candidates!r}")
    steps = [instruction] if isinstance(instruction, str) else list(instruction)
    if not steps:
        raise ValueError("no instruction given")
    canvas = editor.vocab.layout.canvas
    current = np.asarray(images_to_tensor([image], size=canvas)[0].permute(1, 2, 0))  # uint8 [H, W, 3]
    if layout is None:
        if pipe.reader is None:
            raise ValueError("editing an image needs a reader (image -> layout), or give its layout")
        layout = pipe.read([Image.fromarray(current)], batch_size)[0]
        if not layout.objects:
            raise ValueError("the reader saw no object in the image to edit")
    # the layout as the editor's tokens say it (boxes on its location bins, objects in the order it learned), so an
    # object the edit leaves alone is written back exactly as it came in, and is not repainted
    tok = editor.layout_tokenizer
    layout = tok.ordered(tok.decode(tok.encode(layout)))
    temp = pipe.generation_config.temperature if temperature is None else temperature
    images, layouts, flags = [], [layout], []
    for step in steps:
        text = editor.tokenize([step])[0]
        ids = edit_prompt(text, tok.encode(layout), editor.vocab)
        reason = editor.refusals([ids])[0]
        if reason is not None and not allow_unsupported:
            raise UnsupportedPromptError(step, reason, action="carry out")
        new = settle(
            layout, tok.ordered(editor.plan_tokens([ids], [seed], 1.0, temp, 0, 1.0, batch_size, candidates)[0])
        )
        painted = np.asarray(pipe.paint([new], batch_size)[0][0].convert("RGB"))
        mask = changed_mask(layout, new, canvas)
        current = np.where(mask[..., None], painted, current).astype(np.uint8)
        images.append(Image.fromarray(current))
        layouts.append(new)
        flags.append(reason)
        layout = new
    return EditOutput(images, layouts, flags)
