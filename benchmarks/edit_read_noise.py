"""How much does the editor depend on getting the world's own boxes? Held-out edits on their true layouts, clean and
with reader-like noise.

    python benchmarks/edit_read_noise.py [--world shapes|emoji] [--model FOLDER] [--num 40] [--prob 0.5]
                                         [--threads 2] [--no-write]

The held-out edits of ``benchmarks/edit_quality.py`` (same seed and salt; every type but add, whose unstated
attributes are sampled), ``num`` per language and type, each given to ``pipe.edit(..., layout=)`` twice: with the true
layout before the edit, and with each of its box coordinates moved 1 px either way with probability ``prob`` (a box
that would leave the canvas, overlap another or fall under the world's small side stays as it was). An edit is
written right when the edited layout has the asked background and, object for object, the asked labels with every box
coordinate within 3 px. A reader reads boxes 1-2 px off now and then (Emoji World: about one emoji in nine), so the gap
between the two rows is what such a read costs the editor. Writes the "edit-read-noise" (Shapes World) or
"edit-read-noise-emoji" section of BENCHMARKS.md unless ``--no-write``.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from _report import write_section
from edit_quality import edit_args, held_out_edits, world_and_pipe

from lvg import UnsupportedPromptError
from lvg.data.layout import Layout, LayoutError

MOVE_NOTE = (
    " Shapes World draws a moved object's offset in its new cell (up to 2 px each way), which no editor can"
    " know, so its move column is stricter than the referee (edit-quality: moves confirmed 99.3 / 100%)."
)
SMALL_SIDE = {"shapes": 10, "emoji": 14}  # px: the worlds' small size, which no noised side may fall under


def written_right(got: Layout, want: Layout, tol: float = 3.0) -> bool:
    """The asked background and, object for object, the asked labels with every box coordinate within ``tol`` px."""
    if got.background != want.background or len(got.objects) != len(want.objects):
        return False
    left = list(want.objects)
    for o in got.objects:
        match = [p for p in left if p.label == o.label and max(abs(a - b) for a, b in zip(o.box, p.box)) <= tol]
        if not match:
            return False
        left.remove(match[0])
    return True


def noised(layout: Layout, prob: float, rng: random.Random, small: int) -> Layout:
    """``layout`` with each box coordinate moved 1 px either way with probability ``prob`` (see the module doc)."""
    objs = []
    for o in layout.objects:
        box = [min(layout.canvas, max(0, v + (rng.choice((-1, 1)) if rng.random() < prob else 0))) for v in o.box]
        objs.append(replace(o, box=tuple(float(v) for v in box)) if min(box[2] - box[0], box[3] - box[1]) >= small
                    else o)  # fmt: skip
    try:
        return Layout(layout.background, tuple(objs), layout.canvas)
    except LayoutError:  # two noised boxes overlap: the layout as it was
        return layout


def main() -> None:
    ap = edit_args(__doc__, 40)
    ap.add_argument("--prob", type=float, default=0.5, help="chance that each box coordinate moves 1 px")
    args = ap.parse_args()
    w, model, pipe = world_and_pipe(args)
    kinds = [k for k in w.types if k != "add"]
    t0 = time.perf_counter()
    right = {(lang, kind, tag): 0 for lang in ("en", "zh") for kind in kinds for tag in ("clean", "noised")}
    for lang in ("en", "zh"):
        for kind in kinds:
            for i, e in held_out_edits(w, kind, lang, args.num):
                src = w.render(e.before)
                rng = random.Random(f"edit-read-noise:{lang}:{kind}:{i}")
                for tag, lay in (("clean", e.before_layout),
                                 ("noised", noised(e.before_layout, args.prob, rng, SMALL_SIDE[args.world]))):  # fmt: skip
                    try:
                        out = pipe.edit(src, e.instruction, layout=lay)
                    except UnsupportedPromptError:
                        continue
                    right[(lang, kind, tag)] += written_right(out.layouts[-1], e.after_layout)
    took = time.perf_counter() - t0
    total = args.num * len(kinds)
    lines = ["| given boxes | " + " | ".join(kinds) + " | all (EN) | all (ZH) |", "|---" * (len(kinds) + 3) + "|"]
    for tag, name in (("clean", "the world's own"), ("noised", f"each coordinate 1 px off at {args.prob}")):
        per = [sum(right[(lang, k, tag)] for lang in ("en", "zh")) / (2 * args.num) for k in kinds]
        alls = [sum(right[(lang, k, tag)] for k in kinds) / total for lang in ("en", "zh")]
        lines.append(f"| {name} | " + " | ".join(f"{100 * v:.1f}%" for v in [*per, *alls]) + " |")
    body = "\n".join(lines)
    print(body)
    print(f"({took:.0f} s)")
    if not args.no_write:
        cmd = "python benchmarks/edit_read_noise.py" + (" --world emoji" if args.world == "emoji" else "")
        write_section(
            "edit-read-noise" + ("-emoji" if args.world == "emoji" else ""),
            f"""## The editor on read boxes, {w.name} (`{cmd}`)

Held-out edits of edit-quality (every type but add), {args.num} per language and type, given to `pipe.edit(..., layout=)`
on their true layouts and with each box coordinate moved 1 px at probability {args.prob}; written right: the asked
labels and background, every box within 3 px (per type: both languages). Model `{model}`, its own sampling
settings, seed 0; {took:.0f} s.{MOVE_NOTE if args.world == "shapes" else ""}

{body}
""",
        )


if __name__ == "__main__":
    main()
