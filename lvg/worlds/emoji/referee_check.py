"""Validation of Emoji World's referee against ground truth (used by the tests and ``benchmarks/emoji_referee.py``).

For each prompt (a benchmark row's spec, or the caption of a random scene), a random scene that satisfies it is
rendered with the real sprites and optionally degraded (Gaussian blur, then Gaussian noise, as Shapes World's judge
was checked):
- ``correct``: the render against its own prompt; the referee should pass it;
- ``mismatched``: the same render against another prompt; the referee's pass rate is compared with the symbolic
  truth (:func:`~lvg.worlds.emoji.referee.scene_satisfies`) and false accepts are counted;
- ``near_miss``: the scene with one thing changed (emoji, style, size, cell, background, one emoji added or removed),
  against the first prompt; the referee must agree with the symbolic truth;
- ``objects``: every emoji of the render read back (matched by cell): found, named, style, size, per size.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterable

import numpy as np

from lvg.data.layout import LayoutError
from lvg.images import jpeg
from lvg.worlds.shapes.judge_check import degrade

from .benchmark import scene_from_spec
from .captions import Spec
from .concepts import STYLES
from .referee import Referee, scene_satisfies
from .scenes import CELLS, SIZES, EmojiObj, EmojiScene, EmojiSceneError, composite, render


def perturb(scene: EmojiScene, rng: random.Random, names: list[str]) -> EmojiScene:
    """``scene`` with exactly one thing changed (another emoji among ``names``, the other style or size, a free cell,
    the other background, or one emoji added or removed); jitter is dropped where boxes could collide."""
    objs = list(scene.objects)
    i = rng.randrange(len(objs))
    o = objs[i]
    free = [c for c in CELLS if c not in {p.cell for p in objs}]
    kinds = ["emoji", "style", "size", "bg"] + (["move", "add"] if free and len(objs) < 4 else [])
    kind = rng.choice(kinds + (["remove"] if len(objs) > 1 else []))
    if kind == "emoji":
        objs[i] = dataclasses.replace(o, emoji=rng.choice([n for n in names if n != o.emoji]))
    elif kind == "style":
        objs[i] = dataclasses.replace(o, style=next(s for s in STYLES if s != o.style))
    elif kind == "size":
        objs[i] = dataclasses.replace(o, size=next(z for z in SIZES[scene.canvas] if z != o.size))
    elif kind == "move":
        objs[i] = dataclasses.replace(o, cell=rng.choice(free))
    elif kind == "add":
        objs.append(dataclasses.replace(o, cell=rng.choice(free)))
    elif kind == "remove":
        objs.pop(i)
    else:
        return EmojiScene(scene.objects, "black" if scene.bg == "white" else "white", scene.canvas)
    try:
        return EmojiScene(tuple(objs), scene.bg, scene.canvas)
    except (EmojiSceneError, LayoutError):  # a grown or moved box overlaps another: every emoji at its cell centre
        return EmojiScene(tuple(dataclasses.replace(p, jitter=(0, 0)) for p in objs), scene.bg, scene.canvas)


def validate_referee(
    referee: Referee,
    specs: Iterable[Spec],
    seed: int = 0,
    noise: float = 0.0,
    blur: float = 0.0,
    categories: Iterable[str] | None = None,
) -> dict:
    """Run the measurements over ``specs`` (normalised); ``categories`` (one per spec) splits the pass rates."""
    specs = list(specs)
    cats = list(categories) if categories is not None else ["all"] * len(specs)
    rng = random.Random(f"lvg-emoji-referee-check:{seed}")
    nrng = np.random.default_rng(seed)
    correct: Counter = Counter()
    total: Counter = Counter()
    failures: list[dict] = []
    mm_judge = mm_truth = mm_false_accept = mm_false_reject = 0
    nm_agree = nm_truth = nm_false_accept = nm_false_reject = 0
    names = [c.en for c in referee.table]
    obj: Counter = Counter()
    for n, (spec, cat) in enumerate(zip(specs, cats)):
        scene = scene_from_spec(spec, rng, referee.canvas)
        img = render(scene, referee.bank)
        if noise or blur:
            img = degrade(img, nrng, noise, blur)
        v = referee.judge(img, spec)
        total[cat] += 1
        correct[cat] += v.passed
        if not v.passed and len(failures) < 20:
            failures.append({"spec": spec, "reason": v.reason})
        other = specs[(n + 1 + rng.randrange(len(specs) - 1)) % len(specs)] if len(specs) > 1 else spec
        ok_j = referee.judge(img, other).passed
        ok_t = scene_satisfies(scene, other)
        mm_judge += ok_j
        mm_truth += ok_t
        mm_false_accept += ok_j and not ok_t
        mm_false_reject += ok_t and not ok_j
        near = perturb(scene, rng, names)
        img = render(near, referee.bank)
        if noise or blur:
            img = degrade(img, nrng, noise, blur)
        ok_j = referee.judge(img, spec).passed
        ok_t = scene_satisfies(near, spec)
        nm_truth += ok_t
        nm_agree += ok_j == ok_t
        nm_false_accept += ok_j and not ok_t
        nm_false_reject += ok_t and not ok_j
        seen = {o.cell: o for o in v.reading.objects}
        for o in scene.objects:
            s = seen.get(o.cell)
            obj[o.size, "objects"] += 1
            if s is not None:
                obj[o.size, "found"] += 1
                obj[o.size, "emoji"] += s.emoji == o.emoji
                obj[o.size, "style"] += s.emoji == o.emoji and s.style == o.style
                obj[o.size, "size"] += s.size == o.size
        obj["extra"] += max(len(v.reading.objects) - len(scene.objects), 0)
    num = len(specs)
    sizes = sorted({k[0] for k in obj if isinstance(k, tuple)})
    per_size = {
        z: {m: obj[z, m] / max(obj[z, "objects"], 1) for m in ("found", "emoji", "style", "size")}
        | {"objects": obj[z, "objects"]}
        for z in sizes
    }
    return {
        "num": num,
        "noise_sigma": noise,
        "blur_sigma": blur,
        "correct_pass_rate": sum(correct.values()) / max(num, 1),
        "correct_pass_rate_by_category": {c: correct[c] / total[c] for c in total},
        "mismatched_judge_pass_rate": mm_judge / max(num, 1),
        "mismatched_truth_rate": mm_truth / max(num, 1),
        "mismatched_false_accepts": mm_false_accept,
        "mismatched_false_rejects": mm_false_reject,
        "mismatched_fail_rate": 1 - mm_judge / max(num, 1),
        "near_miss_truth_rate": nm_truth / max(num, 1),
        "near_miss_agreement": nm_agree / max(num, 1),
        "near_miss_false_accepts": nm_false_accept,
        "near_miss_false_rejects": nm_false_reject,
        "objects": per_size,
        "extra_objects": obj["extra"],
        "failures": failures,
    }


def stress_objects(referee: Referee, num: int = 1000, seed: int = 0) -> dict:
    """Naming under conditions the references do not cover exactly: one emoji of any pair, at a whole-pixel side
    drawn between the small and the large size, in a random cell with jitter, on either background, blurred (sigma
    0-1.2 px), noisy (sigma 0-10) and half the time JPEG-compressed (quality 50-95). Returns the share found alone,
    named, named with the style, and the rates per side."""
    rng = random.Random(f"lvg-emoji-referee-stress:{seed}")
    nrng = np.random.default_rng(seed)
    small, large = SIZES[referee.canvas]["small"], SIZES[referee.canvas]["large"]
    hits: Counter = Counter()
    for _ in range(num):
        emoji, style = rng.choice(referee.pairs)
        side = rng.randint(small, large)
        bank = referee.bank
        scene = EmojiScene(
            (EmojiObj(emoji, style, "small", (rng.randrange(3), rng.randrange(3))),),
            rng.choice(("white", "black")),
            referee.canvas,
        )
        img = render(scene, bank)  # placed as a small one, then redrawn at ``side`` about the same centre
        img[:] = np.asarray((255, 255, 255) if scene.bg == "white" else (0, 0, 0), np.uint8)
        x0, y0, _, _ = scene.objects[0].box(referee.canvas)
        x0, y0 = max(x0 - (side - small) // 2, 1), max(y0 - (side - small) // 2, 1)
        canvas = img.astype(np.float32) / 255.0
        composite(canvas, bank.resized(emoji, style, side), x0, y0)
        img = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
        img = degrade(img, nrng, rng.uniform(0, 10), rng.uniform(0, 1.2))
        if rng.random() < 0.5:
            img = jpeg(img, rng.randint(50, 95))
        objs = referee.read(img).objects
        hits["n", side] += 1
        if len(objs) == 1:
            hits["alone", side] += 1
            hits["emoji", side] += objs[0].emoji == emoji
            hits["style", side] += objs[0].emoji == emoji and objs[0].style == style
    sides = sorted({k[1] for k in hits})
    tot = {m: sum(hits[m, s] for s in sides) / num for m in ("alone", "emoji", "style")}
    return tot | {"by_side": {s: {m: hits[m, s] / hits["n", s] for m in ("alone", "emoji", "style")} for s in sides}}
