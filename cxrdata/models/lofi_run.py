"""A LoFi model from its recipe and weight folders, or from a trained run folder (``train lofi``).

Run folder (what :func:`load_run` reads)::

    RUN/config.json                    the resolved recipe, weight folders (relative: inside RUN), data folders
    RUN/weights/{siglip,llm}/          --tiny only: the tiny random towers + tokenizer (transformers format)
    RUN/checkpoints/step-NNNNNNN.pt    the trainable tensors (frozen weights come from the folders)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.models.checkpoints import latest_checkpoint, load_checkpoint
from cxrdata.models.lofi_inputs import TargetSettings
from cxrdata.models.lofi_model import LofiModel, LoraSettings, ModelSettings
from cxrdata.models.runtime import hf_offline, pick_device

CONFIG_FILE = "config.json"


def model_settings(recipe: Mapping[str, Any], frozen_dtype: Any) -> ModelSettings:
    """The network of a recipe (its ``model`` section and the box format's tokens)."""
    from cxrdata.targets.box_text import special_tokens

    m = recipe["model"]

    def lora(d: Mapping[str, Any]) -> LoraSettings:
        return LoraSettings(int(d["r"]), float(d["alpha"]), float(d["dropout"]), d["target_modules"])

    return ModelSettings(
        image_size=m["image_size"], vision_lora=lora(m["vision_lora"]), text_lora=lora(m["text_lora"]),
        llm_lora=lora(m["llm_lora"]), text_max_length=m["text_max_length"], pool=m["projector_pool"],
        projector_heads=m["projector_heads"], image_token=m["image_token"],
        box_tokens=special_tokens(recipe["targets"]["box_format"]), attn_implementation=m["attn_implementation"],
        gradient_checkpointing=m["gradient_checkpointing"], frozen_dtype=frozen_dtype,
        image_mean=tuple(m["image_mean"]), image_std=tuple(m["image_std"]))


def target_settings(recipe: Mapping[str, Any]) -> TargetSettings:
    """A recipe's ``targets`` section."""
    t = recipe["targets"]
    return TargetSettings(box_format=t["box_format"], p_grounding=float(t["p_grounding"]),
                          report_sections=tuple(t["report_sections"]), report_fallback=tuple(t["report_fallback"]),
                          report_prompt=t["report_prompt"], max_prompt_tokens=t["max_prompt_tokens"],
                          max_target_tokens=t["max_target_tokens"])


def weight_paths(run: Path, config: Mapping[str, Any]) -> dict[str, Path]:
    """A run's weight folders (``config.json``'s ``weights``; relative ones lie inside the run)."""
    paths = {k: Path(v) for k, v in config["weights"].items()}
    return {k: p if p.is_absolute() else run / p for k, p in paths.items()}


def build_model(recipe: Mapping[str, Any], weights: Mapping[str, Path], device: Any,
                model_class: type[LofiModel] = LofiModel, precision: str | None = None) -> Any:
    """The model on ``device`` (frozen weights in bf16/fp16 on GPU when the run's precision says so: the recipe's,
    or ``precision``; trainable tensors stay float32); ``model_class``: a subclass, e.g. the trainer's, with its
    losses."""
    import torch

    from cxrdata.models.lofi_towers import load_towers
    from cxrdata.models.runtime import PRECISIONS, run_precision

    frozen = PRECISIONS[run_precision(device, recipe["train"]["precision"], precision)] or torch.float32
    if device.type != "cuda":
        frozen = torch.float32  # the CPU keeps frozen weights in fp32 (autocast casts per op)
    settings = model_settings(recipe, frozen)
    towers = load_towers(weights["vision"], weights["text"], weights["llm"], settings)
    return model_class(towers, settings).to(device)


@dataclass
class LoadedRun:
    model: Any
    recipe: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Path
    step: int
    device: Any

    @property
    def targets(self) -> TargetSettings:
        return target_settings(self.recipe)


def load_run(run: str | Path, device: str = "auto") -> LoadedRun:
    """A trained run's model (frozen folders + the latest checkpoint's trainable tensors), in eval mode."""
    hf_offline()
    run = Path(run)
    path = run / CONFIG_FILE
    if not path.is_file():
        raise CxrdataError(f"--run {run}: not a `train lofi` run folder (no {CONFIG_FILE})")
    config = json.loads(path.read_text())
    if config.get("trainer") != "lofi":
        raise CxrdataError(f"--run {run}: a {config.get('trainer')!r} run, not lofi")
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise CxrdataError(f"--run {run}: no checkpoint yet (train first)")
    dev = pick_device(device)
    model = build_model(config["recipe"], weight_paths(run, config), dev)
    state = load_checkpoint(ckpt)
    model.load_trainable_state(state["model"])
    model.eval()
    return LoadedRun(model, config["recipe"], config, ckpt, int(state["step"]), dev)
