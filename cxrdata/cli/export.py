"""``cxrdata export chat``: a build -> conversations for VLM fine-tuning (TRL, LLaMA-Factory, LLaVA)."""

from __future__ import annotations

from pathlib import Path

import click

from cxrdata.cli.common import LazyGroup, console, friendly_errors


def _add_chat(group: click.Group) -> None:
    """Add ``export chat`` (its choices come from the exporter, which imports numpy and pyarrow)."""
    from cxrdata.export.examples import TASKS
    from cxrdata.export.writers import FORMATS
    from cxrdata.targets.box_text import FORMATS as BOX_FORMATS

    @group.command("chat")
    @click.argument("build", type=click.Path(path_type=Path, exists=True, file_okay=False))
    @click.option("--out", "dest", type=click.Path(path_type=Path), required=True,
                  help="Folder to write (new or empty; a previous export with --overwrite).")
    @click.option("--task", type=click.Choice(TASKS), required=True,
                  help="grounding (phrase -> boxes), dense-caption (boxes -> phrase), report, vqa.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="messages", show_default=True,
                  help="messages: Parquet for TRL's SFTTrainer; sharegpt: JSON Lines for LLaMA-Factory; llava: JSON.")
    @click.option("--box-format", type=click.Choice(BOX_FORMATS), default="qwen2vl", show_default=True,
                  help="Box text of prompts and answers (qwen2vl: <|box_start|>(x1,y1),(x2,y2)<|box_end|>, 0-1000).")
    @click.option("--config", default=None, help="Config of the build to export (default: its first).")
    @click.option("--split", default=None, help="Only this split (default: every split).")
    @click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same templates and negatives.")
    @click.option("--negative-share", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
                  help="Share of negatives (absent findings) among the conversations; default 0.2 for grounding, "
                       "0.5 for vqa.")
    @click.option("--overwrite", is_flag=True, help="Replace a previous export in --out.")
    @friendly_errors
    def export_chat(build: Path, dest: Path, task: str, fmt: str, box_format: str, config: str | None,
                    split: str | None, seed: int, negative_share: float | None, overwrite: bool) -> None:
        """Single-turn conversations (image + prompt -> answer) from a build with regions, prompts or reports."""
        from cxrdata.export.driver import MANIFEST, export_chat

        result = export_chat(build, dest, task=task, fmt=fmt, box_format=box_format, config=config,  # type: ignore[arg-type]
                             split=split, seed=seed, negative_share=negative_share, overwrite=overwrite)
        for name, c in result.counts.items():
            console.print(f"{name}: {c.records_read} records, {c.records_exported} exported, "
                          f"{c.records_without_examples} without conversations; {c.positives} positives, "
                          f"{c.negatives} negatives")
        neg = result.negatives
        if neg["requested_share"]:
            console.print(f"negatives: {neg['kept']} of {neg['candidates']} candidates, share "
                          f"{neg['achieved_share']:.3f} (asked {neg['requested_share']})")
        console.print(f"wrote {result.conversations} conversations to {dest} (records without any: {MANIFEST})")


export_group = LazyGroup("export", _add_chat, help="Export a build in the formats other tools train on.")


def register(main: click.Group) -> None:
    main.add_command(export_group)
