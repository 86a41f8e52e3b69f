"""``lvg.models.padding.left_pad``: the one left-pad behind every prompt batch (planner, reading LM, one-stage LM,
the guidance batch of sampling)."""

from __future__ import annotations

import torch

from lvg.models.padding import left_pad
from lvg.sampling.generate import left_pad_concat


def test_left_pad_rows():
    ids, mask = left_pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]] and mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    ids, mask = left_pad([[5, 6]], pad_id=9, length=4)
    assert ids.tolist() == [[9, 9, 5, 6]] and mask.tolist() == [[0, 0, 1, 1]] and ids.dtype == mask.dtype == torch.long
    # rows that are already padded keep their own masks (and their tokens under them)
    ids, mask = left_pad(torch.tensor([[3, 4]]), pad_id=0, length=3, masks=torch.tensor([[False, True]]))
    assert ids.tolist() == [[0, 3, 4]] and mask.tolist() == [[0, 0, 1]]


def test_left_pad_concat_widens_the_narrower_batch():
    a, ma = left_pad([[1, 2, 3]], 0)
    b, mb = left_pad([[4]], 0)
    ids, mask = left_pad_concat(a, ma, b, mb.bool(), pad_id=7)
    assert ids.tolist() == [[1, 2, 3], [7, 7, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert mask.dtype == torch.long
