"""LoFi's pretrained parts from local transformers folders: SigLIP(2) vision and text towers, a causal LM.

Weights come only from local folders (``--vision``, ``--text``, ``--llm``; a Hub id such as
``google/gemma-3-270m`` is looked up in the local Hugging Face cache, never downloaded); a folder that is
missing, incomplete or without a usable tokenizer is one line naming the flag and how to get the weights.
:func:`cxrdata.models.lofi_tiny.write_tiny_weights` writes tiny random ones in the same format (``--tiny``)
so tests run the same loading code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxrdata.errors import CxrdataError, first_line
from cxrdata.models.lofi_model import ModelSettings, Towers

VISION_TYPES = {"siglip": "siglip", "siglip_vision_model": "siglip", "siglip2": "siglip2",
                "siglip2_vision_model": "siglip2"}
TEXT_TYPES = {"siglip": "siglip", "siglip_text_model": "siglip", "siglip2": "siglip2", "siglip2_text_model": "siglip2"}
HOW_TO_GET = {
    "vision": "a SigLIP2 so400m patch16 512 folder, e.g. on a machine with internet `huggingface-cli download "
              "google/siglip2-so400m-patch16-512 --local-dir PATH` (or `save_pretrained` of a SiglipModel) and copy it",
    "text": "the SigLIP text tower: the same SiglipModel folder as --vision (default) or a SiglipTextModel folder",
    "llm": "a Gemma-3-270M folder with its tokenizer, e.g. `huggingface-cli download google/gemma-3-270m --local-dir "
           "PATH` on a machine with internet (licence acceptance needed), then copy it",
}



# A tokenizer a transformers folder can load from: one of these (tokenizer.json: fast tokenizers; tokenizer.model /
# spiece.model / sentencepiece.bpe.model: SentencePiece, e.g. Gemma, SigLIP; vocab.json + merges.txt: byte-level
# BPE, e.g. CLIP; vocab.txt: WordPiece). Without any, transformers 4.57 fails with an AttributeError (`endswith`).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
                   "vocab.txt", "tekken.json")
MIN_TRANSFORMERS = "4.56"  # `from_pretrained(dtype=...)`; 4.50-4.55 pass it on to the model's __init__ and crash


def check_transformers() -> None:
    """One line, not a TypeError deep in ``from_pretrained``, when the installed transformers is too old."""
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) < Version(MIN_TRANSFORMERS):
        raise CxrdataError(f"transformers {transformers.__version__} is installed; train lofi needs "
                           f">={MIN_TRANSFORMERS},<5 (pip install 'cxrdata[train]')")


def model_folder(path: str | Path | None, role: str, flag: str, tokenizer: bool = False) -> Path:
    """A transformers folder (config.json + weights, + tokenizer files when ``tokenizer``) or a CxrdataError naming
    the flag, what is missing and how to get it."""
    if path is None:
        raise CxrdataError(f"{flag} PATH is required (or --tiny for tiny random weights): {HOW_TO_GET[role]}. "
                           "Nothing is downloaded at run time.")
    folder = Path(path)
    if not folder.exists() and "/" in str(path) and not str(path).startswith((".", "/")):
        folder = _cached_snapshot(str(path), flag, role)
    if not (folder / "config.json").is_file():
        raise CxrdataError(f"{flag} {folder}: no transformers model folder there (config.json missing); "
                           f"expected {HOW_TO_GET[role]}")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise CxrdataError(f"{flag} {folder}: config.json but no weights (*.safetensors); expected {HOW_TO_GET[role]}")
    if tokenizer and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise CxrdataError(f"{flag} {folder}: no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); copy the "
                           f"model's tokenizer (tokenizer.json, tokenizer_config.json, ...) into the folder too")
    return folder


def _cached_snapshot(repo_id: str, flag: str, role: str) -> Path:
    """A Hub repo id already in the local Hugging Face cache (``HF_HUB_CACHE``); never downloads."""
    from huggingface_hub import snapshot_download

    try:  # HF_HUB_CACHE read now (huggingface_hub reads it once, at import)
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE")))
    except Exception:  # every failure means "not in the local cache"
        raise CxrdataError(f"{flag} {repo_id}: neither a folder nor a model in the local Hugging Face cache; "
                           f"expected {HOW_TO_GET[role]}") from None


def _model_type(folder: Path) -> str:
    return str(json.loads((folder / "config.json").read_text()).get("model_type", ""))


def _read_tensor(folder: Path, name: str) -> torch.Tensor | None:
    """One tensor of a (possibly sharded) safetensors checkpoint, or None."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as fh:
            if name in fh.keys():  # noqa: SIM118 - safe_open has no __contains__
                return fh.get_tensor(name)
    return None



