"""The Gaussian lookup table: one diagonal 2D Gaussian (or a two-component mixture) per location term.

Built from Chest ImaGenome gold boxes (seed 003, appendix A): every box is stretched onto a ``grid`` x
``grid`` map, turned into ``mu = (min + max) / 2``, ``sigma = (max - min) / 6`` per axis, and the
statistics are averaged per ImaGenome region; ``imagenome_locations.yaml`` says which regions make each
of the 27 location terms. Stored as JSON with its grid, sigma divisor, source counts and cxrdata version.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cxrdata import __version__, vocabulary
from cxrdata.anatomy.gaussian import (
    LUT_SIGMA_DIVISOR,
    MIN_SIGMA_FRACTION,
    box_params,
    params_to_boxes,
    render,
)
from cxrdata.boxes import check_box
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.yamlfiles import load_yaml

LUT_FORMAT = "cxrdata.gaussian_lut"
LUT_FORMAT_VERSION = 1
DEFAULT_GRID = 512
JITTER_FRACTION = 0.05

Params = tuple[float, float, float, float]


@cache
def location_mapping() -> dict[str, dict]:
    """``imagenome_locations.yaml``: term -> ``{basis, components}``, checked against the vocabulary."""
    text = resources.files("cxrdata.anatomy").joinpath("imagenome_locations.yaml").read_text()
    mapping = load_yaml(text)["locations"]
    missing = [t for t in vocabulary.locations() if t not in mapping]
    extra = [t for t in mapping if t not in vocabulary.locations()]
    if missing or extra:
        raise CxrdataError(f"imagenome_locations.yaml: missing terms {missing}, unknown terms {extra}")
    return {term: mapping[term] for term in vocabulary.locations()}


def imagenome_regions() -> tuple[str, ...]:
    """Every ImaGenome ``bbox_name`` the mapping uses."""
    names: list[str] = []
    for entry in location_mapping().values():
        for comp in entry["components"]:
            for name in [comp["box"]] if "box" in comp else comp["span"]:
                if name not in names:
                    names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class LocationGaussian:
    """The Gaussian(s) of one location term; ``counts[i]`` gold boxes stand behind component ``i``."""

    term: str
    components: tuple[Params, ...]
    counts: tuple[int, ...]

    @property
    def params(self) -> NDArray[np.float64]:
        """``(C, 4)`` rows ``(mu_x, mu_y, sigma_x, sigma_y)``."""
        return np.array(self.components, dtype=np.float64)

    @property
    def is_mixture(self) -> bool:
        return len(self.components) > 1


@dataclass(frozen=True)
class GaussianLUT:
    """Location term -> Gaussian(s) on a ``grid`` x ``grid`` map, in vocabulary order."""

    grid: int
    sigma_divisor: float
    entries: dict[str, LocationGaussian]
    cxrdata_version: str = __version__
    skipped_boxes: int = 0

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def params(self, term: str) -> NDArray[np.float64]:
        """``(C, 4)`` Gaussian rows of ``term`` in grid units."""
        try:
            return self.entries[term].params
        except KeyError:
            raise CxrdataError(f"location {term!r} is not in the Gaussian LUT") from None

    def heatmap(self, term: str, height: int, width: int) -> NDArray[np.float32]:
        """The term's target map on a ``height`` x ``width`` grid, peak 1 (mixtures: normalised sum)."""
        return render(self.params(term), height, width, grid=self.grid, combine="sum")

    def jittered(self, term: str, rng: np.random.Generator | int | None = None,
                 fraction: float = JITTER_FRACTION) -> NDArray[np.float64]:
        """The term's rows with mu and sigma each moved uniformly by up to ±``fraction`` of the side."""
        return jitter(self.params(term), rng, self.grid, fraction)

    def matchable(self, include_mixtures: bool = False) -> tuple[tuple[str, ...], NDArray[np.float64]]:
        """Terms and ``(K, 4)`` rows a single box is matched against (vocabulary order).

        One-component entries only by default (SPEC); with ``include_mixtures`` a mixture takes part
        through its moment-matched single Gaussian (:func:`moment_match`).
        """
        terms, rows = [], []
        for term, entry in self.entries.items():
            if entry.is_mixture and not include_mixtures:
                continue
            terms.append(term)
            rows.append(moment_match(entry.params))
        return tuple(terms), np.array(rows, dtype=np.float64).reshape(-1, 4)


