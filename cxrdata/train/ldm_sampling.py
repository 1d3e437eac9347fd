"""Which rows each training step takes, and the frozen results kept between steps (`train ldm`).

Rows come from a seeded permutation per epoch, consumed in order across the processes of a DDP run, so a
run resumes at any step without loader state; per-image frozen results (latents, DDIM inversion
trajectories) are kept in a small LRU on the CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np


class LatentCache:
    """LRU of per-image frozen results (latents, inversion trajectories) on the CPU."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, Any] = OrderedDict()

    def get_many(self, keys: list[str], compute: Callable[[list[str]], dict[str, Any]]) -> list[Any]:
        """The value of each key. The keys not held are computed together, in one ``compute`` call (a batch),
        which may also compute keys that will be asked for soon; all it computed is kept."""
        found = {key: self.items[key] for key in keys if key in self.items}
        for key in found:
            self.items.move_to_end(key)
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        if missing:
            computed = compute(missing)
            found.update((key, computed[key]) for key in missing)
            if self.capacity > 0:
                self.items.update(computed)
                while len(self.items) > self.capacity:
                    self.items.popitem(last=False)
        return [found[key] for key in keys]

    def __contains__(self, key: str) -> bool:
        return key in self.items


def sample_positions(step: int, batch: int, rank: int, world: int, n: int, seed: int) -> list[int]:
    """Dataset rows of ``step`` for process ``rank``: a seeded permutation per epoch, consumed in order."""
    out = []
    for k in range(batch):
        epoch, pos = divmod((step * world + rank) * batch + k, n)
        out.append(int(_permutation(seed, epoch, n)[pos]))
    return out


_PERMS: dict[tuple[int, int, int], np.ndarray] = {}


def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    key = (seed, epoch, n)
    if key not in _PERMS:
        _PERMS.clear()
        _PERMS[key] = np.random.default_rng([seed, 1, epoch]).permutation(n)
    return _PERMS[key]
