"""Generated sample trees, built once per sample-generator content and seed, cached under ``$CXRDATA_CACHE``.

``bundled_root("mimic")`` is what the CLI's demo run and the tests read. A tree is generated in a
temporary folder beside its final place and renamed into place in one step, so a reader never sees
a half-written tree and two processes racing to build it both end up with one complete copy.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cxrdata import __version__
from cxrdata.errors import CxrdataError

# dataset name -> "module:function" writing that dataset's sample as ``function(out, seed=seed)``.
# Imported lazily so that generating one dataset never imports the others.
SAMPLES: dict[str, str] = {
    "mimic": "cxrdata.sample.mimic:write_mimic_sample",
    "vindr": "cxrdata.sample.vindr:write_vindr_sample",
    "padchest-gr": "cxrdata.sample.padchest_gr:write_padchest_gr_sample",
    # holds chest-imagenome-dataset-1.0.0/ and the MIMIC-CXR-JPG sample it refers to, mimic-cxr-jpg/
    "imagenome": "cxrdata.sample.imagenome:write_imagenome_sample",
}


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


def writer(dataset: str) -> Callable[..., object]:
    """The sample writer registered for ``dataset``."""
    if dataset not in SAMPLES:
        raise CxrdataError(f"no bundled sample for {dataset!r}; available: {', '.join(sorted(SAMPLES))}")
    module, _, function = SAMPLES[dataset].partition(":")
    return getattr(importlib.import_module(module), function)


def bundled_root(dataset: str, seed: int = 0) -> Path:
    """The root of the generated ``dataset`` sample, generating it on first use."""
    write = writer(dataset)
    final = cache_dir() / "samples" / f"{dataset}-v{__version__}-{generator_digest()}-seed{seed}"
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
