"""The LoFi model (SPEC "Trainers", ``train lofi``): SigLIP(2) image + text towers, a projector, a small causal LM.

    image ─ SigLIP(2) vision (LoRA r=16) ─┬─ pooled (MAP head) ────────── sigmoid loss ── SigLIP text (LoRA)
                                          └─ 1,024 patch tokens ─ Projector ─ 256 visual tokens
    [bos] <image>×256 prompt "\\n" target [eos] ─ causal LM (LoRA r=4), visual tokens at the <image> positions
                                          ─ report captioning loss + location-aware captioning loss

LoFi's code is not public; the projector is our reading of "pools the 1,024 patch tokens to 256 (2×2 average
pool, attention-pooling heads, MLP to the LLM width)": the 2×2-average-pooled tokens are the queries of a
multi-head attention over all patch tokens (residual), then LayerNorm and a 2-layer GELU MLP to the LM width.

Weights come only from local transformers folders (``--vision``, ``--text``, ``--llm``; a Hub id such as
``google/gemma-3-270m`` is looked up in the local Hugging Face cache, never downloaded); :func:`write_tiny_weights`
writes tiny random ones in the same format (``--tiny``) so tests run the same loading code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cxrdata.errors import CxrdataError
from cxrdata.train.lofi_losses import IGNORE, distributed, gather_pairs, sigmoid_loss, token_loss

TASKS = ("report", "grounding", "dense_caption")
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
        raise CxrdataError(f"--llm {llm_path}: the model does not load ({_first_line(exc)})") from None
    tokenizer = _tokenizer(llm_path, "--llm")
    text_tokenizer = _tokenizer(text_path, "--text")
    image_token_id, box_ids = extend_tokenizer(tokenizer, settings.image_token, settings.box_tokens)
    resize_embeddings(llm, len(tokenizer))
    scale, bias = _read_tensor(text_path, "logit_scale"), _read_tensor(text_path, "logit_bias")
    return Towers(vision, kind, int(vision.config.patch_size), text, text_tokenizer, llm, tokenizer, image_token_id,
                  box_ids, None if scale is None else float(scale.reshape(-1)[0]),
                  None if bias is None else float(bias.reshape(-1)[0]))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tokenizer(folder: Path, flag: str) -> Any:
    """``AutoTokenizer`` of a local folder; any failure (the tokenizers library raises bare ``Exception``s for a
    damaged tokenizer.json) is one line naming the folder."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # every failure means "this folder's tokenizer is unusable"
        raise CxrdataError(f"{flag} {folder}: its tokenizer does not load ({_first_line(exc)})") from None


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

    # -- training ----------------------------------------------------------------------------------------------
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


def image_prefix(tokenizer: Any, image_token_id: int, num_tokens: int) -> list[int]:
    """``[bos] <image>×num_tokens`` (no bos when the tokenizer has none)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + [image_token_id] * num_tokens


# -- tiny random weights ------------------------------------------------------------------------------------------
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