def moment_match(params: ArrayLike) -> NDArray[np.float64]:
    """The single diagonal Gaussian with the mean and per-axis variance of an equal-weight mixture."""
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    mu = p[:, :2].mean(axis=0)
    var = (p[:, 2:] ** 2 + (p[:, :2] - mu) ** 2).mean(axis=0)
    return np.concatenate([mu, np.sqrt(var)])


def jitter(params: ArrayLike, rng: np.random.Generator | int | None, grid: float,
           fraction: float = JITTER_FRACTION) -> NDArray[np.float64]:
    """Move every mu and sigma independently by ``U(-fraction, fraction) · grid`` (LDM training prior).

    ``rng`` is a numpy Generator or a seed. Sigma is kept above a tiny positive floor.
    """
    gen = np.random.default_rng(rng)
    p = np.array(params, dtype=np.float64).reshape(-1, 4)
    p += gen.uniform(-fraction * grid, fraction * grid, size=p.shape)
    p[:, 2:] = np.maximum(p[:, 2:], MIN_SIGMA_FRACTION * grid)
    return p


def build_lut(
    boxes: Iterable[tuple[str, Sequence[float]]],
    grid: int = DEFAULT_GRID,
    sigma_divisor: float = LUT_SIGMA_DIVISOR,
) -> GaussianLUT:
    """LUT from ``(bbox_name, canonical box)`` pairs (Chest ImaGenome gold, ``original_*`` coordinates).

    Boxes slightly outside the image are clipped; unusable ones (empty, NaN, far outside) are skipped
    and counted in ``skipped_boxes``. Regions the mapping does not use are ignored. A region the
    mapping needs but no box supplies raises :class:`CxrdataError`.
    """
    wanted = set(imagenome_regions())
    per_region: dict[str, list[Sequence[float]]] = {name: [] for name in wanted}
    skipped = 0
    for name, box in boxes:
        if name not in wanted:
            continue
        try:
            clipped, _ = check_box(box)
        except Rejected:
            skipped += 1
            continue
        per_region[name].append(clipped)
    empty = sorted(name for name, found in per_region.items() if not found)
    if empty:
        raise CxrdataError(f"Gaussian LUT: no usable gold boxes for ImaGenome regions {empty}")
    means = {name: box_params(found, grid, sigma_divisor).mean(axis=0) for name, found in per_region.items()}
    counts = {name: len(found) for name, found in per_region.items()}

    entries = {}
    for term, entry in location_mapping().items():
        comps, ns = [], []
        for comp in entry["components"]:
            if "box" in comp:
                row, n = means[comp["box"]], counts[comp["box"]]
            else:
                corners = params_to_boxes([means[name] for name in comp["span"]], grid, sigma_divisor)
                span = [*corners[:, :2].min(axis=0), *corners[:, 2:].max(axis=0)]
                row, n = box_params(span, grid, sigma_divisor)[0], sum(counts[name] for name in comp["span"])
            comps.append(tuple(float(v) for v in row))
            ns.append(n)
        entries[term] = LocationGaussian(term, tuple(comps), tuple(ns))
    return GaussianLUT(grid, float(sigma_divisor), entries, __version__, skipped)


