"""Per-object mask IoU of a tokenizer round trip: exact for a perfect tokenizer, lower when shapes blur."""

import torch
import torch.nn.functional as F

from lvg.eval.object_iou import PixelNoise, object_iou


class _Identity:
    device = torch.device("cpu")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.float() / 255


class _Blur(_Identity):
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        x = codes.float() / 255
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def test_perfect_round_trip_scores_one_and_blur_hurts_small_shapes_most():
    r = object_iou(_Identity(), num=60)
    assert r["objects"] > 60 and r["min_share_good"] == 1.0
    assert all(v["mean_iou"] == 1.0 for v in r["per_kind"].values() if v["n"])
    b = object_iou(_Blur(), num=60)
    assert b["min_share_good"] < 1.0
    assert b["per_kind"]["small star"]["mean_iou"] < b["per_kind"]["large square"]["mean_iou"]


def test_one_grey_level_of_noise_flips_diamond_edges_but_not_squares():
    """The mask threshold sits at alpha 0.5, where a small diamond's diagonal edges put many pixels."""
    r = object_iou(PixelNoise(1.0), num=150)
    assert r["per_kind"]["large square"]["share_good"] == 1.0
    assert r["per_kind"]["small diamond"]["share_good"] < 0.99
