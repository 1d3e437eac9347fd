"""`train lofi` step time, samples/s, peak memory and model FLOPs utilisation (MFU).

Two parts:

1. tiny: the lofi-tiny recipe on shards built from the bundled MIMIC-CXR sample (the path the tests run):
   time per optimizer step on this machine.
2. real: LoFi's real-size towers with random weights, built in memory (no download): SigLIP so400m/16 vision at
   512 px (27 layers, width 1152, 1,024 patches) + its text tower (64 tokens, vocabulary 256k), the projector
   (-> 256 tokens) and a Gemma-3-270M LM, LoRA r=16 / r=4 as in the lofi recipe, on synthetic batches (half image-
   report pairs with a 128-token report, half grounding pairs with a 24-token target; prompts 32 tokens). On GPU:
   bf16 autocast, frozen weights in bf16, gradient checkpointing per the recipe. On CPU: fp32, batch 1 by default.

Model FLOPs per sample, counted analytically (``flops_per_sample``): a frozen matrix with P weights applied to
N tokens costs 2PN forward plus 2PN backward for the activation gradient (LoRA below it still needs it; the
frozen weights get no gradient); a trained one 6PN; attention adds 4N²d per layer forward (x2 backward); the
LM head only at the labelled positions. Re-computation by gradient checkpointing is not counted (MFU, not HFU).
MFU = model FLOPs/s over the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s; A100: 312). Also reported:
``mfu_6nd`` = 6 · Σ_towers N_tower · tokens_tower per step / (step time · peak), the usual formula (N: non-embedding
parameters of each tower, frozen or not; tokens: 1,024 patches per image, 64 text tokens per report, the LM's
sequence), which overstates a mostly frozen model's work (its frozen weights get no weight gradient).

    python benchmarks/train_lofi.py                 # tiny + real-size (GPU when present; CPU: batch 1)
    python benchmarks/train_lofi.py --skip-real     # tiny only
    python benchmarks/train_lofi.py --batch-size 64 --steps 5 --no-grad-ckpt
    python benchmarks/train_lofi.py --skip-tiny --precision bf16 --compile     # the trainer's --precision, --compile
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cxrdata.models.runtime import pick_device

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}

VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16,
          "image_size": 512, "patch_size": 16}
TEXT = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16,
        "vocab_size": 256000, "max_position_embeddings": 64, "projection_size": 1152}
GEMMA_270M = {"vocab_size": 262144, "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
              "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "max_position_embeddings": 32768,
              "sliding_window": 512, "rope_theta": 1_000_000.0, "query_pre_attn_scalar": 256}
PROMPT, REPORT, REGION = 32, 128, 24


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- tiny ------------------------------------------------------------------------------------------------------
def bench_tiny(steps: int) -> dict[str, Any]:
    from cxrdata.api import plans
    from cxrdata.pipeline.build import BuildOptions, build
    from cxrdata.sample.mimic import write_mimic_sample
    from cxrdata.train.lofi import make_optimizer, prepare
    from cxrdata.train.lofi_data import StepBatches
    from cxrdata.train.lofi_recipe import load_lofi_recipe

    root = Path(tempfile.mkdtemp(prefix="lofi-bench-"))
    sample = write_mimic_sample(root / "mimic", subjects=12, seed=0)
    out = root / "out"
    build([*plans("mimic", out=out, root=sample.root, image_size=128),
           *plans("ms-cxr", out=out, root=sample.mscxr_csv["1.1.0"].parent, mimic_root=sample.root, image_size=128)],
          BuildOptions(out=out, workers=1, quiet=True))
    recipe = load_lofi_recipe("lofi-tiny")
    prepared, _ = prepare(recipe, [root / "out"], None, torch.device("cpu"), root / "weights")
    model, batch_size = prepared.model, recipe["train"]["batch_size"]
    optimizer, scheduler = make_optimizer(model, recipe, 1000)
    weights = {k: float(v) for k, v in recipe["loss"].items()}
    order = StepBatches(prepared.plan.epoch_len, batch_size, 0, steps + 2)
    times = []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        batch = prepared.collator([prepared.examples[key] for key in order.positions(step)])
        loss = model(batch, weights)["loss"]
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for _, p in model.trainable_parameters())
    step_s = sorted(times)[len(times) // 2]
    return {"part": "tiny", "device": "cpu", "threads": torch.get_num_threads(), "batch": batch_size,
            "params": params, "trainable": trainable, "step_s_median": step_s,
            "samples_per_s": batch_size / step_s, "peak_rss_mb": rss_mb()}


# -- real size -------------------------------------------------------------------------------------------------
def build_real(device: torch.device, grad_ckpt: bool, dtype: torch.dtype, compile_layers: bool = False) -> Any:
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        SiglipTextConfig,
        SiglipTextModel,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    from cxrdata.models.lofi_model import Towers
    from cxrdata.models.lofi_run import model_settings
    from cxrdata.train.lofi_objective import LofiObjective
    from cxrdata.train.lofi_recipe import load_lofi_recipe

    recipe = load_lofi_recipe("lofi")
    settings = dataclasses.replace(model_settings(recipe, dtype), gradient_checkpointing=grad_ckpt)
    torch.manual_seed(0)
    with torch.device(device):
        vision = SiglipVisionModel(SiglipVisionConfig(**VISION)).to(dtype)
        text = SiglipTextModel(SiglipTextConfig(**TEXT)).to(dtype)
        llm = Gemma3ForCausalLM(Gemma3TextConfig(**GEMMA_270M, attn_implementation="eager")).to(dtype)
    towers = Towers(vision, "siglip", VISION["patch_size"], text, None, llm, None, GEMMA_270M["vocab_size"] - 1, [],
                    None, None)
    model = LofiObjective(towers, settings).to(device)
    if compile_layers:
        from cxrdata.models.runtime import compile_blocks

        compile_blocks(model.transformer_layers())  # what `train lofi --compile` does
    return model, recipe


def synthetic_batch(batch: int, image_tokens: int, device: torch.device, generator: torch.Generator) -> dict:
    vocab = GEMMA_270M["vocab_size"] - 1
    image_id = vocab
    seqs, labels, tasks = [], [], []
    for i in range(batch):
        target = REPORT if i % 2 == 0 else REGION
        body = torch.randint(0, vocab, (PROMPT + target + 1,), generator=generator)
        ids = torch.cat([torch.tensor([2]), torch.full((image_tokens,), image_id), body])
        lab = ids.clone()
        lab[: 1 + image_tokens + PROMPT] = -100
        seqs.append(ids)
        labels.append(lab)
        tasks.append(0 if i % 2 == 0 else 1)
    width = max(len(s) for s in seqs)
    pad = lambda x, v: torch.cat([x, torch.full((width - len(x),), v)])  # noqa: E731
    report = [i for i, t in enumerate(tasks) if t == 0]
    return {
        "pixel_values": torch.randn(batch, 3, VISION["image_size"], VISION["image_size"], generator=generator),
        "input_ids": torch.stack([pad(s, 0) for s in seqs]), "labels": torch.stack([pad(s, -100) for s in labels]),
        "attention_mask": torch.stack([pad(torch.ones(len(s), dtype=torch.long), 0) for s in seqs]),
        "task": torch.tensor(tasks), "report_rows": torch.tensor(report),
        "text_ids": torch.randint(0, TEXT["vocab_size"], (len(report), 64), generator=generator),
        "groups": torch.arange(len(report)),
    }


def count(module: torch.nn.Module, trainable: bool | None = None, skip: tuple[str, ...] = ()) -> int:
    return sum(p.numel() for n, p in module.named_parameters()
               if (trainable is None or p.requires_grad == trainable) and not any(s in n for s in skip))


def flops_per_sample(model: Any, batch: dict) -> float:
    """Model FLOPs of one training sample (see the module docstring)."""
    b = batch["input_ids"].shape[0]
    n_img = (VISION["image_size"] // VISION["patch_size"]) ** 2
    reports = batch["report_rows"].numel() / b
    seq = float(batch["attention_mask"].sum()) / b
    labelled = float((batch["labels"] != -100).sum()) / b

    def tower(module: torch.nn.Module, tokens: float, layers: int, width: int, skip: tuple[str, ...] = ()) -> float:
        frozen, trained = count(module, False, skip), count(module, True, skip)
        attention = 4 * tokens * tokens * width * layers
        return 4 * frozen * tokens + 6 * trained * tokens + 3 * attention

    vision = tower(model.vision, n_img, VISION["num_hidden_layers"], VISION["hidden_size"], ("head",))
    text = reports * tower(model.text, 64, TEXT["num_hidden_layers"], TEXT["hidden_size"], ("embeddings",))
    projector = 6 * count(model.projector) * model.num_image_tokens
    g = GEMMA_270M
    llm = tower(model.llm, seq, g["num_hidden_layers"], g["num_attention_heads"] * g["head_dim"], ("embed_tokens",))
    head = 4 * g["vocab_size"] * g["hidden_size"] * labelled
    return vision + text + projector + llm + head


def flops_6nd(model: Any, batch: dict) -> float:
    """6 · Σ N_tower · tokens_tower for the whole batch (embeddings and LM head left out of N, as usual)."""
    n_img = (VISION["image_size"] // VISION["patch_size"]) ** 2
    b = batch["input_ids"].shape[0]
    tokens = {"vision": n_img * b, "text": 64 * batch["report_rows"].numel(),
              "llm": float(batch["attention_mask"].sum())}
    params = {"vision": count(model.vision, None, ("head",)), "text": count(model.text, None, ("embeddings",)),
              "llm": count(model.llm, None, ("embed_tokens",))}
    return 6 * sum(params[k] * tokens[k] for k in tokens) + 6 * count(model.projector) * model.num_image_tokens * b


def bench_real(device: torch.device, batch_size: int, steps: int, warmup: int, grad_ckpt: bool,
               precision: str | None = None, compile_layers: bool = False) -> dict[str, Any]:
    from cxrdata.models.runtime import PRECISIONS, autocast, run_precision
    from cxrdata.train.lofi import make_optimizer

    cuda = device.type == "cuda"
    amp = run_precision(device, "bf16", precision)
    dtype = (PRECISIONS[amp] or torch.float32) if cuda else torch.float32
    t0 = time.perf_counter()
    model, recipe = build_real(device, grad_ckpt, dtype, compile_layers)
    build_s = time.perf_counter() - t0
    optimizer, _ = make_optimizer(model, recipe, 1000)
    weights = {k: float(v) for k, v in recipe["loss"].items()}
    generator = torch.Generator().manual_seed(0)
    batch = synthetic_batch(batch_size, model.num_image_tokens, device, generator)
    batch = {k: v.to(device) for k, v in batch.items()}
    flops = flops_per_sample(model, batch)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    model.train()
    for step in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with autocast(device, amp):
            loss = model(batch, weights)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in model.trainable_parameters()], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    out: dict[str, Any] = {
        "part": "real", "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "threads": torch.get_num_threads(), "batch": batch_size, "grad_ckpt": grad_ckpt, "build_s": build_s,
        "precision": amp, "compile": compile_layers,
        "params": count(model), "trainable": count(model, True), "seq_len_mean": float(batch["attention_mask"].sum())
        / batch_size, "step_s_median": step_s, "samples_per_s": batch_size / step_s,
        "model_tflops_per_sample": flops / 1e12, "achieved_tflops": flops * batch_size / step_s / 1e12,
        "loss": float(loss.detach()),
    }
    if cuda:
        out["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        out["mfu"] = flops * batch_size / step_s / peak if peak else None
        out["mfu_6nd"] = flops_6nd(model, batch) / step_s / peak if peak else None
    else:
        out["peak_rss_mb"] = rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="real part; default 64 on GPU, 1 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 5 on GPU, 1 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 2 on GPU, 0 on CPU)")
    parser.add_argument("--tiny-steps", type=int, default=10)
    parser.add_argument("--no-grad-ckpt", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default=None,
                        help="real part; default bf16 on GPU, fp32 on CPU (as `train lofi`)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer layer")
    args = parser.parse_args()
    if not args.skip_tiny:
        print(json.dumps(bench_tiny(args.tiny_steps)), flush=True)
    if not args.skip_real:
        device = pick_device(args.device)
        cuda = device.type == "cuda"
        print(json.dumps(bench_real(device, args.batch_size or (64 if cuda else 1), args.steps or (5 if cuda else 1),
                                    args.warmup if args.warmup is not None else (2 if cuda else 0),
                                    not args.no_grad_ckpt and cuda, args.precision, args.compile)), flush=True)


if __name__ == "__main__":
    main()
