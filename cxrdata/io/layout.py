"""Where everything lives under OUT (the contract users and tests rely on).

    OUT/README.md                      dataset card
    OUT/manifest.json                  config, hash, inputs, counts
    OUT/data/{config}/{split}-{i:05d}-of-{n:05d}.parquet   i = task index in its split, n = that split's tasks
    OUT/rejects/{config}/{split}-{i:05d}.parquet
    OUT/tasks/build.json               the configuration this OUT is being built with
    OUT/tasks/{config}/{split}-{i:05d}.json    completion marker + stats of task i of that split

Each task holds the records of one split (:mod:`cxrdata.pipeline.partition`), named ``{split}-{i:05d}``;
records without a split are tasks of a split ``unknown`` that write only rejects. A task whose records are
all rejected writes no shard (``datasets`` cannot read a Parquet file without rows), so the indices of a
split may have gaps; ``manifest.json`` lists the files.

An OUT is a cxrdata build when it holds ``tasks/build.json``. cxrdata writes into a new or empty folder
or into its own build, and refuses any other non-empty folder; ``--overwrite`` deletes only the files
a build writes, by name and place, never a user's file that happens to sit in OUT.
"""

from __future__ import annotations

import errno
import fcntl
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError, first_line

LOCK_NAME = ".cxrdata.lock"
# What a build writes, by folder (relative to OUT) and file-name pattern; --overwrite deletes exactly these.
_WRITTEN = {
    "data": re.compile(r"^[\w.-]+/[a-z]+-\d{5}-of-\d{5}\.parquet(\.tmp)?$"),
    "rejects": re.compile(r"^[\w.-]+/([a-z]+-)?\d{5}\.parquet(\.tmp)?$"),  # no split: older builds
    "tasks": re.compile(r"^(build\.json(\.tmp)?|[\w.-]+/([a-z]+-)?\d{5}\.json(\.tmp)?)$"),
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

    def rejects_path(self, config: str, task: str) -> Path:
        """The rejects file of task ``task`` (its name, ``{split}-{i:05d}``)."""
        return self.root / "rejects" / config / f"{task}.parquet"

    def marker_path(self, config: str, task: str) -> Path:
        """The completion marker of task ``task`` (its name, ``{split}-{i:05d}``)."""
        return self.root / "tasks" / config / f"{task}.json"

    def clear_task_leftovers(self, config: str, task: str) -> None:
        """Remove the temporary files a killed run of task ``task`` (its name) may have left behind."""
        for tmp in self.data_dir(config).glob(f"{task}-of-*.tmp"):
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


# -- reading a build back (every command that reads shards resolves --data / OUT here) -----------------------
#
# ``--data`` / OUT is a build's OUT, its ``data/`` folder, or one config's shard folder. Several folders: the
# first holding the config is used. Without a config name: the build's default config, the manifest's first
# (the dataset card's default, what ``datasets.load_dataset(OUT)`` loads); a folder without a manifest has a
# default only when it holds a single config.

SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-\d{5}-of-\d{5}\.parquet$")


def _footer(path: Path) -> Any:
    """A shard's Parquet footer (``pyarrow.parquet.FileMetaData``); a truncated or damaged file is one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise CxrdataError(f"shard {path} is not a readable Parquet file ({first_line(exc)}): it is truncated or "
                           "damaged; rebuild that output") from None


@dataclass(frozen=True)
class BuiltConfig:
    """One config of a build, as the commands that read shards see it."""

    name: str
    folder: Path  # the config's shard folder, OUT/data/<name>
    out: Path | None  # the build holding it; None for a bare folder of shards
    files: dict[str, tuple[Path, ...]]  # split -> its shards, in name order
    manifest: dict[str, Any]  # the config's manifest entry ({} without a manifest)

    @property
    def splits(self) -> list[str]:
        return list(self.files)

    @property
    def all_files(self) -> tuple[Path, ...]:
        return tuple(p for paths in self.files.values() for p in paths)

    @property
    def columns(self) -> list[str]:
        """The column names of the shards (the first shard's footer)."""
        return list(_footer(self.all_files[0]).schema.to_arrow_schema().names)

    @property
    def schema(self) -> str:
        """The schema the shards were written with (their ``cxrdata`` metadata), else the config's name."""
        meta = _footer(self.all_files[0]).schema.to_arrow_schema().metadata or {}
        return json.loads(meta.get(b"cxrdata", b"{}")).get("schema", self.name)

    @property
    def rejects_dir(self) -> Path | None:
        return self.out / "rejects" / self.name if self.out is not None else None

    def split_files(self, split: str | None) -> tuple[Path, ...]:
        """The shards of ``split`` (all splits when None); a split the config lacks is one clear error."""
        if split is None:
            return self.all_files
        if split not in self.files:
            raise CxrdataError(f"config {self.name!r} ({self.folder}) has no split {split!r}; it has: "
                               f"{', '.join(self.files) or 'none'}")
        return self.files[split]

    def dataset(self, split: str, columns: Sequence[str] | None = None) -> Any:
        """One split as a ``datasets.Dataset`` (memory-mapped Arrow), only ``columns`` when given; every
        footer is checked first, and a missing column, split or unreadable shard is one line."""
        import datasets

        files = self.split_files(split)
        footers = {f: _footer(f) for f in files}
        schema = footers[files[0]].schema.to_arrow_schema()
        missing = [c for c in columns or () if c not in schema.names]
        if missing:
            raise CxrdataError(f"config {self.name!r} ({self.folder}) lacks column(s) {', '.join(missing)} needed "
                               f"here; it has: {', '.join(schema.names)}")
        # Zero-row shards are left out (the parquet loader of `datasets` fails on them); none left: an empty dataset.
        filled = [str(f) for f in files if footers[f].num_rows]
        if not filled:
            features = datasets.Features.from_arrow_schema(schema)
            ds = datasets.Dataset.from_dict({n: [] for n in schema.names}, features=features)
        else:
            try:
                ds = datasets.load_dataset("parquet", data_files={split: filled}, split=split)
            except datasets.exceptions.DatasetGenerationError as exc:
                raise CxrdataError(f"config {self.name!r} ({self.folder}) split {split!r}: the shards do not read "
                                   f"({first_line(exc.__cause__ or exc)}); rebuild that output") from None
        return ds.select_columns(list(columns)) if columns else ds


def _manifest(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _holds_shards(folder: Path) -> bool:
    return any(SHARD_NAME.match(p.name) for p in folder.glob("*.parquet"))


def built_configs(data: Path) -> dict[str, tuple[Path, Path | None]]:
    """The configs a folder holds, name -> (shard folder, OUT or None), the manifest's order first (its first
    config is the card's default): ``data`` is a build's OUT, its ``data/`` folder, or one config's folder."""
    data = Path(data)
    if not data.is_dir():
        raise CxrdataError(f"{data} does not exist or is not a folder")
    if _holds_shards(data):
        out = data.parent.parent if data.parent.name == "data" else None
        return {data.name: (data, out)}
    if (data / "data").is_dir():
        base, out = data / "data", data
    else:
        base, out = data, data.parent if data.name == "data" else None
    found = {p.name: p for p in sorted(base.iterdir()) if p.is_dir() and _holds_shards(p)}
    order = [n for n in (_manifest(out).get("configs", {}) if out is not None else {}) if n in found]
    return {n: (found[n], out) for n in [*order, *sorted(set(found) - set(order))]}


def default_config(data: Path, configs: dict[str, tuple[Path, Path | None]]) -> str:
    """The config a folder's readers use without ``--config``: the manifest's first, else the only one."""
    if len(configs) == 1:
        return next(iter(configs))
    out = next(iter(configs.values()))[1]
    listed = [n for n in (_manifest(out).get("configs", {}) if out is not None else {}) if n in configs]
    if not listed:
        raise CxrdataError(f"{data} holds several configs ({', '.join(configs)}) and no manifest naming a default; "
                           "choose one with --config")
    return listed[0]


def read_build(data: Path | Sequence[Path], config: str | None = None) -> BuiltConfig:
    """Config ``config`` of the first of ``data`` holding it (default: the first folder's default config)."""
    folders = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
    if not folders:
        raise CxrdataError("give --data OUT (a build output folder; repeat for several)")
    held = [(folder, built_configs(folder)) for folder in folders]
    if not any(configs for _, configs in held):
        raise CxrdataError(f"no Parquet shards under {', '.join(map(str, folders))} "
                           "(give the --out of a cxrdata build)")
    if config is None:
        config = default_config(*next((folder, configs) for folder, configs in held if configs))
    for _, configs in held:
        if config in configs:
            folder, out = configs[config]
            files: dict[str, list[Path]] = {}
            for path in sorted(folder.glob("*.parquet")):
                if match := SHARD_NAME.match(path.name):
                    files.setdefault(match.group("split"), []).append(path)
            manifest = _manifest(out).get("configs", {}).get(config, {}) if out is not None else {}
            return BuiltConfig(config, folder, out, {s: tuple(p) for s, p in files.items()}, manifest)
    found = sorted({name for _, configs in held for name in configs})
    raise CxrdataError(f"no config {config!r} under {', '.join(map(str, folders))}; found: {', '.join(found)}")
