"""The trainers and what runs trained models: ``train``, ``eval retrieval``, ``predict``, ``heatmaps``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cxrdata.cli.common import console, friendly_errors
from cxrdata.cli.tools import eval_group
from cxrdata.errors import CxrdataError


def speed_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--precision``, ``--compile``, ``--gradient-checkpointing`` (both trainers; run-only settings, docs/gpu.md)."""
    options = [
        click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]), default=None,
                     help="Autocast precision on any device (fp32 master weights; fp16: CUDA only). Default: the "
                          "recipe's train.precision on CUDA, fp32 on the CPU."),
        click.option("--compile/--no-compile", "compile_", default=None,
                     help="torch.compile the model block by block (default: the recipe's train.compile, off)."),
        click.option("--gradient-checkpointing/--no-gradient-checkpointing", "checkpointing", default=None,
                     help="Recompute activations in the backward pass: less memory, the same gradients "
                          "(default: the recipe's)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def settings_option(example: str) -> Callable[[Any], Any]:
    """``--set KEY=VALUE`` (repeatable): a recipe value replaced without writing a YAML."""
    return click.option("--set", "settings", metavar="KEY=VALUE", multiple=True,
                        help=f"Replace a recipe value without writing a YAML, e.g. --set {example} (dotted key, value "
                             "read as YAML; repeatable; saved with the run).")


# -- train lofi / eval retrieval / predict lofi-boxes (cxrdata.train, cxrdata.models; the [train] extra) --------
@click.group("train")
def train_group() -> None:
    """Train the models that consume cxrdata shards (GPU when present; resumable)."""


@train_group.command("lofi")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=False,
              help="A build OUT holding the recipe's configs (repeat for several; default with --resume: the run's).")
@click.option("--run", "--run-dir", "run", type=click.Path(path_type=Path), required=True,
              help="Run folder (checkpoints, metrics); under torchrun spell it --run-dir (torchrun claims --run).")
@click.option("--recipe", default=None, help="lofi (default), lofi-tiny (default with --tiny) or a YAML file.")
@click.option("--vision", type=click.Path(path_type=Path), default=None,
              help="Local SigLIP2 folder (transformers format), e.g. siglip2-so400m-patch16-512, or a Hub id "
                   "already in the local Hugging Face cache (nothing is downloaded).")
@click.option("--text", type=click.Path(path_type=Path), default=None,
              help="Local SigLIP text tower folder; default: --vision (a full SiglipModel).")
@click.option("--llm", type=click.Path(path_type=Path), default=None,
              help="Local causal LM folder with its tokenizer, e.g. gemma-3-270m (or a cached Hub id).")
@click.option("--tiny", is_flag=True, help="Tiny random towers written to RUN/weights (CPU tests, no weights needed).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this global step (the learning-rate schedule is unchanged).")
@click.option("--resume", is_flag=True, help="Continue RUN from its latest checkpoint, exactly.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--seed", type=int, default=None, help="Replace the recipe's seed (new runs only).")
@click.option("--quiet", is_flag=True, help="No per-step lines.")
@speed_options
@settings_option("optim.lr=1e-4")
@friendly_errors
def train_lofi_cmd(data: tuple[Path, ...], run: Path, recipe: str | None, vision: Path | None, text: Path | None,
                   llm: Path | None, tiny: bool, max_steps: int | None, resume: bool, device: str, seed: int | None,
                   quiet: bool, precision: str | None, compile_: bool | None, checkpointing: bool | None,
                   settings: tuple[str, ...]) -> None:
    """LoFi: sigmoid + report captioning + location-aware captioning losses (Kang et al. 2026, "LoFi:
    Location-Aware Fine-Grained Representation Learning for Chest X-ray").

    \b
    Several GPUs (torch DDP; the global batch is split over the processes):
      torchrun --standalone --nproc_per_node N -m cxrdata.cli train lofi --data OUT --run-dir RUN
        --vision SIGLIP --llm LLM"""
    from cxrdata.train.lofi import TrainOptions, train_lofi

    result = train_lofi(TrainOptions(data=list(data), run=run, recipe=recipe, vision=vision, text=text, llm=llm,
                                     tiny=tiny, max_steps=max_steps, resume=resume, device=device, seed=seed,
                                     quiet=quiet, precision=precision, compile=compile_,
                                     gradient_checkpointing=checkpointing, settings=settings))
    if not result.is_main:
        return
    def left_out(config: str) -> str:
        counts = result.left_out[config]
        return f" ({', '.join(f'{n} {why}' for why, n in sorted(counts.items()))} left out)" if counts else ""

    used = ", ".join(f"{k} {v} rows{left_out(k)}" for k, v in result.sources.items())
    console.print(f"sources: {used}" + (f"; optional, not found: {', '.join(result.missing_optional)}"
                                         if result.missing_optional else ""))
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    console.print(f"steps {result.start_step} -> {result.step} of {result.total_steps} "
                  f"({result.steps_per_epoch} per epoch); last loss {last}; checkpoint {result.checkpoint}")


