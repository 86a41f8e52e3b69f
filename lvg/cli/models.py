"""``lvg export`` and ``lvg assemble``: write model folders (weights stored as fp16/bf16/fp32)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Subparsers, generation_config, load_pipeline, sampling_args


def _dtype_arg(d: argparse.ArgumentParser) -> None:
    d.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16",
                   help="storage precision of the weights (default float16)")  # fmt: skip


def _save_and_reload(pipe, out: Path, dtype: str) -> None:
    """Write ``pipe`` to ``out`` with its weights stored as ``dtype``, then reload the folder strictly (it is complete
    and consistent)."""
    import torch

    from lvg.pipelines import load_pipeline as load

    pipe.save_pretrained(out, dtype={"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": None}[dtype])
    load(out)


def _add_export(sub: Subparsers) -> None:
    d = sub.add_parser(
        "export",
        help="copy a model folder, storing weights in fp16/bf16 (to ship)",
        description="Load a pipeline folder strictly and write it to OUT (its components and model_index.json) "
        "with weights stored as --dtype; other files in OUT (e.g. a model card) are kept.",
    )
    d.add_argument("model", type=Path, help="source pipeline folder (e.g. runs/llm-shapes/pipeline)")
    d.add_argument("out", type=Path, help="destination folder (e.g. models/shapes-default)")
    _dtype_arg(d)
    d.add_argument("--clip", type=Path, default=None, help="bundle this CLIP folder as the clip/ component")
    d.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    _save_and_reload(load_pipeline(args.model, args.clip), args.out, args.dtype)
    print(f"exported {args.model} to {args.out} ({args.dtype} weights)")
    return 0


def _add_assemble(sub: Subparsers) -> None:
    d = sub.add_parser(
        "assemble",
        help="assemble a planned model folder from its trained components",
        description="Load a trained planner, painter, image tokenizer and (optionally) CLIP strictly and write them "
        "to OUT as one PlannedPipeline folder (model_index.json + component folders), weights stored as --dtype; "
        "other files in OUT (e.g. a model card) are kept. The folder is reloaded strictly at the end.",
    )
    d.add_argument("out", type=Path, help="destination folder (e.g. models/shapes-default)")
    d.add_argument("--planner", type=Path, required=True, help="planner folder (lvg train planner: OUT/planner)")
    d.add_argument("--painter", type=Path, required=True, help="painter folder (lvg train painter: OUT/painter)")
    d.add_argument("--painter-class", default="Painter",
                   help="the painter's class, a name in the component registry (default Painter)")  # fmt: skip
    d.add_argument("--image-tokenizer", type=Path, required=True, help="image tokenizer the painter was trained on")
    d.add_argument("--gan-painter", type=Path, default=None,
                   help="a GAN painter folder (lvg train gan-painter: OUT/painter) to bundle as gan_painter/, painting "
                   "with --painter gan")  # fmt: skip
    d.add_argument("--code-painter", type=Path, default=None,
                   help="a code painter folder (lvg train painter: OUT/painter) to bundle as code_painter/ beside a GAN "
                   "--painter, painting with --painter code")  # fmt: skip
    d.add_argument("--clip", type=Path, default=None, help="CLIP folder to bundle (reranking, CLIP score)")
    d.add_argument("--reader", type=Path, default=None,
                   help="reader folder to bundle (lvg train reader: OUT/detector); needs --reading-lm")  # fmt: skip
    d.add_argument("--reading-lm", type=Path, default=None,
                   help="reading LM folder to bundle (lvg train reading-lm: OUT/reading_lm); needs --reader. The same "
                   "folder as --planner (one LM that plans and reads, lvg train unified-lm: OUT/lm) is stored once, "
                   "as planner/, and declared as reading_lm; reader/ then holds the detector alone")  # fmt: skip
    d.add_argument("--editor", type=Path, default=None,
                   help="editor folder to bundle (lvg train planner --config configs/editor-shapes.yaml or "
                   "editor-emoji.yaml: OUT/planner); pipe.edit and lvg edit need one. The same folder as --planner "
                   "(an LM that plans and edits, configs/planner-editor-emoji.yaml) is stored once, as planner/, "
                   "and declared as both")  # fmt: skip
    d.add_argument("--restorer", type=Path, default=None,
                   help="restorer folder to bundle (lvg train restorer: OUT/restorer); pipe.restore and lvg restore run "
                   "it first (without one they read the damaged image and paint it again)")  # fmt: skip
    d.add_argument("--world", default=None,
                   help="the world the components were trained on, written to model_index.json (e.g. emoji): its "
                   "referee checks verify and the closed loop, and its grammar names the words a refusal cannot "
                   "read (default: none, i.e. Shapes World)")  # fmt: skip
    # the folder's own sampling defaults, written to model_index.json (unset: lvg's planned defaults, guidance 1 and
    # temperature 1 among them)
    sampling_args(d, default="lvg's planned default", batch_size=False)
    _dtype_arg(d)
    d.set_defaults(func=_assemble)


def _assemble(args: argparse.Namespace) -> int:
    from lvg.models.clip import ShapesClip
    from lvg.models.gan import GanPainter
    from lvg.models.painter import Painter
    from lvg.models.restorer import Restorer
    from lvg.pipelines.components import component_class
    from lvg.pipelines.planned import DEFAULT_GENERATION, LayoutPlanner, PlannedPipeline
    from lvg.tokenizers.image import ImageTokenizer

    if (args.reader is None) != (args.reading_lm is None):
        raise ValueError("give both --reader and --reading-lm (or neither)")
    gen = generation_config(args, base=DEFAULT_GENERATION)  # bad flags fail before anything loads
    clip = ShapesClip.from_pretrained(args.clip) if args.clip is not None else None
    painter = component_class(args.painter_class, "--painter-class").from_pretrained(args.painter)
    planner = LayoutPlanner.from_pretrained(args.planner)
    reader = reading_lm = None
    if args.reader is not None:  # one LM in both roles where --reading-lm names the planner's folder
        from lvg.models.planner import load_lm_folder
        from lvg.models.reader import Reader
        from lvg.pipelines.reading import ImageReader

        detector = Reader.from_pretrained(args.reader)
        if args.reading_lm.resolve() == args.planner.resolve():
            reading_lm = planner
            reader = ImageReader(detector, planner.lm, planner.text_tokenizer, planner.vocab, lm_shared=True)
        else:
            reader = ImageReader(detector, *load_lm_folder(args.reading_lm, "reading LM"))
    editor = None
    if args.editor is not None:  # one LM in both roles where both flags name its folder
        same = args.editor.resolve() == args.planner.resolve()
        editor = planner if same else LayoutPlanner.from_pretrained(args.editor)
    pipe = PlannedPipeline(planner, painter,
                           ImageTokenizer.from_pretrained(args.image_tokenizer), clip,
                           gen, reader,
                           editor,
                           GanPainter.from_pretrained(args.gan_painter) if args.gan_painter is not None else None,
                           world=args.world,
                           code_painter=Painter.from_pretrained(args.code_painter) if args.code_painter else None,
                           restorer=Restorer.from_pretrained(args.restorer) if args.restorer else None,
                           reading_lm=reading_lm)  # fmt: skip
    _save_and_reload(pipe, args.out, args.dtype)
    print(f"assembled a PlannedPipeline in {args.out} ({args.dtype} weights)")
    return 0


def add_model_commands(sub: Subparsers) -> None:
    """``lvg export``, ``lvg assemble``."""
    _add_export(sub)
    _add_assemble(sub)
