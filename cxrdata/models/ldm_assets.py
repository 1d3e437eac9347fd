"""Random-weight stand-ins for ``--ldm`` and ``--clip`` in the real file formats (tests, benchmarks, smoke runs,
``train ldm --tiny``): the MONAI bundle's old checkpoint keys, a transformers CLIP folder."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxrdata.models.ldm_model import build_autoencoder, build_unet


def legacy_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """A MONAI network's state dict under the old MONAI Generative key names (what the bundle ships)."""
    from monai.networks.nets import AutoencoderKL

    out = {}
    for key, value in net.state_dict().items():
        old = re.sub(r"\.attn\.(to_[qkv])\.", r".\1.", key).replace(".attn.out_proj.", ".proj_attn.")
        if not isinstance(net, AutoencoderKL) and "transformer_blocks" in old:
            old = re.sub(r"\.(attn[12])\.out_proj\.", r".\1.to_out.0.", old)
        out[old.replace("postconv", "conv")] = value.clone()
    return out


def write_clip_tokenizer(folder: Path, merged_words: Sequence[str] = ()) -> Any:
    """A byte-level CLIP BPE tokenizer (256 byte symbols, each also with ``</w>``; ``merged_words`` get merges
    that make them single tokens, every other word is spelled letter by letter); pad token ``!`` as in SD 2.1."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    merges: list[tuple[str, str]] = []
    for word in merged_words:
        parts = [*word[:-1], word[-1] + "</w>"]
        current = parts[0]
        for part in parts[1:]:
            pair = (current, part)
            if pair not in merges:
                merges.append(pair)
            current += part
            if current not in vocab:
                vocab.append(current)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!")
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def write_random_assets(folder: str | Path, model_cfg: Mapping[str, Any], clip_config: Mapping[str, Any],
                        seed: int = 0, merged_words: Sequence[str] = ("left", "right", "lower", "and")
                        ) -> tuple[Path, Path]:
    """Random-weight stand-ins for ``--ldm`` and ``--clip`` in the real formats: ``folder/bundle/models/*.pth``
    (old MONAI Generative keys) and ``folder/clip/{text_encoder,tokenizer}/`` (transformers). ``clip_config``:
    ``CLIPTextConfig`` arguments; ``vocab_size`` defaults to the tokenizer's."""
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(folder)
    torch.manual_seed(seed)
    bundle = root / "bundle"
    (bundle / "models").mkdir(parents=True, exist_ok=True)
    files = model_cfg["bundle_files"]
    torch.save(legacy_state_dict(build_autoencoder(model_cfg["autoencoder"])), bundle / files["autoencoder"][0])
    torch.save(legacy_state_dict(build_unet(model_cfg["unet"])), bundle / files["unet"][0])
    clip = root / "clip"
    tokenizer = write_clip_tokenizer(clip / "tokenizer", merged_words)
    args = {"vocab_size": len(tokenizer), "max_position_embeddings": int(model_cfg["max_tokens"]),
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, **dict(clip_config)}
    CLIPTextModel(CLIPTextConfig(**args)).save_pretrained(str(clip / "text_encoder"))
    return bundle, clip
