"""Validation of the pixel judge against ground truth (used by the tests and the benchmark).

Three measurements, all on degraded renders (Gaussian blur, then Gaussian noise):
- ``correct``: renders of random scenes that satisfy random specs; the judge should pass them.
- ``mismatched``: image of one random scene against the spec of another; the judge's pass rate
  is compared with the symbolic truth on the same pairs (how often a random scene satisfies a
  random spec) and false accepts are counted.
- ``near_miss``: a correct scene with one thing changed (colour, shape, size, cell, background,
  one object added or removed); the judge must agree with the symbolic truth.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from lvg.worlds.shapes.captions import describe
from lvg.worlds.shapes.render import render
from lvg.worlds.shapes.spec import scene_from_spec, scene_satisfies
from lvg.worlds.shapes.world import CELLS, COLORS, SHAPES, SIZES, Scene, random_jitter, sample_scene

from .judge import judge


def degrade(img: np.ndarray, rng: np.random.Generator, noise: float = 10.0, blur: float = 0.8) -> np.ndarray:
    """Gaussian blur (sigma ``blur`` px) then Gaussian noise (sigma ``noise`` in 0..255 units)."""
    from scipy.ndimage import gaussian_filter

    x = img.astype(np.float32)
    if blur:
        x = gaussian_filter(x, (blur, blur, 0))
    if noise:
        x = x + rng.normal(0.0, noise, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def perturb(scene: Scene, rng: random.Random) -> Scene:
    """Change exactly one thing about ``scene``."""
    objs = list(scene.objects)
    i = rng.randrange(len(objs))
    o = objs[i]
    free = [c for c in CELLS if c not in {p.cell for p in objs}]
    kinds = ["color", "shape", "size", "bg"] + (["move", "add"] if free else []) + (["remove"] if len(objs) > 1 else [])
    kind = rng.choice(kinds)
    if kind == "color":
        objs[i] = dataclasses.replace(o, color=rng.choice([c for c in COLORS if c != o.color]))
    elif kind == "shape":
        objs[i] = dataclasses.replace(o, shape=rng.choice([s for s in SHAPES if s != o.shape]))
    elif kind == "size":
        objs[i] = dataclasses.replace(o, size=next(z for z in SIZES if z != o.size))
    elif kind == "move":
        objs[i] = dataclasses.replace(o, cell=rng.choice(free))
    elif kind == "add":
        if len(objs) == 4:
            objs.pop(i)
        objs.append(dataclasses.replace(o, cell=rng.choice(free), jitter=random_jitter(rng)))
    elif kind == "remove":
        objs.pop(i)
    else:
        return Scene(scene.objects, "black" if scene.bg == "white" else "white")
    return Scene(tuple(objs), scene.bg)


def validate_judge(num: int = 2000, seed: int = 0, noise: float = 10.0, blur: float = 0.8) -> dict:
    """Run the three measurements on ``num`` items each; return rates and counts."""
    rng = random.Random(f"lvg-judge-check:{seed}")
    nrng = np.random.default_rng(seed)
    correct_pass = 0
    mm_judge = mm_truth = mm_false_accept = 0
    nm_agree = nm_false_accept = nm_false_reject = nm_truth = 0
    for _ in range(num):
        spec = describe(sample_scene(rng), rng)
        scene = scene_from_spec(spec, rng)
        correct_pass += judge(degrade(render(scene), nrng, noise, blur), spec).passed

        other = sample_scene(rng)
        ok_j = judge(degrade(render(other), nrng, noise, blur), spec).passed
        ok_t = scene_satisfies(other, spec)
        mm_judge += ok_j
        mm_truth += ok_t
        mm_false_accept += ok_j and not ok_t

        near = perturb(scene, rng)
        ok_j = judge(degrade(render(near), nrng, noise, blur), spec).passed
        ok_t = scene_satisfies(near, spec)
        nm_truth += ok_t
        nm_agree += ok_j == ok_t
        nm_false_accept += ok_j and not ok_t
        nm_false_reject += ok_t and not ok_j
    return {
        "num": num,
        "noise_sigma": noise,
        "blur_sigma": blur,
        "correct_pass_rate": correct_pass / num,
        "mismatched_judge_pass_rate": mm_judge / num,
        "mismatched_truth_rate": mm_truth / num,
        "mismatched_false_accepts": mm_false_accept,
        "near_miss_truth_rate": nm_truth / num,
        "near_miss_agreement": nm_agree / num,
        "near_miss_false_accepts": nm_false_accept,
        "near_miss_false_rejects": nm_false_reject,
    }
