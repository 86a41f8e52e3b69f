"""Progress bars for the long evaluation loops: work split into chunks, one bar per loop, on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def progress_bar(total: int, desc: str, enabled: bool = False, unit: str = "item") -> Any:
    """A tqdm bar on stderr (a no-op one unless ``enabled``). On a terminal it redraws ten times a second; in a log
    file it writes a line every 30 s, so a redirected run still shows it is alive."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=tty,
                mininterval=0.1 if tty else 30.0, leave=True)  # fmt: skip


def in_chunks(fn: Callable[[int, int], Sequence[T]], total: int, size: int, desc: str, progress: bool = False,
              unit: str = "item") -> list[T]:  # fmt: skip
    """``fn(start, stop)`` over ``[0, total)`` in chunks of ``size``, concatenated, with a progress bar (``desc``)
    when ``progress``; ``fn`` must return one result per index of its chunk."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    out: list[T] = []
    with progress_bar(total, desc, progress, unit) as bar:
        for start in range(0, total, size):
            stop = min(start + size, total)
            part = list(fn(start, stop))
            if len(part) != stop - start:
                raise RuntimeError(f"{desc}: {len(part)} results for {stop - start} inputs")
            out += part
            bar.update(stop - start)
    return out
