"""Golden snapshots that guard a restructuring: every command's options, and the bytes every build writes.

``python tests/golden.py --write`` records ``tests/golden/cli.json`` (each command's parameters: names,
type, default, required, multiple, flag) and ``tests/golden/builds.json`` (the sha256 of every file a
set of builds writes under ``data/`` and ``rejects/``, and of the manifest with its configuration hash
and the machine's paths taken out), together with the versions of the libraries that decide those
bytes (a new pyarrow, OpenCV or numpy may write other bytes for the same rows). ``test_golden.py``
compares against them; the build comparison is skipped, with the reason, where those versions differ.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

GOLDEN = Path(__file__).resolve().parent / "golden"
BYTE_DECIDING = ("pyarrow", "opencv-python-headless", "simplejpeg", "numpy", "pydicom", "polars", "pillow",
                 "pylibjpeg-openjpeg", "pylibjpeg-rle")


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):  # through the click API: build, doctor, ... load lazily
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _type(kind: click.ParamType) -> str:
    name = type(kind).__name__
    if isinstance(kind, click.Choice):
        return f"{name}{sorted(map(str, kind.choices))}"
    if isinstance(kind, click.types._NumberRangeBase):
        return f"{name}[{kind.min},{kind.max}]"
    return name


def cli_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Each command's parameters, by name (the order options are listed in is not a contract)."""
    from cxrdata.cli import main

    snapshot = {}
    for name, command in commands(main):
        params = []
        for p in command.params:
            params.append({"name": p.name, "opts": sorted(p.opts), "type": _type(p.type), "required": p.required,
                           "multiple": p.multiple, "flag": bool(getattr(p, "is_flag", False)),
                           "default": _plain(p.default if not callable(p.default) else "<callable>")})
        snapshot[name] = sorted(params, key=lambda p: p["name"])
    return snapshot


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in BYTE_DECIDING}


def build_cases(mimic: Path, vindr: Path, padchest: Path, imagenome: Path, lut: Path) -> dict[str, list[str]]:
    """name -> cxrdata arguments (without --out); small images, fixed tasks, one worker."""
    ms_cxr = ["--root", str(mimic / "ms-cxr"), "--mimic-root", str(mimic)]
    gen = ["--root", str(imagenome / "chest-imagenome-dataset-1.0.0"), "--mimic-root", str(imagenome / "mimic-cxr-jpg")]
    return {
        "mimic": ["build", "mimic", "--root", str(mimic)],
        "mimic-path": ["build", "mimic", "--root", str(mimic), "--image-format", "path"],
        "mimic-all-views-png": ["build", "mimic", "--root", str(mimic), "--views", "all", "--image-format", "png"],
        "ldm-prompts": ["build", "mimic", "--root", str(mimic), "--recipe", "ldm-prompts", "--lut", str(lut)],
        "ms-cxr": ["build", "ms-cxr", *ms_cxr],
        "ms-cxr-loc": ["build", "ms-cxr", *ms_cxr, "--recipe", "ms-cxr-loc"],
        "ms-cxr-lofi": ["build", "ms-cxr", *ms_cxr, "--recipe", "lofi-regions", "--box-format", "paligemma"],
        "imagenome": ["build", "imagenome", *gen],
        "imagenome-lofi": ["build", "imagenome", *gen, "--recipe", "lofi-regions"],
        "vindr": ["build", "vindr", "--root", str(vindr)],
        "vindr-wbf-window": ["build", "vindr", "--root", str(vindr), "--fuse", "wbf", "--dicom-display", "window"],
        "vindr-path": ["build", "vindr", "--root", str(vindr), "--image-format", "path"],
        "vindr-lofi": ["build", "vindr", "--root", str(vindr), "--recipe", "lofi-regions"],
        "vindr-prompts": ["synth-prompts", "vindr", "--root", str(vindr), "--lut", str(lut), "--split", "train",
                          "--split", "test"],
        "padchest-gr": ["build", "padchest-gr", "--root", str(padchest)],
        "padchest-gr-lofi": ["build", "padchest-gr", "--root", str(padchest), "--recipe", "lofi-regions"],
    }


def _scrub(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, replacements) for k, v in value.items() if k != "config_hash"}
    if isinstance(value, list):
        return [_scrub(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
    return value


def digest_build(out: Path, replacements: dict[str, str]) -> dict[str, str]:
    """sha256 of every data and rejects file, and of the manifest without hash and machine paths."""
    digests = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for folder in ("data", "rejects") for p in sorted((out / folder).rglob("*")) if p.is_file()}
    manifest = _scrub(json.loads((out / "manifest.json").read_text()), replacements)
    digests["manifest.json"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return digests


STABLE = Path(tempfile.gettempdir()) / "cxrdata-golden-samples"


def stable_roots() -> dict[str, Path]:
    """The bundled samples, hard-linked to a fixed place: reject details and path-mode rows hold the input's
    path, so byte equality needs the same path whatever the cache folder is called."""
    try:
        from cxrdata.api import bundled_root
    except ImportError:  # a checkout from before the registry (to record a baseline)
        from cxrdata.sample.bundled import bundled_root
    roots = {}
    for name in ("mimic", "vindr", "padchest-gr", "imagenome"):
        roots[name] = STABLE / name
        if not roots[name].is_dir():
            shutil.copytree(bundled_root(name), roots[name], copy_function=os.link)
    return roots


def run_builds(work: Path) -> dict[str, dict[str, str]]:
    """Every golden build into ``work``; name -> file digests."""
    from click.testing import CliRunner

    from cxrdata.cli import main

    roots = stable_roots()
    lut = work / "lut.json"
    runner = CliRunner()
    result = runner.invoke(main, ["lut", "build", "--sample", "--out", str(lut)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    replacements = {str(work): "<WORK>", **{str(root): f"<{name}>" for name, root in roots.items()}}
    cases = build_cases(roots["mimic"], roots["vindr"], roots["padchest-gr"], roots["imagenome"], lut)
    found = {}
    for name, args in cases.items():
        out = work / name
        result = runner.invoke(main, [*args, "--out", str(out), "--image-size", "64", "--workers", "1",
                                      "--tasks", "3", "--quiet", "--max-reject-share", "1"], catch_exceptions=False)
        assert result.exit_code == 0, f"{name}: {result.output}"
        found[name] = digest_build(out, replacements)
    return found


def write() -> None:
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / "cli.json").write_text(json.dumps(cli_snapshot(), indent=1, sort_keys=True) + "\n")
    work = Path(tempfile.mkdtemp(prefix="cxrdata-golden-"))
    try:
        doc = {"versions": versions(), "builds": run_builds(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (GOLDEN / "builds.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN / 'cli.json'} and {GOLDEN / 'builds.json'} ({len(doc['builds'])} builds)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden.py --write")
    write()
