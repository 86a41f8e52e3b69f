"""Reading what a user hands in: JSON, JSONL, YAML and text files, and text given on the command line or to the API.

Every file lvg reads as text goes through :func:`read_text`: only regular files (a FIFO, a device such as
``/dev/zero`` or ``/dev/urandom``, or a folder is refused by name, before anything is read, so nothing hangs or fills
memory), at most ``max_bytes``, UTF-8 (a leading BOM is accepted) with an error naming the file and line. JSON
nested too deeply, or holding a number too long to convert, is an error naming the file (and the line, for JSONL),
never a ``RecursionError`` traceback. Errors are :class:`InputFileError`, a ``ValueError``; a missing file stays the
caller's ``FileNotFoundError``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 64 << 20  # JSON/YAML/text files (configs, layouts, prompt lists, key lists)
MAX_JSONL_BYTES = 1 << 30  # a dataset's metadata.jsonl
MAX_DEPTH = 64  # nesting of JSON/YAML values; lvg's own files nest at most 4 deep
MAX_ERROR_CHARS = 2000  # longest message an error line carries (the rest is cut, with a note)


class InputFileError(ValueError):
    """A file handed in that cannot be read: not a regular file, too large, not UTF-8, bad JSON/YAML."""


class TextError(ValueError):
    """Text handed in (a prompt, a question) that is not a string of valid Unicode."""


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (saying how much was cut): an error never carries a 1 MB
    label into a log line."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"


def check_regular_file(path: str | os.PathLike) -> None:
    """Raise :class:`InputFileError` when ``path`` exists but is not a regular file (a FIFO, a device, a socket, a
    folder), without opening it; a missing path is left to the caller."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:  # a symlink loop, a permission problem
        raise InputFileError(f"cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise InputFileError(f"{path} is {_kind(mode)}, not a regular file; lvg reads only regular files")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def read_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` (else an :class:`InputFileError`). The file is
    opened without blocking and checked on the open descriptor, so a FIFO or a device never hangs the reader."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # a missing file: the caller's FileNotFoundError
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{path} is {_kind(st.st_mode)}, not a regular file; lvg reads only regular files")
        if st.st_size > max_bytes:
            raise InputFileError(f"{path} is {st.st_size} bytes; at most {max_bytes} are read")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise InputFileError(f"{path} holds more than {max_bytes} bytes; at most {max_bytes} are read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); a bad byte is an error naming ``source``, the line and the
    byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputFileError(f"{source} line {line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                             f"{e.start})") from None  # fmt: skip


def read_text(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_bytes` and :func:`decode_utf8`)."""
    return decode_utf8(read_bytes(path, max_bytes), str(path))


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists/dicts in ``value`` nest more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list | tuple):
            if depth > limit:
                return True
            stack += [(x, depth + 1) for x in (v.values() if isinstance(v, dict) else v)]
    return False


def parse_json(text: str, source: str) -> Any:
    """The JSON value in ``text``; bad JSON, nesting deeper than :data:`MAX_DEPTH` or a number with thousands of
    digits is an :class:`InputFileError` naming ``source`` (a file name, ``"FILE line N"``, or what the text is)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(f"{source} is not valid JSON: {e}") from None
    except RecursionError:
        raise InputFileError(f"{source}: JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError:  # (not a JSONDecodeError) an integer longer than Python's int max-str-digits
        raise InputFileError(f"{source}: a number has more than {sys.get_int_max_str_digits()} digits") from None
    if _too_deep(value):
        raise InputFileError(f"{source}: JSON nested too deeply (at most {MAX_DEPTH} levels)")
    return value


def read_json(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The JSON value in the regular file ``path`` (see :func:`read_text` and :func:`parse_json`)."""
    return parse_json(read_text(path, max_bytes), str(path))


def read_jsonl(path: str | os.PathLike, max_bytes: int = MAX_JSONL_BYTES) -> list[tuple[int, Any]]:
    """``(line number, value)`` of every non-blank line of the JSON Lines file ``path``; errors name the line."""
    text = read_text(path, max_bytes)
    return [(n, parse_json(line, f"{path} line {n}")) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_yaml(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The YAML value in the regular file ``path`` (``yaml.safe_load``: no Python objects); bad YAML, nesting deeper
    than :data:`MAX_DEPTH` or a huge number is an :class:`InputFileError` naming the file."""
    import yaml

    text = read_text(path, max_bytes)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputFileError(f"{path} is not valid YAML: {shorten(str(e), 300)}") from None
    except RecursionError:
        raise InputFileError(f"{path}: YAML nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError:  # an integer longer than Python's int max-str-digits
        raise InputFileError(f"{path}: a number has more than {sys.get_int_max_str_digits()} digits") from None
    if _too_deep(value):
        raise InputFileError(f"{path}: YAML nested too deeply (at most {MAX_DEPTH} levels)")
    return value


def check_text(text: Any, what: str = "prompt", error: type[ValueError] = TextError) -> str:
    """``text`` when it is a string of valid Unicode; else an ``error`` (a ``ValueError``) naming ``what``. A lone
    surrogate (e.g. ``"\\udcff"``, what Python makes of a non-UTF-8 byte on the command line) is refused here, before
    any tokenizer sees it."""
    if not isinstance(text, str):
        raise error(f"a {what} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        ch = text[e.start]
        byte = f" (the byte 0x{ord(ch) - 0xDC00:02x}, not UTF-8)" if 0xDC80 <= ord(ch) <= 0xDCFF else ""
        raise error(f"the {what} holds an invalid character U+{ord(ch):04X} at position {e.start}{byte}; "
                             f"give UTF-8 text") from None  # fmt: skip
    return text


def inside(folder: str | os.PathLike, rel: str, what: str) -> Path:
    """``folder / rel`` when ``rel`` is a relative path that stays inside ``folder`` (no ``..``, not absolute), else
    an :class:`InputFileError` naming ``what``."""
    p = Path(rel)
    if not rel or p.is_absolute() or p.drive or ".." in p.parts:
        raise InputFileError(f"{what} must be a path inside {folder}, got {shorten(repr(rel), 200)}")
    return Path(folder) / p