def load_towers(vision_path: Path, text_path: Path, llm_path: Path, settings: ModelSettings) -> Towers:
    """Load the three pretrained parts from local folders (no network: ``local_files_only``)."""
    check_transformers()
    from transformers import AutoModelForCausalLM

    kind = VISION_TYPES.get(_model_type(vision_path))
    if kind is None:
        raise CxrdataError(f"--vision {vision_path}: model_type {_model_type(vision_path)!r} is not SigLIP/SigLIP2 "
                           f"(expected one of {', '.join(VISION_TYPES)})")
    text_kind = TEXT_TYPES.get(_model_type(text_path))
    if text_kind is None:
        raise CxrdataError(f"--text {text_path}: model_type {_model_type(text_path)!r} is not a SigLIP text tower "
                           f"(expected one of {', '.join(TEXT_TYPES)})")
    dtype = settings.frozen_dtype
    if kind == "siglip":
        from transformers import SiglipVisionModel as VisionModel
    else:
        from transformers import Siglip2VisionModel as VisionModel
    if text_kind == "siglip":
        from transformers import SiglipTextModel as TextModel
    else:
        from transformers import Siglip2TextModel as TextModel
    common: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
    vision = VisionModel.from_pretrained(str(vision_path), **common)
    text = TextModel.from_pretrained(str(text_path), **common)
    llm_kwargs = dict(common)
    if settings.attn_implementation:
        llm_kwargs["attn_implementation"] = settings.attn_implementation
    try:
        llm = AutoModelForCausalLM.from_pretrained(str(llm_path), **llm_kwargs)
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # transformers' errors for broken folders
        raise CxrdataError(f"--llm {llm_path}: the model does not load ({first_line(exc)})") from None
    tokenizer = _tokenizer(llm_path, "--llm")
    text_tokenizer = _tokenizer(text_path, "--text")
    image_token_id, box_ids = extend_tokenizer(tokenizer, settings.image_token, settings.box_tokens)
    resize_embeddings(llm, len(tokenizer))
    scale, bias = _read_tensor(text_path, "logit_scale"), _read_tensor(text_path, "logit_bias")
    return Towers(vision, kind, int(vision.config.patch_size), text, text_tokenizer, llm, tokenizer, image_token_id,
                  box_ids, None if scale is None else float(scale.reshape(-1)[0]),
                  None if bias is None else float(bias.reshape(-1)[0]))


def _tokenizer(folder: Path, flag: str) -> Any:
    """``AutoTokenizer`` of a local folder; any failure (the tokenizers library raises bare ``Exception``s for a
    damaged tokenizer.json) is one line naming the folder."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # every failure means "this folder's tokenizer is unusable"
        raise CxrdataError(f"{flag} {folder}: its tokenizer does not load ({first_line(exc)})") from None


def extend_tokenizer(tokenizer: Any, image_token: str, box_tokens: Sequence[str]) -> tuple[int, list[int]]:
    """Add the image placeholder (special) and the box format's tokens (normal, kept by decode); their ids."""
    if tokenizer.convert_tokens_to_ids(image_token) in (None, tokenizer.unk_token_id):
        tokenizer.add_special_tokens({"additional_special_tokens": [image_token]},
                                     replace_additional_special_tokens=False)
    vocab = tokenizer.get_vocab()
    missing = [t for t in box_tokens if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return int(tokenizer.convert_tokens_to_ids(image_token)), [int(i) for i in tokenizer.convert_tokens_to_ids(
        list(box_tokens))]


def resize_embeddings(llm: nn.Module, size: int) -> None:
    """Grow the LM's (tied) embeddings to ``size`` rows; new rows = the mean of the old ones (deterministic)."""
    emb = llm.get_input_embeddings()
    old = emb.weight.shape[0]
    if size <= old:
        return
    llm.resize_token_embeddings(size, mean_resizing=False)
    with torch.no_grad():
        weight = llm.get_input_embeddings().weight
        weight[old:] = weight[:old].float().mean(0).to(weight.dtype)
        out = llm.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != weight.data_ptr():
            out.weight[old:] = out.weight[:old].float().mean(0).to(out.weight.dtype)


