"""What several ``lvg`` commands share: the sampling flags, output checks, pipeline loading and printing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

Subparsers = Any  # argparse's private _SubParsersAction

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def group(sub: Subparsers, name: str, help: str, description: str, dest: str, metavar: str) -> Subparsers:
    """A command with subcommands (``lvg data ...``, ``lvg train ...``, ``lvg eval ...``)."""
    p = sub.add_parser(name, help=help, description=description)
    return p.add_subparsers(dest=dest, metavar=metavar, required=True)


def unsupported_arg(d: argparse.ArgumentParser) -> None:
    """``--allow-unsupported``: draw a prompt the planner refuses (with a warning) instead of exiting with the reason."""
    d.add_argument("--allow-unsupported", action="store_true",
                   help="a prompt the model cannot draw (words outside its world, more objects than fit, a "
                   "contradiction, zero objects) exits with the reason; this flag draws a best effort instead, "
                   "with a warning")  # fmt: skip


def warn_unsupported(prompts: list[str], reasons: list[str | None]) -> None:
    """With ``--allow-unsupported``: one warning line on stderr per distinct prompt the planner refused."""
    import sys

    from lvg.pipelines.planned import UnsupportedPromptError

    for prompt, reason in dict.fromkeys(zip(prompts, reasons)):
        if reason is not None:
            print(f"lvg: warning: {UnsupportedPromptError(prompt, reason)}; drawn anyway (--allow-unsupported)",
                  file=sys.stderr)  # fmt: skip


def sampling_args(d: argparse.ArgumentParser, default: str = "the model's own", batch_size: bool = True) -> None:
    """``--guidance-scale``, ``--temperature``, ``--top-k``, ``--top-p``: one flag per sampling setting of
    :class:`~lvg.sampling.GenerationConfig` (its help text and type declared there), unset by default (``default``
    says what stands in), and ``--batch-size`` unless ``batch_size`` is False."""
    from lvg.ranges import field_help
    from lvg.sampling.config import RANGES, SAMPLING_FIELDS, GenerationConfig

    for name in SAMPLING_FIELDS:
        d.add_argument(f"--{name.replace('_', '-')}", type=int if RANGES[name].integer else float, default=None,
                       help=f"{field_help(GenerationConfig, name)} (default: {default})")  # fmt: skip
    if batch_size:
        d.add_argument("--batch-size", type=int, default=32, help="images generated per forward batch (default 32)")


def generation_config(args: argparse.Namespace, num_images: int = 1, base=None):  # -> GenerationConfig
    """The :class:`~lvg.sampling.GenerationConfig` of the flags given, over ``base`` (a loaded pipeline's own
    ``generation_config``; None: the library defaults). Called once before the model loads, so bad flags fail
    first, and again with the pipeline's defaults."""
    from lvg.sampling.config import FIELDS, SAMPLING_FIELDS, GenerationConfig, GenerationConfigError

    given = {k: getattr(args, k) for k in SAMPLING_FIELDS if getattr(args, k) is not None}
    try:
        return GenerationConfig.from_kwargs(base, num_images=num_images, seed=getattr(args, "seed", None),
                                            rerank=getattr(args, "rerank", 1),
                                            verify=getattr(args, "verify", 0),
                                            allow_unsupported=getattr(args, "allow_unsupported", False),
                                            **given)  # fmt: skip
    except GenerationConfigError as e:  # "seed must be in [0, ...]" -> "--seed must be in [0, ...]": the flag's name
        name = str(e).split(" ", 1)[0]
        raise GenerationConfigError(
            f"--{name.replace('_', '-')}{str(e)[len(name) :]}" if name in FIELDS else str(e)
        ) from None


def model_config(args: argparse.Namespace, pipe, num_images: int = 1):  # -> GenerationConfig
    """:func:`generation_config` over the loaded pipeline's own defaults."""
    return generation_config(args, num_images, getattr(pipe, "generation_config", None))


