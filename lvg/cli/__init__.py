"""``lvg`` command line. Each subcommand is a thin wrapper over a library function.

One module per command group: :mod:`~lvg.cli.data` (``data``, ``parse``, ``judge``), :mod:`~lvg.cli.train` (every
``train`` command, from one table), :mod:`~lvg.cli.generate` (``generate``, ``plan``, ``caption``, ``ask``),
:mod:`~lvg.cli.models` (``export``, ``assemble``), :mod:`~lvg.cli.eval` and :mod:`~lvg.cli.serve`; what they share is
:mod:`~lvg.cli.common`. In each, ``_add_<command>(subparsers)`` declares a command's flags next to ``_<command>(args)``,
which runs it. Handlers print what library functions return; they never rewrite it.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from lvg import __version__

from .data import add_data_commands
from .eval import add_eval_commands
from .generate import add_generate_commands
from .models import add_model_commands
from .serve import add_serve_command
from .train import add_train_commands


def build_parser() -> argparse.ArgumentParser:
    """The ``lvg`` argument parser, each command group declared by its module."""
    p = argparse.ArgumentParser(
        prog="lvg",
        description="lvg: LLM visual generation. Text -> LLM -> image tokens -> image, and back, "
        "trained on the built-in Shapes World.",
    )
    p.add_argument("--version", action="version", version=f"lvg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_data_commands, add_train_commands, add_generate_commands, add_model_commands, add_eval_commands,
                add_serve_command):  # fmt: skip
        add(sub)
    return p


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None,
                  line: str | None = None) -> None:  # fmt: skip
    from lvg.files import shorten

    print(f"lvg: warning: {shorten(' '.join(str(message).split()))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``lvg`` command line; errors print ``lvg: error: ...`` and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line  # lvg's own warnings: one line each, like its errors
            return args.func(args)
    except KeyboardInterrupt:
        print("lvg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        from lvg.files import shorten

        print(f"lvg: error: {shorten(str(e))}", file=sys.stderr)  # one line, never megabytes
        return 2
