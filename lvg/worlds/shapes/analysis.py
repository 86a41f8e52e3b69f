"""Prompt analysis data: everyday wordings the planner must understand, and prompts it must refuse.

The planner's first job is to decide whether it can draw a prompt at all. Two kinds of training rows teach it,
both drawn from a normal plan sample (:mod:`lvg.worlds.shapes.plans`):

- **everyday wording** (:func:`everyday_variant`): the same meaning in the words people use ("ball", "box",
  "tiny", "圆", "方块", "红圆", "画一个..."), from :data:`EVERYDAY_EN` / :data:`EVERYDAY_ZH`; the target is the
  sample's own layout, so no object may be dropped;
- **refusals** (:func:`refusal_variant`): the prompt names something outside the world (``unknown``), asks for
  more objects than fit (``count``), contradicts itself (``contradiction``) or asks for zero or a negative number
  of objects (``zero``); the target is ``<layout> <refuse:REASON> </layout>``.

The out-of-world words here train; :data:`HELD_OUT_UNKNOWN` only evaluates (``benchmarks/prompt_analysis.py``),
as do the hand-written prompt sets in ``benchmarks/prompt_analysis.jsonl``. Item ``i`` stays a pure function of
``(seed, i)``.
"""

from __future__ import annotations

import random
import re

from lvg.data.text import REFUSAL_REASONS

from .phrasings import refusal_phrase
from .sentences import refusal_sentence
from .world import COLOR_ZH, COLORS, SHAPE_PLURAL, SHAPE_ZH, SHAPES

# ----------------------------------------------------------------------------- everyday words (train)

# English: word -> everyday replacements (each keeps the meaning exactly).
EVERYDAY_EN: dict[str, list[str]] = {
    "circle": ["ball", "dot", "disc", "disk", "round shape"],
    "circles": ["balls", "dots", "discs", "disks", "round shapes"],
    "square": ["box", "block", "tile", "square shape"],
    "squares": ["boxes", "blocks", "tiles", "square shapes"],
    "triangle": ["triangle shape", "triangular shape"],
    "triangles": ["triangle shapes", "triangular shapes"],
    "diamond": ["rhombus", "lozenge", "diamond shape"],
    "diamonds": ["rhombuses", "lozenges", "diamond shapes"],
    "star": ["five-pointed star", "star shape"],
    "stars": ["five-pointed stars", "star shapes"],
    "cross": ["plus sign", "plus", "cross shape"],
    "crosses": ["plus signs", "pluses", "cross shapes"],
    "small": ["tiny", "little", "mini", "smaller", "wee"],
    "large": ["big", "huge", "giant", "bigger", "enormous"],
    "red": ["scarlet", "crimson"],
    "purple": ["violet"],
    "cyan": ["turquoise", "aqua"],
    "pink": ["rosy"],
    "center": ["centre", "middle"],
    "two": ["a pair of", "a couple of"],
    "below": ["underneath", "beneath", "under"],
    "above": ["over", "on top of"],
}
# Chinese: substring -> replacements, longest first when applied.
EVERYDAY_ZH: dict[str, list[str]] = {
    "圆形": ["圆", "圆圈", "圆球", "球", "圆点"],
    "正方形": ["方块", "方形", "正方块", "方格"],
    "三角形": ["三角"],
    "菱形": ["菱形块", "钻石形"],
    "星形": ["星星", "五角星", "星"],
    "十字形": ["十字", "加号"],
    "小的": ["小", "小小的", "很小的"],
    "大的": ["大", "大大的", "很大的"],
    "红色": ["红", "红色的", "大红色", "深红色"],
    "橙色": ["橙", "橘色", "橙色的"],
    "黄色": ["黄", "黄色的"],
    "绿色": ["绿", "绿色的"],
    "青色": ["青", "青色的"],
    "蓝色": ["蓝", "蓝色的"],
    "紫色": ["紫", "紫色的"],
    "粉色": ["粉红色", "粉红", "粉色的"],
    "左边": ["左面", "左侧"],
    "右边": ["右面", "右侧"],
    "上方": ["上面", "上边"],
    "下方": ["下面", "下边", "底下"],
    "中间": ["中央", "正中间", "中心"],
    "两个": ["一对", "两只", "俩"],
}
# What people put around a request (kept out of the meaning).
ASK_EN = ["draw ", "please draw ", "can you draw ", "show me ", "i want ", "make ", "paint ", "generate ",
          "draw me ", "give me "]  # fmt: skip
