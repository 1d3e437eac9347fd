"""The frozen LDM prompted through the token codebook: CLIP with the codebook installed, prompts as context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cxrdata.errors import CxrdataError
from cxrdata.models.ldm_codebook import Codebook, PromptEncoder, TokenTable, build_token_table, install_codebook
from cxrdata.models.ldm_model import FrozenLDM


class PromptedLDM:
    """The frozen LDM of a recipe with its codebook (CLIP's own rows, or tuned ``weight``) and the empty prompt's
    context ``uncond`` (DDIM inversion runs with it)."""

    def __init__(self, cfg: dict[str, Any], ldm: FrozenLDM, weight: torch.Tensor | None = None,
                 table: TokenTable | None = None) -> None:
        self.cfg = cfg
        self.ldm = ldm
        vocab = ldm.text_encoder.get_input_embeddings()
        vocab_size = getattr(vocab, "num_embeddings", None) or vocab.base.num_embeddings
        cb = cfg["codebook"]
        built = build_token_table(ldm.tokenizer, vocab_size, cb["shared_subtokens"], cb["and_token"], cb["and_init"])
        if table is not None and table.to_json() != built.to_json():
            raise CxrdataError("the tuned embeddings were made with another CLIP tokenizer or codebook settings")
        self.table = built
        self.codebook: Codebook = install_codebook(ldm.text_encoder, built, weight)
        self.encoder = PromptEncoder(built, ldm.tokenizer, int(cfg["model"]["max_tokens"]))
        with torch.no_grad():
            self.uncond = ldm.encode_text(self.encoder.batch([""])[0]).detach()

    def context(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(CLIP context (B, L, D), content mask (B, L))`` of prompts."""
        ids, content = self.encoder.batch(prompts)
        if not bool(content.any(dim=1).all()):
            bad = [p for p, c in zip(prompts, content, strict=True) if not bool(c.any())]
            raise CxrdataError(f"prompt(s) without any non-special token: {bad}")
        return self.ldm.encode_text(ids), content.to(self.ldm.device)

