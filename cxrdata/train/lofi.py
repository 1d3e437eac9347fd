"""``cxrdata train lofi``: the data pipeline, the training loop with exact resume, the run folder.

Run folder::

    RUN/config.json                    the resolved recipe, weight folders, data folders, versions
    RUN/weights/{siglip,llm}/          --tiny only: the tiny random towers + tokenizer (transformers format)
    RUN/checkpoints/step-NNNNNNN.pt    trainable tensors, AdamW, scheduler, RNG states, step (common.py)
    RUN/metrics.csv, RUN/tensorboard/  loss, sigmoid, caption, location, lr, grad_norm, step_s, samples_per_s

Loading a trained run and predicting with it: :mod:`cxrdata.models.lofi_run`, :mod:`cxrdata.models.lofi_predict`.

Several GPUs: ``torchrun --standalone --nproc_per_node N -m cxrdata.cli train lofi --run-dir RUN ...`` (torch DDP;
``--run-dir`` because torchrun's own parser takes ``--run`` for its ``--run-path``). The recipe's batch size is
global and split over the processes; each rank reads its slice of every global batch. The sigmoid loss gathers the
image/text embeddings of all ranks (the global batch's negatives, exact global gradient); the captioning losses are
per-rank token means, averaged by DDP. The logged losses are averaged over the ranks (one all-reduce per logged
step); rank 0 alone writes metrics and checkpoints; the RNG state saved is rank 0's (the default recipes use no
dropout, so resuming is exact per rank too). Speed settings (docs/gpu.md): ``--precision`` (bf16 autocast, also on
the CPU; fp32 master weights), ``--compile`` (``torch.compile`` per transformer layer), gradient checkpointing
(``model.gradient_checkpointing``), DataLoader workers (``data.num_workers``, ``persistent_workers``,
``prefetch_factor``; pinned memory on CUDA).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.models.lofi_run import build_model, target_settings, weight_paths
from cxrdata.train.lofi_recipe import (
    check_losses_have_data,
    check_recipe,
    load_lofi_recipe_with,
    resolve_source,
    source_candidates,
)


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
    precision: str | None = None  # autocast on any device; default: the recipe's on CUDA, fp32 on the CPU
    compile: bool | None = None  # replace the recipe's train.compile
    gradient_checkpointing: bool | None = None  # replace the recipe's model.gradient_checkpointing
    settings: Sequence[str] = ()  # `--set KEY=VALUE`: recipe values replaced (new runs only)


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
            tiny_folder: Path | None = None, precision: str | None = None) -> tuple[Prepared, dict[str, Path]]:
    """Load the sources, write tiny weights when asked (``tiny_folder``), build the model and the data pipeline."""
    from cxrdata.models.lofi_tiny import write_tiny_weights
    from cxrdata.models.lofi_towers import model_folder
    from cxrdata.train.common import seed_everything
    from cxrdata.train.lofi_data import Collator, LofiExamples, MixPlan, SourceSpec, load_source
    from cxrdata.train.lofi_objective import LofiObjective

    targets = target_settings(recipe)
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
    model = build_model(recipe, weights, device, LofiObjective, precision)
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

    from cxrdata.models.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
    from cxrdata.models.runtime import autocast, compile_blocks, hf_offline, pick_device, run_precision
    from cxrdata.train.common import (
        MetricsLogger,
        init_distributed,
        loader_settings,
        mean_over_ranks,
        save_checkpoint,
        set_rng_state,
    )
    from cxrdata.train.lofi_data import StepBatches, to_device

    hf_offline()
    dist_info = init_distributed()
    device = pick_device(opts.device, dist_info.local_rank)
    run = Path(opts.run)
    cfg_path = run / "config.json"
    data = [Path(d) for d in opts.data]
    if opts.resume:
        if not cfg_path.is_file():
            raise CxrdataError(f"--resume: {run} has no config.json (not a `train lofi` run)")
        config = json.loads(cfg_path.read_text())
        if opts.settings:
            raise CxrdataError("--set changes a recipe, which a resumed run keeps: drop --set, or start a new --run")
        recipe = check_recipe(config["recipe"], f"{cfg_path} (its 'recipe')")
        overrides = config.get("overrides", {})
        weights = weight_paths(run, config)
        data = data or [Path(d) for d in config["data"]]
        tiny = bool(config["tiny"])
    else:
        if list_checkpoints(run):
            raise CxrdataError(f"{run} already holds checkpoints: add --resume to continue it, or choose a new --run")
        if opts.tiny and any(p is not None for p in (opts.vision, opts.text, opts.llm)):
            raise CxrdataError("--tiny writes its own random weights: drop --vision/--text/--llm")
        recipe, overrides = load_lofi_recipe_with(opts.recipe or ("lofi-tiny" if opts.tiny else "lofi"), opts.settings)
        if opts.tiny and "tiny" not in recipe:
            raise CxrdataError("--tiny needs a recipe with a 'tiny' section (e.g. lofi-tiny)")
        if opts.seed is not None:
            recipe["train"]["seed"] = opts.seed
        tiny = opts.tiny
        weights = {"vision": opts.vision, "text": opts.text, "llm": opts.llm}
    if not data:
        raise CxrdataError("give --data OUT (a build output folder; repeat for several)")
    # run-only settings: how fast, not what (a resumed run may change them; config.json keeps the first run's)
    if opts.compile is not None:
        recipe["train"]["compile"] = opts.compile
    if opts.gradient_checkpointing is not None:
        recipe["model"]["gradient_checkpointing"] = opts.gradient_checkpointing
    precision = run_precision(device, recipe["train"]["precision"], opts.precision)
    run.mkdir(parents=True, exist_ok=True)
    tiny_folder = run / "weights" if tiny else None
    if tiny and dist_info.distributed and not dist_info.is_main:
        torch.distributed.barrier()  # rank 0 writes the tiny weights first
    prepared, weights = prepare(recipe, data, None if tiny else weights, device, tiny_folder, precision)
    if tiny and dist_info.distributed and dist_info.is_main:
        torch.distributed.barrier()
    if dist_info.is_main and not opts.resume:
        stored = {k: str(p.relative_to(run)) if tiny else str(Path(p).resolve()) for k, p in weights.items()}
        cfg_path.write_text(json.dumps({"trainer": "lofi", "recipe": recipe, "overrides": overrides,
                                        "weights": stored, "tiny": tiny,
                                        "data": [str(Path(d).resolve()) for d in data], "precision": precision,
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
                                         **loader_settings(recipe["data"], device))
    if t["compile"]:
        compile_blocks(model.transformer_layers())
    net: Any = model
    if dist_info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
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
            with autocast(device, precision):
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
            result.losses.append(parts["loss"])  # this rank's
            now = time.perf_counter()
            log_now = step % int(t["log_every"]) == 0 or step == end
            if log_now:
                parts = mean_over_ranks(parts, dist_info)  # every rank logs at the same steps
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
        last = repr(result.losses[-1]) if result.losses else "nan"
        print(f"rank {dist_info.rank} of {dist_info.world_size}: steps {start}..{step} done, last local loss {last}",
              flush=True)
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
