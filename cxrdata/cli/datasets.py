"""``build``, ``doctor`` and ``sample-data``: one command per dataset, generated from the registry.

A dataset's ``build`` command takes its own options (its registry entry's options class), the options of
its image kind, ``--recipe`` with the options of the stages of the recipes it accepts, and the build
options. No dataset name appears here: adding one to the registry adds its three commands.
"""

from __future__ import annotations

import os
import sys
import typing
from pathlib import Path
from typing import Any

import click

from cxrdata.cli.common import (
    INPUT_PATH,
    apply,
    click_options,
    console,
    error_line,
    friendly_errors,
    given,
)
from cxrdata.recipe import build_recipe_names, load_build_recipe, option_fields, option_name

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    from cxrdata.sources.base import DatasetEntry


def build_options() -> list[Any]:
    """Options every ``build`` command takes."""
    return [
        click.option("--out", type=INPUT_PATH, required=True,
                     help="Output folder (new, empty, or a previous cxrdata build to resume)."),
        click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
                     help="Worker processes of the local engine; CPUs of the local Ray runtime."),
        click.option("--tasks", type=click.IntRange(min=1), default=None,
                     help="About this many tasks (= shards) in all, shared among the splits by size, none of "
                          "under 8 records; default: from each split's number of records."),
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="local: a process pool; ray: Ray Data (pip install 'cxrdata[ray]'), see docs/cluster.md."),
        click.option("--ray-address", default=None,
                     help="With --engine ray: the cluster to join (host:port, or 'auto'); default: a local runtime."),
        click.option("--overwrite", is_flag=True,
                     help="Delete what a previous build wrote in --out (and nothing else) and start over."),
        click.option("--max-reject-share", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
                     help="Fail the build (exit 1, after writing manifest and rejects) when a config rejects more "
                          "than this share of what it read."),
        click.option("--quiet", is_flag=True, help="No progress bars or summary."),
    ]


def accepted_recipes(dataset: str) -> list[str]:
    return [name for name in build_recipe_names() if dataset in load_build_recipe(name).datasets]


def _stage_option_classes(dataset: str) -> list[type]:
    from cxrdata.targets.recipe_stages import SPECS

    found: dict[str, type] = {}
    for name in accepted_recipes(dataset):
        for stage, _ in load_build_recipe(name).stages:
            found.setdefault(stage, SPECS[stage].options)
    return list(found.values())


def _unique(options: list[Any]) -> list[Any]:
    """Options once each (several stage classes share e.g. ``--extractor``), by their parameter name."""
    seen: set[str] = set()
    out = []
    for decorator in options:
        probe = decorator(lambda: None)
        name = probe.__click_params__[-1].name
        if name not in seen:
            seen.add(name)
            out.append(decorator)
    return out


def build_command(entry: DatasetEntry) -> click.Command:
    from cxrdata.imaging.stages import ImageOptions
    from cxrdata.sources.subset import SubsetOptions

    kinds = [k.options for k in entry.image_kinds if k.options is not None]
    stage_classes = _stage_option_classes(entry.name)
    recipes = accepted_recipes(entry.name)

    @friendly_errors
    def command(**values: Any) -> None:
        from cxrdata.api import plans

        source = given(entry.options, values)
        image = {**given(ImageOptions, values), **{k: v for cls in kinds for k, v in given(cls, values).items()}}
        stages: dict[str, Any] = {}
        for cls in stage_classes:
            stages.update(given(cls, values))
        subset = given(SubsetOptions, values)
        names = {f.name: f for cls in (entry.options, ImageOptions, *kinds, *stage_classes) for f in option_fields(cls)}
        options = {_api_name(names[k]): v for k, v in {**source, **image, **stages}.items()} | subset
        config_plans = plans(entry.name, out=values["out"], recipe=values.pop("recipe"), sample=values.pop("sample"),
                             **options)
        run_and_report(config_plans, values)

    recipe_help = (f"A recipe: {', '.join(recipes)} (recipes/README.md), or a YAML file." if recipes
                   else "A recipe YAML file naming this dataset.")
    decorators = [
        *click_options(entry.options, only=lambda f: True),
        click.option("--sample", is_flag=True, help="Build the bundled synthetic sample instead of --root."),
        *click_options(SubsetOptions),
        *click_options(ImageOptions),
        *[opt for cls in kinds for opt in click_options(cls)],
        click.option("--recipe", default=None, help=recipe_help),
        *_unique([opt for cls in stage_classes for opt in click_options(cls, default="none")]),
        *build_options(),
    ]
    return click.command(entry.name, help=entry.summary)(apply(decorators, command))