ASK_ZH = ["画", "请画", "帮我画", "我想要", "画出", "生成", "请生成", "给我画"]

# ----------------------------------------------------------------------------- refusals (train)

UNKNOWN_EN = ["dragon", "cat", "dog", "car", "tree", "house", "flower", "person", "bird", "horse", "fish", "boat",
              "apple", "banana", "chair", "table", "cup", "book", "phone", "robot", "hexagon", "pentagon", "oval",
              "heart", "moon", "arrow", "cloud", "sun", "mountain", "river", "castle", "guitar", "rocket", "bicycle",
              "spider", "elephant", "crown", "key", "shoe", "hat", "ring", "cube", "sphere", "cylinder", "cone",
              "line", "rectangle", "octagon", "crescent", "spiral", "letter a", "number seven", "smiley face",
              "tiger", "pizza", "train", "airplane", "umbrella", "clock", "lamp", "monkey", "lion", "bear", "rabbit",
              "mouse", "cow", "pig", "sheep", "duck", "frog", "snake", "turtle", "shark", "whale", "bee", "butterfly",
              "ant", "wolf", "fox", "deer", "zebra", "camel", "chicken", "goat", "parrot", "eagle", "octopus",
              "crab", "dinosaur", "monster", "ghost", "wizard", "princess", "king", "queen", "knight", "pirate",
              "child", "baby", "woman", "man", "teacher", "doctor", "soldier", "farmer", "truck", "bus", "tractor",
              "ship", "submarine", "helicopter", "motorcycle", "scooter", "skateboard", "ladder", "bridge",
              "tower", "church", "temple", "school", "hospital", "garden", "forest", "desert", "island", "volcano",
              "ocean", "lake", "waterfall", "rainbow", "snowflake", "planet", "galaxy", "comet", "candle", "bottle",
              "glass", "plate", "bowl", "spoon", "fork", "knife", "sofa", "bed", "door", "window", "mirror",
              "computer", "keyboard", "television", "camera", "radio", "piano", "drum", "flute", "balloon",
              "gift", "flag", "map", "coin", "diamond ring", "necklace", "glove", "sock", "shirt", "dress", "jacket",
              "cake", "cookie", "bread", "cheese", "egg", "carrot", "tomato", "potato", "orange fruit", "grape",
              "cherry", "strawberry", "watermelon", "mushroom", "leaf", "rose", "tulip", "cactus", "stone",
              "brick", "bone", "skull", "sword", "shield", "bow", "arrowhead", "hexagram", "ellipse", "polygon",
              "rhombicuboctahedron", "prism", "pyramid", "tetrahedron", "torus", "semicircle", "quarter circle",
              "zigzag", "wave", "squiggle", "blob", "letter b", "the number 3", "emoji", "logo", "word", "text",
              "qr code", "barcode", "face", "hand", "eye", "foot", "ear", "nose", "mouth", "tooth"]  # fmt: skip
UNKNOWN_COLORS_EN = ["golden", "gold", "silver", "brown", "grey", "gray", "beige", "maroon", "navy", "olive", "tan",
                     "bronze", "rainbow", "transparent", "striped", "spotted", "metallic", "white", "black",
                     "lavender", "mint", "peach", "coral", "salmon", "ivory", "cream", "copper", "rust", "ochre",
                     "charcoal", "plaid", "checkered", "glowing", "shiny", "wooden", "glass", "furry", "fluffy",
                     "sparkly", "neon", "pastel", "dark", "light", "pale", "bright", "colorful", "multicolored",
                     "invisible", "burning", "frozen", "happy", "sad", "angry", "smiling", "flying", "running",
                     "3d", "hollow", "dotted", "blurry", "ugly", "beautiful", "old", "broken", "rotating"]  # fmt: skip
UNKNOWN_SCENES_EN = ["a photo of a {x}", "a {x} in the park", "the {x} is sleeping", "a beautiful sunset",
                     "a portrait of my grandmother", "the weather is nice today", "a city at night",
                     "write me a poem", "what is 2 plus 2", "a {x} eating an apple", "an oil painting of a {x}",
                     "a {x} on the beach", "hello", "a map of france", "a {x} and a {y}"]  # fmt: skip
