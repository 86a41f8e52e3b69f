"""Restoration: restore a damaged image pixel for pixel, or read what it shows and paint it again.

:func:`restore` turns noisy, blurred, JPEG-damaged or holed images back into clean ones with the parts a planned model
already has: the reader reads each damaged image into a layout (background, labelled boxes), and the painter paints
that layout. An optional prompt guides it: the planner also plans candidate layouts for the prompt, and the
candidate (the read layout among them) whose painting is closest to the damaged image is kept. A mask (``True``
where pixels are missing) keeps the known pixels and repaints only the hole (inpainting); the reader then reads the
image with the hole filled smoothly from its border (:func:`fill_holes`), not a black square.

This is what layouts buy: the restored image is a clean painting, not a filtered copy, so it can beat classical
filters where the damage destroyed objects, and it cannot be better than what the reader (or the prompt) recovers
(``benchmarks/restore.py`` measures both sides). Where the painter draws a label less well than the damaged pixels
still show it (Emoji World's real art), a model folder bundles a restorer (:class:`lvg.models.restorer.Restorer`):
it restores each image pixel for pixel first, and a prompt then only guides what fills a hole (where the restored
image's read layout contradicts it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lvg.data.layout import Layout
from lvg.images import images_to_tensor, open_image

if TYPE_CHECKING:
    from lvg.pipelines.planned import PlannedPipeline


@dataclass
class RestoreOutput:
    """The restored images, the layout each shows (read from it, or painted), and where it came from: ``restored``
    (the restorer's pixels), ``read`` (the read layout painted again) or ``prompt`` (a planned layout painted)."""

    images: list[Image.Image]
    layouts: list[Layout]
    sources: list[str] = field(default_factory=list)


def _mask_array(mask: Any, size: int) -> np.ndarray:
    """A hole mask (HxW bools, an array or a PIL/greyscale image or a path; nonzero = missing) at ``size`` x ``size``."""
    if isinstance(mask, str) or hasattr(mask, "__fspath__"):
        mask = open_image(mask)
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L").resize((size, size), Image.NEAREST)) > 127
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr.any(-1)
    if arr.shape != (size, size):
        raise ValueError(f"a mask must be {size}x{size} (the model's canvas), got {'x'.join(map(str, arr.shape))}")
    return arr.astype(bool)


def fill_holes(image: torch.Tensor, hole: torch.Tensor, iterations: int = 300) -> torch.Tensor:
    """uint8 ``image`` [3, H, W] with the pixels where ``hole`` [H, W] is True filled by harmonic interpolation from
    the known ones (each missing pixel the mean of its neighbours, repeated ``iterations`` times from the known
    pixels' mean): what the reader reads, so a hole is not seen as a black object. Only the hole's bounding box and a
    1 px ring around it are iterated (no other pixel changes or is read). A batch, ``image`` [N, 3, H, W] and
    ``hole`` [N, H, W], gives each image as alone."""
    if image.dim() == 4:
        return torch.stack([fill_holes(im, h, iterations) for im, h in zip(image, hole, strict=True)]) if len(image) \
            else image  # fmt: skip
    known = ~hole
    if not bool(hole.any()) or not bool(known.any()):
        return image
    x = image.float()
    x[:, hole] = x[:, known].mean(dim=1, keepdim=True)
    rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, hole.shape[0])
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, hole.shape[1])
    crop, where = x[:, y0:y1, x0:x1], hole[y0:y1, x0:x1]  # the hole, its ring, and the image edge where it meets it
    for _ in range(iterations):
        avg = F.avg_pool2d(F.pad(crop[None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[0]  # [3, h, w]
        crop = torch.where(where, avg, crop)
    x[:, y0:y1, x0:x1] = crop
    return x.round().clamp(0, 255).to(torch.uint8)


def _distance(painted: torch.Tensor, damaged: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Mean squared difference [K] of paintings [K, 3, H, W] to one damaged image [3, H, W] at quarter resolution
    (noise and blur average out), over the known pixels [H, W]."""
    p = F.avg_pool2d(painted * known, 4)
    d = F.avg_pool2d((damaged * known)[None], 4)
    w = F.avg_pool2d(known[None, None].float(), 4).clamp(min=1e-6)
    return ((p - d) ** 2 / w).mean(dim=(1, 2, 3))


@torch.inference_mode()
def restore(pipe: PlannedPipeline, image: Any, prompt: str | list[str] | None = None, mask: Any = None, candidates: int = 8,
            seed: int = 0, batch_size: int = 64) -> RestoreOutput:  # fmt: skip
    """Restore one image or a list (PIL, paths or HWC uint8 arrays) with a planned model that reads.

    With a restorer (``pipe.restorer``) each image is restored pixel for pixel first (source ``"restored"``); a
    ``prompt`` then guides what fills a hole: where a mask is given and the layout read from the restored image
    contradicts the prompt (the world's own caption of that layout, ``pipe.describe``, does not satisfy it by
    ``pipe.entails``), the hole is filled from the closest painting of ``candidates`` planned layouts instead.
    Without one, the read layout is painted again (source ``"read"``), or with a ``prompt`` the painting closest to
    the damaged image among it and ``candidates`` planned layouts (seeds ``seed, seed + 1, ...``; source
    ``"prompt"``). ``prompt``: one per image, or one for all; ``mask``: one per image, or one for all (nonzero =
    missing), and the pixels outside it are kept as they are. Deterministic."""
    images = list(image) if isinstance(image, (list, tuple)) else [image]
    if not images:
        raise ValueError("no images to restore")
    if pipe.reader is None:
        raise ValueError("restore needs a planned model with a reader (it reads the damaged image's layout)")
    n = len(images)
    prompts = [prompt] * n if prompt is None or isinstance(prompt, str) else list(prompt)
    masks = [mask] * n if mask is None or not isinstance(mask, (list, tuple)) else list(mask)
    if len(prompts) != n or len(masks) != n:
        raise ValueError(f"{n} images need one prompt and one mask each (or one for all)")
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    canvas = pipe.planner.vocab.layout.canvas
    damaged = images_to_tensor(images, size=canvas)  # uint8 [N, 3, H, W]
    holes = [None if m is None else torch.from_numpy(_mask_array(m, canvas)) for m in masks]
    hole = torch.stack([torch.zeros(canvas, canvas, dtype=torch.bool) if h is None else h for h in holes])  # [N, H, W]
    seen = fill_holes(damaged, hole)  # what the reader (or the restorer) sees: holes filled from their border
    restored = None
    if pipe.restorer is not None:  # pixel for pixel; a mask's known pixels stay as they were
        given = torch.tensor([h is not None for h in holes])[:, None, None, None]  # images with a mask
        restored = pipe.restorer.restore(seen, hole, batch_size)
        restored = torch.where(given & ~hole[:, None], damaged, restored)
        seen = restored
    read = pipe.read([x.permute(1, 2, 0).numpy() for x in seen], batch_size)
    keep = [restored is not None] * n
    if restored is not None and any(prompts[i] is not None and holes[i] is not None for i in range(n)):
        if pipe.entails is None or pipe.describe is None:
            raise ValueError("restore with a prompt needs the world's caption checks: set pipe.entails and "
                             "pipe.describe (lvg.load_pipeline does)")  # fmt: skip
        for i in range(n):
            if prompts[i] is not None and holes[i] is not None:  # the world's own caption of what was read: does it
                # say the prompt? (Only a hole's pixels can be replaced: a whole restored image replaced by a
                # painting lost more than it won, as the reader misreads restored scenes the referee passes.)
                own = pipe.describe(read[i], "en")
                keep[i] = own is not None and pipe.entails(own, prompts[i]) is not False  # None: outside its grammar
    out_images, out_layouts, sources = [], [], []
    for i in range(n):
        if keep[i]:
            out_images.append(Image.fromarray(seen[i].permute(1, 2, 0).numpy()))
            out_layouts.append(read[i])
            sources.append("restored")
            continue
        options, kinds = ([read[i]], ["read"]) if read[i].objects and restored is None else ([], [])
        if prompts[i] is not None:
            options += pipe.plan(prompts[i], num_images=candidates, seed=seed, batch_size=batch_size)
            kinds += ["prompt"] * candidates
        if not options:
            raise ValueError(f"image {i}: the reader saw no object to restore; give a prompt that says what it shows")
        painted, _ = pipe.paint(options, batch_size)
        known = torch.ones(canvas, canvas) if holes[i] is None else (~holes[i]).float()
        if len(options) > 1:
            # (with a restorer only a masked image gets here, whose known pixels it kept as they were)
            dist = _distance(images_to_tensor(painted, size=canvas).float() / 255, damaged[i].float() / 255, known)
            best = int(dist.argmin())
        else:
            best = 0
        result = painted[best]
        if holes[i] is not None:  # inpainting: the known pixels stay as they were
            src = damaged[i].permute(1, 2, 0).numpy()
            result = Image.fromarray(np.where(holes[i].numpy()[..., None], np.asarray(result.convert("RGB")), src))
        out_images.append(result)
        out_layouts.append(options[best])
        sources.append(kinds[best])
    return RestoreOutput(out_images, out_layouts, sources)
