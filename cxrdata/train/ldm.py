"""``cxrdata train ldm``: anatomy prompt tuning of a frozen chest X-ray LDM (seed 003, section 3.3).

Per step, for each sample (an ``ldm-prompts`` row: image, ``"{location} {pathology}"`` prompt, per-location
Gaussian LUT components): the prompt goes through CLIP with the codebook (:mod:`cxrdata.models.ldm_codebook`);
the image latent (VAE posterior mean x 0.3, cached per image) is taken to the inference steps of
``attention.steps`` (DDIM inversion with the empty prompt, cached per image and run on a step's new images
together with those of the next ``inversion_batch`` steps, or seeded forward noise); the U-Net
runs on ``timestep_batch`` (sample, timestep) pairs at a time and the attention hooks
(:mod:`cxrdata.models.ldm_attention`) return the maps of ``attention.layers`` with gradients;
L = λ_div L_div + λ_loc L_loc (:mod:`ldm_losses`), averaged over samples, timesteps and layers, updates the
location rows only (AdamW). The frozen model, its recipe and its inputs: :mod:`cxrdata.models`.

Run folder (``--out RUN``)::

    RUN/run.json                  recipe, its hash, inputs, cxrdata version
    RUN/checkpoints/step-NNNNNNN.pt   trainable rows, optimizer, LR schedule, RNG states, step
    RUN/metrics.csv, RUN/tensorboard/ loss, loss_div, loss_loc, lr, grad_norm, step_time_s, samples_per_s
    RUN/embeddings.safetensors    the tuned codebook (K x D) + token table + recipe hash (``heatmaps ldm``)

Resuming (``--resume``) restores all of it; data order, Gaussian jitter, timestep choice and noise are
functions of (seed, step, place in the global batch), so 2 + 2 resumed steps equal 4 straight steps, and N
processes with batch B equal one process with batch N x B. Multi-GPU: launch with
``torchrun --standalone --nproc_per_node N -m cxrdata.cli train ldm --out RUN ...``; each process takes
``batch_size`` samples of every step and the codebook gradients are averaged (torch.distributed all-reduce);
rank 0 writes the run.
Spell the run folder ``--out RUN`` or ``--run-dir RUN`` there: torchrun's own parser takes ``--run`` for an
abbreviation of its ``--run-path`` and stops ("ambiguous option").
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.io.layout import read_build
from cxrdata.models.checkpoints import latest_checkpoint, load_checkpoint
from cxrdata.models.inputs import decoded_row, rows_with_image
from cxrdata.models.ldm_attention import AttentionRecorder
from cxrdata.models.ldm_codebook import save_embeddings
from cxrdata.models.ldm_inputs import image_tensor
from cxrdata.models.ldm_model import FrozenLDM
from cxrdata.models.ldm_prompted import PromptedLDM
from cxrdata.models.ldm_recipe import (
    EMBEDDINGS_FILE,
    RECIPE,
    RUN_FILE,
    TINY_RECIPE,
    load_ldm_recipe_with,
    recipe_hash,
)
from cxrdata.models.runtime import hf_offline, pick_device, run_precision
from cxrdata.train import common
from cxrdata.train.ldm_losses import (
    crop_box,
    diversity_loss,
    localisation_loss,
    prompt_gaussian,
    spatial_map,
)
from cxrdata.train.ldm_sampling import LatentCache, sample_positions

TINY_ASSETS = "weights"  # `--tiny` without --ldm/--clip: the random-weight assets of the recipe, under RUN/


def tiny_assets(run: Path, cfg: dict[str, Any], dist: common.DistInfo) -> tuple[Path, Path]:
    """``--tiny`` without --ldm/--clip: random-weight bundle + CLIP in the real formats under RUN/weights/ (written
    once, by rank 0; a resumed run reuses them)."""
    from cxrdata.models.ldm_assets import write_random_assets

    if "tiny" not in cfg:
        raise CxrdataError(f"recipe {cfg['name']} has no 'tiny' section: --tiny without --ldm/--clip needs one "
                           f"(e.g. {TINY_RECIPE})")
    folder = run / TINY_ASSETS
    bundle, clip = folder / "bundle", folder / "clip"
    if dist.is_main and not (clip / "text_encoder" / "config.json").is_file():
        write_random_assets(folder, cfg["model"], cfg["tiny"]["clip"], seed=int(cfg["train"]["seed"]))
    if dist.distributed:
        import torch.distributed as tdist

        tdist.barrier()  # the other ranks wait for rank 0's files
    return bundle, clip


def location_components(row: dict[str, Any], lut: Any | None, record: str) -> tuple[list[np.ndarray], float]:
    """Per location of a row its ``(C, 4)`` Gaussian rows and the grid side (from the row, else from ``lut``)."""
    if lut is not None:
        terms = row.get("locations") or []
        if not terms:
            raise CxrdataError(f"record {record}: no locations to look up in the LUT")
        return [lut.params(t) for t in terms], float(lut.grid)
    gaussians, grid = row.get("gaussians"), row.get("lut_grid")
    if not gaussians or grid is None:
        raise CxrdataError(f"record {record}: no Gaussians (the shards were built without --lut); rebuild with "
                           "`cxrdata build mimic --recipe ldm-prompts --lut LUT` or pass --lut to train ldm")
    return [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gaussians], float(grid)


TRAIN_COLUMNS = ("id", "image", "prompt")


class LdmPromptTuner(PromptedLDM):
    """The prompted LDM of one recipe with its training loss."""

    def accumulate(self, recorder: AttentionRecorder, latents: Sequence[torch.Tensor], steps: Sequence[int],
                   prompts: Sequence[str], gaussians: Callable[[int], torch.Tensor],
                   timestep_batch: int) -> dict[str, float]:
        """Loss of one step and its gradient on the codebook (accumulated into ``codebook.trainable.grad``).

        ``latents[j]``: ``(len(steps), C, h, w)`` inputs of sample j at inference ``steps``; ``gaussians(P)``:
        ``(B, P)`` priors on a P-position map grid. The U-Net runs on ``timestep_batch`` (sample, step) pairs at
        a time; each chunk's loss is backpropagated to a detached copy of the text context, whose gradient then
        goes through CLIP once (exact, and the text graph is built once per step).
        """
        loss_cfg = self.cfg["loss"]
        dev = self.ldm.device
        context, content = self.context(prompts)
        leaf = context.detach().requires_grad_(True)
        pairs = [(j, k) for j in range(len(prompts)) for k in range(len(steps))]
        per_pair = len(pairs) * len(recorder.layers)
        sums = {"loss": 0.0, "loss_div": 0.0, "loss_loc": 0.0}
        for first in range(0, len(pairs), timestep_batch):
            chunk = pairs[first:first + timestep_batch]
            js = torch.tensor([j for j, _ in chunk], device=dev)
            x = torch.stack([latents[j][k] for j, k in chunk]).to(dev)
            maps = recorder.run(self.ldm.unet_forward, x, [steps[k] for _, k in chunk], leaf[js])
            total = torch.zeros((), device=dev)
            for layer in recorder.layers:
                m, cont = maps[layer], content[js]
                div = diversity_loss(m, cont)
                loc = localisation_loss(spatial_map(m, cont), gaussians(m.shape[1])[js], loss_cfg["epsilon"],
                                        loss_cfg["alpha"], loss_cfg["prior_scale"])
                total = total + (loss_cfg["lambda_div"] * div + loss_cfg["lambda_loc"] * loc).sum() / per_pair
                sums["loss_div"] += float(div.detach().sum()) / per_pair
                sums["loss_loc"] += float(loc.detach().sum()) / per_pair
            total.backward()
            sums["loss"] += float(total.detach())
        context.backward(leaf.grad)
        return sums


class PriorMaps:
    """The (jittered) Gaussian priors of a step's samples, rendered per map size on first use: ``(B, P)``."""

    def __init__(self, components: Sequence[Sequence[np.ndarray]], grids: Sequence[float], boxes: Sequence[Any],
                 device: torch.device) -> None:
        self.components, self.grids, self.boxes, self.device = components, grids, boxes, device
        self._maps: dict[int, torch.Tensor] = {}

    def __call__(self, positions: int) -> torch.Tensor:
        if positions not in self._maps:
            side = math.isqrt(positions)
            if side * side != positions:
                raise CxrdataError(f"attention maps of {positions} positions are not square")
            maps = [prompt_gaussian(comps, grid, box, side, side).reshape(-1)
                    for comps, grid, box in zip(self.components, self.grids, self.boxes, strict=True)]
            self._maps[positions] = torch.from_numpy(np.stack(maps)).to(self.device)
        return self._maps[positions]


