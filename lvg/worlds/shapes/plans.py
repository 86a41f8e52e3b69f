"""Planner training data: (prompt, layout) pairs drawn from Shapes World.

Item ``i`` of seed ``s`` is a pure function of ``(s, i)``. A scene is drawn from the contract's
training distribution, a caption states some of it (canonical, paraphrased, or re-typed the way
people type), and the target layout lists the scene's objects in the order the caption mentions
them, so the planner learns to write each mentioned group where the prompt says.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lvg.data.layout import Layout, check_layout_order
from lvg.ranges import bounded, check_ranges, check_weights
from lvg.worlds.shapes.scene_layout import layout_from_scene

from .analysis import everyday_variant, refusal_variant
from .binding import binding_sample
from .captions import CaptionConfig, describe, spec_to_text
from .edits import EditDataConfig, make_edit_sample
from .phrasings import frame, phrase
from .placing import placing_contradiction, placing_sample
from .sentences import everyday_sentence
from .spec import Spec, assignment, scene_objects
from .typed import typed_variant
from .world import Scene, sample_scene


@dataclass
class PlanDataConfig:
    """What the planner's training stream draws."""

    seed: int = 0
    langs: tuple[str, ...] = ("en", "zh")
    # wording paraphrased ("left of", "under", "in the middle", ...)
    paraphrase_prob: float = bounded(0.0, 1.0, default=0.3)
    typed_prob: float = bounded(0.0, 1.0, default=0.3)  # surface re-typed (capitals, digits, full stops, spaces)
    # prompt analysis (lvg.worlds.shapes.analysis); 0 draws nothing, so the first stream stays exactly
    # reworded in everyday words ("ball", "box", "圆", "方块", "draw ...")
    everyday_prob: float = bounded(0.0, 1.0, default=0.0)
    # made into a prompt the planner must refuse (target: <layout> REASON </layout>)
    refusal_prob: float = bounded(0.0, 1.0, default=0.0)
    analysis_version: int = 1  # 2: more words and forms for both (lvg.worlds.shapes.analysis); 3: also free
    # sentences (lvg.worlds.shapes.sentences); 4: also notes, clauses, statements, counts of the whole and what
    # people put around a request (lvg.worlds.shapes.phrasings); 5: a relation in a free sentence told in those
    # forms whenever they fit (no object placed), more of them from the other object ("B with A to its right");
    # 1 draws as before
    # editing (lvg.worlds.shapes.edits): the share of rows that are edits instead, ``instruction <layout> OLD
    # </layout>`` -> the edited layout (or a refusal); 0 draws nothing
    edit_prob: float = bounded(0.0, 1.0, default=0.0)
    edit_combo_prob: float = bounded(0.0, 1.0, default=0.25)
    edit_refusal_prob: float = bounded(0.0, 1.0, default=0.12)
    # the chance that an edit's multi-object scene repeats a few prototypes (None: the world's own rate, 0.3 in both
    # worlds); more of them teach the editor to pick one of two like objects by the place or size the instruction names
    edit_group_prob: float | None = bounded(0.0, 1.0, default=None)
    # the relative weight of each edit type ({swap: 3}; a type left out weighs 1); empty: uniform. The types are
    # Shapes World's here; with an imagefolder's world, that world's (lvg.worlds.World.edit_types)
    edit_type_weights: dict[str, float] = field(default_factory=dict)
    # reader-like noise on the edits' boxes (lvg.data.layout.jitter_edit_boxes): the chance that each coordinate of
    # a box the editor is given moves 1 px, and the kept objects with it, so the editor copies the boxes a reader
    # reads (1-2 px off the world's) instead of rewriting the layout; 0 draws nothing (the stream as before)
    edit_box_noise: float = bounded(0.0, 1.0, default=0.0)
    # the order of the objects in an edit's two layouts, and so the order the trained editor is given a layout in
    # (its plan_vocab.json's layout "order"): "reading" (by box centre; every stream before) or "lines" (rows as text
    # is read, lvg.data.layout.line_order, so two objects of one row keep their left-to-right order when a reader
    # reads one a pixel higher). "lines" is drawn by an imagefolder's world (Emoji World); Shapes World's own stream
    # draws "reading"
    edit_order: str = "reading"
    # the chance that an edit's scene which repeats an object has one copy first differ from the others as an earlier
    # edit leaves it (Emoji World: the other style or size, lvg.worlds.emoji.edits.vary_twin), so instructions name
    # objects by style or size as a chain of edits does; drawn by an imagefolder's world (Emoji World). 0 draws
    # nothing (the stream as before)
    edit_varied_prob: float = bounded(0.0, 1.0, default=0.0)
    # the chance that a plan row's scene is drawn again until it holds 3 or more objects (the contract's
    # distribution given that), so binding a colour, size and place to each of several objects is practised more
    # (the shipped planner's own held-out everyday rows: 2-7% wrong at 1-2 objects, 8-20% at 3-4); 0 draws nothing
    # (the stream as before)
    dense_prob: float = bounded(0.0, 1.0, default=0.0)
    # the chance that a plan row is a scene of several objects bound by shared or one-each attributes, asked for as
    # people ask for them ("three circles: one red, one yellow, one blue", "a square and a star, both green",
    # "一大一小两个粉色的圆"; lvg.worlds.shapes.binding), the forms round 8 drew wrong most often; 0 draws nothing
    # (the stream as before)
    binding_prob: float = bounded(0.0, 1.0, default=0.0)
    # the chance that a plan row says where its objects go as people say it: a relation told from the other object
    # ("under the yellow square there's a purple star", "紫色圆的右边画个橙色三角"), a comparison ("the diamond should
    # be higher than the square", "绿色菱形要比黄色正方形高"), places as headlines ("lower left: small green star",
    # "三角形一个，红色，放左下角"); lvg.worlds.shapes.placing. Drawn after binding_prob; 0 draws nothing (the stream
    # as before)
    placing_prob: float = bounded(0.0, 1.0, default=0.0)
    # the share of those rows that are made into a contradiction in the same forms, to refuse ("under the square
    # there's a star, and the square is lower than the star", "只要一个圆，放左上角和右下角"); 0 draws nothing
    placing_refusal_prob: float = bounded(0.0, 1.0, default=0.0)
    captions: CaptionConfig = field(
        default_factory=lambda: CaptionConfig(relation_pair=0.5, position_multi=0.25, position_single=0.6)
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        check_weights(self.edit_type_weights, None, "edit_type_weights")  # (the names: by the world drawing)
        check_layout_order(self.edit_order, "edit_order")


DENSE_OBJECTS = 3  # what data.dense_prob draws scenes of: at least this many objects


@dataclass(frozen=True)
class PlanSample:
    index: int
    scene: Scene
    spec: Spec
    lang: str
    text: str
    layout: Layout  # the scene's objects in caption order (of the scene drawn first, for a refusal)
    refusal: str | None = None  # why the prompt cannot be drawn (lvg.data.text.REFUSAL_REASONS)
    context: Layout | None = None  # an edit's layout before the edit (the prompt is then its instruction)


def caption_order(scene: Scene, spec: Spec) -> list[int]:
    """Indices of ``scene``'s objects in the order ``spec`` mentions them (the first valid assignment,
    trying objects in reading order, so identical objects of a counted group come top-left first)."""
    seen = scene_objects(scene)
    order = sorted(range(len(seen)), key=lambda i: seen[i].cell)
    found = assignment([seen[i] for i in order], spec)
    if found is not None:
        return [order[i] for i in found]
    raise ValueError("the scene does not satisfy the spec")


def make_plan_sample(index: int, cfg: PlanDataConfig | None = None) -> PlanSample:
    """Deterministically build item ``index`` of the planner stream configured by ``cfg``."""
    cfg = cfg or PlanDataConfig()
    rng = random.Random(f"lvg-plan:{cfg.seed}:{index}")
    if cfg.edit_prob > 0 and rng.random() < cfg.edit_prob:  # (no draw at 0: the first stream stays)
        e = make_edit_sample(index, EditDataConfig(cfg.seed, cfg.edit_combo_prob, cfg.edit_refusal_prob,
                                                  cfg.edit_type_weights, cfg.edit_group_prob))  # fmt: skip
        text = typed_variant(e.instruction, e.lang, rng) if rng.random() < cfg.typed_prob else e.instruction
        after = e.after_layout
        return PlanSample(index, e.after or e.before, {"groups": []}, e.lang, text,
                          after if after is not None else e.before_layout, e.refusal, e.before_layout)  # fmt: skip
    # a scene said in one of the forms of binding.py or placing.py, or a contradiction in placing.py's forms (no
    # draw at 0: the earlier streams stay)
    said = (
        (cfg.binding_prob, binding_sample, 0.35, None),
        (cfg.placing_prob, placing_sample, 0.0, placing_contradiction),
    )
    for prob, draw, frame_prob, contradiction in said:
        if prob > 0 and rng.random() < prob:
            lang = rng.choice(cfg.langs)
            scene, text, spec = draw(lang, rng)
            refusal = None
            if contradiction and cfg.placing_refusal_prob > 0 and rng.random() < cfg.placing_refusal_prob:
                text, refusal = contradiction(lang, rng), "contradiction"
            if frame_prob and rng.random() < frame_prob:  # (placing.py frames the sentences that take it itself)
                text = frame(text, lang, rng)
            if rng.random() < cfg.typed_prob:
                text = typed_variant(text, lang, rng)
            layout = layout_from_scene(scene, caption_order(scene, spec))
            return PlanSample(index, scene, spec, lang, text, layout, refusal)
    scene = sample_scene(rng)
    if cfg.dense_prob > 0 and rng.random() < cfg.dense_prob:  # (no draw at 0: the earlier streams stay)
        while len(scene.objects) < DENSE_OBJECTS:
            scene = sample_scene(rng)
    spec = describe(scene, rng, cfg.captions)
    lang = rng.choice(cfg.langs)
    text = spec_to_text(spec, lang, rng if rng.random() < cfg.paraphrase_prob else None)
    refusal = None
    if cfg.everyday_prob > 0 or cfg.refusal_prob > 0:
        u = rng.random()
        v4 = cfg.analysis_version >= 4
        if u < cfg.refusal_prob:
            text, refusal = refusal_variant(text, lang, rng, version=cfg.analysis_version)
        elif u < cfg.refusal_prob + cfg.everyday_prob:
            free = cfg.analysis_version >= 3 and rng.random() < 0.5
            if free:  # a free sentence (with its own request words); its spec in the order the sentence names
                v5_relation = cfg.analysis_version >= 5 and "relation" in spec  # (the phrasings always say it)
                said = (
                    phrase(spec, lang, rng, cfg.analysis_version)
                    if v5_relation or (v4 and rng.random() < 0.6)
                    else None
                )
                text, spec = said or everyday_sentence(spec, lang, rng)
            text = everyday_variant(text, lang, rng, cfg.analysis_version, ask=not free)
            if v4:
                text = text.replace("的的", "的")  # "黄色的" reworded as "黄色的的"
        if v4 and u < cfg.refusal_prob + cfg.everyday_prob and rng.random() < 0.35:
            text = frame(text, lang, rng)  # a greeting, a hedge or thanks around it, whether it is drawn or refused
    if rng.random() < cfg.typed_prob:
        text = typed_variant(text, lang, rng)
    layout = layout_from_scene(scene, caption_order(scene, spec))
    return PlanSample(index, scene, spec, lang, text, layout, refusal)