UNKNOWN_ZH = ["龙", "猫", "狗", "汽车", "树", "房子", "花", "人", "鸟", "马", "鱼", "船", "苹果", "香蕉", "椅子",
              "桌子", "杯子", "书", "手机", "机器人", "六边形", "五边形", "椭圆", "心形", "月亮", "箭头", "云",
              "太阳", "山", "河", "城堡", "吉他", "火箭", "自行车", "蜘蛛", "大象", "皇冠", "钥匙", "鞋", "帽子",
              "戒指", "立方体", "球体", "圆柱", "圆锥", "线条", "长方形", "八边形", "月牙", "螺旋", "字母A",
              "数字七", "笑脸", "老虎", "披萨", "火车", "飞机", "雨伞", "时钟", "台灯", "猴子", "狮子", "熊", "兔子",
              "老鼠", "牛", "猪", "羊", "鸭子", "青蛙", "蛇", "乌龟", "鲨鱼", "鲸鱼", "蜜蜂", "蝴蝶", "蚂蚁", "狼",
              "狐狸", "鹿", "斑马", "骆驼", "鸡", "山羊", "鹦鹉", "老鹰", "章鱼", "螃蟹", "恐龙", "怪兽", "鬼", "巫师",
              "公主", "国王", "王后", "骑士", "海盗", "小孩", "婴儿", "女人", "男人", "老师", "医生", "士兵", "农民",
              "卡车", "公交车", "拖拉机", "轮船", "潜水艇", "直升机", "摩托车", "滑板", "梯子", "桥", "塔", "教堂",
              "寺庙", "学校", "医院", "花园", "森林", "沙漠", "岛", "火山", "海洋", "湖", "瀑布", "彩虹", "雪花",
              "星球", "银河", "彗星", "蜡烛", "瓶子", "玻璃杯", "盘子", "碗", "勺子", "叉子", "刀", "沙发", "床",
              "门", "窗户", "镜子", "电脑", "键盘", "电视", "相机", "收音机", "钢琴", "鼓", "笛子", "气球", "礼物",
              "旗子", "地图", "硬币", "项链", "手套", "袜子", "衬衫", "裙子", "夹克", "蛋糕", "饼干", "面包", "奶酪",
              "鸡蛋", "胡萝卜", "西红柿", "土豆", "葡萄", "樱桃", "草莓", "西瓜", "蘑菇", "叶子", "玫瑰", "郁金香",
              "仙人掌", "石头", "砖", "骨头", "骷髅", "剑", "盾牌", "弓", "椭圆形", "多边形", "棱柱", "金字塔", "圆环",
              "半圆", "波浪线", "锯齿", "字母B", "数字3", "表情", "标志", "文字", "二维码", "条形码", "脸", "手",
              "眼睛", "脚", "耳朵", "鼻子", "嘴巴", "牙齿"]  # fmt: skip
UNKNOWN_COLORS_ZH = ["金色", "银色", "棕色", "灰色", "米色", "褐色", "藏青色", "橄榄色", "古铜色", "彩虹色", "透明",
                     "条纹", "斑点", "金属色", "白色", "黑色", "薰衣草色", "薄荷色", "桃色", "珊瑚色", "象牙色", "奶油色",
                     "铜色", "铁锈色", "炭灰色", "格子", "发光", "闪亮", "木头", "玻璃", "毛茸茸", "霓虹色", "粉彩色",
                     "深色", "浅色", "淡色", "鲜艳", "五颜六色", "隐形", "燃烧", "冰冻", "开心", "生气", "微笑", "飞翔",
                     "立体", "空心", "模糊", "漂亮", "旧", "破", "旋转"]  # fmt: skip
UNKNOWN_SCENES_ZH = ["一张{x}的照片", "公园里的{x}", "{x}在睡觉", "美丽的日落", "我奶奶的肖像", "今天天气很好",
                     "夜晚的城市", "给我写一首诗", "二加二等于几", "{x}在吃苹果", "一幅{x}的油画", "海滩上的{x}",
                     "你好", "一张法国地图", "一个{x}和一个{y}"]  # fmt: skip

# Held out of training entirely (evaluation only).
HELD_OUT_UNKNOWN = {
    "en": ["unicorn", "penguin", "trumpet", "teapot", "snowman", "lighthouse", "owl", "giraffe", "kite", "anchor",
           "turquoise-ish wizard", "parallelogram", "trapezoid", "teardrop", "lightning bolt"],
    "zh": ["独角兽", "企鹅", "小号", "茶壶", "雪人", "灯塔", "猫头鹰", "长颈鹿", "风筝", "船锚", "平行四边形",
           "梯形", "水滴", "闪电"],
}  # fmt: skip

