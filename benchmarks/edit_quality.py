"""Editing by instruction, measured: does the edit happen, do untouched objects keep their pixels, do chains hold?

    python benchmarks/edit_quality.py [--model models/shapes-default] [--num 300] [--chains 300] [--threads 2]
                                      [--no-write]

Held-out edits (``lvg.worlds.shapes.edits.make_edit_sample`` with a seed and salt no training stream uses), ``num``
per language and edit type: a render of the scene before (the world's renderer: an image as a user would give it),
the instruction, and the scene the edit asks for. ``pipe.edit`` reads the image, edits its layout and repaints.

- **edit confirmed**: the Shapes World referee finds exactly the asked scene in the edited image (every object's
  shape, colour, size and cell and the background; an added object's unstated attributes are not judged);
- **untouched kept**: each object the edit leaves alone is pixel-exact inside its box, or at least 40 dB PSNR there;
- **chained**: three single edits of different types in a row on one image (no add), the referee on the final scene;
- **refused**: instructions it cannot carry out (an object that is not there, words outside the world, a fifth
  object, removing the only one) raise ``UnsupportedPromptError``; share refused, and with the written reason.

Writes the "edit-quality" section of BENCHMARKS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
from _report import write_section

from lvg import UnsupportedPromptError, load_pipeline
from lvg.worlds.shapes.edits import EDIT_TYPES, EditDataConfig, make_edit_sample, one_edit, refused_edit
from lvg.worlds.shapes.judge import judge
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.scene_layout import object_box
from lvg.worlds.shapes.world import Scene, sample_scene

SEED = 9_100_003  # no training stream uses it
SALT = "lvg-edit-eval"


def spec_of(scene: Scene, unstated: tuple[str, ...] = ()) -> dict:
    """The full spec of ``scene``; the last object (an added one) without its ``unstated`` attributes."""
    groups = []
    for i, o in enumerate(scene.objects):
        g = {"shape": o.shape, "color": o.color, "size": o.size, "cell": list(o.cell), "count": 1}
        if i == len(scene.objects) - 1:
            for k in unstated:
                g.pop(k, None)
        groups.append(g)
    return {"groups": groups, "bg": scene.bg}


def kept(before_img: np.ndarray, after_img: np.ndarray, before: Scene, after: Scene) -> list[bool]:
    """For each object both scenes hold unchanged: pixel-exact or >= 40 dB inside its box."""
    out = []
    for o in before.objects:
        if o not in after.objects or before.bg != after.bg:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in object_box(o))
        a = before_img[y0:y1, x0:x1].astype(np.float64)
        b = after_img[y0:y1, x0:x1].astype(np.float64)
        mse = float(np.mean((a - b) ** 2))
        out.append(mse == 0 or 10 * np.log10(255**2 / mse) >= 40)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="planned model folder with an editor (default: shipped)")
    ap.add_argument("--num", type=int, default=300, help="held-out edits per language and edit type")
    ap.add_argument("--chains", type=int, default=300, help="chains of three edits per language")
    ap.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="layouts the editor writes per edit, the likeliest kept (default: pipe.edit's own)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    cfg = EditDataConfig(seed=SEED)
    t0 = time.perf_counter()
    res: dict = {}
    fails: list[str] = []
    for lang in ("en", "zh"):
        r: dict = {}
        keep_all: list[bool] = []
        for kind in EDIT_TYPES:
            ok = n = 0
            i = 0
            while n < args.num:
                e = make_edit_sample(i, cfg, kind, SALT)
                i += 1
                if e.lang != lang:
                    continue
                n += 1
                src = render(e.before)
                try:
                    out = pipe.edit(src, e.instruction, candidates=args.candidates)
                except UnsupportedPromptError as err:
                    if len(fails) < 40:
                        fails.append(f"[{lang}] {kind}: {e.instruction!r} refused ({err.reason})")
                    continue
                img = np.asarray(out.image.convert("RGB"))
                good = judge(img, spec_of(e.after, e.added_unstated)).passed
                ok += good
                keep_all += kept(src, img, e.before, e.after)
                if not good and len(fails) < 40:
                    fails.append(f"[{lang}] {kind}: {e.instruction!r} -> {out.layouts[-1].to_json()}")
            r[f"edit confirmed: {kind}"] = (ok / n, n)
        r["edit confirmed: all types"] = (np.mean([r[f"edit confirmed: {k}"][0] for k in EDIT_TYPES]),
                                          args.num * len(EDIT_TYPES))  # fmt: skip
        r["untouched objects kept (pixel-exact or >= 40 dB)"] = (float(np.mean(keep_all)), len(keep_all))
        rng = random.Random(f"{SALT}-chain:{SEED}:{lang}")
        ok = 0
        for _ in range(args.chains):
            while True:
                scene = sample_scene(rng)
                start, steps, cur = scene, [], scene
                for kind in rng.sample(["recolor", "resize", "move", "background", "swap", "remove"], 3):
                    got = one_edit(cur, kind, lang, rng)  # (no "add": its unstated attributes would not be judged)
                    if got is None:
                        break
                    steps.append(got[0])
                    cur = got[1]
                if len(steps) == 3:
                    break
            try:
                out = pipe.edit(render(start), steps, candidates=args.candidates)
                ok += judge(np.asarray(out.image.convert("RGB")), spec_of(cur)).passed
            except UnsupportedPromptError:
                pass
        r["chained, 3 rounds"] = (ok / max(1, args.chains), args.chains)
        rng = random.Random(f"{SALT}-refuse:{SEED}:{lang}")
        refused = right = 0
        for _ in range(args.num):
            scene = sample_scene(rng)
            text, reason = refused_edit(scene, lang, rng)
            try:
                pipe.edit(render(scene), text, candidates=args.candidates)
                if len(fails) < 60:
                    fails.append(f"[{lang}] not refused ({reason}): {text!r}")
            except UnsupportedPromptError as err:
                refused += 1
                right += err.reason == reason
        r["impossible instructions refused"] = (refused / args.num, args.num)
        r["... for the written reason"] = (right / args.num, args.num)
        res[lang] = r
    took = time.perf_counter() - t0
    from lvg.pipelines.edit import EDIT_CANDIDATES

    cands = EDIT_CANDIDATES if args.candidates is None else args.candidates
    lines = ["| measure | EN (edits) | ZH (edits) |", "|---|---|---|"]
    for k in res["en"]:
        (a, n), (b, m) = res["en"][k], res["zh"][k]
        lines.append(f"| {k} | {100 * a:.1f}% ({n}) | {100 * b:.1f}% ({m}) |")
    body = "\n".join(lines)
    print(body)
    print("\n".join(fails))
    print(f"({took:.0f} s)")
    if not args.no_write:
        write_section(
            "edit-quality",
            f"""## Editing by instruction (`python benchmarks/edit_quality.py`)

Held-out edits (seed {SEED}, salt `{SALT}`: never in training), {args.num} per language and edit type, on renders of the
scene before; {args.chains} chains of three edits per language; {args.num} impossible instructions per language. Model
`{args.model or "models/shapes-default"}`, its own sampling settings, seed 0, {cands} candidate layout(s) per edit
(`pipe.edit(..., candidates=)`: the likeliest kept); {took:.0f} s in all.

{body}

Failures (first {len(fails)}):

"""
            + "\n".join(f"- {f}" for f in fails),
        )


if __name__ == "__main__":
    main()
