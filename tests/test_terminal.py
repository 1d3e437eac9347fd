"""The terminal as a user meets it: a fast ``--help`` (no heavy import), help texts, progress and summaries at
80 columns."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from cxrdata.api import build
from cxrdata.cli import main
from cxrdata.pipeline.progress import BuildProgress
from cxrdata.pipeline.summary import print_summary
from cxrdata.pipeline.task_runner import REJECTED
from cxrdata.sources.doctor import print_findings
from cxrdata.sources.registry import entry, resolve

HEAVY = ("cv2", "pydicom", "PIL", "simplejpeg", "pysbd", "polars", "pyarrow", "torch", "datasets", "transformers",
         "spacy", "rich", "numpy", "yaml")


def test_help_imports_no_heavy_library() -> None:
    """A fresh interpreter builds the command tree and renders ``cxrdata --help`` without the heavy libraries."""
    code = (
        "import json, sys\n"
        "import cxrdata.cli\n"
        "try:\n"
        "    cxrdata.cli.main(['--help'], prog_name='cxrdata')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "COLUMNS": "80"})
    assert "build" in done.stdout and "Commands:" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_lazy_groups_still_list_and_run_their_commands() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["build", "--help"]).output.count("\n  ") >= 6
    for group, command in (("build", "vindr"), ("doctor", "padchest-gr"), ("sample-data", "mimic"),
                           ("export", "chat"), ("synth-prompts", "vindr")):
        result = runner.invoke(main, [group, command, "--help"])
        assert result.exit_code == 0, result.output
        assert f"{group} {command} [OPTIONS]" in result.output


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


def test_help_texts_cite_papers_by_name_not_internal_labels() -> None:
    runner = CliRunner()
    pages = {" ".join(p): runner.invoke(main, [*p, "--help"], terminal_width=200).output for p in _commands(main)}
    assert len(pages) > 30
    for name, page in pages.items():
        for label in ("seed 0", "SPEC", "issue ", "§"):
            assert label not in page, f"`cxrdata {name} --help` says {label!r}"
    assert "Location-Aware Fine-Grained Representation Learning for Chest X-ray" in pages["train lofi"]
    title = "Anatomy-Grounded Weakly Supervised Prompt Tuning for Chest X-ray Latent Diffusion Models"
    assert title in " ".join(pages["train ldm"].split())
    assert "Vilouras et al. 2025, figure 3" in pages["lut plot"]


def test_build_help_lists_only_the_recipes_the_dataset_accepts() -> None:
    runner = CliRunner()
    mimic = runner.invoke(main, ["build", "mimic", "--help"], terminal_width=200).output
    recipe_line = next(line for line in mimic.splitlines() if line.lstrip().startswith("--recipe"))
    assert "A recipe: ldm-prompts (recipes/README.md), or a YAML file." in recipe_line
    vindr = runner.invoke(main, ["build", "vindr", "--help"], terminal_width=200).output
    assert "A recipe: lofi-regions, vindr-prompts (recipes/README.md)" in vindr


def _column_text(rendered: str, column: int) -> str:
    """The text of one table column, its wrapped pieces joined, whitespace removed."""
    pieces = [line.split("│")[column] for line in rendered.splitlines() if line.count("│") > column]
    return "".join("".join(pieces).split())


def _render(draw) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    draw(console)
    return console.export_text()


@pytest.fixture(scope="module")
def imagenome_regions(tmp_path_factory: pytest.TempPathFactory):
    """A real build whose config names are the longest there are (imagenome-silver-lofi-regions), with rejects."""
    return build("imagenome", sample=True, recipe="lofi-regions", out=tmp_path_factory.mktemp("out"), workers=1)


def test_summary_fits_80_columns_and_never_cuts_a_name(imagenome_regions) -> None:
    text = _render(lambda console: print_summary(console, imagenome_regions))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    lines = text.splitlines()
    assert "imagenome-silver-lofi-regions: not written, by reason" in text
    assert "imagenome-silver-lofi-regions: time per stage" in text
    assert sum("│ imagenome-silver-lofi-regions │" in line for line in lines) == 3  # test, train, validation
    for name in ("gold_image_in_images_to_avoid", "scene_graph_invalid", "imagenome-silver-regions",
                 "imagenome-gold-attributes"):
        assert f"│ {name} " in text


def test_progress_bars_show_rate_time_and_rejects_and_a_workers_line() -> None:
    """The bars as the build drives them (start, then per-stage and rejected counts), drawn at 80 columns."""
    out = io.StringIO()
    console = Console(width=80, file=out, force_terminal=True)
    stages = ["imagenome-row", "imagenome-scene-graph", "image", "imagenome-silver-regions", "lofi-targets"]
    with BuildProgress(console=console) as progress:
        progress.start("imagenome-silver-lofi-regions", 1300, stages, tasks=4, workers=3)
        for stage in stages:
            progress.advance(stage, 700)
        progress.advance(REJECTED, 2)
        progress.advance(REJECTED, 1)
        progress.advance("write", 650)
        bars = _render(lambda c: c.print(progress.bars()))
    assert "imagenome-silver-lofi-regions: 1,300 records in 4 tasks, starting 3 workers" in out.getvalue()
    lines = bars.splitlines()
    assert len(lines) == 6 and max(len(line) for line in lines) <= 80 and "…" not in bars
    assert lines[3].split()[0] == "imagenome-silver-regions" and lines[3].split()[2] == "700/1300"
    write = lines[5].split()
    assert write[0] == "write" and write[2] == "650/1300" and write[-2:] == ["3", "rejected"]
    assert write[3].endswith("/s") and re.fullmatch(r"\d+:\d\d:\d\d", write[4])  # rate, elapsed


def test_a_build_in_this_process_says_so() -> None:
    out = io.StringIO()
    with BuildProgress(console=Console(width=80, file=out, force_terminal=True)) as progress:
        progress.start("chestxray14-prompts", 12, ["image"], tasks=1, workers=1)
    assert "chestxray14-prompts: 12 records in 1 task, in this process" in out.getvalue()


def test_doctor_folds_long_file_names_instead_of_cutting_them(tmp_path: Path) -> None:
    root = tmp_path / "a-rather-long-folder-name-for-the-physionet-download" / "mimic-cxr-jpg-2.1.0"
    root.mkdir(parents=True)
    findings = resolve(entry("mimic").doctor)(root=root, reports_root=None, decode=0)
    text = _render(lambda console: print_findings(console, findings, "doctor mimic"))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in _column_text(text, 2)
    assert "".join(f"metadata not found: expected mimic-cxr-2.0.0-metadata.csv.gz or mimic-cxr-2.0.0-metadata.csv "
                   f"in {root}".split()) in _column_text(text, 3)