# Version 2 of the analysis data (``PlanDataConfig.analysis_version=2``) adds these; version 1 draws exactly as
# before, so the shipped planner's first analysis round stays reproducible. Colour names people use that are not
# one of the world's eight and not one of its everyday synonyms (CSS/X11 and common paint names; Chinese
# equivalents), and more ways of asking for nothing.
UNKNOWN_COLORS_EN_V2 = ["magenta", "fuchsia", "teal", "indigo", "lime", "lime green", "navy blue", "sky blue",
                        "khaki", "mustard", "burgundy", "lilac", "mauve", "amber", "emerald", "jade", "ruby",
                        "sapphire", "chartreuse", "periwinkle", "cerulean", "cobalt", "azure", "plum", "sepia",
                        "taupe", "auburn", "sand-colored", "denim", "wine-red", "dark green", "light blue",
                        "baby blue", "off-white", "jet black", "snow-white", "brownish", "greyish", "silvery",
                        "bronze-colored", "two-tone", "see-through"]  # fmt: skip
UNKNOWN_COLORS_ZH_V2 = ["洋红色", "品红色", "靛蓝色", "靛青色", "藏蓝色", "天蓝色", "酒红色", "咖啡色", "卡其色",
                        "土黄色", "墨绿色", "琥珀色", "翡翠色", "宝石蓝", "香槟色", "驼色", "军绿色", "肉色", "杏色",
                        "奶白色", "乳白色", "雪白色", "漆黑色", "黑白", "淡蓝色", "浅绿色", "深蓝色", "荧光色", "玫瑰金",
                        "银灰色", "土色", "焦糖色", "芥末黄", "孔雀蓝", "紫红色", "灰蓝色"]  # fmt: skip
ZERO_FORMS_EN_V2 = ["no {p} at all", "not a single {s}", "not one {s}", "without any {p}", "there are no {p}",
                    "zero {p}, please", "an empty picture with no {p}", "nothing", "an empty canvas", "a blank image",
                    "draw nothing", "no shapes at all", "none", "0 {p} and 0 {p2}", "no {p} and no {p2}"]  # fmt: skip
ZERO_FORMS_ZH_V2 = ["一个{s}也没有", "一个{s}都不要", "没有任何{s}", "不要画{s}", "零个{s}和零个{s2}", "什么都不画",
                    "一张空白的图", "空白画面", "没有{s}也没有{s2}", "一个都不画", "一个图形也没有"]  # fmt: skip
SHAPE_CONTRADICTIONS_EN_V2 = ["a {s} that is also a {s2}", "a {c} {s} shaped like a {s2} but not a {s2}",
                              "a {c} thing that is a {s} and a {s2} at once", "a round square", "a square circle",
                              "a {c} {s} that is not a {s}"]  # fmt: skip
SHAPE_CONTRADICTIONS_ZH_V2 = ["一个既是{s}又是{s2}的图形", "一个{c}{s}，但它不是{s}", "一个方的圆形", "一个圆的正方形",
                              "一个同时是{s}和{s2}的{c}图形"]  # fmt: skip

