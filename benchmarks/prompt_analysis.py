"""Prompt analysis: does the planner draw what it can, understand everyday words, and refuse what it cannot draw?

    python benchmarks/prompt_analysis.py [--model models/shapes-default] [--threads 2] [--no-write]

Four kinds of set, per language (the planner's own decision, :meth:`lvg.PlannedPipeline.analyse`: one forward pass, no
sampling):

- **in-world accepted**: the public benchmark (450 prompts), the typed prompts and the 3-4-object prompts of
  ``lvg.worlds.shapes.prompt_sets``, and 500 paraphrased captions from a seed no training stream uses. Share the
  planner accepts (target >= 99.5%).
- **everyday** (``benchmarks/prompt_analysis.jsonl``, set ``everyday``, written by hand for this benchmark): each
  prompt with what it means in the canonical grammar (``means``). Four sets (``written``): set 1 was written before
  the first analysis planner was trained, and the everyday words and number words of some of its failures were then
  added to the training lexicon, so it is no longer independent; set 2 was written after that, and the failures
  it showed shaped the planner's second round (``analysis_version=2``: more colour names, ways of asking for nothing,
  everyday-worded refusals), so it is not independent of that round; set 3 (80 per language) was written by a writer
  who saw only the world contract and the README; its failures on the first round shaped the third round's free
  sentences (``lvg.worlds.shapes.sentences``), so it is not independent of that round either; set 4 (80 per
  language) was written by another writer who saw only the world contract and the caption parser, while the third
  round trained; its failures on round 3 shaped round 4's forms (``lvg.worlds.shapes.phrasings``), so it is not
  independent of round 4; set 5 (80 per language) was written by a third writer who saw only the world contract and
  the caption parser, before round 4 trained, and was never read while the data was written (that rounds 4 and 5
  refused fewer of its outside prompts decided round 6's refusal share, so its outside figures are not independent of
  round 6); set 6 (80 per language) was written by a fourth writer who saw the same two files, before round 7
  trained, and was not read before the rounds were measured on it; set 7 (80 per language) was written by a fifth
  writer who saw the same two files, on 2026-12-07, after round 7 shipped; set 8 (80 per language) by a sixth such
  writer, on 2026-12-07, before round 8 was measured (never used to choose a round: round 8 was chosen on sets 1-7;
  its failures were read on 2026-12-08 while round 9's binding rows were written, so it is not independent of round
  9); set 9 (80 per language) by a seventh such writer, on 2026-12-08, before any round-9 candidate was measured,
  never used to choose round 9, but its failures were read while round 10's placing rows were written and it was
  among the sets round 10 was chosen on (sets 1-9); set 10 (80 per language) by an eighth such writer, on
  2026-12-08, before any round-10 candidate trained, never read while data was written and never used to choose;
  set 11 (80 per language) by a ninth such writer, on 2026-12-08, after round 10 shipped, measured without its
  failures being read (kept for the next round as set 10 was for this one). Right = accepted and the planned layout
  (seed: the prompt's place in its set and language, whichever others are refused; the model's own sampling
  settings) satisfies ``means``; refused = refused; wrong = accepted and drawn otherwise (targets: >= 90% right,
  0 wrong).
- **outside the world** (set ``outside``, written by hand, sets 1-4 as above): words outside the world (mostly
  ones the training stream never uses), counts beyond four, contradictions, zero and negative counts. Share refused (target >= 95%), and the share refused for the written
  reason.
- **generated refusals** from held-out words (``lvg.worlds.shapes.analysis.HELD_OUT_UNKNOWN``, a seed no training
  stream uses): share refused.

Writes the "prompt-analysis" section of BENCHMARKS.md (unless ``--no-write``) and prints every failure.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import torch
from _report import write_section

from lvg import load_pipeline
from lvg.data.layout import LayoutError
from lvg.resources import benchmark_prompts_file
from lvg.sampling.config import REFUSAL_THRESHOLD
from lvg.worlds.shapes.analysis import refusal_variant
from lvg.worlds.shapes.benchmark import load_prompts
from lvg.worlds.shapes.captions import describe, spec_to_text
from lvg.worlds.shapes.parse import parse_caption
from lvg.worlds.shapes.prompt_sets import multi_object_prompts, typed_prompts
from lvg.worlds.shapes.scene_layout import layout_to_scene
from lvg.worlds.shapes.spec import scene_satisfies
from lvg.worlds.shapes.world import sample_scene

ROWS = Path(__file__).with_name("prompt_analysis.jsonl")
HELD_OUT_SEED = 7_000_001  # no training stream draws from it


def paraphrases(num: int, lang: str) -> list[str]:
    rng = random.Random(f"lvg-analysis-eval:{HELD_OUT_SEED}:{lang}")
    return [spec_to_text(describe(sample_scene(rng), rng), lang, rng) for _ in range(num)]


def generated_refusals(num: int, lang: str) -> list[str]:
    rng = random.Random(f"lvg-analysis-refuse:{HELD_OUT_SEED}:{lang}")
    out = []
    while len(out) < num:
        text, reason = refusal_variant(spec_to_text(describe(sample_scene(rng), rng), lang), lang, rng, held_out=True)
        if reason == "unknown":  # the other reasons use no words, so nothing of them is held out
            out.append(text)
    return out


def accepted(pipe, prompts: list[str]) -> tuple[float, list[str]]:
    errs = pipe.analyse(prompts)
    return sum(e is None for e in errs) / len(prompts), [f"{p!r} -> {e.reason}" for p, e in zip(prompts, errs) if e]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="planned model folder (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    rows = [json.loads(line) for line in ROWS.read_text(encoding="utf-8").splitlines()]
    bench = load_prompts(benchmark_prompts_file())
    typed, multi = typed_prompts(), multi_object_prompts()
    table, fails = [], []
    results: dict = {}
    for lang in ("en", "zh"):
        r: dict = {}
        inworld = {"public benchmark": [p[lang] for p in bench], "typed prompts": [p[lang] for p in typed],
                   "3-4 objects": [p[lang] for p in multi], "paraphrases (held-out seed)": paraphrases(500, lang)}  # fmt: skip
        n_in = ok_in = 0
        for name, prompts in inworld.items():
            share, bad = accepted(pipe, prompts)
            r[f"accepted: {name}"] = (share, len(prompts))
            n_in, ok_in = n_in + len(prompts), ok_in + round(share * len(prompts))
            fails += [f"[{lang}] in-world refused ({name}): {b}" for b in bad]
        r["accepted: all in-world"] = (ok_in / n_in, n_in)
        for written in sorted({x["written"] for x in rows}):
            tag = f"set {written}"
            every = [x for x in rows if x["set"] == "everyday" and x["lang"] == lang and x["written"] == written]
            errs = pipe.analyse([x["prompt"] for x in every])
            drawn = [i for i, e in enumerate(errs) if e is None]
            kept = [every[i] for i in drawn]
            # each prompt plans with its own seed (its place in the set), whichever others are refused, so two
            # planners or two thresholds are compared prompt for prompt
            layouts = pipe.plan([x["prompt"] for x in kept], seeds=drawn) if kept else []
            verdict: Counter = Counter()
            for x, e in zip(every, errs):
                if e is not None:
                    verdict["refused"] += 1
                    fails.append(f"[{lang}, {tag}] everyday refused: {x['prompt']!r} -> {e.reason}")
            for x, lay in zip(kept, layouts):
                try:
                    ok = scene_satisfies(layout_to_scene(lay, 1.0), parse_caption(x["means"]))
                except LayoutError:
                    ok = False
                verdict["right" if ok else "wrong"] += 1
                if not ok:
                    fails.append(f"[{lang}, {tag}] everyday WRONG: {x['prompt']!r} -> {lay.to_json()}")
            for k in ("right", "refused", "wrong"):
                r[f"everyday ({tag}): {k}"] = (verdict[k] / len(every), len(every))
            out = [x for x in rows if x["set"] == "outside" and x["lang"] == lang and x["written"] == written]
            errs = pipe.analyse([x["prompt"] for x in out])
            r[f"outside ({tag}): refused"] = (sum(e is not None for e in errs) / len(out), len(out))
            r[f"outside ({tag}): refused for the written reason"] = (
                sum(e is not None and e.reason == x["reason"] for x, e in zip(out, errs)) / len(out), len(out))  # fmt: skip
            for reason in ("unknown", "count", "contradiction", "zero"):
                mine = [(x, e) for x, e in zip(out, errs) if x["reason"] == reason]
                r[f"outside ({tag}, {reason}): refused"] = (sum(e is not None for _, e in mine) / len(mine), len(mine))
            fails += [f"[{lang}, {tag}] outside accepted: {x['prompt']!r} ({x['reason']})"
                      for x, e in zip(out, errs) if e is None]  # fmt: skip
        gen = generated_refusals(200, lang)
        share, _ = accepted(pipe, gen)
        r["generated, held-out words: refused"] = (1 - share, len(gen))
        results[lang] = r
    for k in results["en"]:
        en, zh = results["en"][k], results["zh"][k]
        table.append(f"| {k} | {100 * en[0]:.1f}% ({en[1]}) | {100 * zh[0]:.1f}% ({zh[1]}) |")
    body = "\n".join(["| set | EN (prompts) | ZH (prompts) |", "|---|---|---|", *table])
    print(body)
    print("\n".join(fails))
    if not args.no_write:
        write_section(
            "prompt-analysis",
            f"""## Prompt analysis: draw, understand, or refuse (`python benchmarks/prompt_analysis.py`)

