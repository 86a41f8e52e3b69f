"""Typed results of lvg's evaluations (dataclasses), one per kind of measurement.

Each result reads by attribute (``gen.overall``, ``gen.categories["counting"]``) and, for code written against the
plain dicts they replace, as a read-only mapping (``gen["overall"]``, ``dict(gen)``, ``gen.items()``).
:meth:`EvalResult.to_dict` is exactly the dict the evaluation used to return, so the JSON files written from it
are unchanged. Per-item rows stay plain dicts (``{"id", "category", "prompt", "passed", ...}``), as written to
the result files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CaptionResult", "CycleResult", "EvalResult", "GenerationResult", "PlanResult", "ReaderResult",
           "VQAResult"]  # fmt: skip


class EvalResult(Mapping[str, Any]):
    """Base of the result dataclasses: read-only mapping access to the fields, and :meth:`to_dict`."""

    def __getitem__(self, key: str) -> Any:
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, in declaration order (nested results as dicts; rows as they are)."""
        return {k: v.to_dict() if isinstance(v, EvalResult) else v for k, v in zip(self._names(), self.values())}


@dataclass(eq=True)
class GenerationResult(EvalResult):
    """Judged text -> image accuracy on a prompt set (:func:`lvg.eval.shapes.evaluate_generation`): ``rows`` are
    ``{"id", "category", "prompt", "passed", "reason"}`` (+ ``"image"`` with ``keep_images``)."""

    lang: str
    overall: float
    categories: dict[str, float]
    num_prompts: int
    rows: list[dict] = field(default_factory=list, repr=False)

    def without_rows(self) -> dict[str, Any]:
        """:meth:`to_dict` less the per-prompt rows (the summary a report keeps)."""
        return {k: v for k, v in self.to_dict().items() if k != "rows"}


@dataclass(eq=True)
class PlanResult(EvalResult):
    """Symbolic accuracy of planned layouts (:func:`lvg.eval.planning.evaluate_plans`); ``not_a_scene``: the share
    of layouts that map to no scene; ``rows``: ``{"id", "category", "prompt", "passed", "layout"}``."""

    overall: float
    categories: dict[str, float]
    not_a_scene: float
    rows: list[dict] = field(default_factory=list, repr=False)


@dataclass(eq=True)
class CaptionResult(EvalResult):
    """Exact structured match of captions with held-out scenes (:func:`lvg.eval.shapes.score_captions`)."""

    lang: str
    num: int
    exact_match: float
    parse_rate: float
    failures: list[dict] = field(default_factory=list, repr=False)


@dataclass(eq=True)
class ReaderResult(EvalResult):
    """Share of held-out renders the reader reads exactly (:func:`lvg.eval.reading.evaluate_reader`)."""

    num: int
    exact: float
    failures: list[dict] = field(default_factory=list, repr=False)


@dataclass(eq=True)
class VQAResult(EvalResult):
    """Question accuracy per type (:func:`lvg.eval.reading.evaluate_vqa`) and their mean."""

    lang: str
    num_per_type: int
    types: dict[str, float]
    overall: float
    failures: list[dict] = field(default_factory=list, repr=False)


@dataclass(eq=True)
class CycleResult(EvalResult):
    """The closed loop text -> image -> own caption -> spec (:func:`lvg.eval.metrics.cycle_consistency`); ``rows``:
    ``{"id", "category", "prompt", "caption", "consistent", "reason"}``."""

    lang: str
    rate: float
    parse_rate: float
    complete_rate: float
    num_prompts: int
    rows: list[dict] = field(default_factory=list, repr=False)

    def categories(self) -> dict[str, float]:
        """Consistent share per category, in the order categories first appear."""
        per: dict[str, list[bool]] = {}
        for row in self.rows:
            per.setdefault(row["category"], []).append(row["consistent"])
        return {c: sum(v) / len(v) for c, v in per.items()}


def reading_lines(section: Mapping[str, Any], question_types: tuple[str, ...]) -> list[str]:
    """Markdown of a reading section's ``vqa_<lang>`` results (a table of question types by language) and its
    ``cycle_<lang>`` closed-loop rates (one line each), shared by every world's reading report."""
    lines: list[str] = []
    vqa = [(k[4:], v) for k, v in section.items() if k.startswith("vqa_")]
    if vqa:
        lines += ["", "| question type | " + " | ".join(lang for lang, _ in vqa) + " |", "|---|" + "---|" * len(vqa)]
        for t in question_types:
            lines.append(f"| {t} | " + " | ".join(f"{v['types'][t]:.1%}" for _, v in vqa) + " |")
        lines.append("| **overall** | " + " | ".join(f"**{v['overall']:.1%}**" for _, v in vqa) + " |")
    for k, v in section.items():
        if k.startswith("cycle_"):
            lines.append(f"\nClosed loop ({k[6:]}, {v['num']} prompts: text -> image -> own caption, checked against "
                         f"the prompt): **{v['rate']:.1%}** consistent.")  # fmt: skip
    return lines


def score_answers(items: list[tuple[Any, Any]], answers: list[str], lang: str, num_per_type: int,
                  question_types: tuple[str, ...]) -> VQAResult:  # fmt: skip
    """Answers to ``(scene, question)`` items (questions with ``kind``, ``text``, ``answer``) scored per type: exact
    match after folding white space and case; the first 30 wrong answers kept as failures."""
    from collections import Counter

    right: Counter = Counter()
    fails = []
    for (_, q), a in zip(items, answers, strict=True):
        ok = " ".join(a.split()).lower() == q.answer.lower()
        right[q.kind] += ok
        if not ok and len(fails) < 30:
            fails.append({"type": q.kind, "question": q.text, "answer": a, "truth": q.answer})
    types = {k: right[k] / num_per_type for k in question_types}
    return VQAResult(lang, num_per_type, types, sum(types.values()) / len(types), fails)
