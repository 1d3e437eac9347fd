"""`import cxrdata` sets how polars' jemalloc returns freed memory, unless polars is loaded or the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

from cxrdata.allocator import JEMALLOC_CONF, POLARS_DEFAULT, RETURN_FREED_MEMORY

SHOW = "import os, sys; {first}; import polars; print(os.environ.get('_RJEM_MALLOC_CONF'))"


def _conf(first: str, value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != JEMALLOC_CONF}
    if value is not None:
        env[JEMALLOC_CONF] = value
    done = subprocess.run([sys.executable, "-c", SHOW.format(first=first)], env=env, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def test_cxrdata_first_asks_polars_to_return_freed_pages_promptly():
    # polars puts its own default first and the setting it found after it: the last value of a key wins
    assert _conf("import cxrdata", None) == f"{POLARS_DEFAULT},{RETURN_FREED_MEMORY}"
    assert _conf("import cxrdata", POLARS_DEFAULT) == f"{POLARS_DEFAULT},{RETURN_FREED_MEMORY}", \
        "polars' own default, inherited from a parent that loaded polars, is not a user's choice"


def test_a_users_setting_or_an_earlier_polars_is_left_alone():
    assert _conf("import cxrdata", "dirty_decay_ms:0") == f"{POLARS_DEFAULT},dirty_decay_ms:0"
    assert _conf("import polars; import cxrdata", None) == POLARS_DEFAULT
