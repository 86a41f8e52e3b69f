"""Editing by instruction, measured: does the edit happen, do untouched objects keep their pixels, do chains hold?

    python benchmarks/edit_quality.py [--world shapes|emoji] [--model FOLDER] [--num 300] [--chains 300]
                                      [--threads 2] [--no-write]

Held-out edits (the world's ``make_edit_sample``, :mod:`lvg.worlds.shapes.edits` or :mod:`lvg.worlds.emoji.edits`,
with a seed and salt no training stream uses), ``num`` per language and edit type: a render of the scene before (the
world's renderer: an image as a user would give it), the instruction, and the scene the edit asks for. ``pipe.edit``
reads the image, edits its layout and repaints.

- **edit confirmed**: the world's referee finds exactly the asked scene in the edited image (every object's shape,
  colour, size and cell, or emoji, style, size and cell, and the background; an added object's unstated attributes
  are not judged);
- **untouched kept**: each object the edit leaves alone is pixel-exact inside its box, or at least 40 dB PSNR there;
- **chained**: three single edits of different types in a row on one image (no add), the referee on the final scene;
- **refused**: instructions it cannot carry out (an object that is not there, words outside the world, a fifth
  object, removing the only one) raise ``UnsupportedPromptError``; share refused, and with the written reason.

Writes the "edit-quality" (Shapes World) or "edit-quality-emoji" section of BENCHMARKS.md unless ``--no-write``.
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

SEED = 9_100_003  # no training stream uses it
SALT = "lvg-edit-eval"


def psnr_kept(before_img: np.ndarray, after_img: np.ndarray, boxes: list[tuple]) -> list[bool]:
    """For each box (of an object both scenes hold unchanged): pixel-exact or >= 40 dB inside it."""
    out = []
    for box in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        a = before_img[y0:y1, x0:x1].astype(np.float64)
        b = after_img[y0:y1, x0:x1].astype(np.float64)
        mse = float(np.mean((a - b) ** 2))
        out.append(mse == 0 or 10 * np.log10(255**2 / mse) >= 40)
    return out


class ShapesEdits:
    """Shapes World's edit stream, renderer and referee."""

    name, section, model = "Shapes World", "edit-quality", "models/shapes-default"
    chain_types = ["recolor", "resize", "move", "background", "swap", "remove"]

    def __init__(self) -> None:
        from lvg.worlds.shapes import edits

        self.edits, self.types = edits, edits.EDIT_TYPES

    def sample(self, i: int, kind: str):
        return self.edits.make_edit_sample(i, self.edits.EditDataConfig(seed=SEED), kind, SALT)

    def render(self, scene) -> np.ndarray:
        from lvg.worlds.shapes.render import render

        return render(scene)

    def judge(self, img: np.ndarray, scene, unstated: tuple[str, ...] = ()) -> bool:
        """The referee finds exactly ``scene``, the last object (an added one) without its ``unstated`` attributes."""
        groups = [self.group(o) for o in scene.objects]
        for k in unstated:
            groups[-1].pop(k, None)
        return self.referee(img, {"groups": groups, "bg": scene.bg})

    def group(self, o) -> dict:
        """One object as a spec group: everything the referee checks about it."""
        return {"shape": o.shape, "color": o.color, "size": o.size, "cell": list(o.cell), "count": 1}

    def referee(self, img: np.ndarray, spec: dict) -> bool:
        from lvg.worlds.shapes.judge import judge

        return judge(img, spec).passed

    def kept_boxes(self, before, after) -> list[tuple]:
        """The boxes of the objects an edit leaves alone (none where the background changes)."""
        if before.bg != after.bg:
            return []
        return [self.box(o, before) for o in before.objects if o in after.objects]

    def box(self, o, scene) -> tuple:
        from lvg.worlds.shapes.scene_layout import object_box

        return object_box(o)

    def scene(self, rng: random.Random):
        from lvg.worlds.shapes.world import sample_scene

        return sample_scene(rng)

    def one_edit(self, scene, kind: str, lang: str, rng: random.Random):
        return self.edits.one_edit(scene, kind, lang, rng)

    def refused(self, scene, lang: str, rng: random.Random) -> tuple[str, str]:
        return self.edits.refused_edit(scene, lang, rng)


class EmojiEdits(ShapesEdits):
    """Emoji World's edit stream (held-out outside names for "unknown"), renderer and referee."""

    name, section, model = "Emoji World", "edit-quality-emoji", "models/emoji-default"
    chain_types = ["restyle", "replace", "resize", "move", "background", "swap", "remove"]

    def __init__(self) -> None:
        from lvg.worlds import get_world
        from lvg.worlds.emoji import edits
        from lvg.worlds.emoji.analysis import outside_names
        from lvg.worlds.emoji.plugin import load_emoji_world

        self.edits, self.types = edits, edits.EDIT_TYPES
        self.world, self.world_plugin = load_emoji_world(), get_world("emoji")
        self.outside = outside_names(self.world.assets, self.world.table)

    def sample(self, i: int, kind: str):
        return self.edits.make_edit_sample(i, self.world.table, self.outside, self.edits.EmojiEditConfig(seed=SEED),
                                           kind, SALT, held_out=True)  # fmt: skip

    def render(self, scene) -> np.ndarray:
        return self.world.render(scene)

    def group(self, o) -> dict:
        return {"emoji": o.emoji, "style": o.style, "size": o.size, "count": 1, "cell": list(o.cell)}

    def referee(self, img: np.ndarray, spec: dict) -> bool:
        return self.world_plugin.judge(img, spec).passed

    def box(self, o, scene) -> tuple:
        return o.box(scene.canvas)

    def scene(self, rng: random.Random):
        from lvg.worlds.emoji.edits import in_order
        from lvg.worlds.emoji.scenes import sample_scene

        return in_order(sample_scene(rng, self.world.table, self.world.cfg.scene_config()))

    def one_edit(self, scene, kind: str, lang: str, rng: random.Random):
        return self.edits.one_edit(scene, kind, lang, rng, self.world.table)

    def refused(self, scene, lang: str, rng: random.Random) -> tuple[str, str]:
        return self.edits.refused_edit(scene, lang, rng, self.world.table, self.outside, held_out=True)


