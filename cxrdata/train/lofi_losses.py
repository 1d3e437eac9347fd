"""LoFi's losses: the sigmoid (SigLIP) image-text loss (global under DDP) and chunked token cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100


def sigmoid_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                 logit_bias: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss: ``-sum log σ(z_ij · (t·<x_i, y_j> + b)) / n``.

    ``z_ij`` is +1 for a matching pair, -1 otherwise. Without ``groups`` the diagonal matches (exactly
    ``SiglipModel(return_loss=True)``); with ``groups`` (one id per row, e.g. the study) every image-text pair
    of the same group matches, so two images of one study are not pushed away from each other's report.
    Embeddings are L2-normalised here; ``logit_scale`` is ``log t``.
    """
    x = F.normalize(image_embeds.float(), dim=-1)
    y = F.normalize(text_embeds.float(), dim=-1)
    logits = y @ x.t() * logit_scale.float().exp() + logit_bias.float()  # rows: texts, columns: images
    if groups is None:
        labels = torch.eye(logits.shape[0], device=logits.device)
    else:
        labels = (groups[:, None] == groups[None, :]).float()
    signs = 2 * labels - 1
    return -F.logsigmoid(signs * logits).sum(dim=-1).mean()


def distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGather(torch.autograd.Function):
    """All-gather of equal-sized tensors whose backward sums the gradient over ranks and keeps this rank's rows."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_pairs(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                 groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Under DDP: every process's (image, text, group) rows, differentiably, so the sigmoid loss sees the global
    batch's negatives. Every rank computes the same global loss; the gather's backward sums the gradient of the
    local rows over ranks (x world) and DDP's averaging divides by world: the exact global gradient. Ranks may
    hold different numbers of rows, none included (padded for the gather, then dropped); every rank must call
    it. Alone: unchanged."""
    if not distributed():
        return image_embeds, text_embeds, groups
    import torch.distributed as dist

    n = torch.tensor([image_embeds.shape[0]], device=image_embeds.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    width = max(int(k) for k in sizes)

    def padded(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.new_zeros((width - x.shape[0], *x.shape[1:]))])

    keep = torch.cat([torch.arange(width, device=n.device) < int(k) for k in sizes])
    images = _AllGather.apply(padded(image_embeds.float()))[keep]
    texts = _AllGather.apply(padded(text_embeds.float()))[keep]
    gathered = [torch.zeros(width, dtype=groups.dtype, device=groups.device) for _ in sizes]
    dist.all_gather(gathered, padded(groups))
    return images, texts, torch.cat(gathered)[keep]


HEAD_CHUNK = 2048  # labelled positions per LM-head chunk: 2048 x 262k Gemma logits = 2 GiB in fp32


def _ce_sum(hidden: torch.Tensor, labels: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), labels, reduction="sum")


def token_loss(hidden: torch.Tensor, labels: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
               chunk: int = HEAD_CHUNK) -> torch.Tensor:
    """Mean cross-entropy of ``head(hidden)`` (N, V) against ``labels`` (N,), in chunks of ``chunk`` positions whose
    logits are recomputed in the backward pass (activation checkpointing): the whole batch's logits over a 262k
    vocabulary are never held at once. 0 (with a graph) when N = 0."""
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0
    if hidden.shape[0] <= chunk:
        return _ce_sum(hidden, labels, head) / hidden.shape[0]
    total = sum(checkpoint(_ce_sum, hidden[i:i + chunk], labels[i:i + chunk], head, use_reentrant=False)
                for i in range(0, hidden.shape[0], chunk))
    return total / hidden.shape[0]
