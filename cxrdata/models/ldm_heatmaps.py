"""``cxrdata heatmaps ldm``: phrase-grounding heatmaps from the LDM's cross-attention (seed 003, section 4.3).

The method of Vilouras et al. (2024), which seed 003 uses for both the frozen and the tuned LDM: the image
latent is DDIM-inverted with the empty prompt; at every inference step of ``heatmap.steps`` the U-Net runs
with the record's prompt and the maps of ``heatmap.layers`` are taken; per (layer, step) the maps are averaged
over the prompt's non-special tokens, min-max normalised and resized (bilinear) to ``heatmap.size``; their
mean is smoothed with a Gaussian filter (``smoothing_sigma`` pixels, SciPy's "reflect" borders, 4σ
truncation), min-max normalised and, with ``otsu`` (the paper: frozen LDM only), masked by Otsu's threshold.

Output, the layout ``cxrdata eval grounding --heatmaps DIR`` reads (:mod:`cxrdata.models.prediction_files`)::

    DIR/<sanitised record id>.npy   float32, heatmap.size x heatmap.size, on the centre-cropped square input
    DIR/heatmaps.json               run, embeddings digest, recipe hash, settings, counts

Existing files are kept (the command resumes) unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.io.layout import read_build
from cxrdata.models.inputs import decoded_row, rows_with_image
from cxrdata.models.ldm_attention import AttentionRecorder
from cxrdata.models.ldm_codebook import load_embeddings
from cxrdata.models.ldm_inputs import image_tensor
from cxrdata.models.ldm_model import FrozenLDM
from cxrdata.models.ldm_prompted import PromptedLDM
from cxrdata.models.ldm_recipe import EMBEDDINGS_FILE, RUN_FILE, load_ldm_recipe, recipe_hash
from cxrdata.models.prediction_files import heatmap_name, write_heatmap
from cxrdata.models.runtime import hf_offline, pick_device, run_precision

HEATMAP_COLUMNS = ("id", "image", "prompt")


def gaussian_filter(image: NDArray[np.float32], sigma: float, truncate: float = 4.0) -> NDArray[np.float32]:
    """Separable Gaussian smoothing with symmetric ("reflect") borders, as ``scipy.ndimage.gaussian_filter``."""
    if sigma <= 0:
        return image.astype(np.float32)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=axis)
        out = windows @ kernel
    return out.astype(np.float32)


def otsu_threshold(values: NDArray[np.float32], bins: int = 256) -> float:
    """Otsu's threshold of a map (maximum between-class variance over a ``bins``-bin histogram)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0[:-1] * w1[:-1] * (m0[:-1] - m1[:-1]) ** 2
    return float(centres[int(np.argmax(between))]) if len(between) else float(values.min())