@eval_group.command("retrieval")
@click.option("--run", type=click.Path(path_type=Path), required=True, help="A `train lofi` run folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the config (repeatable).")
@click.option("--split", default="test", show_default=True)
@click.option("--config", default="mimic", show_default=True, help="Config with images and report text.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("retrieval.json"), show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows (smoke tests).")
@friendly_errors
def eval_retrieval(run: Path, data: tuple[Path, ...], split: str, config: str, out: Path, batch_size: int,
                   device: str, limit: int | None) -> None:
    """Image->text and text->image Recall@1/5/10 of a LoFi run (LoFi: R@1 13.9 / 11.9, MIMIC-CXR test)."""
    from cxrdata.evaluate.retrieval import evaluate_retrieval, report_lines, write_report

    report = evaluate_retrieval(run, list(data), split, config, batch_size, device, limit)
    for line in report_lines(report):
        console.print(line)
    console.print(f"wrote {write_report(report, out)}")


@click.group("predict")
def predict_group() -> None:
    """Run a trained model over built shards and write its predictions."""


@predict_group.command("lofi-boxes")
@click.option("--run", type=click.Path(path_type=Path), required=True, help="A `train lofi` run folder.")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the config (repeatable).")
@click.option("--config", required=True, help="Config with a phrase per record (ms-cxr, ms-cxr-loc, vindr-prompts).")
@click.option("--split", default="test", show_default=True)
@click.option("--phrase-column", default=None, help="Column to ground; default: phrase, class_name, prompt, category.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("boxes.json"), show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@friendly_errors
def predict_lofi_boxes(run: Path, data: tuple[Path, ...], config: str, split: str, phrase_column: str | None,
                       out: Path, batch_size: int, max_new_tokens: int, device: str, limit: int | None) -> None:
    """Ground each record's phrase (`Detect all instances of "{phrase}".`) and write the decoded boxes as JSON."""
    from cxrdata.models.lofi_predict import predict_boxes

    doc = predict_boxes(run, list(data), config, split, out, phrase_column, batch_size, max_new_tokens, device, limit)
    bad = sum(1 for r in doc["records"].values() if r["error"])
    console.print(f"wrote {out}: {len(doc['records'])} records, {bad} whose text did not parse as {doc['box_format']} "
                  "boxes")


# -- train ldm / heatmaps ldm (cxrdata.train.ldm, cxrdata.models.ldm_heatmaps; the [train] extra) --------------
@train_group.command("ldm")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT holding the ldm-prompts config (repeatable).")
@click.option("--run", "--out", "--run-dir", "run", type=click.Path(path_type=Path), required=True,
              help="Run folder (run.json, checkpoints, metrics, embeddings.safetensors); under torchrun spell it "
                   "--out or --run-dir (torchrun claims --run).")
@click.option("--ldm", type=click.Path(path_type=Path), default=None,
              help="MONAI bundle cxr_image_synthesis_latent_diffusion_model (models/autoencoder.pth, "
                   "models/diffusion_model.pth); required unless --tiny.")
@click.option("--clip", type=click.Path(path_type=Path), default=None,
              help="Local CLIP text encoder + tokenizer (transformers; text_encoder/ + tokenizer/ of SD 2.1 too); "
                   "required unless --tiny.")
@click.option("--recipe", default=None, help="ldm-prompt-tuning (default), ldm-prompt-tuning-tiny or a YAML file.")
@click.option("--tiny", is_flag=True, help="The tiny recipe; without --ldm/--clip, tiny random-weight ones are "
                                           "written to RUN/weights (CPU tests, no weights needed).")
@click.option("--lut", type=click.Path(path_type=Path), default=None,
              help="Gaussian LUT for shards built without --lut (Gaussians from each row's locations).")
@click.option("--config", default=None, help="Config to read (default: the recipe's, ldm-prompts).")
@click.option("--split", default=None, help="Split to train on (default: the recipe's, train).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this step (default: recipe).")
@click.option("--resume", is_flag=True, help="Continue RUN from its latest checkpoint, exactly.")
@click.option("--seed", type=int, default=None, help="Replace the recipe's seed.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--quiet", is_flag=True, help="No per-step lines.")
@speed_options
@settings_option("train.lr=1e-3")
@friendly_errors
def train_ldm_cmd(data: tuple[Path, ...], run: Path, ldm: Path | None, clip: Path | None, recipe: str | None,
                  tiny: bool, lut: Path | None, config: str | None, split: str | None, max_steps: int | None,
                  resume: bool, seed: int | None, device: str, quiet: bool, precision: str | None,
                  compile_: bool | None, checkpointing: bool | None, settings: tuple[str, ...]) -> None:
    """Anatomy prompt tuning of the frozen chest X-ray LDM: only the location-token embeddings learn
    (Vilouras et al. 2025, "Anatomy-Grounded Weakly Supervised Prompt Tuning for Chest X-ray Latent Diffusion Models").

    \b
    Several GPUs (torch DDP; each process takes the recipe's batch size):
      torchrun --standalone --nproc_per_node N -m cxrdata.cli train ldm --data OUT --out RUN
        --ldm BUNDLE --clip CLIP"""
    from cxrdata.models.ldm_recipe import RECIPE, TINY_RECIPE
    from cxrdata.train.ldm import train_ldm

    if tiny and recipe is not None:
        raise CxrdataError("give --tiny or --recipe, not both")
    path = train_ldm(list(data), run, ldm=ldm, clip=clip, recipe=recipe or (TINY_RECIPE if tiny else RECIPE),
                     lut=lut, max_steps=max_steps, resume=resume, device=device, config=config, split=split,
                     seed=seed, tiny=tiny, precision=precision, compile_unet=compile_,
                     gradient_checkpointing=checkpointing, log=(lambda _m: None) if quiet else console.print,
                     settings=settings)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes the run
        console.print(f"tuned embeddings: {path}")


@click.group("heatmaps")
def heatmaps_group() -> None:
    """Write a model's phrase-grounding heatmaps for `cxrdata eval grounding --heatmaps DIR`."""


@heatmaps_group.command("ldm")
@click.option("--run", type=click.Path(path_type=Path), default=None, help="A `train ldm` run folder.")
@click.option("--frozen", is_flag=True, help="CLIP's own embeddings: the frozen-LDM baseline (no --run needed).")
@click.option("--recipe", default=None, help="With --frozen: the model's recipe (default ldm-prompt-tuning).")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="A build OUT whose rows have id, image, prompt (ms-cxr-loc, vindr-prompts; repeatable).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder of <record id>.npy heatmaps.")
@click.option("--ldm", type=click.Path(path_type=Path), default=None, help="MONAI bundle (default: the run's).")
@click.option("--clip", type=click.Path(path_type=Path), default=None, help="CLIP folder (default: the run's).")
@click.option("--embeddings", type=click.Path(path_type=Path), default=None,
              help="Tuned embeddings file (default: RUN/embeddings.safetensors).")
@click.option("--config", default=None, help="Config to read when OUT holds several.")
@click.option("--split", default=None, help="Only this split (default: every split).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N records.")
@click.option("--overwrite", is_flag=True, help="Recompute heatmaps already in --out.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@friendly_errors
def heatmaps_ldm_cmd(run: Path | None, frozen: bool, recipe: str | None, data: tuple[Path, ...], out: Path,
                     ldm: Path | None, clip: Path | None, embeddings: Path | None, config: str | None,
                     split: str | None, limit: int | None, overwrite: bool, device: str) -> None:
    """Cross-attention heatmaps over layers and timesteps (Vilouras et al. 2024, the method Vilouras et al. 2025
    uses)."""
    from cxrdata.models.ldm_heatmaps import ldm_heatmaps

    summary = ldm_heatmaps(list(data), out, run=run, recipe=recipe, ldm=ldm, clip=clip, embeddings=embeddings,
                           frozen=frozen, config=config, split=split, device=device, overwrite=overwrite,
                           limit=limit, log=lambda _m: None)
    console.print(f"wrote {summary['written']} heatmaps to {out} ({summary['kept_existing']} already there)")


def register(main: click.Group) -> None:
    for command in (train_group, predict_group, heatmaps_group):
        main.add_command(command)