def run_and_report(config_plans: list[Any], values: dict[str, Any]) -> None:
    """Run the plans with the build options in ``values``; print what happened; exit 1 on a failed build."""
    from cxrdata.pipeline.build import BuildOptions, build
    from cxrdata.pipeline.summary import print_summary

    quiet = values["quiet"]
    if not quiet:
        for line in dict.fromkeys(n for plan in config_plans for n in plan.notices):
            console.print(line)
    result = build(config_plans, BuildOptions(
        out=values["out"], workers=values["workers"], tasks=values["tasks"], overwrite=values["overwrite"],
        quiet=quiet, engine=values["engine"], address=values["ray_address"],
        max_reject_share=values["max_reject_share"]))
    if not quiet:
        print_summary(console, result)
        for line in [n for plan in config_plans for n in (*plan.source.notices(), *plan.filter_notices())]:
            console.print(line)
    if result.problems:
        error_line("; ".join(result.problems) + " (manifest, card and rejects were written)", 1)


def _api_name(f: Any) -> str:
    return option_name(f)


def path_fields(cls: type) -> list[Any]:
    """The folder and file options of an options class (what a doctor looks at)."""
    hints = typing.get_type_hints(cls)
    return [f for f in option_fields(cls) if hints[f.name] in (Path, Path | None)]


def doctor_command(entry: DatasetEntry) -> click.Command:
    paths = path_fields(entry.options)

    @friendly_errors
    def command(decode: int, **values: Any) -> None:
        from cxrdata.sources.doctor import has_errors, print_findings
        from cxrdata.sources.registry import resolve

        findings = resolve(entry.doctor)(**{f.name: values[f.name] for f in paths}, decode=decode)
        print_findings(console, findings, f"doctor {entry.name}")
        if has_errors(findings):
            sys.exit(1)

    decorators = [
        *[click.option(f"--{f.name.replace('_', '-')}", f.name, type=INPUT_PATH, required=f.name == "root",
                       help=f.metadata.get("help", ""), **({} if f.name == "root" else {"default": None}))
          for f in paths],
        click.option("--decode", type=click.IntRange(min=0), default=20, show_default=True,
                     help="Image files to decode, spread over the download."),
    ]
    return click.command(entry.name, help=entry.doctor_summary or entry.summary)(apply(decorators, command))


def sample_command(entry: DatasetEntry) -> click.Command | None:
    """``sample-data NAME``; None for a dataset that shares another one's sample tree."""
    from cxrdata.sources.registry import resolve

    if entry.sample_tree:
        return None
    options_class = resolve(entry.sample_options) if entry.sample_options else None

    @friendly_errors
    def command(out: Path, seed: int, **values: Any) -> None:
        written = resolve(entry.sample)(out, seed=seed, **values)
        console.print(written.summary())
        console.print(f"build it with: cxrdata build {entry.name} "
                      + " ".join(f"--{k.replace('_', '-')} {out / v if v else out}"
                                 for k, v in entry.sample_paths.items()) + " --out OUT")

    decorators = [
        click.option("--out", type=click.Path(path_type=Path), required=True),
        *(click_options(options_class) if options_class is not None else []),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    return click.command(entry.name, help=entry.sample_summary or entry.summary)(apply(decorators, command))


class RegistryGroup(click.Group):
    """One subcommand per registered dataset, each made (and its reader imported) only when it is looked up:
    ``build mimic`` imports MIMIC's reader alone."""

    def __init__(self, name: str, make: Callable[[DatasetEntry], click.Command | None], **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self._make = make
        self._tried: set[str] = set()

    def list_commands(self, ctx: click.Context) -> list[str]:
        from cxrdata.sources.registry import MODULES

        return [name for name in MODULES if self.get_command(ctx, name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from cxrdata.sources.registry import ENTRIES

        if cmd_name not in self._tried and cmd_name in ENTRIES:
            self._tried.add(cmd_name)
            command = self._make(ENTRIES[cmd_name])
            if command is not None:
                self.add_command(command)
        return self.commands.get(cmd_name)


def register(main: click.Group) -> None:
    main.add_command(RegistryGroup("build", build_command,
                                   help="Build a dataset into OUT (resumable: rerun the same command to finish a "
                                        "killed build)."))
    main.add_command(RegistryGroup("doctor", doctor_command,
                                   help="Check a download: what is present, missing or malformed, and how to fix it."))
    main.add_command(RegistryGroup("sample-data", sample_command,
                                   help="Write small synthetic datasets in the exact on-disk formats of the real "
                                        "ones."))
    from cxrdata.cli.synth_prompts import synth_group

    main.add_command(synth_group)
