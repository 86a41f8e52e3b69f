"""Reading (reader -> layout -> reading LM) vs the one-stage captioner: caption exact match against CPU minutes.

    python benchmarks/reading_ablation.py [--cpu-minutes 2 5 10 20 30] [--num 300] [--lang en]

Reads checkpoint snapshots (``train.keep_snapshots=true``: ``runs/RUN/snapshots/step-N`` with the process's CPU
seconds in ``cpu.txt``) and, for each budget, the last snapshot within it:

- reading: the reader (``runs/reader-shapes``) and the reading LM (``runs/reading-lm-shapes``), each a one-thread
  job, so a budget of C CPU minutes gives each C/2;
- one-stage: the unified LM (``configs/llm-ablation.yaml`` with ``data.t2i_prob=0.0``, i.e. captioning rows only,
  ``train.out_dir=runs/llm-caption-ablation``; preset ``mini``, 8x8 tokenizer) reads the image codes and writes
  the caption, with all C minutes on one core.

Captions held-out renders greedily and scores exact structured match (every object and attribute, parsed).
Writes the "reading-ablation" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

import torch
from _report import write_section
from ablation import RUNS, one_stage_pipe, snapshot_at
from safetensors.torch import load_file

from lvg.eval.shapes import evaluate_captioning


def reading_pipe(reader_snap, lm_snap):
    """An object with ``caption(images, lang)``: the snapshot reader and reading LM."""
    from lvg.models.planner import load_lm_folder
    from lvg.models.reader import Reader
    from lvg.pipelines.reading import ImageReader

    detector = Reader.from_pretrained(RUNS / "reader-shapes" / "detector")
    detector.load_state_dict(load_file(str(reader_snap / "reader.safetensors")))
    lm, text_tok, vocab = load_lm_folder(RUNS / "reading-lm-shapes" / "reading_lm", "reading LM")
    lm.load_state_dict(load_file(str(lm_snap / "lm.safetensors")))
    reader = ImageReader(detector.eval(), lm.eval(), text_tok, vocab)

    class Reading:
        def caption(self, images, lang="en", num_beams=1):  # an image read as empty gets "" (scored wrong)
            return [c or "" for c in reader.caption_each(reader.read(images), lang, num_beams)]

    return Reading(), sum(p.numel() for p in detector.parameters()) + sum(p.numel() for p in lm.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-minutes", type=float, nargs="+", default=[2, 5, 10, 20, 30])
    ap.add_argument("--num", type=int, default=300, help="held-out renders captioned per budget")
    ap.add_argument("--lang", default="en", choices=["en", "zh"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, n_read, n_one = [], 0, 0
    for c in args.cpu_minutes:
        # both reading runs finished: a budget past the end of one uses all of it (the table shows its minutes)
        rd, lm = snapshot_at("reader-shapes", c / 2), snapshot_at("reading-lm-shapes", c / 2)
        reading = None
        if rd and lm:
            pipe, n_read = reading_pipe(rd[0], lm[0])
            reading = evaluate_captioning(pipe, args.num, args.lang).exact_match
        os_snap = snapshot_at("llm-caption-ablation", c, stopped=True)
        one = None
        if os_snap:
            pipe, n_one = one_stage_pipe(os_snap[0])
            one = evaluate_captioning(pipe, args.num, args.lang).exact_match
        rows.append((c, rd, lm, reading, os_snap, one))
        print(c, reading, one, flush=True)
    pct = lambda v: "—" if v is None else f"**{v:.1%}**"  # noqa: E731
    step = lambda s: "-" if s is None else f"{s[1]} ({s[2] / 60:.1f} min)"  # noqa: E731
    lines = [
        "## Reading vs one-stage captioning at equal CPU time (`python benchmarks/reading_ablation.py`)",
        "",
        f"Exact structured match of greedy captions ({args.lang.upper()}) of {args.num} held-out renders (every object"
        f" and attribute, parsed). Reading: the reader and the reading LM ({n_read / 1e6:.2f}M parameters together)"
        " trained as two one-thread jobs, so a budget of C CPU minutes gives each C/2 (each job's measured CPU"
        f" seconds). One-stage: the unified LM ({n_one / 1e6:.2f}M parameters, preset `mini`, 8x8 tokenizer) trained"
        " on captioning rows only for C CPU minutes on one core (its process's CPU seconds), captioning from the"
        " image codes. The checkpoint used is"
        " the last written within the budget; — : none within it, or a budget past the end of the run.",
        "",
        "| CPU minutes | reader step | reading-LM step | reading exact match | one-stage step | one-stage exact match |",
        "|---|---|---|---|---|---|",
    ]
    for c, rd, lm, reading, os_snap, one in rows:
        lines.append(f"| {c:g} | {step(rd)} | {step(lm)} | {pct(reading)} | {step(os_snap)} | {pct(one)} |")
    body = "\n".join(lines)
    write_section("reading-ablation", body)
    print(body)


if __name__ == "__main__":
    main()
