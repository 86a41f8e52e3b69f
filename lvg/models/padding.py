"""Padding token-id rows into batches: one left-pad (prompts for generation) and one right-pad (training rows).

Generation left-pads, so every row's next token is at the last column; training right-pads, so a row's loss starts
where its labels do. Position ids are ``cumsum(attention_mask) - 1`` either way, so a row's tokens get the same
positions however it is padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

IGNORE = -100  # label of a position outside the loss


def left_pad(rows: Sequence[Sequence[int] | torch.Tensor], pad_id: int, length: int | None = None,
             masks: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Rows of token ids -> left-padded input_ids and attention_mask [B, T] (long), ``T = length`` or the longest row.

    ``masks`` are the rows' own attention masks, for rows that are already padded (default: all ones). Tensors stay
    on their rows' device.
    """
    T = max(len(r) for r in rows) if length is None else length
    device = rows[0].device if len(rows) and isinstance(rows[0], torch.Tensor) else None
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        if len(r):
            ids[i, T - len(r) :] = torch.as_tensor(r, dtype=torch.long)
            mask[i, T - len(r) :] = 1 if masks is None else masks[i]
    return ids, mask


def right_padded_batch(rows: list[list[int]], starts: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Training rows -> right-padded input_ids, attention_mask, position_ids and labels [B, T]; row ``i``'s labels
    are IGNORE before ``starts[i]`` (the loss covers its tokens from there on)."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, (r, s) in enumerate(zip(rows, starts, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, s : len(r)] = ids[i, s : len(r)]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels}
