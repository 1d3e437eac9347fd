"""``cxrdata train lofi``: recipe, training loop with exact resume, loading a run, LoFi box predictions.

Run folder::

    RUN/config.json                    the resolved recipe, weight folders, data folders, versions
    RUN/weights/{siglip,llm}/          --tiny only: the tiny random towers + tokenizer (transformers format)
    RUN/checkpoints/step-NNNNNNN.pt    trainable tensors, AdamW, scheduler, RNG states, step (common.py)
    RUN/metrics.csv, RUN/tensorboard/  loss, sigmoid, caption, location, lr, grad_norm, step_s, samples_per_s

Several GPUs: ``torchrun --standalone --nproc_per_node N -m cxrdata.cli train lofi --run-dir RUN ...`` (torch DDP;
``--run-dir`` because torchrun's own parser takes ``--run`` for its ``--run-path``). The recipe's batch size is
global and split over the processes; each rank reads its slice of every global batch. The sigmoid loss gathers the
image/text embeddings of all ranks (the global batch's negatives, exact global gradient); the captioning losses are
per-rank token means, averaged by DDP. Rank 0 logs (its captioning losses) and writes checkpoints; the RNG state
saved is rank 0's (the default recipes use no dropout, so resuming is exact per rank too).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cxrdata.errors import CxrdataError
from cxrdata.targets.box_text import FORMATS

RECIPE_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "model": {"image_size": int, "vision_lora": dict, "text_lora": dict, "llm_lora": dict, "text_max_length": int,
              "projector_pool": int, "projector_heads": int, "image_token": str,
              "attn_implementation": (str, type(None)),
              "gradient_checkpointing": bool, "image_mean": list, "image_std": list},
    "targets": {"box_format": str, "p_grounding": (int, float), "report_sections": list, "report_fallback": list,
                "report_prompt": str, "max_prompt_tokens": int, "max_target_tokens": int},
    "loss": {"sigmoid": (int, float), "caption": (int, float), "location": (int, float)},
    "data": {"split": str, "sources": list, "num_workers": int},
    "optim": {"lr": (int, float), "weight_decay": (int, float), "betas": list, "eps": (int, float),
              "warmup_steps": int, "min_lr_ratio": (int, float), "grad_clip": (int, float, type(None))},
    "train": {"batch_size": int, "epochs": int, "max_steps": (int, type(None)), "precision": str, "seed": int,
              "log_every": int, "checkpoint_every": int, "keep_last": int},
}
LORA_KEYS = {"r", "alpha", "dropout", "target_modules"}
SOURCE_KEYS = {"config", "task", "weight", "optional", "one_reader"}
TOP_KEYS = {"name", "trainer", "description", "tiny", *RECIPE_KEYS}


def load_lofi_recipe(name_or_path: str | Path) -> dict[str, Any]:
    """A bundled recipe by name (``lofi``, ``lofi-tiny``) or a YAML file, every key checked."""
    from cxrdata.recipe import recipes_dir

    path = Path(name_or_path)
    if not path.suffix:
        path = recipes_dir() / f"{name_or_path}.yaml"
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CxrdataError(f"recipe {name_or_path!r} not found ({path}); bundled: lofi, lofi-tiny") from None
    except (OSError, yaml.YAMLError) as exc:
        raise CxrdataError(f"recipe {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    return check_recipe(doc, str(path))


def check_recipe(doc: Any, where: str = "recipe") -> dict[str, Any]:
    def fail(message: str) -> CxrdataError:
        return CxrdataError(f"{where}: {message}")

    if not isinstance(doc, dict):
        raise fail("must be a YAML mapping")
    if doc.get("trainer") != "lofi":
        raise fail(f"'trainer' must be 'lofi' for `train lofi`, got {doc.get('trainer')!r}")
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(TOP_KEYS))})")
    for section, keys in RECIPE_KEYS.items():
        block = doc.get(section)
        if not isinstance(block, dict):
            raise fail(f"section '{section}' missing or not a mapping")
        if set(block) != set(keys):
            extra, missing = sorted(set(block) - set(keys)), sorted(set(keys) - set(block))
            raise fail(f"'{section}': unknown {extra or '[]'}, missing {missing or '[]'}")
        for key, kind in keys.items():
            if not isinstance(block[key], kind) or (kind is int and isinstance(block[key], bool)):
                raise fail(f"'{section}.{key}' has the wrong type: {block[key]!r}")
    for name in ("vision_lora", "text_lora", "llm_lora"):
        if set(doc["model"][name]) != LORA_KEYS:
            raise fail(f"'model.{name}' needs exactly the keys {', '.join(sorted(LORA_KEYS))}")
    if doc["targets"]["box_format"] not in FORMATS:
        raise fail(f"'targets.box_format' must be one of {', '.join(FORMATS)}")
    if not 0.0 <= float(doc["targets"]["p_grounding"]) <= 1.0:
        raise fail("'targets.p_grounding' must be in [0, 1]")
    if doc["train"]["precision"] not in ("bf16", "fp16", "fp32"):
        raise fail("'train.precision' must be bf16, fp16 or fp32")
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


# Which task's rows feed each loss: a loss with a non-zero weight and no rows is an error before training.
LOSS_TASKS = {"sigmoid": "report", "caption": "report", "location": "regions"}


def source_candidates(raw: Mapping[str, Any]) -> list[str]:
    """The config names a recipe source accepts, in order (``config: name`` or ``config: [name, ...]``)."""
    return [raw["config"]] if isinstance(raw["config"], str) else list(raw["config"])


def resolve_source(data: Sequence[Path], raw: Mapping[str, Any]) -> str | None:
    """The first of a source's config names built under one of ``data`` (None when none is)."""
    from cxrdata.train.common import find_config_dir

    return next((name for name in source_candidates(raw) if find_config_dir(data, name) is not None), None)


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


