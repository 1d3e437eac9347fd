"""Cross-attention maps of a MONAI ``DiffusionModelUNet``, with gradients, through forward hooks.

MONAI's ``CrossAttentionBlock(save_attn=True)`` keeps a detached copy of its attention matrix: fine for
heatmaps, useless for training. :class:`AttentionRecorder` instead registers a forward hook
(``with_kwargs=True``) on the chosen ``attn2`` blocks that recomputes ``softmax(q kᵀ · scale)`` from the
block's own ``to_q`` / ``to_k`` projections of its inputs, in float32, so gradients flow back to the text
context; MONAI's code is used as is. Layer indices count the U-Net's ``attn2`` blocks in module order
(down blocks, bottleneck, up blocks): 11 in the chest X-ray LDM; 4-7 = bottleneck + first three decoder blocks (the
training layers), 3, 4, 6, 7 = the published heatmap code's (last encoder block, bottleneck, decoder blocks 2-3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from cxrdata.errors import CxrdataError


class StopForward(Exception):
    """Raised by the last hook to skip the rest of the U-Net when nothing later is needed."""


def cross_attention_blocks(unet: nn.Module) -> list[tuple[str, nn.Module]]:
    """The U-Net's cross-attention blocks (``...attn2``) in module order."""
    found = [(name, m) for name, m in unet.named_modules() if name.endswith("attn2") and hasattr(m, "to_k")]
    if not found:
        raise CxrdataError("the U-Net has no cross-attention (attn2) blocks: is with_conditioning on?")
    return found


def attention_probs(block: nn.Module, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``softmax(q kᵀ · scale)`` of a MONAI ``CrossAttentionBlock`` averaged over heads: ``(B, N, L)``, float32."""
    b, n, _ = x.shape
    heads = block.num_heads
    q, k = block.to_q(x), block.to_k(context)  # under the caller's autocast, like the block itself
    with torch.autocast(device_type=q.device.type, enabled=False):  # scores and softmax in float32
        q = q.reshape(b, n, heads, -1).transpose(1, 2).float()
        k = k.reshape(b, context.shape[1], heads, -1).transpose(1, 2).float()
        return (torch.matmul(q, k.transpose(-1, -2)) * block.scale).softmax(dim=-1).mean(dim=1)


class AttentionRecorder:
    """Records the attention maps of U-Net ``attn2`` blocks ``layers`` while :meth:`run` is active.

    ``stop_after_last``: the hook of the last recorded layer raises :class:`StopForward`, which :meth:`run`
    swallows; the U-Net's remaining blocks are skipped (exact for any loss of the recorded maps only).
    """

    def __init__(self, unet: nn.Module, layers: Sequence[int], stop_after_last: bool = False) -> None:
        blocks = cross_attention_blocks(unet)
        bad = [i for i in layers if not 0 <= i < len(blocks)]
        if bad or not layers:
            raise CxrdataError(f"attention layers {list(layers)}: the U-Net has {len(blocks)} cross-attention "
                               "blocks (indices 0.." f"{len(blocks) - 1})")
        self.layers = tuple(sorted(set(layers)))
        self.names = {i: blocks[i][0] for i in self.layers}
        self.stop_after_last = stop_after_last
        self.maps: dict[int, torch.Tensor] = {}
        self._active = False
        self._handles = [blocks[i][1].register_forward_hook(self._hook(i), with_kwargs=True) for i in self.layers]

    def _hook(self, index: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            if not self._active:
                return
            x = args[0] if args else kwargs["x"]
            context = kwargs.get("context", args[1] if len(args) > 1 else None)
            if context is None:
                raise CxrdataError(f"{self.names[index]} ran without a text context")
            self.maps[index] = attention_probs(module, x, context)
            if self.stop_after_last and index == self.layers[-1]:
                raise StopForward

        return hook

    def run(self, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[int, torch.Tensor]:
        """Call ``forward(*args, **kwargs)`` and return ``{layer: (B, N, L) maps}`` of this call."""
        self.maps = {}
        self._active = True
        try:
            forward(*args, **kwargs)
        except StopForward:
            pass
        finally:
            self._active = False
        maps, self.maps = self.maps, {}
        missing = [i for i in self.layers if i not in maps]
        if missing:
            raise CxrdataError(f"cross-attention layers {missing} did not run")
        return maps

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
