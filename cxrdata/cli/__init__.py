"""The ``cxrdata`` command line: parses options, calls the library (:mod:`cxrdata.api` and friends), prints.

The ``build``, ``doctor`` and ``sample-data`` commands are generated from the dataset registry
(:mod:`cxrdata.cli.datasets`); the others are written out in :mod:`cxrdata.cli.tools` and
:mod:`cxrdata.cli.train`. Heavy libraries are imported inside the commands, so ``cxrdata --help``
answers at once.
"""

from __future__ import annotations

import click

from cxrdata import __version__
from cxrdata.pipeline import interrupts


@click.group()
@click.version_option(__version__, prog_name="cxrdata")
def main() -> None:
    """Turn raw chest X-ray downloads into clean, typed, sharded Parquet datasets."""
    interrupts.install()


def _register() -> None:
    from cxrdata.cli import datasets, export, tools, train

    for module in (datasets, tools, train, export):
        module.register(main)


_register()
