"""Helpers of the fault suite: run the real CLI in a subprocess and judge how it failed.

Every fault test asserts the same promises: the exit status, one ``error:`` line (or none) and never a
Python traceback, the accounting (read = written + rejected, every input id in the output or the
rejects), and a user's files untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    code: int
    output: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("error: ")]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def cxrdata(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> Run:
    """``python -m cxrdata.cli ARGS`` in a subprocess (stdout and stderr together)."""
    done = subprocess.run([sys.executable, "-m", "cxrdata.cli", *map(str, args)], cwd=cwd, env=cli_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout)


def start(*args: str | Path) -> subprocess.Popen:
    """The CLI in its own session (so its workers can be found, and signalled as a terminal would)."""
    return subprocess.Popen([sys.executable, "-m", "cxrdata.cli", *map(str, args)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def assert_failed_cleanly(run: Run, code: int, *needles: str) -> str:
    """Exit ``code``, exactly one ``error:`` line holding every needle, no traceback; returns the line."""
    assert run.code == code, run.output
    assert "Traceback" not in run.output, run.output
    assert len(run.error_lines) == 1, run.output
    line = run.error_lines[0]
    for needle in needles:
        assert needle in line, line
    return line


def assert_ok(run: Run) -> None:
    assert run.code == 0, run.output
    assert "Traceback" not in run.output and not run.error_lines, run.output


def session_processes(session: int) -> list[int]:
    """PIDs of live processes in a session (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def wait_for(condition, timeout: float = 120.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def linked_copy(src: Path, dst: Path) -> Path:
    """A copy of a sample tree whose files are hard links (cheap); replace a file to break it."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` as a new file (a hard-linked original stays intact)."""
    path.unlink()
    path.write_bytes(data)


def counts(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["configs"]


@contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False):
    """A small tmpfs mounted at ``where`` (root only); skips the test where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)