def check_output(path: Path) -> None:
    """Fail before generating when ``path`` cannot take an image: a folder, an unknown suffix, a file for a parent."""
    if path.is_dir():
        raise ValueError(f"-o {path} is a directory; give a file name such as {path / 'out.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"-o {path}: unknown image type {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"-o {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"-o {path}: cannot write in {parent}")
            break


def load_pipeline(model: Path | None, clip: Path | None = None, adapter: Path | list[Path] | None = None,
                  painter: str = "default"):  # fmt: skip
    """The pipeline its folder declares (default: the default model), with ``--clip DIR`` replacing any bundled CLIP,
    ``--adapter DIR`` (repeatable: planner and painter adapters) applied and ``--painter code|gan`` painting with the
    folder's painter of that kind (a painter adapter chooses the painter it adapts when ``--painter`` is not given)."""
    from lvg.pipelines import load_pipeline as load
    from lvg.worlds import attach_world

    pipe = load(model)
    adapters = [] if not adapter else [adapter] if isinstance(adapter, (str, os.PathLike)) else list(adapter)
    if painter == "default" and adapters and hasattr(pipe, "painter_of_adapters"):
        painter = pipe.painter_of_adapters(adapters) or "default"  # a painter adapter: paint with the painter it adapts
    if painter != "default":
        if not hasattr(pipe, "use_painter"):
            raise ValueError(f"--painter {painter} needs a planned model; {model or 'the default model'} is a "
                             "one-stage model")  # fmt: skip
        pipe = pipe.use_painter(painter)
    if adapter:
        if not hasattr(pipe, "load_adapter"):
            raise ValueError(f"--adapter needs a planned model (a planner to adapt); {model or 'the default model'} "
                             "is a one-stage model")  # fmt: skip
        pipe.load_adapter(*adapters)
    pipe = attach_world(pipe)
    if clip is not None:
        from lvg.models.clip import ShapesClip

        pipe.clip = ShapesClip.from_pretrained(clip).to(pipe.device)
    return pipe


def painter_arg(d: argparse.ArgumentParser) -> None:
    """``--painter default|code|gan``: which of a planned model folder's painters paints."""
    d.add_argument("--painter", choices=["default", "code", "gan"], default="default",
                   help="which painter of the model folder paints: its default painter (painter/), or its code or GAN "
                   "painter (the default one when it is of that kind, else code_painter/ or gan_painter/; "
                   "docs/painters.md)")  # fmt: skip


def adapter_arg(d: argparse.ArgumentParser) -> None:
    """``--adapter DIR``: an adapter applied to the model (:meth:`PlannedPipeline.load_adapter`)."""
    d.add_argument("--adapter", type=Path, action="append", default=None, metavar="DIR",
                   help="an adapter to apply, repeatable: a planner adapter (lvg train planner with finetune.method "
                   "lora, adapter or prefix writes OUT/adapter) or a painter adapter (lvg train painter or "
                   "gan-painter with finetune.method=lora writes OUT/painter_adapter); each must have been trained on "
                   "this model's planner, painter or GAN painter")  # fmt: skip


def print_metrics(metrics: dict[str, Any]) -> None:
    for k, v in metrics.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


THREADS_WHY = ("measured on a shared 2-core CPU under load: n=2 calls took 0.19-0.23 s with 1 thread and 1.5-8.5 s "
               "with 2, since a multi-threaded op waits for its slowest thread")  # fmt: skip


def threads_arg(d: argparse.ArgumentParser, default: int, note: str) -> None:
    """``--threads N``: torch's intra-op threads for this process (``torch.set_num_threads``)."""
    d.add_argument("--threads", type=int, default=default, metavar="N",
                   help=f"torch threads for this process (default {default}: {note}; {THREADS_WHY}). Raise it on "
                   "an idle machine with cores to spare")  # fmt: skip


def set_threads(n: int) -> None:
    """``torch.set_num_threads(n)``, after checking ``n`` (a ValueError naming ``--threads``)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
        raise ValueError(f"--threads must be an integer in [1, 1024], got {n!r}")
    import torch

    torch.set_num_threads(n)
