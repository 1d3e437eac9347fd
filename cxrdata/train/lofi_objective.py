"""LoFi's training objective: the sigmoid, report captioning and location-aware captioning losses of a batch."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from cxrdata.models.lofi_model import LofiModel
from cxrdata.train.lofi_losses import IGNORE, distributed, gather_pairs, sigmoid_loss, token_loss


class LofiObjective(LofiModel):
    """The LoFi network whose forward pass is the training loss (what DDP wraps and the trainer steps)."""

    def forward(self, batch: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> dict[str, torch.Tensor]:
        """The three losses and their weighted sum (``loss``); logits only at the labelled positions."""
        visual, pooled = self.encode_images(batch["pixel_values"])
        zero = pooled.sum() * 0.0
        out: dict[str, torch.Tensor] = {}
        report_rows = batch["report_rows"]
        out["sigmoid"] = zero
        if weights.get("sigmoid", 0.0) and (report_rows.numel() or distributed()):  # every DDP rank gathers
            texts = self.encode_texts(batch["text_ids"]) if report_rows.numel() else pooled[:0]
            images, texts, groups = gather_pairs(pooled[report_rows], texts, batch["groups"])
            if images.shape[0]:
                out["sigmoid"] = sigmoid_loss(images, texts, self.logit_scale, self.logit_bias, groups)
        embeds = self.embed_sequence(batch["input_ids"], visual)
        hidden = self._decoder(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                               use_cache=False).last_hidden_state
        labels = batch["labels"][:, 1:]
        hidden = hidden[:, :-1]
        is_report = (batch["task"] == 0)[:, None].expand_as(labels)
        for name, rows in (("caption", is_report), ("location", ~is_report)):
            keep = (labels != IGNORE) & rows
            out[name] = token_loss(hidden[keep], labels[keep], self.logits_at) if bool(keep.any()) else zero
        out["loss"] = sum(float(weights.get(k, 0.0)) * out[k] for k in ("sigmoid", "caption", "location"))
        return out

