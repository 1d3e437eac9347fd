"""Where everything lives under OUT (the contract users and tests rely on).

    OUT/README.md                      dataset card
    OUT/manifest.json                  config, hash, inputs, counts
    OUT/data/{config}/{split}-{i:05d}-of-{n:05d}.parquet   i = task index, n = number of tasks
    OUT/rejects/{config}/{i:05d}.parquet

A task writes a shard only for the splits it has records for (``datasets`` cannot read a Parquet
file without rows), so the indices of one split may have gaps; ``manifest.json`` lists the files.
    OUT/tasks/build.json               the configuration this OUT is being built with
    OUT/tasks/{config}/{i:05d}.json    completion marker + stats of task i
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cxrdata.errors import CxrdataError


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

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold OUT for one build; a second concurrent build on the same OUT is refused."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".cxrdata.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CxrdataError(f"another cxrdata build is writing to {self.root}; wait for it to finish") from None
            yield

    def remove_build(self) -> None:
        """Delete what a build writes (``--overwrite``), and nothing else in OUT."""
        for name in ("data", "rejects", "tasks"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for path in (self.card, self.manifest):
            path.unlink(missing_ok=True)
