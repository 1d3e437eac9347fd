"""Generated sample trees, built once per sample-generator content and seed, cached under ``$CXRDATA_CACHE``.

A tree is generated in a temporary folder beside its final place and renamed into place in one step, so
a reader never sees a half-written tree and two processes racing to build it both end up with one
complete copy. Which writer makes which tree is the dataset registry's business
(:func:`cxrdata.sources.registry.bundled_root`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cxrdata import __version__


def cache_dir() -> Path:
    """``$CXRDATA_CACHE``, by default ``~/.cache/cxrdata``."""
    return Path(os.environ.get("CXRDATA_CACHE") or Path.home() / ".cache" / "cxrdata").expanduser()


def generator_digest() -> str:
    """12 hex digits of the sha256 of the sample generator's own files: a changed generator gets a new tree
    (a cached tree keyed by the tool version alone would outlive a fixed quirk)."""
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".py", ".yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def generated(name: str, write: Callable[..., object], seed: int = 0) -> Path:
    """The root of sample tree ``name`` written by ``write(out, seed=seed)``, generating it on first use."""
    final = cache_dir() / "samples" / f"{name}-v{__version__}-{generator_digest()}-seed{seed}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(scratch, seed=seed)
        os.rename(scratch, final)
    except OSError:
        if not final.is_dir():  # not a lost race: a real failure
            raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return final