def lut_digest(lut: GaussianLUT) -> str:
    """16 hex digits of the sha256 of the LUT's content (its JSON document without the tool version): the
    one name of a LUT in stage fingerprints, manifests and cards."""
    doc = {k: v for k, v in lut_to_dict(lut).items() if k != "cxrdata_version"}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def lut_to_dict(lut: GaussianLUT) -> dict:
    """The JSON document of a LUT."""
    return {
        "format": LUT_FORMAT,
        "format_version": LUT_FORMAT_VERSION,
        "cxrdata_version": lut.cxrdata_version,
        "grid": lut.grid,
        "sigma_divisor": lut.sigma_divisor,
        "skipped_boxes": lut.skipped_boxes,
        "params": ["mu_x", "mu_y", "sigma_x", "sigma_y"],
        "locations": {
            term: {"components": [list(c) for c in e.components], "counts": list(e.counts)}
            for term, e in lut.entries.items()
        },
    }


def write_lut(lut: GaussianLUT, path: str | Path) -> None:
    """Write the LUT as JSON."""
    Path(path).write_text(json.dumps(lut_to_dict(lut), indent=2) + "\n")


def read_lut(path: str | Path) -> GaussianLUT:
    """Read and validate a LUT JSON; any problem raises :class:`CxrdataError` naming the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CxrdataError(f"{path}: Gaussian LUT file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CxrdataError(f"{path}: not a JSON Gaussian LUT ({exc})") from None
    try:
        return lut_from_dict(doc)
    except CxrdataError as exc:
        raise CxrdataError(f"{path}: {exc}") from None


def _fail(message: str) -> CxrdataError:
    return CxrdataError(f"malformed Gaussian LUT: {message}")


def lut_from_dict(doc: object) -> GaussianLUT:
    """Validate a LUT document (see :func:`lut_to_dict`)."""
    if not isinstance(doc, dict) or doc.get("format") != LUT_FORMAT:
        raise _fail(f"'format' must be {LUT_FORMAT!r}")
    if doc.get("format_version") != LUT_FORMAT_VERSION:
        raise _fail(f"unsupported format_version {doc.get('format_version')!r}")
    grid, divisor = doc.get("grid"), doc.get("sigma_divisor")
    if not isinstance(grid, int) or isinstance(grid, bool) or grid <= 0:
        raise _fail(f"'grid' must be a positive integer, got {grid!r}")
    if not _finite(divisor) or divisor <= 0:
        raise _fail(f"'sigma_divisor' must be a positive number, got {divisor!r}")
    locations = doc.get("locations")
    if not isinstance(locations, dict):
        raise _fail("'locations' must be an object")
    missing = [t for t in vocabulary.locations() if t not in locations]
    if missing:
        raise _fail(f"missing locations {missing}")
    unknown = [t for t in locations if t not in vocabulary.locations()]
    if unknown:
        raise _fail(f"unknown locations {unknown}")
    entries = {term: _entry(term, locations[term]) for term in vocabulary.locations()}
    skipped = doc.get("skipped_boxes", 0)
    return GaussianLUT(grid, float(divisor), entries, str(doc.get("cxrdata_version", "unknown")),
                       int(skipped) if isinstance(skipped, int) else 0)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _entry(term: str, raw: object) -> LocationGaussian:
    if not isinstance(raw, dict):
        raise _fail(f"location {term!r} must be an object")
    comps, counts = raw.get("components"), raw.get("counts")
    if not isinstance(comps, list) or not comps:
        raise _fail(f"location {term!r}: 'components' must be a non-empty list")
    rows = []
    for comp in comps:
        if not isinstance(comp, list) or len(comp) != 4 or not all(_finite(v) for v in comp):
            raise _fail(f"location {term!r}: component {comp!r} is not 4 finite numbers")
        if comp[2] <= 0 or comp[3] <= 0:
            raise _fail(f"location {term!r}: component {comp!r} has a non-positive sigma")
        rows.append(tuple(float(v) for v in comp))
    if (not isinstance(counts, list) or len(counts) != len(comps)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)):
        raise _fail(f"location {term!r}: 'counts' must list one non-negative integer per component")
    return LocationGaussian(term, tuple(rows), tuple(counts))
