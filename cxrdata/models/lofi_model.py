"""The LoFi network (SPEC "Trainers", ``train lofi``): SigLIP(2) image + text towers, a projector, a small causal LM.

    image ─ SigLIP(2) vision (LoRA r=16) ─┬─ pooled (MAP head) ────────── sigmoid loss ── SigLIP text (LoRA)
                                          └─ 1,024 patch tokens ─ Projector ─ 256 visual tokens
    [bos] <image>×256 prompt "\\n" target [eos] ─ causal LM (LoRA r=4), visual tokens at the <image> positions
                                          ─ report captioning loss + location-aware captioning loss

LoFi's code is not public; the projector is our reading of "pools the 1,024 patch tokens to 256 (2×2 average
pool, attention-pooling heads, MLP to the LLM width)": the 2×2-average-pooled tokens are the queries of a
multi-head attention over all patch tokens (residual), then LayerNorm and a 2-layer GELU MLP to the LM width.

:class:`LofiModel` encodes, embeds and generates; the three losses are the trainer's
(``cxrdata.train.lofi_objective``). The pretrained parts load from local folders (:mod:`lofi_towers`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cxrdata.errors import CxrdataError
from cxrdata.models.lofi_inputs import image_prefix


@dataclass(frozen=True)
class LoraSettings:
    """LoRA of one tower; ``r = 0`` freezes the tower."""

    r: int
    alpha: float
    dropout: float = 0.0
    target_modules: str | list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSettings:
    image_size: int
    vision_lora: LoraSettings
    text_lora: LoraSettings
    llm_lora: LoraSettings
    text_max_length: int = 64
    pool: int = 2
    projector_heads: int = 8
    image_token: str = "<image_soft_token>"
    box_tokens: tuple[str, ...] = ()
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False
    frozen_dtype: torch.dtype = torch.float32
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    init_logit_scale: float = math.log(10.0)
    init_logit_bias: float = -10.0


def _apply_lora(model: nn.Module, lora: LoraSettings,
                trainable_tokens: dict[str, list[int]] | None = None) -> nn.Module:
    """Freeze ``model`` and add LoRA adapters (plus trainable token rows); ``r = 0``: frozen, no adapters."""
    from peft import LoraConfig, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    if lora.r <= 0 and not trainable_tokens:
        return model
    config = LoraConfig(r=max(lora.r, 1), lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora.target_modules if lora.r > 0 else [], bias="none",
                        trainable_token_indices=trainable_tokens or None)
    return get_peft_model(model, config)


class VisionTower(nn.Module):
    """SigLIP (fixed resolution) or SigLIP2 (NaFlex, fed square patch grids) vision model -> patches + pooled."""

    def __init__(self, model: nn.Module, kind: str, image_size: int, patch_size: int) -> None:
        super().__init__()
        self.model, self.kind, self.patch = model, kind, patch_size
        if image_size % patch_size:
            raise CxrdataError(f"image size {image_size} is not a multiple of the vision patch size {patch_size}")
        self.grid = image_size // patch_size
        native = getattr(model.config, "image_size", image_size)
        self.interpolate = kind == "siglip" and native != image_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "siglip":
            out = self.model(pixel_values=pixel_values, interpolate_pos_encoding=self.interpolate)
        else:
            b, c, h, w = pixel_values.shape
            p, nh, nw = self.patch, h // self.patch, w // self.patch
            patches = pixel_values.reshape(b, c, nh, p, nw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, nh * nw, p * p * c)
            mask = torch.ones(b, nh * nw, dtype=torch.long, device=pixel_values.device)
            shapes = torch.tensor([[nh, nw]] * b, device=pixel_values.device)
            out = self.model(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes)
        return out.last_hidden_state, out.pooler_output


class Projector(nn.Module):
    """Patch tokens (B, g², Dv) -> (B, (g/pool)², D_llm): average-pool queries, attention pooling, MLP."""

    def __init__(self, vision_dim: int, llm_dim: int, grid: int, pool: int = 2, heads: int = 8) -> None:
        super().__init__()
        if grid % pool:
            raise CxrdataError(f"patch grid {grid} is not divisible by the projector pool {pool}")
        if vision_dim % heads:
            raise CxrdataError(f"vision width {vision_dim} is not divisible by {heads} projector heads")
        self.grid, self.pool = grid, pool
        self.norm_kv = nn.LayerNorm(vision_dim)
        self.norm_q = nn.LayerNorm(vision_dim)
        self.attention = nn.MultiheadAttention(vision_dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(vision_dim)
        self.mlp = nn.Sequential(nn.Linear(vision_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))

    @property
    def num_tokens(self) -> int:
        return (self.grid // self.pool) ** 2

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, _, d = patches.shape
        grid = patches.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        queries = F.avg_pool2d(grid, self.pool).flatten(2).transpose(1, 2)
        kv = self.norm_kv(patches)
        pooled, _ = self.attention(self.norm_q(queries), kv, kv, need_weights=False)
        return self.mlp(self.norm(queries + pooled))


@dataclass
class Towers:
    """What :func:`load_towers` returns (tokenizers already extended)."""

    vision: nn.Module
    vision_kind: str
    patch_size: int
    text: nn.Module
    text_tokenizer: Any
    llm: nn.Module
    tokenizer: Any
    image_token_id: int
    box_token_ids: list[int]
    logit_scale: float | None
    logit_bias: float | None


class LofiModel(nn.Module):
    """The trainable whole: towers with LoRA, projector, learnable SigLIP temperature and bias."""

    def __init__(self, towers: Towers, settings: ModelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.tokenizer, self.text_tokenizer = towers.tokenizer, towers.text_tokenizer
        self.image_token_id = towers.image_token_id
        vision_dim = int(towers.vision.config.hidden_size)
        text_dim = int(getattr(towers.text.config, "projection_size", None) or towers.text.config.hidden_size)
        if text_dim != vision_dim:
            raise CxrdataError(f"the SigLIP text tower embeds to {text_dim} dims but the vision tower to {vision_dim}: "
                               "use the text tower of the same SigLIP model")
        if settings.gradient_checkpointing:
            for tower in (towers.vision, towers.text, towers.llm):
                tower.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.vision = VisionTower(_apply_lora(towers.vision, settings.vision_lora), towers.vision_kind,
                                  settings.image_size, towers.patch_size)
        self.text = _apply_lora(towers.text, settings.text_lora)
        box_rows = {"embed_tokens": sorted(set(towers.box_token_ids))} if towers.box_token_ids else None
        self.llm = _apply_lora(towers.llm, settings.llm_lora, box_rows)
        llm_dim = int(towers.llm.config.hidden_size)
        self.projector = Projector(vision_dim, llm_dim, self.vision.grid, settings.pool, settings.projector_heads)
        scale = settings.init_logit_scale if towers.logit_scale is None else towers.logit_scale
        bias = settings.init_logit_bias if towers.logit_bias is None else towers.logit_bias
        self.logit_scale = nn.Parameter(torch.tensor([scale]))
        self.logit_bias = nn.Parameter(torch.tensor([bias]))
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        self._decoder = base.get_decoder()
        self._lm_head = base.get_output_embeddings()
        self._softcap = getattr(base.config, "final_logit_softcapping", None)

    @property
    def num_image_tokens(self) -> int:
        return self.projector.num_tokens

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor by name (what a checkpoint stores; frozen weights come from the folders)."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: Mapping[str, torch.Tensor]) -> None:
        params = dict(self.named_parameters())
        want = {n for n, p in params.items() if p.requires_grad}
        if set(state) != want:
            extra, missing = sorted(set(state) - want)[:3], sorted(want - set(state))[:3]
            raise CxrdataError(f"checkpoint does not fit this model (missing {missing}, unexpected {extra}); "
                               "was it written with another recipe or other weights?")
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def transformer_layers(self) -> list[nn.Module]:
        """Every tower's repeated layers (the items of each ``...layers`` ``ModuleList``: SigLIP encoder layers,
        the LM's decoder layers): the blocks ``train.compile`` compiles one by one."""
        return [layer for name, module in self.named_modules()
                if name.split(".")[-1] == "layers" and isinstance(module, nn.ModuleList) for layer in module]

    # -- towers ----------------------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(visual tokens for the LM, pooled image embedding for the sigmoid loss)."""
        patches, pooled = self.vision(pixel_values)
        return self.projector(patches), pooled

    def encode_texts(self, input_ids: torch.Tensor) -> torch.Tensor:
        """SigLIP text embeddings (the text tower's head output; no attention mask, as SigLIP was trained)."""
        return self.text(input_ids=input_ids).pooler_output

    def embed_sequence(self, input_ids: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """LM input embeddings with the visual tokens written at the image placeholder positions."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        mask = input_ids == self.image_token_id
        if int(mask.sum()) != visual.shape[0] * visual.shape[1]:
            raise RuntimeError(f"{int(mask.sum())} image placeholders for {visual.shape[0]}×{visual.shape[1]} "
                               "visual tokens")
        return embeds.masked_scatter(mask.unsqueeze(-1), visual.to(embeds.dtype))

    def logits_at(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self._lm_head(hidden)
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    @torch.no_grad()
    def generate(self, pixel_values: torch.Tensor, prompt_ids: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy continuation of ``[bos] <image>×K prompt`` per image (left-padded batch); new token ids."""
        visual, _ = self.encode_images(pixel_values)
        tok = self.tokenizer
        pad = tok.pad_token_id
        seqs = [image_prefix(tok, self.image_token_id, self.num_image_tokens) + p for p in prompt_ids]
        width = max(map(len, seqs))
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=pixel_values.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=pixel_values.device)
        embeds = self.embed_sequence(ids, visual)
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        out = base.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                            do_sample=False, pad_token_id=pad, eos_token_id=tok.eos_token_id)
        result = []
        for row in out.tolist():
            row = [t for t in row if t != pad]
            if tok.eos_token_id in row:
                row = row[: row.index(tok.eos_token_id)]
            result.append(row)
        return result
