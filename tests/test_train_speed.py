"""The trainers' GPU speed settings, on their CPU paths (docs/gpu.md): bf16 autocast, ``torch.compile`` block by
block, gradient checkpointing (same gradients), DataLoader workers (same batches). The 2-process torchrun runs
are in test_train_lofi.py / test_train_ldm.py (``-k torchrun``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from lofi_testing import (  # noqa: F401 - fixtures
    TinyRun,
    lofi_shards_fixture,
    lofi_tiny_run_fixture,
    one_thread_fixture,
)
from test_train_ldm import ROWS, TINY, write_ldm_prompts

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.models.checkpoints import load_checkpoint
from cxrdata.models.ldm_assets import write_random_assets
from cxrdata.models.ldm_attention import AttentionRecorder
from cxrdata.models.ldm_model import FrozenLDM, resnet_blocks
from cxrdata.models.ldm_recipe import load_ldm_recipe
from cxrdata.models.runtime import autocast, compile_blocks, run_precision
from cxrdata.train.common import loader_settings, read_metrics
from cxrdata.train.ldm import LdmPromptTuner, PriorMaps
from cxrdata.train.ldm_losses import crop_box
from cxrdata.train.lofi import prepare
from cxrdata.train.lofi_recipe import load_lofi_recipe

CPU = torch.device("cpu")
WEIGHTS = {"sigmoid": 1.0, "caption": 1.0, "location": 1.0}


def test_precision_is_the_recipes_on_cuda_fp32_on_the_cpu_unless_asked() -> None:
    assert run_precision(CPU, "bf16") == "fp32" and run_precision(CPU, "bf16", "bf16") == "bf16"
    assert run_precision(torch.device("cuda"), "bf16") == "bf16"
    assert run_precision(torch.device("cuda"), "bf16", "fp32") == "fp32"
    with pytest.raises(CxrdataError, match="fp16 needs a CUDA device"):
        run_precision(CPU, "bf16", "fp16")
    x = torch.ones(2, 2)
    with autocast(CPU, "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert (x @ x).dtype == torch.float32


def test_loader_settings_pin_memory_on_cuda_and_keep_workers() -> None:
    data = load_lofi_recipe("lofi")["data"]
    assert loader_settings(data, torch.device("cuda")) == {"num_workers": 8, "pin_memory": True,
                                                          "persistent_workers": True, "prefetch_factor": 2}
    assert loader_settings({**data, "num_workers": 0}, CPU) == {"num_workers": 0, "pin_memory": False}


# --- LoFi ---------------------------------------------------------------------------------------------------------
def _weights(run: Path) -> dict[str, Path]:
    return {"vision": run / "weights" / "siglip", "text": run / "weights" / "siglip", "llm": run / "weights" / "llm"}


def _lofi(run: TinyRun, **model: object) -> tuple[object, dict]:
    """The tiny run's model (same weights, same LoRA initialisation: prepare seeds) and its first batch."""
    recipe = load_lofi_recipe("lofi-tiny")
    recipe["model"].update(model)
    prepared = prepare(recipe, [run.data], _weights(run.run), CPU)[0]
    batch = prepared.collator([prepared.examples[(0, i)] for i in range(8)])
    prepared.model.train()
    return prepared.model, batch


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.trainable_parameters() if p.grad is not None}


