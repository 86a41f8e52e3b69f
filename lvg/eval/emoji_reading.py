"""Reading benchmarks on Emoji World: the reader's layouts, captions and questions from real renders, and the closed
loop text -> image -> own caption, for a planned model that reads (``lvg eval emoji``).

Held-out scenes come from the world's held-out stream over the pool the model was trained on (``train``: the emoji
and styles of ``lvg data emoji``); every score compares with the scene the render was drawn from:

- reader: the read layout is the scene (each emoji, its style, size and cell, and the background);
- captions: the caption is the scene's complete canonical caption, character for character;
- questions (:data:`lvg.worlds.emoji.reading.QUESTION_TYPES`): exact answer, per type;
- closed loop: the image generated for a benchmark prompt, captioned by the model, satisfies the prompt
  (``World.entails``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lvg.data.layout import READ_TOLERANCE, Layout, LayoutError
from lvg.eval.progress import in_chunks
from lvg.eval.results import CycleResult, ReaderResult, VQAResult, reading_lines, score_answers
from lvg.eval.shapes import captions_of
from lvg.worlds.emoji.reading import HELD_OUT_SEED

POOL = "train"


def _key(scene: Any) -> tuple:
    return scene.bg, Counter((o.emoji, o.style, o.size, o.cell) for o in scene.objects)


def layout_is_scene(layout: Layout, scene: Any, world: Any, tolerance: float = READ_TOLERANCE) -> bool:
    """Whether a read layout (styled labels) describes ``scene``: the same emoji, styles, sizes, cells and background."""
    try:
        return _key(world.layout_to_scene(layout, tolerance=tolerance)) == _key(scene)
    except LayoutError:
        return False


def held_out(world: Any, num: int) -> list[Any]:
    """``num`` held-out samples (scene + render) of the training pool."""
    return world.held_out_samples(num, HELD_OUT_SEED, POOL)


def evaluate_reader(pipe: Any, world: Any, samples: list[Any], *, progress: bool = False, batch_size: int = 64
                    ) -> ReaderResult:  # fmt: skip
    """The share of held-out renders read exactly."""
    layouts = in_chunks(lambda a, b: pipe.read([s.image for s in samples[a:b]], batch_size), len(samples), batch_size,
                        "read layouts", progress, "image")  # fmt: skip
    ok = [layout_is_scene(lay, s.scene, world) for lay, s in zip(layouts, samples, strict=True)]
    fails = [{"index": s.index, "read": lay.to_dict(), "truth": s.en}
             for lay, s, k in zip(layouts, samples, ok) if not k][:20]  # fmt: skip
    return ReaderResult(len(samples), sum(ok) / len(samples), fails)


def evaluate_captions(pipe: Any, world: Any, samples: list[Any], lang: str, *, progress: bool = False,
                      batch_size: int = 64) -> dict[str, Any]:  # fmt: skip
    """Exact match of the model's captions of held-out renders with their scenes' complete canonical captions."""
    said = captions_of(pipe, [s.image for s in samples], lang, progress=progress, batch_size=batch_size)
    truth = [world.reading.caption(s.scene, lang) for s in samples]
    ok = [a.strip() == t for a, t in zip(said, truth)]
    fails = [{"index": s.index, "caption": a, "truth": t} for s, a, t, k in zip(samples, said, truth, ok) if not k]
    return {"lang": lang, "num": len(samples), "exact_match": sum(ok) / len(ok), "failures": fails[:20]}


def evaluate_questions(pipe: Any, world: Any, num_per_type: int, lang: str, *, progress: bool = False,
                       batch_size: int = 64) -> VQAResult:  # fmt: skip
    """Answer accuracy per question type on renders of held-out scenes."""
    items = world.reading.held_out_questions(num_per_type, lang)

    def run(start: int, stop: int) -> list[str]:
        part = items[start:stop]
        return pipe.answer([world.render(s) for s, _ in part], [q.text for _, q in part], batch_size)

    answers = in_chunks(run, len(items), batch_size, f"questions ({lang})", progress, "question")
    return score_answers(items, answers, lang, num_per_type, world.reading.question_types)


def closed_loop(pipe: Any, world: Any, prompts: list[dict], lang: str, config: Any, *, progress: bool = False,
                batch_size: int = 64) -> CycleResult:  # fmt: skip
    """Prompt ``i`` generated with ``config`` (seed + i), its image captioned in ``lang``; consistent when the
    caption is complete and satisfies the prompt (``world.entails``)."""
    cfg = config.replace(num_images=1, verify=0, allow_unsupported=True)

    def run(start: int, stop: int) -> list[str]:
        seed = None if cfg.seed is None else cfg.seed + start
        out = pipe([r[lang] for r in prompts[start:stop]], config=cfg.replace(seed=seed), batch_size=batch_size)
        return captions_of(pipe, list(out.images), lang, batch_size=batch_size)

    captions = in_chunks(run, len(prompts), batch_size, f"closed loop ({lang})", progress, "prompt")
    rows, complete = [], 0
    for row, cap in zip(prompts, captions, strict=True):
        full = world.reading.complete(cap)
        complete += full
        ok = bool(full and world.entails(cap, row[lang]))
        reason = "" if ok else ("the caption does not satisfy the prompt" if full else "caption is not complete")
        rows.append({"id": row.get("id"), "category": row.get("category"), "prompt": row[lang], "caption": cap,
                     "consistent": ok, "reason": reason})  # fmt: skip
    n = len(rows)
    return CycleResult(lang, sum(r["consistent"] for r in rows) / n, complete / n, complete / n, n, rows)


def emoji_reading_section(pipe: Any, world: Any, prompts: list[dict], langs: list[str], config: Any,
                          questions: int = 100, renders: int = 500, batch_size: int = 64, *, progress: bool = False,
                          out: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything above as plain dicts for ``results.json``, each part added to ``out`` as soon as it is done."""
    out = {} if out is None else out
    samples = held_out(world, renders) if renders else []
    if samples:
        out["reader"] = evaluate_reader(pipe, world, samples, progress=progress, batch_size=batch_size).to_dict()
    for lang in langs:
        if samples:
            out[f"captions_{lang}"] = evaluate_captions(pipe, world, samples, lang, progress=progress,
                                                        batch_size=batch_size)  # fmt: skip
        if questions:
            out[f"vqa_{lang}"] = evaluate_questions(pipe, world, questions, lang, progress=progress,
                                                    batch_size=batch_size).to_dict()  # fmt: skip
        cyc = closed_loop(pipe, world, prompts, lang, config, progress=progress, batch_size=batch_size)
        out[f"cycle_{lang}"] = {"rate": cyc.rate, "complete_rate": cyc.complete_rate, "num": cyc.num_prompts,
                                "categories": cyc.categories()}  # fmt: skip
    return out


def emoji_reading_markdown(section: dict[str, Any], question_types: tuple[str, ...]) -> str:
    """The section as Markdown: reader exactness, captions, questions per type and the closed loop per language."""
    lines = []
    if "reader" in section:
        r = section["reader"]
        lines.append(f"Reader: {r['exact']:.1%} of {r['num']} held-out renders read exactly (every emoji's name, "
                     "style, size and cell, and the background).")  # fmt: skip
    for k, v in section.items():
        if k.startswith("captions_"):
            lines.append(f"Captions ({v['lang']}): {v['exact_match']:.1%} of {v['num']} held-out renders captioned "
                         "exactly.")  # fmt: skip
    lines += reading_lines(section, question_types)
    return "\n".join(lines) + "\n"
