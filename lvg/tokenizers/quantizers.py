"""Discrete bottlenecks for the image tokenizer: FSQ and l2-normalised VQ.

Both map a latent ``z`` [B, D, h, w] to ``(z_q, codes, aux_loss)`` with ``z_q`` the quantised
latent (straight-through gradients), ``codes`` a LongTensor [B, h, w] and ``aux_loss`` a scalar.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FSQ(nn.Module):
    """Finite scalar quantisation (Mentzer et al., 2023): round each of D bounded channels.

    Channel i takes ``levels[i]`` values; the codebook is their product. For an even level L the
    rounded values are the integers -L/2 .. L/2-1, for an odd one -(L-1)/2 .. (L-1)/2; either way
    ``digit = value + L // 2`` runs over 0 .. L-1, which keeps codes <-> latents exact.
    """

    def __init__(self, levels: list[int]):
        super().__init__()
        if not levels or any(n < 2 for n in levels):
            raise ValueError(f"FSQ levels must be integers >= 2, got {levels}")
        lv = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]], dtype=torch.long), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.dim = len(levels)
        self.codebook_size = int(math.prod(levels))

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        L = self.levels.to(z.dtype).view(1, -1, 1, 1)
        half = (L - 1) * (1 - 1e-3) / 2
        offset = torch.where(self.levels.view(1, -1, 1, 1) % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = self._bound(z.float())
        q = b + (torch.round(b) - b).detach()  # straight-through rounding
        half_width = (self.levels // 2).view(1, -1, 1, 1)
        digits = (torch.round(b).long() + half_width).clamp_min(0)
        codes = (digits * self.basis.view(1, -1, 1, 1)).sum(1)
        return (q / half_width).to(z.dtype), codes, z.new_zeros(())

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, h, w] -> normalised latent [B, D, h, w]."""
        digits = (codes.unsqueeze(1) // self.basis.view(1, -1, 1, 1)) % self.levels.view(1, -1, 1, 1)
        half_width = (self.levels // 2).view(1, -1, 1, 1)
        return (digits - half_width).float() / half_width


class L2VQ(nn.Module):
    """Vector quantisation with l2-normalised low-dimensional codes (LlamaGen / ViT-VQGAN style).

    Nearest code by cosine similarity; codebook and commitment losses; straight-through estimator.
    """

    def __init__(self, codebook_size: int, dim: int = 8, beta: float = 0.25):
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, dim)
        nn.init.normal_(self.codebook.weight)
        self.dim, self.codebook_size, self.beta = dim, codebook_size, beta

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = F.normalize(z.float(), dim=1)
        B, D, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, D)  # [B*h*w, D]
        book = F.normalize(self.codebook.weight.float(), dim=1)  # [K, D]
        codes = (flat @ book.t()).argmax(1)  # [B*h*w]
        q = book[codes].view(B, h, w, D).permute(0, 3, 1, 2)
        loss = F.mse_loss(q, z.detach()) + self.beta * F.mse_loss(z, q.detach())
        return z + (q - z).detach(), codes.view(B, h, w), loss

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        book = F.normalize(self.codebook.weight.float(), dim=1)
        return book[codes].permute(0, 3, 1, 2)