_ONES_EN = ["five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
            "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS_EN = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# Every way of writing a number above four that the stream uses (words, digits, vague large amounts).
BIG_COUNTS_EN = [*_ONES_EN, *_TENS_EN, *(f"{t}-{o}" for t in _TENS_EN[:3] for o in ("one", "two", "five", "nine")),
                 "a hundred", "one hundred", "a thousand", "a million", "a dozen", "dozens of", "hundreds of",
                 "thousands of", "millions of", "many", "lots of", "a lot of", "countless", "infinitely many",
                 *(str(n) for n in (*range(5, 31), 32, 40, 45, 50, 64, 99, 100, 128, 500, 1000, 10000, 1000000))]  # fmt: skip
_DIGITS_ZH = "五六七八九"
BIG_COUNTS_ZH = [*(f"{d}个" for d in _DIGITS_ZH), "十个", *(f"十{d}个" for d in "一二三四五六七八九"),
                 *(f"{t}十个" for t in "二三四五六七八九"), "二十五个", "三十三个", "一百个", "一千个", "一万个", "几十个",
                 "上百个", "成千上万个", "很多个", "许多", "无数个", "好多个",
                 *(f"{n}个" for n in (*range(5, 31), 40, 50, 64, 99, 100, 1000, 10000))]  # fmt: skip
ZERO_EN = ["zero", "0", "-1", "-2", "-3", "-5", "-10", "minus one", "minus two", "minus three", "negative two",
           "no", "none of the"]  # fmt: skip
ZERO_ZH = ["零个", "0个", "-1个", "-2个", "-3个", "-5个", "负一个", "负两个", "负三个", "没有", "一个也没有的"]
NUM_EN = ["a", "one", "two", "three", "four", "1", "2", "3", "4"]


def _article(text: str) -> str:
    """Fix "a"/"an" before the word that now follows it."""
    return re.sub(r"\b([Aa])n? (?=(\w))", lambda m: m.group(1) + ("n " if m.group(2) in "aeiouAEIOU" else " "), text)


_ZH_RELATION_WORDS = "上方|下方|左边|右边|上面|下面|上边|下边|左面|右面|左侧|右侧|底下"


def everyday_variant(text: str, lang: str, rng: random.Random, version: int = 1, ask: bool = True) -> str:
    """``text`` (a plan sample's prompt) in everyday words: each replaceable word with probability 1/2, and
    sometimes a request around it ("draw ...", "画..."). Version 2 also drops, in Chinese, the first "一个" and the
    "的" before a relation word ("红色圆在蓝色方块左边") the way people type them."""
    if lang == "en":
        words = text.split(" ")
        out = [rng.choice(EVERYDAY_EN[w]) if w in EVERYDAY_EN and rng.random() < 0.5 else w for w in words]
        text = _article(" ".join(out))
        if rng.random() < 0.3 and ask:
            text = rng.choice(ASK_EN) + text
        return text
    keys = sorted(EVERYDAY_ZH, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, keys)))
    text = pattern.sub(lambda m: rng.choice(EVERYDAY_ZH[m.group(0)]) if rng.random() < 0.5 else m.group(0), text)
    if rng.random() < 0.25:  # the second "一个" is often left out
        first = text.find("一个")
        second = text.find("一个", first + 2) if first >= 0 else -1
        if second > 0:
            text = text[:second] + text[second + 2 :]
    if version >= 2:
        if text.startswith("一个") and rng.random() < 0.3:
            text = text[2:]
        if rng.random() < 0.3:
            text = re.sub(rf"的(?=({_ZH_RELATION_WORDS}))", "", text)
    if rng.random() < 0.3 and ask:
        text = rng.choice(ASK_ZH) + text
    return text


# ----------------------------------------------------------------------------- refusals

_SHAPE_EN = "|".join(sorted([*SHAPES, *SHAPE_PLURAL.values()], key=len, reverse=True))
_COLOR_EN = "|".join(COLORS)
_SHAPE_ZH = "|".join(SHAPE_ZH.values())
_COLOR_ZH = "|".join(COLOR_ZH.values())


def _plural_en(noun: str) -> str:
    if noun.startswith(("letter ", "number ")):
        return noun
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def _object_en(rng: random.Random, count: str = "a") -> str:
    """A random in-world object phrase ("a small red circle", "three blue stars")."""
    shape = rng.choice(SHAPES)
    words = [w for w in (rng.choice(["", "small", "large"]), rng.choice(["", *COLORS])) if w]
    plural = count not in ("a", "one", "1")
    return _article(" ".join([count, *words, SHAPE_PLURAL[shape] if plural else shape]))


def _object_zh(rng: random.Random, count: str = "一个") -> str:
    return (
        count
        + rng.choice(["", "小的", "大的"])
        + rng.choice(["", *COLOR_ZH.values()])
        + rng.choice(list(SHAPE_ZH.values()))
    )


def _unknown_en(text: str, rng: random.Random, words: list[str], colors: list[str], scenes: list[str]) -> str:
    u = rng.random()
    x, y = rng.choice(words), rng.choice(words)
    if u < 0.3:  # a shape word becomes an out-of-world noun
        m = list(re.finditer(rf"\b({_SHAPE_EN})\b", text))
        if m:
            k = rng.choice(m)
            noun = x if k.group(0) in SHAPES else _plural_en(x)
            return _article(text[: k.start()] + noun + text[k.end() :])
    if u < 0.45:  # a colour word becomes an out-of-world colour
        m = list(re.finditer(rf"\b({_COLOR_EN})\b", text))
        if m:
            k = rng.choice(m)
            return _article(text[: k.start()] + rng.choice(colors) + text[k.end() :])
    if u < 0.7:  # an out-of-world object joins the in-world ones
        return _article(text + rng.choice([" and a ", " next to a ", " with a ", " beside a ", " and an "]) + x)
    if u < 0.8:
        return _article(f"a {rng.choice(colors)} {x}")
    return _article(rng.choice(scenes).format(x=x, y=y))


