"""Speed of ``cxrdata train ldm``: step time, samples/s, peak memory, and the paper's workload projected.

    python benchmarks/train_ldm.py [--device auto] [--threads N] [--tiny-steps 6] [--no-real] [--e2e]
                                   [--precision bf16] [--compile] [--grad-ckpt] [--inversion-batch 8]
                                   [--json results.json]

- tiny: the tiny recipe end to end (``train_ldm`` on random-weight assets written in the real formats):
  step time of a step whose image is new (VAE encode + DDIM inversion) and of a step with cached latents.
- real size: the bundle's architecture (U-Net [256, 512, 768], VAE [64, 128, 128, 128]) and a CLIP text encoder
  shaped like Stable Diffusion 2.1's (23 layers, 1024 wide), random weights, built in memory. Timed: VAE encode
  at 512 px; one full U-Net forward (= one inversion step); one early-exit forward + backward of a chunk of
  (sample, timestep) pairs including CLIP forward + backward; CLIP forward + backward alone. Per sample (the
  paper's step: batch 1, 30 timesteps, inversion to step 59):
  ``VAE + (end - 1) x forward + 30 / chunk x (chunk - CLIP) + CLIP``; projected over 6,480 samples.
  On the CPU the chunk is 1 pair (``--cpu-chunk``), scaled linearly to the recipe's ``timestep_batch``.
- ``--e2e`` (default on CUDA): also ``train_ldm`` end to end at real size on synthetic 512 px images.
- DDIM inversion batched: one full U-Net forward on ``--inversion-batch`` latents (default 8 on CUDA, off on the
  CPU), per image; ``paper_workload_batched_inversion_h`` projects the workload with inversions precomputed in
  batches of that size in a separate pass (``paper_workload_cached_latents_h``: inversions free, the lower bound).
- ``--precision`` / ``--compile`` / ``--grad-ckpt``: the trainer's settings (`train ldm --precision ...`).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrdata.models.ldm_assets import write_clip_tokenizer, write_random_assets
from cxrdata.models.ldm_attention import AttentionRecorder
from cxrdata.models.ldm_model import FrozenLDM, build_autoencoder, build_unet
from cxrdata.models.ldm_recipe import RECIPE, TINY_RECIPE, load_ldm_recipe
from cxrdata.models.runtime import hf_offline, pick_device, run_precision
from cxrdata.train import common
from cxrdata.train.ldm import LdmPromptTuner, PriorMaps, train_ldm

PAPER_SAMPLES = 6480
SD21_CLIP = {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
             "num_attention_heads": 16, "hidden_act": "gelu", "projection_dim": 512}
PROMPT = "left lower pneumonia"
PRIOR = [[[360.0, 380.0, 40.0, 50.0]]]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Any, repeats: int = 2) -> float:
    """Best of ``repeats`` runs (seconds), after one warm-up run on CUDA."""
    if device.type == "cuda":
        fn()
        sync(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux: the process's peak RSS


def write_shard(out: Path, n: int, size: int) -> Path:
    from PIL import Image

    from cxrdata.io.schema import load_schema
    from cxrdata.io.writer import ShardWriter

    rows = []
    schema = load_schema("ldm-prompts")
    for i in range(n):
        arr = (np.random.default_rng(i).random((size, size)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        row = {c.name: None for c in schema.columns}
        row.update(id=f"b{i}", dicom_id=f"b{i}", subject_id=i, study_id=i, split="train", view_position="PA",
                   pathology="Pneumonia", prompt=PROMPT, locations=["left lower"], sentences=[], extractor="bench",
                   gaussians=PRIOR, lut_grid=512, image={"bytes": buf.getvalue(), "path": None}, image_width=size,
                   image_height=size, original_width=size, original_height=size, image_path="")
        rows.append(row)
    with ShardWriter(out / "data" / "ldm-prompts" / "train-00000-of-00001.parquet", schema) as writer:
        writer.write(rows)
    return out


def end_to_end(recipe: str, clip_cfg: dict[str, Any], steps: int, images: int, device: str,
               tmp: Path, speed: dict[str, Any] | None = None) -> dict[str, Any]:
    """``train_ldm`` for ``steps`` steps on ``images`` synthetic images (batch 1: each image is new once)."""
    cfg = load_ldm_recipe(recipe)
    bundle, clip = write_random_assets(tmp / "assets", cfg["model"], clip_cfg)
    data = write_shard(tmp / "out", images, cfg["data"]["image_size"])
    run = tmp / "run"
    train_ldm([data], run, ldm=bundle, clip=clip, recipe=recipe, max_steps=steps, device=device,
              log=lambda _m: None, **(speed or {}))
    times = [row["step_time_s"] for row in common.read_metrics(run)]
    first, cached = times[:images], times[images:]
    out = {"steps": steps, "first_visit_step_s": statistics.median(first)}
    if cached:
        out["cached_step_s"] = statistics.median(cached)
        out["cached_samples_per_s"] = 1 / out["cached_step_s"]
    return out


def real_components(device: torch.device, cpu_chunk: int, speed: dict[str, Any] | None = None,
                    inversion_batch: int = 0) -> dict[str, Any]:
    """Component timings of the real-size architecture with random weights (built in memory)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = load_ldm_recipe(RECIPE)
    tr, att = cfg["train"], cfg["attention"]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = write_clip_tokenizer(Path(tmp) / "tok", ("left", "right", "lower", "and"))
    text = CLIPTextModel(CLIPTextConfig(**SD21_CLIP, max_position_embeddings=77,
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id))
    speed = speed or {}
    frozen = FrozenLDM(cfg["model"], build_autoencoder(cfg["model"]["autoencoder"]),
                       build_unet(cfg["model"]["unet"]), tokenizer, text, device,
                       run_precision(device, tr["precision"], speed.get("precision")))
    frozen.speed_up(bool(speed.get("compile_unet")), bool(speed.get("gradient_checkpointing")))
    tuner = LdmPromptTuner(cfg, frozen)
    recorder = AttentionRecorder(frozen.unet, att["layers"], stop_after_last=att["early_exit"])
    size = cfg["data"]["image_size"]
    chunk = tr["timestep_batch"] if device.type == "cuda" else cpu_chunk
    first, end = att["steps"]
    latent = frozen.encode_images(torch.rand(1, 1, size, size))
    trajectory = latent.expand(chunk, -1, -1, -1).clone()
    priors = PriorMaps([[np.asarray(PRIOR[0])]], [512.0], [(0.0, 0.0, 1.0, 1.0)], device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def inversion_step() -> None:
        with torch.no_grad():
            frozen.unet_forward(latent, [first], tuner.uncond)

    def chunk_step() -> None:
        tuner.codebook.trainable.grad = None
        tuner.accumulate(recorder, [trajectory], list(range(first, first + chunk)), [PROMPT], priors, chunk)

    def text_step() -> None:
        tuner.codebook.trainable.grad = None
        context, _ = tuner.context([PROMPT])
        context.sum().backward()

    out: dict[str, Any] = {"unet_params_m": sum(p.numel() for p in frozen.unet.parameters()) / 1e6,
                           "clip_params_m": sum(p.numel() for p in text.parameters()) / 1e6,
                           "chunk_pairs": chunk}
    out["vae_encode_s"] = timed(device, lambda: frozen.encode_images(torch.rand(1, 1, size, size)), 1)
    out["unet_forward_s"] = timed(device, inversion_step, 1)
    out["text_fwd_bwd_s"] = timed(device, text_step, 1)
    out["chunk_fwd_bwd_s"] = timed(device, chunk_step, 1)
    if inversion_batch > 1:
        many = latent.expand(inversion_batch, -1, -1, -1).clone()

        def batched_inversion_step() -> None:
            with torch.no_grad():
                frozen.unet_forward(many, [first] * inversion_batch, tuner.uncond.expand(inversion_batch, -1, -1))

        out["inversion_batch"] = inversion_batch
        out["unet_forward_per_image_batched_s"] = timed(device, batched_inversion_step, 1) / inversion_batch
    out["peak_memory_gib"] = peak_memory_gib(device)
    per_pair = max(out["chunk_fwd_bwd_s"] - out["text_fwd_bwd_s"], 0.0) / chunk
    timesteps = min(tr["steps_per_sample"], end - first)
    sample = out["vae_encode_s"] + (end - 1) * out["unet_forward_s"] + timesteps * per_pair + out["text_fwd_bwd_s"]
    out["per_sample_s"] = sample
    out["samples_per_s"] = 1 / sample
    out["paper_workload_h"] = PAPER_SAMPLES * sample / 3600
    out["paper_workload_cached_latents_h"] = PAPER_SAMPLES * (sample - (end - 1) * out["unet_forward_s"]) / 3600
    if inversion_batch > 1:
        batched = sample - (end - 1) * (out["unet_forward_s"] - out["unet_forward_per_image_batched_s"])
        out["paper_workload_batched_inversion_h"] = PAPER_SAMPLES * batched / 3600
    recorder.remove()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--tiny-steps", type=int, default=6)
    parser.add_argument("--no-real", action="store_true", help="skip the real-size timings")
    parser.add_argument("--e2e", action="store_true", help="real-size train_ldm end to end (default on CUDA)")
    parser.add_argument("--cpu-chunk", type=int, default=1, help="pairs per real-size chunk on the CPU")
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default=None,
                        help="autocast precision (default: the recipe's on CUDA, fp32 on the CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the U-Net's residual blocks")
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing of the residual blocks")
    parser.add_argument("--inversion-batch", type=int, default=None, help="latents per batched inversion forward "
                                                                           "(default 8 on CUDA, 0 = off on the CPU)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    hf_offline()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    speed = {"precision": args.precision, "compile_unet": args.compile, "gradient_checkpointing": args.grad_ckpt}
    inversion_batch = args.inversion_batch if args.inversion_batch is not None else (8 if device.type == "cuda" else 0)
    results: dict[str, Any] = {"device": str(device), "torch_threads": torch.get_num_threads(),
                               "torch": torch.__version__}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        tiny_clip = load_ldm_recipe(TINY_RECIPE)["tiny"]["clip"]
        results["tiny"] = end_to_end(TINY_RECIPE, tiny_clip, args.tiny_steps, 2, args.device, Path(tmp) / "tiny")
        print("tiny:", json.dumps(results["tiny"]), flush=True)
        if args.e2e or (device.type == "cuda" and not args.no_real):
            results["real_e2e"] = end_to_end(RECIPE, SD21_CLIP, 4, 2, args.device, Path(tmp) / "real", speed)
            print("real end to end:", json.dumps(results["real_e2e"]), flush=True)
    if not args.no_real:
        results["real"] = real_components(device, args.cpu_chunk, speed, inversion_batch)
        print("real size:", json.dumps(results["real"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