Model: `{args.model or "models/shapes-default"}`. The planner's decision before drawing (`PlannedPipeline.analyse`,
one forward pass, at the folder's own `refusal_threshold`, {pipe.generation_config.refusal_threshold or REFUSAL_THRESHOLD}); "everyday" prompts also planned once (seed: the prompt's place in its set and language) and checked against what they mean. Sets:
`benchmarks/prompt_analysis.jsonl` (hand-written; set 1 before the first training, then words of some of its
failures were added to the training lexicon, so it is no longer independent; sets 2, 3 and 4 after that, and their
failures shaped the second, third and fourth rounds' data, so they are not independent of them; sets 5 and 6, 80
per language each, written by writers who saw only the world contract and the caption parser, set 5 before the
fourth round trained, set 6 before the seventh, neither read while the data was written: the honest figures, set
5's outside prompts less so, as its share refused decided the sixth round's refusal share; set 7, by a fifth such
writer after the seventh round shipped, was run before the eighth was chosen (on sets 1-7, by a rule fixed before it
trained); set 8, by a sixth such writer before the eighth round was measured, chose nothing, but its failures were
read while the ninth round's data was written; set 9, by a seventh such writer before any ninth-round candidate was
measured, chose nothing for round 9, but its failures were read while the tenth round's data was written and the tenth
was chosen on sets 1-9; set 10, by an eighth such writer before any tenth-round candidate trained, was never read for
data or choice; set 11, by a ninth such writer after the tenth round shipped, likewise: these two measure the shipped
planner on prompts no round has seen or been chosen by), the public
benchmark, `lvg.worlds.shapes.prompt_sets`, and generated
prompts from a seed no training stream uses. Targets: in-world accepted >= 99.5%; everyday >= 90% right and 0
wrong; outside refused >= 95%.

{body}

Failures ({len(fails)}):

"""
            + "\n".join(f"- {f}" for f in fails[:80])
            + ("\n- ..." if len(fails) > 80 else ""),
        )


if __name__ == "__main__":
    main()
