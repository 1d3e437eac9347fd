"""Where everything lives under OUT (the contract users and tests rely on).

    OUT/README.md                      dataset card
    OUT/manifest.json                  config, hash, inputs, counts
    OUT/data/{config}/{split}-{i:05d}-of-{n:05d}.parquet   i = task index, n = number of tasks
    OUT/rejects/{config}/{i:05d}.parquet

A task writes a shard only for the splits it has records for (``datasets`` cannot read a Parquet
file without rows), so the indices of one split may have gaps; ``manifest.json`` lists the files.
    OUT/tasks/build.json               the configuration this OUT is being built with
    OUT/tasks/{config}/{i:05d}.json    completion marker + stats of task i

An OUT is a cxrdata build when it holds ``tasks/build.json``. cxrdata writes into a new or empty folder
or into its own build, and refuses any other non-empty folder; ``--overwrite`` deletes only the files
a build writes, by name and place, never a user's file that happens to sit in OUT.
"""

from __future__ import annotations

import errno
import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cxrdata.errors import CxrdataError

LOCK_NAME = ".cxrdata.lock"
# What a build writes, by folder (relative to OUT) and file-name pattern; --overwrite deletes exactly these.
_WRITTEN = {
    "data": re.compile(r"^[\w.-]+/[a-z]+-\d{5}-of-\d{5}\.parquet(\.tmp)?$"),
    "rejects": re.compile(r"^[\w.-]+/\d{5}\.parquet(\.tmp)?$"),
    "tasks": re.compile(r"^(build\.json(\.tmp)?|[\w.-]+/\d{5}\.json(\.tmp)?)$"),
}
_TOP_FILES = ("README.md", "manifest.json", "manifest.json.tmp", "README.md.tmp")


def unwritable(path: Path, exc: OSError) -> CxrdataError:
    """One line for an output that cannot be written (read-only, no permission, disk full, ...)."""
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted"}.get(exc.errno or 0, exc.strerror or str(exc))
    where = exc.filename or path
    return CxrdataError(f"cannot write {where}: {why}. Finished tasks are kept: fix this, then rerun the same "
                        "command to resume")


@dataclass(frozen=True)
class OutputLayout:
    root: Path

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def build_config(self) -> Path:
        return self.root / "tasks" / "build.json"

    def data_dir(self, config: str) -> Path:
        return self.root / "data" / config

    def shard_path(self, config: str, name: str) -> Path:
        return self.data_dir(config) / name

    def rejects_path(self, config: str, task: int) -> Path:
        return self.root / "rejects" / config / f"{task:05d}.parquet"

    def marker_path(self, config: str, task: int) -> Path:
        return self.root / "tasks" / config / f"{task:05d}.json"

    def clear_task_leftovers(self, config: str, task: int) -> None:
        """Remove the temporary files a killed run of this task may have left behind."""
        for tmp in self.data_dir(config).glob(f"*-{task:05d}-of-*.tmp"):
            tmp.unlink(missing_ok=True)
        self.rejects_path(config, task).with_suffix(".parquet.tmp").unlink(missing_ok=True)

    def clear_leftovers(self) -> None:
        """Remove every temporary file a killed build left (only one build runs per OUT: see lock)."""
        for name in ("data", "rejects", "tasks"):
            for tmp in (self.root / name).rglob("*.tmp"):
                tmp.unlink(missing_ok=True)

    def is_build(self) -> bool:
        """Whether OUT holds a cxrdata build (its ``tasks/build.json``, even a damaged one)."""
        return self.build_config.is_file()

    def check_writable_target(self) -> None:
        """Refuse an OUT that is a file, or a non-empty folder that is not a cxrdata build (one line each)."""
        if self.root.exists() and not self.root.is_dir():
            raise CxrdataError(f"--out {self.root} is a file, not a folder: choose a folder")
        if not self.root.is_dir() or self.is_build():
            return
        try:
            foreign = sorted(p.name for p in self.root.iterdir() if p.name != LOCK_NAME)
        except OSError as exc:
            raise CxrdataError(f"--out {self.root} cannot be read: {exc.strerror or exc}") from None
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise CxrdataError(f"--out {self.root} is not empty ({shown}) and is not a cxrdata build: "
                               "choose a new or empty folder (cxrdata never writes over files it did not write)")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold OUT for one build; a second concurrent build on the same OUT is refused."""
        self.check_writable_target()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / LOCK_NAME, "a")  # noqa: SIM115 (held for the whole build)
        except OSError as exc:
            raise unwritable(self.root, exc) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CxrdataError(f"another cxrdata build is writing to {self.root}; wait for it to finish") from None
            yield

    def written_files(self) -> list[Path]:
        """Every file in OUT that a build writes (matched by folder and name), for ``--overwrite``."""
        found = [self.root / name for name in _TOP_FILES if (self.root / name).is_file()]
        for folder, pattern in _WRITTEN.items():
            base = self.root / folder
            if base.is_dir():
                found += [p for p in base.rglob("*") if p.is_file() and pattern.match(p.relative_to(base).as_posix())]
        return sorted(found)

    def remove_build(self) -> None:
        """Delete what a build writes (``--overwrite``), and nothing else in OUT; empty folders go too."""
        for path in self.written_files():
            path.unlink()
        for folder in _WRITTEN:
            base = self.root / folder
            if base.is_dir():
                for sub in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    if not any(sub.iterdir()):
                        sub.rmdir()
                if not any(base.iterdir()):
                    base.rmdir()