def held_out_edits(w: ShapesEdits, kind: str, lang: str, num: int):
    """The first ``num`` held-out edits of type ``kind`` in ``lang``, each after its stream index plus one (the
    number of items drawn so far, which edit_read_noise seeds its noise with)."""
    n = i = 0
    while n < num:
        e = w.sample(i, kind)
        i += 1
        if e.lang == lang:
            n += 1
            yield i, e


def measure(w: ShapesEdits, pipe, lang: str, num: int, chains: int, candidates: int | None, fails: list[str]) -> dict:
    """Every figure of one language: (share, count) by measure."""
    r: dict = {}
    keep_all: list[bool] = []
    for kind in w.types:
        ok = n = 0
        for _, e in held_out_edits(w, kind, lang, num):
            n += 1
            src = w.render(e.before)
            try:
                out = pipe.edit(src, e.instruction, candidates=candidates)
            except UnsupportedPromptError as err:
                if len(fails) < 40:
                    fails.append(f"[{lang}] {kind}: {e.instruction!r} refused ({err.reason})")
                continue
            img = np.asarray(out.image.convert("RGB"))
            good = w.judge(img, e.after, e.added_unstated)
            ok += good
            keep_all += psnr_kept(src, img, w.kept_boxes(e.before, e.after))
            if not good and len(fails) < 40:
                fails.append(f"[{lang}] {kind}: {e.instruction!r} -> {out.layouts[-1].to_json()}")
        r[f"edit confirmed: {kind}"] = (ok / n, n)
    r["edit confirmed: all types"] = (np.mean([r[f"edit confirmed: {k}"][0] for k in w.types]), num * len(w.types))
    r["untouched objects kept (pixel-exact or >= 40 dB)"] = (float(np.mean(keep_all)), len(keep_all))
    rng = random.Random(f"{SALT}-chain:{SEED}:{lang}")
    ok = 0
    for _ in range(chains):
        while True:
            start, steps, cur = (scene := w.scene(rng)), [], scene
            for kind in rng.sample(w.chain_types, 3):
                got = w.one_edit(cur, kind, lang, rng)  # (no "add": its unstated attributes would not be judged)
                if got is None:
                    break
                steps.append(got[0])
                cur = got[1]
            if len(steps) == 3:
                break
        try:
            out = pipe.edit(w.render(start), steps, candidates=candidates)
            ok += w.judge(np.asarray(out.image.convert("RGB")), cur)
        except UnsupportedPromptError:
            pass
    r["chained, 3 rounds"] = (ok / max(1, chains), chains)
    rng = random.Random(f"{SALT}-refuse:{SEED}:{lang}")
    refused = right = 0
    for _ in range(num):
        scene = w.scene(rng)
        text, reason = w.refused(scene, lang, rng)
        try:
            pipe.edit(w.render(scene), text, candidates=candidates)
            if len(fails) < 60:
                fails.append(f"[{lang}] not refused ({reason}): {text!r}")
        except UnsupportedPromptError as err:
            refused += 1
            right += err.reason == reason
    r["impossible instructions refused"] = (refused / num, num)
    r["... for the written reason"] = (right / num, num)
    return r


def edit_args(doc: str | None, num: int) -> argparse.ArgumentParser:
    """The arguments every edit benchmark takes: world, model, edits per language and type, threads, no-write."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", choices=("shapes", "emoji"), default="shapes", help="whose edits to measure")
    ap.add_argument("--model", type=Path, default=None,
                    help="planned model folder with an editor (default: the world's shipped one)")  # fmt: skip
    ap.add_argument("--num", type=int, default=num, help="held-out edits per language and edit type")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    return ap


def world_and_pipe(args: argparse.Namespace) -> tuple[ShapesEdits, Path, object]:
    """The world's edits, the model folder (``--model`` or the world's shipped one) and its pipeline."""
    torch.set_num_threads(args.threads)
    w = EmojiEdits() if args.world == "emoji" else ShapesEdits()
    model = args.model or Path(w.model)
    return w, model, load_pipeline(model)


def main() -> None:
    ap = edit_args(__doc__, 300)
    ap.add_argument("--chains", type=int, default=300, help="chains of three edits per language")
    ap.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="layouts the editor writes per edit, the likeliest kept (default: pipe.edit's own)",
    )
    args = ap.parse_args()
    w, model, pipe = world_and_pipe(args)
    t0 = time.perf_counter()
    fails: list[str] = []
    res = {lang: measure(w, pipe, lang, args.num, args.chains, args.candidates, fails) for lang in ("en", "zh")}
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
        cmd = "python benchmarks/edit_quality.py" + (" --world emoji" if args.world == "emoji" else "")
        write_section(
            w.section,
            f"""## Editing by instruction, {w.name} (`{cmd}`)

Held-out edits (seed {SEED}, salt `{SALT}`: never in training), {args.num} per language and edit type, on renders of the
scene before; {args.chains} chains of three edits per language; {args.num} impossible instructions per language. Model
`{model}`, its own sampling settings, seed 0, {cands} candidate layout(s) per edit
(`pipe.edit(..., candidates=)`: the likeliest kept); {took:.0f} s in all.

{body}

Failures (first {len(fails)}):

"""
            + "\n".join(f"- {f}" for f in fails),
        )


if __name__ == "__main__":
    main()
