"""Prompt analysis on Emoji World: does the emoji planner draw what it can and refuse what it cannot draw?

    python benchmarks/emoji_prompt_analysis.py [--model models/emoji-default] [--planner DIR] [--threads 2]
                                                [--no-write]

The planner's own decision (:meth:`lvg.PlannedPipeline.analyse`: one forward pass, no sampling), per language:

- **in-world accepted**: the 450 prompts of the public benchmark (``benchmarks/emoji_prompts.jsonl``); share
  accepted (target >= 99.5%);
- **generated refusals, held out**: 400 prompts of the world's refusal stream over the outside emoji names that never
  train (``lvg.worlds.emoji.analysis``, a seed no training run uses); share refused, per reason;
- **hand-written** (``benchmarks/emoji_prompt_analysis.jsonl``, written before the planner was trained and never used
  to change its data): 20-21 prompts per language the model cannot draw (outside names, counts, contradictions, zero)
  and 15 in-world prompts it should draw; share refused / accepted, and refused for the written reason;
- **unseen emoji of the world's own categories** (the 29 the models never saw): "a NAME" / "一MEASURE NAME"; the
  share refused is reported (no target: the world knows these names, the model does not).

``--planner DIR`` swaps that planner into the model (to measure one before it is shipped). Writes the
"emoji-prompt-analysis" section of BENCHMARKS.md (unless ``--no-write``) and prints every failure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _report import write_section

from lvg import load_pipeline
from lvg.worlds import get_world

ROWS = Path(__file__).with_name("emoji_prompt_analysis.jsonl")
HELD_OUT_SEED = 7_000_003  # no training stream draws from it


def decide(pipe, prompts: list[str]) -> list[str | None]:
    """Each prompt's refusal reason (None: drawn); a prompt longer than the planner takes counts as refused."""
    return [None if e is None else e.reason for e in pipe.analyse(prompts)] if prompts else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/emoji-default")
    ap.add_argument("--planner", default=None, help="a planner folder to measure in place of the model's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    if args.planner:
        from lvg.pipelines.planned import LayoutPlanner

        pipe.planner = LayoutPlanner.from_pretrained(args.planner)
    world = get_world("emoji")
    from lvg.worlds.emoji.plugin import load_emoji_world

    table = load_emoji_world().table
    rows = [json.loads(line) for line in ROWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = ["| set | EN | ZH |", "|---|---|---|"]
    fails: list[str] = []
    result: dict[str, dict[str, float]] = {}

    def row(name: str, values: dict[str, str]) -> None:
        lines.append(f"| {name} | {values.get('en', '')} | {values.get('zh', '')} |")

    bench = world.benchmark_prompts()
    acc = {}
    for lang in ("en", "zh"):
        said = decide(pipe, [p[lang] for p in bench])
        acc[lang] = f"{sum(r is None for r in said) / len(said):.1%} of {len(said)}"
        fails += [f"benchmark {lang}: refused ({r}): {p[lang]}" for p, r in zip(bench, said) if r is not None]
    row("in-world accepted (public benchmark; target >= 99.5%)", acc)
    gen = [world.refusal(i, HELD_OUT_SEED, True) for i in range(800)]
    by_reason: dict[str, dict[str, list[bool]]] = {}
    for lang in ("en", "zh"):
        mine = [(t, r) for t, r in gen if (any("\u4e00" <= ch <= "\u9fff" for ch in t)) == (lang == "zh")]
        said = decide(pipe, [t for t, _ in mine])
        for (t, r), s in zip(mine, said):
            by_reason.setdefault(r, {}).setdefault(lang, []).append(s is not None)
            if s is None:
                fails.append(f"generated {lang} ({r}): drawn: {t}")
    for r, v in sorted(by_reason.items()):
        row(
            f"generated refusals, held-out names: {r} refused",
            {k: f"{sum(x) / len(x):.1%} of {len(x)}" for k, x in v.items()},
        )
    for kind in ("outside", "inside"):
        got, why = {}, {}
        for lang in ("en", "zh"):
            mine = [x for x in rows if x["set"] == kind and x["lang"] == lang]
            said = decide(pipe, [x["prompt"] for x in mine])
            if kind == "outside":
                ok = [s is not None for s in said]
                why[lang] = f"{sum(s == x['reason'] for s, x in zip(said, mine)) / len(mine):.1%}"
                fails += [f"hand-written outside {lang}: drawn: {x['prompt']}" for x, s in zip(mine, said) if s is None]
            else:
                ok = [s is None for s in said]
                fails += [f"hand-written inside {lang}: refused ({s}): {x['prompt']}" for x, s in zip(mine, said) if s]
            got[lang] = f"{sum(ok) / len(ok):.1%} of {len(ok)}"
            result.setdefault(kind, {})[lang] = sum(ok) / len(ok)
        if kind == "outside":
            row("hand-written outside the model: refused (target >= 95%)", got)
            row("... refused for the written reason", why)
        else:
            row("hand-written in-world prompts: accepted", got)
    unseen = [c for c in table if c.split == "unseen"]
    row("unseen emoji of the world's categories: refused (reported)", {
        lang: f"{sum(r is not None for r in decide(pipe, texts)) / len(texts):.1%} of {len(texts)}"
        for lang, texts in (("en", [f"{c.article or 'a'} {c.en}".strip() for c in unseen]),
                            ("zh", [f"一{c.measure}{c.zh}" for c in unseen]))})  # fmt: skip
    body = "\n".join([
        f"Emoji World prompt analysis: the planner of `{args.planner or args.model}` decides from one forward pass "
        "whether it can draw a prompt (`python benchmarks/emoji_prompt_analysis.py"
        + (f" --planner {args.planner}" if args.planner else "") + "`).", "", *lines, "",
    ])  # fmt: skip
    print(body)
    print("\n".join(fails[:80]))
    if not args.no_write:
        write_section("emoji-prompt-analysis", body)


if __name__ == "__main__":
    main()
