"""Every command keeps its options, and every build its bytes (see tests/golden.py)."""

from __future__ import annotations

import json

import pytest
from golden import GOLDEN, cli_snapshot, run_builds, versions


def test_every_command_keeps_its_options_and_defaults():
    expected = json.loads((GOLDEN / "cli.json").read_text())
    found = cli_snapshot()
    assert sorted(found) == sorted(expected), "commands added or removed"
    for name, params in expected.items():
        assert found[name] == params, f"`cxrdata {name}` changed its options"


@pytest.mark.slow
def test_every_build_writes_the_recorded_bytes(tmp_path):
    golden = json.loads((GOLDEN / "builds.json").read_text())
    differ = {k: (v, versions()[k]) for k, v in golden["versions"].items() if versions()[k] != v}
    if differ:
        pytest.skip(f"byte-deciding libraries differ from the recording: {differ}")
    found = run_builds(tmp_path)
    assert sorted(found) == sorted(golden["builds"])
    for name, files in golden["builds"].items():
        assert found[name] == files, f"build {name} wrote other bytes"