def train_ldm(data: Sequence[str | Path], run: str | Path, *, ldm: str | Path | None, clip: str | Path | None,
              recipe: str | Path = RECIPE, lut: str | Path | None = None, max_steps: int | None = None,
              resume: bool = False, device: str = "auto", config: str | None = None, split: str | None = None,
              seed: int | None = None, tiny: bool = False, precision: str | None = None,
              compile_unet: bool | None = None, gradient_checkpointing: bool | None = None,
              log: Callable[[str], None] = print, settings: Sequence[str] = ()) -> Path:
    """Train; returns the tuned embeddings file. See the module docstring for the run folder.

    ``tiny`` with neither ``ldm`` nor ``clip``: random-weight assets of the recipe (its ``tiny`` section) are
    written to RUN/weights/ and used (CPU tests and smoke runs need no weight folders).
    ``precision``: autocast precision on any device (default: the recipe's ``train.precision`` on CUDA, fp32 on
    the CPU); ``compile_unet`` / ``gradient_checkpointing``: replace the recipe's ``train.compile`` /
    ``train.gradient_checkpointing`` (run-only settings: a resumed run may change them). ``settings``: the
    command line's ``--set KEY=VALUE`` recipe values, saved in RUN/run.json with the resolved recipe."""
    hf_offline()
    run = Path(run)
    cfg, overrides = load_ldm_recipe_with(recipe, settings)
    if seed is not None:
        cfg["train"]["seed"] = seed
    if max_steps is not None:
        cfg["train"]["max_steps"] = max_steps
    for key, value in (("compile", compile_unet), ("gradient_checkpointing", gradient_checkpointing)):
        if value is not None:
            cfg["train"][key] = value
    if (ldm is None or clip is None) and not (tiny and ldm is None and clip is None):
        raise CxrdataError("train ldm needs --ldm (the MONAI bundle folder) and --clip (the CLIP folder), "
                           "or --tiny alone for random-weight ones")
    tr, loss_cfg, att = cfg["train"], cfg["loss"], cfg["attention"]
    digest = recipe_hash(cfg)
    config, split = config or cfg["data"]["config"], split or cfg["data"]["split"]

    dist = common.init_distributed()
    dev = pick_device(device, dist.local_rank)
    start, ckpt = 0, None
    latest = latest_checkpoint(run)
    if latest is not None and not resume:
        raise CxrdataError(f"{run} already holds checkpoints; pass --resume to continue or choose a new --run")
    if resume and latest is not None:
        previous = json.loads((run / RUN_FILE).read_text()) if (run / RUN_FILE).is_file() else {}
        if previous.get("recipe_hash") != digest:
            raise CxrdataError(f"{run} was trained with another recipe (hash {previous.get('recipe_hash')}, now "
                               f"{digest}); resume with the same recipe or choose a new --run")
        ckpt = load_checkpoint(latest)
        start = int(ckpt["step"])
        log(f"resuming {run} from step {start} ({latest.name})")

    from cxrdata.anatomy.lut import read_lut

    table_lut = read_lut(lut) if lut is not None else None
    columns = [*TRAIN_COLUMNS, *(("locations",) if table_lut is not None else ("gaussians", "lut_grid"))]
    data_dirs = [Path(d) for d in data]
    dataset = read_build(data_dirs, config).dataset(split, columns)
    usable = [i for i, ok in enumerate(rows_with_image(dataset)) if ok] if len(dataset) else []
    no_image = len(dataset) - len(usable)  # rows stored without an image: skipped, counted
    if not usable:
        raise CxrdataError(f"config {config!r} split {split!r} has no rows" + (
            f" with an image ({no_image} rows, every image cell null or empty)" if no_image else ""))
    if ldm is None:
        ldm, clip = tiny_assets(run, cfg, dist)
    assert clip is not None

    amp = run_precision(dev, tr["precision"], precision)
    frozen = FrozenLDM.load(cfg["model"], ldm, clip, dev, amp)
    frozen.speed_up(tr["compile"], tr["gradient_checkpointing"])
    tuner = LdmPromptTuner(cfg, frozen)
    param = tuner.codebook.trainable
    optimizer = torch.optim.AdamW([param], lr=tr["lr"], betas=tuple(tr["betas"]), weight_decay=tr["weight_decay"])
    warmup = tr["lr_warmup_steps"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    if ckpt is not None:
        with torch.no_grad():
            param.copy_(ckpt["model"]["trainable"].to(param.device))
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        common.set_rng_state(ckpt["rng"])
    else:
        common.seed_everything(tr["seed"])

    if dist.is_main:
        run.mkdir(parents=True, exist_ok=True)
        inputs = {"data": [str(d.resolve()) for d in data_dirs], "config": config, "split": split,
                  "ldm": str(Path(ldm).resolve()), "clip": str(Path(clip).resolve()),
                  "lut": str(Path(lut).resolve()) if lut else None, "rows": len(usable),
                  "skipped_no_image": no_image, "tiny_assets": tiny and Path(ldm).parent == run / TINY_ASSETS,
                  "precision": amp, "world_size": dist.world_size}
        doc = {"recipe": cfg, "overrides": overrides, "recipe_hash": digest, "inputs": inputs,
               "cxrdata_version": __version__, "codebook_rows": len(tuner.table.rows),
               "trainable_rows": len(tuner.table.trainable_rows)}
        (run / RUN_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    metrics = common.MetricsLogger(run, start_step=start) if dist.is_main else None

    recorder = AttentionRecorder(frozen.unet, att["layers"], stop_after_last=att["early_exit"])
    cache = LatentCache(tr["cache_images"])
    steps_all = list(range(*att["steps"]))
    image_size, fit = cfg["data"]["image_size"], cfg["data"]["fit"]

    def step_rows(step: int) -> list[int]:
        return [usable[k] for k in sample_positions(step, tr["batch_size"], dist.rank, dist.world_size, len(usable),
                                                    tr["seed"])]

    def frozen_key(index: int, row: dict[str, Any]) -> str:
        return f"{index}:{row['id']}"

    # DDIM inversion of the images that are new to a step joins those of the next steps, as one batch of up to
    # train.inversion_batch steps' images (the order is known in advance), so that even a batch size of 1 runs
    # the schedule's forwards on several images at once; the cache must be able to keep them until their step.
    ahead = 1 if att["trajectory"] != "inversion" else max(1, min(tr["inversion_batch"],
                                                                 tr["cache_images"] // tr["batch_size"]))

    def frozen_inputs(step: int, rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
        """Each row's latent (and DDIM inversion trajectory), the ones not cached computed as one batch."""
        row_of = dict(zip(keys, rows, strict=True))

        def compute(missing: list[str]) -> dict[str, dict[str, Any]]:
            batch = {key: row_of[key] for key in missing}
            for later in range(step + 1, min(step + ahead, tr["max_steps"])):
                for index in step_rows(later):
                    row = decoded_row(dataset, index, config)
                    key = frozen_key(index, row)
                    if key not in cache and key not in batch:
                        batch[key] = row
            images = torch.stack([image_tensor(row["image"], image_size, fit) for row in batch.values()])
            latents = frozen.encode_images(images)
            paths = frozen.invert(latents, tuner.uncond, steps_all).cpu() if att["trajectory"] == "inversion" else None
            return {key: {"latent": latents[j : j + 1].cpu(), **({"trajectory": paths[j]} if paths is not None else {})}
                    for j, key in enumerate(batch)}

        return cache.get_many(keys, compute)

    skipped = f" ({no_image} without an image skipped)" if no_image else ""
    ranks = f", rank {dist.rank} of {dist.world_size}" if dist.distributed else ""
    log(f"train ldm: {len(usable)} rows of {config}/{split}{skipped}, codebook {len(tuner.table.rows)} rows "
        f"({len(tuner.table.trainable_rows)} trainable), device {dev} {amp}{ranks}, steps {start}..{tr['max_steps']}")
    local = float("nan")  # this rank's loss of the last logged step (the log holds the mean over ranks)
    for step in range(start, tr["max_steps"]):
        t0 = time.perf_counter()
        # Randomness keyed by the step (timesteps) and by the sample's place in the global batch (jitter, noise):
        # N processes x batch B compute exactly what one process computes with batch N x B.
        chosen = steps_all
        if tr["steps_per_sample"] < len(steps_all):
            pick = np.random.default_rng([tr["seed"], 3, step])
            chosen = sorted(int(s) for s in pick.choice(steps_all, tr["steps_per_sample"], replace=False))
        rows_idx = step_rows(step)
        rows = [decoded_row(dataset, i, config) for i in rows_idx]
        latents, jittered, grids, boxes = [], [], [], []
        frozen_rows = frozen_inputs(step, rows, [frozen_key(i, row) for i, row in zip(rows_idx, rows, strict=True)])
        for k, (row, inputs_) in enumerate(zip(rows, frozen_rows, strict=True)):
            rng = np.random.default_rng([tr["seed"], 2, step, dist.rank * tr["batch_size"] + k])
            key = str(row["id"])
            comps, grid = location_components(row, table_lut, key)
            jittered.append([jitter_prior(c, rng, grid, loss_cfg["jitter"], loss_cfg["jitter_min_sigma"])
                             for c in comps])
            grids.append(grid)
            width, height = row["image"].size
            boxes.append(crop_box(width, height, fit))
            if att["trajectory"] == "inversion":
                latents.append(inputs_["trajectory"][[s - steps_all[0] for s in chosen]])
            else:
                gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
                noise = torch.randn((1, len(chosen), *inputs_["latent"].shape[1:]), generator=gen)
                latents.append(frozen.noised(inputs_["latent"], chosen, noise)[0].cpu())

        priors = PriorMaps(jittered, grids, boxes, dev)
        sums = tuner.accumulate(recorder, latents, chosen, [str(r["prompt"]) for r in rows], priors,
                                tr["timestep_batch"])
        if dist.distributed:
            import torch.distributed as tdist

            tdist.all_reduce(param.grad)
            param.grad /= dist.world_size
        grad_norm = float(param.grad.norm())
        if tr["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(param, tr["grad_clip"])
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        elapsed = time.perf_counter() - t0
        if done % tr["log_every"] == 0 or done == tr["max_steps"]:
            local = sums["loss"]
            sums = common.mean_over_ranks(sums, dist)  # every rank logs at the same steps
        if metrics is not None and (done % tr["log_every"] == 0 or done == tr["max_steps"]):
            metrics.log(done, {**sums, "lr": lr, "grad_norm": grad_norm, "step_time_s": elapsed,
                               "samples_per_s": len(rows) * dist.world_size / elapsed})
            log(f"step {done}: loss {sums['loss']:.4f} (div {sums['loss_div']:.4f}, loc {sums['loss_loc']:.4f}) "
                f"{elapsed:.2f} s")
        if dist.is_main and (done % tr["checkpoint_every"] == 0 or done == tr["max_steps"]):
            common.save_checkpoint(run, done, {"model": {"trainable": param.detach().cpu().clone()},
                                               "optimizer": optimizer.state_dict(),
                                               "scheduler": schedule.state_dict(), "recipe_hash": digest},
                                   keep_last=tr["keep_checkpoints"])
    recorder.remove()
    if metrics is not None:
        metrics.close()
    if dist.distributed:
        log(f"rank {dist.rank} of {dist.world_size}: steps {start}..{tr['max_steps']} done, last local loss {local!r}")
    path = run / EMBEDDINGS_FILE
    if dist.is_main:
        save_embeddings(path, tuner.codebook, tuner.table,
                        {"recipe_hash": digest, "step": str(max(start, tr["max_steps"])), "recipe": cfg["name"],
                         "cxrdata_version": __version__})
        log(f"wrote {path}")
    return path


def jitter_prior(params: np.ndarray, rng: np.random.Generator, grid: float, fraction: float,
                 min_sigma: float) -> np.ndarray:
    """:func:`cxrdata.anatomy.lut.jitter` (mu and sigma moved by U(-fraction, fraction) x grid), with sigma kept
    at ``min_sigma`` x the LUT's sigma or more: for regions narrower than the jitter (a costophrenic angle's
    sigma is ~10 px at 512, the jitter ±25.6 px) sigma would otherwise collapse and the prior vanish from the
    map grid. The paper is silent on this case; the floor is our choice."""
    from cxrdata.anatomy.lut import jitter

    base = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    if fraction <= 0:
        return base
    moved = jitter(base, rng, grid, fraction)
    moved[:, 2:] = np.maximum(moved[:, 2:], min_sigma * base[:, 2:])
    return moved
