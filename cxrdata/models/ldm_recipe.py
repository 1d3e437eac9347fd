"""The ``train ldm`` / ``heatmaps ldm`` recipe (``recipes/ldm-prompt-tuning*.yaml``): the frozen LDM, the
codebook, the training settings and the heatmap settings, every key and value checked.

Read by :func:`cxrdata.recipe.read_recipe` (``base:`` + overrides, the ``tiny`` section optional) and checked
by :func:`cxrdata.recipe.check_template` against :data:`TEMPLATE`, then value by value here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.recipe import apply_settings, check_template, read_recipe

RECIPE = "ldm-prompt-tuning"
TINY_RECIPE = "ldm-prompt-tuning-tiny"
RUN_FILE = "run.json"
EMBEDDINGS_FILE = "embeddings.safetensors"

TEMPLATE: dict[str, Any] = {
    "name": str,
    "description": str,
    "data": {"config": str, "split": str, "image_size": int, "fit": str},
    "model": {
        "bundle_files": {"autoencoder": list, "unet": list},
        "autoencoder": {"spatial_dims": int, "in_channels": int, "out_channels": int, "latent_channels": int,
                        "channels": list, "num_res_blocks": int, "norm_num_groups": int, "norm_eps": float,
                        "attention_levels": list, "with_encoder_nonlocal_attn": bool,
                        "with_decoder_nonlocal_attn": bool},
        "unet": {"spatial_dims": int, "in_channels": int, "out_channels": int, "channels": list,
                 "num_res_blocks": int, "attention_levels": list, "norm_num_groups": int, "norm_eps": float,
                 "resblock_updown": bool, "num_head_channels": list, "with_conditioning": bool,
                 "transformer_num_layers": int, "cross_attention_dim": int},
        "scheduler": {"num_train_timesteps": int, "schedule": str, "beta_start": float, "beta_end": float,
                      "prediction_type": str, "clip_sample": bool},
        "num_inference_steps": int,
        "latent_scale": float,
        "max_tokens": int,
    },
    "codebook": {"shared_subtokens": str, "and_token": str, "and_init": str},
    "attention": {"layers": list, "steps": list, "trajectory": str, "early_exit": bool},
    "loss": {"lambda_div": float, "lambda_loc": float, "epsilon": float, "alpha": float, "prior_scale": str,
             "jitter": float, "jitter_min_sigma": float},
    "train": {"batch_size": int, "steps_per_sample": int, "timestep_batch": int, "max_steps": int, "lr": float,
              "lr_warmup_steps": int, "weight_decay": float, "betas": list, "grad_clip": float, "seed": int,
              "precision": str, "checkpoint_every": int, "keep_checkpoints": int, "log_every": int,
              "cache_images": int, "inversion_batch": int, "compile": bool, "gradient_checkpointing": bool},
    "heatmap": {"layers": list, "steps": list, "trajectory": str, "size": int, "smoothing_sigma": float,
                "otsu": bool, "batch_size": int},
}
PRIOR_SCALES = ("peak", "attention")  # how L_loc scales the Gaussian prior (train.ldm_losses)
_CHOICES = {("data", "fit"): ("center_crop", "stretch"), ("attention", "trajectory"): ("inversion", "noise"),
            ("heatmap", "trajectory"): ("inversion", "noise"), ("train", "precision"): ("bf16", "fp16", "fp32"),
            ("codebook", "shared_subtokens"): ("separate", "shared"), ("loss", "prior_scale"): PRIOR_SCALES}
# Keys that do not change what a run computes (a resumed run may change them).
_RUN_ONLY = {("train", "max_steps"), ("train", "checkpoint_every"), ("train", "keep_checkpoints"),
             ("train", "log_every"), ("train", "cache_images"), ("train", "inversion_batch"), ("train", "compile"),
             ("train", "gradient_checkpointing")}
# Optional: `train ldm --tiny` without --ldm/--clip writes random-weight assets of the recipe's networks and a CLIP
# text encoder of these CLIPTextConfig arguments (hidden_size = the U-Net's cross_attention_dim) to RUN/weights/.
OPTIONAL = {"tiny": {"clip": dict}}


def load_ldm_recipe(name_or_path: str | Path = RECIPE) -> dict[str, Any]:
    """A ``train ldm`` recipe, every key and value checked."""
    return load_ldm_recipe_with(name_or_path, ())[0]


def load_ldm_recipe_with(name_or_path: str | Path, settings: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe with the command line's ``--set KEY=VALUE`` settings applied (every key and value checked
    after them), and those settings by key."""
    path, cfg = read_recipe(name_or_path, optional=frozenset(OPTIONAL))
    template = {**TEMPLATE, **{k: v for k, v in OPTIONAL.items() if k in cfg}}
    applied = apply_settings(cfg, settings, template, str(path)) if settings else {}
    check_template(cfg, template, str(path))
    where = f"recipe {path}" + (f" with --set {', '.join(applied)}" if applied else "")
    for (section, key), allowed in _CHOICES.items():
        if cfg[section][key] not in allowed:
            raise CxrdataError(f"{where}: {section}.{key} must be one of {allowed}, got {cfg[section][key]!r}")
    for section in ("attention", "heatmap"):
        steps = cfg[section]["steps"]
        n = cfg["model"]["num_inference_steps"]
        if (len(steps) != 2 or not all(isinstance(s, int) for s in steps) or not 0 <= steps[0] < steps[1] <= n):
            raise CxrdataError(f"{where}: {section}.steps must be [first, end) with 0 <= first < end <= {n}")
        if not cfg[section]["layers"] or not all(isinstance(i, int) for i in cfg[section]["layers"]):
            raise CxrdataError(f"{where}: {section}.layers must be a non-empty list of integers")
    positive = [("train", "batch_size"), ("train", "steps_per_sample"), ("train", "timestep_batch"),
                ("train", "checkpoint_every"), ("train", "log_every"), ("train", "inversion_batch"),
                ("heatmap", "batch_size"),
                ("data", "image_size")]
    for section, key in positive:
        if cfg[section][key] < 1:
            raise CxrdataError(f"{where}: {section}.{key} must be at least 1")
    return cfg, applied


def recipe_hash(cfg: dict[str, Any]) -> str:
    """Hash of what a run computes (run-only keys such as ``max_steps`` left out)."""
    reduced = json.loads(json.dumps(cfg))
    for section, key in _RUN_ONLY:
        reduced[section].pop(key, None)
    reduced.pop("name", None)
    reduced.pop("description", None)
    return config_hash(reduced)


def config_hash(config: Any) -> str:
    """sha256 (16 hex digits) of a JSON-able configuration, key order ignored."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
