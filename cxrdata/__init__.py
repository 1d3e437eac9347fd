"""cxrdata: credentialed chest X-ray downloads -> typed, sharded Parquet for grounding research.

``cxrdata.build``, ``cxrdata.load``, ``cxrdata.doctor`` and ``cxrdata.sample_data`` are the Python API
(:mod:`cxrdata.api`); they are imported on first use, so ``import cxrdata`` stays light. Importing it
sets how polars' allocator returns freed memory (:mod:`cxrdata.allocator`), if polars is not loaded yet.
"""

from typing import Any

from cxrdata.allocator import return_freed_memory_promptly

return_freed_memory_promptly()

__version__ = "0.1.0"
__all__ = ["build", "doctor", "load", "sample_data"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cxrdata import api

        return getattr(api, name)
    raise AttributeError(f"module 'cxrdata' has no attribute {name!r}")
