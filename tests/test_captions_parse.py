"""Captioner <-> parser round trip, the contract's examples, and bad input."""

import random
import string

import pytest

from lvg.worlds.shapes.captions import caption, describe, spec_to_text
from lvg.worlds.shapes.parse import CaptionParseError, parse_caption
from lvg.worlds.shapes.spec import SpecError, normalize_spec, scene_satisfies
from lvg.worlds.shapes.world import sample_scene


def test_round_trip_10000_scenes_both_languages():
    rng = random.Random(12345)
    for _ in range(10000):
        scene = sample_scene(rng)
        cap = caption(scene, rng)
        assert scene_satisfies(scene, cap.spec), cap.en
        assert parse_caption(cap.en) == cap.spec, cap.en
        assert parse_caption(cap.zh) == cap.spec, cap.zh


def test_captions_omit_every_attribute_sometimes():
    rng = random.Random(7)
    specs = [describe(sample_scene(rng), rng) for _ in range(3000)]
    groups = [g for s in specs for g in s["groups"]]
    for key in ("color", "size", "cell"):
        share = sum(key in g for g in groups) / len(groups)
        assert 0.05 < share < 0.95, key
    assert 0.3 < sum("bg" in s for s in specs) / len(specs) < 0.7
    assert any("relation" in s for s in specs)
    assert any(g["count"] > 1 for g in groups)


CONTRACT_EXAMPLES = [
    (
        "a small red circle to the left of a large blue square",
        "一个小的红色圆形在一个大的蓝色正方形的左边",
        {
            "groups": [
                {"shape": "circle", "color": "red", "size": "small"},
                {"shape": "square", "color": "blue", "size": "large"},
            ],
            "relation": "left",
        },
    ),
    (
        "three yellow stars on a black background",
        "三个黄色星形，黑色背景",
        {"groups": [{"shape": "star", "color": "yellow", "count": 3}], "bg": "black"},
    ),
    (
        "a green cross in the top right",
        "一个绿色十字形在右上角",
        {"groups": [{"shape": "cross", "color": "green", "cell": [0, 2]}]},
    ),
    ("an orange square", "一个橙色正方形", {"groups": [{"shape": "square", "color": "orange"}]}),
    (
        "a large orange square",
        "一个大的橙色正方形",
        {"groups": [{"shape": "square", "color": "orange", "size": "large"}]},
    ),
    (
        "a circle, two small stars and a cross on a white background",
        "一个圆形、两个小的星形和一个十字形，白色背景",
        {
            "groups": [{"shape": "circle"}, {"shape": "star", "size": "small", "count": 2}, {"shape": "cross"}],
            "bg": "white",
        },
    ),
    (
        "a red diamond at the bottom and a blue triangle in the center",
        "一个红色菱形在下方和一个蓝色三角形在中间",
        {
            "groups": [
                {"shape": "diamond", "color": "red", "cell": [2, 1]},
                {"shape": "triangle", "color": "blue", "cell": [1, 1]},
            ]
        },
    ),
]


@pytest.mark.parametrize("en,zh,spec", CONTRACT_EXAMPLES)
def test_contract_examples(en, zh, spec):
    spec = normalize_spec(spec)
    assert parse_caption(en) == spec
    assert parse_caption(zh) == spec
    assert spec_to_text(spec, "en") == en
    assert spec_to_text(spec, "zh") == zh


def test_parser_leniency():
    spec = parse_caption("a small red circle to the left of a large blue square")
    assert parse_caption("  A Small  RED circle to the left of a large blue square.") == spec
    assert parse_caption("一个 小的红色圆形在一个大的蓝色正方形的左边。") == spec
    assert parse_caption("2 stars, a circle, and a square")["groups"][0]["count"] == 2


def test_paraphrases_differ_but_keep_the_content_words():
    rng = random.Random(3)
    spec = normalize_spec({"groups": [{"shape": "circle", "color": "red", "cell": [0, 0]}], "bg": "black"})
    texts = {spec_to_text(spec, "en", rng) for _ in range(50)}
    assert len(texts) > 5 and all("red circle" in t and "black" in t for t in texts)


BAD = [
    "",
    "   ",
    "a magenta circle",
    "a red hexagon",
    "five circles",
    "5 circles",
    "a red circle and",
    "three circles and two squares",
    "a red circle to the left of two squares",
    "a circle in the top left of the sky",
    "一个紫红色圆形",
    "五个圆形",
    "一个圆形在天上",
    "a red\x00 circle",
    "a red circle\x1b[31m",
    "一个红色\x07圆形",
    "a red circle, a blue square",
    "red circle",
    "a circle on a green background",
    "a red circle in the top left and a blue square in the top left",
]


@pytest.mark.parametrize("text", BAD)
def test_bad_captions_raise_a_clear_value_error(text):
    with pytest.raises(CaptionParseError) as e:
        parse_caption(text)
    assert isinstance(e.value, ValueError) and len(str(e.value)) > 10


def test_error_names_the_unreadable_span():
    with pytest.raises(CaptionParseError) as e:
        parse_caption("a small magenta circle")
    assert e.value.span == (8, 15) and "'magenta'" in str(e.value)
    with pytest.raises(CaptionParseError) as e:
        parse_caption("a red circle and a blue squircle")
    assert "squircle" in str(e.value)


def test_noise_never_crashes_or_hangs():
    rng = random.Random(0)
    noise = "".join(rng.choice(string.printable) for _ in range(10_000))
    with pytest.raises(CaptionParseError):
        parse_caption(noise)
    with pytest.raises(CaptionParseError):
        parse_caption("".join(chr(rng.randrange(0x20, 0x10000)) for _ in range(10_000)))
    words = (
        "a an two three four five small large red blue orange circle circles star stars to the left of "
        "right above below and , in on at top bottom center white black background 一个 两个 红色 圆形 在 的 左边 和 、 ，".split()
    )
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 14)))
        try:
            normalize_spec(parse_caption(text))
        except CaptionParseError:
            pass  # anything else (IndexError, KeyError, ...) fails the test


def test_non_string_input():
    with pytest.raises(CaptionParseError):
        parse_caption(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"groups": []},
        {"groups": [{"shape": "blob"}]},
        {"groups": [{"shape": "star", "count": 5}]},
        {"groups": [{"shape": "star", "count": 2, "cell": [0, 0]}]},
        {"groups": [{"shape": "star", "cell": [3, 0]}]},
        {"groups": [{"shape": "star"}], "relation": "left"},
        {"groups": [{"shape": "star"}], "bg": "grey"},
        {"groups": [{"shape": "star", "cell": [0, 0]}, {"shape": "star"}], "relation": "right"},
        {"groups": [{"shape": "star"}], "extra": 1},
    ],
)
def test_invalid_specs(spec):
    with pytest.raises(SpecError):
        normalize_spec(spec)
