"""One colour per key (reader, region label, category or location term), the same in the PNG and the HTML.

The palette has no grey, so a drawn box can never be mistaken for (or hidden in) a radiograph's pixels.
"""

from __future__ import annotations

from collections.abc import Iterable

Colour = tuple[int, int, int]

# Sasha Trubetskoy's distinct colours, greys removed.
PALETTE: tuple[Colour, ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
)


def assign(*groups: Iterable[str]) -> dict[str, Colour]:
    """Keys -> colours: each group's keys in sorted order, after the previous groups' (palette cycles)."""
    keys: list[str] = []
    for group in groups:
        keys += [k for k in sorted(set(group)) if k not in keys]
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def hex_colour(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)
