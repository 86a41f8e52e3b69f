"""Reading benchmarks: the reader's layouts, visual questions per type, and the closed loop.

- :func:`evaluate_reader`: held-out renders -> layouts; exact when the layout is the render's scene
  (every object's shape, colour, size and cell, and the background).
- :func:`evaluate_vqa`: questions of every :data:`~lvg.worlds.shapes.reading.QUESTION_TYPES` about scenes drawn
  from their own seed (never the training stream's), answered from the scenes' renders; exact string
  match per type. The off-topic questions asked here are held out of training.
Captions of held-out renders are scored by :func:`lvg.eval.shapes.evaluate_captioning`, the closed loop by
:func:`lvg.eval.metrics.cycle_consistency`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from lvg.data.layout import READ_TOLERANCE, Layout, LayoutError
from lvg.eval.progress import in_chunks
from lvg.eval.results import ReaderResult, VQAResult, reading_lines, score_answers
from lvg.worlds.shapes.heldout import HELD_OUT_SEED, held_out_samples
from lvg.worlds.shapes.reading import (
    QUESTION_TYPES,
    off_grid_boxes,
    off_grid_layout,
    off_grid_question,
    question_about,
    scene_caption,
)
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import layout_to_scene
from lvg.worlds.shapes.world import Scene, sample_scene


def _key(scene: Scene) -> tuple:
    return scene.bg, Counter((o.shape, o.color, o.size, o.cell) for o in scene.objects)


def layout_is_scene(layout: Layout, scene: Scene, tolerance: float = READ_TOLERANCE) -> bool:
    """Whether ``layout`` describes ``scene``: the same objects (shape, colour, size, cell) and background."""
    try:
        return _key(layout_to_scene(layout, tolerance)) == _key(scene)
    except LayoutError:
        return False


def evaluate_reader(read: Callable[[list[np.ndarray]], list[Layout]], num: int = 1000,
                    seed: int = HELD_OUT_SEED, *, progress: bool = False, batch_size: int = 64) -> ReaderResult:  # fmt: skip
    """Fraction of ``num`` held-out renders whose read layout is exactly their scene (read ``batch_size`` at a time,
    a progress bar on stderr when ``progress``)."""
    samples = held_out_samples(num, seed)
    layouts = in_chunks(lambda a, b: read([s.image for s in samples[a:b]]), num, batch_size, "read layouts",
                        progress, "image")  # fmt: skip
    ok = [layout_is_scene(lay, s.scene) for lay, s in zip(layouts, samples, strict=True)]
    fails = [{"index": s.index, "read": lay.to_dict(), "truth": s.full_text}
             for lay, s, k in zip(layouts, samples, ok) if not k][:20]  # fmt: skip
    return ReaderResult(num, sum(ok) / num, fails)


def vqa_items(num_per_type: int, lang: str, seed: int = HELD_OUT_SEED) -> list[tuple[Scene, Any]]:
    """``num_per_type`` (scene, question) pairs of every type in ``lang``, drawn from their own seed."""
    items = []
    for kind in QUESTION_TYPES:
        rng = random.Random(f"lvg-vqa-eval:{seed}:{lang}:{kind}")
        items += [question_about(kind, lang, rng, held_out=True) for _ in range(num_per_type)]
    return items


def evaluate_vqa(ask: Callable[[list[np.ndarray], list[str]], list[str]], num_per_type: int = 200,
                 lang: str = "en", seed: int = HELD_OUT_SEED, images: bool = True, *, progress: bool = False,
                 batch_size: int = 64) -> VQAResult:  # fmt: skip
    """Accuracy per question type: ``ask(renders, questions) -> answers`` (``images=False`` passes the scenes
    instead of their renders, to score a reading LM on true layouts), ``batch_size`` questions at a time (a
    progress bar on stderr when ``progress``)."""
    items = vqa_items(num_per_type, lang, seed)

    def run(start: int, stop: int) -> list[str]:
        part = items[start:stop]
        return ask([render(s) if images else s for s, _ in part], [q.text for _, q in part])

    answers = in_chunks(run, len(items), batch_size, f"questions ({lang})", progress, "question")
    return score_answers(items, answers, lang, num_per_type, QUESTION_TYPES)


def reading_section(pipe: Any, prompts: list[dict], langs: list[str], config: Any, questions: int = 200,
                    renders: int = 1000, batch_size: int = 64, *, progress: bool = False,
                    out: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """What ``lvg eval shapes`` reports for a model that reads: the reader's exact layouts on held-out renders,
    question accuracy per type, and the closed loop (every benchmark prompt, the model's own settings), as plain
    dicts ready for ``results.json``. Each part is added to ``out`` (a new dict unless given) as soon as it is
    done, so a caller that is interrupted keeps the finished parts; progress bars on stderr when ``progress``."""
    from lvg.eval.metrics import cycle_consistency

    out = {} if out is None else out
    if renders:
        out["reader"] = evaluate_reader(pipe.read, renders, progress=progress, batch_size=batch_size).to_dict()
    for lang in langs:
        if questions:
            out[f"vqa_{lang}"] = evaluate_vqa(
                lambda ims, qs: pipe.answer(ims, qs, batch_size),
                questions,
                lang,
                progress=progress,
                batch_size=batch_size,
            ).to_dict()
        cyc = cycle_consistency(pipe, prompts, lang, config.replace(num_images=1, verify=0), batch_size=batch_size,
                                progress=progress)  # fmt: skip
        out[f"cycle_{lang}"] = {"rate": cyc.rate, "parse_rate": cyc.parse_rate, "num": cyc.num_prompts,
                                "categories": cyc.categories()}  # fmt: skip
    return out


def reading_markdown(section: dict[str, Any]) -> str:
    """The reading section as Markdown: reader exactness, VQA per type and the closed loop per language."""
    lines = []
    if "reader" in section:
        r = section["reader"]
        lines.append(f"Reader: {r['exact']:.1%} of {r['num']} held-out renders read exactly (objects and background).")
    lines += reading_lines(section, QUESTION_TYPES)
    return "\n".join(lines) + "\n"


def off_grid_items(num: int, lang: str, seed: int = HELD_OUT_SEED) -> list[tuple[Layout, str]]:
    """``num`` off-grid layouts (:func:`~lvg.worlds.shapes.reading.off_grid_boxes`: boxes anywhere in their cell,
    sides in their size's band) in reading order, each with its true canonical caption in ``lang``."""
    rng = random.Random(f"lvg-offgrid-eval:{seed}:{lang}")
    out = []
    for _ in range(num):
        scene = sample_scene(rng)
        layout, objs = off_grid_layout(scene, off_grid_boxes(scene, rng))
        out.append((layout, scene_caption(objs, scene.bg, lang)))
    return out


def evaluate_off_grid(caption: Callable[[list[Layout], str], list[str]],
                      answer: Callable[[list[Layout], list[str]], list[str]], num: int = 200, lang: str = "en",
                      seed: int = HELD_OUT_SEED) -> dict[str, Any]:  # fmt: skip
    """Reading layouts off the 3x3 grid: the share of ``num`` held-out off-grid layouts captioned exactly, and of
    ``num // 10`` questions per type answered exactly (``caption(layouts, lang)`` and ``answer(layouts, questions)``
    read layouts, or paint them first and read the images; a None caption, nothing read, is wrong)."""
    items = off_grid_items(num, lang, seed)
    said = caption([lay for lay, _ in items], lang)
    fails = [
        {"layout": lay.to_dict(), "said": s, "truth": t} for (lay, t), s in zip(items, said) if (s or "").strip() != t
    ]
    per = max(1, num // 10)
    types: dict[str, float] = {}
    for kind in QUESTION_TYPES:
        rng = random.Random(f"lvg-offgrid-vqa:{seed}:{lang}:{kind}")
        qs = [off_grid_question(kind, lang, rng, held_out=True) for _ in range(per)]
        got = answer([lay for lay, _ in qs], [q.text for _, q in qs])
        types[kind] = sum(" ".join(a.split()).lower() == q.answer.lower() for a, (_, q) in zip(got, qs)) / per
    return {"lang": lang, "num": num, "captions": 1 - len(fails) / num, "questions": sum(types.values()) / len(types),
            "types": types, "fails": fails[:10]}  # fmt: skip