@dataclass
class TrainOptions:
    data: Sequence[Path]
    run: Path
    recipe: str | Path | None = None  # default: lofi (lofi-tiny with --tiny)
    vision: Path | None = None
    text: Path | None = None  # default: --vision (a full SiglipModel folder)
    llm: Path | None = None
    tiny: bool = False
    max_steps: int | None = None  # stop after this global step (the schedule is unchanged)
    resume: bool = False
    device: str = "auto"
    seed: int | None = None
    quiet: bool = True


@dataclass
class TrainResult:
    run: Path
    start_step: int
    step: int
    total_steps: int
    steps_per_epoch: int
    sources: dict[str, int]
    left_out: dict[str, dict[str, int]]  # config -> reason -> rows left out
    missing_optional: list[str]
    losses: list[float] = field(default_factory=list)
    checkpoint: Path | None = None
    is_main: bool = True  # False on DDP ranks other than 0


# -- building blocks shared by training, evaluation and prediction -------------------------------------------------
def _settings(recipe: Mapping[str, Any], frozen_dtype: Any) -> Any:
    from cxrdata.targets.box_text import special_tokens
    from cxrdata.train.lofi_model import LoraSettings, ModelSettings

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


def _targets(recipe: Mapping[str, Any]) -> Any:
    from cxrdata.train.lofi_data import TargetSettings

    t = recipe["targets"]
    return TargetSettings(box_format=t["box_format"], p_grounding=float(t["p_grounding"]),
                          report_sections=tuple(t["report_sections"]), report_fallback=tuple(t["report_fallback"]),
                          report_prompt=t["report_prompt"], max_prompt_tokens=t["max_prompt_tokens"],
                          max_target_tokens=t["max_target_tokens"])


def _weight_paths(run: Path, config: Mapping[str, Any]) -> dict[str, Path]:
    paths = {k: Path(v) for k, v in config["weights"].items()}
    return {k: p if p.is_absolute() else run / p for k, p in paths.items()}


