"""What ``verify`` buys and costs: the public benchmark with and without the closed-loop self-check.

    python benchmarks/verify.py [--model models/shapes-default] [--tries 3] [--threads 2]

Generates one image per public benchmark prompt (seed i for prompt i, the model's own sampling settings), judged by
the pixel judge, once plainly and once with ``verify=K`` (each image whose own caption contradicts its prompt is
re-planned, up to K more times), side by side in one process. Reports accuracy per language and the wall time of
each pass. Writes the "verify" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _report import write_section

from lvg import load_pipeline  # with the world's referee, which verify needs
from lvg.eval.shapes import evaluate_generation
from lvg.resources import benchmark_prompts_file
from lvg.worlds.shapes.benchmark import load_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="planned model folder with a reader (default: shipped)")
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    prompts = load_prompts(benchmark_prompts_file())
    rows = []
    for lang in ("en", "zh"):
        res = {}
        for k in (0, args.tries):
            cfg = pipe.generation_config.replace(seed=0, verify=k)
            t0 = time.perf_counter()
            r = evaluate_generation(pipe, prompts, lang, cfg)
            res[k] = (r, time.perf_counter() - t0)
        rows.append((lang, res))
        print(lang, {k: (v[0].overall, round(v[1], 1)) for k, v in res.items()}, flush=True)
    cats = list(rows[0][1][0][0].categories)
    lines = [
        "## Verify: the closed-loop self-check (`python benchmarks/verify.py`)",
        "",
        f"Public benchmark ({len(prompts)} prompts per language), one image per prompt (seed i for prompt i, the"
        f" model's own sampling settings), pixel judge; plain generation vs `verify={args.tries}` (an image whose own"
        " caption, read back by the model's reader and reading LM and parsed, contradicts its prompt is re-planned with"
        f" the next candidate seed, up to {args.tries} more times). Both passes in one process, {args.threads} torch"
        " threads, this machine.",
        "",
        "| language | plain accuracy | verify accuracy | plain wall s | verify wall s | time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for lang, res in rows:
        (a, ta), (b, tb) = res[0], res[args.tries]
        lines.append(f"| {lang} | {a.overall:.1%} | **{b.overall:.1%}** | {ta:.1f} | {tb:.1f} | {tb / ta:.2f}x |")
    lines += ["", "| category | " + " | ".join(f"{lang} plain / verify" for lang, _ in rows) + " |",
              "|---|" + "---|" * len(rows)]  # fmt: skip
    for c in cats:
        cells = [f"{res[0][0].categories[c]:.0%} / {res[args.tries][0].categories[c]:.0%}" for _, res in rows]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    body = "\n".join(lines)
    write_section("verify", body)
    print(body)


if __name__ == "__main__":
    main()
