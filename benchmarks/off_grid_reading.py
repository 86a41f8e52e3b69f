"""Reading layouts off the 3x3 grid, and "how many objects are there?", side by side for several models.

    python benchmarks/off_grid_reading.py [--model DIR ...] [--num 200] [--threads 2] [--no-write]

For each model folder (default: the shipped one) and language: held-out off-grid layouts
(``lvg.eval.reading.off_grid_items``: boxes anywhere in their cell, sides 6-12 px small and 14-21 px large) read
(1) by the reading LM alone from the true layouts and (2) end to end, painted by the model's painter and read back
from the pixels by its reader; captions exact, and ``num / 10`` questions per type. Plus the on-grid question types
of ``lvg eval shapes`` (``evaluate_vqa`` on true layouts), where "total" is the new "how many objects" type.
Writes the "off-grid-reading" section of BENCHMARKS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _report import write_section

from lvg import load_pipeline
from lvg.data.layout import reading_order
from lvg.eval.reading import evaluate_off_grid, evaluate_vqa
from lvg.worlds.shapes.scene_layout import layout_from_scene


def measure(pipe, num: int) -> dict:
    lm = pipe.reader  # the LM alone reads true layouts; the pipeline paints and reads pixels

    def painted(layouts):
        return pipe(layout=layouts).images

    out = {}
    for lang in ("en", "zh"):
        out[f"lm_{lang}"] = evaluate_off_grid(lm.caption, lm.answer, num, lang)
        out[f"e2e_{lang}"] = evaluate_off_grid(lambda lays, lg: lm.caption_each(pipe.read(painted(lays)), lg),
                                               lambda lays, qs: pipe.answer(painted(lays), qs), num, lang)  # fmt: skip
        ask = lambda scenes, qs: lm.answer([reading_order(layout_from_scene(s)) for s in scenes], qs)  # noqa: E731
        out[f"grid_{lang}"] = evaluate_vqa(ask, num // 2, lang, images=False).to_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", help="planned model folder with a reader (repeatable)")
    ap.add_argument("--num", type=int, default=200, help="off-grid layouts per language (questions: num/10 per type)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = args.model or [None]
    res = {str(m or "models/shapes-default"): measure(load_pipeline(m), args.num) for m in models}
    lines = ["| model | reads | captions EN / ZH | questions EN / ZH | total (how many objects) EN / ZH | "
             "where EN / ZH | size EN / ZH |", "|---|---|---|---|---|---|---|"]  # fmt: skip

    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    for name, r in res.items():
        for key, what in (("lm", "off-grid layouts (LM alone)"), ("e2e", "off-grid, painted then read"),
                          ("grid", "on-grid layouts (LM alone)")):  # fmt: skip
            en, zh = r[f"{key}_en"], r[f"{key}_zh"]
            cap = "-" if key == "grid" else f"{pct(en['captions'])} / {pct(zh['captions'])}"
            q = "overall" if key == "grid" else "questions"
            lines.append(f"| `{name}` | {what} | {cap} | {pct(en[q])} / {pct(zh[q])} | "
                         f"{pct(en['types']['total'])} / {pct(zh['types']['total'])} | "
                         f"{pct(en['types']['where'])} / {pct(zh['types']['where'])} | "
                         f"{pct(en['types']['size'])} / {pct(zh['types']['size'])} |")  # fmt: skip
    body = "\n".join(lines)
    print(body)
    for name, r in res.items():
        for k in ("lm_en", "e2e_en", "lm_zh"):
            for f in r[k]["fails"][:3]:
                print(name, k, f)
    if not args.no_write:
        write_section(
            "off-grid-reading",
            f"""## Reading off the grid (`python benchmarks/off_grid_reading.py`)

{args.num} held-out off-grid layouts per language (boxes anywhere in their cell; sides 6-12 px small, 14-21 px
large), captions exact and {args.num // 10} questions per type; on-grid rows: {args.num // 2} questions per type on
true layouts (`evaluate_vqa`). "total" is "how many objects are there?" (held-out wordings included).

{body}
""",
        )


if __name__ == "__main__":
    main()
