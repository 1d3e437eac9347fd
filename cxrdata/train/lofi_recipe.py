"""The ``train lofi`` recipe (``recipes/lofi*.yaml``): read by :func:`cxrdata.recipe.read_recipe` (``base:`` +
overrides), its keys and types checked by :func:`cxrdata.recipe.check_template` against :data:`TEMPLATE`,
then the values only LoFi knows (box format, splits of the data sources, which losses need which rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import built_configs
from cxrdata.recipe import apply_settings, check_template, read_recipe
from cxrdata.targets.box_text import FORMATS

LORA: dict[str, Any] = {"r": int, "alpha": float, "dropout": float, "target_modules": (str, list)}
TEMPLATE: dict[str, Any] = {
    "trainer": str,
    "model": {"image_size": int, "vision_lora": LORA, "text_lora": LORA, "llm_lora": LORA, "text_max_length": int,
              "projector_pool": int, "projector_heads": int, "image_token": str, "attn_implementation": (str, None),
              "gradient_checkpointing": bool, "image_mean": list, "image_std": list},
    "targets": {"box_format": str, "p_grounding": float, "report_sections": list, "report_fallback": list,
                "report_prompt": str, "max_prompt_tokens": int, "max_target_tokens": int},
    "loss": {"sigmoid": float, "caption": float, "location": float},
    "data": {"split": str, "sources": list, "num_workers": int, "persistent_workers": bool, "prefetch_factor": int},
    "optim": {"lr": float, "weight_decay": float, "betas": list, "eps": float, "warmup_steps": int,
              "min_lr_ratio": float, "grad_clip": (float, None)},
    "train": {"batch_size": int, "epochs": int, "max_steps": (int, None), "precision": str, "seed": int,
              "log_every": int, "checkpoint_every": int, "keep_last": int, "compile": bool},
}
# Speed settings added after the first runs were written: a recipe (or a run's config.json) without them gets
# these values, which are what those runs did. They change how fast a run goes, not what it computes.
RUN_DEFAULTS = {("data", "persistent_workers"): True, ("data", "prefetch_factor"): 2, ("train", "compile"): False}
# Top-level keys a recipe may have or not; `tiny`: the sizes of the random towers `--tiny` writes.
OPTIONAL: dict[str, Any] = {"name": str, "description": str, "tiny": dict}
SOURCE_KEYS = {"config", "task", "weight", "optional", "one_reader"}
# Which task's rows feed each loss: a loss with a non-zero weight and no rows is an error before training.
LOSS_TASKS = {"sigmoid": "report", "caption": "report", "location": "regions"}


def load_lofi_recipe(name_or_path: str | Path) -> dict[str, Any]:
    """A bundled recipe by name (``lofi``, ``lofi-tiny``) or a YAML file, every key checked."""
    return load_lofi_recipe_with(name_or_path, ())[0]


def load_lofi_recipe_with(name_or_path: str | Path, settings: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recipe with the command line's ``--set KEY=VALUE`` settings applied, and those settings by key."""
    path, doc = read_recipe(name_or_path, optional=frozenset(OPTIONAL))
    if not isinstance(doc, dict) or not settings:
        return check_recipe(doc, str(path)), {}
    applied = apply_settings(doc, settings, _template(doc), str(path))
    return check_recipe(doc, f"{path} with --set {', '.join(applied)}"), applied


def _template(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {**TEMPLATE, **{k: v for k, v in OPTIONAL.items() if k in doc}}


def check_recipe(doc: Any, source: str = "(lofi)") -> dict[str, Any]:
    """``doc`` as a ``train lofi`` recipe (``source`` names it in the errors), or one CxrdataError."""
    def fail(message: str) -> CxrdataError:
        return CxrdataError(f"recipe {source}: {message}")

    if not isinstance(doc, dict):
        raise fail("must be a YAML mapping")
    if doc.get("trainer") != "lofi":
        raise fail(f"'trainer' must be 'lofi' for `train lofi`, got {doc.get('trainer')!r}")
    for (section, key), value in RUN_DEFAULTS.items():
        if isinstance(doc.get(section), dict):
            doc[section].setdefault(key, value)
    check_template(doc, _template(doc), source)
    if doc["targets"]["box_format"] not in FORMATS:
        raise fail(f"'targets.box_format' must be one of {', '.join(FORMATS)}")
    if not 0.0 <= float(doc["targets"]["p_grounding"]) <= 1.0:
        raise fail("'targets.p_grounding' must be in [0, 1]")
    if doc["train"]["precision"] not in ("bf16", "fp16", "fp32"):
        raise fail("'train.precision' must be bf16, fp16 or fp32")
    if doc["data"]["num_workers"] < 0 or doc["data"]["prefetch_factor"] < 1:
        raise fail("'data.num_workers' must be 0 or more and 'data.prefetch_factor' 1 or more")
    sources = doc["data"]["sources"]
    if not sources:
        raise fail("'data.sources' is empty")
    for src in sources:
        if not isinstance(src, dict) or not {"config", "task"} <= set(src) or set(src) - SOURCE_KEYS:
            raise fail(f"a data source needs 'config' and 'task' (optional: weight, optional, one_reader): {src!r}")
        names = src["config"]
        if not (isinstance(names, str) or (isinstance(names, list) and names
                                            and all(isinstance(n, str) for n in names))):
            raise fail(f"data source config must be a name or a list of names (first found wins): {names!r}")
        if src["task"] not in ("report", "regions"):
            raise fail(f"data source {names!r}: task must be 'report' or 'regions'")
    return doc


def source_candidates(raw: Mapping[str, Any]) -> list[str]:
    """The config names a recipe source accepts, in order (``config: name`` or ``config: [name, ...]``)."""
    return [raw["config"]] if isinstance(raw["config"], str) else list(raw["config"])


def resolve_source(data: Sequence[Path], raw: Mapping[str, Any]) -> str | None:
    """The first of a source's config names built under one of ``data`` (None when none is)."""
    built = {name for folder in data for name in built_configs(folder)}
    return next((name for name in source_candidates(raw) if name in built), None)


def check_losses_have_data(recipe: Mapping[str, Any], sources: Sequence[Any], data: Sequence[Path]) -> None:
    """One line when a loss with a non-zero weight would train on nothing (instead of logging 0.0 forever)."""
    for loss, task in LOSS_TASKS.items():
        weight = float(recipe["loss"][loss])
        if not weight or any(len(s) for s in sources if s.spec.task == task):
            continue
        found = {s.spec.config: s for s in sources if s.spec.task == task}
        seen = []
        for raw in recipe["data"]["sources"]:
            if raw["task"] != task:
                continue
            hit = next((found[n] for n in source_candidates(raw) if n in found), None)
            seen.append(" or ".join(source_candidates(raw)) if hit is None else
                        f"{hit.spec.config} (0 usable rows" + "".join(
                            f", {n} {why}" for why, n in sorted(hit.left_out.items())) + ")")
        build = {"regions": "`cxrdata build ms-cxr|padchest-gr|vindr|imagenome --recipe lofi-regions`",
                 "report": "`cxrdata build mimic`"}[task]
        raise CxrdataError(
            f"loss {loss!r} has weight {weight:g} but no {recipe['data']['split']} rows of task {task!r}: looked for "
            f"{'; '.join(seen) or 'no source of that task'} under {', '.join(map(str, data))}; build them with "
            f"{build} and pass that OUT with --data, or set loss.{loss}: 0 in a recipe")
