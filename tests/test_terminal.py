"""The terminal as a user meets it: a fast ``--help`` (no heavy import), help texts, progress and summaries at
80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
