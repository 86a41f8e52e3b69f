"""Reading quality of a planned model with a reader: captions, the reader's layouts, questions, the closed loop.

    python benchmarks/reading_quality.py [--model models/shapes-default] [--captions 1000] [--questions 200]

The same measurements as ``lvg eval shapes`` makes for a model that reads (held-out renders from their own seed):
caption exact match per language, the fraction of renders the reader reads exactly, question accuracy per type
and language, and the closed loop over every public benchmark prompt. Writes the "reading-quality" section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _report import write_section

from lvg.eval.reading import reading_markdown, reading_section
from lvg.eval.shapes import evaluate_captioning
from lvg.pipelines import load_pipeline
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import load_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="planned model folder with a reader (default: shipped)")
    ap.add_argument("--captions", type=int, default=1000, help="held-out renders captioned per language")
    ap.add_argument("--questions", type=int, default=200, help="held-out questions per type and language")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pipe = load_pipeline(args.model)
    prompts = load_prompts(benchmark_prompts_file())
    caps = [evaluate_captioning(pipe, args.captions, lang) for lang in ("en", "zh")]
    section = reading_section(pipe, prompts, ["en", "zh"], pipe.generation_config.replace(seed=0), args.questions,
                              args.captions)  # fmt: skip
    lines = [
        "## Reading quality (`python benchmarks/reading_quality.py`)",
        "",
        f"Model `{args.model or 'models/shapes-default'}`: the reader (image -> layout) and the reading LM (layout ->"
        f" caption / answer). Captions: greedy, {args.captions} held-out renders per language (stream seed 1,000,003),"
        " exact structured match (the caption parses and states every object's shape, colour, size and cell and the"
        f" background, all true). Questions: {args.questions} per type and language about scenes drawn from their own"
        " seed, as they come (a relation question is true about a third of the time; training draws yes and no"
        " equally); the off-topic questions asked here never occur in training. An answer is right when the text after"
        " the LM's working (count: the objects it counts; relation: both cells and how they stand) is exactly the"
        " true answer. Closed loop: every public benchmark prompt"
        " -> image (the model's own settings, seed i) -> its own caption -> parsed -> does it satisfy the prompt.",
        "",
        "| captions | EN | ZH |",
        "|---|---|---|",
        "| exact match | " + " | ".join(f"**{c.exact_match:.1%}**" for c in caps) + " |",
        "| parseable | " + " | ".join(f"{c.parse_rate:.1%}" for c in caps) + " |",
        "",
        reading_markdown(section).strip(),
        "",
        f"(Everything above took {time.perf_counter() - t0:.0f} s with {args.threads} torch threads on this machine.)",
    ]
    body = "\n".join(lines)
    write_section("reading-quality", body)
    print(body)


if __name__ == "__main__":
    main()
