"""Losses of LDM prompt tuning (seed 003, eqs. 2-4; SPEC "Trainers") and the Gaussian prior on the map grid.

Maps are ``(N, P, L)``: N = (sample, timestep, layer) triples, P = spatial positions, L = tokens; ``content``
``(N, L)`` marks the non-special tokens (the special tokens <BoS>, <EoS>, <pad>, <and> are excluded).

- L_div = mean over token pairs i ≠ j of cos²(A_i, A_j), maps ℓ2-normalised over space;
- A_sp = mean of the content tokens' maps; trg = 1[G > ε] · sg(A_sp) + α · G; L_loc = 1 − cos(A_sp, trg).

Both return one value per map set; the trainer averages them over samples, timesteps and layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from cxrdata.anatomy.gaussian import render
from cxrdata.anatomy.lut import jitter
from cxrdata.models.ldm_inputs import crop_pixels
from cxrdata.models.ldm_recipe import PRIOR_SCALES

Box = tuple[float, float, float, float]


def diversity_loss(maps: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``(N,)``: mean over ordered content-token pairs i ≠ j of cos²(A_i, A_j); 0 with fewer than 2 tokens."""
    a = F.normalize(maps, dim=1) * content[:, None, :].to(maps.dtype)
    sq = torch.matmul(a.transpose(1, 2), a).pow(2)
    k = content.sum(dim=1).to(maps.dtype)
    off_diagonal = sq.sum(dim=(1, 2)) - sq.diagonal(dim1=1, dim2=2).sum(dim=1)
    pairs = k * (k - 1)
    return torch.where(pairs > 0, off_diagonal / pairs.clamp(min=1), torch.zeros_like(pairs))


def spatial_map(maps: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``(N, P)``: A_sp, the mean over content tokens of the maps."""
    weights = content.to(maps.dtype)
    return (maps * weights[:, None, :]).sum(dim=-1) / weights.sum(dim=-1, keepdim=True).clamp(min=1)


def localisation_target(a_sp: torch.Tensor, gaussian: torch.Tensor, epsilon: float, alpha: float,
                        prior_scale: str = "peak") -> torch.Tensor:
    """trg = 1[G > ε] · sg(A_sp) + α · G.

    G has peak 1 (``peak``, the paper's formula read literally); ``attention`` scales it per map to the peak of
    sg(A_sp), so α is a fraction of the attention's own peak (docs/decisions.md, "Gaussian normalisation").
    """
    prior = gaussian
    if prior_scale == "attention":
        prior = gaussian * a_sp.detach().amax(dim=1, keepdim=True)
    elif prior_scale != "peak":
        raise ValueError(f"prior_scale must be one of {PRIOR_SCALES}, got {prior_scale!r}")
    return (gaussian > epsilon).to(a_sp.dtype) * a_sp.detach() + alpha * prior


def localisation_loss(a_sp: torch.Tensor, gaussian: torch.Tensor, epsilon: float, alpha: float,
                      prior_scale: str = "peak") -> torch.Tensor:
    """``(N,)``: 1 − cos(A_sp, trg) over space."""
    target = localisation_target(a_sp, gaussian, epsilon, alpha, prior_scale)
    return 1 - F.cosine_similarity(a_sp, target, dim=1)


def crop_box(width: int, height: int, fit: str) -> Box:
    """The model's square input as a box normalised to the image: the centred square of the short side
    (whole pixels, as :func:`crop_pixels`), or the whole image (``stretch``)."""
    left, top, side_w, side_h = crop_pixels(width, height, fit)
    return (left / width, top / height, (left + side_w) / width, (top + side_h) / height)


def prompt_gaussian(components: Sequence[NDArray[np.float64] | Sequence[Sequence[float]]], grid: float, box: Box,
                    height: int, width: int, jitter_fraction: float = 0.0,
                    rng: np.random.Generator | None = None) -> NDArray[np.float32]:
    """G of a prompt on a ``height`` x ``width`` map of the model input ``box``, peak 1.

    ``components``: per location its ``(C, 4)`` rows ``(mu_x, mu_y, sigma_x, sigma_y)`` on the ``grid``
    square stretched over the whole image. Each location is jittered (±``jitter_fraction`` of the grid side,
    :func:`cxrdata.anatomy.lut.jitter`), moved into ``box``, and all components are summed and normalised
    (a bilateral term, or several locations bound with <and>, is the normalised sum).
    """
    rows = []
    for params in components:
        p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
        if jitter_fraction > 0:
            p = jitter(p, rng, grid, jitter_fraction)
        rows.append(p / grid)
    p = np.concatenate(rows) if rows else np.zeros((0, 4))
    x0, y0, x1, y1 = box
    scale = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    p = (p - np.array([x0, y0, 0.0, 0.0])) / scale
    return render(p, height, width, grid=1.0, combine="sum", normalise=True)
