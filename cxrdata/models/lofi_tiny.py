"""Tiny random LoFi weights in the real transformers formats (``train lofi --tiny``; CPU tests, smoke runs)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (no download), as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


def write_tiny_weights(folder: str | Path, texts: Sequence[str], tiny: Mapping[str, Any],
                       seed: int = 0) -> dict[str, Path]:
    """Tiny random SigLIP (vision + text) and Gemma-3 models + a tokenizer trained on ``texts``, saved in transformers'
    format under ``folder/{siglip,llm}``; returns the ``vision``/``text``/``llm`` paths. Deterministic in ``seed``."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, SiglipConfig, SiglipModel

    root = Path(folder)
    paths = {"vision": root / "siglip", "text": root / "siglip", "llm": root / "llm"}
    if all((p / "config.json").is_file() for p in paths.values()):
        return paths
    tokenizer = train_tiny_tokenizer(texts, int(tiny["vocab_size"]))
    vocab = len(tokenizer)
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(seed)
    v, t, g = dict(tiny["vision"]), dict(tiny["text"]), dict(tiny["llm"])
    siglip = SiglipModel(SiglipConfig(
        vision_config=dict(v), text_config={**t, "vocab_size": vocab, "projection_size": v["hidden_size"], **ids}))
    siglip.save_pretrained(paths["vision"])
    tokenizer.save_pretrained(paths["text"])
    llm = Gemma3ForCausalLM(Gemma3TextConfig(**g, vocab_size=vocab, **ids))
    llm.save_pretrained(paths["llm"])
    tokenizer.save_pretrained(paths["llm"])
    return paths