def _unknown_zh(text: str, rng: random.Random, words: list[str], colors: list[str], scenes: list[str]) -> str:
    u = rng.random()
    x, y = rng.choice(words), rng.choice(words)
    if u < 0.3:
        m = list(re.finditer(_SHAPE_ZH, text))
        if m:
            k = rng.choice(m)
            return text[: k.start()] + x + text[k.end() :]
    if u < 0.45:
        m = list(re.finditer(_COLOR_ZH, text))
        if m:
            k = rng.choice(m)
            return text[: k.start()] + rng.choice(colors) + text[k.end() :]
    if u < 0.7:
        return text + rng.choice(["和一个", "旁边有一个", "还有一个", "以及一个"]) + x
    if u < 0.8:
        return f"一个{rng.choice(colors)}的{x}"
    return rng.choice(scenes).format(x=x, y=y)


def _count_en(rng: random.Random) -> str:
    if rng.random() < 0.75:  # one group too many
        text = _object_en(rng, rng.choice(BIG_COUNTS_EN))
    else:  # groups that fit one by one but not together
        a = rng.choice([2, 3, 4])
        b = rng.randint(5 - a, 4)
        text = (
            f"{_object_en(rng, str(a) if rng.random() < 0.5 else NUM_WORDS_EN[a])} and "
            f"{_object_en(rng, str(b) if rng.random() < 0.5 else NUM_WORDS_EN[b])}"
        )
    return _article(text)


NUM_WORDS_EN = {1: "one", 2: "two", 3: "three", 4: "four"}
NUM_WORDS_ZH = {1: "一个", 2: "两个", 3: "三个", 4: "四个"}


def _count_zh(rng: random.Random) -> str:
    if rng.random() < 0.75:
        return _object_zh(rng, rng.choice(BIG_COUNTS_ZH))
    a = rng.choice([2, 3, 4])
    b = rng.randint(5 - a, 4)
    return f"{_object_zh(rng, NUM_WORDS_ZH[a])}和{_object_zh(rng, NUM_WORDS_ZH[b])}"


def _contradiction_en(rng: random.Random) -> str:
    c1, c2 = rng.sample(list(COLORS), 2)
    shape = rng.choice(SHAPES)
    u = rng.random()
    if u < 0.35:
        text = f"a {c1} {c2} {shape}" if rng.random() < 0.6 else f"a {shape} that is both {c1} and {c2}"
    elif u < 0.6:
        text = rng.choice([f"a small large {c1} {shape}", f"a large small {shape}",
                           f"a {c1} {shape} that is both small and large", f"a tiny huge {shape}"])  # fmt: skip
    elif u < 0.85:
        rel = rng.choice(["to the left of", "to the right of", "above", "below", "left of", "under"])
        text = rng.choice([f"a {c1} {shape} {rel} itself", f"a {shape} {rel} itself"])
    else:
        cells = rng.sample(["in the top left", "in the bottom right", "in the center", "at the top", "on the left"], 2)
        text = f"a {c1} {shape} {cells[0]} and {cells[1]} at the same time"
    return _article(text)


def _contradiction_zh(rng: random.Random) -> str:
    c1, c2 = rng.sample(list(COLOR_ZH.values()), 2)
    shape = rng.choice(list(SHAPE_ZH.values()))
    u = rng.random()
    if u < 0.35:
        return rng.choice([f"一个{c1}的{c2}{shape}", f"一个{c1}{c2}{shape}", f"一个既是{c1}又是{c2}的{shape}"])
    if u < 0.6:
        return rng.choice([f"一个又大又小的{c1}{shape}", f"一个小的大的{shape}", f"一个既大又小的{shape}"])
    if u < 0.85:
        rel = rng.choice(["左边", "右边", "上方", "下方", "上面", "下面"])
        return rng.choice([f"一个在自己{rel}的{c1}{shape}", f"{c1}{shape}在它自己的{rel}"])
    cells = rng.sample(["左上角", "右下角", "中间", "上方", "左侧"], 2)
    return f"一个{c1}{shape}同时在{cells[0]}和{cells[1]}"


