"""How polars' memory allocator hands freed memory back, set before polars loads.

polars allocates through its own jemalloc and, on loading, sets it to keep freed pages for 0.5 s (dirty)
and 1 s (muzzy) before returning them (``_RJEM_MALLOC_CONF``, pola-rs/polars#18088). Planning
MIMIC-CXR-JPG frees a table's worth of memory at each of its steps (a decompressed piece, a sort, a join)
faster than that, so a driver holding 170 MB of live data peaked near 350 MB at 377,110 rows; returning
pages after 0.1 s brings the peak to about 300 MB at no measurable CPU cost (docs/cluster.md). A setting
of the user's own wins, and nothing changes when polars was loaded before cxrdata.
"""

from __future__ import annotations

import os
import sys

JEMALLOC_CONF = "_RJEM_MALLOC_CONF"  # read once, by polars' jemalloc, when polars loads
POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what polars writes there (inherited by children)
RETURN_FREED_MEMORY = "dirty_decay_ms:100,muzzy_decay_ms:0"


def return_freed_memory_promptly() -> None:
    """Ask polars' jemalloc to return freed pages after 0.1 s, unless polars is loaded or the user chose."""
    if "polars" not in sys.modules and os.environ.get(JEMALLOC_CONF, POLARS_DEFAULT) == POLARS_DEFAULT:
        os.environ[JEMALLOC_CONF] = RETURN_FREED_MEMORY
