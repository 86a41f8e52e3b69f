"""Validation of Emoji World's referee against ground truth (used by the tests and ``benchmarks/emoji_referee.py``).

For each prompt (a benchmark row's spec, or the caption of a random scene), a random scene that satisfies it is
rendered with the real sprites and optionally degraded (Gaussian blur, then Gaussian noise, as Shapes World's judge
was checked):
- ``correct``: the render against its own prompt; the referee should pass it;
- ``mismatched``: the same render against another prompt; the referee's pass rate is compared with the symbolic
  truth (:func:`~lvg.worlds.emoji.referee.scene_satisfies`) and false accepts are counted;
- ``objects``: every emoji of the render read back (matched by cell): found, named, style, size, per size.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import numpy as np

from lvg.worlds.shapes.judge_check import degrade

from .benchmark import scene_from_spec
from .captions import Spec
from .referee import Referee, scene_satisfies
from .scenes import render


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
        "objects": per_size,
        "extra_objects": obj["extra"],
        "failures": failures,
    }