def test_lofi_bf16_autocast_on_the_cpu(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    """`--precision bf16` on the CPU: matrix products in bf16, finite losses near the fp32 run's (same weights,
    same batches) but not equal to them, float32 trainable tensors (fp32 master weights) in the checkpoint."""
    run = tmp_path / "bf16"
    result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--data", str(lofi_tiny_run.data), "--run", str(run),
                                       "--max-steps", "2", "--quiet", "--device", "cpu", "--precision", "bf16"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((run / "config.json").read_text())["precision"] == "bf16"
    bf16, fp32 = read_metrics(run), read_metrics(lofi_tiny_run.run)
    assert json.loads((lofi_tiny_run.run / "config.json").read_text())["precision"] == "fp32"
    for key in ("loss", "sigmoid", "caption", "location"):
        assert math.isfinite(bf16[0][key]) and math.isfinite(bf16[1][key])
        assert bf16[0][key] == pytest.approx(fp32[0][key], rel=0.05), key
    assert bf16[0]["loss"] != fp32[0]["loss"]  # autocast did run in bf16
    state = load_checkpoint(run / "checkpoints" / "step-0000002.pt")["model"]
    assert state and {v.dtype for v in state.values()} == {torch.float32}
    model, batch = _lofi(lofi_tiny_run)
    seen: list[torch.dtype] = []
    mlp = model.transformer_layers()[-1].mlp  # the LM's last MLP
    handle = mlp.register_forward_hook(lambda _m, _a, out: seen.append(out.dtype))
    with autocast(CPU, "bf16"):
        out = model(batch, WEIGHTS)
    handle.remove()
    out["loss"].backward()
    assert seen == [torch.bfloat16] and math.isfinite(float(out["loss"].detach()))
    assert {p.dtype for _, p in model.trainable_parameters()} == {torch.float32}
    assert {g.dtype for g in _grads(model).values()} == {torch.float32}


def test_lofi_gradient_checkpointing_gives_the_same_gradients(lofi_tiny_run: TinyRun) -> None:
    grads, calls = {}, {}
    for on in (False, True):
        model, batch = _lofi(lofi_tiny_run, gradient_checkpointing=on)
        count = [0]
        mlp = model.transformer_layers()[-1].mlp
        mlp.register_forward_hook(lambda *_a, c=count: c.__setitem__(0, c[0] + 1))
        model(batch, WEIGHTS)["loss"].backward()
        grads[on], calls[on] = _grads(model), count[0]
    assert calls == {False: 1, True: 2}  # the LM's last layer ran again in the backward pass
    assert grads[True].keys() == grads[False].keys() and len(grads[False]) > 10
    for name, g in grads[False].items():
        torch.testing.assert_close(grads[True][name], g, rtol=1e-5, atol=1e-7, msg=name)
    assert max(float(g.abs().max()) for g in grads[False].values()) > 0


@pytest.mark.slow  # inductor's C++ compile: about a minute on the shared 2-core CPU
def test_lofi_compiles_layer_by_layer_and_steps_like_eager(lofi_tiny_run: TinyRun) -> None:
    """`train.compile` / `--compile`: torch.compile (inductor, C++ on the CPU) of the transformer layers; the
    compiled step's loss and gradients are the eager ones. The test compiles the LM's last layer only (every
    layer compiles the same way; all 6 took 4-5 minutes here)."""
    eager, batch = _lofi(lofi_tiny_run)
    loss = eager(batch, WEIGHTS)["loss"]
    loss.backward()
    compiled, _ = _lofi(lofi_tiny_run)
    assert len(compiled.transformer_layers()) == 6  # 2 SigLIP vision + 2 SigLIP text + 2 LM layers
    assert compile_blocks(compiled.transformer_layers()[-1:]) == 1
    out = compiled(batch, WEIGHTS)["loss"]
    out.backward()
    torch.testing.assert_close(out, loss, rtol=1e-5, atol=1e-6)
    reference = _grads(eager)
    for name, g in _grads(compiled).items():
        torch.testing.assert_close(g, reference[name], rtol=1e-4, atol=1e-6, msg=name)


def test_lofi_loader_workers_give_the_same_batches(lofi_tiny_run: TinyRun, tmp_path: Path) -> None:
    """2 persistent DataLoader workers: the same losses as the tiny run's in-process loading."""
    recipe = tmp_path / "workers.yaml"
    recipe.write_text("base: lofi-tiny\ndata:\n  num_workers: 2\n  persistent_workers: true\n  prefetch_factor: 2\n")
    run = tmp_path / "workers"
    result = CliRunner().invoke(main, ["train", "lofi", "--tiny", "--recipe", str(recipe), "--data",
                                       str(lofi_tiny_run.data), "--run", str(run), "--max-steps", "2", "--quiet",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((run / "config.json").read_text())["recipe"]["data"]["num_workers"] == 2
    got, want = read_metrics(run), read_metrics(lofi_tiny_run.run)[:2]
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-6)


# --- LDM ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ldm_assets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cfg = load_ldm_recipe(TINY)
    return write_random_assets(tmp_path_factory.mktemp("ldm-assets"), cfg["model"], cfg["tiny"]["clip"])


def _ldm_step(assets: tuple[Path, Path], precision: str = "fp32", **speed: bool) -> tuple[torch.Tensor, float]:
    """The codebook gradient and loss of one tiny training step (2 samples x 2 timesteps, fixed latents)."""
    cfg = load_ldm_recipe(TINY)
    frozen = FrozenLDM.load(cfg["model"], *assets, CPU, precision)
    frozen.speed_up(**speed)
    tuner = LdmPromptTuner(cfg, frozen)
    recorder = AttentionRecorder(frozen.unet, cfg["attention"]["layers"], stop_after_last=True)
    gen = torch.Generator().manual_seed(0)
    latents = [torch.randn(2, 3, 16, 16, generator=gen) for _ in range(2)]
    priors = PriorMaps([[np.asarray(g) for g in row[3]] for row in ROWS[:2]], [512.0, 512.0],
                       [crop_box(160, 128, "center_crop")] * 2, CPU)
    sums = tuner.accumulate(recorder, latents, [4, 5], [row[0] for row in ROWS[:2]], priors, 2)
    recorder.remove()
    return tuner.codebook.trainable.grad.clone(), sums["loss"]


def test_ldm_unet_gradient_checkpointing_gives_the_same_gradient(ldm_assets: tuple[Path, Path]) -> None:
    """MONAI's U-Net has no checkpointing switch: its residual blocks are wrapped (the hooked attention blocks are
    not); the codebook's gradient is the same, and the blocks do run again in the backward pass."""
    plain, loss = _ldm_step(ldm_assets)
    cfg = load_ldm_recipe(TINY)
    frozen = FrozenLDM.load(cfg["model"], *ldm_assets, CPU)
    assert len(resnet_blocks(frozen.unet)) == 17
    ckpt, loss_ckpt = _ldm_step(ldm_assets, gradient_checkpointing=True)
    assert loss_ckpt == loss and float(plain.abs().max()) > 0
    torch.testing.assert_close(ckpt, plain, rtol=1e-5, atol=1e-8)


def test_ldm_unet_recomputes_checkpointed_blocks(ldm_assets: tuple[Path, Path]) -> None:
    cfg = load_ldm_recipe(TINY)
    calls = {}
    for on in (False, True):
        frozen = FrozenLDM.load(cfg["model"], *ldm_assets, CPU)
        frozen.speed_up(gradient_checkpointing=on)
        block = resnet_blocks(frozen.unet)[-1]
        count = [0]
        block.conv1.register_forward_hook(lambda *_a, c=count: c.__setitem__(0, c[0] + 1))
        context = torch.randn(1, 77, 32, requires_grad=True)
        frozen.unet_forward(torch.randn(1, 3, 16, 16), [4], context).sum().backward()
        with torch.no_grad():
            frozen.unet_forward(torch.randn(1, 3, 16, 16), [4], context)  # no gradients: no recomputation
        calls[on] = count[0]
    assert calls == {False: 2, True: 3}


@pytest.mark.slow  # inductor's C++ compile: 2-5 min on the shared 2-core CPU
def test_ldm_compiles_resnet_blocks_and_steps_like_eager(ldm_assets: tuple[Path, Path]) -> None:
    plain, loss = _ldm_step(ldm_assets)
    compiled, loss_compiled = _ldm_step(ldm_assets, compile_unet=True)
    assert loss_compiled == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(compiled, plain, rtol=1e-4, atol=1e-7)


def test_ldm_bf16_autocast_on_the_cpu(ldm_assets: tuple[Path, Path], tmp_path: Path) -> None:
    """In-process: the U-Net runs in bf16, the gradient is float32 and near the fp32 one; through the CLI:
    `train ldm --tiny --precision bf16` trains on the CPU with finite losses and says so in run.json."""
    plain, loss = _ldm_step(ldm_assets)
    bf16, loss_bf16 = _ldm_step(ldm_assets, "bf16")
    assert bf16.dtype == torch.float32 and math.isfinite(loss_bf16) and loss_bf16 != loss
    assert loss_bf16 == pytest.approx(loss, rel=0.05)
    cos = torch.nn.functional.cosine_similarity(bf16.flatten(), plain.flatten(), dim=0)
    assert float(cos) > 0.95
    shards = write_ldm_prompts(tmp_path / "shards", ROWS[:2])
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "ldm", "--tiny", "--data", str(shards), "--out", str(run),
                                       "--max-steps", "2", "--device", "cpu", "--precision", "bf16",
                                       "--gradient-checkpointing"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "device cpu bf16" in result.output
    doc = json.loads((run / "run.json").read_text())
    assert doc["inputs"]["precision"] == "bf16" and doc["recipe"]["train"]["gradient_checkpointing"] is True
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in read_metrics(run))
    assert load_checkpoint(run / "checkpoints" / "step-0000002.pt")["model"]["trainable"].dtype == torch.float32