def _zero_en(rng: random.Random) -> str:
    text = _object_en(rng, rng.choice(ZERO_EN))
    if rng.random() < 0.3:  # beside an object that would be fine alone
        text = f"{_object_en(rng)} and {text}"
    return _article(text)


def _zero_zh(rng: random.Random) -> str:
    text = _object_zh(rng, rng.choice(ZERO_ZH))
    if rng.random() < 0.3:
        text = f"{_object_zh(rng)}和{text}"
    return text


def _v2_form(forms: list[str], rng: random.Random, lang: str) -> str:
    """One of the version-2 forms with its placeholders filled: {s}/{s2} shapes, {p}/{p2} plurals, {c} a colour."""
    s1, s2 = rng.sample(list(SHAPES), 2)
    if lang == "en":
        fill = {"s": s1, "s2": s2, "p": SHAPE_PLURAL[s1], "p2": SHAPE_PLURAL[s2], "c": rng.choice(list(COLORS))}
    else:
        fill = {"s": SHAPE_ZH[s1], "s2": SHAPE_ZH[s2], "c": rng.choice(list(COLOR_ZH.values()))}
    text = rng.choice(forms).format(**fill)
    return _article(text) if lang == "en" else text


def refusal_variant(text: str, lang: str, rng: random.Random, held_out: bool = False,
                    version: int = 1) -> tuple[str, str]:  # fmt: skip
    """A prompt the planner must refuse, and why (one of :data:`REFUSAL_REASONS`); ``text`` (an in-world prompt)
    is the starting point of some ``unknown`` ones. ``held_out`` draws the unknown words kept out of training.
    Version 2 adds more colour names, ways of asking for nothing and shape contradictions, and rewords half of
    the refusals in everyday words ("six little balls", "a tiny huge star"); version 1 draws exactly as before."""
    reason = rng.choices(REFUSAL_REASONS, (0.5, 0.2, 0.15, 0.15))[0]
    en = lang == "en"
    v2 = version >= 2
    if reason == "unknown":
        words = HELD_OUT_UNKNOWN[lang] if held_out else (UNKNOWN_EN if en else UNKNOWN_ZH)
        colors = UNKNOWN_COLORS_EN if en else UNKNOWN_COLORS_ZH
        if v2:
            colors = [*colors, *(UNKNOWN_COLORS_EN_V2 if en else UNKNOWN_COLORS_ZH_V2)]
        out = (_unknown_en if en else _unknown_zh)(
            text, rng, words, colors, UNKNOWN_SCENES_EN if en else UNKNOWN_SCENES_ZH
        )
    elif reason == "count":
        out = (_count_en if en else _count_zh)(rng)
    elif reason == "contradiction":
        if v2 and rng.random() < 0.2:
            out = _v2_form(SHAPE_CONTRADICTIONS_EN_V2 if en else SHAPE_CONTRADICTIONS_ZH_V2, rng, lang)
        else:
            out = (_contradiction_en if en else _contradiction_zh)(rng)
    elif v2 and rng.random() < 0.4:
        out = _v2_form(ZERO_FORMS_EN_V2 if en else ZERO_FORMS_ZH_V2, rng, lang)
    else:
        out = (_zero_en if en else _zero_zh)(rng)
    if version >= 3 and rng.random() < 0.25:  # everyday forms of what cannot be drawn (lvg.worlds.shapes.sentences)
        out, reason = refusal_sentence(lang, rng, UNKNOWN_COLORS_EN_V2 if en else UNKNOWN_COLORS_ZH_V2)
    if version >= 4 and rng.random() < 0.2:  # notes, key-value lines and statements (lvg.worlds.shapes.phrasings)
        colors = [
            *(UNKNOWN_COLORS_EN if en else UNKNOWN_COLORS_ZH),
            *(UNKNOWN_COLORS_EN_V2 if en else UNKNOWN_COLORS_ZH_V2),
        ]
        out, reason = refusal_phrase(lang, rng, colors, UNKNOWN_EN if en else UNKNOWN_ZH)
    if v2 and rng.random() < 0.5:
        out = everyday_variant(out, lang, rng, version)
    return out, reason
