"""Typed eval results: attributes, the old mapping access (kept for callers of the dicts they replace), and
``to_dict`` / ``results.json`` exactly as the dicts were."""

from __future__ import annotations

import json

import pytest

from lvg.eval.results import CaptionResult, CycleResult, GenerationResult, PlanResult, VQAResult
from lvg.eval.shapes import markdown_report, write_results


def _gen() -> GenerationResult:
    rows = [{"id": 0, "category": "counting", "prompt": "two stars", "passed": True, "reason": ""},
            {"id": 1, "category": "colors", "prompt": "a red circle", "passed": False, "reason": "no red circle",
             "image": object()}]  # fmt: skip
    return GenerationResult("en", 0.5, {"counting": 1.0, "colors": 0.0}, 2, rows)


def test_attributes_and_mapping_access_agree():
    g = _gen()
    assert g.overall == g["overall"] == 0.5 and g.categories is g["categories"] and g.rows is g["rows"]
    assert list(g) == ["lang", "overall", "categories", "num_prompts", "rows"] and "rows" in g and len(g) == 5
    assert {k: v for k, v in g.items() if k != "rows"} == g.without_rows()
    with pytest.raises(KeyError):
        g["accuracy"]
    p = PlanResult(1.0, {"counting": 1.0}, 0.0, [])
    assert p["not_a_scene"] == 0.0 and dict(p) == p.to_dict()
    v = VQAResult("zh", 2, {"count": 0.5}, 0.5, [])
    assert v.to_dict() == {"lang": "zh", "num_per_type": 2, "types": {"count": 0.5}, "overall": 0.5, "failures": []}
    c = CycleResult("en", 0.5, 1.0, 1.0, 2, [{"category": "a", "consistent": True}, {"category": "b", "consistent": 0}])
    assert c.categories() == {"a": 1.0, "b": 0.0}


def test_result_files_hold_the_same_json(tmp_path):
    g, cap = _gen(), CaptionResult("en", 10, 0.9, 1.0, [{"index": 3, "caption": "x", "truth": "y"}])
    write_results(tmp_path, [g], [cap], {"model": "m"})
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data == {
        "meta": {"model": "m"},
        "generation": [{"lang": "en", "overall": 0.5, "categories": {"counting": 1.0, "colors": 0.0}, "num_prompts": 2,
                        "failures": [{"id": 1, "category": "colors", "prompt": "a red circle", "passed": False,
                                      "reason": "no red circle"}]}],
        "captioning": [{"lang": "en", "num": 10, "exact_match": 0.9, "parse_rate": 1.0,
                        "failures": [{"index": 3, "caption": "x", "truth": "y"}]}],
    }  # fmt: skip
    assert "image" in g.rows[1]  # the caller's rows keep their images
    assert "| **overall** | **50.0%** |" in markdown_report([g], [cap]) and "exact match **90.0%**" in markdown_report(
        [g], [cap]
    )