def _minmax(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    low = x.amin(dim=dims, keepdim=True)
    high = x.amax(dim=dims, keepdim=True)
    return (x - low) / (high - low).clamp(min=1e-12)


def aggregate(per_step: Sequence[dict[int, torch.Tensor]], content: torch.Tensor, size: int, sigma: float,
              otsu: bool) -> list[NDArray[np.float32]]:
    """Maps ``[{layer: (R, P, L)}]`` over steps -> one ``size`` x ``size`` heatmap per record."""
    total: torch.Tensor | None = None
    count = 0
    weights = content.float()
    for maps in per_step:
        for m in maps.values():
            token_mean = (m * weights[:, None, :]).sum(-1) / weights.sum(-1, keepdim=True).clamp(min=1)
            side = math.isqrt(token_mean.shape[1])
            spatial = _minmax(token_mean.reshape(-1, 1, side, side), (2, 3))
            resized = F.interpolate(spatial, size=(size, size), mode="bilinear", align_corners=False)
            total = resized if total is None else total + resized
            count += 1
    assert total is not None
    out = []
    for heat in (total / count)[:, 0].cpu().numpy():
        heat = gaussian_filter(heat, sigma)
        low, high = float(heat.min()), float(heat.max())
        heat = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
        if otsu:
            heat = heat * (heat > otsu_threshold(heat))
        out.append(heat.astype(np.float32))
    return out


def _batches(datasets_: Sequence[Any], size: int, limit: int | None,
             skipped: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches of ``size`` (the first ``limit``); rows stored without an image go to ``skipped`` (ids)."""
    batch: list[dict[str, Any]] = []
    seen = 0
    for ds in datasets_:
        present = rows_with_image(ds) if len(ds) else []
        for index, has_image in enumerate(present):
            if limit is not None and seen >= limit:
                break
            seen += 1
            if not has_image:
                skipped.append(str(ds.select_columns(["id"])[index]["id"]))
                continue
            batch.append(decoded_row(ds, index, "heatmap input"))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def ldm_heatmaps(data: Sequence[str | Path], out: str | Path, *, run: str | Path | None = None,
                 recipe: str | Path | None = None, ldm: str | Path | None = None, clip: str | Path | None = None,
                 embeddings: str | Path | None = None, frozen: bool = False, config: str | None = None,
                 split: str | None = None, device: str = "auto", overwrite: bool = False, limit: int | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write one heatmap per record of ``data``; returns the summary also written to ``out/heatmaps.json``.

    ``run``: a ``train ldm`` run (its recipe, inputs and ``embeddings.safetensors``); ``frozen``: CLIP's own
    embeddings (the "LDM (frozen)" baseline; ``recipe`` or the run's recipe gives the model).
    """
    hf_offline()
    inputs: dict[str, Any] = {}
    if run is not None:
        run = Path(run)
        if not (run / RUN_FILE).is_file():
            raise CxrdataError(f"--run {run}: no {RUN_FILE} (not a `cxrdata train ldm` run folder)")
        doc = json.loads((run / RUN_FILE).read_text())
        cfg, inputs = doc["recipe"], doc.get("inputs", {})
        if recipe is not None:
            raise CxrdataError("give --run or --recipe, not both (the run holds its recipe)")
    elif frozen:
        cfg = load_ldm_recipe(recipe or "ldm-prompt-tuning")
    else:
        raise CxrdataError("heatmaps ldm needs --run RUN (tuned embeddings) or --frozen (CLIP's own embeddings)")
    ldm_path, clip_path = ldm or inputs.get("ldm"), clip or inputs.get("clip")
    if ldm_path is None or clip_path is None:
        raise CxrdataError("heatmaps ldm needs --ldm and --clip (not recorded in the run)")
    weight, table, meta = None, None, {}
    emb_digest = "clip"
    if not frozen:
        path = Path(embeddings) if embeddings is not None else Path(run) / EMBEDDINGS_FILE  # type: ignore[arg-type]
        weight, table, meta = load_embeddings(path)
        if meta.get("recipe_hash") not in (None, recipe_hash(cfg)):
            raise CxrdataError(f"{path} was tuned with recipe hash {meta.get('recipe_hash')}, the run's recipe has "
                               f"{recipe_hash(cfg)}")
        emb_digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    hm = cfg["heatmap"]
    built = read_build([Path(d) for d in data], config)
    config, splits = built.name, [split] if split is not None else built.splits
    shards = [built.dataset(s, HEATMAP_COLUMNS) for s in splits]
    dev = pick_device(device)
    model = FrozenLDM.load(cfg["model"], ldm_path, clip_path, dev, run_precision(dev, cfg["train"]["precision"]))
    tuner = PromptedLDM(cfg, model, weight, table)
    recorder = AttentionRecorder(model.unet, hm["layers"], stop_after_last=True)
    steps = list(range(*hm["steps"]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = kept = 0
    seed = int(cfg["train"]["seed"])
    no_image: list[str] = []
    for batch in _batches(shards, hm["batch_size"], limit, no_image):
        todo = [r for r in batch if overwrite or not (out / heatmap_name(str(r["id"]))).is_file()]
        kept += len(batch) - len(todo)
        if not todo:
            continue
        with torch.no_grad():
            images = torch.stack([image_tensor(r["image"], cfg["data"]["image_size"], cfg["data"]["fit"])
                                  for r in todo])
            latents = model.encode_images(images)
            if hm["trajectory"] == "inversion":
                trajectory = model.invert(latents, tuner.uncond, steps)
            else:
                noise = torch.stack([torch.randn((len(steps), *latents.shape[1:]), generator=torch.Generator()
                                                 .manual_seed(zlib.crc32(str(r["id"]).encode()) ^ seed))
                                     for r in todo])
                trajectory = model.noised(latents, steps, noise)
            context, content = tuner.context([str(r["prompt"]) for r in todo])
            per_step = [recorder.run(model.unet_forward, trajectory[:, k], [s] * len(todo), context)
                        for k, s in enumerate(steps)]
            heats = aggregate(per_step, content, hm["size"], hm["smoothing_sigma"], hm["otsu"])
        for row, heat in zip(todo, heats, strict=True):
            write_heatmap(out, str(row["id"]), heat)
            written += 1
        log(f"{written + kept} records done")
    recorder.remove()
    summary = {"run": str(run) if run is not None else None, "frozen": frozen, "embeddings": emb_digest,
               "recipe_hash": recipe_hash(cfg), "config": config, "splits": splits, "layers": hm["layers"],
               "steps": hm["steps"], "trajectory": hm["trajectory"], "size": hm["size"],
               "smoothing_sigma": hm["smoothing_sigma"], "otsu": hm["otsu"], "written": written,
               "kept_existing": kept, "skipped_no_image": sorted(no_image), "cxrdata_version": __version__}
    (out / "heatmaps.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