def build_model(recipe: Mapping[str, Any], weights: Mapping[str, Path], device: Any) -> Any:
    """The LofiModel on ``device`` (frozen weights in bf16/fp16 on GPU when the recipe's precision says so)."""
    import torch

    from cxrdata.train.lofi_model import LofiModel, load_towers

    precision = recipe["train"]["precision"]
    frozen = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    if device.type != "cuda":
        frozen = torch.float32
    settings = _settings(recipe, frozen)
    towers = load_towers(weights["vision"], weights["text"], weights["llm"], settings)
    return LofiModel(towers, settings).to(device)


@dataclass
class LoadedRun:
    model: Any
    recipe: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Path
    step: int
    device: Any


def load_run(run: str | Path, device: str = "auto") -> LoadedRun:
    """A trained run's model (frozen folders + the latest checkpoint's trainable tensors), in eval mode."""
    from cxrdata.train.common import hf_offline, latest_checkpoint, load_checkpoint, pick_device

    hf_offline()
    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise CxrdataError(f"--run {run}: not a `train lofi` run folder (no config.json)")
    config = json.loads(cfg_path.read_text())
    if config.get("trainer") != "lofi":
        raise CxrdataError(f"--run {run}: a {config.get('trainer')!r} run, not lofi")
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise CxrdataError(f"--run {run}: no checkpoint yet (train first)")
    dev = pick_device(device)
    model = build_model(config["recipe"], _weight_paths(run, config), dev)
    state = load_checkpoint(ckpt)
    model.load_trainable_state(state["model"])
    model.eval()
    return LoadedRun(model, config["recipe"], config, ckpt, int(state["step"]), dev)


class CosineSchedule:
    """Linear warm-up then cosine decay to ``min_ratio`` of the peak, over ``total`` steps (a LambdaLR factor)."""

    def __init__(self, warmup: int, total: int, min_ratio: float = 0.0) -> None:
        self.warmup, self.total, self.min_ratio = warmup, total, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    from cxrdata import __version__

    return {"cxrdata": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}


@dataclass
class Prepared:
    """Everything a trainer step needs, before the loop (also used by the benchmark and the tests)."""

    recipe: dict[str, Any]
    model: Any
    examples: Any
    collator: Any
    plan: Any
    sources: list[Any]
    missing_optional: list[str]
    device: Any


def prepare(recipe: dict[str, Any], data: Sequence[Path], weights: Mapping[str, Path] | None, device: Any,
            tiny_folder: Path | None = None) -> tuple[Prepared, dict[str, Path]]:
    """Load the sources, write tiny weights when asked (``tiny_folder``), build the model and the data pipeline."""
    from cxrdata.train.common import seed_everything
    from cxrdata.train.lofi_data import Collator, LofiExamples, MixPlan, SourceSpec, load_source
    from cxrdata.train.lofi_model import model_folder, write_tiny_weights

    targets = _targets(recipe)
    split, seed = recipe["data"]["split"], recipe["train"]["seed"]
    sources, missing = [], []
    for raw in recipe["data"]["sources"]:
        found = resolve_source(data, raw)
        if found is None:
            names = " or ".join(source_candidates(raw))
            if raw.get("optional"):
                missing.append(names)
                continue
            raise CxrdataError(f"no shards of config {names} under {', '.join(map(str, data))} "
                               f"(the recipe needs it for task {raw['task']!r}; build it with `cxrdata build`)")
        sources.append(load_source(data, SourceSpec(**{**raw, "config": found}), split, targets))
    if not any(len(s) for s in sources):
        raise CxrdataError(f"no usable {split} rows in {', '.join(s.spec.config for s in sources) or 'any source'}")
    check_losses_have_data(recipe, sources, data)
    if tiny_folder is not None:
        texts = [t for s in sources for t in s.texts] + [r["phrase"] for s in sources for rs in s.regions for r in rs]
        texts += [targets.report_prompt, 'Detect all instances of "".', "Describe the regions: [[0,1000]]",
                  "[[" + ",".join(str(i) for i in range(1001)) + "]]"]
        weights = write_tiny_weights(tiny_folder, texts, recipe["tiny"], seed)
    assert weights is not None
    weights = {"vision": model_folder(weights.get("vision"), "vision", "--vision"),
               "text": model_folder(weights.get("text") or weights.get("vision"), "text",
                                    "--text" if weights.get("text") else "--vision (its text tower)", tokenizer=True),
               "llm": model_folder(weights.get("llm"), "llm", "--llm", tokenizer=True)}
    seed_everything(seed)
    model = build_model(recipe, weights, device)
    m = recipe["model"]
    plan = MixPlan([len(s) for s in sources], [s.spec.weight for s in sources], seed)
    examples = LofiExamples(sources, plan, targets, m["image_size"], m["image_mean"], m["image_std"], seed)
    collator = Collator(model.tokenizer, model.text_tokenizer, model.image_token_id, model.num_image_tokens,
                        m["text_max_length"], targets)
    return Prepared(recipe, model, examples, collator, plan, sources, missing, device), weights


