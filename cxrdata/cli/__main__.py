"""``python -m cxrdata.cli``: the command line (e.g. under torchrun)."""

from cxrdata.cli import main

main()
