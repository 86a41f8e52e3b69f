"""Prompt safety filter: configurable blocklists matched robustly to case, width, spacing and punctuation.

A blocklist file holds one term per line; a ``[category]`` line starts a section; blank lines and ``#``
comments are ignored. The list's name is the file's stem (the shipped lists are ``en`` and ``zh``).

Prompt and terms are normalised alike: NFKC (full-width letters become ASCII), case-folded, then split into
"words" at whitespace, punctuation, symbols and control characters, each CJK character being a word of its
own. Matching runs on the words joined without separators, so ``k i l l``, ``K.I.L.L`` and ``ｋｉｌｌ`` all
read ``kill``. A term written in an alphabetic script must also start and end on word boundaries, so
``skill`` or ``therapist`` never match ``kill`` or ``rapist``; a CJK term matches anywhere.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lvg.files import read_text

BLOCKLIST_DIR = Path(__file__).resolve().parent / "blocklists"
DEFAULT_BLOCKLISTS = (BLOCKLIST_DIR / "en.txt", BLOCKLIST_DIR / "zh.txt")
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
               (0x20000, 0x3FFFF))  # fmt: skip


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _CJK_RANGES)


def _is_separator(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "ZPSC"  # separators, punctuation, symbols, control/format


def normalize(text: str) -> tuple[str, frozenset[int], frozenset[int]]:
    """``text`` -> (compact string, word start offsets, word end offsets) in the compact string."""
    compact: list[str] = []
    starts: set[int] = set()
    ends: set[int] = set()
    in_word = False
    for ch in unicodedata.normalize("NFKC", text).casefold():
        if _is_separator(ch):
            if in_word:
                ends.add(len(compact))
            in_word = False
            continue
        cjk = _is_cjk(ch)
        if cjk and in_word:
            ends.add(len(compact))
        if cjk or not in_word:
            starts.add(len(compact))
        compact.append(ch)
        in_word = not cjk
        if cjk:
            ends.add(len(compact))
    if in_word:
        ends.add(len(compact))
    return "".join(compact), frozenset(starts), frozenset(ends)


@dataclass(frozen=True)
class Term:
    """One blocked term, normalised."""

    text: str  # compact normalised form
    category: str
    source: str  # the list's name
    bounded: bool  # must start and end on word boundaries (alphabetic scripts)


@dataclass(frozen=True)
class Blocked:
    """Why a prompt was refused (never the prompt itself)."""

    source: str
    category: str

    @property
    def reason(self) -> str:
        return f"the prompt was refused by the content filter ({self.source} list, category: {self.category})"


def parse_blocklist(text: str, source: str) -> list[Term]:
    """Terms of one blocklist file's text."""
    terms: list[Term] = []
    category = "general"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip() or "general"
            continue
        compact, _, _ = normalize(line)
        if compact:
            terms.append(Term(compact, category, source, bounded=not any(_is_cjk(c) for c in compact)))
    return terms


class PromptFilter:
    """Refuses prompts that contain a blocklisted term."""

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms = list(terms)

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike] | None = None) -> PromptFilter:
        """Load blocklist files (``None``: the shipped English and Chinese lists)."""
        terms: list[Term] = []
        for p in DEFAULT_BLOCKLISTS if paths is None else paths:
            p = Path(p)
            terms += parse_blocklist(read_text(p), p.stem)  # a regular UTF-8 file (errors name it)
        return cls(terms)

    def check(self, prompt: str) -> Blocked | None:
        """The first blocklisted term found in ``prompt``, or None when it is allowed."""
        compact, starts, ends = normalize(prompt)
        for term in self.terms:
            i = compact.find(term.text)
            while i >= 0:
                if not term.bounded or (i in starts and i + len(term.text) in ends):
                    return Blocked(term.source, term.category)
                i = compact.find(term.text, i + 1)
        return None
