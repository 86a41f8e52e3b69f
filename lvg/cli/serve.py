"""``lvg serve``: the model over HTTP (FastAPI + uvicorn) with a web page."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import Subparsers, threads_arg


def _add_serve(sub: Subparsers) -> None:
    d = sub.add_parser(
        "serve",
        help="serve text -> image and captioning over HTTP (with a web page)",
        description="Serve the model over HTTP with FastAPI + uvicorn: POST /v1/images/generations (OpenAI Images API "
        "compatible, b64_json), POST /v1/captions, GET /healthz, /readyz, /metrics (Prometheus), /openapi.json and a "
        "web page at /. Concurrent requests with equal sampling settings share one batched pipeline call; a full "
        "queue answers 429, a passed deadline 504. With --api-keys-file every route but /healthz, /readyz and the "
        "page needs 'Authorization: Bearer KEY'. SIGTERM drains: requests in flight finish, then it exits 0. "
        "Binds to 127.0.0.1 unless --host says otherwise. Several --model NAME=DIR serve several models side by side "
        "(GET /v1/models lists them; a request picks one with its 'model' field, the first by default). --adapter "
        "NAME=DIR serves an adapter as one more model, on the served model it was trained on; give the same NAME "
        "twice to serve a planner adapter and a painter adapter together.",
    )
    d.add_argument("--model", type=model_spec, action=ModelSpecs, default=None, metavar="[NAME=]DIR",
                   help="a model folder to serve, as NAME=DIR or DIR (then named after the folder); repeat it to serve "
                   "several side by side, the first being the default (default: the shipped model, as "
                   "shapes-default)")  # fmt: skip
    d.add_argument("--adapter", type=adapter_spec, action=ModelSpecs, default=None, metavar="NAME=DIR",
                   help="an adapter served as the model NAME on the served model it was trained on: a planner "
                   "adapter (lvg train planner with finetune.method=lora, adapter or prefix writes OUT/adapter) or a "
                   "painter adapter (lvg train painter or gan-painter with finetune.method=lora: "
                   "OUT/painter_adapter); the same NAME repeated serves them together (at most one per planner, "
                   "painter and GAN painter; the rest is shared); repeatable")  # fmt: skip
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    d.add_argument("--api-keys-file", type=Path, default=None, metavar="FILE",
                   help="require API keys: FILE holds one key per line ('#' comments and blank lines ignored)")  # fmt: skip
    d.add_argument("--max-batch-size", type=int, default=16, help="most images per batched pipeline call (default 16)")
    d.add_argument("--max-wait-ms", type=float, default=20,
                   help="how long a request waits for others to share its batch, in ms (default 20)")  # fmt: skip
    d.add_argument("--queue-size", type=int, default=64, help="most images waiting; beyond it 429 (default 64)")
    d.add_argument("--timeout", type=float, default=60.0, help="per-request deadline in seconds; then 504 (default 60)")
    d.add_argument("--rate-limit", type=int, default=120,
                   help="requests per minute per API key; 0 = off (default 120)")  # fmt: skip
    d.add_argument("--blocklist", type=Path, nargs="+", default=None, metavar="FILE",
                   help="prompt blocklists replacing the shipped English + Chinese ones "
                   "(one term per line, [category] sections)")  # fmt: skip
    d.add_argument("--log-prompts", action="store_true", help="include prompt text in the request log (off by default)")
    d.add_argument("--no-batching", action="store_true", help="run every request on its own pipeline call")
    threads_arg(d, 1, "concurrent requests share batched calls instead")
    d.set_defaults(func=_serve)


def model_spec(text: str) -> tuple[str, Path]:
    """``--model NAME=DIR`` or ``--model DIR`` (named after its folder) as ``(name, folder)``. A ``=`` after a path
    separator belongs to the path (``runs/lr=0.1``)."""
    from lvg.serve.app import check_model_name, model_name_of

    name, eq, folder = text.partition("=")
    if eq and not any(sep and sep in name for sep in (os.sep, os.altsep)):
        if not name:
            raise argparse.ArgumentTypeError(f"{text!r}: the model name before '=' is empty (NAME=DIR)")
        if not folder:
            raise argparse.ArgumentTypeError(f"{text!r}: no model folder after '=' (NAME=DIR)")
        try:
            return check_model_name(name), Path(folder)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    if not text:
        raise argparse.ArgumentTypeError("the model folder is empty")
    return model_name_of(text), Path(text)


def adapter_spec(text: str) -> tuple[str, Path]:
    """``--adapter NAME=DIR`` as ``(name, folder)``: the name is required (an adapter folder is mostly ``adapter``)."""
    name, eq, _ = text.partition("=")
    if not eq or any(sep and sep in name for sep in (os.sep, os.altsep)):
        raise argparse.ArgumentTypeError(f"{text!r}: name the adapter, NAME=DIR")
    return model_spec(text)


class ModelSpecs(argparse.Action):
    """Collects the ``--model`` (or ``--adapter``) ``(name, folder)`` pairs in order, refusing a name given twice,
    by either option; except that ``--adapter`` may name one adapter several times, once per folder (a planner and
    a painter adapter served together)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:  # fmt: skip
        specs = list(getattr(namespace, self.dest) or [])
        name, folder = values  # type: ignore[misc]
        other = getattr(namespace, "adapter" if self.dest == "model" else "model", None) or []  # one name space
        mine = [] if self.dest == "adapter" else specs  # (adapters: one name may gather several folders)
        clash = next((f for n, f in [*mine, *other] if n == name), None)
        if clash is not None:
            raise argparse.ArgumentError(self, f"two models named {name!r} ({clash} and {folder}): name each one, "
                                               f"{self.option_strings[0]} NAME=DIR")  # fmt: skip
        setattr(namespace, self.dest, [*specs, (name, folder)])


def _serve(args: argparse.Namespace) -> int:
    from lvg.pipelines.index import ModelIndex
    from lvg.resources import DEFAULT_MODEL_NAME
    from lvg.serve.app import ServeSettings
    from lvg.serve.server import serve

    specs = args.model or [(DEFAULT_MODEL_NAME, None)]
    # a missing or malformed folder fails now, not after startup
    models = {name: ModelIndex.read(folder).folder for name, folder in specs}
    grouped: dict[str, list[Path]] = {}  # (an adapter folder is checked when it loads, beside its base)
    for name, folder in args.adapter or []:
        grouped.setdefault(name, []).append(folder)
    adapters = {name: folders[0] if len(folders) == 1 else folders for name, folders in grouped.items()}
    settings = ServeSettings(models=models, adapters=adapters, host=args.host, port=args.port,
                             api_keys_file=args.api_keys_file, max_batch_size=args.max_batch_size,
                             max_wait_ms=args.max_wait_ms, queue_size=args.queue_size, request_timeout_s=args.timeout,
                             rate_limit_per_minute=args.rate_limit, blocklist_files=args.blocklist,
                             log_prompts=args.log_prompts, batching=not args.no_batching, threads=args.threads)  # fmt: skip
    serve(settings)
    return 0


def add_serve_command(sub: Subparsers) -> None:
    """``lvg serve``."""
    _add_serve(sub)
