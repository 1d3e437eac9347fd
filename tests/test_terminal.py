"""The terminal as a user meets it: a fast ``--help`` (no heavy import), help texts, progress and summaries at
80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
from click.testing import CliRunner

from cxrdata.cli import main

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