def make_optimizer(model: Any, recipe: Mapping[str, Any], total_steps: int) -> tuple[Any, Any]:
    """AdamW (weight decay on matrices only) and the warm-up + cosine LambdaLR."""
    import torch

    o = recipe["optim"]
    params = model.trainable_parameters()
    groups = [{"params": [p for _, p in params if p.ndim >= 2], "weight_decay": float(o["weight_decay"])},
              {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=float(o["lr"]), betas=tuple(o["betas"]), eps=float(o["eps"]))
    schedule = CosineSchedule(int(o["warmup_steps"]), total_steps, float(o["min_lr_ratio"]))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def train_lofi(opts: TrainOptions) -> TrainResult:
    """Train (or resume) a LoFi run; see the module docstring for the run folder."""
    import torch

    from cxrdata.train.common import (
        MetricsLogger,
        hf_offline,
        init_distributed,
        latest_checkpoint,
        list_checkpoints,
        load_checkpoint,
        pick_device,
        save_checkpoint,
        set_rng_state,
    )
    from cxrdata.train.lofi_data import StepBatches, to_device

    hf_offline()
    dist_info = init_distributed()
    device = pick_device(opts.device, dist_info)
    run = Path(opts.run)
    cfg_path = run / "config.json"
    data = [Path(d) for d in opts.data]
    if opts.resume:
        if not cfg_path.is_file():
            raise CxrdataError(f"--resume: {run} has no config.json (not a `train lofi` run)")
        config = json.loads(cfg_path.read_text())
        recipe = check_recipe(config["recipe"], f"{cfg_path} recipe")
        weights = _weight_paths(run, config)
        data = data or [Path(d) for d in config["data"]]
        tiny = bool(config["tiny"])
    else:
        if list_checkpoints(run):
            raise CxrdataError(f"{run} already holds checkpoints: add --resume to continue it, or choose a new --run")
        if opts.tiny and any(p is not None for p in (opts.vision, opts.text, opts.llm)):
            raise CxrdataError("--tiny writes its own random weights: drop --vision/--text/--llm")
        recipe = load_lofi_recipe(opts.recipe or ("lofi-tiny" if opts.tiny else "lofi"))
        if opts.tiny and "tiny" not in recipe:
            raise CxrdataError("--tiny needs a recipe with a 'tiny' section (e.g. lofi-tiny)")
        if opts.seed is not None:
            recipe["train"]["seed"] = opts.seed
        tiny = opts.tiny
        weights = {"vision": opts.vision, "text": opts.text, "llm": opts.llm}
    if not data:
        raise CxrdataError("give --data OUT (a build output folder; repeat for several)")
    run.mkdir(parents=True, exist_ok=True)
    tiny_folder = run / "weights" if tiny else None
    if tiny and dist_info.distributed and not dist_info.is_main:
        torch.distributed.barrier()  # rank 0 writes the tiny weights first
    prepared, weights = prepare(recipe, data, None if tiny else weights, device, tiny_folder)
    if tiny and dist_info.distributed and dist_info.is_main:
        torch.distributed.barrier()
    if dist_info.is_main and not opts.resume:
        stored = {k: str(p.relative_to(run)) if tiny else str(Path(p).resolve()) for k, p in weights.items()}
        cfg_path.write_text(json.dumps({"trainer": "lofi", "recipe": recipe, "weights": stored, "tiny": tiny,
                                        "data": [str(Path(d).resolve()) for d in data],
                                        "versions": _versions()}, indent=1) + "\n")
    model = prepared.model
    t = recipe["train"]
    batch_size = int(t["batch_size"])
    steps_per_epoch = prepared.plan.epoch_len // batch_size
    total = int(t["max_steps"] or t["epochs"] * max(steps_per_epoch, 1))
    optimizer, scheduler = make_optimizer(model, recipe, total)
    start = 0
    ckpt = latest_checkpoint(run) if opts.resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt)
        model.load_trainable_state(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start = int(state["step"])
    end = min(total, opts.max_steps) if opts.max_steps is not None else total
    sampler = StepBatches(prepared.plan.epoch_len, batch_size, start, max(start, end), dist_info.rank,
                          dist_info.world_size)
    loader = torch.utils.data.DataLoader(prepared.examples, batch_sampler=sampler, collate_fn=prepared.collator,
                                         num_workers=int(recipe["data"]["num_workers"]),
                                         pin_memory=device.type == "cuda")
    net: Any = model
    if dist_info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    precision = t["precision"] if device.type == "cuda" else "fp32"
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    weights_loss = {k: float(v) for k, v in recipe["loss"].items()}
    logger = MetricsLogger(run, start) if dist_info.is_main else None
    result = TrainResult(run, start, start, total, steps_per_epoch, {s.spec.config: len(s) for s in prepared.sources},
                         {s.spec.config: s.left_out for s in prepared.sources}, prepared.missing_optional,
                         is_main=dist_info.is_main)
    params = [p for _, p in model.trainable_parameters()]
    clip = recipe["optim"]["grad_clip"]
    model.train()
    step, tick = start, time.perf_counter()
    try:
        for batch in _one_line_errors(loader):
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = net(batch, weights_loss)
            scaler.scale(out["loss"]).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float(clip) if clip else math.inf)
            scaler.step(optimizer)
            scaler.update()
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            result.step = step
            parts = {k: float(out[k].detach()) for k in ("loss", "sigmoid", "caption", "location")}
            result.losses.append(parts["loss"])
            now = time.perf_counter()
            log_now = step % int(t["log_every"]) == 0 or step == end
            if logger is not None and log_now:
                logger.log(step, {**parts, "lr": lr, "grad_norm": float(grad_norm),
                                  "epoch": (step - 1) // steps_per_epoch, "step_s": now - tick,
                                  "samples_per_s": batch_size / max(now - tick, 1e-9)})
            if dist_info.is_main and (step % int(t["checkpoint_every"]) == 0 or step == end):
                result.checkpoint = save_checkpoint(run, step, {
                    "model": model.trainable_state(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()}, keep_last=int(t["keep_last"]))
            if not opts.quiet and dist_info.is_main and log_now:
                print(f"step {step}/{total} loss {parts['loss']:.4f} (sigmoid {parts['sigmoid']:.4f}, caption "
                      f"{parts['caption']:.4f}, location {parts['location']:.4f}) lr {lr:.2e}", flush=True)
            tick = time.perf_counter()  # step time: data wait + compute, without checkpoint writing
    finally:
        if logger is not None:
            logger.close()
    if dist_info.distributed and not opts.quiet:
        print(f"rank {dist_info.rank} of {dist_info.world_size}: steps {start}..{step} done", flush=True)
    return result


def _one_line_errors(batches: Any) -> Any:
    """The loader's batches; a CxrdataError raised in a loader worker comes back carrying the worker's traceback
    text (torch's ExceptionWrapper): keep its own message only."""
    try:
        yield from batches
    except CxrdataError as exc:
        text = str(exc).strip()
        if "Traceback" not in text:
            raise
        last = text.splitlines()[-1]
        raise CxrdataError(last.split("CxrdataError: ", 1)[-1]) from None


# -- LoFi's boxes as a predictions file ---------------------------------------------------------------------------
BOXES_FORMAT = "cxrdata-boxes/1"
PHRASE_COLUMNS = ("phrase", "class_name", "prompt", "category")


def predict_boxes(run: str | Path, data: Sequence[Path], config: str, split: str, out: str | Path,
                  phrase_column: str | None = None, batch_size: int = 16, max_new_tokens: int = 64,
                  device: str = "auto", limit: int | None = None) -> dict[str, Any]:
    """Ground each record's phrase with ``Detect all instances of "{phrase}".``, decode the generated box text
    (``text_to_boxes`` in the run's box format) and write the predictions JSON (see :data:`BOXES_FORMAT`)::

        {"format": "cxrdata-boxes/1", "model": "lofi", "run": ..., "checkpoint": ..., "step": N,
         "box_format": "lofi", "config": ..., "split": ..., "phrase_column": "phrase",
         "records": {"<record id>": {"phrase": ..., "text": "<generated>", "boxes": [[x_min, y_min, x_max, y_max]],
                                     "error": null | "<why the text did not parse>"}}}

    Boxes are canonical: normalised to [0, 1] of the original image (``original_width`` x ``original_height``).
    """
    import torch

    from cxrdata.targets.box_text import BoxTextError, text_to_boxes
    from cxrdata.targets.regions import GROUNDING_PROMPT
    from cxrdata.train.common import config_columns, find_config_dir, load_shards
    from cxrdata.train.lofi_data import Collator, pixel_tensor

    loaded = load_run(run, device)
    recipe, model = loaded.recipe, loaded.model
    folder = find_config_dir(data, config)
    if folder is None:
        raise CxrdataError(f"no shards of config {config!r} under {', '.join(map(str, data))}")
    names = config_columns(folder)
    column = phrase_column or next((c for c in PHRASE_COLUMNS if c in names), None)
    if column is None or column not in names:
        tried = phrase_column or ", ".join(PHRASE_COLUMNS)
        raise CxrdataError(f"config {config!r} has no phrase column to ground (tried {tried})")
    ds = load_shards(data, config, split, ["id", "image", "original_width", "original_height", column])
    count = len(ds) if limit is None else min(limit, len(ds))
    targets, m = _targets(recipe), recipe["model"]
    collator = Collator(model.tokenizer, model.text_tokenizer, model.image_token_id, model.num_image_tokens,
                        m["text_max_length"], targets)
    fmt = targets.box_format
    records: dict[str, Any] = {}
    for first in range(0, count, batch_size):
        cols = ds[first:min(first + batch_size, count)]  # slicing decodes the images
        rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
        pixels = torch.stack([pixel_tensor(r["image"], m["image_size"], m["image_mean"], m["image_std"]) for r in rows])
        prompts = [GROUNDING_PROMPT.format(phrase=" ".join(str(r[column] or "").split())) for r in rows]
        with torch.autocast(loaded.device.type, dtype=torch.bfloat16, enabled=loaded.device.type == "cuda"):
            generated = model.generate(pixels.to(loaded.device), [collator.prompt_ids(p) for p in prompts],
                                       max_new_tokens)
        for row, prompt, ids in zip(rows, prompts, generated, strict=True):
            text = model.tokenizer.decode(ids, skip_special_tokens=True)
            try:
                boxes, error = text_to_boxes(text, int(row["original_width"]), int(row["original_height"]), fmt), None
            except BoxTextError as exc:
                boxes, error = [], str(exc)
            records[str(row["id"])] = {"phrase": row[column], "prompt": prompt, "text": text,
                                       "boxes": [[round(float(v), 6) for v in b] for b in boxes], "error": error}
    doc = {"format": BOXES_FORMAT, "model": "lofi", "run": str(Path(run).resolve()),
           "checkpoint": loaded.checkpoint.name,
           "step": loaded.step, "box_format": fmt, "config": config, "split": split, "phrase_column": column,
           "records": records}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc
